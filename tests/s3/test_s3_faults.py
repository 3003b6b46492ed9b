"""Store faults: SeaweedFS killed in the middle of a push.

The client must get a prompt 503 with Retry-After (not a hang, not a 500),
nothing partial may become visible, and the same push must succeed once the
store is back. This test kills and restarts its own SeaweedFS.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

import requests
from pushing import digest_of, pull_image, push_image
from seaweed import ACCESS_KEY, SECRET_KEY, Seaweed

from registry.storage.s3 import S3Driver

MiB = 1 << 20
BUCKET = "faults"
# Connection refused is retried a few times with backoff, then answered 503.
FAIL_FAST_S = 5.0


def _unavailable(r: requests.Response) -> None:
    assert r.status_code == 503, (r.status_code, r.text)
    assert int(r.headers["Retry-After"]) > 0
    assert r.json()["errors"][0]["code"] == "UNAVAILABLE"


def _patch(url: str, loc: str, data: bytes, start: int) -> requests.Response:
    return requests.patch(f"{url}{loc}", data=data, timeout=60, headers={
        "Content-Type": "application/octet-stream",
        "Content-Range": f"{start}-{start + len(data) - 1}"})


def test_store_killed_mid_push(start_registry, own_seaweed: Seaweed) -> None:
    reg = start_registry(env=own_seaweed.registry_env(BUCKET))
    repo = reg.repo("fault")
    warm = push_image(reg.url, repo, "before", [os.urandom(1000)], note="before").digest
    layer = os.urandom(12 * MiB + 3)

    # 1. The store dies while a chunk streams in: the request fails (503, or the
    #    connection drops if the client was still sending), promptly.
    r = requests.post(f"{reg.url}/v2/{repo}/blobs/uploads/", timeout=30)
    loc = r.headers["Location"]

    def body() -> Iterator[bytes]:
        for i in range(12):
            if i == 7:
                own_seaweed.kill()
            yield layer[i * MiB:(i + 1) * MiB]

    t0 = time.monotonic()
    try:
        r = requests.patch(f"{reg.url}{loc}", data=body(), timeout=60,
                           headers={"Content-Type": "application/octet-stream"})
        _unavailable(r)
    except requests.ConnectionError:
        pass
    assert time.monotonic() - t0 < 30

    # 2. While the store is down every request that needs it fails fast with 503.
    for method, path in (("GET", f"/v2/{repo}/manifests/before"),
                         ("HEAD", f"/v2/{repo}/blobs/{digest_of(layer)}"),
                         ("POST", f"/v2/{repo}/blobs/uploads/"),
                         ("GET", f"/v2/{repo}/tags/list")):
        t0 = time.monotonic()
        r = requests.request(method, f"{reg.url}{path}", timeout=30)
        assert r.status_code == 503, (method, path, r.status_code)
        assert "Retry-After" in r.headers
        assert time.monotonic() - t0 < FAIL_FAST_S, (method, path)
    _unavailable(requests.get(f"{reg.url}/v2/{repo}/manifests/before", timeout=30))

    # 3. Back up: nothing partial is visible, the registry recovers by itself.
    own_seaweed.start()
    assert requests.head(f"{reg.url}/v2/{repo}/blobs/{digest_of(layer)}",
                         timeout=30).status_code == 404
    blob_keys = [k for k in own_seaweed.keys(BUCKET, "blobs/") if digest_of(layer)[7:] in k]
    assert blob_keys == []
    assert pull_image(reg.url, repo, "before")[0] == warm

    # 4. A chunked push dies between chunks: the next chunk gets a clean 503,
    #    the session keeps what it had, and the push finishes after the restart.
    r = requests.post(f"{reg.url}/v2/{repo}/blobs/uploads/", timeout=30)
    loc = r.headers["Location"]
    assert _patch(reg.url, loc, layer[:6 * MiB], 0).status_code == 202
    own_seaweed.kill()
    t0 = time.monotonic()
    _unavailable(_patch(reg.url, loc, layer[6 * MiB:9 * MiB], 6 * MiB))
    assert time.monotonic() - t0 < FAIL_FAST_S
    own_seaweed.start()
    status = requests.get(f"{reg.url}{loc}", timeout=30)
    assert status.status_code == 204 and status.headers["Range"] == f"0-{6 * MiB - 1}"
    assert _patch(reg.url, loc, layer[6 * MiB:9 * MiB], 6 * MiB).status_code == 202
    r = requests.put(f"{reg.url}{loc}", params={"digest": digest_of(layer)}, data=layer[9 * MiB:],
                     headers={"Content-Type": "application/octet-stream"}, timeout=60)
    assert r.status_code == 201, r.text

    # 5. And the whole push, retried as a client would, succeeds.
    pushed = push_image(reg.url, repo, "after", [layer], note="after").digest
    got, blobs = pull_image(reg.url, repo, "after")
    assert got == pushed and blobs[1] == layer

    # 6. Multipart uploads the crash abandoned are aborted by the janitor's sweep.
    async def purge() -> int:
        driver = S3Driver(BUCKET, endpoint_url=own_seaweed.endpoint, access_key=ACCESS_KEY,
                          secret_key=SECRET_KEY, janitor=False)
        try:
            return await driver.purge_uploads(older_than=0)
        finally:
            await driver.close()

    asyncio.run(purge())
    assert own_seaweed.multipart_uploads(BUCKET) == []
