"""Multipart uploads through boto3: a 20 MiB file in parallel, out-of-order parts and
read back byte-identical; completion errors; a content-addressed key stored once."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

MiB = 1 << 20


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def test_transfer_of_20_mib(s3, bucket, tmp_path, no_tracebacks):
    data = os.urandom(20 * MiB)
    src, back = tmp_path / "src.tar.gz", tmp_path / "back.tar.gz"
    src.write_bytes(data)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB,
                            max_concurrency=4)
    s3.upload_file(str(src), bucket, "build_cache/big.spack", Config=config)
    head = s3.head_object(Bucket=bucket, Key="build_cache/big.spack")
    md5s = b"".join(hashlib.md5(data[i:i + 5 * MiB]).digest() for i in range(0, len(data),
                                                                             5 * MiB))
    assert head["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-4"'
    assert head["ContentLength"] == len(data)
    s3.download_file(bucket, "build_cache/big.spack", str(back), Config=config)
    assert back.read_bytes() == data


def test_blob_key_multipart_lands_in_the_blob_store(registry, s3, bucket, tmp_path,
                                                    no_tracebacks):
    data = os.urandom(11 * MiB)
    h = hashlib.sha256(data).hexdigest()
    key = f"blobs/sha256/{h[:2]}/{h}"
    src = tmp_path / "blob"
    src.write_bytes(data)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB,
                            max_concurrency=3)
    s3.upload_file(str(src), bucket, key, Config=config)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    blob = registry.data_dir / "storage" / "blobs" / "sha256" / h[:2] / h
    if registry.data_dir.exists() and (registry.data_dir / "storage").exists():
        assert blob.read_bytes() == data


def test_completion_errors(s3, bucket, no_tracebacks):
    key = "v3/manifests/x.json"
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    one, two = os.urandom(5 * MiB), os.urandom(5 * MiB)

    def part(n: int, body: bytes) -> str:
        return s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=n,
                              Body=body)["ETag"]

    # Uploaded in parallel order does not matter; here simply out of order.
    e3 = part(3, b"tail")
    e1 = part(1, one)
    e2 = part(2, two)

    def complete(parts: list[tuple[int, str]]) -> None:
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={
            "Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]})

    for parts, code in [
        ([(1, e1), (2, e2), (4, e3)], "InvalidPart"),  # never uploaded
        ([(1, e1), (2, e1), (3, e3)], "InvalidPart"),  # wrong ETag
        ([(2, e2), (1, e1), (3, e3)], "InvalidPartOrder"),
        ([(1, e1), (3, e3), (2, e2)], "InvalidPartOrder"),
        ([(3, e3), (4, e3)], "InvalidPart"),
    ]:
        with pytest.raises(ClientError) as exc:
            complete(parts)
        assert code_of(exc) == code, parts
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=10001, Body=b"x")
    assert code_of(exc) == "InvalidArgument"
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed] == [
        (1, e1, 5 * MiB), (2, e2, 5 * MiB), (3, e3, 4)]
    # A small part that is not the last is refused.
    small = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    s1 = s3.upload_part(Bucket=bucket, Key="small", UploadId=small, PartNumber=1,
                        Body=b"a")["ETag"]
    s2 = s3.upload_part(Bucket=bucket, Key="small", UploadId=small, PartNumber=2,
                        Body=b"b")["ETag"]
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=small,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": s1},
                                                                {"PartNumber": 2, "ETag": s2}]})
    assert code_of(exc) == "EntityTooSmall"
    s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=small)
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket=bucket, Key="small", UploadId=small, PartNumber=1, Body=b"a")
    assert code_of(exc) == "NoSuchUpload"
    with pytest.raises(ClientError) as exc:  # an upload id belongs to its key
        s3.upload_part(Bucket=bucket, Key="other", UploadId=upload, PartNumber=1, Body=b"a")
    assert code_of(exc) == "NoSuchUpload"
    with pytest.raises(ClientError) as exc:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uuid.uuid4().hex)
    assert code_of(exc) == "NoSuchUpload"
    # Nothing was published by the failures; the right list completes.
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    complete([(1, e1), (2, e2), (3, e3)])
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == one + two + b"tail"
