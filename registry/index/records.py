"""What goes into the index (events) and what comes out of it (rows).

Events are plain data, applied in order by `Index.apply`, one transaction per
batch. They name digests as strings and take the parsed manifest by its shape
(`ManifestLike`), so the index needs nothing from core to record one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class DescriptorLike(Protocol):
    """The parts of a descriptor the index reads (read-only: descriptors are frozen)."""

    @property
    def media_type(self) -> str: ...

    @property
    def digest(self) -> Any: ...  # str() gives "algorithm:hex"

    @property
    def size(self) -> int: ...

    @property
    def platform(self) -> dict[str, Any] | None: ...

    @property
    def annotations(self) -> dict[str, str] | None: ...


class ManifestLike(Protocol):
    """The parts of a parsed manifest (core.manifest_format.Manifest) the index reads."""

    @property
    def media_type(self) -> str: ...

    @property
    def config(self) -> DescriptorLike | None: ...

    @property
    def manifests(self) -> Sequence[DescriptorLike]: ...

    @property
    def subject(self) -> DescriptorLike | None: ...

    @property
    def annotations(self) -> dict[str, str]: ...

    @property
    def blobs(self) -> Sequence[DescriptorLike]: ...

    @property
    def effective_artifact_type(self) -> str | None: ...


# -- events (writes) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ManifestPut:
    """A manifest stored in `repo` (and `tag` pointed at it, if given). `config` is
    the config blob's bytes when small, for platforms; parsed on the index thread."""

    repo: str
    digest: str
    manifest: ManifestLike
    size: int
    tag: str | None = None
    config: bytes | None = None
    at: float = 0.0
    # What core's artifact check recorded of the document the manifest carries
    # (core/artifact_checks.py), for the `artifacts` table; None when none was checked.
    artifact: str | None = None


@dataclass(frozen=True, slots=True)
class ManifestDescribe:
    """Describe `repo@digest` again (its build rows, index/builds.py) without touching
    its other rows: the catch-up's event for a manifest indexed before builds were."""

    repo: str
    digest: str
    manifest: ManifestLike
    config: bytes | None = None
    artifact: str | None = None  # as ManifestPut's: its `artifacts` row is rewritten too
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class ManifestDeleted:
    repo: str
    digest: str


@dataclass(frozen=True, slots=True)
class TagSet:
    repo: str
    tag: str
    digest: str
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class TagDeleted:
    repo: str
    tag: str


@dataclass(frozen=True, slots=True)
class BlobLinked:
    repo: str
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class BlobUnlinked:
    repo: str
    digest: str


@dataclass(frozen=True, slots=True)
class PullCount:
    repo: str
    digest: str
    kind: str  # "manifest" or "blob"
    count: int
    last_pulled: float


@dataclass(frozen=True, slots=True)
class PullsSeen:
    """Read events counted in memory since the last flush; added to the totals."""

    counts: tuple[PullCount, ...]


@dataclass(frozen=True, slots=True)
class SpecRow:
    """One spec a Spack build cache holds: what `registry spack list` and the API
    show. `variants` maps variant names to values; `dependencies` lists the
    direct dependencies' names and hashes."""

    cache: str
    hash: str
    name: str
    version: str
    platform: str
    os: str
    target: str
    compiler: str
    variants: dict[str, Any]
    dependencies: tuple[tuple[str, str], ...]  # (name, hash)
    size: int  # of the tarball
    format: int  # the spec format: 4 (spack 0.2x) or 5 (spack 1.x)
    source: str  # how it arrived: "oci", "v3" or "v2"
    pushed_at: float


@dataclass(frozen=True, slots=True)
class SpecPut:
    """A cache holds `row` (replacing what it held under the same hash)."""

    row: SpecRow

    @property
    def repo(self) -> str:
        return self.row.cache


@dataclass(frozen=True, slots=True)
class SpecDeleted:
    repo: str  # the cache
    hash: str


@dataclass(frozen=True, slots=True)
class SpecsReset:
    """A cache holds exactly `rows`: what it held before and is not among them is gone."""

    repo: str  # the cache
    rows: tuple[SpecRow, ...]


@dataclass(frozen=True, slots=True)
class SpecsThrough:
    """A cache's rows reflect every journal entry up to `entry` (registry.spack.
    journal), but for the late ones a replay of the window before it brings."""

    repo: str  # the cache
    entry: str


@dataclass(frozen=True, slots=True)
class SignatureRow:
    """One signature of a manifest as last verified (registry.trust: SignatureCheck):
    `signature` is the digest of the manifest carrying it, `position` its place there;
    a manifest found unsigned has one row with signature "" and reason "unsigned"."""

    signature: str
    position: int
    format: str
    identity: str
    key: str
    valid: bool
    reason: str
    detail: str
    checked_at: float = 0.0


@dataclass(frozen=True, slots=True)
class SignaturesSeen:
    """Manifest `digest` of `repo` has exactly these signatures (its rows replaced)."""

    repo: str
    digest: str
    rows: tuple[SignatureRow, ...]


