"""The S3 connection of the S3 driver: one aiobotocore client, bounded retries, error mapping.

Every call to the store goes through `S3Client.call`, which

* retries transient failures (connection refused or reset, timeouts, 5xx,
  SlowDown) a bounded number of times with jittered exponential backoff, then
  raises `StorageUnavailable`, which the API answers with 503 + Retry-After;
* turns 404 / NoSuchKey into `PathNotFound`;
* turns anything else into `StorageError` naming the operation.

botocore's own retries are off so the total time a request can spend failing
is known: with the defaults, a store that refuses connections fails a request
in well under a second, and one that black-holes them in about
`attempts * op_timeout` (about 16 s) for metadata calls. Transfers get
`transfer_timeout` per part or read, plus time in proportion to the bytes a
server-side copy moves.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore import UNSIGNED
from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    ResponseStreamingError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from registry.storage.driver import PathNotFound, StorageError, StorageUnavailable

log = logging.getLogger("registry.storage.s3")

T = TypeVar("T")

NAME = "s3"
# Error codes worth another try (besides any 5xx status).
RETRYABLE_CODES = frozenset({
    "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout",
    "RequestTimeTooSkewed", "Throttling", "ThrottlingException", "OperationAborted",
})
NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchUpload"})
# Exceptions that mean "the store did not answer properly": retry, then 503.
TRANSIENT = (HTTPClientError, BotoConnectionError, ResponseStreamingError,
             IncompleteReadError, aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)


def error_code(exc: ClientError) -> tuple[str, int]:
    err = exc.response.get("Error", {}) or {}
    meta = exc.response.get("ResponseMetadata", {}) or {}
    return str(err.get("Code", "")), int(meta.get("HTTPStatusCode", 0) or 0)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        code, status = error_code(exc)
        return status >= 500 or code in RETRYABLE_CODES
    return isinstance(exc, TRANSIENT)


class S3Client:
    """A lazily opened aiobotocore client bound to one bucket and key prefix."""

    def __init__(self, bucket: str, *, endpoint_url: str | None = None,
                 region: str = "us-east-1", access_key: str | None = None,
                 secret_key: str | None = None, path_style: bool = True,
                 create_bucket: bool = True, attempts: int = 3, backoff: float = 0.1,
                 connect_timeout: float = 2.0, op_timeout: float = 5.0,
                 transfer_timeout: float = 30.0, max_connections: int = 64) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url or None
        self.region = region or "us-east-1"
        self.access_key = access_key or None
        self.secret_key = secret_key or None
        self.path_style = path_style
        self.create_bucket = create_bucket
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.connect_timeout = connect_timeout
        self.op_timeout = op_timeout
        self.transfer_timeout = transfer_timeout
        self.max_connections = max_connections
        self._ctx: Any = None
        self._s3: Any = None
        self._lock = asyncio.Lock()
        self._bucket_ok = False

    # -- lifecycle -----------------------------------------------------------

    def _config(self, signed: bool) -> AioConfig:
        extra: dict[str, Any] = {} if signed else {"signature_version": UNSIGNED}
        return AioConfig(
            connect_timeout=self.connect_timeout,
            # Our own per-call deadlines govern; this only bounds one silent socket read
            # (a big server-side copy may send nothing until it is done).
            read_timeout=max(self.transfer_timeout, 900.0),
            retries={"total_max_attempts": 1, "mode": "standard"},
            max_pool_connections=self.max_connections,
            # Bodies are hashed by the registry already; signing them again (botocore
            # does so over plain http) would hash every byte on the event loop.
            s3={"addressing_style": "path" if self.path_style else "auto",
                "payload_signing_enabled": False},
            # Extra checksums are unknown to some S3-compatible stores.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            # Load botocore's JSON models on a thread, not on the event loop.
            warm_up_loader_caches=True,
            **extra,
        )

    async def client(self) -> Any:
        """The open client; the first call opens it and makes sure the bucket exists."""
        if self._s3 is not None and self._bucket_ok:
            return self._s3
        async with self._lock:
            if self._s3 is None:
                session = get_session()
                signed = bool(self.access_key) or (await session.get_credentials()) is not None
                if not signed:
                    log.warning("no S3 credentials configured: using anonymous requests")
                ctx = session.create_client(
                    "s3", endpoint_url=self.endpoint_url, region_name=self.region,
                    aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                    config=self._config(signed))
                self._s3 = await ctx.__aenter__()
                self._ctx = ctx
            if not self._bucket_ok:
                await self._ensure_bucket()
                self._bucket_ok = True
        return self._s3

    async def _ensure_bucket(self) -> None:
        try:
            await self._attempts("head_bucket", "", lambda: self._s3.head_bucket(
                Bucket=self.bucket), self.op_timeout)
            return
        except PathNotFound:
            pass
        except StorageError as exc:
            if "403" in str(exc) or "AccessDenied" in str(exc) or "Forbidden" in str(exc):
                log.warning("cannot check bucket %s (%s): assuming it exists", self.bucket, exc)
                return
            if "NoSuchBucket" not in str(exc):
                raise
        if not self.create_bucket:
            raise StorageError(f"bucket {self.bucket!r} does not exist", NAME)
        kw: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            kw["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            await self._attempts("create_bucket", "", lambda: self._s3.create_bucket(**kw),
                                 self.op_timeout)
            log.info("created bucket %s", self.bucket)
        except StorageError as exc:
            if "BucketAlreadyOwnedByYou" not in str(exc) and \
                    "BucketAlreadyExists" not in str(exc):
                raise

    async def close(self) -> None:
        if self._ctx is not None:
            ctx, self._ctx, self._s3 = self._ctx, None, None
            self._bucket_ok = False
            await ctx.__aexit__(None, None, None)

    # -- calls ---------------------------------------------------------------

    def copy_deadline(self, nbytes: int) -> float:
        """Seconds a server-side copy of nbytes may take (assumes >= 8 MiB/s)."""
        return self.transfer_timeout + nbytes / (8 << 20)

    async def call(self, op: str, path: str = "", *, deadline: float | None = None,
                   **kw: Any) -> dict[str, Any]:
        """One S3 operation on the bucket, with retries and error mapping."""
        s3 = await self.client()
        fn = getattr(s3, op)
        return await self._attempts(op, path, lambda: fn(Bucket=self.bucket, **kw),
                                    deadline or self.op_timeout)

    async def _attempts(self, op: str, path: str, make: Callable[[], Awaitable[T]],
                        deadline: float) -> T:
        delay = self.backoff
        for attempt in range(self.attempts):
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a
                # cancel that lands as the call completes, and a background loop
                # making calls would then never stop (the server's shutdown hangs).
                async with asyncio.timeout(deadline):
                    return await make()
            except ClientError as exc:
                code, status = error_code(exc)
                if code in NOT_FOUND_CODES or (status == 404 and code != "NoSuchBucket"):
                    raise PathNotFound("path not found", NAME, path) from None
                if code == "NoSuchBucket":
                    self._bucket_ok = False
                if not is_transient(exc):
                    msg = exc.response.get("Error", {}).get("Message", "")
                    raise StorageError(f"{op}: {code or status} {msg}".strip(), NAME,
                                       path) from None
                last: BaseException = exc
            except NoCredentialsError as exc:
                raise StorageError(f"{op}: {exc}", NAME, path) from None
            except TRANSIENT as exc:
                last = exc
            if attempt + 1 < self.attempts:
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay *= 3
        log.warning("s3 %s %s failed after %d attempts: %r", op, path, self.attempts, last)
        raise StorageUnavailable(f"{op} failed: {type(last).__name__}: {last}", NAME, path)

    async def retrying(self, op: str, path: str, make: Callable[[], Awaitable[T]],
                       deadline: float | None = None) -> T:
        """Like `call` for an arbitrary coroutine factory (body reads, paginators)."""
        await self.client()
        return await self._attempts(op, path, make, deadline or self.op_timeout)

    # -- janitor -------------------------------------------------------------

    async def abort_uploads(self, prefix: str, older_than: float | None = None) -> int:
        """Abort multipart uploads under `prefix` (all, or those started more than
        `older_than` seconds ago). Returns how many went."""
        cutoff = None if older_than is None else time.time() - older_than
        aborted = 0
        kw: dict[str, Any] = {"Prefix": prefix}
        while True:
            page = await self.call("list_multipart_uploads", prefix, **kw)
            for up in page.get("Uploads", []) or []:
                started = up.get("Initiated")
                if cutoff is not None and started is not None and started.timestamp() > cutoff:
                    continue
                try:
                    await self.call("abort_multipart_upload", up["Key"], Key=up["Key"],
                                    UploadId=up["UploadId"])
                    aborted += 1
                except PathNotFound:
                    pass
            if not page.get("IsTruncated"):
                return aborted
            kw["KeyMarker"] = page.get("NextKeyMarker", "")
            kw["UploadIdMarker"] = page.get("NextUploadIdMarker", "")
            if not kw["KeyMarker"]:
                return aborted
