"""The advisory database: OSV documents imported offline into the scan room's SQLite file.

`registry advisories import DIR|ZIP` reads OSV's per-ecosystem `all.zip` (or a directory
of JSON documents) and keeps each valid advisory by id, replacing a stored one only when
the new `modified` is later. The input is hostile until checked: a zip's entries are
counted and each is read through a bounded read (a zip bomb's declared sizes are not
trusted), the total inflated is capped, member names are only labels in the report
(nothing is extracted, no name becomes a path), and a document that is not JSON, too
large or not an OSV advisory is counted as rejected with its reason while the import
goes on. Matching (registry/scan/match.py) looks advisories up by (ecosystem, package
key) and GIT records by repository URL, both indexed.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from registry.scan.osv import Advisory, InvalidAdvisory, parse
from registry.scan.versions import base_ecosystem, package_key, repo_key

SCHEMA = 1
MAX_DOCUMENT = 8 << 20  # the largest OSV documents (GIT records listing tags) are ~1 MiB
MAX_ENTRIES = 2_000_000  # OSV's all-ecosystems export holds ~500k documents
MAX_TOTAL = 16 << 30  # bytes inflated in one import

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS advisories (
    id TEXT PRIMARY KEY, modified TEXT NOT NULL, withdrawn TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS affected (
    id TEXT NOT NULL REFERENCES advisories(id) ON DELETE CASCADE,
    base TEXT NOT NULL, key TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS affected_package ON affected (base, key);
CREATE INDEX IF NOT EXISTS affected_id ON affected (id);
CREATE TABLE IF NOT EXISTS repos (
    id TEXT NOT NULL REFERENCES advisories(id) ON DELETE CASCADE, repo TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS repos_repo ON repos (repo);
CREATE INDEX IF NOT EXISTS repos_id ON repos (id);
"""


@dataclass
class ImportReport:
    """What one import did: counts, the reasons documents were refused, and the
    (ecosystem, package key) pairs and repositories whose advisories changed."""

    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # reason -> first member
    packages: set[tuple[str, str]] = field(default_factory=set)
    repos: set[str] = field(default_factory=set)
    stopped: str = ""  # why the import stopped early (a cap), "" when it read everything

    def reject(self, member: str, reason: str) -> None:
        # Counted by kind: `affected[3].ranges[0]` and `affected[0].ranges[1]` alike.
        reason = re.sub(r"\[\d+\]", "[]", reason)
        self.rejected[reason] += 1
        self.examples.setdefault(reason, member)

    @property
    def changed(self) -> bool:
        return bool(self.imported or self.updated)


class ImportStopped(Exception):
    """An import that hit a cap (entries, bytes): nothing of it was kept."""


