"""Names S3 refuses are refused here too, in S3's words: bucket names outside S3's
naming rules (InvalidBucketName), and keys that look content-addressed
(`blobs/sha256/<2 hex>/<hex>`) but whose prefix does not match the digest they name,
which would otherwise be stored as ordinary, unverified objects."""

from __future__ import annotations

import hashlib
import os
import xml.etree.ElementTree as ET

import pytest
from api.helpers import raw
from botocore.exceptions import ClientError

BAD_BUCKETS = [
    "a..b", "ab", "a" * 64, "-ab", "ab-", ".ab", "ab.", "Ab", "a_b", "a b",
    "192.168.5.4", "xn--abc", "sthree-abc", "amzn-s3-demo-abc",
    "abc-s3alias", "abc--ol-s3", "abc.mrap", "abc--x-s3", "abc--table-s3",
]
GOOD_BUCKETS = ["abc", "a.b-c", "1.2.3", "a" * 63, "192.168.5.4x", "my-s3alias-x"]


def s3_error(resp) -> str:
    root = ET.fromstring(resp.body)
    assert root.tag == "Error", resp.body[:300]
    return root.findtext("Code") or ""


@pytest.mark.parametrize("name", BAD_BUCKETS)
def test_bucket_names_s3_refuses_are_refused(registry, no_tracebacks, name):
    for method, target, body in (("PUT", f"/s3/{name}", b""),
                                 ("PUT", f"/s3/{name}/key", b"data"),
                                 ("GET", f"/s3/{name}/key", b""),
                                 ("GET", f"/s3/{name}?list-type=2", b""),
                                 ("HEAD", f"/s3/{name}", b"")):
        r = raw(registry, method, target.replace(" ", "%20"), {}, body)
        assert r.status == 400, (method, target, r.status, r.body[:300])
        if method != "HEAD":
            assert s3_error(r) == "InvalidBucketName", (method, target)
    listed = raw(registry, "GET", "/s3/", {}, b"")
    assert f"<Name>{name}</Name>".encode() not in listed.body


@pytest.mark.parametrize("name", GOOD_BUCKETS)
def test_bucket_names_s3_accepts_are_accepted(registry, s3, no_tracebacks, name):
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"v")
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"v"


def test_a_key_that_looks_content_addressed_must_be_so(registry, s3, bucket, no_tracebacks):
    data = os.urandom(1000)
    hexd = hashlib.sha256(data).hexdigest()
    wrong = "00" if hexd[:2] != "00" else "11"
    misnamed = [f"blobs/sha256/{wrong}/{hexd}",          # the prefix is not the digest's
                f"cache/blobs/sha256/{wrong}/{hexd}",    # the same below a prefix
                f"blobs/sha256/{hexd}",                  # no prefix directory
                f"blobs/sha256/{hexd[:2]}/{hexd.upper()}",  # not lowercase hex
                f"blobs/sha256/{hexd[:2]}/{hexd[:40]}"]  # not a sha256
    for key in misnamed:
        with pytest.raises(ClientError) as exc:
            s3.put_object(Bucket=bucket, Key=key, Body=data)
        assert exc.value.response["Error"]["Code"] == "InvalidArgument", key
        with pytest.raises(ClientError) as exc:
            s3.create_multipart_upload(Bucket=bucket, Key=key)
        assert exc.value.response["Error"]["Code"] == "InvalidArgument", key
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    if registry.data_dir is not None:  # nothing stored on the side either
        data_dir = registry.data_dir / "storage" / "objectdata" / bucket
        assert not data_dir.exists() or not any(p.is_file() for p in data_dir.rglob("*"))
    # The key that names its content rightly is stored, as a blob.
    s3.put_object(Bucket=bucket, Key=f"blobs/sha256/{hexd[:2]}/{hexd}", Body=data)
    got = s3.get_object(Bucket=bucket, Key=f"blobs/sha256/{hexd[:2]}/{hexd}")
    assert got["Body"].read() == data
