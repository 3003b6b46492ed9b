"""The layer walker on layers built here: every package database, findings,
whiteouts across layers, each compression, and hostile streams reported as errors
in bounded memory. No server: the streams are read as the worker thread reads them."""

from __future__ import annotations

import io
import tracemalloc
import zlib

import pytest
import zstandard

from registry.scan.decompress import Inflated
from registry.scan.limits import Limits
from registry.scan.purl import purl
from registry.scan.rootfs import Rootfs
from registry.scan.tarstream import TarReader
from tests.scan import layers as L


def walk(*blobs: bytes, limits: Limits | None = None, scratch: str | None = None) -> Rootfs:
    limits = limits or Limits()
    fs = Rootfs(limits, scratch)
    for i, blob in enumerate(blobs):
        try:
            inflated = Inflated(io.BytesIO(blob), limits.inflated(len(blob)))
        except Exception as exc:
            fs.error(str(exc), f"layer{i}")
            continue
        fs.layer(TarReader(inflated, limits), f"layer{i}")
    return fs


def names(fs: Rootfs) -> dict[str, tuple[str, str, str]]:
    return {p.name: (p.ecosystem, p.version, p.source) for p in fs.packages}


@pytest.mark.parametrize("how", ["gzip", "zstd", "plain"])
def test_every_database_in_every_compression(how, tmp_path):
    rpm = L.rpmdb_sqlite(str(tmp_path / "rpmdb.sqlite"))
    base = L.tar(("etc", None), ("usr/lib/os-release", L.DEBIAN_OS_RELEASE),
                 ("etc/os-release", "->", "../usr/lib/os-release"),
                 ("var/lib/dpkg/status", L.DPKG_STATUS),
                 ("var/lib/dpkg/status.d/tzdata", b"Package: tzdata\nVersion: 2024a-0\n"),
                 ("lib/apk/db/installed", L.APK_INSTALLED),
                 ("./var/lib/rpm/rpmdb.sqlite", rpm),
                 ("usr/lib/python3/site-packages/requests_oauth-2.31.0.dist-info/METADATA",
                  L.METADATA),
                 ("usr/lib/python3/dist-packages/six-1.16.0.egg-info", L.PKG_INFO),
                 ("opt/spack/linux/zlib-1.3.1-abcdef/.spack/spec.json", L.SPEC_JSON),
                 ("root/.ssh/id_ed25519", L.PRIVATE_KEY),
                 ("usr/bin/su", b"\x7fELF", 0o4755), ("usr/bin/wall", b"\x7fELF", 0o2755))
    fs = walk(L.compress(base, how), scratch=str(tmp_path))
    assert fs.errors == []
    found = names(fs)
    assert found["libc6"] == ("deb", "2.36-9+deb12u4", "glibc")
    assert found["curl"] == ("deb", "7.88.1-10+deb12u5", "curl")
    assert found["tzdata"][0] == "deb" and "removed-one" not in found
    assert found["libcrypto3"] == ("apk", "3.1.4-r5", "openssl")
    assert found["openssl-libs"] == ("rpm", "1:3.0.7-25.el9", "openssl")
    assert found["bash"] == ("rpm", "5.1.8-6.el9", "bash") and "gpg-pubkey" not in found
    assert found["Requests_OAuth"] == ("pypi", "2.31.0", "")
    assert found["six"] == ("pypi", "1.16.0", "")
    assert found["zlib"] == ("spack", "1.3.1", "") and "gmake" not in found
    assert all(p.layer == "layer0" for p in fs.packages)
    kinds = {(f.kind, f.path) for f in fs.findings}
    assert kinds == {("private-key", "root/.ssh/id_ed25519"), ("setuid", "usr/bin/su"),
                     ("setgid", "usr/bin/wall")}
    distro = fs.distro()
    assert distro is not None and distro.osv_ecosystem == "Debian:12"
    purls = {p.name: purl(p, distro) for p in fs.packages}
    assert purls["libc6"] == \
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"
    assert purls["Requests_OAuth"] == "pkg:pypi/requests-oauth@2.31.0"
    assert purls["openssl-libs"].startswith("pkg:rpm/debian/openssl-libs@3.0.7-25.el9?")
    assert purls["zlib"] == \
        "pkg:spack/zlib@1.3.1?arch=x86_64_v3&hash=abcdefghijklmnopqrstuvwxyz234567"
    assert list(tmp_path.iterdir()) == [tmp_path / "rpmdb.sqlite"]  # scratch file gone


