"""The scratch space, for a room above core that writes files with its own descriptors.

The node cache downloads a blob into a file that every worker follows while it
grows (sendfile needs a file on local disk, and the workers meet at a lock file
beside it: cache/shared.py), then commits it as a blob through `Blobs.commit`.
`ScratchSpace` is what core hands it for that: the directory on local disk, and
for each file there the name `Blobs.commit` takes. The layout (`_tmp/`, and the
`keep-` entries the start-up clean spares) stays in storage/paths.py.
"""

from __future__ import annotations

import os

from registry.storage import paths
from registry.storage.driver import Driver, StorageError


class ScratchSpace:
    """The scratch space of a store on local disk (the node cache's)."""

    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    def directory(self) -> str:
        """The scratch directory on local disk; StorageError when the store keeps
        no files there (the node cache needs a filesystem store)."""
        local = self._driver.local_path(paths.scratch("x"))
        if local is None:
            raise StorageError("the node cache needs a store on local disk")
        return os.path.dirname(local)

    def staged(self, local: str) -> str:
        """What `Blobs.commit` takes for the file at `local`, in `directory()`."""
        if os.path.dirname(local) != self.directory():
            raise ValueError(f"{local!r} is not in the scratch space")
        return paths.scratch(os.path.basename(local))


def kept_directory(root: str, name: str) -> str:
    """A directory of the scratch space of the filesystem store at `root` that the
    start-up clean keeps (a node cache's counters, read by `registry cache stats`
    without a server)."""
    return os.path.join(root, paths.TMP, f"{paths.KEEP_PREFIX}{name}")
