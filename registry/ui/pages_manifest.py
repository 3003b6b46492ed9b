"""`/ui/r/<name>/-/<digest>`: one manifest. An image: its layers with their sizes and
the other repositories (those the caller may pull) that hold each, its config, what
it needs of a host; an index: its children with platforms and targets; any manifest:
annotations, referrers, signature and scan state, and the commands that pull it
(podman, apptainer; spack for a Spack build pushed over oci://).
`/ui/r/<name>/-/tag/<tag>` sends the browser to the digest's page (303)."""

from __future__ import annotations

import contextlib
import json
from typing import Any
from urllib.parse import quote

from aiohttp import web

from registry.api.common import Context, visible
from registry.core.errors import ManifestUnknown, RegistryError
from registry.core.grammar import Digest, is_valid_tag, validate_name
from registry.core.manifest_format import Descriptor, Manifest
from registry.spack.specs import InvalidSpec, SpecDoc
from registry.ui.commands import host_of, pull_commands, spack_commands
from registry.ui.manifest_view import summarize
from registry.ui.render import page, redirect

MAX_LAYERS = 128  # layers whose other holders are looked up
MAX_ALSO = 20  # other repositories named per layer
MAX_ENV = 200  # config entries shown per list
MAX_TAGS = 100  # tags shown of one manifest
MAX_TAG_MAP = 10_000  # repositories with more tags show none on a manifest's page


class TagInvalid(RegistryError):
    code, status, message = "TAG_INVALID", 400, "invalid tag"


async def by_tag(request: web.BaseRequest, route: dict[str, str],
                 ctx: Context) -> web.StreamResponse:
    name = validate_name(route["name"])
    tag = route["tag"]
    if not is_valid_tag(tag):
        raise TagInvalid(detail={"tag": tag[:200]})
    digest = await ctx.registry.tags.resolve(name, tag)  # 404 MANIFEST_UNKNOWN
    return redirect(request, f"/ui/r/{name}/-/{quote(str(digest), safe=':')}")


async def manifest(request: web.BaseRequest, route: dict[str, str],
                   ctx: Context) -> web.StreamResponse:
    name = validate_name(route["name"])
    digest = Digest.parse(route["digest"])  # 400 DIGEST_INVALID
    if not await ctx.registry.manifests.exists(name, digest):
        raise ManifestUnknown(detail={"name": name, "digest": str(digest)})
    summary = await summarize(ctx, name, digest)
    body = summary.manifest
    assert body is not None  # summarize always parses it
    config = await config_of(ctx, name, body) if summary.kind != "index" else {}
    host = host_of(request)
    spec = spack_spec(config)
    commands = pull_commands(host, name, str(digest))
    if spec is not None:
        commands += spack_commands(host, name, *spec)
    return page(
        request, ctx, "manifest.html", name=name, m=summary,
        tags=await tags_of(ctx, name, digest),
        annotations=sorted(body.annotations.items()),
        subject=str(body.subject.digest) if body.subject is not None else "",
        layers=await layers(request, ctx, name, body),
        config=shown_config(config), needs=summary.needs,
        commands=commands, spack=spec)


async def layers(request: web.BaseRequest, ctx: Context, repo: str,
                 body: Manifest) -> list[dict[str, Any]]:
    """Each layer with the other repositories (that the caller may pull) holding it,
    by the same read as `GET /api/v1/blobs/<digest>` (core.builds)."""
    def may_pull(other: str) -> bool:
        return bool(visible(request, ctx, "oci", [other]))

    out = []
    for i, layer in enumerate(body.layers):
        also: list[str] | None = None
        if ctx.builds is not None and i < MAX_LAYERS:
            report = await ctx.builds.blob(layer.digest, may_pull)
            holders = set(report.linked_in) | {m.repo for m in report.manifests} \
                if report is not None else set()
            also = sorted(r for r in holders if r != repo and may_pull(r))
        out.append(layer_row(layer, also))
    return out


def layer_row(layer: Descriptor, also: list[str] | None) -> dict[str, Any]:
    return {"digest": str(layer.digest), "media_type": layer.media_type,
            "size": layer.size, "also": (also or [])[:MAX_ALSO],
            "more": max(0, len(also or []) - MAX_ALSO), "known": also is not None}


async def config_of(ctx: Context, repo: str, body: Manifest) -> dict[str, Any]:
    """The image's config document ({} when it is large, missing or not JSON)."""
    if body.config is None:
        return {}
    with contextlib.suppress(RegistryError):
        raw = await ctx.registry.manifests.read_config(body, repo)
        if raw is not None:
            with contextlib.suppress(ValueError, RecursionError):
                doc = json.loads(raw)
                return doc if isinstance(doc, dict) else {}
    return {}


def _strings(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value[:MAX_ENV]]
    return [str(value)] if isinstance(value, str) else []


def shown_config(doc: dict[str, Any]) -> dict[str, Any]:
    """What the page shows of a config: platform, Env, Entrypoint, Cmd, WorkingDir,
    User, Labels (each as text; whatever its pusher wrote, it is only ever printed)."""
    run: dict[str, Any] = doc["config"] if isinstance(doc.get("config"), dict) else {}
    labels: dict[str, Any] = run["Labels"] if isinstance(run.get("Labels"), dict) else {}
    platform = "/".join(str(doc[k]) for k in ("os", "architecture", "variant")
                        if isinstance(doc.get(k), str) and doc[k])
    return {"platform": platform, "created": str(doc.get("created") or ""),
            "env": _strings(run.get("Env")), "entrypoint": _strings(run.get("Entrypoint")),
            "cmd": _strings(run.get("Cmd")), "workdir": str(run.get("WorkingDir") or ""),
            "user": str(run.get("User") or ""),
            "labels": sorted((str(k), str(v)) for k, v in list(labels.items())[:MAX_ENV])}


def spack_spec(doc: dict[str, Any]) -> tuple[str, str] | None:
    """(name, DAG hash) of the Spack spec a config carries (spack's OCI push), if any."""
    if "spec" not in doc:
        return None
    try:
        root = SpecDoc.parse(doc).root
    except InvalidSpec:
        return None
    return root.name, root.hash


async def tags_of(ctx: Context, repo: str, digest: Digest) -> list[str]:
    """The tags pointing at `digest` (at most MAX_TAGS), when the repository has few
    enough tags to map them all (a build cache of 100,000 is not read whole for one
    page: its tag is in the manifest's spack spec, and the repository page lists it)."""
    if len(await ctx.registry.tags.list(repo)) > MAX_TAG_MAP:
        return []
    return (await ctx.registry.tags.pointing_at(repo, digest))[:MAX_TAGS]
