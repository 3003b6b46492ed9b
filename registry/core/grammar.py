"""The spec's grammars for repository names, tags, digests and media types.

Every name, reference and digest that arrives over HTTP passes through here
before it goes anywhere near storage, which is what keeps path traversal out.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass, field
from typing import Protocol, TypeGuard

from registry.core.errors import DigestInvalid, NameInvalid

NAME_RE = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
DIGEST_RE = re.compile(r"([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")
# RFC 6838 type/subtype, optionally with RFC 9110 parameters (kept, not interpreted).
_RESTRICTED = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_PARAM = rf"[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|\"[\x20\x21\x23-\x5b\x5d-\x7e]*\")"
MEDIA_TYPE_RE = re.compile(rf"{_RESTRICTED}/{_RESTRICTED}(?:{_PARAM})*")
# Repository-name globs of the site's rules (auth rules, trust policies): the name
# grammar's characters plus `*` (any run, `/` included), `?` and `[...]`, bounded.
_GLOB_RE = re.compile(r"[a-z0-9._/*?\[\]-]{1,255}")
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# Many clients cap "host/name" at 255 characters; we keep the name itself within that.
NAME_MAX = 255
# S3's bucket naming rules (general purpose buckets): 3 to 63 lowercase letters,
# digits, dots and hyphens, starting and ending with a letter or digit; no two dots
# in a row; not shaped like an IPv4 address; none of the prefixes and suffixes AWS
# reserves for its own kinds of names.
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IPV4_RE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")

# Registered algorithms and the exact shape of their encoded part.
ALGORITHMS: dict[str, re.Pattern[str]] = {
    "sha256": re.compile(r"[a-f0-9]{64}"),
    "sha512": re.compile(r"[a-f0-9]{128}"),
}


class Hash(Protocol):
    """What hashlib's hash objects offer (their class is private to hashlib)."""

    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...

    def copy(self) -> Hash: ...


@dataclass(frozen=True, slots=True)
class Digest:
    """A validated `algorithm:encoded` content digest."""

    algorithm: str
    hex: str
    # The text form, made once: digests are formatted and hashed several times per
    # request on the hot path (headers, cache keys, read events).
    _text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_text", f"{self.algorithm}:{self.hex}")

    def __str__(self) -> str:
        return self._text

    def __hash__(self) -> int:
        return hash(self._text)  # a str caches its hash

    @classmethod
    def parse(cls, value: str) -> Digest:
        """Parse and validate; raise DigestInvalid for anything else."""
        if not isinstance(value, str) or len(value) > 256:
            raise DigestInvalid("invalid digest", {"digest": str(value)[:256]})
        m = DIGEST_RE.fullmatch(value)
        if not m:
            raise DigestInvalid("invalid digest format", {"digest": value})
        alg, enc = m.group(1), m.group(2)
        pattern = ALGORITHMS.get(alg)
        if pattern is None:
            raise DigestInvalid(f"unsupported digest algorithm {alg!r}", {"digest": value})
        if not pattern.fullmatch(enc):
            raise DigestInvalid("invalid digest encoding", {"digest": value})
        return cls(alg, enc)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self) -> Hash:
        """A fresh hash object of this digest's algorithm."""
        return hashlib.new(self.algorithm)


def is_digest_like(reference: str) -> bool:
    """A reference with a colon can only be meant as a digest (tags cannot hold one)."""
    return ":" in reference


def validate_name(name: str) -> str:
    if len(name) > NAME_MAX or not NAME_RE.fullmatch(name):
        raise NameInvalid("invalid repository name", {"name": name[:NAME_MAX]})
    return name


def is_valid_tag(tag: str) -> bool:
    return TAG_RE.fullmatch(tag) is not None


def is_valid_media_type(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and len(value) <= 1024 and \
        MEDIA_TYPE_RE.fullmatch(value) is not None


def is_valid_bucket(name: str) -> bool:
    """Whether S3 would accept `name` as a bucket name (see _BUCKET_RE above)."""
    return (_BUCKET_RE.fullmatch(name) is not None and ".." not in name
            and _IPV4_RE.fullmatch(name) is None
            and not name.startswith(_BUCKET_PREFIXES)
            and not name.endswith(_BUCKET_SUFFIXES))


def is_valid_upload_id(value: str) -> bool:
    return UUID_RE.fullmatch(value) is not None


def check_glob(pattern: str) -> str:
    """A repository pattern as the site's rules write it (`ci/*`, `prod/app`), or
    ValueError saying why not. `..` or a leading `/` or `.` matches no repository
    name: a pattern with one is a typo."""
    if not _GLOB_RE.fullmatch(pattern) or ".." in pattern or pattern[0] in "/.":
        raise ValueError(f"pattern {pattern[:80]!r}: expected a repository name or glob")
    return pattern


def glob_matches(name: str, pattern: str) -> bool:
    """Whether a repository (or cache, or bucket) name matches a `check_glob` pattern:
    `*` matches any run of characters, `/` included, so `ci/*` is the whole `ci`
    namespace."""
    return fnmatch.fnmatchcase(name, pattern)
