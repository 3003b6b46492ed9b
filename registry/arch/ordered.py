"""Ranking builds the caller has already put in its own order of preference (Spack's
cached specs, newest version first): fit.judge decides what fits, the most specific
archspec target comes first, and among equally specific targets the caller's order
stands. Builds of targets archspec does not know never fit and never raise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from registry.arch.fit import Verdict, judge
from registry.arch.host import Candidate, Host
from registry.arch.platforms import PlatformError, known_target


def _verdict(candidate: Candidate, host: Host, any_os: bool) -> Verdict:
    try:
        known_target(candidate.target)
    except PlatformError:
        return Verdict(candidate, False,
                       f"built for {candidate.target[:64]!r}, a target archspec does not know")
    if any_os:  # the host did not say its OS: every OS is the host's
        verdict = judge(replace(candidate, os=host.os), host)
        return Verdict(candidate, verdict.fits, verdict.reason)
    return judge(candidate, host)


def rank_in_order(candidates: Iterable[Candidate], host: Host, *,
                  any_os: bool = False) -> list[Verdict]:
    """Every candidate judged against `host`: those that fit first, ranked 1, 2, ... by
    the most specific target (most ancestors in archspec), then in the order given;
    then those that do not fit, unranked, in the order given. `any_os` leaves the OS
    out of the judgement."""
    verdicts = [_verdict(c, host, any_os) for c in candidates]
    fitting = sorted((v for v in verdicts if v.fits),
                     key=lambda v: -len(known_target(v.candidate.target).ancestors))
    ranked = [replace(v, rank=n) for n, v in enumerate(fitting, 1)]
    return ranked + [v for v in verdicts if not v.fits]
