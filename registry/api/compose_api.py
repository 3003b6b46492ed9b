"""`POST /api/v1/spack/<cache>/images` with `{"specs": ["hdf5@1.14 +mpi", ...],
"target": "zen3", "base": "<repository>:<tag>", "tag": "<tag>"}`: an image in
`<cache>/images` made of the cached builds (spack.compose chooses them,
spack.images lays the image out). 201 with `{"reference", "digest"}` and a Location.

The access step checks the caller may push `<cache>/images` (the route's scope); this
handler checks it may also pull the cache and the base, before anything is looked up,
so a refusal says nothing of what exists. Errors are problem documents.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from registry.api.common import Context, caller_of, read_bounded
from registry.api.families import PatternFamily
from registry.arch.platforms import PlatformError, known_target
from registry.core.access import PUSH
from registry.core.errors import Denied, NameUnknown, RegistryError, TooLarge
from registry.core.grammar import is_valid_tag, validate_name
from registry.spack.compose import resolve
from registry.spack.images import goarch
from registry.spack.wanted import InvalidWanted, Wanted

BODY_MAX = 64 << 10
SPECS_MAX = 64
_BASE = re.compile(r"(?P<repo>[^:@\s]{1,255})(?::(?P<tag>[^:@/\s]{1,128})|"
                   r"@(?P<digest>sha256:[0-9a-f]{64}))")
_KEYS = frozenset({"specs", "target", "base", "tag"})


class BodyInvalid(RegistryError):
    code, status, message = "BODY_INVALID", 400, "invalid request body"


def register(family: PatternFamily) -> None:
    # The route's resource is what the request writes, `<cache>/images`: the access step
    # checks push there (and audits it); the handler checks pull on the cache.
    family.add("POST", r"spack/(?P<name>[^\x00]+?/images)/?", compose_image, PUSH)


def _request(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise BodyInvalid("the body is not JSON") from None
    return checked(body)


def checked(body: Any) -> dict[str, Any]:
    """`body` if it is a request the composer reads (specs, target, base, tag), else
    BodyInvalid saying what is wrong."""
    if not isinstance(body, dict):
        raise BodyInvalid("the body is not a JSON object")
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise BodyInvalid("unknown fields", {"fields": [str(k)[:64] for k in unknown[:8]]})
    specs = body.get("specs")
    if not isinstance(specs, list) or not 1 <= len(specs) <= SPECS_MAX:
        raise BodyInvalid(f"specs: a list of 1 to {SPECS_MAX} specs")
    for key in ("target", "base", "tag"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise BodyInvalid(f"{key} must be a string", {"field": key})
    return body


def _wanted(specs: list[Any]) -> list[Wanted]:
    out = []
    for text in specs:
        try:
            out.append(Wanted.parse(text))
        except InvalidWanted as exc:
            raise BodyInvalid(str(exc), {"spec": str(text)[:100]}) from None
    return out


def _target(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return known_target(text[:64]).name
    except PlatformError as exc:
        raise BodyInvalid(str(exc), {"target": text[:64]}) from None


def _base(text: str | None) -> tuple[str, str] | None:
    if text is None:
        return None
    m = _BASE.fullmatch(text)
    if m is None or (m.group("tag") and not is_valid_tag(m.group("tag"))):
        raise BodyInvalid("base: <repository>:<tag> or <repository>@sha256:<hex>",
                          {"base": text[:100]})
    return validate_name(m.group("repo")), m.group("tag") or m.group("digest")


async def compose_image(request: web.BaseRequest, route: dict[str, str],
                        ctx: Context) -> web.StreamResponse:
    repo = validate_name(route["name"])
    body = _request(await read_bounded(request, BODY_MAX, TooLarge("the body is too large")))
    answer = await compose(request, ctx, repo, body)
    return web.Response(status=201, body=json.dumps(answer, separators=(",", ":")).encode(),
                        headers={"Content-Type": "application/json",
                                 "Location": f"/v2/{answer['repository']}/manifests/"
                                             f"{answer['digest']}"})


async def compose(request: web.BaseRequest, ctx: Context, repo: str,
                  body: dict[str, Any]) -> dict[str, Any]:
    """Compose the image `body` (as `checked` reads it) asks for into `repo`
    (`<cache>/images`, which the access step let the caller push): the answer's
    reference, digest, repository, tag and specs. The dashboard's composer calls this
    too, so both answer the same, with the same errors."""
    cache = validate_name(repo.removesuffix("/images"))
    wanted, target, base_ref = _wanted(body["specs"]), _target(body.get("target")), \
        _base(body.get("base"))
    tag = body.get("tag")
    if tag is not None and (not is_valid_tag(tag) or tag.endswith(".spack")):
        raise BodyInvalid("tag: an OCI tag that is not spack's (*.spack)", {"tag": tag[:128]})
    caller = caller_of(request, ctx)
    if not caller.may_pull(cache):
        raise Denied("the caller may not pull the build cache", {"name": cache})
    if base_ref is not None and not caller.may_pull(base_ref[0]):
        raise Denied("the caller may not pull the base image", {"name": base_ref[0]})
    composer = ctx.composer
    caches = composer.caches if composer is not None else None
    if composer is None or caches is None or ctx.specs is None \
            or await caches.state(cache) is None:
        raise NameUnknown("no build cache of that name", {"name": cache})
    # Only the named packages' builds and the closure are read, never the whole cache.
    image = await resolve(wanted, target, cache, caches, ctx.specs)
    base = None if base_ref is None else await composer.base(*base_ref, goarch(image))
    made = await composer.compose(cache, image, base, tag, caller)
    return {"reference": f"{made.repo}:{made.tag}", "digest": str(made.digest),
            "repository": made.repo, "tag": made.tag,
            "specs": [{"name": r.root.name, "version": r.root.version, "hash": r.hash,
                       "target": r.root.target} for r in image.records]}
