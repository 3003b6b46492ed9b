"""The whole push/pull cycle runs with no blocking call on the event loop.

blockbuster (tests/inprocess/conftest.py) makes any blocking file, socket or
sleep call made from the event loop thread raise; the app runs in-process
under aiohttp's low-level test server so that every handler path is checked.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from pushing import digest_of

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def client(app):
    return app[0]



async def test_push_pull_delete_without_blocking(client):
    repo = "nb/repo"
    data = bytes(range(256)) * 40_000  # ~10 MiB: several pump blocks
    r = await client.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status == 202
    loc = r.headers["Location"]
    r = await client.patch(loc, data=data[:5_000_000],
                           headers={"Content-Range": "0-4999999"})
    assert r.status == 202
    r = await client.get(loc)
    assert r.status == 204 and r.headers["Range"] == "0-4999999"
    r = await client.put(f"{loc}?digest={digest_of(data)}", data=data[5_000_000:])
    assert r.status == 201, await r.text()

    r = await client.get(f"/v2/{repo}/blobs/{digest_of(data)}")
    assert r.status == 200 and await r.read() == data
    r = await client.get(f"/v2/{repo}/blobs/{digest_of(data)}", headers={"Range": "bytes=5-9"})
    assert r.status == 206 and await r.read() == data[5:10]

    config = b"{}"
    r = await client.post(f"/v2/{repo}/blobs/uploads/?digest={digest_of(config)}", data=config)
    assert r.status == 201
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                      "digest": digest_of(config), "size": 2},
           "layers": [{"mediaType": "application/octet-stream", "digest": digest_of(data),
                       "size": len(data)}],
           "subject": {"mediaType": OCI_MANIFEST, "digest": digest_of(b"x"), "size": 1}}
    body = json.dumps(doc).encode()
    r = await client.put(f"/v2/{repo}/manifests/v1", data=body,
                         headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 201
    r = await client.get(f"/v2/{repo}/manifests/v1")
    assert r.status == 200 and await r.read() == body
    r = await client.head(f"/v2/{repo}/manifests/{digest_of(body)}")
    assert r.status == 200
    r = await client.get(f"/v2/{repo}/referrers/{digest_of(b'x')}")
    assert len((await r.json())["manifests"]) == 1
    r = await client.get(f"/v2/{repo}/tags/list?n=1")
    assert (await r.json())["tags"] == ["v1"]
    r = await client.get("/v2/_catalog")
    assert repo in (await r.json())["repositories"]
    r = await client.post(f"/v2/other/blobs/uploads/?mount={digest_of(data)}&from={repo}")
    assert r.status == 201
    assert (await client.delete(f"/v2/{repo}/manifests/{digest_of(body)}")).status == 202
    assert (await client.delete(f"/v2/{repo}/blobs/{digest_of(data)}")).status == 202
    r = await client.post(f"/v2/{repo}/blobs/uploads/")
    assert (await client.delete(r.headers["Location"])).status == 204
    # Errors take the same path through the middleware.
    r = await client.get(f"/v2/{repo}/manifests/sha256:totallywrong")
    assert r.status == 400


async def test_s3_objects_without_blocking(client):
    """The S3-compatible API's writes, reads, listings and multipart uploads too."""
    data = bytes(range(256)) * 40_000
    key = f"blobs/sha256/{hashlib.sha256(data).hexdigest()[:2]}/{hashlib.sha256(data).hexdigest()}"
    r = await client.put(f"/s3/nbcache/{key}", data=data)
    assert r.status == 200, await r.text()
    r = await client.put("/s3/nbcache/v3/layout.json", data=b"{}")
    assert r.status == 200
    r = await client.get(f"/s3/nbcache/{key}", headers={"Range": "bytes=5-9"})
    assert r.status == 206 and await r.read() == data[5:10]
    r = await client.head("/s3/nbcache/v3/layout.json")
    assert r.status == 200 and r.headers["ETag"] == f'"{hashlib.md5(b"{}").hexdigest()}"'
    r = await client.get("/s3/nbcache?list-type=2&delimiter=/")
    assert r.status == 200 and b"<Prefix>blobs/</Prefix>" in await r.read()
    r = await client.get("/s3/")
    assert r.status == 200 and b"<Name>nbcache</Name>" in await r.read()
    r = await client.post("/s3/nbcache/big?uploads")
    upload = (await r.text()).split("<UploadId>")[1].split("<")[0]
    r = await client.put(f"/s3/nbcache/big?partNumber=1&uploadId={upload}", data=data)
    etag = r.headers["ETag"]
    done = (f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag>"
            "</Part></CompleteMultipartUpload>")
    r = await client.post(f"/s3/nbcache/big?uploadId={upload}", data=done.encode())
    assert r.status == 200, await r.text()
    r = await client.get("/s3/nbcache/big")
    assert await r.read() == data
    body = b"<Delete><Object><Key>big</Key></Object></Delete>"
    assert (await client.post("/s3/nbcache?delete", data=body)).status == 200
    assert (await client.delete("/s3/nbcache/v3/layout.json")).status == 204
    r = await client.get("/s3/nbcache/v3/a%00b")
    assert r.status == 400
