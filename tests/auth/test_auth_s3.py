"""The S3-compatible path with auth on: boto3 signing with access keys made by
`registry users keys create`, checked with SigV4 against each user's rights."""

from __future__ import annotations

import json
import os

import boto3
import pytest
from authutil import cli
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from harness import wait_for

MiB = 1 << 20


def client(reg, key_id: str | None, secret: str | None):
    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                    **({"signature_version": UNSIGNED} if key_id is None else {}))
    return boto3.client("s3", endpoint_url=reg.url + "/s3", region_name="us-east-1",
                        aws_access_key_id=key_id or "x", aws_secret_access_key=secret or "x",
                        config=config)


def make_key(reg, user: str) -> tuple[str, str]:
    done = cli(reg, "users", "keys", "create", user)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    return doc["access_key_id"], doc["secret_access_key"]


def code_of(call) -> str:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"]


def test_boto3_with_access_keys(secured):
    reg, _ = secured
    writer = client(reg, *make_key(reg, "writer"))
    data = os.urandom(20 * MiB)  # multipart: parts in parallel, each signed
    writer.put_object(Bucket="team", Key="build_cache/x.spack", Body=b"small")
    from boto3.s3.transfer import TransferConfig

    writer.upload_fileobj(__import__("io").BytesIO(data), "team", "blobs/big",
                          Config=TransferConfig(multipart_threshold=8 * MiB,
                                                multipart_chunksize=8 * MiB))
    assert writer.get_object(Bucket="team", Key="blobs/big", Range="bytes=0-9")[
        "Body"].read() == data[:10]
    listed = writer.list_objects_v2(Bucket="team", Prefix="build_cache/", Delimiter="/")
    assert [o["Key"] for o in listed["Contents"]] == ["build_cache/x.spack"]
    writer.delete_objects(Bucket="team", Delete={"Objects": [{"Key": "build_cache/x.spack"}]})

    reader = client(reg, *make_key(reg, "reader"))
    assert reader.head_object(Bucket="team", Key="blobs/big")["ContentLength"] == len(data)
    assert code_of(lambda: reader.put_object(Bucket="team", Key="k", Body=b"x")) \
        == "AccessDenied"
    assert code_of(lambda: reader.list_objects_v2(Bucket="other")) == "AccessDenied"

    anonymous = client(reg, None, None)
    assert code_of(lambda: anonymous.get_object(Bucket="team", Key="blobs/big")) \
        == "AccessDenied"
    key_id, _ = make_key(reg, "writer")
    forged = client(reg, key_id, "not-the-secret")
    assert code_of(lambda: forged.get_object(Bucket="team", Key="blobs/big")) \
        == "SignatureDoesNotMatch"
    unknown = client(reg, "RKNOSUCHKEY0000000", "x")
    assert code_of(lambda: unknown.get_object(Bucket="team", Key="blobs/big")) \
        == "InvalidAccessKeyId"
    # A revoked key is refused within a second.
    revoked_id, revoked_secret = make_key(reg, "writer")
    revoked = client(reg, revoked_id, revoked_secret)
    assert revoked.head_object(Bucket="team", Key="blobs/big")["ContentLength"] == len(data)
    assert cli(reg, "users", "keys", "revoke", revoked_id).returncode == 0
    # HEAD answers carry no body: botocore says 403. The server learns of the
    # revocation in the background: poll.
    def head_revoked() -> str:
        try:
            revoked.head_object(Bucket="team", Key="blobs/big")
        except ClientError as exc:
            return exc.response["Error"]["Code"]
        return "200"

    assert wait_for(head_revoked, lambda code: code != "200") in ("403", "InvalidAccessKeyId")
    listed_keys = cli(reg, "users", "keys", "list", "writer").stdout
    assert key_id in listed_keys and revoked_id not in listed_keys
    assert "secret" not in listed_keys.lower()
