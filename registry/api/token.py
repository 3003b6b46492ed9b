"""The token endpoint (`/token`), as the Docker token specification describes it:
GET with Basic credentials (or none, for an anonymous token) and the OAuth2 POST
form with a password grant. Errors are the OCI JSON every registry client reads.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from aiohttp import web

from registry.api.common import Context
from registry.api.errors import response_for
from registry.api.families import PatternFamily
from registry.core.access import PULL
from registry.core.errors import NotFound, RegistryError, TooLarge

# Room for a request naming a few thousand scopes (answered 400: too many), not for
# a megabyte password (413).
MAX_FORM_BYTES = 512 << 10


class TokenFamily(PatternFamily):
    """`/token`: issues the JWTs the OCI family's Bearer challenges point to."""

    name = "token"
    prefix = "/token/"
    root = "/token"

    def __init__(self) -> None:
        super().__init__()
        self.add("GET", r"", get_token, PULL)
        self.add("POST", r"", post_token, PULL)

    def render_error(self, exc: Exception, request: web.BaseRequest) -> web.StreamResponse:
        return response_for(exc, request)


def _issuer(ctx: Context):
    issue = getattr(ctx.access, "issue", None)
    if issue is None:  # auth is off: there are no tokens to issue
        raise NotFound("no token service: auth is off")
    return issue


def _answer(body: dict) -> web.Response:
    return web.Response(body=json.dumps(body).encode(), headers={
        "Content-Type": "application/json", "Cache-Control": "no-store"})


async def get_token(request: web.BaseRequest, route: dict[str, str],
                    ctx: Context) -> web.StreamResponse:
    issue = _issuer(ctx)
    params = {"service": request.query.get("service", ""),
              "scope": request.query.getall("scope", [])}
    return _answer(await issue(request, params, None))


async def post_token(request: web.BaseRequest, route: dict[str, str],
                     ctx: Context) -> web.StreamResponse:
    issue = _issuer(ctx)
    if (request.content_length or 0) > MAX_FORM_BYTES:
        raise TooLarge("token request too large", {"max": MAX_FORM_BYTES})
    raw = await request.content.read(MAX_FORM_BYTES + 1)
    if len(raw) > MAX_FORM_BYTES:
        raise TooLarge("token request too large", {"max": MAX_FORM_BYTES})
    try:
        form = parse_qs(raw.decode(), keep_blank_values=True, strict_parsing=False,
                        max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise RegistryError("malformed token request form", status=400,
                            code="UNSUPPORTED") from None

    def one(key: str) -> str:
        return form.get(key, [""])[0]

    grant = one("grant_type")
    if grant != "password":
        raise RegistryError("unsupported grant_type: expected password",
                            {"grant_type": grant[:50]}, status=400, code="UNSUPPORTED")
    params = {"service": one("service"), "scope": form.get("scope", [])}
    body = await issue(request, params, (one("username"), one("password")))
    return _answer(body)
