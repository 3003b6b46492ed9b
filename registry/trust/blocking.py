"""`block=LEVEL`, `allow=ID,...` and `scan=required`: pulls judged by the manifest's scan.

The guard (guard.py) asks `ScanVerdicts.refusal` for each manifest it would serve
under a rule that judges scans. The findings come through the `ScanLookup` the wiring
hands in (the scan room's results, re-matched when the advisory database changed), so
an advisory import takes effect here too. A verdict is remembered for `SCAN_TTL_S`
(an import, or a scan finishing, is seen that late at most), and "not scanned yet"
for `PENDING_TTL_S` only; a reload of the rules forgets them all.

A finding whose severity is unknown (no CVSS vector, no rating) is below every level:
the policy blocks what it can rank.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from registry.core.errors import Denied
from registry.core.grammar import Digest
from registry.trust.policy import BLOCK_LEVELS, Policy
from registry.trust.seams import Finding, ScanLookup

SCAN_TTL_S = 30.0
PENDING_TTL_S = 1.0
MAX_NAMED = 10  # advisories named in a refusal; the rest counted
_MAX_KEPT = 50_000


class ScanDenied(Denied):
    """A pull the scan policy refuses: 403 DENIED naming the advisories or the wait."""


def _rank(level: str) -> int:
    return BLOCK_LEVELS.index(level) if level in BLOCK_LEVELS else -1


def blocking(policy: Policy, findings: Sequence[Finding]) -> list[str]:
    """The advisory ids (sorted, each once) of `findings` at or above the rule's
    level that the rule's `allow` names neither by id nor by an alias."""
    if policy.block is None:
        return []
    floor = _rank(policy.block)
    found = {f.id for f in findings
             if _rank(f.level) >= floor
             and not ({f.id.upper(), *(a.upper() for a in f.aliases)} & policy.allow)}
    return sorted(found)


@dataclass(frozen=True, slots=True)
class _Seen:
    findings: Sequence[Finding] | None  # None: not scanned yet
    until: float


class ScanVerdicts:
    """The findings of each manifest, remembered a while (see the module doc)."""

    def __init__(self, lookup: ScanLookup) -> None:
        self.lookup = lookup
        self._seen: dict[Digest, _Seen] = {}

    def forget(self) -> None:
        self._seen.clear()

    async def findings(self, digest: Digest) -> Sequence[Finding] | None:
        now = time.monotonic()
        hit = self._seen.get(digest)
        if hit is not None and hit.until > now:
            return hit.findings
        found = await self.lookup(digest)
        if len(self._seen) >= _MAX_KEPT:
            self._seen.clear()
        self._seen[digest] = _Seen(found, now + (SCAN_TTL_S if found is not None
                                                 else PENDING_TTL_S))
        return found

    async def refusal(self, digest: Digest, policy: Policy) -> ScanDenied | None:
        """Why the rule refuses `digest` by its scan (None: it does not)."""
        findings = await self.findings(digest)
        if findings is None:
            if not policy.scan_required:
                return None
            return ScanDenied(f"policy {policy.pattern} requires a scan: not scanned yet, "
                              "retry shortly", {"digest": str(digest), "policy": str(policy),
                                                "reason": "not scanned yet"})
        ids = blocking(policy, findings)
        if not ids:
            return None
        named = ", ".join(ids[:MAX_NAMED]) + (f" and {len(ids) - MAX_NAMED} more"
                                              if len(ids) > MAX_NAMED else "")
        return ScanDenied(f"policy {policy.pattern} blocks vulnerabilities of severity "
                          f"{policy.block} or above: {named}",
                          {"digest": str(digest), "policy": str(policy),
                           "advisories": ids[:MAX_NAMED], "blocked": len(ids)})
