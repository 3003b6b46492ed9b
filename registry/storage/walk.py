"""The one tree walk behind `Driver.walk` for drivers that list a directory at a time.

Stores do not agree on listing order (SeaweedFS lists a directory's children
before its later siblings, AWS S3 in plain key order), so drivers do not pass
their store's order on: each directory is listed whole (paged by the driver),
sorted with directories keyed `name + "/"`, and walked depth first. That is the
byte order of full paths, S3's ListObjectsV2 order, on every driver. Only the
listings of the directories on the current branch are held in memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from registry.storage.driver import FileInfo

# (name, is_dir, size, mtime): one entry of a directory listing.
Entry = tuple[str, bool, int, float]


def sort_entries(entries: list[Entry]) -> list[Entry]:
    """Walk order within one directory: by name, a directory as `name/`."""
    entries.sort(key=lambda e: e[0] + "/" if e[1] else e[0])
    return entries


async def walk_tree(path: str, start_after: str,
                    scan: Callable[[str], Awaitable[list[Entry]]]) -> AsyncIterator[FileInfo]:
    """Every file below `path` after `start_after`, from `scan(dir)`, which lists
    one directory in walk order (empty if it is missing)."""
    stack = [(path, iter(await scan(path)))]
    while stack:
        prefix, entries = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        name, is_dir, size, mtime = entry
        rel = f"{prefix}/{name}" if prefix else name
        if is_dir:
            # Everything below rel sorts between "rel/" and "rel0" ('0' follows '/'):
            # a subtree wholly before start_after is not even listed.
            if start_after < rel + "0":
                stack.append((rel, iter(await scan(rel))))
        elif rel > start_after:
            yield FileInfo(rel, size, mtime, False)