def test_whiteouts_across_layers():
    lower = L.tar(("lib/apk/db/installed", L.APK_INSTALLED),
                  ("etc/os-release", L.ALPINE_OS_RELEASE),
                  ("app/venv/lib/a-1.0.dist-info/METADATA", b"Name: a\nVersion: 1.0\n"),
                  ("app/venv/lib/b-1.0.dist-info/METADATA", b"Name: b\nVersion: 1.0\n"),
                  ("keys/old.pem", L.PRIVATE_KEY), ("keys/kept.pem", L.PRIVATE_KEY),
                  ("usr/bin/ping", b"x", 0o4755))
    upper = L.tar(("app/venv/.wh..wh..opq", b""),
                  ("app/venv/lib/c-2.0.dist-info/METADATA", b"Name: c\nVersion: 2.0\n"),
                  ("keys/.wh.old.pem", b""), ("usr/bin/.wh.ping", b""),
                  ("lib/apk/db/installed", b"P:busybox\nV:1.36.1-r15\n"))
    fs = walk(L.compress(lower, "gzip"), L.compress(upper, "zstd"))
    assert fs.errors == []
    found = names(fs)
    assert set(found) == {"c", "busybox"}
    assert {p.name: p.layer for p in fs.packages} == {"c": "layer1", "busybox": "layer1"}
    assert [(f.kind, f.path, f.layer) for f in fs.findings] == \
        [("private-key", "keys/kept.pem", "layer0")]
    assert fs.distro().osv_ecosystem == "Alpine:v3.19"
    # an opaque directory hides the layers below, not its own layer's files
    reopened = walk(lower, L.tar(("app/venv/lib/d-1.dist-info/METADATA",
                                  b"Name: d\nVersion: 1\n"), ("app/venv/.wh..wh..opq", b"")))
    assert {"d", "musl"} <= set(names(reopened)) and "a" not in names(reopened)


def test_a_file_replacing_a_directory_hides_what_was_below():
    lower = L.tar(("app/x.dist-info/METADATA", b"Name: x\nVersion: 1\n"))
    fs = walk(lower, L.tar(("app", b"now a file")))
    assert fs.packages == []
    # an old tar's directory (type 0, a trailing slash) is a directory, not a file
    fs = walk(lower, L.header(b"app/", kind=b"0", mode=0o755) + bytes(1024))
    assert [p.name for p in fs.packages] == ["x"] and fs.errors == []


def _errors(fs: Rootfs) -> list[str]:
    return [e.message for e in fs.errors]


def test_hostile_layers_are_errors_and_the_rest_is_read():
    good = L.tar(("lib/apk/db/installed", L.APK_INSTALLED))
    traversal = L.tar(("../../etc/passwd", b"x"), ("a/../../b", b"y"),
                      ("z.dist-info/METADATA", b"Name: zlib\nVersion: 1.3\n"))
    self_link = L.tar(("x", "=>", "x"), ("etc/os-release", "->", "/etc/os-release"))
    pax = L.header(b"././@PaxHeader", size=64 << 20, kind=b"x") + bytes(4096)
    long_name = L.header(b"././@LongLink", size=10 << 20, kind=b"L") + bytes(4096)
    truncated = L.compress(L.tar(("var/lib/dpkg/status", L.DPKG_STATUS * 50)), "gzip")[:-200]
    corrupt = bytearray(L.tar(("a", b"b")))
    corrupt[10] ^= 0xFF
    fs = walk(traversal, self_link, pax, long_name, truncated, bytes(corrupt), b"BZh91AY",
              L.compress(L.tar(("x", b"y")), "zstd")[:30], good)
    errors = _errors(fs)
    assert sum("path traversal" in e for e in errors) == 2
    assert "hard link to itself (a loop), not followed" in errors
    assert any("pax header of 67108864 bytes exceeds" in e for e in errors)
    assert any("GNU long name of 10485760 bytes exceeds" in e for e in errors)
    assert any("truncated" in e for e in errors if e)
    assert any("checksum mismatch" in e for e in errors)
    assert "bzip2 layers are not read" in errors
    assert any("zstd" in e or "truncated" in e for e in _errors(fs)[-2:])
    assert fs.distro() is None and "symlink loop, not followed" in _errors(fs)
    assert set(names(fs)) == {"zlib", "musl", "libcrypto3"}  # the other layers were read


