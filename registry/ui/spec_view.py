"""What the spec page shows of one spec beyond its catalog row: its variants as text,
its direct dependencies with their types (from the spec document the cache keeps)
and whether this cache holds each, the specs of the cache that depend on it (in a
cache small enough to look), and for a spec pushed over OCI its manifest's signature
state and scan summary."""

from __future__ import annotations

from typing import Any

from registry.api.common import Context
from registry.core.errors import RegistryError
from registry.spack.catalog import SpecCatalog, SpecRow
from registry.spack.specs import HASH_RE, NAME_RE, SpecRecord
from registry.ui.manifest_view import signature_state

DEPS_MAX = 200  # dependencies shown (a spec document is hostile input)
DEPENDENTS_MAX = 50
DEPENDENTS_SCAN = 5000  # a larger cache's dependents are not looked for (a scan)
VALUE_MAX = 200  # characters of a variant's value shown


def variant_text(value: Any) -> str:
    """A variant's value as spack prints it: `true`/`false`, lists comma-joined."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list):
        text = ",".join(str(v) for v in value)
    else:
        text = str(value)
    return text if len(text) <= VALUE_MAX else text[:VALUE_MAX] + "…"


def _types(dep: dict[str, Any]) -> list[str]:
    params = dep.get("parameters")
    types = params.get("deptypes") if isinstance(params, dict) else dep.get("type")
    if not isinstance(types, list):
        return []
    return [t[:16] for t in types[:8] if isinstance(t, str)]


def _virtuals(dep: dict[str, Any]) -> list[str]:
    params = dep.get("parameters")
    found = params.get("virtuals") if isinstance(params, dict) else None
    if not isinstance(found, list):
        return []
    return [v[:64] for v in found[:8] if isinstance(v, str)]


async def dependencies(specs: SpecCatalog, cache: str, row: SpecRow,
                       record: SpecRecord | None) -> list[dict[str, Any]]:
    """The direct dependencies, with their types when the document gives them, and
    whether the cache holds each (its page is linked only then)."""
    raw = record.root.raw.get("dependencies") if record is not None else None
    edges: list[dict[str, Any]] = []
    if isinstance(raw, list):
        for dep in raw[:DEPS_MAX]:
            if not isinstance(dep, dict):
                continue
            h, name = dep.get("hash"), dep.get("name")
            if isinstance(h, str) and HASH_RE.fullmatch(h):
                edges.append({"hash": h, "name": name if isinstance(name, str)
                              and NAME_RE.fullmatch(name) else "",
                              "types": _types(dep), "virtuals": _virtuals(dep)})
    else:
        edges = [{"hash": h, "name": n, "types": [], "virtuals": []}
                 for n, h in row.dependencies[:DEPS_MAX]]
    for edge in edges:
        held = await specs.spec(cache, edge["hash"])
        edge["held"] = held is not None
        edge["version"] = held.version if held is not None else ""
    return edges


async def spec_details(ctx: Context, specs: SpecCatalog, cache: str,
                       row: SpecRow) -> dict[str, Any]:
    """The spec page's values besides the row itself (see the module docstring)."""
    caches = getattr(ctx.composer, "caches", None)
    record: SpecRecord | None = None
    if caches is not None:
        record = await caches.record(cache, row.hash)
    oci = record.oci if record is not None else None
    signature, scan = "unknown", None
    if oci is not None:  # the manifest spack pushed: its signatures and scan, as uirepo's
        try:
            signature = (await signature_state(ctx, cache, oci))[0]
        except RegistryError:  # its manifest is gone since the catalog read it
            signature = "unknown"
        if ctx.search is not None:
            scan = await ctx.search.summary(cache, str(oci))
    return {
        "variants": sorted((str(k)[:64], variant_text(v)) for k, v in row.variants.items()),
        "dependencies": await dependencies(specs, cache, row, record),
        "dependents": await specs.dependents(cache, row.hash, DEPENDENTS_MAX,
                                             DEPENDENTS_SCAN),
        "dependents_max": DEPENDENTS_MAX, "dependents_scan": DEPENDENTS_SCAN,
        "tarball": str(record.tarball) if record is not None else "",
        "oci": str(oci) if oci is not None else "",
        "signature": signature,
        "scan": scan,
    }
