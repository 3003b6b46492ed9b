"""Where everything lives in a storage driver: the one module that knows the layout.

Every area of the tree, and the one owner that writes it (DESIGN.md's owner
table; docs/architecture.md "Storage is the truth" draws the same tree):

    blobs/<alg>/<2 hex>/<hex>                                  bytes, stored once
        owner: core's blob service (core/blobs.py), the only code that commits a
        verified file here or removes one; everyone else asks `Blobs`
    repositories/<name>/                                       owner: core (manifests, tags,
        _manifests/revisions/<alg>/<hex>                       referrers, uploads)
                                                               link: manifest is in repo
                                                               (JSON, `RevisionLink`)
        _manifests/tags/<tag>/current                          -> digest
        _manifests/tagmap/<tag>.<alg>.<hex>                    empty: tag -> digest, listable
        _layers/<alg>/<hex>                                    link: blob is in repo
        _referrers/<alg>/<subject>/<alg>/<hex>                 link: referrer of subject
        _uploads/<uuid>/data                                   upload in progress
        _uploads/<uuid>/state                                  its JSON state
    buckets/<bucket>                                           marker: the bucket exists
    objects/<bucket>/<encoded key>                             S3 object entry (JSON)
    objectdata/<bucket>/<2 hex>/<id>                           bytes of an S3 object
    multipart/<bucket>/<upload id>/state                       S3 multipart upload
    multipart/<bucket>/<upload id>/parts/<5 digits>            its part records (JSON)
    multipart/<bucket>/<upload id>/data/<id>                   their bytes
        owner of buckets/, objects/, objectdata/, multipart/: core's object
        service (core/objects.py, core/multipart.py), behind `Objects`
    spack/<cache>/_journal/<epoch>/<entry>                     a record added or removed
    spack/<cache>/_snapshots/<entry>                           every record, as of an entry
    spack/<cache>/_signed/<alg>/<hex>                          a document the registry signed
        owner: the Spack room (registry/spack), through core's `SpackArea`
        handle (core/areas.py)
    _auth/{users,robots,used,keys,signing}/<name>              users, robots, S3 keys, token keys
        owner: the auth room (registry/auth), through core's `AuthArea` handle
    _trust/keys/<name>.{key,pub}                               signing keys: private, public half
    _trust/held/<repo>/_at/<alg>/<hex>/<tag>                   a quarantined push's tag, held
    _trust/held/<repo>/_tags/<tag>                             the newest held push of the tag
    _trust/policies/current                                    the policy rules last applied
        owner: the trust room (registry/trust), through core's `TrustArea` handle
    _scan/results/<alg>/<hex>.json                             a manifest's scan (JSON)
        owner: the scan room (registry/scan), through core's `ScanArea` handle
    _gc/lease                                                  the running collection's lease
    _gc/seen/<alg>/<hex>                                       found to exist while it runs
    _gc/trash/<alg>/<hex>                                      a blob being swept
    _gc/reserve                                                room kept for a full disk
    _quarantine/<alg>/<hex>                                    a corrupt blob, kept aside
    _scrub/last.json                                           the last scrub's figures
        owner of _gc/, _quarantine/, _scrub/: core's housekeeping (core/gc.py,
        core/scrub.py); nobody else
    _tmp/...                                                   scratch space (scratch());
        the drivers' own, never listed or walked; the node cache writes its
        downloads there through core's `ScratchSpace` (core/scratch.py)

Repository name components start with [a-z0-9], so the `_` directories can
never collide with a nested repository; the top-level areas that are not
named by what clients push (`_auth/`, `_trust/`, `_scan/`, `_gc/`, `_quarantine/`, `_scrub/`,
`_tmp/`) start with `_` too. Manifests are blobs too: the revision link
says which repository holds one and with which media type it was pushed.
Everything the OCI API answers can be rebuilt from this tree alone.

Object keys (the S3-compatible API)
-----------------------------------
An S3 object key is any UTF-8 string of 1 to 1024 bytes: empty segments
(`a//b`, a leading or trailing `/`), `.` and `..` segments, any character.
`encode_key` maps it into the driver path grammar reversibly (`decode_key`),
segment by segment on its UTF-8 bytes:

* Letters and digits stand for themselves, except `9`, `z` and the bytes the
  three escape characters stand for: every other byte is an escape character
  followed by the byte in two upper-case hex digits, the escape chosen by the
  byte's range so that escapes sort where their byte does:
  `-XX` for 0x00-0x2E (including `-` and `.`), `9XX` for 0x39-0x40,
  `_XX` for 0x5B-0x60, `zXX` for 0x7A-0xFF (all non-ASCII UTF-8 bytes).
  `/` stays the separator.
* The last segment (the leaf) ends with `-`, and no directory segment does:
  keys `a` (`a-`) and `a/b` (`a/b-`) coexist on a filesystem as they do in
  S3, so every driver stores both (no file-versus-directory clash).
* An empty segment before a `/` is `._`; an empty leaf is just `-`.

So `linux/zlib-1.3.spack` becomes `linux/z7Alib-2D1-2E3-2Espack-`, and a
`.`/`..` segment becomes `-2E`/`-2E-2E`, which the grammar accepts.

The encoding preserves order: `a < b` as S3 compares keys (their UTF-8 bytes)
exactly when `encode_key(a) < encode_key(b)` as strings, which is the order
`Driver.walk` yields paths in. So walking `objects/<bucket>` lists its keys in
ListObjectsV2 order, `start_after` can be an encoded key, and with
`encode_prefix` a key prefix is a path prefix (`k.startswith(p)` exactly when
`encode_key(k).startswith(encode_prefix(p))`). (Escapes are chosen per byte
range for this: the separator `/` and every escape sort among the literal
characters just as their bytes do, and the leaf's final `-` sorts below all.)

Limits: a byte takes 1 or 3 characters, and a component may not exceed 255
bytes (NAME_MAX): a segment of letters and digits (other than 9 and z) may be
254 bytes long, any segment of up to 84 bytes fits, and longer ones raise
`KeyTooLong` (S3's KeyTooLongError). A whole encoded key is at most 3073
bytes, within `driver.MAX_PATH` whatever the bucket. On the s3 driver the
store's own key limit (1024 bytes on AWS S3) also applies to the prefix plus
`objects/<bucket>/` plus the encoded key; the store refuses longer ones.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from registry.storage.driver import MAX_COMPONENT, MAX_PATH


class Digest(Protocol):
    """Anything naming content by algorithm and hex (core.grammar.Digest is one);
    structural, so that storage does not import core."""

    @property
    def algorithm(self) -> str: ...

    @property
    def hex(self) -> str: ...

BLOBS = "blobs"
REPOSITORIES = "repositories"
OBJECTS = "objects"
BUCKETS = "buckets"
OBJECT_DATA = "objectdata"
MULTIPART = "multipart"
TMP = "_tmp"
# Entries of the scratch space whose name starts with this survive the start-up
# clean (a node cache's counters: registry/cache/stats.py).
KEEP_PREFIX = "keep-"
REPO_MARKERS = ("_manifests", "_layers", "_uploads")


def blob(digest: Digest) -> str:
    return f"{BLOBS}/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"


# -- reading the tree back: what a walked path names --------------------------

# The registered digest algorithms and the length of their lower-case hex
# (core.grammar.ALGORITHMS says the same; storage does not import core).
DIGEST_HEX = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"[0-9a-f]+")
LAYER, MANIFEST = "layer", "manifest"


class DigestName(NamedTuple):
    """A digest as a path spells it: algorithm and hex (core makes a Digest of it)."""

    algorithm: str
    hex: str


class LinkName(NamedTuple):
    """What a walked link file says: repository, LAYER or MANIFEST, and digest."""

    repo: str
    kind: str
    digest: DigestName


def digest_name(algorithm: str, hex_: str) -> DigestName | None:
    """The digest an `<alg>/<hex>` pair of path components spells; None for a stray name."""
    if DIGEST_HEX.get(algorithm) != len(hex_) or not _HEX.fullmatch(hex_):
        return None
    return DigestName(algorithm, hex_)


def blob_of(path: str) -> DigestName | None:
    """The digest a walked `blobs/<alg>/<2 hex>/<hex>` path stores; None for
    anything else (a stray file)."""
    parts = path.split("/")
    if len(parts) != 4 or parts[0] != BLOBS or parts[2] != parts[3][:2]:
        return None
    return digest_name(parts[1], parts[3])


def link_of(path: str) -> LinkName | None:
    """What a walked link file names: `repositories/<name>/_layers/<alg>/<hex>`
    or `repositories/<name>/_manifests/revisions/<alg>/<hex>`; None for anything else."""
    parts = path.split("/")
    if len(parts) >= 5 and parts[-3] == "_layers":
        kind, end = LAYER, -3
    elif len(parts) >= 6 and parts[-4:-2] == ["_manifests", "revisions"]:
        kind, end = MANIFEST, -4
    else:
        return None
    digest = digest_name(parts[-2], parts[-1])
    if digest is None:
        return None
    return LinkName("/".join(parts[1:end]), kind, digest)


def scratch(name: str) -> str:
    """A private file in the drivers' scratch space (a node cache's download in
    progress): never listed or walked, and removed at start when a crash left it."""
    return f"{TMP}/{name}"


def repo(name: str) -> str:
    return f"{REPOSITORIES}/{name}"


def layer_link(name: str, digest: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_layers/{digest.algorithm}/{digest.hex}"


def revision_link(name: str, digest: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/revisions/{digest.algorithm}/{digest.hex}"


def revisions_root(name: str) -> str:
    """Every revision link of a repository is below this (retention walks it)."""
    return f"{REPOSITORIES}/{name}/_manifests/revisions"


def revisions_dir(name: str, algorithm: str) -> str:
    return f"{revisions_root(name)}/{algorithm}"


# A revision link holds a few hundred bytes; anything larger is not one.
REVISION_LINK_MAX = 4096


@dataclass(frozen=True, slots=True)
class RevisionLink:
    """The JSON document at `revision_link`: which manifest a repository holds,
    the media type it was pushed with, its size, and its subject (so a delete
    removes the referrer link without reading the manifest). Written by
    core/manifests.py, read by it and by core/retention.py."""

    digest: str
    media_type: str
    size: int
    subject: str | None = None
    # Links written before subjects were recorded have no such field: their
    # subject must be found another way (core/manifests.py `_subject_of`).
    subject_known: bool = True

    def to_json(self) -> bytes:
        return json.dumps({"digest": self.digest, "mediaType": self.media_type,
                           "size": self.size, "subject": self.subject}).encode()

    @classmethod
    def parse(cls, raw: bytes) -> RevisionLink:
        """The link in `raw`; ValueError when it is not one."""
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError("a revision link is a JSON object")
        media_type, size = doc.get("mediaType"), doc.get("size")
        subject = doc.get("subject")
        if not isinstance(media_type, str) or not isinstance(size, int) \
                or not (subject is None or isinstance(subject, str)):
            raise ValueError("not a revision link")
        return cls(str(doc.get("digest") or ""), media_type, size, subject or None,
                   "subject" in doc)


def tags_dir(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags"


def tag_dir(name: str, tag: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags/{tag}"


def tag_current(name: str, tag: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags/{tag}/current"


def tag_map_dir(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tagmap"


def tag_map_entry(name: str, tag: str, digest: Digest) -> str | None:
    """The marker saying `tag` points at `digest`, so that one listing of the
    directory tells every tag's target (a Spack cache has tens of thousands);
    None when the name would exceed a path component (a long tag with sha512)."""
    entry = f"{tag}.{digest.algorithm}.{digest.hex}"
    if len(entry) > MAX_COMPONENT:
        return None
    return f"{tag_map_dir(name)}/{entry}"


def parse_tag_map_entry(entry: str) -> tuple[str, str, str] | None:
    """(tag, algorithm, hex) of a tag map entry name, or None for a stray name."""
    parts = entry.rsplit(".", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 and parts[0] else None


def referrer_subjects_dir(name: str, algorithm: str) -> str:
    return f"{REPOSITORIES}/{name}/_referrers/{algorithm}"


def referrers_dir(name: str, subject: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_referrers/{subject.algorithm}/{subject.hex}"


def referrer_link(name: str, subject: Digest, referrer: Digest) -> str:
    return f"{referrers_dir(name, subject)}/{referrer.algorithm}/{referrer.hex}"


def layers_dir(name: str, algorithm: str) -> str:
    return f"{REPOSITORIES}/{name}/_layers/{algorithm}"


def uploads_dir(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads"


def upload_data(name: str, upload_id: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}/data"


def upload_state(name: str, upload_id: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}/state"


def upload_dir(name: str, upload_id: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}"


# -- S3-compatible API objects (see "Object keys" above) ---------------------

MAX_KEY_BYTES = 1024
EMPTY_SEGMENT = "._"
LEAF_END = "-"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class InvalidKey(ValueError):
    """An object key (or encoded path) that cannot be stored or decoded."""


class KeyTooLong(InvalidKey):
    """A key over 1024 bytes, or with a segment too long once encoded: S3's KeyTooLongError."""