def test_bombs_and_entry_counts_are_capped():
    limits = Limits(min_inflated=1 << 20, ratio=50, entries=100)
    bomb = L.compress(L.tar(("zeros", bytes(8 << 20))), "gzip")
    zbomb = L.compress(L.tar(("zeros", bytes(8 << 20))), "zstd")
    many = L.tar(*[(f"f{i}", b"") for i in range(150)])
    fs = walk(bomb, zbomb, many, limits=limits)
    errors = _errors(fs)
    assert sum("decompression bomb" in e for e in errors) == 2
    assert "more than 100 tar entries" in errors


def test_headers_with_signed_checksums_are_read():
    """Old tars summed the header as signed bytes; a name with high bytes tells the
    two sums apart, and both are accepted."""
    def signed(block: bytes) -> bytes:
        b = bytearray(block)
        b[148:156] = b" " * 8
        total = sum(x - 256 if x > 127 else x for x in b)
        b[148:156] = b"%06o\0 " % total
        return bytes(b)

    data = L.DPKG_STATUS
    name = "var/lib/dpkg/status.d/caf\u00e9".encode()
    unsigned = L.header(name, size=len(data))
    assert signed(unsigned) != unsigned
    pad = bytes(-len(data) % 512)
    for block in (unsigned, signed(unsigned)):
        fs = walk(block + data + pad + bytes(1024))
        assert fs.errors == [] and "libc6" in names(fs), fs.errors


class Zeros:
    """A plain layer of one 256 MiB file of zeros, made as it is read."""

    def __init__(self, size: int) -> None:
        self.parts = [L.header(b"big", size=size)]
        self.left = size + (-size % 512) + 1024  # data, padding, end of archive

    def read(self, n: int) -> bytes:
        if self.parts:
            return self.parts.pop()
        take = min(n, self.left)
        self.left -= take
        return bytes(take)


def test_a_large_layer_passes_in_bounded_memory():
    size = 256 << 20
    tracemalloc.start()
    try:
        fs = Rootfs(Limits())
        inflated = Inflated(Zeros(size), Limits().inflated(size))
        fs.layer(TarReader(inflated, Limits()), "big")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fs.errors == [] and inflated.size >= size
    assert peak < 8 << 20, f"peak {peak} bytes for a {size}-byte layer"


class Packed:
    """`Zeros` compressed as it is read (gzip or zstd): the compressed stream is never
    whole either."""

    def __init__(self, plain: Zeros, how: str) -> None:
        self.plain = plain
        self.z = zlib.compressobj(1, zlib.DEFLATED, 31) if how == "gzip" \
            else zstandard.ZstdCompressor(level=1).compressobj()
        self.out = b""
        self.done = False

    def read(self, n: int) -> bytes:
        while not self.out and not self.done:
            chunk = self.plain.read(1 << 20)
            self.out = self.z.compress(chunk) if chunk else self.z.flush()
            self.done = not chunk
        out, self.out = self.out[:n], self.out[n:]
        return out


@pytest.mark.parametrize("how", ["gzip", "zstd"])
def test_a_large_compressed_layer_passes_in_bounded_memory(how):
    """64 MiB inflated from a few hundred KB: the decompressors give a step at a time."""
    size = 64 << 20
    tracemalloc.start()
    try:
        fs = Rootfs(Limits())
        inflated = Inflated(Packed(Zeros(size), how), Limits().inflated(size))
        fs.layer(TarReader(inflated, Limits()), "big")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fs.errors == [] and inflated.size >= size and inflated.compression == how
    assert peak < 8 << 20, f"peak {peak} bytes for a {size}-byte {how} layer"


async def test_a_blob_that_fails_midway_is_a_layer_error():
    """The worker thread reads the loop's stream; the store's error becomes the layer's."""
    import asyncio
    import threading

    from registry.scan.source import LoopReader

    class Gone(Exception):  # not an OSError: whatever the store raises
        pass

    async def chunks():
        yield L.tar(("lib/apk/db/installed", L.APK_INSTALLED))[:1024]
        raise Gone("blobs/sha256/ab/ab... vanished")

    fs = Rootfs(Limits())
    reader = LoopReader(chunks(), asyncio.get_running_loop(), threading.Event())

    def work() -> None:
        fs.layer(TarReader(Inflated(reader, 1 << 20), Limits()), "gone")

    await asyncio.to_thread(work)
    await reader.close()
    assert [e.message for e in fs.errors] == \
        ["blob unreadable: Gone: blobs/sha256/ab/ab... vanished"]
