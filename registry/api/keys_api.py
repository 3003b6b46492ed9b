"""The registry's trusted public keys: `GET /api/v1/keys` (JSON: name, algorithm,
fingerprint, whether the registry holds the private half) and
`GET /api/v1/keys/<name>.pub` (the PEM, as `cosign verify --key` and openssl take it).

They are trust anchors, so they are public: a family of their own below `/api/v1/`,
which the access step lets through as it does the token endpoint
(auth.guard.OPEN_FAMILIES). Errors are problem documents, as the rest of the API's."""

from __future__ import annotations

import json

from aiohttp import web

from registry.api.common import Context
from registry.api.families import ApiFamily, PatternFamily
from registry.core.access import PULL
from registry.core.errors import NotFound
from registry.trust.keys import NAME, KeyStore


class KeysFamily(ApiFamily):
    """`/api/v1/keys`: public keys, readable by anyone (see the module doc)."""

    name = "keys"
    prefix = "/api/v1/keys/"
    root = "/api/v1/keys"

    def __init__(self) -> None:
        PatternFamily.__init__(self)  # not the API root's route: only the keys'
        self.add("GET", r"", list_keys, PULL)
        self.add("GET", r"(?P<key>[^/]{1,100})\.pub", public_key, PULL)


def _store(ctx: Context) -> KeyStore:
    if ctx.keys is None:
        raise NotFound("no signing keys here (a node cache keeps none)")
    store: KeyStore = ctx.keys
    return store


async def list_keys(request: web.BaseRequest, route: dict[str, str],
                    ctx: Context) -> web.StreamResponse:
    keys = [key.to_json() for key in await _store(ctx).list()]
    return web.Response(body=json.dumps({"keys": keys}).encode(),
                        headers={"Content-Type": "application/json"})


async def public_key(request: web.BaseRequest, route: dict[str, str],
                     ctx: Context) -> web.StreamResponse:
    name = route["key"]
    key = await _store(ctx).get(name) if NAME.fullmatch(name) else None
    if key is None:
        raise NotFound("no such key", {"key": name[:100]})
    return web.Response(body=key.public_pem,
                        headers={"Content-Type": "application/x-pem-file"})
