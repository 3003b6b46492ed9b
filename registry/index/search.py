"""Full-text search over the index: one FTS5 document per manifest and per Spack spec.

`search_docs` holds one row per document: its kind (`image`, `artifact`, `spack`), the
repository or cache, its key (a manifest's digest, a spec's hash) and four text
columns, which `search_fts`, an external-content FTS5 table, indexes:

    repo      the repository or cache name
    names     a manifest's tags; a spec's `name@version` and hash
    platform  os, architecture, variant, archspec target, CUDA, ROCm, MPI of every build
              row (index/builds.py) and platform a manifest declares; a spec's platform,
              os and target
    meta      artifact and media type, annotations and config labels as `key=value`;
              a spec's compiler, variants (`+mpi ~shared api=default`) and dependencies

and, beside the text, `severity`: a manifest's worst vulnerability as a number, NULL
while not scanned (index/scans.py keeps it), for the `severity` and `scanned` filters.

The documents are written on the index thread in the transaction of the event that
changes them (`before` and `after`, called by Index.apply around each event), so
they are exactly as current as the rows they mirror, and `registry reindex` and the
catch-up rebuild them with those rows.

Tokenizer: unicode61 (case-folded, diacritics removed), whose tokens are runs of
letters and digits: `py-numpy` is `py numpy`, `hdf5@1.14.3` is `hdf5 1 14 3`,
`x86_64_v3` is `x86 64 v3`. A user's words are quoted as FTS5 phrases (`phrase`),
so a phrase matches those tokens adjacent and in order: `py-numpy`, `numpy` and `py`
all find `py-numpy`, `hdf5@1.14` finds `hdf5@1.14.3`, `x86_64` finds `x86_64_v3`.
No stemmer (names are not English) and no trigrams (a word's parts are its tokens).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from registry.index import scans
from registry.index.builds import IMAGE_CONFIGS, image_config
from registry.index.records import (
    Event,
    ManifestDeleted,
    ManifestDescribe,
    ManifestPut,
    SpecDeleted,
    SpecPut,
    SpecRow,
    SpecsReset,
    TagDeleted,
    TagSet,
)

# The tokenizer schema.py's version 6 gives search_fts (see the module docstring).
TOKENIZE = "unicode61 remove_diacritics 2"
WEIGHTS = (4.0, 8.0, 2.0, 1.0)  # bm25 weights of repo, names, platform, meta
RANK_MAX = 10_000  # documents a query's words may match and still be ranked (query)
TOP_K = 4  # a ranked page first joins only its size times this of the best matches
DENSE = 2  # unranked words found in 1/DENSE of the documents are tested per document
MAX_TEXT = 20_000  # characters of one column kept: annotations may be huge and hostile


# -- the user's words as FTS5 syntax -------------------------------------------

_WORD = re.compile(r"\w", re.UNICODE)


def phrase(term: str) -> str | None:
    """One user word as an FTS5 phrase (a trailing `*`: a prefix), or None when it
    holds no letter or digit (nothing to match). Quotes are doubled, so no word can
    leave its phrase: FTS5 operators and column filters in it are plain text."""
    prefix = term.endswith("*")
    body = term.rstrip("*")
    if not _WORD.search(body):
        return None
    quoted = '"' + body.replace('"', '""') + '"'
    return quoted + " *" if prefix else quoted


def match_expression(terms: Sequence[str]) -> str | None:
    """The MATCH expression for `terms`, all of which must match; None for none."""
    phrases = [p for p in (phrase(t) for t in terms) if p is not None]
    return " AND ".join(phrases) if phrases else None


# -- documents -----------------------------------------------------------------


def _text(parts: Iterable[Any]) -> str:
    return " ".join(str(p) for p in parts if p not in (None, ""))[:MAX_TEXT]


def _pairs(raw: str | None) -> list[str]:
    try:
        doc = json.loads(raw or "{}")
    except ValueError:
        return []
    return [f"{k}={v}" for k, v in doc.items()] if isinstance(doc, dict) else []


def kind_of(media_type: str, artifact_type: str) -> str:
    """`image` for an image or an index, `artifact` for anything else."""
    if not artifact_type or artifact_type in IMAGE_CONFIGS:
        return "image"
    return "artifact"


def _upsert(conn: sqlite3.Connection, kind: str, repo: str, key: str,
            values: tuple[str, str, str]) -> None:
    _delete(conn, kind, repo, key)
    cur = conn.execute("INSERT INTO search_docs (kind, repo, key, names, platform, meta)"
                       " VALUES (?, ?, ?, ?, ?, ?)", [kind, repo, key, *values])
    conn.execute("INSERT INTO search_fts (rowid, repo, names, platform, meta)"
                 " VALUES (?, ?, ?, ?, ?)", [cur.lastrowid, repo, *values])


def _delete(conn: sqlite3.Connection, kind: str | None, repo: str, key: str) -> None:
    where, params = "repo = ? AND key = ?", [repo, key]
    if kind is None:
        where += " AND kind != 'spack'"
    else:
        where += " AND kind = ?"
        params.append(kind)
    _delete_where(conn, where, params)


def _delete_where(conn: sqlite3.Connection, where: str, params: list[Any]) -> None:
    rows = conn.execute(f"SELECT id, repo, names, platform, meta FROM search_docs WHERE {where}",
                        params).fetchall()
    # An external-content table forgets a row by being told its old values.
    conn.executemany("INSERT INTO search_fts (search_fts, rowid, repo, names, platform, meta)"
                     " VALUES ('delete', ?, ?, ?, ?, ?)", rows)
    conn.executemany("DELETE FROM search_docs WHERE id = ?", [[r[0]] for r in rows])


def refresh_manifest(conn: sqlite3.Connection, repo: str, digest: str) -> None:
    """Write the document of `repo@digest` from its rows (or drop it: no manifest)."""
    row = conn.execute("SELECT media_type, artifact_type, annotations, labels FROM manifests"
                       " WHERE repo = ? AND digest = ?", [repo, digest]).fetchone()
    if row is None:
        _delete(conn, None, repo, digest)
        return
    media_type, artifact_type, annotations, labels = row
    tags = [r[0] for r in conn.execute(
        "SELECT tag FROM tags WHERE repo = ? AND digest = ? ORDER BY tag", [repo, digest])]
    platform: list[Any] = []
    for os_, arch, variant, target, cuda, rocm, mpi in build_rows(conn, repo, digest):
        platform += [os_, arch, variant, target, cuda and f"cuda {cuda}",
                     rocm and f"rocm {rocm}", mpi]
    for r in conn.execute("SELECT os, architecture, variant FROM platforms WHERE repo = ?"
                          " AND (digest = ? OR declared_by = ?)", [repo, digest, digest]):
        platform += r
    kind = kind_of(media_type or "", artifact_type or "")
    meta = [artifact_type if kind == "artifact" else "", media_type,
            *_pairs(annotations), *_pairs(labels)]
    # An index is found by its children's annotations and labels too: it stands for
    # them (an untagged child is not a result of its own, see _CHILD).
    for notes, child_labels in conn.execute(
            "SELECT m.annotations, m.labels FROM platforms p JOIN manifests m ON m.repo = p.repo"
            " AND m.digest = p.digest WHERE p.repo = ? AND p.declared_by = ? AND p.digest != ?",
            [repo, digest, digest]):
        meta += [*_pairs(notes), *_pairs(child_labels)]
    _delete(conn, "artifact" if kind == "image" else "image", repo, digest)
    _upsert(conn, kind, repo, digest, (_text(tags), _text(dict.fromkeys(platform)),
                                       _text(dict.fromkeys(meta))))
    _severities(conn, repo, digest)


def _severities(conn: sqlite3.Connection, repo: str, digest: str) -> None:
    """The scan severity of `repo@digest`'s document and of the indexes of `repo` that
    list it (theirs is their children's, index/scans.py)."""
    scans.set_document(conn, repo, digest)
    for (parent,) in conn.execute("SELECT DISTINCT declared_by FROM platforms WHERE repo = ?"
                                  " AND digest = ? AND declared_by != ?",
                                  [repo, digest, digest]).fetchall():
        scans.set_document(conn, repo, parent)


BUILD_FIELDS = ("os", "architecture", "variant", "target", "cuda", "rocm", "mpi")


def build_rows(conn: sqlite3.Connection, repo: str, digest: str) -> list[tuple[Any, ...]]:
    """The platforms of `repo@digest` as BUILD_FIELDS tuples: its own build rows, or for
    an index its children's; of each manifest, the row its own config gives when there
    is one (the most precise: an index's descriptor has no target annotation), else
    those the indexes listing it declare."""
    per: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
    for child, source, *fields in conn.execute(
            "SELECT digest, source, " + ", ".join(BUILD_FIELDS) + " FROM builds"
            " WHERE repo = ? AND error IS NULL AND (digest = ? OR digest IN (SELECT digest"
            " FROM builds WHERE repo = ? AND declared_by = ? AND digest != ?))",
            [repo, digest, repo, digest, digest]):
        per.setdefault(child, {}).setdefault(source, []).append(tuple(fields))
    out: list[tuple[Any, ...]] = []
    for sources in per.values():
        out += sources.get("config") or sources.get("index") or []
    return sorted(set(out), key=lambda t: tuple(str(x) for x in t))


def variants_text(variants: dict[str, Any]) -> str:
    """Variants as spack prints them: `+mpi ~shared api=default`."""
    out = []
    for k, v in sorted(variants.items()):
        if v is True:
            out.append(f"+{k}")
        elif v is False:
            out.append(f"~{k}")
        elif isinstance(v, list | tuple):
            out.append(f"{k}={','.join(str(x) for x in v)}")
        else:
            out.append(f"{k}={v}")
    return " ".join(out)


def spec_values(r: SpecRow) -> tuple[str, str, str]:
    """The text columns of spec `r`'s document."""
    return (_text([f"{r.name}@{r.version}", r.hash]), _text([r.platform, r.os, r.target]),
            _text([r.compiler and f"%{r.compiler}", variants_text(r.variants),
                   *(f"^{name}" for name, _ in r.dependencies)]))


def _spec_put(conn: sqlite3.Connection, r: SpecRow) -> None:
    _upsert(conn, "spack", r.cache, r.hash, spec_values(r))


def _labels(config: bytes | None) -> str | None:
    doc = image_config(config)
    inner = doc.get("config") if doc else None
    labels = inner.get("Labels") if isinstance(inner, dict) else None
    if not isinstance(labels, dict) or not labels:
        return None
    return json.dumps({str(k): str(v) for k, v in labels.items()})


# -- keeping them current --------------------------------------------------------


def before(conn: sqlite3.Connection, event: Event) -> str | None:
    """What must be known before `event` is applied: the digest a tag it moves or
    deletes pointed at, whose document loses the tag."""
    if not isinstance(event, TagSet | TagDeleted | ManifestPut) or event.tag is None:
        return None
    row = conn.execute("SELECT digest FROM tags WHERE repo = ? AND tag = ?",
                       [event.repo, event.tag]).fetchone()
    return row[0] if row else None


def after(conn: sqlite3.Connection, event: Event, previous: str | None) -> None:
    """Bring the documents `event` changed up to date (after its rows, same transaction)."""
    if isinstance(event, ManifestPut | ManifestDescribe):
        conn.execute("UPDATE manifests SET labels = ? WHERE repo = ? AND digest = ?",
                     [_labels(event.config), event.repo, event.digest])
        refresh_manifest(conn, event.repo, event.digest)
    elif isinstance(event, TagSet):
        refresh_manifest(conn, event.repo, event.digest)
    elif isinstance(event, ManifestDeleted):
        _delete(conn, None, event.repo, event.digest)
        _severities(conn, event.repo, event.digest)  # an index that listed it
    elif isinstance(event, SpecPut):
        _spec_put(conn, event.row)
    elif isinstance(event, SpecDeleted):
        _delete(conn, "spack", event.repo, event.hash)
    elif isinstance(event, SpecsReset):
        _delete_where(conn, "kind = 'spack' AND repo = ?", [event.repo])
        for row in event.rows:
            _spec_put(conn, row)
    if isinstance(event, TagSet | TagDeleted | ManifestPut) and previous is not None \
            and previous != getattr(event, "digest", None):  # the tag left it
        refresh_manifest(conn, event.repo, previous)


def clear_manifests(conn: sqlite3.Connection) -> None:
    """Forget every manifest's document (a rebuild writes them again); specs stay."""
    conn.execute("DELETE FROM search_docs WHERE kind != 'spack'")
    conn.execute("INSERT INTO search_fts (search_fts) VALUES ('rebuild')")


# -- queries -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A search, every part optional, all combined (AND). `terms`: the user's words;
    `targets`: builds for any of these archspec targets (exact, or every target a host
    runs, computed above the index); `signed`: manifests with (True) or without (False)
    a valid signature as the trust room last verified them; `severity`: manifests whose
worst vulnerability is at least this level of index/scans.py SEVERITIES ("none": every
manifest scanned and matched); `scanned`: manifests with (True) or without (False) a
scan result (index/scans.py: for an index, of all its children); `arch_targets`: for specs,
    the targets of the architecture asked for; `visible`: (oci repositories, spack
    caches) the caller may pull, None for everything; `visible_key`: a name for exactly
    these `visible` names (the same key, the same names), under which the index keeps
    them in a temporary table between searches (None: read from the list each time);
    `after`: the (rank, kind, repo, key) of the last row of the previous page."""

    terms: tuple[str, ...] = ()
    kind: str | None = None
    os: str | None = None
    arch: str | None = None
    arch_targets: tuple[str, ...] | None = None
    targets: tuple[str, ...] | None = None
    labels: tuple[tuple[str, str], ...] = ()
    spack_name: str | None = None
    spack_version: str | None = None
    signed: bool | None = None
    severity: str | None = None
    scanned: bool | None = None
    visible: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    visible_key: Hashable | None = None
    after: tuple[float, str, str, str] | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class Hit:
    """One document a search found, with its bm25 rank (lower is better; 0 without words)."""

    rank: float
    kind: str
    repo: str
    key: str


@dataclass
class _Sql:
    where: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, clause: str, *params: Any) -> None:
        self.where.append(clause)
        self.params.extend(params)


_LABEL = ("EXISTS (SELECT 1 FROM manifests m, json_each(CASE WHEN json_valid(m.{col})"
          " THEN m.{col} ELSE '{{}}' END) j WHERE m.repo = d.repo AND m.digest = d.key"
          " AND j.key = ? AND j.value = ?)")
# An image listed by an index in its repository, untagged itself, is found as the index.
_CHILD = ("d.kind = 'image' AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo = d.repo"
          " AND t.digest = d.key) AND EXISTS (SELECT 1 FROM platforms p WHERE p.repo = d.repo"
          " AND p.digest = d.key AND p.declared_by != d.key)")


_SIGNED = ("EXISTS (SELECT 1 FROM signatures g WHERE g.repo = d.repo AND g.digest = d.key"
           " AND g.valid = 1)")


def _words(values: Sequence[str]) -> tuple[str, ...]:
    """A clause (and its parameters) true when the document's platform column holds
    any of `values` as a word (false for none)."""
    if not values:
        return ("0",)
    test = "instr(' ' || d.platform || ' ', ?) > 0"
    return ("(" + " OR ".join([test] * len(values)) + ")", *(f" {v} " for v in values))


def _in(values: Sequence[str]) -> tuple[str, str]:
    return "(SELECT value FROM json_each(?))", json.dumps(list(values))


def _filters(q: SearchQuery, sql: _Sql, visible_table: str | None = None) -> None:
    if q.kind is not None:
        sql.add("d.kind = ?", q.kind)
    if visible_table is not None:  # (spack, name) rows: VISIBLE_TABLE
        sql.add(f"EXISTS (SELECT 1 FROM {visible_table} v WHERE v.spack = (d.kind = 'spack')"
                " AND v.name = d.repo)")
    elif q.visible is not None:
        oci, oci_p = _in(q.visible[0])
        spack, spack_p = _in(q.visible[1])
        sql.add(f"((d.kind != 'spack' AND d.repo IN {oci}) OR "
                f"(d.kind = 'spack' AND d.repo IN {spack}))", oci_p, spack_p)
    # Platform filters test the words of the document's `platform` column, which holds
    # each build's os, architecture, variant and target (and a spec's platform, os and
    # target): a string test per candidate, not lookups in `builds` per candidate.
    if q.os is not None:
        sql.add(*_words([q.os]))
    if q.arch is not None:
        clause, *params = _words(q.arch_targets or ())
        sql.add(f"((d.kind != 'spack' AND instr(' ' || d.platform || ' ', ?) > 0) OR"
                f" (d.kind = 'spack' AND {clause}))", f" {q.arch} ", *params)
    if q.targets is not None:
        sql.add(*_words(q.targets))
    for key, value in q.labels:
        sql.add(f"(d.kind != 'spack' AND ({_LABEL.format(col='labels')} OR "
                f"{_LABEL.format(col='annotations')}))", key, value, key, value)
    if q.spack_name is not None:  # `s` is the source's spack_specs (see query)
        sql.add("d.kind = 'spack' AND s.name = ?", q.spack_name)
        if q.spack_version is not None:
            escaped = re.sub(r"([\\%_])", r"\\\1", q.spack_version)
            sql.add(r"(s.version = ? OR s.version LIKE ? ESCAPE '\')", q.spack_version,
                    escaped + ".%")
    if q.signed is not None:  # specs have no signature state: neither signed nor not
        sql.add(f"d.kind != 'spack' AND {'' if q.signed else 'NOT '}{_SIGNED}")
    if q.severity is not None:  # specs are not scanned: the manifests they are in are
        sql.add("d.kind != 'spack' AND d.severity >= ?", scans.RANKS[q.severity])
    if q.scanned is not None:
        sql.add(f"d.kind != 'spack' AND d.severity IS {'NOT ' if q.scanned else ''}NULL")
    sql.add(f"NOT ({_CHILD})")


def _count(conn: sqlite3.Connection, match: str, most: int) -> int:
    """How many documents `match` finds, counted up to `most` (reading rowids only)."""
    row = conn.execute("SELECT count(*) FROM (SELECT 1 FROM search_fts WHERE search_fts"
                       " MATCH ? LIMIT ?)", [match, most]).fetchone()
    return int(row[0])


def _dense(conn: sqlite3.Connection, match: str) -> bool:
    """Whether `match` finds at least half of all documents (`linux`): then testing each
    document in key order finds a page after a few dozen tests, where listing every
    match first (100,000 rowids) is what costs."""
    top = conn.execute("SELECT max(id) FROM search_docs").fetchone()[0] or 0
    return _count(conn, match, top // DENSE) >= top // DENSE > 0


def query(conn: sqlite3.Connection, q: SearchQuery, visible_table: str | None = None
          ) -> list[Hit]:
    """The documents `q` finds, best first (rank, then kind, repository, key), after
    `q.after`, at most `q.limit` of them. `visible_table`: a temporary table holding
    `q.visible` (Index keeps one per caller's rights), read instead of the list.

    Ranking: bm25 reads every match's sizes (~3 us each), so words found in more than
    RANK_MAX documents (`linux`) are not ranked: they filter, and the results come in
    key order, rank 0 (a page after an unranked one, rank 0 in its cursor, stays
    unranked, so the pages agree). Words found in more than `limit` x TOP_K documents
    are ranked in two steps: the TOP_K x `limit` best matches are joined with their
    documents and filtered first, and only when they do not settle the page (too few
    passed the filters, or the page's last rank ties the last one ranked) are all the
    matches joined: the same answer, without reading thousands of documents."""
    match = match_expression(q.terms)
    if match is None:
        return _select(conn, q, visible_table, None)
    count = _count(conn, match, RANK_MAX + 1)
    ranked = q.after[0] != 0.0 if q.after is not None else count <= RANK_MAX
    if not ranked:
        return _select(conn, q, visible_table, match, dense=_dense(conn, match))
    top = q.limit * TOP_K
    if count > top:
        hits, settled = _top(conn, q, visible_table, match, top)
        if settled:
            return hits
    return _select(conn, q, visible_table, match, ranked=True)


def _top(conn: sqlite3.Connection, q: SearchQuery, visible_table: str | None, match: str,
         top: int) -> tuple[list[Hit], bool]:
    """The page from the `top` best matches and those tied with the last of them (at
    or after the cursor's rank), and whether it is the page all matches give: full (all
    others rank after every one joined), or nothing was left out."""
    rows = _rows(conn, q, visible_table, match, ranked=True, top=top)
    hits = [Hit(float(r[0]), r[1], r[2], r[3]) for r in rows]
    return hits, len(hits) == q.limit or bool(rows and rows[0][4])


def _select(conn: sqlite3.Connection, q: SearchQuery, visible_table: str | None,
            match: str | None, *, ranked: bool = False, dense: bool = False) -> list[Hit]:
    rows = _rows(conn, q, visible_table, match, ranked=ranked, dense=dense)
    return [Hit(float(r[0]), r[1], r[2], r[3]) for r in rows]


def _rows(conn: sqlite3.Connection, q: SearchQuery, visible_table: str | None,
          match: str | None, *, ranked: bool, dense: bool = False, top: int | None = None
          ) -> list[Any]:
    sql = _Sql()
    head: list[Any] = []
    ctes = ""
    extra = ""
    # A package asked for: its specs (by idx_spack_specs_name) are the candidates, not
    # every document.
    source = ("spack_specs s CROSS JOIN search_docs d ON d.kind = 'spack'"
              " AND d.repo = s.cache AND d.key = s.hash") if q.spack_name else "search_docs d"
    rank = "0.0"
    if match is not None and ranked:
        weights = ", ".join(str(w) for w in WEIGHTS)
        bm25 = f"bm25(search_fts, {weights})"
        # Materialized: the matches once, never a full-text scan per candidate row.
        inner = f"SELECT rowid AS id, {bm25} AS rank FROM search_fts WHERE search_fts MATCH ?"
        head.append(match)
        if q.after is not None:  # nothing ranked before the cursor can follow it
            inner += f" AND {bm25} >= ?"
            head.append(q.after[0])
        if top is None:
            ctes = f"WITH f AS MATERIALIZED ({inner}) "
        else:  # the best `top` and their ties: only these are joined with documents
            ctes = (f"WITH a AS MATERIALIZED ({inner}), f AS MATERIALIZED (SELECT id, rank"
                    " FROM a WHERE rank <= coalesce((SELECT rank FROM a ORDER BY rank"
                    " LIMIT 1 OFFSET ?), 9e999)) ")
            head.append(top - 1)
            extra = ", (SELECT count(*) FROM f) = (SELECT count(*) FROM a)"
        source += " JOIN f ON d.id = f.id"
        rank = "f.rank"
    _filters(q, sql, visible_table)
    if match is not None and not ranked and dense:
        # Most documents match: test each in key order (a seek in the words' lists),
        # after the cheaper filters.
        sql.add("EXISTS (SELECT 1 FROM search_fts WHERE search_fts MATCH ?"
                " AND rowid = d.id)", match)
    elif match is not None and not ranked:  # too many to rank: the words filter
        # `+d.id`: scan in key order, testing each; not the matches' rowids, then a sort.
        sql.add("+d.id IN (SELECT rowid FROM search_fts WHERE search_fts MATCH ?)", match)
    order = "d.kind, d.repo, d.key"
    if q.after is not None and rank != "0.0":
        sql.add("(f.rank, d.kind, d.repo, d.key) > (?, ?, ?, ?)", *q.after)
    elif q.after is not None:  # unranked, every rank is 0: the keys' order alone
        sql.add("(d.kind, d.repo, d.key) > (?, ?, ?)", *q.after[1:])
    if rank != "0.0":
        order = "f.rank, " + order
    text = (f"{ctes}SELECT {rank} AS rank, d.kind, d.repo, d.key{extra} FROM {source}"
            f" WHERE {' AND '.join(sql.where)} ORDER BY {order} LIMIT ?")
    return conn.execute(text, [*head, *sql.params, q.limit]).fetchall()


def fill_visible(conn: sqlite3.Connection, table: str,
                 visible: tuple[Sequence[str], Sequence[str]]) -> None:
    """(Re)create temporary `table` holding `visible` as (spack, name) rows: 0 for the
    repositories, 1 for the caches (how `query` reads a `visible_table`)."""
    conn.execute("BEGIN")  # temp only: the file is neither read nor locked here
    try:
        conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
        conn.execute(f"CREATE TEMP TABLE {table} (spack INTEGER, name TEXT,"
                     " PRIMARY KEY (spack, name)) WITHOUT ROWID")
        conn.executemany(f"INSERT OR IGNORE INTO temp.{table} VALUES (?, ?)",
                         [*((0, n) for n in visible[0]), *((1, n) for n in visible[1])])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def names(conn: sqlite3.Connection) -> tuple[list[str], list[str]]:
    """Every repository with a manifest document and every cache with a spec document."""
    oci = [r[0] for r in conn.execute("SELECT DISTINCT repo FROM search_docs"
                                      " WHERE kind != 'spack' ORDER BY repo")]
    spack = [r[0] for r in conn.execute("SELECT DISTINCT repo FROM search_docs"
                                        " WHERE kind = 'spack' ORDER BY repo")]
    return oci, spack


def details(conn: sqlite3.Connection, hits: Sequence[Hit]) -> list[dict[str, Any]]:
    """What a result shows of each hit: a manifest's tags, media and artifact type,
    annotations and build rows; a spec's row (as JSON-ready dicts, in the hits' order)."""
    out: list[dict[str, Any]] = []
    for h in hits:
        if h.kind == "spack":
            row = conn.execute("SELECT * FROM spack_specs WHERE cache = ? AND hash = ?",
                               [h.repo, h.key])
            cols = [c[0] for c in row.description]
            found = row.fetchone()
            out.append({"spec": dict(zip(cols, found, strict=True)) if found else None})
            continue
        m = conn.execute("SELECT media_type, artifact_type, annotations, labels, size,"
                         " subject FROM manifests WHERE repo = ? AND digest = ?",
                         [h.repo, h.key]).fetchone() or (None,) * 6
        tags = [r[0] for r in conn.execute(
            "SELECT tag FROM tags WHERE repo = ? AND digest = ? ORDER BY tag", [h.repo, h.key])]
        builds = build_rows(conn, h.repo, h.key)
        signed = conn.execute("SELECT 1 FROM signatures WHERE repo = ? AND digest = ?"
                              " AND valid = 1 LIMIT 1", [h.repo, h.key]).fetchone()
        severity = conn.execute("SELECT severity FROM search_docs WHERE kind = ? AND repo = ?"
                                " AND key = ?", [h.kind, h.repo, h.key]).fetchone()
        out.append({"media_type": m[0], "artifact_type": m[1], "annotations": m[2],
                    "labels": m[3], "size": m[4], "subject": m[5], "tags": tags,
                    "builds": builds, "signed": signed is not None,
                    "max_severity": scans.level_of(severity[0] if severity else None),
                    "scanned": severity is not None and severity[0] is not None})
    return out
