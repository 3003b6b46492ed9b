"""Writing the bytes of an S3 object or part: streamed to a private path while hashed
on worker threads, checked against what the client said, then sealed or committed.

Nothing stays at the path unless every check passed: the caller publishes it
(core.objects) or records it (core.multipart) only afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from registry.core.errors import ObjectError
from registry.core.streaming import pump
from registry.core.types import Checks
from registry.storage.driver import Driver

log = logging.getLogger("registry.objects")

# S3's limit for one PUT and for one part.
MAX_OBJECT = 5 << 30


class Hashes:
    """MD5 (the ETag) and, when something will be checked against them, SHA-256
    and CRC32, fed together by the upload pump on worker threads."""

    def __init__(self, sha256: bool, crc32: bool = False) -> None:
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha256 = hashlib.sha256() if sha256 else None
        self.crc32 = 0 if crc32 else None

    def update(self, data: bytes) -> None:
        self.md5.update(data)
        if self.sha256 is not None:
            self.sha256.update(data)
        if self.crc32 is not None:
            self.crc32 = zlib.crc32(data, self.crc32)


def bad_digest(message: str) -> ObjectError:
    return ObjectError("BadDigest", message)


@dataclass(slots=True)
class Written:
    """Bytes streamed to a private path and checked against what the client said."""

    path: str
    size: int
    md5: bytes
    sha256: str | None = field(default=None)


async def stream_to(driver: Driver, path: str, chunks: AsyncIterator[bytes], checks: Checks,
                    want_sha256: bool, publish: bool) -> Written:
    """Stream `chunks` to `path`, hashing as they go, and check them; nothing
    stays at `path` unless every check passed. With `publish` the file is
    committed as one object, else sealed (the next step is a move)."""
    if checks.length is not None and checks.length > MAX_OBJECT:
        raise ObjectError("EntityTooLarge", "your proposed upload exceeds the maximum size")
    hashes = Hashes(want_sha256 or checks.sha256 is not None,
                    checks.want_crc32 or checks.crc32 is not None)
    writer = await driver.writer(path)
    try:
        size = await pump(chunks, writer, hashes)
        if checks.length is not None and size != checks.length:
            raise ObjectError("IncompleteBody",
                              "you did not provide the number of bytes specified")
        if size > MAX_OBJECT:
            raise ObjectError("EntityTooLarge", "your upload exceeds the maximum size")
        md5 = hashes.md5.digest()
        if checks.md5 is not None and checks.md5 != md5:
            raise bad_digest("the Content-MD5 you specified did not match what we received")
        sha = hashes.sha256.hexdigest() if hashes.sha256 is not None else None
        if checks.sha256 is not None and checks.sha256 != sha:
            raise ObjectError("XAmzContentSHA256Mismatch",
                              "the provided x-amz-content-sha256 does not match")
        if checks.crc32 is not None and hashes.crc32 is not None and checks.crc32 != \
                base64.b64encode(hashes.crc32.to_bytes(4, "big")).decode():
            raise bad_digest("the x-amz-checksum-crc32 you specified did not match")
        await (writer.commit() if publish else writer.seal())
    except BaseException:
        try:
            await writer.cancel()
        except Exception:  # the original failure is what the client needs to hear
            log.warning("could not drop the partial object at %s", path, exc_info=True)
        raise
    return Written(path, size, md5, sha)
