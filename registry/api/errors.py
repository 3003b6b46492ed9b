"""Errors for the HTTP layer: what any exception means, and the OCI family's JSON.

`classify` turns whatever a handler raised into a domain error, once, for every
family: domain errors as they are, storage failures as core translates them,
aiohttp's own refusals by their status, and anything unexpected as a logged 500
that reveals nothing of the server's internals. Each family then writes the
error its own way; the OCI family's spec JSON is here.
"""

from __future__ import annotations

import json
import logging

from aiohttp import web

from registry.api.common import API_VERSION_HEADER, upload_headers
from registry.core.errors import (
    InternalError,
    RangeNotSatisfiable,
    RangeUnsatisfiable,
    RegistryError,
    StoreUnavailable,
    from_storage,
)
from registry.core.types import UploadStatus

log = logging.getLogger("registry.api")


def classify(exc: Exception, request: web.BaseRequest) -> RegistryError:
    """The domain error to answer for `exc`. Connection errors (the client is gone)
    and non-error HTTP exceptions are raised again: there is nobody to answer."""
    if isinstance(exc, RegistryError):
        err = exc
    elif (translated := from_storage(exc)) is not None:
        err = translated
    elif isinstance(exc, ConnectionError) or (
            isinstance(exc, web.HTTPException) and exc.status < 400):
        raise exc
    elif isinstance(exc, web.HTTPException):
        # aiohttp's own refusals (e.g. oversized headers) keep their status.
        err = RegistryError(exc.reason, status=exc.status)
    else:
        err = InternalError(cause=exc)
    if isinstance(err, InternalError):
        log.error("%s on %s %s", err.message, request.method, request.path,
                  exc_info=err.cause or err)
    elif isinstance(err, StoreUnavailable):
        log.warning("%s on %s %s: %s", err.message, request.method, request.path,
                    exc if exc is not err else err.detail)
    return err


def headers_for(err: RegistryError) -> dict[str, str]:
    """The HTTP headers an error carries, whatever the family."""
    headers = dict(err.headers)
    if isinstance(err, StoreUnavailable):
        headers["Retry-After"] = str(err.retry_after)
    if isinstance(err, RangeNotSatisfiable):
        headers.update(upload_headers(UploadStatus(err.upload_id, err.repo, err.offset)))
    elif isinstance(err, RangeUnsatisfiable):
        headers["Content-Range"] = f"bytes */{err.size}"
    return headers


def error_response(err: RegistryError) -> web.Response:
    """The OCI spec's JSON error body for a domain error."""
    headers = {"Content-Type": "application/json", API_VERSION_HEADER[0]: API_VERSION_HEADER[1]}
    headers.update(headers_for(err))
    # aiohttp drops the body of a HEAD response itself, keeping its Content-Length.
    return web.Response(status=err.status, body=json.dumps(err.to_json()).encode(),
                        headers=headers)


def response_for(exc: Exception, request: web.BaseRequest) -> web.Response:
    """The OCI error response for an exception a handler raised."""
    return error_response(classify(exc, request))
