"""boto3 over HTTPS, as Spack pushes in practice: botocore then sends PutObject and
UploadPart bodies aws-chunked with a trailing checksum, which must be stored as the
payload, not the frames."""

from __future__ import annotations

import hashlib
import os

from boto3.s3.transfer import TransferConfig
from s3api.s3util import s3_client
from tlsutil import make_cert

MiB = 1 << 20


def test_put_and_multipart_over_https(start_registry, tmp_path):
    cert, key = make_cert(tmp_path)
    reg = start_registry(config=f'[server]\ntls_cert = "{cert}"\ntls_key = "{key}"\n',
                         scheme="https", verify=str(cert))
    s3 = s3_client(reg, verify=str(cert))
    encodings: list[str] = []

    def record(request, **_) -> None:
        value = request.headers.get("Content-Encoding") or ""
        encodings.append(value.decode() if isinstance(value, bytes) else value)

    s3.meta.events.register("before-send.s3.*", record)
    data = os.urandom(300_000)
    put = s3.put_object(Bucket="cache", Key="v3/layout.json", Body=data)
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert s3.get_object(Bucket="cache", Key="v3/layout.json")["Body"].read() == data
    big = os.urandom(12 * MiB)
    h = hashlib.sha256(big).hexdigest()
    src = tmp_path / "big"
    src.write_bytes(big)
    s3.upload_file(str(src), "cache", f"blobs/sha256/{h[:2]}/{h}",
                   Config=TransferConfig(multipart_threshold=5 * MiB,
                                         multipart_chunksize=5 * MiB, max_concurrency=3))
    assert s3.get_object(Bucket="cache", Key=f"blobs/sha256/{h[:2]}/{h}")["Body"].read() == big
    assert (reg.data_dir / "storage" / "blobs" / "sha256" / h[:2] / h).read_bytes() == big
    assert "aws-chunked" in encodings  # the framing this test is about was used
    assert "Traceback" not in reg.log()