@dataclass(frozen=True, slots=True)
class ScanRow:
    """The summary of one manifest's scan result (registry/scan/summary.py makes it): its
    worst vulnerability (`max_severity`: one of index/scans.py SEVERITIES, or None when
    the result was not matched against advisories), how many vulnerabilities of each
    level (`counts`), and `synced_at`: a time at or after the result file was written,
    which the catch-up compares with the file's mtime to know what changed since."""

    digest: str
    max_severity: str | None
    counts: dict[str, int]
    packages: int
    scanned_at: float
    synced_at: float


@dataclass(frozen=True, slots=True)
class ScanSeen:
    """A manifest's scan result was written: its summary is `row` (unless the index holds
    one synced later: an older read loses to a newer write)."""

    row: ScanRow

    @property
    def repo(self) -> str:  # a result is per digest, in no one repository
        return ""


@dataclass(frozen=True, slots=True)
class ScanForgotten:
    """The scan result of `digest` was removed: its summary goes, unless it was synced
    at or after `before` (a newer result written meanwhile)."""

    digest: str
    before: float

    @property
    def repo(self) -> str:
        return ""


SpecEvent = SpecPut | SpecDeleted | SpecsReset | SpecsThrough
ScanEvent = ScanSeen | ScanForgotten
WriteEvent = (ManifestPut | ManifestDescribe | ManifestDeleted | TagSet | TagDeleted
              | BlobLinked | BlobUnlinked | SpecEvent | SignaturesSeen | ScanEvent)
Event = WriteEvent | PullsSeen


# -- rows (reads) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """A manifest stored in a repository."""

    repo: str
    digest: str
    media_type: str
    artifact_type: str  # "" if none
    size: int
    subject: str  # digest of the subject, "" if none
    config_digest: str  # "" for an index
    annotations: dict[str, str] = field(default_factory=dict)
    pushed_at: float = 0.0


@dataclass(frozen=True, slots=True)
class TagRow:
    repo: str
    tag: str
    digest: str
    updated_at: float


@dataclass(frozen=True, slots=True)
class BlobRow:
    """A blob linked into a repository."""

    repo: str
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class Platform:
    """A platform `digest` runs on, as declared by its own config (source "config",
    declared_by == digest) or by an index that lists it (source "index")."""

    os: str
    architecture: str
    variant: str
    os_version: str
    declared_by: str
    source: str


@dataclass(frozen=True, slots=True)
class ArtifactRow:
    """A checked artifact document (index/artifacts.py) of referrer `digest`, kept for
    its `subject`: the text core's artifact check recorded, e.g. an image-compatibility
    spec as registry.arch.compat writes it."""

    repo: str
    digest: str
    subject: str
    artifact_type: str
    created: str  # the org.opencontainers.image.created annotation, "" if none
    document: str
    pushed_at: float


@dataclass(frozen=True, slots=True)
class BuildRow:
    """What manifest `digest` needs of a host, as its own config says (source "config",
    declared_by == digest) or as an index listing it says (source "index", declared_by
    the index, `entry` its position there). Columns are the describer's flat fields
    (registry.arch.describe.fields); `sources` maps each field to where it came from.
    A manifest that could not be described has `error` set and nothing else."""

    repo: str
    digest: str
    declared_by: str
    entry: int
    source: str
    os: str | None = None
    architecture: str | None = None
    variant: str | None = None
    os_version: str | None = None
    os_features: str | None = None
    features: str | None = None
    target: str | None = None
    cuda: str | None = None
    rocm: str | None = None
    mpi: str | None = None
    memory: int | None = None
    sources: dict[str, str] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ScanSummary:
    """What the index says of the scan of a manifest in a repository: its ScanRow, or
    for an index of images its children's together (worst level, counts added, the
    latest scanned_at); see Index.scan_summary."""

    max_severity: str | None
    counts: dict[str, int]
    scanned_at: float


@dataclass(frozen=True, slots=True)
class BlobUse:
    """Where a blob is used: repositories it is linked into, manifests naming it."""

    digest: str
    linked_in: list[str]
    used_by: list[tuple[str, str]]  # (repo, manifest digest)


@dataclass(frozen=True, slots=True)
class PullStat:
    """Pulls of one manifest or blob; count 0 and last_pulled None: never pulled."""

    repo: str
    digest: str
    kind: str
    count: int
    last_pulled: float | None


@dataclass(frozen=True, slots=True)
class ManifestUse:
    """A manifest that names a blob: its tags, its build rows, and the indexes that
    list it (index digest -> that index's tags)."""

    repo: str
    digest: str
    media_type: str
    tags: list[str]
    builds: list[BuildRow]
    indexes: dict[str, list[str]]


@dataclass(frozen=True, slots=True)
class PlatformBytes:
    """Per platform (os, architecture, variant, target) of the manifests naming a blob:
    how many they are, the bytes of the distinct blobs they name (`bytes`), and of
    those the bytes some manifest of another platform in the same repositories names
    too (`shared`)."""

    os: str
    architecture: str
    variant: str
    target: str
    manifests: int
    bytes: int
    shared: int


@dataclass(frozen=True, slots=True)
class BlobReport:
    """Where a blob is used, within the repositories asked about (index/blob_report.py).
    `truncated`: more manifests name it than were reported."""

    digest: str
    size: int | None
    linked_in: list[str]
    manifests: list[ManifestUse]
    platforms: list[PlatformBytes]
    truncated: bool
