"""Every cache's records and index nodes, in one private SQLite file per process.

The journal in the store is the truth; this is what a process derives from it
(see state.py), kept on local disk rather than in memory so that a worker's
memory does not grow with the number of specs. The database is SQLite's
private temporary one (filename ""): on disk, deleted when the connection
closes, its page cache bounded (CACHE_KB). All SQL runs in one thread per
process, off the event loop.

- `records`: per (cache, spec hash), the journal entry that decided it last and
  the record as JSON (NULL once removed), with its format, OCI manifest digest
  and the hashes of its DAG's nodes.
- `nodes`: per (cache, format), the union of the DAG nodes of the live records,
  each node's JSON written once and held by a count of records.
- `edges`: (child, parent) for every node in the union depending on another:
  a node's ref_count in spack's database is the number of its edges.

Every change marks the chunks of the database spack reads that it touched
(chunks.py keeps that document rendered by hash prefix): the nodes that came
or went, the nodes whose dependents did, the spec whose record did.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from registry.spack import chunks
from registry.spack.chunks import Dirty
from registry.spack.specs import SpecRecord

T = TypeVar("T")
CACHE_KB = 4096  # SQLite's page cache: the memory this costs, whatever the specs
PAGE = 500  # rows per round trip when reading many

_SCHEMA = [
    """CREATE TABLE records (cache TEXT NOT NULL, hash TEXT NOT NULL, name TEXT NOT NULL,
       fmt INTEGER, oci TEXT, members TEXT, doc BLOB, PRIMARY KEY (cache, hash))""",
    "CREATE INDEX records_oci ON records (cache, oci) WHERE oci IS NOT NULL",
    """CREATE TABLE nodes (cache TEXT NOT NULL, fmt INTEGER NOT NULL, hash TEXT NOT NULL,
       fragment TEXT NOT NULL, deps TEXT NOT NULL, holders INTEGER NOT NULL,
       PRIMARY KEY (cache, fmt, hash))""",
    """CREATE TABLE edges (cache TEXT NOT NULL, fmt INTEGER NOT NULL, child TEXT NOT NULL,
       parent TEXT NOT NULL, PRIMARY KEY (cache, fmt, child, parent))""",
    *chunks.SCHEMA,
]


def _dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"))


class StateDB:
    """The SQLite file of one process (see the module docstring)."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="spack-state")
        self._conn: sqlite3.Connection | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` in the database's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._call, fn,
                                                                args)

    def _call(self, fn: Callable[..., T], args: tuple) -> T:
        if self._conn is None:
            conn = sqlite3.connect("", check_same_thread=False, isolation_level=None)
            conn.execute(f"PRAGMA cache_size = -{CACHE_KB}")
            conn.execute("PRAGMA journal_mode = OFF")  # derived: rebuilt, never recovered
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute("PRAGMA temp_store = FILE")
            for sql in _SCHEMA:
                conn.execute(sql)
            self._conn = conn
        return fn(self._conn, *args)

# -- functions run in the database's thread ---------------------------------------

Change = tuple[bool, int | None, int | None]  # changed, format left, format arrived


def apply_many(conn: sqlite3.Connection, cache: str,
               entries: Iterable[tuple[str, str, SpecRecord | None]]) -> list[Change]:
    """Apply journal entries (name, hash, record or None for a removal) in one
    transaction; for each, whether it changed the state and the formats of the
    record it replaced and of the one it brought."""
    out = []
    dirty: Dirty = set()
    conn.execute("BEGIN")
    try:
        for name, h, record in entries:
            out.append(_apply(conn, cache, name, h, record, dirty))
        chunks.mark(conn, cache, dirty)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return out


def _apply(conn: sqlite3.Connection, cache: str, name: str, h: str,
           record: SpecRecord | None, dirty: Dirty) -> Change:
    row = conn.execute("SELECT name, fmt, members FROM records WHERE cache = ? AND hash = ?",
                       (cache, h)).fetchone()
    if row is not None and row[0] >= name:
        return False, None, None  # a later entry already decided this spec
    old_fmt = row[1] if row is not None and row[2] is not None else None
    if old_fmt is not None:
        dirty.add((old_fmt, chunks.key(h)))  # its in_buildcache
        for member in row[2].split(","):
            _release(conn, cache, old_fmt, member, dirty)
    new_fmt = None
    if record is not None:
        new_fmt = record.spec.format
        dirty.add((new_fmt, chunks.key(h)))
        for node in record.spec.nodes:
            _hold(conn, cache, new_fmt, node.hash, node.raw, node.deps, dirty)
        conn.execute(
            "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?, ?, ?)",
            (cache, h, name, new_fmt, str(record.oci) if record.oci else None,
             ",".join(n.hash for n in record.spec.nodes), _dumps(record.to_json()).encode()))
    else:
        conn.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?, NULL, NULL, NULL, NULL)",
                     (cache, h, name))
    return old_fmt is not None or new_fmt is not None, old_fmt, new_fmt


def _hold(conn: sqlite3.Connection, cache: str, fmt: int, h: str, raw: dict,
          deps: tuple[str, ...], dirty: Dirty) -> None:
    cur = conn.execute("UPDATE nodes SET holders = holders + 1 "
                       "WHERE cache = ? AND fmt = ? AND hash = ?", (cache, fmt, h))
    if cur.rowcount:
        return
    # A new node, and a new dependent of each of its dependencies (their ref_count).
    dirty.update((fmt, chunks.key(x)) for x in (h, *deps))
    conn.execute("INSERT INTO nodes VALUES (?, ?, ?, ?, ?, 1)",
                 (cache, fmt, h, _dumps(raw), ",".join(sorted(set(deps)))))
    conn.executemany("INSERT OR IGNORE INTO edges VALUES (?, ?, ?, ?)",
                     [(cache, fmt, dep, h) for dep in set(deps)])


def _release(conn: sqlite3.Connection, cache: str, fmt: int, h: str,
             dirty: Dirty) -> None:
    row = conn.execute("SELECT holders, deps FROM nodes WHERE cache = ? AND fmt = ? AND hash = ?",
                       (cache, fmt, h)).fetchone()
    if row is None:
        return
    if row[0] > 1:
        conn.execute("UPDATE nodes SET holders = holders - 1 "
                     "WHERE cache = ? AND fmt = ? AND hash = ?", (cache, fmt, h))
        return
    conn.execute("DELETE FROM nodes WHERE cache = ? AND fmt = ? AND hash = ?", (cache, fmt, h))
    dirty.add((fmt, chunks.key(h)))
    if row[1]:
        dirty.update((fmt, chunks.key(dep)) for dep in row[1].split(","))
        conn.executemany("DELETE FROM edges WHERE cache = ? AND fmt = ? AND child = ? "
                         "AND parent = ?", [(cache, fmt, dep, h) for dep in row[1].split(",")])


def record(conn: sqlite3.Connection, cache: str, h: str) -> bytes | None:
    row = conn.execute("SELECT doc FROM records WHERE cache = ? AND hash = ?",
                       (cache, h)).fetchone()
    return row[0] if row is not None else None


def records_of(conn: sqlite3.Connection, cache: str,
               hashes: list[str]) -> list[tuple[str, bytes]]:
    """The live records of `cache` among `hashes` (at most PAGE): (hash, JSON)."""
    marks = ",".join("?" * len(hashes))
    return conn.execute(f"SELECT hash, doc FROM records WHERE cache = ? AND hash IN ({marks}) "
                        "AND doc IS NOT NULL", (cache, *hashes)).fetchall()


def live_page(conn: sqlite3.Connection, cache: str, after: str,
              limit: int = PAGE) -> list[tuple[str, bytes]]:
    """Live records after hash `after`, by hash: (hash, JSON)."""
    return conn.execute("SELECT hash, doc FROM records WHERE cache = ? AND hash > ? "
                        "AND doc IS NOT NULL ORDER BY hash LIMIT ?",
                        (cache, after, limit)).fetchall()


def entries_page(conn: sqlite3.Connection, cache: str, after: str,
                 limit: int = PAGE) -> list[tuple[str, str, bytes | None]]:
    """Every record, removals included, after hash `after`: (hash, entry, JSON or None)."""
    return conn.execute("SELECT hash, name, doc FROM records WHERE cache = ? AND hash > ? "
                        "ORDER BY hash LIMIT ?", (cache, after, limit)).fetchall()


def by_oci(conn: sqlite3.Connection, cache: str, digest: str) -> list[str]:
    return [h for (h,) in conn.execute(
        "SELECT hash FROM records WHERE cache = ? AND oci = ? AND doc IS NOT NULL",
        (cache, digest))]


def live_formats(conn: sqlite3.Connection, cache: str) -> dict[int, int]:
    return dict(conn.execute("SELECT fmt, count(*) FROM records WHERE cache = ? "
                             "AND doc IS NOT NULL GROUP BY fmt", (cache,)).fetchall())


def drop(conn: sqlite3.Connection, cache: str) -> None:
    for table in ("records", "nodes", "edges"):
        conn.execute(f"DELETE FROM {table} WHERE cache = ?", (cache,))
    chunks.drop(conn, cache)
