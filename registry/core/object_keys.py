"""Which S3 object keys are content-addressed.

Core gives no object key a meaning of its own: the object service asks a
classifier, which the room that defines a key grammar injects through the
factory (`CoreSettings.object_keys`; Spack's is `registry.spack.layout.key_class`).
Without one every key is plain: its bytes go to `objectdata/`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from registry.core.grammar import Digest


@dataclass(frozen=True, slots=True)
class KeyClass:
    """How the object service stores the bytes of one key. `addressed`: in the
    blob store OCI layers use, under the sha256 of the bytes, so bytes pushed over
    OCI and over S3 are stored once; `digest`: the digest the key itself names,
    which the bytes must match or the write is refused (None: whatever they hash to);
    `refused`: the key is refused whatever its bytes."""

    addressed: bool = False
    digest: Digest | None = None
    # Why the key may not be stored at all (None: it may): it looks content-addressed
    # but does not name a digest the way its grammar does. Stored as a plain object it
    # would pass for a verified one.
    refused: str | None = None


PLAIN = KeyClass()
BY_CONTENT = KeyClass(addressed=True)

# key -> how its bytes are stored; called for every PutObject and multipart completion.
KeyClassifier = Callable[[str], KeyClass]


def named(digest: Digest) -> KeyClass:
    """A key that names the digest of its bytes."""
    return KeyClass(addressed=True, digest=digest)


def refused(reason: str) -> KeyClass:
    """A key that may not be stored, for `reason`."""
    return KeyClass(refused=reason)


def plain_keys(key: str) -> KeyClass:
    """The classifier of a store without a key grammar: every key is plain."""
    return PLAIN
