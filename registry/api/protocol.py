"""Errors raised by aiohttp's HTTP parser, before any handler or middleware runs.

A malformed request line, an absurd Content-Length or an oversized header is
answered by aiohttp's RequestHandler.handle_error with a text/plain body and
logged with a traceback at ERROR level, so any client could fill the log. We
install a handler that answers with the spec's JSON error body instead and
logs client errors as one line at debug level.
"""

from __future__ import annotations

import logging

from aiohttp import web, web_protocol, web_response

from registry.api.errors import error_response
from registry.core.errors import RegistryError
from registry.lifecycle import Stopping

log = logging.getLogger("registry.api")

_original = web_protocol.RequestHandler.handle_error


def _handle_error(self, request, status: int = 500, exc=None, message=None):
    if isinstance(exc, Stopping):
        # Cut at the end of the drain: the client may still be there to read why. The
        # rest of the body is not read (no lingering read, which would only meet the
        # cut again and log it as unhandled): the connection closes after this answer.
        self._force_close = True
        resp = web.Response(status=503, text="the registry is stopping\n",
                            headers={"Retry-After": "1"})
        resp.force_close()
        return resp
    if isinstance(exc, ConnectionError):
        # The client went away mid-request (the dispatcher raises it again: there is
        # nobody to answer). Ordinary, so one line at debug, and the connection closes.
        log.debug("client %s went away: %s", request.remote, exc)
        resp = web.Response(status=400)
        resp.force_close()
        return resp
    if status >= 500:
        return _original(self, request, status, exc, message)
    log.debug("malformed request from %s: %s", request.remote, exc or message)
    if request.writer.output_size > 0:
        raise ConnectionError("response already started")
    code = "SIZE_INVALID" if status == 413 else "UNSUPPORTED"
    text = getattr(exc, "message", None) or message or "malformed HTTP request"
    resp = error_response(RegistryError(str(text)[:200], status=status, code=code))
    resp.force_close()
    return resp


def install() -> None:
    """Answer HTTP parse errors with JSON, and name no versions in the Server header
    (idempotent; affects this process)."""
    # aiohttp offers no hook for the answer to a request it cannot parse: replace its
    # method (mypy forbids assigning to a method, which is the point here).
    web_protocol.RequestHandler.handle_error = _handle_error  # type: ignore[method-assign]
    web_response.SERVER_SOFTWARE = "registry"
