"""Checked artifact documents in the index's `artifacts` table: what core's injected
artifact check (core/artifact_checks.py) recorded of a referrer's document, kept
for the manifest it refers to (its subject).

The index does not know the formats (image-compatibility specs are registry.arch's,
a room it may not import): it stores the text it is handed with the referrer's
artifact type, subject and `org.opencontainers.image.created` annotation, and gives
them back by subject. Rows are written on the index thread, inside the batch's
transaction, when a `ManifestPut` or `ManifestDescribe` that carries such a text is
applied, and go with the referrer when it is deleted.
"""

from __future__ import annotations

import sqlite3

from registry.index.records import ArtifactRow, ManifestLike

CREATED = "org.opencontainers.image.created"
MAX_TEXT = 1 << 20  # what a check hands back is bounded by it; a guard, not a limit


def record(conn: sqlite3.Connection, repo: str, digest: str, manifest: ManifestLike,
           artifact: str | None, at: float) -> None:
    """Replace the row of referrer `repo@digest` (none when it has no subject or no
    checked document)."""
    conn.execute("DELETE FROM artifacts WHERE repo = ? AND digest = ?", [repo, digest])
    if artifact is None or manifest.subject is None or len(artifact) > MAX_TEXT:
        return
    created = (manifest.annotations or {}).get(CREATED, "")
    conn.execute(
        "INSERT INTO artifacts (repo, digest, subject, artifact_type, created, document,"
        " pushed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [repo, digest, str(manifest.subject.digest), manifest.effective_artifact_type or "",
         created if isinstance(created, str) else "", artifact, at])


def for_subject(conn: sqlite3.Connection, repo: str, subject: str) -> list[ArtifactRow]:
    """The checked documents of the referrers of `repo@subject`, by digest."""
    cur = conn.execute(
        "SELECT repo, digest, subject, artifact_type, created, document, pushed_at"
        " FROM artifacts WHERE repo = ? AND subject = ? ORDER BY digest", [repo, subject])
    return [ArtifactRow(*r) for r in cur.fetchall()]
