"""The boto3 client the S3-compatible API tests use (also from tests/s3)."""

from __future__ import annotations

import boto3
from botocore.config import Config


def s3_client(reg, verify: str | bool | None = None, **config):
    """boto3 as Spack sets it up for `--s3-endpoint-url URL/s3`: the endpoint with
    its path, path-style addressing, us-east-1, dummy credentials (requests are
    signed; the registry does not check signatures yet); no retries, so a
    refusal is seen as it is. `verify`: a CA bundle (Spack: AWS_CA_BUNDLE)."""
    return boto3.client(
        "s3", endpoint_url=reg.url + "/s3", region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test", verify=verify,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                      **config))
