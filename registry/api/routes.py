"""Routing of the OCI family's paths, under /v2/.

Repository names contain slashes, so instead of a regex per route we split
the path once and look at its tail: the endpoint is decided by the last one
to three segments and everything before them is the name. Names are then
checked against the spec grammar before any handler runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from urllib.parse import unquote

from registry.core.errors import NameInvalid, NotFound
from registry.core.grammar import validate_name


class Endpoint(Enum):
    BASE = "base"
    CATALOG = "catalog"
    TAGS = "tags"
    MANIFEST = "manifest"
    BLOB = "blob"
    UPLOADS = "uploads"  # POST .../blobs/uploads/
    UPLOAD = "upload"  # .../blobs/uploads/<id>
    REFERRERS = "referrers"


@dataclass(frozen=True, slots=True)
class Route:
    endpoint: Endpoint
    name: str = ""
    ref: str = ""


def parse(tail: str) -> Route:
    """Route for the raw (still percent-encoded) path after `/v2/`.

    The path is split before segments are decoded, so an encoded slash can never
    become a separator: it stays inside its segment, where the name, tag, digest
    or upload id grammar then refuses it. NotFound if it names no endpoint."""
    if tail == "":
        return Route(Endpoint.BASE)
    if tail == "_catalog":
        return Route(Endpoint.CATALOG)
    parts = [unquote(p) for p in tail.split("/")]
    n = len(parts)
    if n >= 3 and parts[-2] == "tags" and parts[-1] == "list":
        return Route(Endpoint.TAGS, _name(parts[:-2]))
    if n >= 4 and parts[-3] == "blobs" and parts[-2] == "uploads":
        name = _name(parts[:-3])
        if parts[-1] == "":
            return Route(Endpoint.UPLOADS, name)
        return Route(Endpoint.UPLOAD, name, parts[-1])
    if n >= 3 and parts[-2] == "blobs" and parts[-1] == "uploads":
        return Route(Endpoint.UPLOADS, _name(parts[:-2]))
    if n >= 3 and parts[-1] != "":
        kind = parts[-2]
        name = _name(parts[:-2])
        if kind == "manifests":
            return Route(Endpoint.MANIFEST, name, parts[-1])
        if kind == "blobs":
            return Route(Endpoint.BLOB, name, parts[-1])
        if kind == "referrers":
            return Route(Endpoint.REFERRERS, name, parts[-1])
    raise NotFound(detail={"path": "/v2/" + tail[:200]})


def route_for(path: str) -> Route:
    """The route of a raw request path (no query), its name checked against the
    grammar. A pure function of the path; the OCI family memoises it together
    with the handler and scope (api/oci.py)."""
    if path in ("/v2", "/v2/"):
        return Route(Endpoint.BASE)
    if not path.startswith("/v2/"):
        raise NotFound(detail={"path": path[:200]})
    route = parse(path[len("/v2/"):])
    if route.name:
        validate_name(route.name)
    return route


def _name(segments: list[str]) -> str:
    if any("/" in s for s in segments):
        raise NameInvalid("invalid repository name", {"name": "/".join(segments)[:255]})
    return "/".join(segments)
