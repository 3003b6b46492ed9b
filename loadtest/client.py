"""Small OCI distribution clients used for seeding and for the push/listing scenarios.

* `RegistryClient`: asyncio + aiohttp, for many small requests (seeding manifests and
  tags, pushing small blobs, listing tags and referrers).
* `push_file_monolithic` / `push_file_chunked`: blocking `http.client` with the body sent
  by `socket.sendfile`, so pushing 1 GiB costs the client almost no CPU and never holds
  the blob in memory. Run them in a thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

import aiohttp

from loadtest.data import OCI_INDEX, OCI_MANIFEST, BlobFile

T = TypeVar("T")

_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class RegistryError(RuntimeError):
    """The server answered something the OCI distribution spec does not allow here."""


def next_link(link_header: str | None) -> str | None:
    """The target of rel="next" in an RFC 8288 Link header, or None."""
    if not link_header:
        return None
    m = _LINK_NEXT.search(link_header)
    return m.group(1) if m else None


def with_digest(location: str, digest: str) -> str:
    sep = "&" if "?" in location else "?"
    return f"{location}{sep}digest={digest}"


async def bounded_map(
    func: Callable[[T], Awaitable[object]], items: Iterable[T], concurrency: int
) -> None:
    """Run func(item) for every item with at most `concurrency` in flight; fail fast."""
    it = iter(items)

    async def worker() -> None:
        for item in it:  # shared iterator: each item is taken exactly once
            await func(item)

    try:
        async with asyncio.TaskGroup() as tg:
            for _ in range(max(1, concurrency)):
                tg.create_task(worker())
    except ExceptionGroup as group:  # report the first real error, not the group
        raise group.exceptions[0] from None


class RegistryClient:
    """An aiohttp session bound to one registry base URL (http://127.0.0.1:PORT)."""

    def __init__(self, base_url: str, concurrency: int = 16, timeout: float = 120.0,
                 auth: aiohttp.BasicAuth | None = None):
        self.base = base_url.rstrip("/")
        self.concurrency = concurrency
        self.timeout = timeout
        self.auth = auth  # Basic credentials on every request (a server with token auth)
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RegistryClient:
        connector = aiohttp.TCPConnector(limit=max(1, self.concurrency), force_close=False)
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=10),
            auto_decompress=False,
            auth=self.auth,
        )
        return self

    async def __aexit__(self, *exc) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    def url(self, path_or_url: str) -> str:
        return urljoin(self.base + "/", path_or_url)

    async def request(
        self, method: str, path: str, *, data: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        assert self.session is not None, "use `async with RegistryClient(...)`"
        async with self.session.request(
            method, self.url(path), data=data, headers=headers, allow_redirects=True
        ) as resp:
            body = await resp.read()
            return resp.status, dict(resp.headers), body

    # -- blobs -----------------------------------------------------------------

    async def start_upload(self, repo: str) -> str:
        status, headers, body = await self.request(
            "POST", f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"}
        )
        if status != 202 or "Location" not in headers:
            raise RegistryError(f"POST upload: {status} {body[:200]!r}")
        return self.url(headers["Location"])

    async def push_blob(self, repo: str, data: bytes, digest: str, single_post: bool) -> None:
        """Push one small blob: POST ?digest= with the body (201) or POST + PUT ?digest=."""
        ctype = {"Content-Type": "application/octet-stream"}
        if single_post:
            status, headers, body = await self.request(
                "POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", data=data, headers=ctype
            )
            if status == 201:
                return
            if status != 202 or "Location" not in headers:
                raise RegistryError(f"POST ?digest: {status} {body[:200]!r}")
            location = self.url(headers["Location"])
        else:
            location = await self.start_upload(repo)
        status, _, body = await self.request(
            "PUT", with_digest(location, digest), data=data, headers=ctype
        )
        if status != 201:
            raise RegistryError(f"PUT blob: {status} {body[:200]!r}")

    async def probe_single_post(self, repo: str, data: bytes, digest: str) -> bool:
        """Push `data` with POST ?digest=; True if the server completed it in one request."""
        status, headers, body = await self.request(
            "POST",
            f"/v2/{repo}/blobs/uploads/?digest={digest}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        if status == 201:
            return True
        if status != 202 or "Location" not in headers:
            raise RegistryError(f"POST ?digest: {status} {body[:200]!r}")
        status, _, body = await self.request(
            "PUT", with_digest(self.url(headers["Location"]), digest), data=data
        )
        if status != 201:
            raise RegistryError(f"PUT blob: {status} {body[:200]!r}")
        return False

    async def ensure_blob(self, repo: str, data: bytes, digest: str) -> None:
        status, _, _ = await self.request("HEAD", f"/v2/{repo}/blobs/{digest}")
        if status != 200:
            await self.push_blob(repo, data, digest, single_post=False)

    async def blob_size(self, repo: str, digest: str) -> int | None:
        status, headers, _ = await self.request("HEAD", f"/v2/{repo}/blobs/{digest}")
        if status != 200:
            return None
        return int(headers.get("Content-Length", "-1"))

    # -- manifests, tags, referrers ---------------------------------------------

    async def put_manifest(
        self, repo: str, ref: str, body: bytes, media_type: str = OCI_MANIFEST
    ) -> str:
        status, headers, resp = await self.request(
            "PUT", f"/v2/{repo}/manifests/{ref}", data=body, headers={"Content-Type": media_type}
        )
        if status != 201:
            raise RegistryError(f"PUT manifest {repo}:{ref}: {status} {resp[:300]!r}")
        return headers.get("Docker-Content-Digest", "")

    async def list_tags(
        self, repo: str, page_size: int, max_pages: int, paginate: bool = True
    ) -> tuple[list[str], int]:
        """Full tag listing following Link rel=next; returns (tags, number of pages).
        With paginate=False, one request without `n`."""
        tags: list[str] = []
        url: str | None = f"/v2/{repo}/tags/list" + (f"?n={page_size}" if paginate else "")
        pages = 0
        while url is not None:
            if pages >= max_pages:
                raise RegistryError(f"tag listing did not end after {max_pages} pages")
            status, headers, body = await self.request("GET", url)
            if status != 200:
                raise RegistryError(f"GET tags: {status} {body[:200]!r}")
            pages += 1
            tags.extend(_json(body).get("tags") or [])
            url = next_link(headers.get("Link"))
        return tags, pages

    async def list_referrers(
        self, repo: str, digest: str, max_pages: int
    ) -> tuple[int, list[dict], int]:
        """(status of the first page, all referrer descriptors, pages)."""
        manifests: list[dict] = []
        url: str | None = f"/v2/{repo}/referrers/{digest}"
        pages = 0
        first_status = 0
        while url is not None and pages < max_pages:
            status, headers, body = await self.request("GET", url, headers={"Accept": OCI_INDEX})
            if pages == 0:
                first_status = status
            if status != 200:
                break
            doc = _json(body)
            if not isinstance(doc.get("manifests"), list):
                raise RegistryError(f"referrers answer is not an image index: {body[:200]!r}")
            manifests.extend(doc["manifests"])
            pages += 1
            url = next_link(headers.get("Link"))
        return first_status, manifests, pages


def _json(body: bytes) -> dict:
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise RegistryError(f"not JSON: {body[:200]!r}") from exc
    return doc if isinstance(doc, dict) else {}


# -- large pushes with sendfile ------------------------------------------------------


class _Conn:
    """One keep-alive HTTP/1.1 connection; request bodies come from a file by sendfile."""

    def __init__(self, base_url: str, timeout: float):
        parts = urlsplit(base_url)
        self.netloc = parts.netloc
        self.base = base_url.rstrip("/")
        self.conn = http.client.HTTPConnection(
            parts.hostname, parts.port or 80, timeout=timeout, blocksize=1 << 20
        )

    def close(self) -> None:
        self.conn.close()

    def target(self, location: str) -> str:
        """Path and query for `location` (absolute or relative), on our host only."""
        parts = urlsplit(urljoin(self.base + "/", location))
        if parts.netloc != self.netloc:
            raise RegistryError(f"upload location moved to another host: {location}")
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def request(
        self,
        method: str,
        location: str,
        headers: dict[str, str],
        blob: BlobFile | None = None,
        offset: int = 0,
        count: int = 0,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        c = self.conn
        c.putrequest(method, self.target(location), skip_accept_encoding=True)
        for k, v in headers.items():
            c.putheader(k, v)
        c.putheader("Content-Length", str(count))
        c.endheaders()
        if count:
            assert blob is not None and c.sock is not None
            with blob.path.open("rb") as f:
                sent = c.sock.sendfile(f, offset, count)
            if sent != count:
                raise RegistryError(f"sent {sent} of {count} bytes")
        resp = c.getresponse()
        body = resp.read()
        return resp.status, resp.headers, body


def _check_digest(headers: http.client.HTTPMessage, blob: BlobFile) -> None:
    got = headers.get("Docker-Content-Digest")
    if got and got != blob.digest:
        raise RegistryError(f"server computed digest {got}, expected {blob.digest}")


def _start(conn: _Conn, repo: str) -> str:
    status, headers, body = conn.request("POST", f"/v2/{repo}/blobs/uploads/", {})
    if status != 202 or not headers.get("Location"):
        raise RegistryError(f"POST upload: {status} {body[:200]!r}")
    return headers["Location"]


def push_file_monolithic(base_url: str, repo: str, blob: BlobFile, timeout: float = 600) -> dict:
    """POST an upload, then PUT ?digest= with the whole file. Returns timings."""
    conn = _Conn(base_url, timeout)
    try:
        t0 = time.perf_counter()
        location = _start(conn, repo)
        status, headers, body = conn.request(
            "PUT",
            with_digest(location, blob.digest),
            {"Content-Type": "application/octet-stream"},
            blob,
            0,
            blob.size,
        )
        elapsed = time.perf_counter() - t0
        if status != 201:
            raise RegistryError(f"PUT blob: {status} {body[:200]!r}")
        _check_digest(headers, blob)
        return {"seconds": elapsed, "requests": 2}
    finally:
        conn.close()


def push_file_chunked(
    base_url: str, repo: str, blob: BlobFile, chunk: int, timeout: float = 600
) -> dict:
    """POST, one PATCH per `chunk` bytes (Content-Range), then PUT ?digest=. Returns timings."""
    conn = _Conn(base_url, timeout)
    try:
        t0 = time.perf_counter()
        location = _start(conn, repo)
        patches = 0
        for start in range(0, blob.size, chunk):  # bounded: size / chunk iterations
            n = min(chunk, blob.size - start)
            status, headers, body = conn.request(
                "PATCH",
                location,
                {
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{start}-{start + n - 1}",
                },
                blob,
                start,
                n,
            )
            if status != 202 or not headers.get("Location"):
                raise RegistryError(f"PATCH at {start}: {status} {body[:200]!r}")
            location = headers["Location"]
            patches += 1
        status, headers, body = conn.request("PUT", with_digest(location, blob.digest), {})
        elapsed = time.perf_counter() - t0
        if status != 201:
            raise RegistryError(f"PUT (close upload): {status} {body[:200]!r}")
        _check_digest(headers, blob)
        return {"seconds": elapsed, "requests": patches + 2, "patches": patches}
    finally:
        conn.close()