class AdvisoryDB:
    """The scan room's SQLite file of OSV advisories (schema above)."""

    def __init__(self, path: str) -> None:
        self.path = path
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA foreign_keys = ON")
        if not self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
            # Created once; opening an existing file writes nothing, so a reader (the
            # server) never waits for an import's long transaction (WAL lets it read).
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.executescript(_TABLES)
            with self._db:
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)",
                                 (str(SCHEMA),))
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> AdvisoryDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def generation(self) -> int:
        """Bumped by each import that changed something: a stored match result made at
        an older generation may be stale."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0])

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM advisories").fetchone()[0])

    def _put(self, advisory: Advisory, text: str, report: ImportReport) -> None:
        row = self._db.execute("SELECT modified FROM advisories WHERE id = ?",
                               (advisory.id,)).fetchone()
        if row is not None and row[0] >= advisory.modified:
            report.unchanged += 1
            return
        keys = {(base_ecosystem(a.ecosystem), package_key(a.ecosystem, a.name))
                for a in advisory.affected if a.ecosystem}
        repos = {repo_key(r.repo) for a in advisory.affected for r in a.ranges if r.repo}
        report.packages |= keys
        report.repos |= repos
        if row is not None:
            # What the old version named changes too (a package it no longer lists).
            report.packages.update(self._db.execute(
                "SELECT base, key FROM affected WHERE id = ?", (advisory.id,)))
            report.repos.update(r for (r,) in self._db.execute(
                "SELECT repo FROM repos WHERE id = ?", (advisory.id,)))
            self._db.execute("DELETE FROM advisories WHERE id = ?", (advisory.id,))
            report.updated += 1
        else:
            report.imported += 1
        self._db.execute("INSERT INTO advisories VALUES (?, ?, ?, ?)",
                         (advisory.id, advisory.modified, advisory.withdrawn, text))
        self._db.executemany("INSERT INTO affected VALUES (?, ?, ?)",
                             [(advisory.id, base, key) for base, key in keys])
        self._db.executemany("INSERT INTO repos VALUES (?, ?)",
                             [(advisory.id, repo) for repo in repos])

    def load(self, documents: Iterable[tuple[str, bytes | str]],
             report: ImportReport | None = None) -> ImportReport:
        """Keep every valid advisory of `documents` ((member name, JSON) pairs), in one
        transaction: readers see the database before the import or after it."""
        report = report or ImportReport()
        with self._db:
            for member, data in documents:
                try:
                    doc = json.loads(data)
                except (ValueError, RecursionError):
                    report.reject(member, "not JSON")
                    continue
                try:
                    advisory = parse(doc)
                except InvalidAdvisory as exc:
                    report.reject(member, str(exc))
                    continue
                except RecursionError:
                    report.reject(member, "nested too deeply")
                    continue
                self._put(advisory, json.dumps(doc, separators=(",", ":")), report)
            if report.stopped:  # a cap was hit: keep none of it (rolls back)
                raise ImportStopped(report.stopped)
            if report.changed:
                self._db.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
        return report

    def candidates(self, base: str, keys: Iterable[str]) -> list[Advisory]:
        """The advisories naming any of `keys` in ecosystem `base` (withdrawn ones too:
        the matcher drops them)."""
        keys = sorted(set(keys))
        marks = ",".join("?" * len(keys))
        rows = self._db.execute(
            "SELECT DISTINCT a.doc FROM affected f JOIN advisories a ON a.id = f.id "
            f"WHERE f.base = ? AND f.key IN ({marks}) ORDER BY a.id", (base, *keys))
        return [parse(json.loads(doc)) for (doc,) in rows]

    def by_repo(self, repos: Iterable[str]) -> list[Advisory]:
        """The advisories with a GIT range of any of `repos` (as repo_key spells them)."""
        repos = sorted(set(repos))
        marks = ",".join("?" * len(repos))
        rows = self._db.execute(
            "SELECT DISTINCT a.doc FROM repos r JOIN advisories a ON a.id = r.id "
            f"WHERE r.repo IN ({marks}) ORDER BY a.id", repos)
        return [parse(json.loads(doc)) for (doc,) in rows]


def _label(name: str) -> str:
    """A member name as the report shows it: at most 200 characters, no control
    characters (a hostile name must not drive the terminal that prints the report)."""
    return "".join(c if c.isprintable() else "?" for c in name[:200])


def _zip_documents(path: str, report: ImportReport, max_entries: int, max_document: int,
                   max_total: int) -> Iterator[tuple[str, bytes]]:
    total = 0
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        if len(infos) > max_entries:
            report.stopped = f"more than {max_entries} entries: nothing read"
            return
        for info in infos:
            label = _label(info.filename)  # a label in the report, never a path
            if info.is_dir():
                continue
            if not info.filename.endswith(".json"):
                report.reject(label, "not a .json member")
                continue
            if info.file_size > max_document:
                report.reject(label, f"larger than {max_document} bytes")
                continue
            try:
                with archive.open(info) as member:
                    # The declared size may lie: read at most one byte past the cap.
                    data = member.read(max_document + 1)
            except (zipfile.BadZipFile, OSError, NotImplementedError, EOFError) as exc:
                report.reject(label, f"unreadable member: {type(exc).__name__}")
                continue
            if len(data) > max_document:
                report.reject(label, f"larger than {max_document} bytes")
                continue
            total += len(data)
            if total > max_total:
                report.stopped = f"more than {max_total} bytes inflated: stopped"
                return
            yield label, data


def _dir_documents(root: str, report: ImportReport, max_entries: int, max_document: int,
                   max_total: int) -> Iterator[tuple[str, bytes]]:
    total = seen = 0
    for top, dirs, files in os.walk(root):  # symlinked directories are not followed
        dirs.sort()
        for name in sorted(files):
            if not name.endswith(".json"):
                continue
            seen += 1
            if seen > max_entries:
                report.stopped = f"more than {max_entries} documents: stopped"
                return
            path = os.path.join(top, name)
            label = _label(os.path.relpath(path, root))
            try:
                # Never a symlink's target, never blocked on a FIFO.
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError as exc:
                report.reject(label, f"unreadable: {exc.strerror}")
                continue
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    report.reject(label, "not a regular file")
                    continue
                data = f.read(max_document + 1)
            if len(data) > max_document:
                report.reject(label, f"larger than {max_document} bytes")
                continue
            total += len(data)
            if total > max_total:
                report.stopped = f"more than {max_total} bytes read: stopped"
                return
            yield label, data


def import_path(db: AdvisoryDB, source: str, *, max_entries: int = MAX_ENTRIES,
                max_document: int = MAX_DOCUMENT, max_total: int = MAX_TOTAL) -> ImportReport:
    """Import a directory of OSV JSON documents or an OSV zip export into `db`.
    ValueError when `source` is neither."""
    report = ImportReport()
    if os.path.isdir(source):
        docs = _dir_documents(source, report, max_entries, max_document, max_total)
    elif zipfile.is_zipfile(source):
        docs = _zip_documents(source, report, max_entries, max_document, max_total)
    else:
        raise ValueError(f"{source}: neither a directory nor a zip file")
    try:
        return db.load(docs, report)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{source}: {exc}") from None
    except ImportStopped:
        report.imported = report.updated = report.unchanged = 0
        report.packages.clear()
        report.repos.clear()
        return report
