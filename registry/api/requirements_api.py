"""`GET /api/v1/requirements/<name>@<digest>` (or `<name>:<tag>`): what a node must offer
to run that manifest (registry.arch.needs), as JSON with Kubernetes node labels in
node-feature-discovery's names and a Slurm `--constraint`; an index answers per child.
Access is the dispatcher's one step: `pull` on the repository, before any look-up.
Unknown: 404; a bad reference: 400 (problem documents)."""

from __future__ import annotations

import json

from aiohttp import web

from registry.api.common import Context
from registry.api.families import PatternFamily
from registry.core.access import PULL
from registry.core.errors import NotFound, RegistryError
from registry.core.grammar import Digest, is_valid_tag, validate_name


class TagInvalid(RegistryError):
    code, status, message = "TAG_INVALID", 400, "invalid tag"


def register(family: PatternFamily) -> None:
    family.add("GET", r"requirements/(?P<name>[^:@]+)(?::(?P<tag>[^:@/]+)|@(?P<digest>[^@/]+))",
               requirements, PULL)


async def requirements(request: web.BaseRequest, route: dict[str, str],
                       ctx: Context) -> web.StreamResponse:
    name = validate_name(route["name"])
    if "digest" in route:
        reference = str(Digest.parse(route["digest"]))
    elif is_valid_tag(route["tag"]):
        reference = route["tag"]
    else:
        raise TagInvalid("invalid tag", {"tag": route["tag"][:200]})
    if ctx.requirements is None:
        raise NotFound("no requirements here")
    answer = await ctx.requirements.of(name, reference)
    return web.Response(body=json.dumps(answer.to_json(), separators=(",", ":")).encode(),
                        headers={"Content-Type": "application/json"})
