"""An advisory's severity: its CVSS vectors scored with the `cvss` library,
else the rating word its database gives, mapped to critical/high/medium/low.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cvss  # type: ignore[import-untyped]

LEVELS = ("none", "low", "medium", "high", "critical")
UNKNOWN = "unknown"

# The words databases use: GHSA (LOW/MODERATE/HIGH/CRITICAL), Red Hat and AlmaLinux
# (Low/Moderate/Important/Critical), Ubuntu (negligible/low/medium/high/critical),
# Debian's urgency (unimportant/low/medium/high), SUSE, Alpine.
_WORDS = {"critical": "critical", "important": "high", "high": "high",
          "moderate": "medium", "medium": "medium", "low": "low", "negligible": "low",
          "unimportant": "low", "none": "none"}
# Newest CVSS first: a v4 vector is preferred when an advisory gives both.
_CVSS = {"CVSS_V4": cvss.CVSS4, "CVSS_V3": cvss.CVSS3, "CVSS_V2": cvss.CVSS2}


@dataclass(frozen=True, slots=True)
class Severity:
    """A finding's severity: the level, and the CVSS score and vector it came from (if any)."""

    level: str  # one of LEVELS or UNKNOWN
    score: float | None = None
    vector: str = ""


def rank(level: str) -> int:
    """Order of levels for `max_severity`: unknown < none < low < ... < critical."""
    return LEVELS.index(level) if level in LEVELS else -1


def _level(score: float) -> str:
    # The qualitative scale shared by CVSS v3.x and v4.0 (FIRST's specification,
    # section 5 of v3.1): 0 none, 0.1-3.9 low, 4-6.9 medium, 7-8.9 high, 9-10 critical.
    if score == 0:
        return "none"
    if score < 4:
        return "low"
    if score < 7:
        return "medium"
    if score < 9:
        return "high"
    return "critical"


def score_vector(kind: str, vector: str) -> Severity | None:
    """The base score of one CVSS vector; None for an unknown kind or a bad vector."""
    order = _CVSS.get(kind)
    if order is None:
        return None
    try:
        scored = order(vector)
        score = float(scored.base_score if kind == "CVSS_V4" else scored.scores()[0])
    except (cvss.CVSSError, ValueError, KeyError, IndexError, TypeError):
        return None
    return Severity(_level(score), score, vector)


def rating(word: str) -> str:
    """A database's severity word as a level (UNKNOWN when not one it knows)."""
    return _WORDS.get(word.strip().lower(), UNKNOWN)


def severity(vectors: Iterable[tuple[str, str]], words: Iterable[str] = ()) -> Severity:
    """The severity of (type, score) pairs: the newest CVSS version that scores, else
    the first known rating word, else UNKNOWN."""
    vectors = list(vectors)
    for kind in _CVSS:
        for vtype, vector in vectors:
            if vtype == kind and (scored := score_vector(kind, vector)) is not None:
                return scored
    for vtype, word in vectors:  # e.g. {"type": "Ubuntu", "score": "medium"}
        if vtype not in _CVSS and rating(word) != UNKNOWN:
            return Severity(rating(word))
    for word in words:
        if word and rating(word) != UNKNOWN:
            return Severity(rating(word))
    return Severity(UNKNOWN)
