"""boto3 against a real registry's S3-compatible endpoint (`/s3`).

`s3` is a boto3 client configured as Spack configures one for
`--s3-endpoint-url`: the endpoint with its `/s3` path, path-style addressing,
us-east-1, dummy credentials (requests are signed; the registry does not check
signatures yet). `bucket` is a fresh bucket name per test. `no_tracebacks`
asserts that the server logged no traceback while the test ran.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from s3api.s3util import s3_client


@pytest.fixture
def s3(registry):
    client = s3_client(registry)
    yield client
    client.close()


@pytest.fixture
def bucket(s3) -> str:
    name = f"t-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def no_tracebacks(registry) -> Iterator[None]:
    start = len(registry.log())
    yield
    new = registry.log()[start:]
    assert "Traceback" not in new and "ERROR" not in new, new[-3000:]
