"""`python -m loadtest search`: search latency over a big index, in process.

Seeds a fresh SQLite index (a temporary file) with `--manifests` image manifests and
`--specs` Spack specs through `Index.apply`, the index writer's own path (so each
batch writes the rows and their full-text documents in one transaction, as a server
does), then runs each query shape `--rounds` times through `core.search.Search`, the
service `GET /api/v1/search` calls, and prints the median and p99 latency of each, and
the seeding rate, as JSON. HTTP is left out: what is measured is what the index answers.
`--index PATH` keeps the file; given again, it is measured as it is, without seeding
(to compare two checkouts on the same data, alternating, PYTHONPATH naming each).
A restricted caller's rights are the auth room's rules (`rights`), with the rights key
the API passes, so what a caller's later searches keep is measured as a server keeps it.

The data: repositories named from a vocabulary of package-like words, each manifest a
real OCI manifest (parsed by core, described by registry.arch) for amd64 (generic, v2,
v3, or a zen2/zen3/icelake/haswell target annotation) or arm64, with tags, a title
annotation and config labels; specs of the same vocabulary at several versions, four
targets, a compiler, variants and dependencies, in 20 caches.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

WORDS = ("py-numpy py-scipy py-pandas hdf5 netcdf-c netcdf-fortran openmpi mpich zlib "
         "openblas fftw petsc trilinos gromacs lammps cp2k quantum-espresso boost cmake "
         "python perl gcc llvm cuda kokkos raja hypre superlu metis parmetis gsl eigen "
         "libxml2 curl openssl sqlite bzip2 xz zstd libpng libjpeg tensorflow pytorch "
         "julia r octave paraview visit vtk ascent conduit adios2 hdf4").split()
TARGETS = ("x86_64", "x86_64_v2", "x86_64_v3", "zen2", "zen3", "icelake", "haswell")
SPEC_TARGETS = ("x86_64_v3", "zen2", "zen3", "icelake", "aarch64")
BATCH = 2000


def _manifest(rng: random.Random, i: int) -> tuple[bytes, bytes, str]:
    """(manifest bytes, config bytes, word) of the i-th image."""
    from registry.core.grammar import Digest

    word = rng.choice(WORDS)
    target = rng.choice((*TARGETS, "arm64"))
    arch, variant = ("arm64", "") if target == "arm64" else ("amd64", {
        "x86_64_v2": "v2", "x86_64_v3": "v3"}.get(target, ""))
    config: dict[str, Any] = {"architecture": arch, "os": "linux", "n": i, "config": {
        "Labels": {"org.example.team": rng.choice(("hpc", "ml", "bio", "chem")),
                   "org.example.n": str(i)}}}
    if variant:
        config["variant"] = variant
    cfg = json.dumps(config).encode()
    annotations = {"org.opencontainers.image.title": f"{word} image {i}"}
    if target not in ("arm64", "x86_64", "x86_64_v2", "x86_64_v3"):
        annotations["io.github.registry.arch.target"] = target
    layer = f"layer {i}".encode()
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                      "digest": str(Digest.of(cfg)), "size": len(cfg)},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       "digest": str(Digest.of(layer)), "size": len(layer)}],
           "annotations": annotations}
    return json.dumps(doc).encode(), cfg, word


async def seed(index: Any, manifests: int, specs: int, seed_: int = 1) -> dict[str, float]:
    """Fill `index`; the seconds each part took."""
    from registry.core.grammar import Digest
    from registry.core.manifest_format import parse_manifest
    from registry.index.records import ManifestPut, SpecPut, SpecRow

    rng = random.Random(seed_)
    took: dict[str, float] = {}
    start = time.perf_counter()
    batch: list[Any] = []
    for i in range(manifests):
        body, cfg, word = _manifest(rng, i)
        repo = f"{rng.choice(('hpc', 'apps', 'site', 'team'))}/{word}-{i % 97}"
        m = parse_manifest(body, "application/vnd.oci.image.manifest.v1+json")
        batch.append(ManifestPut(repo, str(Digest.of(body)), m, len(body), f"v{i}", cfg,
                                 1.0))
        if len(batch) >= BATCH:
            await index.apply(batch)
            batch = []
    await index.apply(batch)
    took["manifests_s"] = time.perf_counter() - start
    start = time.perf_counter()
    batch = []
    for i in range(specs):
        word = rng.choice(WORDS)
        version = f"{rng.randint(1, 3)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
        deps = tuple((rng.choice(WORDS), f"{rng.getrandbits(128):032x}") for _ in range(3))
        row = SpecRow(f"spack/cache{i % 20}", f"{rng.getrandbits(160):040x}"[:32], word,
                      version, "linux", rng.choice(("ubuntu22.04", "rhel8")),
                      rng.choice(SPEC_TARGETS), f"gcc@{rng.randint(9, 13)}.1.0",
                      {"mpi": rng.random() < 0.5, "shared": True,
                       "build_type": "Release"}, deps, 1000, 5, "oci", 1.0)
        batch.append(SpecPut(row))
        if len(batch) >= BATCH:
            await index.apply(batch)
            batch = []
    await index.apply(batch)
    took["specs_s"] = time.perf_counter() - start
    return took


def shapes() -> dict[str, dict[str, Any]]:
    """The queries measured: name -> SearchQuery fields (as the API would parse them);
    `half`: a caller who may pull half the repositories (by rules, see `rights`), the
    same caller every round, or (`half: "new"`) a caller never seen before each round."""
    from registry.api.search_api import arch_targets
    from registry.arch.platforms import known_target

    zen3 = known_target("zen3")
    fits = tuple(sorted({zen3.name, *(a.name for a in zen3.ancestors)}))
    return {
        "word (q=hdf5)": {"terms": ("hdf5",)},
        "name@version (q=hdf5@1.1)": {"terms": ("hdf5@1.1",)},
        "two words (q=py-numpy zen3)": {"terms": ("py-numpy", "zen3")},
        "broad word (q=linux, every doc)": {"terms": ("linux",)},
        "prefix (q=net*)": {"terms": ("net*",)},
        "filters only (target=zen3&fits=1)": {"targets": fits},
        "word + arch (q=openmpi&arch=amd64)": {"terms": ("openmpi",), "arch": "amd64",
                                               "arch_targets": arch_targets("amd64")},
        "spack=hdf5@2.1 + fits zen3": {"spack_name": "hdf5", "spack_version": "2.1",
                                       "targets": fits},
        "label (org.example.team=bio)": {"labels": (("org.example.team", "bio"),)},
        "word, half the repositories visible": {"terms": ("hdf5",), "half": True},
        "word, half visible, a new caller each time": {"terms": ("hdf5",), "half": "new"},
    }


def rights() -> tuple[Any, Any]:
    """(may_pull, rights key) of a user whose group may pull two of the four namespaces
    and half the caches, by the auth room's own rules, asked as the API asks them
    (`Guard.puller`: the rules' patterns as one expression)."""
    from registry.auth.rules import USER, Identity, Rule, Rules

    rules = Rules([Rule.parse(r) for r in ("hpc/* group:bench pull", "site/* group:bench pull",
                                           "spack/cache1* group:bench pull",
                                           "* group:admins admin")])
    who = Identity(USER, "reader", frozenset({"bench"}))

    test = rules.puller(who)

    def may_pull(family: str, name: str) -> bool:
        return test(name)

    return may_pull, (who, rules.generation)


async def measure(index: Any, rounds: int, n: int) -> dict[str, dict[str, float]]:
    from registry.core.search import Search, SearchQuery

    search = Search(index)
    out: dict[str, dict[str, float]] = {}
    may_pull, key = rights()
    for name, fields in shapes().items():
        half = fields.pop("half", False)
        query = SearchQuery(limit=n, **fields)
        times, results, second = [], 0, 0.0
        for i in range(rounds):
            # A new caller: a key never used, so nothing of theirs is kept yet.
            kept = (key, i) if half == "new" else key
            start = time.perf_counter()
            page = await search.page(query, may_pull if half else None,
                                     kept if half else None)
            times.append(time.perf_counter() - start)
            results = len(page.results)
        if page.next_after is not None:  # the next page, by its cursor
            h = page.next_after
            start = time.perf_counter()
            await search.page(replace(query, after=(h.rank, h.kind, h.repo, h.key)),
                              may_pull if half else None, key if half else None)
            second = time.perf_counter() - start
        times.sort()
        out[name] = {"median_ms": round(statistics.median(times) * 1000, 2),
                     "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))]
                                     * 1000, 2),
                     "results": results, "next_page_ms": round(second * 1000, 2)}
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from registry.arch.indexed import describer
    from registry.index.db import Index

    with tempfile.TemporaryDirectory(prefix="loadtest-search-") as tmp:
        path = Path(args.index) if args.index else Path(tmp) / "index.sqlite"
        seeded = not path.exists()
        index = Index(path, describer)
        await index.open()
        try:
            took = await seed(index, args.manifests, args.specs) if seeded else {}
            docs = (await index._query("SELECT count(*) AS n FROM search_docs"))[0]["n"]
            latencies = await measure(index, args.rounds, args.n)
        finally:
            await index.close()
        size = path.stat().st_size if path.exists() else 0
    return {"manifests": args.manifests if seeded else None,
            "specs": args.specs if seeded else None, "documents": docs,
            "index_bytes": size, "page_size": args.n, "rounds": args.rounds,
            "seed_s": {k: round(v, 1) for k, v in took.items()},
            "seed_per_s": round((args.manifests + args.specs)
                                / max(sum(took.values()), 1e-9)) if seeded else None,
            "queries": latencies}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest search", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifests", type=int, default=50_000, help="image manifests (50000)")
    p.add_argument("--specs", type=int, default=50_000, help="Spack specs (50000)")
    p.add_argument("--rounds", type=int, default=50, help="runs of each query (50)")
    p.add_argument("-n", type=int, default=50, help="results per page (50, the API's default)")
    p.add_argument("--index", help="index file to create and keep (default: a temporary "
                   "one); an existing one is measured as it is, not seeded again")
    args = p.parse_args(argv)
    if args.manifests < 0 or args.specs < 0 or not 1 <= args.rounds <= 10_000:
        p.error("--manifests and --specs >= 0, --rounds in [1, 10000]")
    print(json.dumps(asyncio.run(run(args)), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
