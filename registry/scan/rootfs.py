"""The image's file tree as its layers build it, kept only for the files that
matter: each layer's tar stream is read once, in order; a file that names a
package database is parsed as it passes, and whiteouts (`.wh.<name>`,
`.wh..wh..opq`) and later entries remove what lower layers had put at a path.

Nothing is written to disk except an rpm database (SQLite needs a file), into a
scratch file that is bounded and removed once read; no link is followed (only
`etc/os-release`'s symlink is resolved, among the files kept, a few hops at most).
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import re
import stat
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from registry.scan import langdb, osdb, rpmdb
from registry.scan.inventory import Distro, Finding, Package, ScanError
from registry.scan.limits import LayerError, Limits
from registry.scan.tarstream import DIRECTORY, HARDLINK, SYMLINK, Entry, TarReader

WHITEOUT, OPAQUE = ".wh.", ".wh..wh..opq"
OS_RELEASE = ("etc/os-release", "usr/lib/os-release")
PRIVATE_KEY = re.compile(rb"-----BEGIN ((RSA|EC|DSA|OPENSSH|ENCRYPTED) )?PRIVATE KEY-----")
HOPS = 8

Parser = Callable[[bytes], list[Package]]


def _database(path: str) -> tuple[Parser, str] | None:
    """The parser of the package database at `path` and its size limit's name."""
    if path == "var/lib/dpkg/status" or (path.startswith("var/lib/dpkg/status.d/") \
            and "/" not in path[len("var/lib/dpkg/status.d/"):] \
            and not path.endswith(".md5sums")):
        return osdb.dpkg, "database"
    if path == "lib/apk/db/installed":
        return osdb.apk, "database"
    base, parent = posixpath.basename(path), posixpath.basename(posixpath.dirname(path))
    if (base == "METADATA" and parent.endswith(".dist-info")) or \
            (base == "PKG-INFO" and parent.endswith(".egg-info")) or base.endswith(".egg-info"):
        return langdb.python_metadata, "metadata"
    if path.endswith("/.spack/spec.json"):
        return langdb.spack_spec, "spec"
    return None


def normalize(name: str) -> str | None:
    """The path a member names, relative to the root; None when it leaves the root."""
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            return None
        parts.append(part)
    return "/".join(parts)


@dataclass(slots=True)
class Kept:
    """What one path holds that the scan cares about, and the layer that put it."""

    layer: int
    packages: list[Package] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    distro: Distro | None = None
    symlink: str | None = None


