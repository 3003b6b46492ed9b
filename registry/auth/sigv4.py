"""AWS Signature Version 4, checked on the S3-compatible API (`/s3/`).

Spack (through boto3) and every other S3 client sign each request with an access
key id and its secret. We rebuild what the client signed from what arrived (the raw
path and query as sent, the headers it says it signed, the payload hash it declared)
and let botocore's own S3 signer compute the canonical request, the string to sign
and the signature, so canonical forms and key derivation are exactly the clients'.
The body is checked against a declared hex hash where it is read (api/s3_body.py).
"""

from __future__ import annotations

import calendar
import hmac
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote, unquote, unquote_to_bytes, urlsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from registry.core.errors import ObjectError

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_AUTHORIZATION = 8 << 10
MAX_EXPIRES = 604800  # a week: S3's own bound on presigned URLs
_AMZ_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")  # [0-9], not \d: \d matches any script's digits
_SCOPE_DATE = re.compile(r"[0-9]{8}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_HEADER_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]{1,128}")  # HTTP token, lower case
_SCOPE_PART = re.compile(r"[A-Za-z0-9_.-]{1,128}")


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What the verifier needs of an HTTP request."""

    method: str
    raw_path: str  # as sent, still percent-encoded, no query
    raw_query: str  # as sent, without "?"
    headers: Mapping[str, str]  # case-insensitive in production (aiohttp's); any case here


@dataclass(frozen=True, slots=True)
class _Claim:
    access_key: str
    region: str
    signed: tuple[str, ...]
    signature: str
    amz_date: str
    signed_at: int
    expires: int | None  # None: signed in the Authorization header, not presigned


class _Signer(S3SigV4Auth):
    """botocore's S3 signer, pointed at a request that arrived rather than one it builds."""

    def __init__(self, credentials: Credentials, region: str, payload_hash: str) -> None:
        super().__init__(credentials, "s3", region)
        self._payload_hash = payload_hash

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        # Exactly the headers the client listed (the request holds only those): botocore's
        # own choice would drop names it never signs itself (expect, user-agent, ...) and
        # invent a Host from the URL.
        return request.headers

    def payload(self, request: AWSRequest) -> str:
        # The hash as declared, never recomputed: the body is not read here, and the
        # STREAMING-* and UNSIGNED-PAYLOAD values name a framing, not a digest.
        return self._payload_hash


def _malformed(why: str) -> ObjectError:
    return ObjectError("AuthorizationHeaderMalformed", f"malformed authorization: {why}", 400)


def _mismatch() -> ObjectError:
    return ObjectError("SignatureDoesNotMatch", "the request signature we calculated does "
                       "not match the signature you provided", 403)


@contextmanager
def _only_object_errors() -> Iterator[None]:
    # Whatever arrives (surrogates, odd escapes), the caller sees an S3 error, never a
    # 500. UnicodeError is a ValueError; anything else is a bug of ours, not bad input.
    try:
        yield
    except ValueError:
        raise _malformed("undecodable request") from None


def _query_pairs(raw_query: str) -> list[tuple[str, str]]:
    return [(k, v) for k, _, v in (p.partition("=") for p in raw_query.split("&") if p)]


def _header(req: SignedRequest, name: str) -> list[str]:
    if hasattr(req.headers, "getall"):  # aiohttp's CIMultiDictProxy, repeated headers kept
        return list(req.headers.getall(name, []))
    return [v for k, v in req.headers.items() if k.lower() == name]


def is_sigv4(req: SignedRequest) -> bool:
    """True when the request carries SigV4 credentials (Authorization header starting
    "AWS4-HMAC-SHA256 " or a presigned query with X-Amz-Algorithm=AWS4-HMAC-SHA256)."""
    with _only_object_errors():
        auth = _header(req, "authorization")
        if auth:
            return auth[0].startswith(ALGORITHM + " ")
        return ("X-Amz-Algorithm", ALGORITHM) in _query_pairs(req.raw_query)


def _fields(req: SignedRequest) -> tuple[dict[str, str], str, int | None]:
    """Credential, SignedHeaders and Signature; X-Amz-Date; X-Amz-Expires if presigned."""
    auth = _header(req, "authorization")
    if auth:
        text = auth[0]
        if len(text) > MAX_AUTHORIZATION or not text.startswith(ALGORITHM + " "):
            raise _malformed("expected AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., "
                             "Signature=...")
        fields = dict(part.strip().partition("=")[::2] for part in
                      text[len(ALGORITHM) + 1:].split(","))
        amz = _header(req, "x-amz-date")
        return fields, amz[0] if amz else "", None
    query = {k: unquote(v) for k, v in _query_pairs(req.raw_query)}
    if query.get("X-Amz-Algorithm") != ALGORITHM:
        raise _malformed(f"X-Amz-Algorithm must be {ALGORITHM}")
    fields = {name: query.get("X-Amz-" + name, "")
              for name in ("Credential", "SignedHeaders", "Signature")}
    expires = query.get("X-Amz-Expires", "")
    if not (expires.isascii() and expires.isdigit() and len(expires) < 10):
        raise ObjectError("AuthorizationQueryParametersError",
                          "X-Amz-Expires must be a number of seconds", 400)
    if int(expires) > MAX_EXPIRES:
        raise ObjectError("AccessDenied", f"X-Amz-Expires must be at most {MAX_EXPIRES}", 403)
    return fields, query.get("X-Amz-Date", ""), int(expires)


