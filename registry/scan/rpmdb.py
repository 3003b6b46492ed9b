"""rpm's SQLite database (`var/lib/rpm/rpmdb.sqlite`, rpm >= 4.16): the `Packages`
table holds one header blob per package, in rpm's header format as go-rpmdb
(Trivy's reader) decodes it:

    int32 il (index entries), int32 dl (data bytes),     big-endian
    il x { int32 tag, int32 type, int32 offset, int32 count }
    dl bytes of data; strings NUL-terminated

Only NAME (1000), VERSION (1001), RELEASE (1002), EPOCH (1003, int32), ARCH
(1022) and SOURCERPM (1044) are read; region tags and signatures are not checked.
The file is opened read-only and immutable; older Berkeley DB and NDB databases
are not read (an error says so).
"""

from __future__ import annotations

import sqlite3
import struct

from registry.scan.inventory import RPM, Package

NAME, VERSION, RELEASE, EPOCH, ARCH, SOURCERPM = 1000, 1001, 1002, 1003, 1022, 1044
INT32, STRING, STRING_ARRAY, I18NSTRING = 4, 6, 8, 9
MAX_ROWS = 100_000


def header(blob: bytes) -> dict[int, str | int]:
    """The tags this reader knows, from one header blob."""
    if len(blob) < 8:
        raise ValueError("rpm header too short")
    il, dl = struct.unpack(">ii", blob[:8])
    start = 8 + 16 * il
    if il < 0 or dl < 0 or start + dl > len(blob):
        raise ValueError("rpm header sizes out of range")
    data = blob[start:start + dl]
    out: dict[int, str | int] = {}
    for i in range(il):
        tag, kind, offset, count = struct.unpack(">iiii", blob[8 + 16 * i:24 + 16 * i])
        if tag not in (NAME, VERSION, RELEASE, EPOCH, ARCH, SOURCERPM):
            continue
        if not 0 <= offset < len(data):
            raise ValueError(f"rpm header tag {tag} outside the data")
        if kind == INT32 and count >= 1 and offset + 4 <= len(data):
            out[tag] = struct.unpack(">i", data[offset:offset + 4])[0]
        elif kind in (STRING, STRING_ARRAY, I18NSTRING):
            end = data.find(b"\0", offset)
            out[tag] = data[offset:end if end >= 0 else len(data)].decode("utf-8", "replace")
    return out


def packages(path: str) -> list[Package]:
    """Every package of the rpmdb.sqlite at `path`."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as exc:
        raise ValueError(f"not an SQLite rpm database: {exc}") from None
    out = []
    try:
        rows = db.execute("SELECT blob FROM Packages LIMIT ?", (MAX_ROWS,))
        for (blob,) in rows:
            if not isinstance(blob, bytes):
                continue
            tags = header(blob)
            name, version = tags.get(NAME), tags.get(VERSION)
            if not isinstance(name, str) or not isinstance(version, str):
                continue
            if name == "gpg-pubkey":  # imported signing keys, not packages
                continue
            release, epoch = tags.get(RELEASE, ""), tags.get(EPOCH)
            full = f"{version}-{release}" if release else version
            if isinstance(epoch, int) and epoch:
                full = f"{epoch}:{full}"
            source = str(tags.get(SOURCERPM, ""))
            if source.endswith(".src.rpm"):  # name-version-release.src.rpm
                source = source[:-len(".src.rpm")].rsplit("-", 2)[0]
            extra = {"epoch": str(epoch)} if isinstance(epoch, int) else {}
            out.append(Package(RPM, name, full, source or name, str(tags.get(ARCH, "")),
                               extra=extra))
    except sqlite3.Error as exc:
        raise ValueError(f"rpm database unreadable: {exc}") from None
    finally:
        db.close()
    return out