class InvalidBucketName(ValueError):
    """Not an S3 bucket name (3-63 of [a-z0-9.-], starting and ending alphanumeric)."""


def _token(b: int) -> str:
    if b <= 0x2E:
        return f"-{b:02X}"
    if 0x39 <= b <= 0x40:
        return f"9{b:02X}"
    if 0x5B <= b <= 0x60:
        return f"_{b:02X}"
    if b >= 0x7A:
        return f"z{b:02X}"
    return chr(b)


# Byte (as a latin-1 code point) -> its encoding, for str.translate; "/" is split off first.
_ENCODE = {b: _token(b) for b in range(256) if b != 0x2F}
_ESCAPES = "-9_z"


def _segments(key: str) -> list[str]:
    """The key's segments as latin-1 strings of their UTF-8 bytes."""
    try:
        raw = key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidKey("key is not valid UTF-8") from None
    if len(raw) > MAX_KEY_BYTES:
        raise KeyTooLong(f"key longer than {MAX_KEY_BYTES} bytes")
    return raw.decode("latin-1").split("/")


def _component(text: str) -> str:
    if len(text) > MAX_COMPONENT:
        raise KeyTooLong(f"key segment too long once encoded ({len(text)} > {MAX_COMPONENT})")
    return text


def encode_key(key: str) -> str:
    """The driver path (relative, no bucket) that stores object key `key`."""
    if not key:
        raise InvalidKey("empty key")
    *dirs, leaf = _segments(key)
    parts = [_component(d.translate(_ENCODE) or EMPTY_SEGMENT) for d in dirs]
    parts.append(_component(leaf.translate(_ENCODE) + LEAF_END))
    return "/".join(parts)


