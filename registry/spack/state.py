"""One cache's records in memory, and the spack database documents made from them.

`CacheState` applies journal entries (last name wins per spec hash) and keeps,
per spec format, the union of the DAG nodes of every live record, with each
node's JSON written once and its dependents counted as they come and go. The
database spack reads (`index.json`, format v7 for spack 0.2x specs, v8 for
spack 1.x ones) is then a join of ready fragments: rendering it costs one
pass over strings, not a reparse of every spec, and a push only touches the
nodes of its own DAG.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from registry.spack.journal import WINDOW_NS, name_ns
from registry.spack.specs import Node, SpecRecord

# spack's database version for the spec format its records are written in.
DB_VERSION = {4: "7", 5: "8"}


@dataclass
class _Node:
    fragment: str  # json.dumps of the node as pushed
    deps: tuple[str, ...]
    holders: int = 0  # live records whose DAG contains this node
    dependents: int = 0  # nodes in the union that depend on this one


class NodeUnion:
    """The DAG nodes of the live records of one spec format, reference counted."""

    def __init__(self) -> None:
        self.nodes: dict[str, _Node] = {}
        self.roots: set[str] = set()
        # hash -> the nodes in the union depending on it (present or not yet)
        self.parents: dict[str, set[str]] = {}

    def add(self, record: SpecRecord) -> None:
        self.roots.add(record.hash)
        for node in record.spec.nodes:
            self._hold(node)

    def discard(self, record: SpecRecord) -> None:
        self.roots.discard(record.hash)
        for node in record.spec.nodes:
            self._release(node.hash)

    def _hold(self, node: Node) -> None:
        entry = self.nodes.get(node.hash)
        if entry is None:
            entry = self.nodes[node.hash] = _Node(
                json.dumps(node.raw, separators=(",", ":")), node.deps)
            for dep in set(node.deps):
                self.parents.setdefault(dep, set()).add(node.hash)
                if dep in self.nodes:
                    self.nodes[dep].dependents += 1
            entry.dependents = len(self.parents.get(node.hash, ()))
        entry.holders += 1

    def _release(self, h: str) -> None:
        entry = self.nodes.get(h)
        if entry is None:
            return
        entry.holders -= 1
        if entry.holders <= 0:
            del self.nodes[h]
            for dep in set(entry.deps):
                parents = self.parents.get(dep)
                if parents is not None:
                    parents.discard(h)
                    if not parents:
                        del self.parents[dep]
                if dep in self.nodes:
                    self.nodes[dep].dependents -= 1

    def render(self, version: str) -> bytes:
        """spack's database document (`Database._write_to_file` with the build
        cache's fields: spec, ref_count, in_buildcache)."""
        parts = []
        for h, n in self.nodes.items():
            in_cache = "true" if h in self.roots else "false"
            parts.append(f'"{h}":{{"spec":{n.fragment},"ref_count":{n.dependents},'
                         f'"in_buildcache":{in_cache}}}')
        body = ",".join(parts)
        return (f'{{"database":{{"version":"{version}","installs":{{{body}}}}}}}').encode()


@dataclass
class CacheState:
    """A cache's records as of the journal entries applied so far."""

    records: dict[str, tuple[str, SpecRecord | None]] = field(default_factory=dict)
    unions: dict[int, NodeUnion] = field(default_factory=lambda: {4: NodeUnion(), 5: NodeUnion()})
    seen: dict[str, int] = field(default_factory=dict)  # entry name -> its time, recent only
    cursor_ns: int = 0  # time of the newest entry applied
    version: int = 0  # bumped by every change
    since_snapshot: int = 0
    last_entry: str = ""

    def live(self) -> Iterator[SpecRecord]:
        for _, record in self.records.values():
            if record is not None:
                yield record

    def get(self, h: str) -> SpecRecord | None:
        entry = self.records.get(h)
        return entry[1] if entry else None

    def apply(self, name: str, h: str, record: SpecRecord | None) -> bool:
        """Apply entry `name` (a record, or None for a removal) for spec `h`;
        True if the state changed."""
        if name in self.seen:
            return False
        ns = name_ns(name)
        self.seen[name] = ns
        if ns > self.cursor_ns:
            self.cursor_ns = ns
            horizon = ns - 2 * WINDOW_NS
            if len(self.seen) > 1024:
                self.seen = {k: v for k, v in self.seen.items() if v >= horizon}
        if name > self.last_entry:
            self.last_entry = name
        self.since_snapshot += 1
        current = self.records.get(h)
        if current is not None and current[0] >= name:
            return False  # a later entry already decided this spec
        old = current[1] if current else None
        if old is not None:
            self.unions[old.spec.format].discard(old)
        if record is not None:
            self.unions[record.spec.format].add(record)
        self.records[h] = (name, record)
        self.version += 1
        return old is not None or record is not None

    def to_snapshot(self) -> dict:
        return {"through": self.last_entry,
                "records": {h: [name, rec.to_json() if rec else None]
                            for h, (name, rec) in self.records.items()}}

    @classmethod
    def from_snapshot(cls, doc: dict) -> CacheState:
        state = cls()
        for h, (name, rec) in doc.get("records", {}).items():
            try:
                record = SpecRecord.from_json(rec) if rec else None
            except (KeyError, TypeError, ValueError):
                continue
            current = state.records.get(h)
            if current is None or current[0] < name:
                if record is not None:
                    state.unions[record.spec.format].add(record)
                state.records[h] = (name, record)
        through = str(doc.get("through", ""))
        state.last_entry = through
        state.cursor_ns = name_ns(through)
        state.version = 1
        return state

    def db_format(self, layout: str) -> int | None:
        """Which spec format a layout's index holds: v2 (spack 0.2x) reads format
        4 only; v3 and OCI get format 5 (spack 1.x) when the cache has any, else
        4 (spack 1.x reads those too, in a v7 database). None: nothing to index."""
        if layout == "v2":
            return 4
        if self.unions[5].roots:
            return 5
        return 4
