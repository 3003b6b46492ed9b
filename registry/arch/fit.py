"""Whether a build fits a host, why, and which fitting build is best.

A build for target T runs on host H when T is H or one of H's ancestors in archspec's
partial order (`H >= T`); the order itself is archspec's, never a table of our own.
Among the builds that fit: the most specific target first (deepest in the order), then
GPU builds whose CUDA is at most the host driver's (higher CUDA first), then generic
fallbacks, the way Spack reasons about reusing binaries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import archspec.cpu

from registry.arch.host import Candidate, Host, Mpi, Version, dotted
from registry.arch.platforms import known_target


@dataclass(frozen=True)
class Verdict:
    """Whether one candidate fits a host, the reason in words, and its rank (1 is best)."""

    candidate: Candidate
    fits: bool
    reason: str
    rank: int | None = None


def target_fits(build: str, host: str) -> tuple[bool, str]:
    """Whether a build for archspec target `build` runs on a host of target `host`."""
    want, have = known_target(build), known_target(host)
    if want.family.name != have.family.name:
        return False, f"{build} is {want.family.name}, the host is {have.family.name}"
    if want == have:
        return True, f"{build} is the host's target"
    if have >= want:
        return True, f"{build} is an ancestor of {host}"
    missing = sorted(want.features - have.features)
    if missing:
        return False, f"{build} needs {', '.join(missing[:8])} not on {host}"
    return False, f"{build} is not an ancestor of {host}"


def cuda_fits(needs: Version | None, offers: Version | None) -> tuple[bool, str]:
    """A build needing CUDA X fits a host driver offering CUDA Y when X <= Y."""
    if needs is None:
        return True, "needs no CUDA"
    return _runtime_fits("CUDA", needs, offers)


def _runtime_fits(name: str, needs: Version, offers: Version | None) -> tuple[bool, str]:
    """A GPU runtime (CUDA, ROCm) the build needs at version X: the host's must be >= X."""
    if offers is None:
        return False, f"needs {name} {dotted(needs)}, the host has none"
    if needs <= offers:
        return True, f"{name} {dotted(needs)} <= host's {dotted(offers)}"
    return False, f"needs {name} {dotted(needs)}, the host offers {dotted(offers)}"


def mpi_fits(needs: Mpi | None, offers: Mpi | None) -> tuple[bool, str]:
    """Same MPI flavour, and the build's version a prefix of the host's (openmpi@4.1 fits
    openmpi@4.1.5), or the other way round when the host gave the shorter one."""
    if needs is None:
        return True, "needs no MPI"
    if offers is None:
        return False, f"needs {needs}, the host has no MPI"
    if needs.flavour != offers.flavour:
        return False, f"needs {needs.flavour}, the host has {offers.flavour}"
    common = min(len(needs.version), len(offers.version))
    if needs.version[:common] != offers.version[:common]:
        return False, f"needs {needs}, the host has {offers}"
    return True, f"{needs} matches host's {offers}"


def judge(candidate: Candidate, host: Host) -> Verdict:
    """Whether `candidate` fits `host`, with every reason joined in words."""
    if candidate.os != host.os:
        return Verdict(candidate, False, f"built for {candidate.os}, the host is {host.os}")
    checks = [
        target_fits(candidate.target, host.target),
        cuda_fits(candidate.cuda, host.cuda),
        mpi_fits(candidate.mpi, host.mpi),
    ]
    if candidate.rocm is not None:
        checks.append(_runtime_fits("ROCm", candidate.rocm, host.rocm))
    failed = [reason for ok, reason in checks if not ok]
    if failed:
        return Verdict(candidate, False, "; ".join(failed))
    return Verdict(candidate, True, "; ".join(reason for _, reason in checks))


def _depth(target: str) -> int:
    return len(archspec.cpu.TARGETS[target].ancestors)


def _preference(candidate: Candidate) -> tuple[int, int, Version, str]:
    # Sorted ascending: deeper target first, then GPU before generic, higher CUDA first;
    # the digest breaks ties so the order is stable whatever order candidates came in.
    gpu = candidate.cuda is not None or candidate.rocm is not None
    cuda = candidate.cuda or candidate.rocm or ()
    return (-_depth(candidate.target), 0 if gpu else 1, tuple(-v for v in cuda), candidate.digest)


def rank(candidates: Iterable[Candidate], host: Host) -> list[Verdict]:
    """Every candidate judged against `host`: those that fit first, best first with
    ranks 1, 2, ...; then those that do not, without a rank, in their given order."""
    verdicts = [judge(candidate, host) for candidate in candidates]
    fitting = sorted((v for v in verdicts if v.fits), key=lambda v: _preference(v.candidate))
    ranked = [Verdict(v.candidate, True, v.reason, n) for n, v in enumerate(fitting, 1)]
    return ranked + [v for v in verdicts if not v.fits]


def best(candidates: Iterable[Candidate], host: Host) -> Candidate | None:
    """The best fitting candidate for `host`, or None when nothing fits."""
    ranked = rank(candidates, host)
    return ranked[0].candidate if ranked and ranked[0].fits else None