def encode_prefix(prefix: str) -> str:
    """The path prefix of every encoded key that starts with `prefix` (and of no
    other): like encode_key without the leaf's end. Not length-checked."""
    *dirs, partial = _segments(prefix)
    return "/".join([d.translate(_ENCODE) or EMPTY_SEGMENT for d in dirs]
                    + [partial.translate(_ENCODE)])


def _decode_component(text: str) -> bytes:
    out = bytearray()
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in _ESCAPES:
            try:
                out.append(int(text[i + 1:i + 3], 16))
            except ValueError:
                raise InvalidKey(f"bad escape in {text!r}") from None
            i += 3
        else:
            out.append(ord(c))
            i += 1
    return bytes(out)


def decode_key(path: str) -> str:
    """The object key stored at driver path `path` (relative, no bucket)."""
    *dirs, leaf = path.split("/")
    if not leaf.endswith(LEAF_END):
        raise InvalidKey(f"not an encoded key: {path!r}")
    raw = b"/".join([b"" if d == EMPTY_SEGMENT else _decode_component(d) for d in dirs]
                    + [_decode_component(leaf[:-1])])
    try:
        key = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidKey(f"not an encoded key: {path!r}") from None
    # Only the canonical spelling decodes: a path is one key's or none's.
    if not key or encode_key(key) != path:
        raise InvalidKey(f"not an encoded key: {path!r}")
    return key


