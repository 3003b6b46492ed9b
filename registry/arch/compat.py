"""Image-compatibility artifacts: which manifests are ones, their spec layer parsed
from bytes, and whether they hold on a host.

Two formats are accepted, each an artifact pushed as a referrer of the image it
describes: the OCI image-compatibility working group's (arch/compat_oci.py) and
Kubernetes node-feature-discovery's (arch/compat_nfd.py). Parsing is bounded
(arch/compat_load.py) and raises only CompatError. A parsed artifact is kept in the
index as canonical JSON (`Artifact.to_json`) and read back with `from_json`, which
validates it again. When several artifacts of one type describe an image, the one
created last counts, as NFD's client and the working group's proposal choose it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from registry.arch.compat_facts import Facts
from registry.arch.compat_load import CompatError, load_json, load_yaml
from registry.arch.compat_nfd import NfdSet, judge_nfd_set, parse_nfd
from registry.arch.compat_oci import OciSet, judge_oci_set, parse_oci
from registry.arch.host import Host

__all__ = ["ARTIFACT_NFD", "ARTIFACT_OCI", "SPEC_LAYERS", "Artifact", "CompatError",
           "CompatVerdict", "Stored", "from_json", "judge", "judge_current", "parse"]

ARTIFACT_OCI = "application/vnd.oci.image-compatibility.v1"
SPEC_OCI = "application/vnd.oci.image-compatibility.spec.v1+json"
ARTIFACT_NFD = "application/vnd.nfd.image-compatibility.v1alpha1"
SPEC_NFD = "application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml"
# artifactType -> the media type of the one layer that holds its spec
SPEC_LAYERS = {ARTIFACT_OCI: SPEC_OCI, ARTIFACT_NFD: SPEC_NFD}
CREATED = "org.opencontainers.image.created"  # the annotation that orders artifacts


@dataclass(frozen=True)
class Artifact:
    """A parsed, valid image-compatibility spec of one of the two formats."""

    artifact_type: str
    sets: tuple[OciSet, ...] | tuple[NfdSet, ...]
    document: Any  # the validated tree, JSON-compatible

    def to_json(self) -> str:
        """Canonical JSON: what the index records for the artifact."""
        return json.dumps({"artifactType": self.artifact_type, "spec": self.document},
                          sort_keys=True, separators=(",", ":"))


def _build(artifact_type: str, doc: Any) -> Artifact:
    if artifact_type == ARTIFACT_OCI:
        return Artifact(artifact_type, parse_oci(doc), doc)
    if artifact_type == ARTIFACT_NFD:
        return Artifact(artifact_type, parse_nfd(doc), doc)
    raise CompatError(f"{artifact_type[:80]!r} is not an image-compatibility artifact type")


def parse(artifact_type: str, data: bytes) -> Artifact:
    """The spec layer `data` of an artifact of `artifact_type`; CompatError when it is
    not a valid, bounded document of that format. NFD's YAML layer may be JSON too."""
    if artifact_type == ARTIFACT_OCI:
        return _build(artifact_type, load_json(data))
    if artifact_type == ARTIFACT_NFD:
        return _build(artifact_type, load_yaml(data))
    raise CompatError(f"{str(artifact_type)[:80]!r} is not an image-compatibility artifact type")


@lru_cache(maxsize=512)
def from_json(text: str) -> Artifact:
    """An artifact back from `Artifact.to_json`'s text, validated again (and kept: the
    text is the index's, content-addressed by its referrer, and resolution asks again
    for every request)."""
    doc = load_json(text.encode() if isinstance(text, str) else text)
    if not isinstance(doc, dict) or not isinstance(doc.get("artifactType"), str):
        raise CompatError("not a recorded image-compatibility artifact")
    return _build(doc["artifactType"], doc.get("spec"))


@dataclass(frozen=True)
class CompatVerdict:
    """Whether an image's compatibility artifacts hold on a host, and why; `score`
    is the best holding set's compatibility score (OCI) or weight (NFD)."""

    fits: bool
    reason: str
    score: int = 0


def judge(artifact: Artifact, host: Host) -> CompatVerdict:
    """Whether any compatibility set of `artifact` holds on `host` (the best, by
    score, is named); the reasons of every set when none does."""
    facts = Facts.of(host)
    kind = "OCI" if artifact.artifact_type == ARTIFACT_OCI else "NFD"
    held: list[tuple[int, int, str]] = []
    failed: list[str] = []
    for s in artifact.sets:
        if isinstance(s, OciSet):
            ok, why = judge_oci_set(s, facts)
            score = s.score
        else:
            ok, why = judge_nfd_set(s, facts)
            score = s.weight
        if ok:
            held.append((score, -s.number, why))
        else:
            failed.append(f"set {s.number}: {why}")
    if not held:
        return CompatVerdict(False, f"no {kind} compatibility set holds ("
                             + "; ".join(failed[:4]) + (", ..." if len(failed) > 4 else "")
                             + ")")
    score, number, why = max(held)
    return CompatVerdict(True, f"{kind} compatibility set {-number} (score {score}) holds: "
                         + why, score)


@dataclass(frozen=True)
class Stored:
    """An artifact as the index recorded it for a subject manifest."""

    digest: str
    artifact_type: str
    created: str  # the org.opencontainers.image.created annotation, "" if none
    pushed_at: float
    spec: str  # Artifact.to_json()


def current(stored: Iterable[Stored]) -> list[Stored]:
    """Per artifact type, the one created last (then pushed last, then by digest)."""
    newest: dict[str, Stored] = {}
    for s in stored:
        key = (s.created, s.pushed_at, s.digest)
        old = newest.get(s.artifact_type)
        if old is None or key > (old.created, old.pushed_at, old.digest):
            newest[s.artifact_type] = s
    return [newest[t] for t in sorted(newest)]


def judge_current(stored: Iterable[Stored], host: Host) -> CompatVerdict:
    """Whether the compatibility artifacts recorded for one manifest all hold on
    `host` (the newest of each type); fits, with no reason, when there are none."""
    reasons: list[str] = []
    score = 0
    for s in current(stored):
        try:
            verdict = judge(from_json(s.spec), host)
        except CompatError as exc:  # recorded by an older version: cannot judge it
            reasons.append(f"compatibility artifact {s.digest[:19]} not checked ({exc})")
            continue
        if not verdict.fits:
            return CompatVerdict(False, verdict.reason)
        reasons.append(verdict.reason)
        score = max(score, verdict.score)
    return CompatVerdict(True, "; ".join(reasons), score)
