"""The node cache's client of its upstream registry (OCI distribution API over HTTP).

One aiohttp session per process. Authentication follows what registries ask for:
with `username`/`password`, Basic when the upstream challenges with Basic, and the
Docker/OCI token flow when it challenges with `Bearer realm=...,service=...,scope=...`
(the realm is asked for a token with the Basic credentials, or anonymously without
them; tokens are kept per scope until they expire). Every failure becomes a domain
error (`core.errors`): unreachable or 5xx is 503 UpstreamUnavailable, a refusal of
our credentials 403 DENIED, an unknown blob or manifest its 404, an answer that does
not match its digest 502 BadUpstream.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import aiohttp

from registry.core.errors import (
    BadUpstream,
    BlobUnknown,
    Denied,
    ManifestUnknown,
    NameUnknown,
    NotFound,
    RegistryError,
    TooManyRequests,
    UpstreamUnavailable,
)
from registry.core.grammar import Digest, is_digest_like

MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])
# Bytes must arrive as stored: a compressed transfer would not match its digest.
IDENTITY = {"Accept-Encoding": "identity"}
# Tag lists and referrer indexes are read whole; bound them.
LIST_MAX_BYTES = 16 << 20
TAG_PAGES_MAX = 1000
REDIRECTS_MAX = 5
_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True, slots=True)
class UpstreamManifest:
    """A manifest as the upstream served it, its digest verified."""

    digest: Digest
    media_type: str | None
    data: bytes


class Upstream:
    """Requests to one upstream registry, with its authentication and error mapping.
    `start` (on the event loop) before use, `close` at the end."""

    def __init__(self, base_url: str, username: str = "", password: str = "",
                 ca_bundle: str = "", manifest_max_bytes: int = 4 << 20,
                 connect_timeout: float = 10.0, read_timeout: float = 60.0) -> None:
        self.base = base_url.rstrip("/")
        self._basic = _basic(username, password) if username else None
        self._ca_bundle = ca_bundle
        self._manifest_max = manifest_max_bytes
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout,
                                              sock_connect=connect_timeout,
                                              sock_read=read_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._tokens: dict[str, tuple[str, float]] = {}  # scope -> (token, expires at)
        self._basic_wanted = False  # the upstream challenged with Basic

    async def start(self) -> None:
        ctx: ssl.SSLContext | bool = True
        if self._ca_bundle:
            # Reads the bundle: off the event loop.
            ctx = await asyncio.to_thread(ssl.create_default_context, cafile=self._ca_bundle)
        connector = aiohttp.TCPConnector(ssl=ctx, limit=256, limit_per_host=128)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout,
                                              auto_decompress=False)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    # -- requests ------------------------------------------------------------

    def _unavailable(self, what: str, exc: BaseException | None = None,
                     status: int | None = None) -> UpstreamUnavailable:
        detail: dict[str, Any] = {"upstream": self.base}
        if status is not None:
            detail["status"] = status
        if exc is not None:
            detail["error"] = (str(exc) or type(exc).__name__)[:200]
        return UpstreamUnavailable(f"upstream registry {self.base} {what}", detail)

    def _authorization(self, scope: str) -> str | None:
        token = self._tokens.get(scope)
        if token is not None and token[1] > time.monotonic():
            return f"Bearer {token[0]}"
        if self._basic is not None and self._basic_wanted:
            return self._basic
        return None

    async def _send(self, method: str, path: str, scope: str,
                    headers: dict[str, str] | None = None,
                    params: dict[str, str] | None = None) -> aiohttp.ClientResponse:
        """One request to the upstream, authenticating and retrying once on a 401.
        Redirects are followed here, without our credentials when they leave the
        upstream's host (a presigned S3 URL refuses a second authorization)."""
        assert self._session is not None, "Upstream.start() was not called"
        url = self.base + path
        for attempt in range(2):
            hdrs = {**IDENTITY, **(headers or {})}
            auth = self._authorization(scope)
            if auth is not None:
                hdrs["Authorization"] = auth
            resp = await self._follow(method, url, hdrs, params)
            if resp.status == 401 and attempt == 0:
                challenge = resp.headers.get("WWW-Authenticate", "")
                resp.release()
                if await self._authenticate(challenge, scope, auth):
                    continue
                raise Denied(f"upstream registry {self.base} refused the node cache "
                             "(set [cache] username and password)", {"upstream": self.base})
            return resp
        raise AssertionError("unreachable")

    async def _follow(self, method: str, url: str, headers: dict[str, str],
                      params: dict[str, str] | None) -> aiohttp.ClientResponse:
        assert self._session is not None
        origin = urlsplit(url).netloc
        for _ in range(REDIRECTS_MAX + 1):
            try:
                resp = await self._session.request(method, url, headers=headers, params=params,
                                                   allow_redirects=False)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise self._unavailable("is unreachable", exc) from None
            if resp.status not in (301, 302, 303, 307, 308) or "Location" not in resp.headers:
                return resp
            url = urljoin(str(resp.url), resp.headers["Location"])
            resp.release()
            params = None  # the Location carries its own query
            if urlsplit(url).netloc != origin:
                headers = {k: v for k, v in headers.items() if k != "Authorization"}
        raise BadUpstream(f"upstream registry {self.base} redirected too often",
                          {"upstream": self.base})

    async def _authenticate(self, challenge: str, scope: str, sent: str | None) -> bool:
        """Act on a 401's challenge; True when a retry may succeed."""
        kind, _, rest = challenge.strip().partition(" ")
        kind = kind.lower()
        if kind == "basic":
            if self._basic is None or (sent is not None and sent.startswith("Basic ")):
                return False
            self._basic_wanted = True
            return True
        if kind != "bearer":
            return False
        params = dict(_PARAM.findall(rest))
        realm = params.get("realm")
        if not realm:
            return False
        query = {k: v for k, v in (("service", params.get("service")),
                                   ("scope", params.get("scope") or scope)) if v}
        assert self._session is not None
        try:
            headers = {**IDENTITY, **({"Authorization": self._basic} if self._basic else {})}
            async with self._session.get(realm, params=query, headers=headers) as resp:
                if resp.status in (401, 403):
                    return False
                if resp.status != 200:
                    raise self._unavailable("token service failed", status=resp.status)
                doc = json.loads(await resp.content.read(1 << 20))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise self._unavailable("token service is unreachable", exc) from None
        except ValueError:
            raise BadUpstream(f"upstream registry {self.base} token service sent no JSON",
                              {"upstream": self.base}) from None
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            return False
        lifetime = doc.get("expires_in")
        lifetime = lifetime if isinstance(lifetime, int | float) and lifetime > 0 else 60
        # A little early: a token that expires in flight costs a second round trip.
        self._tokens[scope] = (token, time.monotonic() + max(1.0, lifetime - 5))
        return True

    async def _error(self, resp: aiohttp.ClientResponse, unknown: type[RegistryError],
                     detail: dict[str, Any]) -> RegistryError:
        """The domain error for an upstream answer that is not a success."""
        status = resp.status
        code = message = None
        try:
            doc = json.loads(await resp.content.read(64 << 10) or b"{}")
            first = doc.get("errors", [{}])[0]
            code, message = first.get("code"), first.get("message")
        except (ValueError, AttributeError, IndexError, aiohttp.ClientError, TimeoutError):
            pass
        finally:
            resp.release()
        if status >= 500:
            return self._unavailable(f"answered {status}", status=status)
        if status in (401, 403):
            return Denied(f"upstream registry {self.base} denied access", detail)
        if status == 429:
            return TooManyRequests(f"upstream registry {self.base} is rate limiting", detail)
        if status == 404:
            if code == "NAME_UNKNOWN":
                return NameUnknown(detail=detail)
            return unknown(detail=detail)
        text = message if isinstance(message, str) else f"upstream registry answered {status}"
        return RegistryError(text[:200], detail, status=status if 400 <= status < 500 else 502,
                             code=code if isinstance(code, str) else "UNKNOWN")

    # -- manifests -----------------------------------------------------------

    async def manifest(self, repo: str, reference: str,
                       known: Digest | None = None) -> UpstreamManifest | None:
        """The manifest `reference` names upstream, its digest verified; None when
        `known` is given and is still what the reference names (304)."""
        headers = {"Accept": MANIFEST_ACCEPT}
        if known is not None:
            headers["If-None-Match"] = f'"{known}"'
        detail = {"repository": repo, "reference": reference[:128]}
        resp = await self._send("GET", f"/v2/{repo}/manifests/{reference}",
                                f"repository:{repo}:pull", headers)
        if resp.status == 304 and known is not None:
            resp.release()
            return None
        if resp.status != 200:
            raise await self._error(resp, ManifestUnknown, detail)
        try:
            data = await self._read_bounded(resp, self._manifest_max)
        finally:
            resp.release()
        expected = None
        if is_digest_like(reference):
            expected = Digest.parse(reference)
        elif "Docker-Content-Digest" in resp.headers:
            try:
                expected = Digest.parse(resp.headers["Docker-Content-Digest"])
            except RegistryError:
                expected = None
        digest = Digest.of(data, expected.algorithm if expected else "sha256")
        if expected is not None and digest != expected:
            raise BadUpstream("upstream manifest does not match its digest",
                              {**detail, "expected": str(expected), "actual": str(digest)})
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip() or None
        return UpstreamManifest(digest, media_type, data)

    async def _read_bounded(self, resp: aiohttp.ClientResponse, limit: int) -> bytes:
        if resp.content_length is not None and resp.content_length > limit:
            raise BadUpstream(f"upstream answer larger than {limit} bytes",
                              {"upstream": self.base})
        try:
            data = await resp.content.read(limit + 1)
            while len(data) <= limit and not resp.content.at_eof():
                more = await resp.content.read(limit + 1 - len(data))
                if not more:
                    break
                data += more
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise self._unavailable("broke off its answer", exc) from None
        if len(data) > limit:
            raise BadUpstream(f"upstream answer larger than {limit} bytes",
                              {"upstream": self.base})
        return data

    # -- blobs ---------------------------------------------------------------

    async def blob_size(self, repo: str, digest: Digest) -> int:
        """The size of a blob upstream (HEAD), without its bytes."""
        resp = await self._send("HEAD", f"/v2/{repo}/blobs/{digest}", f"repository:{repo}:pull")
        if resp.status != 200:
            raise await self._error(resp, BlobUnknown, {"digest": str(digest)})
        resp.release()
        if resp.content_length is None:
            raise BadUpstream("upstream gave no size for the blob", {"digest": str(digest)})
        return resp.content_length

    async def open_blob(self, repo: str, digest: Digest) -> tuple[aiohttp.ClientResponse, int]:
        """A GET of a blob whose body is yet to be read, and its size. The caller
        reads `resp.content` and releases the response."""
        resp = await self._send("GET", f"/v2/{repo}/blobs/{digest}", f"repository:{repo}:pull")
        if resp.status != 200:
            raise await self._error(resp, BlobUnknown, {"digest": str(digest)})
        if resp.content_length is None:
            resp.release()
            raise BadUpstream("upstream gave no size for the blob", {"digest": str(digest)})
        return resp, resp.content_length

    # -- Spack's classic views ---------------------------------------------------

    async def spack_document(self, cache: str, rel: str,
                             limit: int) -> tuple[Digest | None, bytes | None, str]:
        """What the upstream's `/spack/<cache>/<rel>` is: (digest, None, type) when
        it answers with a blob's ETag (`"sha256:..."`: a tarball, an index, to be
        fetched like any blob), else (None, the document, its type), at most
        `limit` bytes. A HEAD first, so that a tarball is never fetched twice."""
        path = f"/spack/{quote(cache)}/{quote(rel)}"
        scope = f"repository:{cache}:pull"
        for method in ("HEAD", "GET"):
            resp = await self._send(method, path, scope, dict(IDENTITY))
            try:
                if resp.status != 200:
                    raise await self._error(resp, NotFound, {"path": rel[:200]})
                ctype = resp.headers.get("Content-Type", "application/octet-stream")
                etag = resp.headers.get("ETag", "").strip('"')
                if etag.startswith("sha256:"):
                    with contextlib.suppress(RegistryError):
                        return Digest.parse(etag), None, ctype
                if method == "GET":
                    return None, await self._read_bounded(resp, limit), ctype
            finally:
                resp.release()
        raise AssertionError("unreachable")

    # -- listings ------------------------------------------------------------

    async def tags(self, repo: str) -> list[str]:
        """Every tag of the repository upstream, following its pages."""
        out: list[str] = []
        path: str | None = f"/v2/{repo}/tags/list"
        params: dict[str, str] | None = {"n": "1000"}
        for _ in range(TAG_PAGES_MAX):
            if path is None:
                break
            resp = await self._send("GET", path, f"repository:{repo}:pull", params=params)
            if resp.status != 200:
                raise await self._error(resp, NameUnknown, {"name": repo})
            try:
                doc = json.loads(await self._read_bounded(resp, LIST_MAX_BYTES))
            except ValueError:
                raise BadUpstream("upstream tag list is not JSON", {"name": repo}) from None
            finally:
                resp.release()
            tags = doc.get("tags") if isinstance(doc, dict) else None
            out.extend(t for t in tags or [] if isinstance(t, str))
            path, params = _next_page(resp.headers.get("Link")), None
        return out

    async def referrers(self, repo: str, subject: Digest,
                        artifact_type: str | None = None) -> list[dict]:
        """The descriptors of the subject's referrers upstream ([] when it has no
        referrers API)."""
        params = {"artifactType": artifact_type} if artifact_type else None
        resp = await self._send("GET", f"/v2/{repo}/referrers/{subject}",
                                f"repository:{repo}:pull", params=params)
        if resp.status == 404:
            resp.release()
            return []
        if resp.status != 200:
            raise await self._error(resp, ManifestUnknown, {"digest": str(subject)})
        try:
            doc = json.loads(await self._read_bounded(resp, LIST_MAX_BYTES))
        except ValueError:
            raise BadUpstream("upstream referrers index is not JSON",
                              {"digest": str(subject)}) from None
        finally:
            resp.release()
        found = doc.get("manifests") if isinstance(doc, dict) else None
        return [d for d in found or [] if isinstance(d, dict)]


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _next_page(link: str | None) -> str | None:
    """The path of `Link: </v2/...?last=x&n=1000>; rel="next"`, if any."""
    if not link:
        return None
    target, _, rel = link.partition(";")
    target = target.strip()
    if "next" not in rel or not (target.startswith("<") and target.endswith(">")):
        return None
    parts = urlsplit(target[1:-1])
    if not parts.path.startswith("/v2/"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")