def bucket_dir(bucket: str) -> str:
    """Where the objects of `bucket` live."""
    if not _BUCKET.fullmatch(bucket):
        raise InvalidBucketName(f"invalid bucket name {bucket!r}")
    return f"{OBJECTS}/{bucket}"


def object_path(bucket: str, key: str) -> str:
    """The driver path of object `key` in `bucket`."""
    path = f"{bucket_dir(bucket)}/{encode_key(key)}"
    if len(path) > MAX_PATH:  # cannot happen with the limits above; kept as a guard
        raise KeyTooLong("encoded key too long")
    return path


def object_key(bucket: str, path: str) -> str:
    """The key of the object of `bucket` stored at driver path `path` (from walk)."""
    base = bucket_dir(bucket) + "/"
    if not path.startswith(base):
        raise InvalidKey(f"{path!r} is not in bucket {bucket!r}")
    return decode_key(path[len(base):])


def bucket_marker(bucket: str) -> str:
    """The marker whose presence says `bucket` exists (created explicitly or by
    its first write), so an empty bucket exists too."""
    bucket_dir(bucket)
    return f"{BUCKETS}/{bucket}"


def buckets_dir() -> str:
    return BUCKETS


def object_data(bucket: str, data_id: str) -> str:
    """Where the bytes of an object that is not content-addressed live; `data_id`
    is a fresh hex id per write, so a new version never overwrites the old one
    in place (readers of the old entry keep reading the old bytes)."""
    bucket_dir(bucket)
    return f"{OBJECT_DATA}/{bucket}/{data_id[:2]}/{data_id}"


