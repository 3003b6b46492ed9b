"""Checks of the document an artifact manifest carries, made before a push is stored.

Core gives no artifact type a meaning of its own: the room that defines one injects
a check through the factory (`CoreSettings.artifact_check`; image-compatibility
artifacts: `registry.arch.compat_check.CompatCheck`). The manifest service asks the
check which layer of a pushed manifest holds such a document, reads it through the
blob service (bounded by the check's `max_bytes`), and hands the bytes to `check`:
a ValueError refuses the push with MANIFEST_INVALID and its message, before anything
is written; otherwise the text `check` returns goes to the hooks with the manifest
(the index records it). Without a check every manifest is stored as the OCI
distribution spec says, unread.
"""

from __future__ import annotations

from typing import Protocol

from registry.core.manifest_format import Descriptor, Manifest


class ArtifactCheck(Protocol):
    """What a room checks of the artifacts it understands (see the module doc)."""

    @property
    def max_bytes(self) -> int:
        """The largest document `check` accepts; a larger layer is refused unread."""
        ...

    def document(self, manifest: Manifest) -> Descriptor | None:
        """The layer of `manifest` to read and check; None when the check has nothing
        to say about this manifest. ValueError when the manifest is of a checked
        type but has no usable document layer."""
        ...

    def check(self, manifest: Manifest, data: bytes) -> str:
        """The document's bytes parsed and validated: ValueError (a message for the
        client) when invalid; else the text the index records for it. Called on a
        worker thread when the document is large."""
        ...


class NoArtifactChecks:
    """The check of a registry without artifact rooms: nothing is read."""

    max_bytes = 0

    def document(self, manifest: Manifest) -> Descriptor | None:
        return None

    def check(self, manifest: Manifest, data: bytes) -> str:
        raise ValueError("no artifact is checked")


NO_ARTIFACT_CHECKS = NoArtifactChecks()
