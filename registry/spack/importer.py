"""`registry spack import DIR`: a build cache spack wrote to a directory
(`spack buildcache push file:///DIR`, both layouts) brought into a cache of the
registry, for pipelines that build where the registry cannot be reached.

Every file goes through the same object service an S3 push does, so the same
checks hold (blob digests, spec manifests naming blobs that are there, spec
files whose hash matches their name) and every tarball lands once in the blob
store. Content-addressed files go first, then spec documents, then keys:
spack's own push order, which the checks rely on. Index files are skipped: the
server keeps each cache's index itself.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from registry.core.access import OPERATOR
from registry.core.errors import ObjectError
from registry.core.protocols import Objects
from registry.core.types import Checks
from registry.spack.layout import CONTENT_KINDS, INDEX_KINDS, ROOTS, SPEC_KINDS, bucket_of, classify

CHUNK = 1 << 20
# Phases, in the order spack itself pushes: a spec document is checked against
# blobs that must already be stored.
CONTENT, SPECS, REST = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Entry:
    """One file of the directory: its path, its path inside the cache, its size."""

    path: Path
    rel: str
    size: int


@dataclass(slots=True)
class Plan:
    """The files to import, in phases; what is skipped and why."""

    phases: list[list[Entry]] = field(default_factory=lambda: [[], [], []])
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def files(self) -> int:
        return sum(len(p) for p in self.phases)

    @property
    def bytes(self) -> int:
        return sum(e.size for p in self.phases for e in p)


@dataclass(slots=True)
class Summary:
    """What an import did: files stored, bytes read, files refused with why."""

    stored: int = 0
    unchanged: int = 0
    bytes: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def plan(root: Path) -> Plan:
    """The files below `root` that belong to a build cache. Symbolic links and
    anything but regular files are skipped: a directory handed to an import is
    not trusted to stay inside itself."""
    out = Plan()
    for top in ROOTS:
        base = root / top
        if not base.is_dir() or base.is_symlink():
            continue
        for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath, name)
                rel = path.relative_to(root).as_posix()
                st = path.lstat()
                if not stat.S_ISREG(st.st_mode):
                    out.skipped.append((rel, "not a regular file"))
                    continue
                kind = classify(rel).kind
                if kind in INDEX_KINDS:
                    out.skipped.append((rel, "index: the server keeps its own"))
                    continue
                phase = CONTENT if kind in CONTENT_KINDS else SPECS if kind in SPEC_KINDS \
                    else REST
                out.phases[phase].append(Entry(path, rel, st.st_size))
    return out


async def _chunks(path: Path, progress: Callable[[int], None]) -> AsyncIterator[bytes]:
    f = await asyncio.to_thread(open, path, "rb")
    try:
        while chunk := await asyncio.to_thread(f.read, CHUNK):
            progress(len(chunk))
            yield chunk
    finally:
        f.close()


async def run(objects: Objects, cache: str, todo: Plan, jobs: int = 4,
              progress: Callable[[int, int], None] = lambda files, nbytes: None) -> Summary:
    """Store every planned file in `cache`, `jobs` at a time. A file refused
    (its bytes or its spec bad) is reported and the rest go on; a spec document
    whose blobs failed is then refused by the same checks, so nothing half-there
    is ever listed."""
    where = bucket_of(cache)
    if where is None:
        raise ValueError(f"{cache!r} cannot be a build cache: its first component "
                         "must be a valid S3 bucket name")
    bucket, prefix = where
    await objects.create_bucket(bucket)
    summary = Summary()
    limit = asyncio.Semaphore(jobs)

    def read(n: int) -> None:
        summary.bytes += n
        progress(0, n)

    async def one(entry: Entry) -> None:
        key = prefix + entry.rel
        async with limit:
            try:
                if classify(entry.rel).kind in CONTENT_KINDS and await _has(
                        objects, bucket, key, entry.size):
                    summary.unchanged += 1
                    summary.bytes += entry.size
                    progress(1, entry.size)
                    return
                # An operator's import may link any blob it names: whoever runs the
                # CLI against the store can read every blob in it already.
                await objects.put(bucket, key, _chunks(entry.path, read),
                                  Checks(length=entry.size), caller=OPERATOR)
                summary.stored += 1
            except ObjectError as exc:
                summary.failed.append((entry.rel, exc.message))
            except OSError as exc:
                summary.failed.append((entry.rel, f"cannot read: {exc.strerror}"))
            progress(1, 0)

    for phase in todo.phases:
        await asyncio.gather(*(one(e) for e in phase))
    return summary


async def _has(objects: Objects, bucket: str, key: str, size: int) -> bool:
    """A content-addressed file already stored (same key, same size): re-importing
    a directory costs a HEAD per blob, not its bytes."""
    try:
        info = await objects.head(bucket, key)
    except ObjectError:
        return False
    return info.size == size