def multipart_bucket_dir(bucket: str) -> str:
    bucket_dir(bucket)
    return f"{MULTIPART}/{bucket}"


def multipart_dir(bucket: str, upload_id: str) -> str:
    return f"{multipart_bucket_dir(bucket)}/{upload_id}"


def multipart_state(bucket: str, upload_id: str) -> str:
    return f"{multipart_dir(bucket, upload_id)}/state"


def multipart_parts_dir(bucket: str, upload_id: str) -> str:
    return f"{multipart_dir(bucket, upload_id)}/parts"


def multipart_part(bucket: str, upload_id: str, number: int) -> str:
    """The record of part `number` (zero-padded: the listing is in part order)."""
    return f"{multipart_dir(bucket, upload_id)}/parts/{number:05d}"


def multipart_data(bucket: str, upload_id: str, data_id: str) -> str:
    return f"{multipart_dir(bucket, upload_id)}/data/{data_id}"


# -- Spack build caches (registry.spack) ------------------------------------------
# spack/<cache>/_journal/<epoch>/<entry>   one record added or removed (spack.journal)
# spack/<cache>/_snapshots/<entry>         every record, as of that journal entry
# spack/<cache>/_signed/<alg>/<hex>        a document the registry clearsigned
# A cache is named like a repository; `_` cannot start a component of one, so
# cache `a` and cache `a/_journal` cannot collide.
SPACK = "spack"
SPACK_JOURNAL = "_journal"
SPACK_SNAPSHOTS = "_snapshots"


def spack_cache(cache: str) -> str:
    return f"{SPACK}/{cache}"


def spack_journal_dir(cache: str) -> str:
    return f"{SPACK}/{cache}/{SPACK_JOURNAL}"


def spack_snapshots_dir(cache: str) -> str:
    return f"{SPACK}/{cache}/{SPACK_SNAPSHOTS}"