class Rootfs:
    """Feed it the layers in order (`layer`), then read `packages`, `findings`,
    `distro()` and `errors`."""

    def __init__(self, limits: Limits, scratch: str | None = None) -> None:
        self.limits = limits
        self.scratch = scratch
        self.kept: dict[str, Kept] = {}
        self._dirs: Counter[str] = Counter()  # ancestors of kept paths
        self.errors: list[ScanError] = []
        self._digests: list[str] = []

    def error(self, message: str, layer: str = "", path: str = "") -> None:
        if len(self.errors) < self.limits.errors:
            self.errors.append(ScanError(message, layer, path[:300]))

    # -- the tree --------------------------------------------------------------

    def _ancestors(self, path: str) -> list[str]:
        parts = path.split("/")
        return ["/".join(parts[:i]) for i in range(1, len(parts))]

    def _drop(self, path: str, below: int) -> None:
        kept = self.kept.get(path)
        if kept is not None and kept.layer < below:
            del self.kept[path]
            self._dirs.subtract(self._ancestors(path))

    def _drop_under(self, directory: str, below: int) -> None:
        if directory and self._dirs[directory] <= 0:
            return
        prefix = f"{directory}/" if directory else ""
        for path in [p for p in self.kept if p.startswith(prefix)]:
            self._drop(path, below)

    def _keep(self, path: str, kept: Kept) -> None:
        if path in self.kept:
            self._dirs.subtract(self._ancestors(path))
        elif len(self.kept) >= self.limits.items:
            self.error(f"more than {self.limits.items} packages and findings: the rest "
                       "are not kept", self._digests[-1], path)
            return
        self.kept[path] = kept
        self._dirs.update(self._ancestors(path))

    # -- one layer --------------------------------------------------------------

    def layer(self, tar: TarReader, digest: str) -> None:
        """Read one layer's entries (the one after those already read); a LayerError
        ends the layer and is reported, what it put before stays."""
        self._digests.append(digest)
        n = len(self._digests) - 1
        try:
            for entry in tar:
                self._entry(tar, entry, n, digest)
        except LayerError as exc:
            self.error(str(exc), digest)

    def _entry(self, tar: TarReader, entry: Entry, n: int, digest: str) -> None:
        if len(entry.name) > self.limits.path:
            self.error(f"name of {len(entry.name)} bytes skipped", digest, entry.name)
            return
        path = normalize(entry.name)
        if path is None:
            self.error("path traversal: name leaves the root, entry skipped", digest,
                       entry.name)
            return
        directory, base = posixpath.split(path)
        if base == OPAQUE:
            self._drop_under(directory, n)
            return
        if base.startswith(WHITEOUT):
            gone = posixpath.join(directory, base[len(WHITEOUT):])
            self._drop(gone, n)
            self._drop_under(gone, n)
            return
        if not path:
            return
        self._drop(path, n)
        if entry.type != DIRECTORY:
            self._drop_under(path, n)
        kept = Kept(n)
        if entry.mode & (stat.S_ISUID | stat.S_ISGID) and entry.type in ("0", "7", HARDLINK):
            for bit, kind in ((stat.S_ISUID, "setuid"), (stat.S_ISGID, "setgid")):
                if entry.mode & bit:
                    kept.findings.append(Finding(kind, path, digest, f"mode {entry.mode:o}"))
        if entry.type == SYMLINK and path in OS_RELEASE:
            kept.symlink = entry.linkname
        elif entry.type == HARDLINK:
            self._hardlink(entry, path, kept, n)
        elif entry.is_file:
            self._file(tar, entry, path, kept, digest)
        if kept.packages or kept.findings or kept.distro or kept.symlink is not None:
            for p in kept.packages:
                p.layer, p.path = digest, path
            self._keep(path, kept)

    def _hardlink(self, entry: Entry, path: str, kept: Kept, n: int) -> None:
        target = normalize(entry.linkname)
        if target == path:
            self.error("hard link to itself (a loop), not followed", self._digests[n], path)
            return
        same = self.kept.get(target or "")
        if same is not None:  # the same file under a second name
            kept.packages = [dataclasses.replace(p) for p in same.packages]
            kept.findings += [dataclasses.replace(f, path=path) for f in same.findings
                              if f.kind == "private-key"]
            kept.distro = same.distro

    def _file(self, tar: TarReader, entry: Entry, path: str, kept: Kept, digest: str) -> None:
        if path in OS_RELEASE:
            data = tar.read(self.limits.metadata)
            kept.distro = osdb.os_release(data) if data is not None else None
            return
        if path == "var/lib/rpm/rpmdb.sqlite":
            self._rpm(tar, entry, path, kept, digest)
            return
        found = _database(path)
        if found is not None:
            parser, limit = found
            cap = getattr(self.limits, limit)
            data = tar.read(cap, cut=parser is langdb.python_metadata)
            if data is None:
                self.error(f"{entry.size} bytes, over the limit of {cap}: not read",
                           digest, path)
                return
            try:
                kept.packages = parser(data)
            except ValueError as exc:
                self.error(f"not read: {exc}", digest, path)
            return
        if entry.size <= self.limits.key_file:
            data = tar.read(self.limits.key_file)
            if data is not None and (m := PRIVATE_KEY.search(data)):
                kept.findings.append(Finding("private-key", path, digest,
                                             m.group(0).decode().strip("-")))

    def _rpm(self, tar: TarReader, entry: Entry, path: str, kept: Kept, digest: str) -> None:
        if entry.size > self.limits.rpmdb:
            self.error(f"{entry.size} bytes, over the limit of {self.limits.rpmdb}: not "
                       "read", digest, path)
            return
        try:
            if self.scratch is not None:
                os.makedirs(self.scratch, exist_ok=True)
            fd, local = tempfile.mkstemp(prefix="scan-rpmdb-", dir=self.scratch)
        except OSError as exc:
            self.error(f"not read: no scratch file: {exc.strerror}", digest, path)
            return
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in tar.chunks():
                    out.write(chunk)
            kept.packages = rpmdb.packages(local)
        except ValueError as exc:
            self.error(f"not read: {exc}", digest, path)
        except OSError as exc:  # a full disk: the layer goes on (the file is skipped)
            self.error(f"not read: scratch file: {exc.strerror}", digest, path)
        finally:
            os.unlink(local)

    # -- the result ---------------------------------------------------------------

    @property
    def packages(self) -> list[Package]:
        return [p for k in self.kept.values() for p in k.packages]

    @property
    def findings(self) -> list[Finding]:
        return [f for k in self.kept.values() for f in k.findings]

    def distro(self) -> Distro | None:
        """What `etc/os-release` says (following its symlink among the kept files,
        as a chroot would, a few hops at most), else `usr/lib/os-release`."""
        for start in OS_RELEASE:
            path, seen = start, set[str]()
            while (kept := self.kept.get(path)) is not None and kept.symlink is not None:
                if path in seen or len(seen) >= HOPS:
                    self.error("symlink loop, not followed", path=start)
                    break
                seen.add(path)
                target = posixpath.join(posixpath.dirname(path), kept.symlink)
                path = normalize(posixpath.normpath("/" + target)) or ""
            if kept is not None and kept.distro is not None:
                return kept.distro
        return None
