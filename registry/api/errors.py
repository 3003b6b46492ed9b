"""Turns every failure into the spec's JSON error body.

Handlers raise domain errors; nothing else in the HTTP layer builds error
JSON. Anything unexpected is logged with its traceback and answered with a
plain 500 body that reveals nothing of the server's internals.
"""

from __future__ import annotations

import json
import logging

from aiohttp import web

from registry.api.common import API_VERSION_HEADER
from registry.core.errors import RegistryError, StoreUnavailable
from registry.storage.driver import StorageError, StorageUnavailable

log = logging.getLogger("registry.api")


def error_response(err: RegistryError) -> web.Response:
    headers = {"Content-Type": "application/json", API_VERSION_HEADER[0]: API_VERSION_HEADER[1]}
    headers.update(err.headers)
    # aiohttp drops the body of a HEAD response itself, keeping its Content-Length.
    return web.Response(status=err.status, body=json.dumps(err.to_json()).encode(),
                        headers=headers)


def response_for(exc: Exception, request: web.BaseRequest) -> web.Response:
    """The error response for an exception a handler raised. Connection errors (the
    client is gone) and non-error HTTP exceptions are raised again."""
    if isinstance(exc, RegistryError):
        return error_response(exc)
    if isinstance(exc, StorageUnavailable):
        log.warning("storage unavailable: %s", exc)
        return error_response(StoreUnavailable(detail={"driver": exc.driver}))
    if isinstance(exc, ConnectionError) or (
            isinstance(exc, web.HTTPException) and exc.status < 400):
        raise exc
    if isinstance(exc, web.HTTPException):
        # aiohttp's own refusals (e.g. oversized headers) get a spec-shaped body too.
        return error_response(RegistryError(exc.reason, status=exc.status))
    what = "storage" if isinstance(exc, StorageError) else "server"
    log.error("internal %s error on %s %s", what, request.method, request.path, exc_info=exc)
    return error_response(RegistryError(f"internal {what} error", status=500, code="UNKNOWN"))
