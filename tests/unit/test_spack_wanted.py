"""The spec grammar of composed images (spack.wanted) and the install prefix read from
a tarball's head (spack.layer_facts): what is accepted, what is refused, what matches."""

from __future__ import annotations

import io
import tarfile

import pytest

from registry.spack.layer_facts import prefix_of
from registry.spack.specs import parse_node
from registry.spack.wanted import InvalidWanted, Wanted


def node(version: str = "1.14.3", **params: object) -> object:
    return parse_node({"name": "hdf5", "version": version, "hash": "a" * 32,
                       "arch": {"platform": "linux", "platform_os": "debian12",
                                "target": "zen3"},
                       "parameters": {"cflags": [], **params}})


@pytest.mark.parametrize("text, matches", [
    ("hdf5", True), ("hdf5@1.14", True), ("hdf5@1.15:", False), ("hdf5@=1.14.3", True),
    ("hdf5 +mpi", True), ("hdf5~mpi", False), ("hdf5@1.14+mpi~cxx", True),
    ("hdf5 api=v110", True), ("hdf5 api=v18", False), ("hdf5 libs=shared", True),
    ("hdf5 libs=shared,static", True), ("hdf5 libs=static,pic", False),
    ("hdf5 mpi=true", True), ("hdf5 nosuch=1", False), ("hdf5 +nosuch", False),
    ("hdf5 /aaaa", True), ("hdf5 /bbbb", False), ("hdf4", False), ("  hdf5 +mpi  ", True),
])
def test_variants_versions_and_hashes_match_as_spack_satisfies(text, matches):
    n = node(mpi=True, cxx=False, api="v110", libs=["shared", "static"])
    assert Wanted.parse(text).matches(n) is matches  # type: ignore[arg-type]


@pytest.mark.parametrize("text", [
    "", "HDF5", "hdf5%gcc", "hdf5 ^mpi", "hdf5 +", "hdf5 =x", "hdf5 +mpi +mpi",
    "hdf5 target=zen3", "hdf5 os=x", "hdf5 /a /b", "hdf5 /ABC", "hdf5@2:1", "hdf5@",
    "hdf5 @1", "hdf5\x00", "hdf5 +mpi;rm", "h" * 600, "hdf5" + " +v" * 40, 5, None,
    "hdf5 x=" + ",".join("v" * 17),
])
def test_hostile_or_unsupported_specs_are_refused(text):
    with pytest.raises(InvalidWanted):
        Wanted.parse(text)


def _tar(*names: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            tar.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
    return buf.getvalue()


def test_the_prefix_is_the_path_before_spacks_metadata():
    long = "opt/" + "x" * 150 + "/zlib-1.3-" + "a" * 32
    assert prefix_of(_tar("opt/", f"{long}/", f"{long}/.spack/spec.json", f"{long}/bin/z")) \
        == "/" + long
    assert prefix_of(_tar("./p/q/.spack/x")) == "/p/q"
    assert prefix_of(_tar("zlib/share/zlib.bin")) == ""  # not spack's layout
    assert prefix_of(_tar("a/../../etc/.spack/x")) == ""
    assert prefix_of(_tar("a/b/.spack/x")[:700]) == "/a/b"  # a head cut inside a member
    assert prefix_of(b"garbage" * 100) == ""
    assert prefix_of(_tar("a:b/.spack/x")) == ""  # it would split PATH
