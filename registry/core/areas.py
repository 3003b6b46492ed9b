"""The areas of the store that rooms above core own, as narrow handles core hands them.

A room (registry/spack, registry/auth, registry/trust) never sees the driver or a path: it gets a
handle for its own area, whose layout storage/paths.py declares, and names its
files inside it. `Area` is one directory of the tree; `SpackArea`, `AuthArea`,
`TrustArea` and `ScanArea` give each room the directories of its area. A name
is relative to its area and cannot leave it (no empty, `.` or `..` component).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from registry.core.grammar import Digest
from registry.storage import paths
from registry.storage.driver import Driver, FileWriter, PathNotFound


@dataclass(frozen=True, slots=True)
class AreaFile:
    """A file of an area: its name relative to the area, size and last write."""

    name: str
    size: int
    mtime: float


class Area:
    """The files below one directory of the store, named relative to it."""

    def __init__(self, driver: Driver, root: str) -> None:
        self._driver = driver
        self.root = root

    def _path(self, name: str) -> str:
        if not name:
            return self.root
        if any(part in ("", ".", "..") for part in name.split("/")):
            raise ValueError(f"not a name inside an area: {name!r}")
        return f"{self.root}/{name}"

    async def read(self, name: str, max_bytes: int | None = None) -> bytes | None:
        """The file's bytes (at most `max_bytes`), or None when there is no such file."""
        try:
            return await self._driver.get_content(self._path(name), max_bytes)
        except PathNotFound:
            return None

    async def write(self, name: str, data: bytes, private: bool = False) -> None:
        """Replace the file atomically: a reader sees the old bytes or the new.
        `private`: owner-only where the driver has file modes (a private key)."""
        await self._driver.put_content(self._path(name), data, private)

    async def reader(self, name: str) -> AsyncIterator[bytes]:
        """The file's bytes in bounded chunks; none when there is no such file."""
        try:
            async for chunk in self._driver.reader(self._path(name)):
                yield chunk
        except PathNotFound:
            return

    async def writer(self, name: str) -> FileWriter:
        """A writer of a file too large to build in memory: `seal` it, then
        `move` it into place (a reader sees it whole or not at all)."""
        return await self._driver.writer(self._path(name))

    async def move(self, src: str, dst: str) -> None:
        await self._driver.move(self._path(src), self._path(dst))

    async def delete(self, name: str) -> bool:
        """Remove the file; False when there was none."""
        try:
            await self._driver.delete(self._path(name))
        except PathNotFound:
            return False
        return True

    async def list(self, name: str = "") -> list[str]:
        """The children of directory `name` (the area itself by default); [] when none."""
        try:
            return await self._driver.list(self._path(name))
        except PathNotFound:
            return []

    async def walk(self, name: str = "", start_after: str = "") -> AsyncIterator[AreaFile]:
        """Every file below `name`, in byte order of its name, after `start_after`."""
        start = self._path(start_after) if start_after else ""
        cut = len(self.root) + 1
        async for info in self._driver.walk(self._path(name), start_after=start):
            yield AreaFile(info.path[cut:], info.size, info.mtime)


class SpackArea:
    """`spack/`: each Spack build cache's journal, snapshots and signed documents
    (registry/spack). Cache names are repository names."""

    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    def journal(self, cache: str) -> Area:
        """`spack/<cache>/_journal`: entries named `<epoch>/<entry>`."""
        return Area(self._driver, paths.spack_journal_dir(cache))

    def snapshots(self, cache: str) -> Area:
        """`spack/<cache>/_snapshots`: one file per snapshot, named by its entry."""
        return Area(self._driver, paths.spack_snapshots_dir(cache))

    async def signed(self, cache: str, digest: Digest) -> bytes | None:
        """The clearsigned form of the document `digest`, if the registry made one."""
        try:
            return await self._driver.get_content(paths.spack_signed(cache, digest), 16 << 20)
        except PathNotFound:
            return None

    async def keep_signed(self, cache: str, digest: Digest, signed: bytes) -> None:
        await self._driver.put_content(paths.spack_signed(cache, digest), signed)

    async def caches(self, max_depth: int = 16) -> list[str]:
        """Every cache with a journal or snapshots, sorted: one `list` per directory
        under `spack/` (a cache name has a component per level), none per entry."""
        found: list[str] = []

        async def visit(prefix: str, depth: int) -> None:
            path = paths.spack_cache(prefix) if prefix else paths.SPACK
            try:
                children = await self._driver.list(path)
            except PathNotFound:
                return
            if prefix and (paths.SPACK_JOURNAL in children
                           or paths.SPACK_SNAPSHOTS in children):
                found.append(prefix)
            if depth < max_depth:
                for child in children:
                    if not child.startswith("_"):
                        await visit(f"{prefix}/{child}" if prefix else child, depth + 1)

        await visit("", 0)
        return sorted(found)


class AuthArea:
    """`_auth/`: users, robots, when robots were last used, S3 access keys and
    token-signing keys (registry/auth), one file per record, named by its key."""

    KINDS = paths.AUTH_KINDS

    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    def records(self, kind: str) -> Area:
        """`_auth/<kind>` (one of KINDS)."""
        return Area(self._driver, paths.auth_dir(kind))


class TrustArea:
    """`_trust/`: the trust room's area (registry/trust): the signing keys,
    `keys/<name>.key` (private half, written owner-only) and `keys/<name>.pub` (public
    half); the policy's held tags of quarantined pushes and the rules it applied."""

    KINDS = paths.TRUST_KINDS

    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    def keys(self) -> Area:
        """`_trust/keys`: two files per key, named `<name>.key` and `<name>.pub`."""
        return Area(self._driver, paths.trust_dir("keys"))

    def held(self) -> Area:
        """`_trust/held`: `<repo>/_at/<alg>/<hex>/<tag>`, one empty file a held tag,
        and `<repo>/_tags/<tag>`, the newest held push of the tag."""
        return Area(self._driver, paths.trust_dir("held"))

    def policies(self) -> Area:
        """`_trust/policies`: `current`, the rules a server last applied."""
        return Area(self._driver, paths.trust_dir("policies"))


class ScanArea:
    """`_scan/`: the scan room's area (registry/scan): each manifest's scan result."""

    KINDS = paths.SCAN_KINDS

    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    def results(self) -> Area:
        """`_scan/results`: `<alg>/<hex>.json`, one file per scanned manifest."""
        return Area(self._driver, paths.scan_dir("results"))
