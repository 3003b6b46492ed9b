"""What an image made of a spack tarball needs to know of it, in one streamed
pass: its diff_id (the sha256 of the decompressed tar) and the install prefix it
unpacks to.

Spack's tarballs hold the prefix's path below `/` (`opt/spack/linux-zen3/zlib-1.3-
<hash>/...`), its `.spack/` metadata directory first after the parent directories
(binary_distribution.tarfile_of_spec_prefix): the prefix is the path before the
first `.spack/` entry. Only the first HEAD_MAX decompressed bytes are kept to find it.
"""

from __future__ import annotations

import asyncio
import io
import posixpath
import re
import tarfile
from collections import OrderedDict
from dataclasses import dataclass

from registry.core.grammar import Digest
from registry.core.protocols import Blobs
from registry.spack.gunzip import GunzipHasher

HEAD_MAX = 1 << 20
_SAFE = re.compile(r"/[^\x00-\x1f\x7f:=]{1,4095}")
MAX_MEMBERS = 4096
CACHED = 4096


@dataclass(frozen=True, slots=True)
class LayerFacts:
    """A tarball's diff_id, and its install prefix ("" when it has no `.spack/`)."""

    diff_id: Digest
    prefix: str


class _HeadHasher(GunzipHasher):
    def __init__(self, compressed_size: int) -> None:
        super().__init__(compressed_size)
        self.head = bytearray()

    def _take(self, out: bytes) -> None:
        super()._take(out)
        if len(self.head) < HEAD_MAX:
            self.head += out[:HEAD_MAX - len(self.head)]


def prefix_of(head: bytes) -> str:
    """The install prefix of a spack tarball from its first decompressed bytes."""
    try:
        with tarfile.open(fileobj=io.BytesIO(head), mode="r:") as tar:
            for n, member in enumerate(tar):
                parts = member.name.removeprefix("./").lstrip("/").split("/")
                if ".spack" in parts[1:]:
                    cut = parts.index(".spack", 1)
                    if ".." in parts[:cut]:
                        return ""
                    prefix = posixpath.normpath("/" + "/".join(parts[:cut]))
                    # It goes into PATH: no separators, no control characters.
                    return prefix if _SAFE.fullmatch(prefix) else ""
                if n >= MAX_MEMBERS:
                    break
    except (tarfile.TarError, EOFError, ValueError):
        pass  # the head ends inside a member, or this is not spack's layout
    return ""


class LayerFactsCache:
    """Facts of tarball blobs, computed once per digest (blobs never change)."""

    def __init__(self, blobs: Blobs) -> None:
        self.blobs = blobs
        self._known: OrderedDict[Digest, LayerFacts] = OrderedDict()

    async def facts(self, digest: Digest, size: int) -> LayerFacts:
        known = self._known.get(digest)
        if known is not None:
            self._known.move_to_end(digest)
            return known
        hasher = _HeadHasher(size)
        async for chunk in self.blobs.reader(digest):
            await asyncio.to_thread(hasher.update, chunk)
        diff_id = Digest("sha256", hasher.hexdigest())
        prefix = await asyncio.to_thread(prefix_of, bytes(hasher.head))
        facts = self._known[digest] = LayerFacts(diff_id, prefix)
        while len(self._known) > CACHED:
            self._known.popitem(last=False)
        return facts
