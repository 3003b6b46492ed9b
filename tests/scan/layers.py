"""Layers built by the tests with tarfile: small trees of known package databases,
compressed as asked, and hostile tar streams written byte by byte."""

from __future__ import annotations

import gzip
import io
import sqlite3
import struct
import tarfile

import zstandard

DPKG_STATUS = b"""Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library
 a continuation line: Package: not-a-package

Package: removed-one
Status: deinstall ok config-files
Version: 1.0

Package: curl
Status: install ok installed
Architecture: amd64
Version: 7.88.1-10+deb12u5
"""

APK_INSTALLED = b"""C:Q1abc=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
o:musl

P:libcrypto3
V:3.1.4-r5
A:x86_64
o:openssl
"""

DEBIAN_OS_RELEASE = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n' \
    b'VERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n'
ALPINE_OS_RELEASE = b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\n'

METADATA = b"Metadata-Version: 2.1\nName: Requests_OAuth\nVersion: 2.31.0\n\nName: not-this\n"
PKG_INFO = b"Metadata-Version: 1.1\nName: six\nVersion: 1.16.0\n"
SPEC_JSON = (b'{"spec": {"_meta": {"version": 4}, "nodes": [{"name": "zlib", "version": '
             b'"1.3.1", "arch": {"platform": "linux", "target": {"name": "x86_64_v3"}}, '
             b'"hash": "abcdefghijklmnopqrstuvwxyz234567"}, {"name": "gmake", '
             b'"version": "4.4", "hash": "b"}]}}')
PRIVATE_KEY = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n" \
    b"-----END OPENSSH PRIVATE KEY-----\n"


def tar(*members: tuple) -> bytes:
    """A tar of (name, data) files, (name, None) directories, (name, "->", target)
    symlinks, (name, "=>", target) hard links, (name, data, mode) files of a mode."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for m in members:
            info = tarfile.TarInfo(m[0])
            if m[1] is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            elif m[1] in ("->", "=>"):
                info.type = tarfile.SYMTYPE if m[1] == "->" else tarfile.LNKTYPE
                info.linkname = m[2]
                tf.addfile(info)
            else:
                info.size = len(m[1])
                info.mode = m[2] if len(m) > 2 else 0o644
                tf.addfile(info, io.BytesIO(m[1]))
    return out.getvalue()


def compress(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data, 1)
    if how == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


def rpm_header(tags: dict[int, str | int]) -> bytes:
    """An rpm header blob in the format rpmdb.sqlite's Packages table holds (the one
    registry/scan/rpmdb.py reads, as go-rpmdb does): index entries, then data."""
    index, data = b"", b""
    for tag, value in tags.items():
        if isinstance(value, int):
            data += b"\0" * (-len(data) % 4)
            index += struct.pack(">iiii", tag, 4, len(data), 1)
            data += struct.pack(">i", value)
        else:
            index += struct.pack(">iiii", tag, 6, len(data), 1)
            data += value.encode() + b"\0"
    return struct.pack(">ii", len(tags), len(data)) + index + data


def rpmdb_sqlite(path: str) -> bytes:
    """A small rpmdb.sqlite, made here with sqlite3 in rpm's schema for Packages."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB "
               "NOT NULL)")
    for tags in ({1000: "openssl-libs", 1001: "3.0.7", 1002: "25.el9", 1003: 1,
                  1022: "x86_64", 1044: "openssl-3.0.7-25.el9.src.rpm"},
                 {1000: "bash", 1001: "5.1.8", 1002: "6.el9", 1022: "x86_64",
                  1044: "bash-5.1.8-6.el9.src.rpm"},
                 {1000: "gpg-pubkey", 1001: "fd431d51", 1002: "4ae0493b"}):
        db.execute("INSERT INTO Packages (blob) VALUES (?)", (rpm_header(tags),))
    db.commit()
    db.close()
    with open(path, "rb") as fh:
        return fh.read()


def header(name: bytes, size: int = 0, kind: bytes = b"0", mode: int = 0o644,
           link: bytes = b"") -> bytes:
    """One raw ustar header block, its checksum right (a hostile size or type is
    written as given)."""
    block = bytearray(512)
    block[0:len(name[:100])] = name[:100]
    block[100:108] = b"%07o\0" % mode
    block[108:116] = b"0000000\0"
    block[116:124] = b"0000000\0"
    block[124:136] = b"%011o\0" % size
    block[136:148] = b"00000000000\0"
    block[156:157] = kind
    block[157:157 + len(link)] = link
    block[257:265] = b"ustar\x0000"
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)
