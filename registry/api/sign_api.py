"""`POST /api/v1/sign/<name>@<digest>?key=NAME[&format=cosign|bundle]`: the registry
signs a manifest with one of its keys (registry.trust.signer.sign_manifest), for a
caller with the `sign` action on the repository (an admin, or a robot whose scope
names `sign`). Both formats by default; answers 201 with what was written.

The key must sign without a passphrase: a passphrase-protected key signs from the
command line (`registry sign --passphrase-file`), where an operator gives it."""

from __future__ import annotations

import json
import re

from aiohttp import web

from registry.api.common import Context
from registry.api.families import PatternFamily
from registry.core.access import SIGN
from registry.core.errors import RegistryError
from registry.core.grammar import Digest, validate_name
from registry.trust.keys import NAME, KeyProblem, KeyStore, UnknownKey
from registry.trust.signer import FORMATS, check_formats, sign_manifest

# What a Host header may say to become the payload's docker-reference host.
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")


class KeyUnknown(RegistryError):
    code, status, message = "KEY_UNKNOWN", 404, "no such signing key"


class KeyUnusable(RegistryError):
    code, status, message = "KEY_UNUSABLE", 409, "the key cannot sign here"


def register(family: PatternFamily) -> None:
    family.add("POST", r"sign/(?P<name>[^@\x00]{1,255})@(?P<digest>[^/@]{1,200})", sign,
               SIGN)


def host_of(request: web.BaseRequest, ctx: Context) -> str:
    """The registry's name as this client reaches it (its Host header when sane),
    else the address it listens on."""
    host = request.headers.get("Host", "")
    return host if _HOST.fullmatch(host) else ctx.config.server.listen


async def sign(request: web.BaseRequest, route: dict[str, str],
               ctx: Context) -> web.StreamResponse:
    repo = validate_name(route["name"])
    digest = Digest.parse(route["digest"])
    keys = request.query.getall("key", [])
    if len(keys) != 1 or not NAME.fullmatch(keys[0]):
        raise RegistryError("key: name exactly one signing key (?key=NAME)",
                            {"key": ",".join(keys)[:100]}, status=400, code="QUERY_INVALID")
    formats = [f for value in request.query.getall("format", []) for f in value.split(",")]
    asked = check_formats(formats or FORMATS)
    store: KeyStore | None = ctx.keys
    if store is None:
        raise KeyUnknown("no signing keys here (a node cache signs nothing)")
    try:
        signer = await store.signer(keys[0])
    except UnknownKey as exc:
        raise KeyUnknown(str(exc), {"key": keys[0][:100]}) from None
    except KeyProblem as exc:
        raise KeyUnusable(f"{exc} (a passphrase-protected key signs with `registry sign "
                          "--passphrase-file`)", {"key": keys[0][:100]}) from None
    signed = await sign_manifest(ctx.registry, repo, digest, signer, host_of(request, ctx),
                                 asked)
    return web.Response(status=201, body=json.dumps(signed.to_json()).encode(),
                        headers={"Content-Type": "application/json"})
