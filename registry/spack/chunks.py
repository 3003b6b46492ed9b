"""spack's database documents kept rendered, in chunks by hash prefix.

The database spack reads (`Database._write_to_file` with the build cache's
fields) is one JSON object whose `installs` are the DAG nodes in hash order:

    {"database":{"version":"8","installs":{"<hash>":{"spec":...,"ref_count":N,
    "in_buildcache":true},...}}}

A node's entry changes when the node comes or goes, when an edge to it comes
or goes (its ref_count), or when a record of its hash does (in_buildcache).
The entries are kept rendered per chunk, the nodes whose hashes share their
first CHUNK_CHARS characters (spack's hashes are base32: 1,024 chunks), so a
push marks the chunks of the few nodes it touched and only those are
rendered again; the document is the concatenation of the chunks in order,
the same bytes as rendering every node at once, read back a page of chunks at
a time to hash it and to store it. The tables live in the state database
(statedb.py) and every function here runs in its thread.

- `chunks`: per (cache, format, prefix), the entries of that prefix's nodes,
  joined by commas (no row for a prefix without nodes);
- `dirty`: the (cache, format, prefix) whose entries changed since rendered.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable

# Characters of a node's hash that name its chunk.
CHUNK_CHARS = 2
PAGE_BYTES = 4 << 20  # chunk bytes read per round trip when streaming a document

SCHEMA = [
    """CREATE TABLE chunks (cache TEXT NOT NULL, fmt INTEGER NOT NULL, prefix TEXT NOT NULL,
       body BLOB NOT NULL, PRIMARY KEY (cache, fmt, prefix))""",
    """CREATE TABLE dirty (cache TEXT NOT NULL, fmt INTEGER NOT NULL, prefix TEXT NOT NULL,
       PRIMARY KEY (cache, fmt, prefix))""",
]

Dirty = set[tuple[int, str]]  # (format, prefix) marked in one transaction


def key(h: str) -> str:
    """The chunk of the node of hash `h`."""
    return h[:CHUNK_CHARS]


def mark(conn: sqlite3.Connection, cache: str, dirty: Dirty) -> None:
    """Note chunks whose entries changed (part of the caller's transaction)."""
    conn.executemany("INSERT OR IGNORE INTO dirty VALUES (?, ?, ?)",
                     [(cache, fmt, prefix) for fmt, prefix in dirty])


def header(version: str) -> bytes:
    return f'{{"database":{{"version":"{version}","installs":{{'.encode()


FOOTER = b"}}}"

# Hashes are base32 ([a-z2-7]: specs.HASH_RE), so every hash of prefix p is in
# [p, p + "~"): a range the nodes' primary key answers.
_ENTRIES = (
    "SELECT n.hash, n.fragment,"
    " (SELECT count(*) FROM edges e WHERE e.cache = n.cache AND e.fmt = n.fmt"
    "  AND e.child = n.hash),"
    " EXISTS (SELECT 1 FROM records r WHERE r.cache = n.cache AND r.hash = n.hash"
    "  AND r.fmt = n.fmt AND r.doc IS NOT NULL)"
    " FROM nodes n WHERE n.cache = ? AND n.fmt = ? AND n.hash >= ? AND n.hash < ?"
    " ORDER BY n.hash")


def _render_chunk(conn: sqlite3.Connection, cache: str, fmt: int, prefix: str) -> bytes:
    parts = [f'"{h}":{{"spec":{fragment},"ref_count":{refs},'
             f'"in_buildcache":{"true" if in_cache else "false"}}}'
             for h, fragment, refs, in_cache
             in conn.execute(_ENTRIES, (cache, fmt, prefix, prefix + "~"))]
    return ",".join(parts).encode()


def refresh(conn: sqlite3.Connection, cache: str, fmt: int) -> int:
    """Render again the chunks marked dirty; how many."""
    prefixes = [p for (p,) in conn.execute(
        "SELECT prefix FROM dirty WHERE cache = ? AND fmt = ?", (cache, fmt))]
    if not prefixes:
        return 0
    conn.execute("BEGIN")
    try:
        for prefix in prefixes:
            body = _render_chunk(conn, cache, fmt, prefix)
            if body:
                conn.execute("INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?)",
                             (cache, fmt, prefix, body))
            else:
                conn.execute("DELETE FROM chunks WHERE cache = ? AND fmt = ? AND prefix = ?",
                             (cache, fmt, prefix))
        conn.execute("DELETE FROM dirty WHERE cache = ? AND fmt = ?", (cache, fmt))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(prefixes)


def _bodies(conn: sqlite3.Connection, cache: str, fmt: int,
            after: str = "") -> Iterable[tuple[str, bytes]]:
    return conn.execute("SELECT prefix, body FROM chunks WHERE cache = ? AND fmt = ?"
                        " AND prefix > ? ORDER BY prefix", (cache, fmt, after))


def digest(conn: sqlite3.Connection, cache: str, fmt: int, version: str) -> tuple[str, int]:
    """Render the dirty chunks, then the sha256 and size of the whole document."""
    refresh(conn, cache, fmt)
    hasher = hashlib.sha256()
    head = header(version)
    hasher.update(head)
    size = len(head) + len(FOOTER)
    first = True
    for _, body in _bodies(conn, cache, fmt):
        if not first:
            hasher.update(b",")
            size += 1
        first = False
        hasher.update(body)
        size += len(body)
    hasher.update(FOOTER)
    return hasher.hexdigest(), size


def page(conn: sqlite3.Connection, cache: str, fmt: int, version: str,
         after: str | None) -> tuple[list[bytes], str | None]:
    """The document's bytes from the chunk after `after` (None: from the start),
    about PAGE_BYTES of them, and where to go on from (None: that was the end).
    Chunks are only rewritten by `refresh`, which the caller keeps from running
    while it reads a document page by page (see service.SpackCaches.index)."""
    out: list[bytes] = [header(version)] if after is None else []
    last = after or ""
    got = 0
    for prefix, body in _bodies(conn, cache, fmt, last):
        if last:  # not the document's first chunk
            out.append(b",")
        out.append(body)
        last = prefix
        got += len(body)
        if got >= PAGE_BYTES:
            return out, last
    out.append(FOOTER)
    return out, None


def drop(conn: sqlite3.Connection, cache: str) -> None:
    for table in ("chunks", "dirty"):
        conn.execute(f"DELETE FROM {table} WHERE cache = ?", (cache,))
