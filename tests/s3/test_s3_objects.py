"""The S3-compatible API on a registry whose own storage is S3 (SeaweedFS): the boto3
round trip and a parallel multipart upload of tests/s3api, against the S3-backed
`registry` of tests/s3/conftest.py."""

from __future__ import annotations

from s3api.conftest import bucket, no_tracebacks, s3  # noqa: F401  (fixtures)
from s3api.test_s3api_multipart import (  # noqa: F401
    test_blob_key_multipart_lands_in_the_blob_store as test_blob_key_on_s3,
)
from s3api.test_s3api_multipart import test_completion_errors as test_multipart_errors_on_s3  # noqa: F401
from s3api.test_s3api_multipart import test_transfer_of_20_mib as test_multipart_on_s3  # noqa: F401
from s3api.test_s3api_objects import test_listing as test_listing_on_s3  # noqa: F401
from s3api.test_s3api_objects import test_put_get_head_delete as test_round_trip_on_s3  # noqa: F401
