"""Where everything lives in a storage driver: the one module that knows the layout.

    blobs/<alg>/<2 hex>/<hex>                                      bytes, stored once
    repositories/<name>/_manifests/revisions/<alg>/<hex>           link: manifest is in repo
    repositories/<name>/_manifests/tags/<tag>/current              -> digest
    repositories/<name>/_layers/<alg>/<hex>                        link: blob is in repo
    repositories/<name>/_referrers/<alg>/<subject>/<alg>/<hex>     link: referrer of subject
    repositories/<name>/_uploads/<uuid>/data                       upload in progress
    repositories/<name>/_uploads/<uuid>/state                      its JSON state
    _tmp/...                                                       drivers' scratch space

Repository name components start with [a-z0-9], so the `_` directories can
never collide with a nested repository. Manifests are blobs too: the revision
link says which repository holds one and with which media type it was pushed.
Everything the OCI API answers can be rebuilt from this tree alone.
"""

from __future__ import annotations

from typing import Protocol


class Digest(Protocol):
    """Anything naming content by algorithm and hex (core.grammar.Digest is one);
    structural, so that storage does not import core."""

    @property
    def algorithm(self) -> str: ...

    @property
    def hex(self) -> str: ...

BLOBS = "blobs"
REPOSITORIES = "repositories"
TMP = "_tmp"
REPO_MARKERS = ("_manifests", "_layers", "_uploads")


def blob(digest: Digest) -> str:
    return f"{BLOBS}/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"


def repo(name: str) -> str:
    return f"{REPOSITORIES}/{name}"


def layer_link(name: str, digest: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_layers/{digest.algorithm}/{digest.hex}"


def revision_link(name: str, digest: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/revisions/{digest.algorithm}/{digest.hex}"


def revisions_dir(name: str, algorithm: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/revisions/{algorithm}"


def tags_dir(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags"


def tag_dir(name: str, tag: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags/{tag}"


def tag_current(name: str, tag: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags/{tag}/current"


def referrers_root(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_referrers"


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