def _claim(req: SignedRequest) -> _Claim:
    fields, amz_date, expires = _fields(req)
    credential, signed, signature = (fields.get(name, "") for name in
                                     ("Credential", "SignedHeaders", "Signature"))
    parts = credential.split("/")
    if len(parts) != 5 or not all(_SCOPE_PART.fullmatch(p) for p in parts) \
            or not _SCOPE_DATE.fullmatch(parts[1]) or parts[3:] != ["s3", "aws4_request"]:
        raise _malformed("Credential must be KEY/YYYYMMDD/REGION/s3/aws4_request")
    names = tuple(signed.split(";"))
    if not all(_HEADER_NAME.fullmatch(n) for n in names) or "host" not in names:
        raise _malformed("SignedHeaders must be lower-case header names, host among them")
    if not _SIGNATURE.fullmatch(signature):
        raise _malformed("Signature must be 64 lower-case hex digits")
    if not _AMZ_DATE.fullmatch(amz_date):
        raise ObjectError("AccessDenied", "X-Amz-Date missing or not YYYYMMDDTHHMMSSZ", 403)
    try:
        signed_at = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise ObjectError("AccessDenied", f"X-Amz-Date {amz_date} is no date", 403) from None
    if amz_date[:8] != parts[1]:
        raise _malformed("the Credential's date is not X-Amz-Date's")
    for name in names:
        if not _header(req, name):
            raise _malformed(f"signed header {name} is not in the request")
    return _Claim(parts[0], parts[2], names, signature, amz_date, signed_at, expires)


def access_key_of(req: SignedRequest) -> str:
    """The access key id the request claims (from the Credential= part), after
    validating the header's syntax; raises ObjectError("AuthorizationHeaderMalformed",
    ..., 400) when malformed."""
    with _only_object_errors():
        return _claim(req).access_key


def _canonical_query(raw_query: str, presigned: bool) -> str:
    # botocore joins the pairs as they appear in the URL, which holds only for clients
    # that percent-encode exactly as it does; the spec's canonical form is the decoded
    # bytes re-encoded (unreserved characters bare, all else %XX). Normalise to that and
    # let botocore sort and join.
    def enc(text: str) -> str:
        return quote(unquote_to_bytes(text), safe="")
    return "&".join(f"{enc(k)}={enc(v)}" for k, v in _query_pairs(raw_query)
                    if not (presigned and k == "X-Amz-Signature"))


def verify(req: SignedRequest, secret_for: Callable[[str], str | None],
           now: float | None = None, max_skew: int = 900) -> str:
    """Check the signature; return the access key id. `secret_for(access_key_id)` returns
    the secret key or None when unknown. `now` is time.time() by default."""
    with _only_object_errors():
        claim = _claim(req)
        secret = secret_for(claim.access_key)
        if secret is None:
            raise ObjectError("InvalidAccessKeyId", "the access key id does not exist", 403)
        now = time.time() if now is None else now
        if claim.expires is not None and now > claim.signed_at + claim.expires:
            raise ObjectError("AccessDenied", "request has expired", 403)
        late = claim.expires is None and now - claim.signed_at > max_skew
        if late or claim.signed_at - now > max_skew:
            raise ObjectError("RequestTimeTooSkewed", "the difference between the request "
                              "time and the server's time is too large", 403)
        # S3SigV4Auth takes the path from the URL without re-quoting or normalising it
        # (S3 signs the path as the client encoded it); refuse the paths urlsplit would
        # cut or clean ('#', '?', tabs, ...) rather than verify another path than sent.
        url = "http://verifier" + req.raw_path
        if urlsplit(url).path != req.raw_path:
            raise _mismatch()
        query = _canonical_query(req.raw_query, claim.expires is not None)
        request = AWSRequest(method=req.method, url=url + ("?" + query if query else ""))
        for name in claim.signed:
            for value in _header(req, name):
                value.encode()  # email's Message would make surrogates a Header object
                request.headers.add_header(name, value)
        # The client's time, not botocore's now (add_auth would stamp the current time).
        request.context["timestamp"] = claim.amz_date
        declared = _header(req, "x-amz-content-sha256")
        signer = _Signer(Credentials(claim.access_key, secret), claim.region,
                         declared[0] if declared else "UNSIGNED-PAYLOAD")  # presigned
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected, claim.signature):
            raise _mismatch()
        return claim.access_key
