"""Objects through boto3: put/get/head/delete, ranges, ETags, listings, DeleteObjects,
content-addressed keys stored once, and hostile input answered with S3 XML 4xx."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import socket
import xml.etree.ElementTree as ET
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from api.helpers import RawResponse, push_blob, raw
from botocore.exceptions import ClientError
from s3api.s3util import s3_client

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def blob_key(data: bytes, prefix: str = "") -> str:
    h = hashlib.sha256(data).hexdigest()
    return f"{prefix}blobs/sha256/{h[:2]}/{h}"


def keys_of(s3, bucket: str, **kw) -> tuple[list[str], list[str]]:
    """Every key and common prefix, through boto3's paginator."""
    keys, prefixes = [], []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, **kw):
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    return keys, prefixes


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_put_get_head_delete(s3, bucket, no_tracebacks):
    data = os.urandom(100_000)
    put = s3.put_object(Bucket=bucket, Key="v3/layout.json", Body=data,
                        ContentType="application/json")
    md5 = hashlib.md5(data).hexdigest()
    assert put["ETag"] == f'"{md5}"'
    got = s3.get_object(Bucket=bucket, Key="v3/layout.json")
    assert got["Body"].read() == data
    assert got["ETag"] == f'"{md5}"' and got["ContentLength"] == len(data)
    assert got["ContentType"] == "application/json" and got["LastModified"]
    head = s3.head_object(Bucket=bucket, Key="v3/layout.json")
    assert head["ContentLength"] == len(data) and head["ETag"] == f'"{md5}"'
    # Overwrite, then delete: 204 both times, as S3 answers.
    s3.put_object(Bucket=bucket, Key="v3/layout.json", Body=b'{"signing": "gpg"}')
    assert s3.get_object(Bucket=bucket, Key="v3/layout.json")["Body"].read() == \
        b'{"signing": "gpg"}'
    for _ in range(2):
        r = s3.delete_object(Bucket=bucket, Key="v3/layout.json")
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="v3/layout.json")
    assert code_of(exc) == "NoSuchKey"
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="v3/layout.json")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert s3.get_object(Bucket=bucket, Key="empty")["Body"].read() == b""


