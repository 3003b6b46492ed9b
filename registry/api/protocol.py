"""Errors raised by aiohttp's HTTP parser, before any handler or middleware runs.

A malformed request line, an absurd Content-Length or an oversized header is
answered by aiohttp's RequestHandler.handle_error with a text/plain body and
logged with a traceback at ERROR level, so any client could fill the log. We
install a handler that answers in the format of the family the request's path
names (OCI JSON, S3 XML, problem JSON, plain text), as the dispatcher would, and
logs client errors as one line at debug level.

aiohttp hands that handler a stand-in request (path `/`) and an exception without
the path. So the request parser is aiohttp's own, subclassed to keep a reference
to the last pieces of input it was fed; when it refuses a request, the request
line is found in them (`_Parser`).
"""

from __future__ import annotations

import logging
import re
from collections import deque
from typing import Any

from aiohttp import web, web_protocol, web_response
from aiohttp.http import HttpRequestParser
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from registry.api.errors import error_response
from registry.core.errors import HeaderSectionTooLarge, RegistryError
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
    text = str(getattr(exc, "message", None) or message or "malformed HTTP request")[:200]
    line = getattr(exc, REQUEST_LINE, None)
    err: RegistryError
    if line is not None and line[1] and _header_section(exc):
        err = HeaderSectionTooLarge(text, status=status)
    else:
        err = RegistryError(text, status=status,
                            code="SIZE_INVALID" if status == 413 else "UNSUPPORTED")
    family = _dispatcher.family_for(line[0]) if line and _dispatcher else None
    if family is None:
        resp = error_response(err)
    else:  # the stand-in request, at the path the request line names
        resp = family.render_error(err, request.clone(rel_url=line[0]) if line else request)
        family.finish(resp)
    resp.force_close()
    return resp


def _header_section(exc: BaseException) -> bool:
    """Whether the parser refused the header fields (one too long, too many), as
    opposed to the request line or the framing."""
    return isinstance(exc, LineTooLong) or "headers" in str(exc)


# Pieces of a connection's input the parser keeps, and bytes kept of each (a copy
# of the head of a larger one): enough to find the request line of a header section
# past aiohttp's limits (8190 bytes a line, 128 fields) arriving in network-sized
# pieces, at most 64 KiB a connection. Beyond that the answer is OCI JSON.
_PIECES = 16
_PIECE = 4 << 10
_FEED = HttpRequestParser.feed_data  # the C method itself: no super() lookup per call
# Where _Parser puts what it found on the exception: (path, whether the request
# line was complete), or None.
REQUEST_LINE = "registry_request_line"
_LINE_RE = re.compile(
    rb"(?:^|\n)(?:GET|HEAD|PUT|POST|PATCH|DELETE|OPTIONS) (/[^ \r\n?]*)[^ \r\n]*"
    rb"( HTTP/1\.[01]\r?\n)?")


class _Parser(HttpRequestParser):
    """aiohttp's request parser (its C one when built), keeping references to the
    head of the last pieces of input it was fed; when it refuses a request, the
    last request line in them goes on the exception (REQUEST_LINE)."""

    __slots__ = ("_recent",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._recent: deque[bytes] = deque(maxlen=_PIECES)

    def feed_data(self, data: bytes, *args: Any, **kwargs: Any) -> Any:
        self._recent.append(data if len(data) <= _PIECE else data[:_PIECE])
        try:
            return _FEED(self, data, *args, **kwargs)
        except HttpProcessingError as exc:
            last = deque(_LINE_RE.finditer(b"".join(self._recent)), maxlen=1)
            if last:
                setattr(exc, REQUEST_LINE, (last[0].group(1).decode("latin-1"),
                                            last[0].group(2) is not None))
            raise


# Whose families render the errors the parser raises (install); None: OCI JSON.
_dispatcher: Any = None


def install(dispatcher: Any = None) -> None:
    """Answer HTTP parse errors in the format of the family of `dispatcher` that the
    request's path names (OCI JSON without one), and name no versions in the Server
    header (idempotent; affects this process)."""
    global _dispatcher
    _dispatcher = dispatcher
    # aiohttp offers no hook for the answer to a request it cannot parse, nor for its
    # parser: replace its method and the parser class it builds per connection (mypy
    # forbids assigning to a method, which is the point here).
    web_protocol.RequestHandler.handle_error = _handle_error  # type: ignore[method-assign]
    web_protocol.HttpRequestParser = _Parser  # type: ignore[misc]
    web_response.SERVER_SOFTWARE = "registry"
