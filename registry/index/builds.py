"""What each manifest needs of a host, in the index's `builds` table.

The index does not know how to read a platform, an image config or the project's
annotations: that is registry.arch's job, a room above core, which the index may not
import. Whoever opens the index hands it a `Describer` (app.py and cli.py give
registry.arch.indexed.describer); an index without one records no build rows.

Rows are written on the index thread, inside the batch's transaction, when a
`ManifestPut` or `ManifestDescribe` is applied:

- an image manifest whose config is an image config (a JSON object with a string
  `architecture`): one row from its annotations and config, declared_by itself;
- an index: one row per child descriptor with a platform, from the descriptor's
  platform and annotations, declared_by the index, `entry` the child's position.

A description that fails (hostile annotations, a config too large to have been read)
is recorded as the row's `error`, with nothing else, and never fails the batch.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any, Protocol

from registry.index.records import BuildRow, DescriptorLike, ManifestLike

COLUMNS = ("os", "architecture", "variant", "os_version", "os_features", "features",
           "target", "cuda", "rocm", "mpi", "memory", "sources")
MAX_ERROR = 500  # characters of an error kept: it may quote hostile input

# Config media types of images (whose config says the platform). An artifact's config
# (a signature's, an SBOM's, Spack's) says nothing of a host: no row for it.
IMAGE_CONFIGS = frozenset({"application/vnd.oci.image.config.v1+json",
                           "application/vnd.docker.container.image.v1+json"})


class Describer(Protocol):
    """What a manifest needs of a host, as flat columns (registry.arch.describe.fields:
    os, architecture, variant, os_version, os_features, features, target, cuda, rocm,
    mpi, memory; `sources` a JSON object of field -> source). `config` is the parsed
    image config, `platform` the parent index's platform for it. Raises on input it
    cannot describe; the message is recorded."""

    def __call__(self, *, annotations: Mapping[str, str] | None,
                 config: Mapping[str, Any] | None,
                 platform: Mapping[str, Any] | None) -> Mapping[str, str | int | None]: ...


def image_config(config: bytes | None) -> dict[str, Any] | None:
    """The image config document, or None if `config` is not one (absent, not JSON, an
    artifact's config without an `architecture`)."""
    if not config:
        return None
    try:
        doc = json.loads(config)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("architecture"), str):
        return None
    return doc


_INSERT = ("INSERT OR REPLACE INTO builds (repo, digest, declared_by, entry, source, "
           + ", ".join(COLUMNS) + ", error) VALUES (" + ", ".join("?" * (len(COLUMNS) + 6))
           + ")")


def _row(repo: str, digest: str, declared_by: str, entry: int, source: str,
         describe: Describer, **given: Any) -> list[Any]:
    head = [repo, digest, declared_by, entry, source]
    try:
        described = describe(**given)
        values = [_column(c, described.get(c)) for c in COLUMNS]
    except Exception as exc:  # hostile input: say why, index nothing else of it
        message = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
        return head + [None] * len(COLUMNS) + [message]
    return head + values + [None]


def _column(name: str, value: Any) -> str | int | None:
    if value is None or (name == "memory" and isinstance(value, int)):
        return value
    if name == "memory":
        raise TypeError(f"memory {value!r} is not a number of bytes")
    return str(value)


def record(conn: sqlite3.Connection, repo: str, digest: str, manifest: ManifestLike,
           config: bytes | None, describe: Describer | None) -> None:
    """Replace the build rows `repo@digest` declares (see the module docstring)."""
    if describe is None:
        return
    conn.execute("DELETE FROM builds WHERE repo = ? AND declared_by = ?", [repo, digest])
    rows = []
    if manifest.config is not None:
        doc = image_config(config)
        if doc is not None:
            rows.append(_row(repo, digest, digest, -1, "config", describe,
                             annotations=manifest.annotations, config=doc, platform=None))
        elif manifest.config.media_type in IMAGE_CONFIGS:
            rows.append([repo, digest, digest, -1, "config"] + [None] * len(COLUMNS)
                        + [_unreadable(manifest.config, config)])
    for n, child in enumerate(manifest.manifests):
        if child.platform:
            rows.append(_row(repo, str(child.digest), digest, n, "index", describe,
                             annotations=child.annotations, config=None,
                             platform=child.platform))
    conn.executemany(_INSERT, rows)
    conn.execute("UPDATE manifests SET described = 1 WHERE repo = ? AND digest = ?",
                 [repo, digest])


def _unreadable(descriptor: DescriptorLike, config: bytes | None) -> str:
    if config is None:
        return f"config {descriptor.digest} ({descriptor.size} bytes) was not read"
    return f"config {descriptor.digest} is not an image config"


def undescribed(conn: sqlite3.Connection, repo: str) -> set[str]:
    """The manifests of `repo` no describer has seen (indexed before builds were)."""
    return {r[0] for r in conn.execute(
        "SELECT digest FROM manifests WHERE repo = ? AND described = 0", [repo])}


def builds(conn: sqlite3.Connection, repo: str, digest: str) -> list[BuildRow]:
    """The build rows of manifest `digest` in `repo`: its own config's first, then those
    of the indexes that list it (by index digest and position)."""
    cur = conn.execute(
        "SELECT repo, digest, declared_by, entry, source, " + ", ".join(COLUMNS)
        + ", error FROM builds WHERE repo = ? AND digest = ?"
        " ORDER BY source = 'index', declared_by, entry", [repo, digest])
    return [build_row(r) for r in cur.fetchall()]


def build_row(r: tuple[Any, ...]) -> BuildRow:
    """A row selected as `repo, digest, declared_by, entry, source, COLUMNS..., error`."""
    values = dict(zip(COLUMNS, r[5:5 + len(COLUMNS)], strict=True))
    try:
        sources = json.loads(values.pop("sources") or "{}")
    except ValueError:
        sources = {}
    if not isinstance(sources, dict):
        sources = {}
    return BuildRow(r[0], r[1], r[2], r[3], r[4], **values,
                    sources={str(k): str(v) for k, v in sources.items()}, error=r[-1])
