"""One middleware that turns every failure into the spec's JSON error body.

Handlers raise domain errors; nothing else in the HTTP layer builds error
JSON. Anything unexpected is logged with its traceback and answered with a
plain 500 body that reveals nothing of the server's internals.
"""

from __future__ import annotations

import json
import logging

from aiohttp import web

from registry.core.errors import RegistryError, StoreUnavailable
from registry.storage.driver import StorageError, StorageUnavailable

log = logging.getLogger("registry.api")

API_VERSION_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")


def error_response(err: RegistryError, method: str = "GET") -> web.Response:
    headers = {"Content-Type": "application/json", API_VERSION_HEADER[0]: API_VERSION_HEADER[1]}
    headers.update(err.headers)
    # aiohttp drops the body of a HEAD response itself, keeping its Content-Length.
    return web.Response(status=err.status, body=json.dumps(err.to_json()).encode(),
                        headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RegistryError as err:
        return error_response(err, request.method)
    except StorageUnavailable as exc:
        log.warning("storage unavailable: %s", exc)
        return error_response(StoreUnavailable(detail={"driver": exc.driver}), request.method)
    except StorageError:
        log.exception("storage error on %s %s", request.method, request.path)
        err = RegistryError("internal storage error")
        err.status, err.code = 500, "UNKNOWN"
        return error_response(err, request.method)
    except web.HTTPException as exc:
        # aiohttp's own refusals (e.g. oversized headers) get a spec-shaped body too.
        if exc.status >= 400:
            err = RegistryError(exc.reason)
            err.status = exc.status
            return error_response(err, request.method)
        raise
    except (ConnectionResetError, ConnectionError):
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        err = RegistryError("internal server error")
        err.status, err.code = 500, "UNKNOWN"
        return error_response(err, request.method)
