"""The OCI family: `/v2/`, routed by `routes.route_for`, errors as the spec's JSON."""

from __future__ import annotations

import functools

from aiohttp import web

from registry.api import blobs, discovery, manifests, uploads
from registry.api.common import API_VERSION_HEADER
from registry.api.dispatch import Handler
from registry.api.errors import response_for
from registry.api.routes import Endpoint, Route, route_for
from registry.core.access import PULL, Scope, action_of
from registry.core.errors import Unsupported

FAMILY = "oci"


class OciFamily:
    """The OCI Distribution API. Also the default family: paths no family claims
    get its JSON 404, as every registry client expects."""

    name = FAMILY
    prefix = "/v2/"
    root = "/v2"

    def __init__(self) -> None:
        self._table: dict[tuple[Endpoint, str], Handler] = {}
        for method in ("GET", "HEAD"):
            self.add(Endpoint.BASE, method, discovery.base)
            self.add(Endpoint.MANIFEST, method, manifests.get_manifest)
            self.add(Endpoint.BLOB, method, blobs.get_blob)
        self.add(Endpoint.CATALOG, "GET", discovery.catalog)
        self.add(Endpoint.TAGS, "GET", discovery.tags_list)
        self.add(Endpoint.REFERRERS, "GET", discovery.referrers)
        self.add(Endpoint.MANIFEST, "PUT", manifests.put_manifest)
        self.add(Endpoint.MANIFEST, "DELETE", manifests.delete_manifest)
        self.add(Endpoint.BLOB, "DELETE", blobs.delete_blob)
        self.add(Endpoint.UPLOADS, "POST", uploads.start_upload)
        self.add(Endpoint.UPLOAD, "PATCH", uploads.patch_upload)
        self.add(Endpoint.UPLOAD, "PUT", uploads.put_upload)
        self.add(Endpoint.UPLOAD, "GET", uploads.get_upload)
        self.add(Endpoint.UPLOAD, "DELETE", uploads.cancel_upload)

    def add(self, endpoint: Endpoint, method: str, handler: Handler) -> None:
        self._table[(endpoint, method)] = handler

    def resolve(self, request: web.BaseRequest, path: str) -> tuple[Handler, Route, Scope]:
        return self._resolve(path, request.method)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one family per process, lives as long
    def _resolve(self, path: str, method: str) -> tuple[Handler, Route, Scope]:
        """A pure function of the path and method, memoised: clients repeat paths, so
        a repeated request skips routing altogether. Only valid routes are kept
        (errors are raised, not cached), and a valid path is at most ~1.2 kB even
        fully percent-encoded, so the memo stays under ~5 MB."""
        route = route_for(path)
        handler = self._table.get((route.endpoint, method))
        if handler is None:
            raise Unsupported(f"{method} is not supported here", {"method": method})
        if route.name:
            return handler, route, Scope(FAMILY, route.name, action_of(method))
        return handler, route, Scope(FAMILY, "", PULL)  # /v2/ and the catalog

    def render_error(self, exc: Exception, request: web.BaseRequest) -> web.StreamResponse:
        return response_for(exc, request)

    def finish(self, response: web.StreamResponse) -> None:
        response.headers.setdefault(*API_VERSION_HEADER)
