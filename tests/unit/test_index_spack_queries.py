"""The spec catalog's reads for the dashboard (index/db.py spack_specs' filters,
spack_spec, spack_dependents, spack_cache_names): a name or hash prefix, spack's
version and compiler prefixes, and which specs depend on one."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_index_search import spec

from registry.arch.indexed import describer
from registry.index.db import Index
from registry.index.records import SpecPut


@pytest.fixture
async def index(tmp_path):
    idx = Index(tmp_path / "index.sqlite", describer)
    await idx.open()
    rows = [replace(spec("hdf5", "1.14.3", h="a" * 32), compiler="gcc@=12.2.0"),
            spec("hdf5", "1.140", h="b" * 32), spec("hdf5", "1.14", h="c" * 32),
            replace(spec("hdf5-vol", "1.0", h="d" * 32),
                    dependencies=(("hdf5", "a" * 32), ("zlib", "z" * 32))),
            spec("zlib", "1.3", h="e" * 32, cache="other/cache")]
    await idx.apply([SpecPut(r) for r in rows])
    yield idx
    await idx.close()


async def hashes(index: Index, **kw) -> list[str]:
    return [r.hash[0] for r in await index.spack_specs("spack/cache", **kw)]


async def test_prefixes_versions_compilers_and_dependents(index):
    assert await hashes(index, name_prefix="hdf5") == ["a", "b", "c", "d"]
    assert await hashes(index, name_prefix="hdf5-") == ["d"]
    assert await hashes(index, name_prefix="zl") == []  # another cache's
    # `@1.14` as spack reads it: 1.14 and 1.14.x, not 1.140.
    assert await hashes(index, name="hdf5", version="1.14") == ["a", "c"]
    assert await hashes(index, version="1.14.3") == ["a"]
    # Compilers by name, by a version prefix, `@=` (spack 1.x) and `@` alike.
    assert await hashes(index, compiler="gcc") == ["a", "b", "c", "d"]
    assert await hashes(index, compiler="gcc@12") == ["a", "b", "c", "d"]
    assert await hashes(index, compiler="gcc@12.2") == ["a"]
    assert await hashes(index, compiler="gcc@=12.2.0") == ["a"]
    assert await hashes(index, compiler="gcc@1") == []
    assert await hashes(index, compiler="clang") == []
    assert await hashes(index, hash_prefix="bb") == ["b"]
    assert await hashes(index, hash_prefix="b" * 33) == []
    assert (await index.spack_spec("spack/cache", "c" * 32)).version == "1.14"
    assert await index.spack_spec("other/cache", "c" * 32) is None
    assert [r.hash[0] for r in await index.spack_dependents("spack/cache", "a" * 32, 5)] \
        == ["d"]
    assert await index.spack_dependents("spack/cache", "z" * 32, 0) == []
    # Not looked for in a cache too large for the scan to be cheap.
    assert await index.spack_dependents("spack/cache", "a" * 32, 5, scan_max=3) is None
    assert await index.spack_dependents("spack/cache", "a" * 32, 5, scan_max=4) is not None
    assert await index.spack_cache_names() == ["other/cache", "spack/cache"]
