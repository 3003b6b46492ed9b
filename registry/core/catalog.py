"""The repository catalog, derived from the storage tree."""

from __future__ import annotations

from collections.abc import Callable

from registry.core.errors import DigestInvalid
from registry.core.grammar import ALGORITHMS, NAME_RE, Digest
from registry.core.offload import valid_sorted
from registry.storage import paths
from registry.storage.driver import Driver, PathNotFound


async def digests_under(driver: Driver, directory_of: Callable[[str], str]) -> list[Digest]:
    """Digests named by the entries of `directory_of(algorithm)` for each algorithm:
    the layout of _layers/, _manifests/revisions/ and the subjects in _referrers/.
    Stray names are skipped."""
    out: list[Digest] = []
    for alg in ALGORITHMS:
        try:
            names = await driver.list(directory_of(alg))
        except PathNotFound:
            continue
        for name in names:
            try:
                out.append(Digest.parse(f"{alg}:{name}"))
            except DigestInvalid:
                continue
    return out


class CatalogService:
    """The repositories the tree holds, and what each one links, from listings."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver

    async def exists(self, repo: str) -> bool:
        """A repository exists once something was pushed to it; a directory that
        only holds nested repositories is not one."""
        try:
            children = await self.driver.list(paths.repo(repo))
        except PathNotFound:
            return False
        return any(c in paths.REPO_MARKERS for c in children)

    async def layers(self, repo: str) -> list[Digest]:
        """The blobs linked into `repo` (its `_layers/` links)."""
        return await digests_under(self.driver, lambda alg: paths.layers_dir(repo, alg))

    async def revisions(self, repo: str) -> list[Digest]:
        """The manifests `repo` holds (its revision links)."""
        return await digests_under(self.driver, lambda alg: paths.revisions_dir(repo, alg))

    async def repositories(self) -> list[str]:
        """Every repository name, sorted; a directory is a repository when it
        holds one of the `_` marker directories."""
        found: list[str] = []
        stack = [""]
        while stack:
            prefix = stack.pop()
            base = paths.REPOSITORIES + (f"/{prefix}" if prefix else "")
            try:
                children = await self.driver.list(base)
            except PathNotFound:
                continue
            if prefix and any(c in paths.REPO_MARKERS for c in children):
                found.append(prefix)
            for child in children:
                if not child.startswith("_"):
                    stack.append(f"{prefix}/{child}" if prefix else child)
        return await valid_sorted(found, NAME_RE.fullmatch)