def test_ranges_and_conditions(s3, bucket, no_tracebacks):
    data = bytes(range(256)) * 40
    etag = s3.put_object(Bucket=bucket, Key="k", Body=data)["ETag"]
    r = s3.get_object(Bucket=bucket, Key="k", Range="bytes=10-19")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert r["Body"].read() == data[10:20] and r["ContentRange"] == f"bytes 10-19/{len(data)}"
    assert s3.get_object(Bucket=bucket, Key="k", Range="bytes=-5")["Body"].read() == data[-5:]
    assert s3.get_object(Bucket=bucket, Key="k", Range="bytes=10000-")["Body"].read() == \
        data[10000:]
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k", Range=f"bytes={len(data)}-")
    assert code_of(exc) == "InvalidRange"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k", IfNoneMatch=etag)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    assert s3.get_object(Bucket=bucket, Key="k", IfMatch=etag)["Body"].read() == data
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k", IfMatch='"0123"')
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_buckets(s3, registry, no_tracebacks):
    name = f"b-{os.urandom(6).hex()}"
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=name)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket=name)
    assert code_of(exc) == "NoSuchBucket"
    s3.create_bucket(Bucket=name)
    s3.create_bucket(Bucket=name)  # again: it is ours already
    assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 0
    # Spack never creates its bucket: the first write does.
    implicit = f"b-{os.urandom(6).hex()}"
    s3.put_object(Bucket=implicit, Key="v3/layout.json", Body=b"{}")
    assert s3.head_bucket(Bucket=implicit)["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket="Not_A_Bucket")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


KEYS = ["a", "a/b", "a//b", "a b", "a+b", "b/c/d", "b/c/e", "b/x", "caf\u00e9/men\u00fc",
        "\U0001f600", "z", "a-b", "a.b", "sp ace/x y", "pct%2F/q?x=1&y"]


def test_listing(s3, bucket, no_tracebacks):
    for k in KEYS:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    s3_order = sorted(KEYS, key=lambda k: k.encode())
    # boto3 asks for encoding-type=url itself and decodes; pages of 2 and of 1000.
    assert keys_of(s3, bucket) == (s3_order, [])
    assert keys_of(s3, bucket, PaginationConfig={"PageSize": 2}) == (s3_order, [])
    assert keys_of(s3, bucket, PaginationConfig={"PageSize": 3}, Delimiter="/") == (
        ["a", "a b", "a+b", "a-b", "a.b", "z", "\U0001f600"],
        ["a/", "b/", "caf\u00e9/", "pct%2F/", "sp ace/"])
    assert keys_of(s3, bucket, Prefix="b/", Delimiter="/") == (["b/x"], ["b/c/"])
    assert keys_of(s3, bucket, Prefix="a/") == (["a//b", "a/b"], [])
    assert keys_of(s3, bucket, Prefix="a//") == (["a//b"], [])
    assert keys_of(s3, bucket, Prefix="caf\u00e9") == (["caf\u00e9/men\u00fc"], [])
    assert keys_of(s3, bucket, StartAfter="b/c/d")[0] == [k for k in s3_order if k > "b/c/d"]
    page = s3.list_objects_v2(Bucket=bucket, MaxKeys=3)
    assert page["KeyCount"] == 3 and page["IsTruncated"] and page["NextContinuationToken"]
    rest = s3.list_objects_v2(Bucket=bucket, ContinuationToken=page["NextContinuationToken"])
    assert [o["Key"] for o in page["Contents"] + rest["Contents"]] == s3_order
    first = page["Contents"][0]
    assert first["Size"] == 1 and first["ETag"] == f'"{hashlib.md5(b"a").hexdigest()}"'
    assert s3.list_objects_v2(Bucket=bucket, MaxKeys=0)["KeyCount"] == 0


def test_listing_url_encoding_on_the_wire(registry, s3, bucket):
    s3.put_object(Bucket=bucket, Key="sp ace/a+b\u00e9", Body=b"x")
    r = raw(registry, "GET", f"/s3/{bucket}?list-type=2&encoding-type=url")
    assert r.status == 200
    root = ET.fromstring(r.body)
    assert root.findtext(f"{NS}Contents/{NS}Key") == "sp%20ace/a%2Bb%C3%A9"
    r = raw(registry, "GET", f"/s3/{bucket}?list-type=2")
    assert ET.fromstring(r.body).findtext(f"{NS}Contents/{NS}Key") == "sp ace/a+b\u00e9"


def test_delete_objects(s3, bucket, no_tracebacks):
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "k0"}, {"Key": "k1"}, {"Key": "missing"}, {"Key": "a/../b"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["k0", "k1", "missing"]
    assert [(e["Key"], e["Code"]) for e in r["Errors"]] == [("a/../b", "InvalidArgument")]
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k2"}], "Quiet": True})
    assert "Deleted" not in r
    assert keys_of(s3, bucket)[0] == ["k3", "k4"]


def test_blob_key_is_stored_once(start_registry):
    reg = start_registry()
    s3 = s3_client(reg)
    data = os.urandom(300_000)
    digest = push_blob(reg, "spack/cache", data)
    s3.put_object(Bucket="cache", Key=blob_key(data), Body=data)
    s3.put_object(Bucket="cache", Key=blob_key(data, "mirror/"), Body=data)
    storage = reg.data_dir / "storage"
    blobs = files_under(storage / "blobs")
    assert [p.name for p in blobs] == [digest.split(":")[1]]
    assert files_under(storage / "objectdata") == []
    got = s3.get_object(Bucket="cache", Key=blob_key(data))
    assert got["Body"].read() == data and got["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    # The other way round: first over S3, then the OCI push finds it stored.
    other = os.urandom(1000)
    s3.put_object(Bucket="cache", Key=blob_key(other), Body=other)
    push_blob(reg, "spack/cache", other)
    assert len(files_under(storage / "blobs")) == 2
    # Content that does not match the digest in its key is refused, and nothing stays.
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="cache", Key=blob_key(b"real"), Body=b"fake")
    assert code_of(exc) == "BadDigest"
    with pytest.raises(ClientError):
        s3.head_object(Bucket="cache", Key=blob_key(b"real"))
    assert len(files_under(storage / "blobs")) == 2
    assert files_under(storage / "objectdata") == []
    assert "Traceback" not in reg.log()


def test_content_md5_and_sha256_are_checked(registry, s3, bucket, no_tracebacks):
    good = base64.b64encode(hashlib.md5(b"data").digest()).decode()
    s3.put_object(Bucket=bucket, Key="ok", Body=b"data", ContentMD5=good)
    bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    r = raw(registry, "PUT", f"/s3/{bucket}/k", {"Content-MD5": bad}, b"data")
    assert r.status == 400 and b"<Code>BadDigest</Code>" in r.body
    r = raw(registry, "PUT", f"/s3/{bucket}/k", {"Content-MD5": "not base64!"}, b"data")
    assert r.status == 400 and b"<Code>InvalidDigest</Code>" in r.body
    r = raw(registry, "PUT", f"/s3/{bucket}/k", {"x-amz-content-sha256": "0" * 64}, b"data")
    assert r.status == 400 and b"XAmzContentSHA256Mismatch" in r.body
    r = raw(registry, "PUT", f"/s3/{bucket}/k", {"x-amz-checksum-crc32": crc32_of(b"x")},
            b"data")
    assert r.status == 400 and b"<Code>BadDigest</Code>" in r.body
    r = raw(registry, "PUT", f"/s3/{bucket}/crc", {"x-amz-checksum-crc32": crc32_of(b"data")},
            b"data")
    assert r.status == 200
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="k")