def spack_signed(cache: str, digest: Digest) -> str:
    return f"{SPACK}/{cache}/_signed/{digest.algorithm}/{digest.hex}"


# _auth/users/<name>            a user (JSON: password hash, groups)
# _auth/robots/<name>           a robot (JSON: token hash, scopes, expiry)
# _auth/used/<name>             when the robot was last used (JSON, written lazily)
# _auth/keys/<access key id>    an S3 access key (JSON: secret, user)
# _auth/signing/<kid>           an ES256 private key tokens are signed with (PEM)
# `_` starts no repository name component and no other top-level area.
AUTH = "_auth"
AUTH_KINDS = ("users", "robots", "used", "keys", "signing")


def auth_dir(kind: str) -> str:
    if kind not in AUTH_KINDS:
        raise ValueError(kind)
    return f"{AUTH}/{kind}"


def auth_entry(kind: str, name: str) -> str:
    return f"{auth_dir(kind)}/{name}"


# _trust/keys/<name>.key        a signing key's private half (PEM, PKCS8, maybe encrypted),
#                               written owner-only (0600) where the driver has permissions
# _trust/keys/<name>.pub        its public half (PEM SubjectPublicKeyInfo); alone for a key
#                               whose private half lives elsewhere (a CI system's cosign key)
# _trust/held/<repo>/_at/<alg>/<hex>/<tag>   empty: `tag` moves to the manifest once it
#                               verifies (a quarantined push, registry/trust/quarantine.py);
#                               `_at` and `_tags` start no repository name component
# _trust/held/<repo>/_tags/<tag>  the digest of the newest held push of the tag
# _trust/policies/current       the [trust] policies a server last applied (JSON list): the
#                               audit log's "old rules" when a start or reload applies others
TRUST = "_trust"
TRUST_KINDS = ("keys", "held", "policies")


def trust_dir(kind: str) -> str:
    if kind not in TRUST_KINDS:
        raise ValueError(kind)
    return f"{TRUST}/{kind}"


# _scan/results/<alg>/<hex>.json  what the scan of the manifest <alg>:<hex> found (JSON,
#                               registry/scan/results.py), whichever repository holds it:
#                               a manifest's bytes name its layers, so one scan serves all;
#                               its absence is the worker's to-do
SCAN = "_scan"
SCAN_KINDS = ("results",)


def scan_dir(kind: str) -> str:
    if kind not in SCAN_KINDS:
        raise ValueError(kind)
    return f"{SCAN}/{kind}"


# -- housekeeping (core/gc.py, core/scrub.py) ---------------------------------
# _gc/lease                 the running collection's lease (JSON: id, owner, expiry)
# _gc/seen/<alg>/<hex>      empty: a blob or manifest found to exist while it runs
# _gc/trash/<alg>/<hex>     a blob on its way out (put back if seen meanwhile)
# _gc/reserve               bytes kept so that a collection can start on a full disk
# _quarantine/<alg>/<hex>   a blob whose bytes do not hash to its name (scrub --repair)
# _scrub/last.json          the last scrub's figures, for the server's /metrics
GC = "_gc"
GC_LEASE = f"{GC}/lease"
GC_SEEN = f"{GC}/seen"
GC_TRASH = f"{GC}/trash"
GC_RESERVE = f"{GC}/reserve"
QUARANTINE = "_quarantine"
SCRUB_LAST = "_scrub/last.json"


def gc_seen(digest: Digest) -> str:
    return f"{GC_SEEN}/{digest.algorithm}/{digest.hex}"


def gc_trash(digest: Digest) -> str:
    return f"{GC_TRASH}/{digest.algorithm}/{digest.hex}"


def gc_trashed(path: str) -> DigestName | None:
    """The digest of a walked `_gc/trash/<alg>/<hex>` file; None for a stray one."""
    parts = path.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != GC_TRASH:
        return None
    return digest_name(parts[2], parts[3])


def quarantined(digest: Digest) -> str:
    return f"{QUARANTINE}/{digest.algorithm}/{digest.hex}"
