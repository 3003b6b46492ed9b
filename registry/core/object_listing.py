"""ListObjectsV2 over the entries of a bucket, by walking the driver.

`paths.encode_key` preserves order and prefixes, so the keys of a bucket in S3
order are `Driver.walk(objects/<bucket>)` in path order, and the keys with a
prefix are one contiguous run of it, found below the deepest directory the
encoded prefix names. A listing therefore walks from just before its first
key (or just after `start-after` or the continuation token) and stops at the
first path past the prefix. With a delimiter, each common prefix is reported
once and the walk restarts past everything below it (`_past`), so a page
never reads a rolled-up subtree. The entries of the keys on the page are then
read (a few at a time) for their size, ETag and Last-Modified.

A continuation token is the last key or common prefix of the page, versioned
and base64url-encoded: opaque to clients, validated when it comes back, and
valid on any process or replica (it names a position, not server state).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib

from registry.core.errors import ObjectError
from registry.core.objects import ObjectStore, check_bucket
from registry.core.types import ListPage, ObjectInfo
from registry.storage import paths
from registry.storage.driver import MAX_COMPONENT

MAX_KEYS = 1000
# Entries read at once while filling a page.
READ_CONCURRENCY = 16
_TOKEN_VERSION = "1"
# Sorts after every character of the path grammar.
_AFTER_ALL = "\x7f"


def make_token(last: str, is_prefix: bool) -> str:
    raw = f"{_TOKEN_VERSION}{'p' if is_prefix else 'k'}{last}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_token(token: str) -> tuple[str, bool]:
    """(last key or common prefix, is it a prefix); InvalidArgument otherwise."""
    bad = ObjectError("InvalidArgument", "the continuation token provided is incorrect")
    if len(token) > 4096:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad from None
    if len(raw) < 3 or raw[0] != _TOKEN_VERSION or raw[1] not in "kp" or "\x00" in raw:
        raise bad
    last = raw[2:]
    if len(last.encode()) > paths.MAX_KEY_BYTES:
        raise bad
    return last, raw[1] == "p"


def _past_key(base: str, key: str) -> str:
    """A walk position just after the entry of `key` (valid or not)."""
    return f"{base}/{paths.encode_prefix(key)}{paths.LEAF_END}"


def _past(base: str, prefix: str) -> str:
    """A walk position after every entry whose key starts with `prefix`."""
    return f"{base}/{paths.encode_prefix(prefix)}{_AFTER_ALL}"


def _before(path: str) -> str:
    """A walk position just before every path that starts with `path`."""
    return path[:-1] + chr(ord(path[-1]) - 1) + _AFTER_ALL


async def list_objects(store: ObjectStore, bucket: str, prefix: str = "", delimiter: str = "",
                       max_keys: int = MAX_KEYS, start_after: str = "",
                       token: str | None = None) -> ListPage:
    """One page of the bucket's keys (see the module docstring); NoSuchBucket
    for a bucket that does not exist."""
    check_bucket(bucket)
    page = ListPage()
    after = parse_token(token) if token else None
    base = paths.bucket_dir(bucket)
    if max_keys <= 0 or len(prefix.encode(errors="replace")) > paths.MAX_KEY_BYTES:
        return await _checked(store, bucket, page)  # nothing asked for, or no key matches
    try:
        want = f"{base}/{paths.encode_prefix(prefix)}" if prefix else f"{base}/"
        position = _before(want) if prefix and not want.endswith("/") else ""
        if start_after:
            position = max(position, _past_key(base, start_after))
        if after is not None:
            last, is_prefix = after
            position = max(position, _past(base, last) if is_prefix else _past_key(base, last))
    except paths.InvalidKey:  # not UTF-8, or longer than any key
        raise ObjectError("InvalidArgument", "invalid prefix or start-after") from None
    root = want.rpartition("/")[0]
    if any(len(c) > MAX_COMPONENT for c in root.split("/")):
        return await _checked(store, bucket, page)  # no stored key has such a segment

    found: list[tuple[str, str | None]] = []  # (key or common prefix, entry path or None)
    while len(found) <= max_keys:
        restart = None
        walk = store.driver.walk(root, position)
        async with contextlib.aclosing(walk):  # type: ignore[type-var]
            async for info in walk:
                if not info.path.startswith(want):
                    if info.path > want:
                        break
                    continue
                try:
                    key = paths.object_key(bucket, info.path)
                except paths.InvalidKey:
                    continue  # not an entry (nothing else lives here; never fatal)
                cut = key.find(delimiter, len(prefix)) if delimiter else -1
                if cut >= 0:
                    common = key[:cut + len(delimiter)]
                    found.append((common, None))
                    restart = _past(base, common)
                    break
                found.append((key, info.path))
                if len(found) > max_keys:
                    break
        if restart is None:
            break
        position = restart

    if len(found) > max_keys:
        found = found[:max_keys]
        page.truncated = True
        last, entry = found[-1] if found else ("", None)
        page.next_token = make_token(last, entry is None) if found else None
    page.prefixes = [name for name, entry in found if entry is None]
    entries = [entry for _, entry in found if entry is not None]
    page.objects = [info for info in await _read_all(store, entries) if info is not None]
    if not found:
        return await _checked(store, bucket, page)
    return page


async def _checked(store: ObjectStore, bucket: str, page: ListPage) -> ListPage:
    """An empty page, or NoSuchBucket."""
    if not await store.bucket_exists(bucket):
        raise ObjectError("NoSuchBucket", "the specified bucket does not exist", 404)
    return page


async def _read_all(store: ObjectStore, entries: list[str]) -> list[ObjectInfo | None]:
    """The entries, read a few at a time (one deleted meanwhile reads as None)."""
    gate = asyncio.Semaphore(READ_CONCURRENCY)

    async def read(path: str) -> ObjectInfo | None:
        async with gate:
            return await store.read_entry(path)

    return list(await asyncio.gather(*(read(p) for p in entries)))
