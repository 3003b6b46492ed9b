"""A tar reader for hostile streams: one pass, bounded headers, nothing followed.

Python's tarfile reads a pax header or a GNU long name of any declared size into
memory; this reader refuses one beyond `Limits.pax_header` / `long_name`, counts
entries, checks each header's checksum, and never resolves a link. It reads
ustar, pax (`x`; `g` is skipped) and GNU (`L`, `K`, base-256 sizes) headers. An
entry's content is read only when asked (`read`, capped), else skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from registry.scan.decompress import Readable
from registry.scan.limits import LayerError, Limits

BLOCK = 512
STEP = 1 << 20
REGULAR, HARDLINK, SYMLINK, DIRECTORY = "0", "1", "2", "5"
_LOW = bytes(range(128))


@dataclass(slots=True)
class Entry:
    """One member: its name as written (not normalized), type flag, size, mode."""

    name: str
    type: str
    size: int
    mode: int
    linkname: str

    @property
    def is_file(self) -> bool:
        return self.type in (REGULAR, "7", "S")


def _number(field: bytes, what: str) -> int:
    if field and field[0] & 0x80:  # GNU base-256, big-endian (the sign bit ignored)
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.split(b"\0", 1)[0].strip(b" \0")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise LayerError(f"corrupt tar header: {what} {text[:20]!r}") from None


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            raise LayerError("corrupt pax header")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise LayerError("corrupt pax header") from None
        if length <= 0 or pos + length > len(data):
            raise LayerError("corrupt pax header")
        record = data[space + 1:pos + length - 1]
        key, _, value = record.partition(b"=")
        out[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


class TarReader:
    """Iterate the entries of the tar stream `src`; `read(cap)` the current one's
    content (None when it is larger than `cap`)."""

    def __init__(self, src: Readable, limits: Limits) -> None:
        self._src = src
        self._limits = limits
        self._left = 0  # bytes of the current entry's data and padding not yet read
        self._size = 0
        self.count = 0

    def _exact(self, n: int) -> bytes:
        parts = []
        while n > 0:
            chunk = self._src.read(min(n, STEP))
            if not chunk:
                raise LayerError("truncated tar stream")
            parts.append(chunk)
            n -= len(chunk)
        return b"".join(parts)

    def _skip(self, n: int) -> None:
        while n > 0:
            chunk = self._src.read(min(n, STEP))
            if not chunk:
                raise LayerError("truncated tar stream")
            n -= len(chunk)

    @staticmethod
    def _padded(size: int) -> int:
        return (size + BLOCK - 1) // BLOCK * BLOCK

    def read(self, cap: int, cut: bool = False) -> bytes | None:
        """The current entry's content; when it is larger than `cap`, its first `cap`
        bytes if `cut`, else None. The rest is skipped. Once per entry."""
        if self._left != self._padded(self._size):
            return None
        if self._size > cap and not cut:
            return None
        take = min(cap, self._size)
        data = self._exact(take)
        self._skip(self._left - take)
        self._left = 0
        return data

    def chunks(self) -> Iterator[bytes]:
        """The current entry's content a step at a time (once per entry)."""
        left = self._size if self._left == self._padded(self._size) else 0
        while left > 0:
            chunk = self._src.read(min(left, STEP))
            if not chunk:
                raise LayerError("truncated tar stream")
            left -= len(chunk)
            self._left -= len(chunk)
            yield chunk

    def _header(self) -> bytes | None:
        block = self._src.read(BLOCK)
        while 0 < len(block) < BLOCK and (more := self._src.read(BLOCK - len(block))):
            block += more
        if not block:
            raise LayerError("truncated tar stream: no end-of-archive blocks")
        if len(block) < BLOCK:
            raise LayerError("truncated tar stream")
        if block == bytes(BLOCK):
            return None  # end of archive (what follows is padding)
        stored = _number(block[148:156], "checksum")
        unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
        # Old tars summed signed bytes: each byte above 127 counts 256 less. Only
        # when the usual sum fails (summing bytes in Python cost a tenth of a scan).
        if stored != unsigned and stored != unsigned - 256 * (
                len(block[:148].translate(None, _LOW)) + len(block[156:].translate(None, _LOW))):
            raise LayerError("corrupt tar header (checksum mismatch)")
        return block

    def _special(self, size: int, cap: int, what: str) -> bytes:
        if size > cap:
            raise LayerError(f"{what} of {size} bytes exceeds the limit of {cap}")
        data = self._exact(size)
        self._skip(self._padded(size) - size)
        return data

    def __iter__(self) -> Iterator[Entry]:
        pax: dict[str, str] = {}
        long_name = long_link = None
        while True:
            if self._left:
                self._skip(self._left)
                self._left = 0
            block = self._header()
            if block is None:
                return
            self.count += 1
            if self.count > self._limits.entries:
                raise LayerError(f"more than {self._limits.entries} tar entries")
            kind = chr(block[156]) if block[156] else REGULAR
            size = _number(block[124:136], "size")
            if kind == "x":
                pax = _pax(self._special(size, self._limits.pax_header, "pax header"))
                continue
            if kind == "g":
                self._special(size, self._limits.pax_header, "pax global header")
                continue
            if kind in ("L", "K"):
                text = _text(self._special(size, self._limits.long_name, "GNU long name"))
                if kind == "L":
                    long_name = text
                else:
                    long_link = text
                continue
            name = _text(block[0:100])
            if block[257:262] == b"ustar" and block[345] and block[257:263] == b"ustar\x00":
                name = f"{_text(block[345:500])}/{name}"
            name = pax.get("path", long_name or name)
            link = pax.get("linkpath", long_link or _text(block[157:257]))
            if "size" in pax:
                try:
                    size = int(pax["size"])
                except ValueError:
                    raise LayerError("corrupt pax header: size") from None
            if kind == REGULAR and name.endswith("/"):
                kind = DIRECTORY  # a pre-POSIX tar's directory (as tarfile reads it)
            mode = _number(block[100:108], "mode")
            pax, long_name, long_link = {}, None, None
            if kind in (HARDLINK, SYMLINK, DIRECTORY, "3", "4", "6"):
                size = 0  # no data follows these, whatever the size field says
            self._size = size
            self._left = self._padded(size)
            yield Entry(name, kind, size, mode, link)
