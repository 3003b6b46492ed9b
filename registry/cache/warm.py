"""`registry cache warm`: pull images through a running node cache before a job
starts, so that its blobs are on the node when hundreds of clients want them.

It is an ordinary client of the cache (GETs over its OCI API), so warming goes
through the same coalescing as any pull: a warm-up running while clients
arrive costs the upstream nothing extra. First every manifest is read (image
indexes are followed to the children for the wanted platforms), then the
blobs they name are fetched `jobs` at a time and their bodies discarded, with
a progress bar over the bytes.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from registry.core.grammar import NAME_RE, TAG_RE

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
MANIFEST_MAX = 4 << 20
_DIGEST = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+"
REF_RE = re.compile(rf"(?P<repo>{NAME_RE.pattern})(?::(?P<tag>{TAG_RE.pattern}))?"
                    rf"(?:@(?P<digest>{_DIGEST}))?")


class WarmError(Exception):
    """A reference that cannot be warmed (the message says why)."""


@dataclass(frozen=True, slots=True)
class Ref:
    repo: str
    reference: str  # a tag or a digest

    @classmethod
    def parse(cls, text: str) -> Ref:
        """`repo[:tag][@digest]` (default tag: latest), without a registry host."""
        m = REF_RE.fullmatch(text)
        if m is None:
            raise WarmError(f"{text!r} is not a reference (repo[:tag][@digest], no host)")
        return cls(m["repo"], m["digest"] or m["tag"] or "latest")

    def __str__(self) -> str:
        sep = "@" if ":" in self.reference else ":"
        return f"{self.repo}{sep}{self.reference}"


@dataclass
class Plan:
    """The blobs to fetch: (repo, digest) -> size, and the manifests read."""

    blobs: dict[tuple[str, str], int] = field(default_factory=dict)
    manifests: int = 0

    @property
    def bytes(self) -> int:
        return sum(self.blobs.values())


def _platform_ok(platform: object, wanted: set[str] | None) -> bool:
    if wanted is None or not isinstance(platform, dict):
        return True
    name = f"{platform.get('os', '')}/{platform.get('architecture', '')}"
    if platform.get("variant"):
        return name in wanted or f"{name}/{platform['variant']}" in wanted
    return name in wanted


class Warmer:
    """A client of one node cache that pulls references through it."""

    def __init__(self, base_url: str, jobs: int = 8, platforms: set[str] | None = None,
                 cafile: str | None = None) -> None:
        self.base = base_url.rstrip("/")
        self.jobs = jobs
        self.platforms = platforms  # "os/arch[/variant]"; None: every platform
        self.cafile = cafile
        self.failed: list[tuple[str, str]] = []  # (what, why)

    def _session(self) -> aiohttp.ClientSession:
        ctx: ssl.SSLContext | bool = True
        if self.cafile:
            ctx = ssl.create_default_context(cafile=self.cafile)
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ctx, limit=self.jobs + 4),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300),
            auto_decompress=False)

    async def plan(self, refs: list[Ref]) -> Plan:
        plan = Plan()
        async with self._session() as s:
            for ref in refs:
                try:
                    await self._manifest(s, ref.repo, ref.reference, plan, depth=0)
                except WarmError as exc:
                    self.failed.append((str(ref), str(exc)))
        return plan

    async def _manifest(self, s: aiohttp.ClientSession, repo: str, reference: str,
                        plan: Plan, depth: int) -> None:
        url = f"{self.base}/v2/{repo}/manifests/{reference}"
        try:
            async with s.get(url, headers={"Accept": ACCEPT}) as r:
                body = await r.content.read(MANIFEST_MAX + 1)
                if r.status != 200:
                    raise WarmError(f"GET {url}: {r.status} {body[:200]!r}")
                media_type = r.headers.get("Content-Type", "").split(";")[0]
        except aiohttp.ClientError as exc:
            raise WarmError(f"GET {url}: {exc}") from None
        if len(body) > MANIFEST_MAX:
            raise WarmError(f"{url}: manifest larger than {MANIFEST_MAX} bytes")
        try:
            doc = json.loads(body)
        except ValueError:
            raise WarmError(f"{url}: not JSON") from None
        if not isinstance(doc, dict):
            raise WarmError(f"{url}: not a manifest")
        plan.manifests += 1
        media_type = doc.get("mediaType") or media_type
        if media_type in INDEX_TYPES or "manifests" in doc:
            if depth > 2:
                raise WarmError(f"{url}: indexes nested too deep")
            for child in doc.get("manifests") or []:
                if isinstance(child, dict) and isinstance(child.get("digest"), str) \
                        and _platform_ok(child.get("platform"), self.platforms):
                    await self._manifest(s, repo, child["digest"], plan, depth + 1)
            return
        for desc in [doc.get("config"), *(doc.get("layers") or [])]:
            if isinstance(desc, dict) and isinstance(desc.get("digest"), str) \
                    and isinstance(desc.get("size"), int) and desc["size"] >= 0:
                plan.blobs[(repo, desc["digest"])] = desc["size"]

    async def fetch(self, plan: Plan, progress: Callable[[int, int], None]) -> int:
        """Fetch every blob of `plan`, bodies discarded; the bytes received."""
        total = 0
        queue = list(plan.blobs)

        async def worker(s: aiohttp.ClientSession) -> None:
            nonlocal total
            while queue:
                repo, digest = queue.pop()
                url = f"{self.base}/v2/{repo}/blobs/{digest}"
                got = 0
                try:
                    async with s.get(url) as r:
                        if r.status != 200:
                            raise WarmError(f"{r.status} {(await r.read())[:200]!r}")
                        async for chunk in r.content.iter_chunked(1 << 20):
                            got += len(chunk)
                            progress(0, len(chunk))
                    if got != plan.blobs[(repo, digest)]:
                        raise WarmError(f"got {got} of {plan.blobs[(repo, digest)]} bytes")
                    progress(1, 0)
                except (WarmError, aiohttp.ClientError, TimeoutError) as exc:
                    self.failed.append((f"{repo}@{digest}", str(exc) or type(exc).__name__))
                total += got

        async with self._session() as s:
            await asyncio.gather(*(worker(s) for _ in range(max(1, self.jobs))))
        return total
