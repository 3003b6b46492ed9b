"""Space used per namespace, from the index: what `registry du` prints and
`GET /api/v1/usage` answers. Quotas (core/quotas.py) are checked against the same
unique bytes (`Index.unique_bytes`, over the same stored-bytes subquery as `usage`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from registry.core.grammar import validate_name
from registry.index.db import Index


@dataclass(frozen=True, slots=True)
class NamespaceUsage:
    """One namespace: its repositories, the bytes they list (`logical`: a layer in
    three repositories counts three times) and the bytes stored for them
    (`unique`: each digest once)."""

    namespace: str
    repositories: int
    logical: int
    unique: int


class Usage:
    """Reads usage off the index (derived from storage; `registry reindex` rebuilds it)."""

    def __init__(self, index: Index) -> None:
        self.index = index

    async def namespaces(self, namespace: str | None = None) -> list[NamespaceUsage]:
        """Every top-level namespace, or the one given (a repository name or a
        prefix of names, checked against the grammar)."""
        if namespace is not None:
            validate_name(namespace)
        return [NamespaceUsage(r["namespace"], r["repositories"], r["logical"],
                               r["unique_bytes"])
                for r in await self.index.usage(namespace)]

    async def report(self, namespace: str | None = None) -> dict[str, Any]:
        rows = await self.namespaces(namespace)
        report: dict[str, Any] = {"namespaces": [asdict(r) for r in rows]}
        if namespace is None:
            report["total"] = await self.index.total_usage()
        return report
