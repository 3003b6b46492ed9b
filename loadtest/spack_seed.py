"""Seed a Spack build cache with N specs without pushing each over HTTP.

    python -m loadtest spack-seed --data DIR [--cache bench/cache] [--specs 20000]

Opens the store under DIR (as `registry serve --data DIR` does: DIR/storage,
DIR/index.sqlite) in this process and pushes each spec through the registry's
own core, decorated by the Spack room exactly as the server is: the tarball and
the config are stored and linked into the cache's repository as an upload
would, and the manifest goes through the manifest service under the spec's tag,
so the Spack decorator writes the journal entry, the spec file blob and (at the
end, as a server catching up would) a snapshot. What is left is what N OCI
pushes would leave, minus the HTTP, the index's rows included. Run it with
the server stopped.

Specs are generated (loadtest.spackgen, format 5): BASE shared libraries and
N packages each depending on two of them, so the index holds a union of DAGs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

from loadtest.spackgen import FakeSpec, make_spec

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
BASE = 20


async def _inline(fn, /, *args, **kwargs):
    return fn(*args, **kwargs)


def specs(n: int, seed: int = 0, fmt: int = 5):
    """`n` generated specs (the BASE shared ones first), made as they are consumed."""
    base = [make_spec(f"lib{i}", "1.0", fmt=fmt, seed=seed * 1_000_003 + i, tar_size=64)
            for i in range(min(BASE, n))]
    yield from base
    rng = random.Random(seed)
    for i in range(n - len(base)):
        deps = rng.sample(base, min(2, len(base)))
        yield make_spec(f"pkg{i}", f"{i % 7}.{i % 3}", deps, fmt=fmt,
                        seed=seed * 1_000_003 + BASE + i, tar_size=64)


async def seed(data: Path, cache: str, n: int, jobs: int = 32, seed_no: int = 0,
               progress: bool = True, snapshot: bool = True) -> float:
    """Push `n` generated specs into `cache` of the store under `data`; seconds taken."""
    from registry.arch.indexed import describer
    from registry.cli import spack_registry
    from registry.config import load
    from registry.core.grammar import Digest
    from registry.index.db import Index
    from registry.spack.journal import Journal
    from registry.spack.service import SpackCaches
    from registry.storage import create_driver, filesystem

    # One process writing small files: a thread hand-off per file costs more
    # than the write itself on a local disk.
    filesystem.to_thread = _inline  # type: ignore[assignment]

    # No fsync: the files are the same, and a seed that dies is seeded again.
    config = load(None, overrides={"storage": {"root": str(data / "storage"), "fsync": False},
                                   "index": {"path": str(data / "index.sqlite")}})
    driver = create_driver(config.storage)
    index = Index(config.index.path, describer)
    await index.open()
    # The index learns of each push as the server's would (as for spack import).
    reg, hooks, spack = spack_registry(config, driver, index)
    start = time.perf_counter()
    done = 0

    async def blob(data: bytes) -> tuple[Digest, int]:
        digest = Digest.of(data)
        await reg.blobs.put_small(data, digest)
        await reg.mounts.arrived(cache, digest, len(data))
        return digest, len(data)

    async def push(spec: FakeSpec) -> None:
        nonlocal done
        layer, size = await blob(spec.tarball)
        config_digest, config_size = await blob(spec.oci_config())
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "digest": str(config_digest),
                               "size": config_size},
                    "layers": [{"mediaType": LAYER, "digest": str(layer), "size": size}]}
        await reg.manifests.put(cache, spec.tag, json.dumps(manifest).encode(), OCI_MANIFEST)
        done += 1
        if progress and done % 1000 == 0:
            print(f"\r{done}/{n} specs", end="", file=sys.stderr, flush=True)

    try:
        queue: asyncio.Queue[FakeSpec | None] = asyncio.Queue(maxsize=jobs * 4)

        async def worker() -> None:
            while (spec := await queue.get()) is not None:
                await push(spec)

        workers = [asyncio.create_task(worker()) for _ in range(jobs)]
        for spec in specs(n, seed_no):
            await queue.put(spec)
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
        # A snapshot, as the server writes after catching up: a worker starts
        # from it instead of reading N journal entries.
        caches: SpackCaches = spack.caches
        state = await caches.state(cache)
        if snapshot and state is not None and state.last_entry:
            await Journal(caches.area, cache).write_snapshot(state.last_entry,
                                                             state.snapshot_lines())
    finally:
        await hooks.close()
        await index.close()
        await driver.close()
    if progress:
        print(file=sys.stderr)
    return time.perf_counter() - start


async def seed_records(data: Path, cache: str, n: int, seed_no: int = 0,
                       on_spec: Callable[[FakeSpec], None] | None = None) -> float:
    """Only the cache's records, as one snapshot written by the journal's own
    writer: what a server loads at start-up for `n` specs, in seconds, for tests
    of the state alone (no blob, tag or manifest is stored: the index views
    work, the specs' own files do not; `on_spec` sees each spec, tarball
    included, for a test that stores a few). Seconds taken."""
    from registry.config import load
    from registry.core.areas import SpackArea
    from registry.core.grammar import Digest
    from registry.spack.journal import Journal, entry_name
    from registry.storage import create_driver

    config = load(None, overrides={"storage": {"root": str(data / "storage"), "fsync": False}})
    driver = create_driver(config.storage)
    start = time.perf_counter()
    last = entry_name()

    async def lines():
        for i, spec in enumerate(specs(n, seed_no)):
            if on_spec is not None:
                on_spec(spec)
            record = {"spec": spec.doc, "tarball": str(Digest.of(spec.tarball)),
                      "tarball_size": len(spec.tarball), "source": "oci", "pushed": 0.0}
            yield (json.dumps([spec.hash, f"{last[:20]}-{i:012x}", record],
                              separators=(",", ":")) + "\n").encode()

    try:
        await Journal(SpackArea(driver), cache).write_snapshot(f"{last[:20]}-{n:012x}",
                                                               lines())
    finally:
        await driver.close()
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest spack-seed",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="data directory (registry serve --data)")
    p.add_argument("--cache", default="bench/cache")
    p.add_argument("--specs", type=int, default=20000)
    p.add_argument("--seed", type=int, default=0, help="generate different specs")
    p.add_argument("--jobs", type=int, default=32)
    p.add_argument("--no-snapshot", action="store_true",
                   help="leave the journal whole (a server replays it at start-up)")
    p.add_argument("--records-only", action="store_true",
                   help="only the records, as one snapshot (seed_records): seconds, "
                        "not minutes, for memory tests of the state alone")
    args = p.parse_args(argv)
    if args.records_only:
        took = asyncio.run(seed_records(Path(args.data), args.cache, args.specs, args.seed))
        print(f"{args.specs} spec records written into {args.cache} in {took:.1f} s")
        return 0
    took = asyncio.run(seed(Path(args.data), args.cache, args.specs, args.jobs, args.seed,
                            snapshot=not args.no_snapshot))
    print(f"{args.specs} specs seeded into {args.cache} in {took:.1f} s")
    return 0