def crc32_of(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def aws_chunked(payload: bytes, size: int, crc32: str | None = None) -> bytes:
    out = b""
    for i in range(0, len(payload), size):
        piece = payload[i:i + size]
        out += f"{len(piece):x};chunk-signature={'0' * 64}\r\n".encode() + piece + b"\r\n"
    crc = crc32 or crc32_of(payload)
    return out + f"0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n".encode()


def test_aws_chunked_bodies_are_decoded(registry, s3, bucket, no_tracebacks):
    """What botocore sends over HTTPS (Spack's case): the frames are not the object."""
    payload = os.urandom(70_000)
    headers = {"Content-Encoding": "aws-chunked",
               "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
               "x-amz-decoded-content-length": str(len(payload)),
               "x-amz-trailer": "x-amz-checksum-crc32"}
    r = raw(registry, "PUT", f"/s3/{bucket}/chunked", headers, aws_chunked(payload, 8192))
    assert r.status == 200, r.body
    assert s3.get_object(Bucket=bucket, Key="chunked")["Body"].read() == payload
    r = raw(registry, "PUT", f"/s3/{bucket}/badcrc", headers,
            aws_chunked(payload, 8192, crc32_of(b"other")))
    assert r.status == 400 and b"<Code>BadDigest</Code>" in r.body
    r = raw(registry, "PUT", f"/s3/{bucket}/broken", headers, b"zz\r\n" + payload)
    assert r.status == 400 and b"<Code>IncompleteBody</Code>" in r.body
    headers["x-amz-decoded-content-length"] = str(len(payload) + 1)
    r = raw(registry, "PUT", f"/s3/{bucket}/short", headers, aws_chunked(payload, 8192))
    assert r.status == 400 and b"<Code>IncompleteBody</Code>" in r.body
    assert keys_of(s3, bucket)[0] == ["chunked"]


@pytest.mark.parametrize("method,target,body,status,code", [
    ("PUT", "/{b}/a%00b", b"x", 400, "InvalidArgument"),
    ("PUT", "/{b}/a/../b", b"x", 400, "InvalidArgument"),
    ("PUT", "/{b}/a/%2E%2E", b"x", 400, "InvalidArgument"),
    ("PUT", "/{b}/" + "k" * 1025, b"x", 400, "KeyTooLongError"),
    ("PUT", "/{b}/" + "k" * 300, b"x", 400, "KeyTooLongError"),  # one segment too long
    ("PUT", "/{b}/%C3%28", b"x", 400, "InvalidURI"),
    ("PUT", "/{b}/k", None, 411, "MissingContentLength"),
    ("PUT", "/{b}/k?partNumber=10001&uploadId=x", b"x", 400, "InvalidArgument"),
    ("PUT", "/{b}/k?partNumber=1&uploadId=../../x", b"x", 404, "NoSuchUpload"),
    ("POST", "/{b}/k?uploadId=0123", b"<CompleteMultipartUpload><Part><PartNumber>1"
     b"</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>", 404, "NoSuchUpload"),
    ("POST", "/{b}/k?uploadId=0123", b"<x/>", 400, "MalformedXML"),
    ("GET", "/{b}?list-type=2&continuation-token=%21%21", None, 400, "InvalidArgument"),
    ("GET", "/{b}?list-type=2&continuation-token=MXAA", None, 400, "InvalidArgument"),
    ("GET", "/{b}?list-type=2&max-keys=-1", None, 400, "InvalidArgument"),
    ("GET", "/{b}?list-type=2&encoding-type=base64", None, 400, "InvalidArgument"),
    ("GET", "/{b}?list-type=2&start-after=" + "x" * 2000, None, 400, "InvalidArgument"),
    ("POST", "/{b}?delete", b"<Delete><Object><Key>a</Key>", 400, "MalformedXML"),
    ("POST", "/{b}?delete", b'<!DOCTYPE x [<!ENTITY a "b">]><Delete/>', 400, "MalformedXML"),
    ("POST", "/{b}?delete", b"<Delete></Delete>", 400, "MalformedXML"),
    ("POST", "/{b}?delete", b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001
     + b"</Delete>", 400, "MalformedXML"),
    ("POST", "/{b}?delete", b"<Delete/>", 400, "MaxMessageLengthExceeded"),  # says 3 MiB
    ("PUT", "/{b}/k", b"x" * 10, 400, "BadDigest"),  # with a wrong Content-MD5, below
    ("GET", "/{b}/k/missing", None, 404, "NoSuchKey"),
    ("GET", "/nosuchbucket-{b}/k", None, 404, "NoSuchBucket"),
    ("DELETE", "/nosuchbucket-{b}/k", None, 404, "NoSuchBucket"),
    ("PUT", "/{b}/copy", b"", 501, "NotImplemented"),  # with x-amz-copy-source, below
])
def test_hostile_requests_get_s3_errors(registry, s3, bucket, no_tracebacks, method, target,
                                       body, status, code):
    headers = {}
    if code == "BadDigest":
        headers["Content-MD5"] = base64.b64encode(b"\0" * 16).decode()
    if target.endswith("/copy"):
        headers["x-amz-copy-source"] = f"/{bucket}/k"
    full = "/s3" + target.replace("{b}", bucket)
    if body is None and method == "PUT":  # raw() would send a Content-Length
        r = raw_without_length(registry, method, full)
    elif code == "MaxMessageLengthExceeded":  # refused by its length, before any byte
        r = raw(registry, method, full, headers, body, content_length=str(3 << 20))
    else:
        r = raw(registry, method, full, headers, body or b"")
    assert r.status == status, r.body[:300]
    if method != "HEAD":
        root = ET.fromstring(r.body)
        assert root.tag == "Error" and root.findtext("Code") == code
    assert keys_of(s3, bucket) == ([], [])
    if registry.data_dir is not None:  # no bytes left behind either
        assert files_under(registry.data_dir / "storage" / "objectdata" / bucket) == []


def raw_without_length(reg, method: str, target: str) -> RawResponse:
    host, port = reg.host.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: {reg.host}\r\n"
                     "Connection: close\r\n\r\n".encode())
        resp = http.client.HTTPResponse(sock, method=method)
        resp.begin()
        data = resp.read()
    return RawResponse(resp.status, resp.headers, data)


def test_concurrent_overwrites_and_reads_see_whole_objects(registry, s3, bucket,
                                                          no_tracebacks):
    """Writes are atomic: readers racing writers get one whole version (its bytes
    matching its ETag), never a mix; the replaced bytes are deleted."""
    versions = [bytes([i]) * (200_000 + i) for i in range(12)]
    s3.put_object(Bucket=bucket, Key="index.json", Body=versions[0])

    def write(data: bytes) -> None:
        s3.put_object(Bucket=bucket, Key="index.json", Body=data)

    def read(_: int) -> None:
        got = s3.get_object(Bucket=bucket, Key="index.json")
        body = got["Body"].read()
        assert body in versions and got["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(write, v) for v in versions[1:]]
        futures += [pool.submit(read, i) for i in range(40)]
        for f in futures:
            f.result()
    assert s3.get_object(Bucket=bucket, Key="index.json")["Body"].read() in versions
    if registry.data_dir is not None and registry.data_dir.exists():
        assert len(files_under(registry.data_dir / "storage" / "objectdata" / bucket)) == 1
