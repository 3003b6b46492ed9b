"""The index's build rows (what each manifest needs of a host), filled by the describer
the index is handed (registry.arch.indexed), from real manifests as core parses them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from pushing import OCI_INDEX, OCI_MANIFEST, descriptor, digest_of, manifest_doc

from registry.arch.indexed import describer
from registry.core.manifest_format import parse_manifest
from registry.index.db import Index
from registry.index.records import ManifestDeleted, ManifestPut, TagSet

ARCH = "io.github.registry.arch."


def image(arch: str = "amd64", variant: str = "", note: str = "",
          annotations: dict | None = None, env: list[str] | None = None
          ) -> tuple[str, bytes, bytes]:
    """(digest, manifest bytes, config bytes) of a one-layer image."""
    config: dict = {"architecture": arch, "os": "linux", "note": note}
    if variant:
        config["variant"] = variant
    if env:
        config["config"] = {"Env": env}
    cfg = json.dumps(config).encode()
    body = json.dumps(manifest_doc(cfg, [b"layer " + note.encode()],
                                   annotations=annotations)).encode()
    return digest_of(body), body, cfg


def put(repo: str, body: bytes, config: bytes | None, media_type: str = OCI_MANIFEST,
        tag: str | None = None) -> ManifestPut:
    return ManifestPut(repo, digest_of(body), parse_manifest(body, media_type), len(body),
                       tag, config, 1.0)


async def rewound(path: Path, version: int, *sql: str) -> Index:
    """The index file at `path` taken back to schema `version` by `sql` (dropping what
    that version did not have), marked as never caught up, then opened (so migrated)
    with the arch describer."""
    conn = sqlite3.connect(path)
    for statement in (*sql, f"UPDATE meta SET value = '{version}' WHERE key = 'schema_version'",
                      "UPDATE meta SET value = '0' WHERE key = 'catchup'"):
        conn.execute(statement)
    conn.commit()
    conn.close()
    index = Index(path, describer)
    await index.open()
    return index


def index_of(*children: tuple[bytes, dict, dict | None]) -> bytes:
    """An image index listing (manifest bytes, platform, annotations) children."""
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        descriptor(OCI_MANIFEST, body, platform=platform,
                   **({"annotations": notes} if notes else {}))
        for body, platform, notes in children]}).encode()


async def test_an_image_and_an_index_are_described(index):
    cuda = "NVIDIA_REQUIRE_CUDA=cuda>=12.2 brand=tesla,driver>=535"
    d3, v3, c3 = image("amd64", "v3", "v3", {ARCH + "target": "zen3"}, [cuda])
    darm, arm, carm = image("arm64", "", "arm")
    idx = index_of((v3, {"os": "linux", "architecture": "amd64", "variant": "v3"},
                    {ARCH + "mpi": "openmpi@4.1"}),
                   (arm, {"os": "linux", "architecture": "arm64"}, None))
    await index.apply([put("app", v3, c3), put("app", arm, carm),
                       put("app", idx, None, OCI_INDEX, tag="latest")])
    [own, listed] = await index.builds("app", d3)
    assert (own.source, own.declared_by, own.error) == ("config", d3, None)
    assert (own.os, own.architecture, own.variant, own.target, own.cuda, own.mpi) == \
        ("linux", "amd64", "v3", "zen3", "12.2", None)
    assert own.sources["target"] == "annotation" and own.sources["cuda"] == "env"
    assert (listed.source, listed.declared_by, listed.entry) == ("index", digest_of(idx), 0)
    assert (listed.target, listed.mpi) == ("x86_64_v3", "openmpi@4.1")
    [own, listed] = await index.builds("app", darm)
    assert own.target == listed.target == "aarch64" and listed.entry == 1
    assert await index.builds("app", digest_of(idx)) == []  # an index needs nothing itself


async def test_hostile_annotations_are_an_error_and_spare_the_batch(index):
    bad, bad_body, bad_cfg = image("amd64", note="bad",
                                   annotations={ARCH + "target": "neoverse_v2"})
    worse, worse_body, worse_cfg = image("amd64", note="worse",
                                         annotations={ARCH + "cuda": "x" * 10_000})
    good, good_body, good_cfg = image("amd64", "v2", "good")
    await index.apply([put("app", bad_body, bad_cfg), put("app", worse_body, worse_cfg),
                       put("app", good_body, good_cfg), TagSet("app", "t", good, 1.0)])
    for digest in (bad, worse):
        [row] = await index.builds("app", digest)
        assert row.error and "PlatformError" in row.error and len(row.error) <= 500
        assert (row.os, row.target, row.sources) == (None, None, {})
    [row] = await index.builds("app", good)
    assert (row.error, row.target) == (None, "x86_64_v2")
    assert [t.tag for t in await index.tags("app")] == ["t"]
    assert len(await index.manifests("app")) == 3


async def test_artifacts_get_no_row_and_an_unread_image_config_an_error(index):
    empty = b"{}"
    artifact = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "artifactType": "application/vnd.example+type",
                           "config": descriptor("application/vnd.oci.empty.v1+json", empty),
                           "layers": [descriptor("application/vnd.example", b"x")]}).encode()
    digest, body, _ = image("amd64", note="too big")
    await index.apply([put("app", artifact, empty), put("app", body, None)])
    assert await index.builds("app", digest_of(artifact)) == []
    [row] = await index.builds("app", digest)  # the config was over the size read
    config = json.loads(body)["config"]
    assert row.error == f"config {config['digest']} ({config['size']} bytes) was not read"


async def test_an_index_without_a_describer_records_no_builds(tmp_path):
    idx = Index(tmp_path / "plain.sqlite")
    await idx.open()
    try:
        digest, body, cfg = image("amd64", "v3")
        await idx.apply([put("app", body, cfg)])
        assert await idx.builds("app", digest) == []
        assert [m.digest for m in await idx.manifests("app")] == [digest]
        assert await idx.undescribed("app") == {digest}  # a describer would look at it
    finally:
        await idx.close()


async def test_deleting_a_manifest_removes_the_rows_it_declared(index):
    d, body, cfg = image("amd64", "v3")
    listing = index_of((body, {"os": "linux", "architecture": "amd64", "variant": "v3"}, None))
    await index.apply([put("app", body, cfg), put("app", listing, None, OCI_INDEX)])
    assert len(await index.builds("app", d)) == 2
    await index.apply([ManifestDeleted("app", digest_of(listing))])
    assert [r.source for r in await index.builds("app", d)] == ["config"]
    await index.apply([ManifestDeleted("app", d)])
    assert await index.builds("app", d) == []
    assert await index.undescribed("app") == set()
