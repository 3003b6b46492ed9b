"""AWS Signature Version 4, checked on the S3-compatible path (`/s3/`).

Spack (through boto3) and every S3 client sign each request with an access key
id and its secret. We rebuild the client's canonical request from what arrived
(the raw path and query as sent, the headers it says it signed, the payload hash
it declared) and let botocore's own signer turn it into the string to sign and
the signature, so the derivation of keys and the formatting of headers are
exactly the ones clients use. The body is checked against a declared hex
payload hash where it is read (api/s3_body.py), not here.
"""

from __future__ import annotations

import calendar
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from registry.core.errors import ObjectError

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_AUTHORIZATION = 8 << 10
MAX_PRESIGNED_S = 604800
_DATE = re.compile(r"\d{8}T\d{6}Z")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_HEADER_NAME = re.compile(r"[a-z0-9-]{1,100}")
_SCOPE_PART = re.compile(r"[A-Za-z0-9_.-]{1,128}")


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What the verifier needs of an HTTP request."""

    method: str
    raw_path: str  # as sent, still percent-encoded, no query
    raw_query: str  # as sent, without "?"
    headers: Mapping[str, str]  # case-insensitive in production (aiohttp's)


@dataclass(frozen=True, slots=True)
class _Parsed:
    access_key: str
    date: str
    region: str
    signed: tuple[str, ...]
    signature: str
    amz_date: str
    presigned: bool
    expires: int


def _malformed(why: str) -> ObjectError:
    return ObjectError("AuthorizationHeaderMalformed", f"malformed authorization: {why}", 400)


def _query_pairs(raw_query: str) -> list[tuple[str, str]]:
    return [(k, v) for k, _, v in (p.partition("=") for p in raw_query.split("&") if p)]


def _header(req: SignedRequest, name: str) -> list[str]:
    getall = getattr(req.headers, "getall", None)
    if getall is not None:
        return list(getall(name, []))
    return [v for k, v in req.headers.items() if k.lower() == name]


def is_sigv4(req: SignedRequest) -> bool:
    """Whether the request carries SigV4 credentials (header or presigned query)."""
    auth = _header(req, "authorization")
    if auth:
        return auth[0].startswith(ALGORITHM + " ")
    return any(k == "X-Amz-Algorithm" and v == ALGORITHM for k, v in _query_pairs(req.raw_query))


def _parse(req: SignedRequest) -> _Parsed:
    auth = _header(req, "authorization")
    if auth:
        text = auth[0]
        if len(text) > MAX_AUTHORIZATION or not text.startswith(ALGORITHM + " "):
            raise _malformed("expected AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., "
                             "Signature=...")
        fields = {}
        for part in text[len(ALGORITHM) + 1:].split(","):
            key, sep, value = part.strip().partition("=")
            if not sep:
                raise _malformed(f"no value for {key[:40]!r}")
            fields[key] = value
        amz = _header(req, "x-amz-date")
        amz_date = amz[0] if amz else ""
        presigned, expires = False, 0
    else:
        query = {k: unquote(v) for k, v in _query_pairs(req.raw_query)}
        fields = {"Credential": query.get("X-Amz-Credential", ""),
                  "SignedHeaders": query.get("X-Amz-SignedHeaders", ""),
                  "Signature": query.get("X-Amz-Signature", "")}
        amz_date = query.get("X-Amz-Date", "")
        presigned = True
        raw_expires = query.get("X-Amz-Expires", "")
        if not raw_expires.isdigit() or not 1 <= int(raw_expires) <= MAX_PRESIGNED_S:
            raise ObjectError("AuthorizationQueryParametersError",
                              "X-Amz-Expires must be 1 to 604800 seconds", 400)
        expires = int(raw_expires)
    try:
        credential, signed, signature = (fields["Credential"], fields["SignedHeaders"],
                                         fields["Signature"])
    except KeyError as exc:
        raise _malformed(f"missing {exc.args[0]}") from None
    parts = credential.split("/")
    if len(parts) != 5 or not all(_SCOPE_PART.fullmatch(p) for p in parts):
        raise _malformed("Credential must be KEY/DATE/REGION/s3/aws4_request")
    key, date, region, service, terminal = parts
    if service != "s3" or terminal != "aws4_request" or not re.fullmatch(r"\d{8}", date):
        raise _malformed("Credential must be KEY/DATE/REGION/s3/aws4_request")
    names = tuple(signed.split(";"))
    if not all(_HEADER_NAME.fullmatch(n) for n in names) or "host" not in names:
        raise _malformed("SignedHeaders must be lower-case names, host among them")
    if not _SIGNATURE.fullmatch(signature):
        raise _malformed("Signature must be 64 lower-case hex digits")
    if not _DATE.fullmatch(amz_date):
        raise ObjectError("AccessDenied", "X-Amz-Date missing or not YYYYMMDDTHHMMSSZ", 403)
    if amz_date[:8] != date:
        raise _malformed("the Credential's date is not X-Amz-Date's")
    for name in names:
        if not _header(req, name):
            raise _malformed(f"signed header {name} is missing")
    return _Parsed(key, date, region, names, signature, amz_date, presigned, expires)


def access_key_of(req: SignedRequest) -> str:
    """The access key id the request claims, its syntax checked."""
    return _parse(req).access_key


def _canonical_query(raw_query: str, presigned: bool) -> str:
    # Encoded as the spec says whatever the client sent (botocore itself joins the
    # raw pairs, which only holds for clients that encode exactly as it does).
    pairs = []
    for key, value in _query_pairs(raw_query):
        if presigned and key == "X-Amz-Signature":
            continue
        pairs.append((quote(unquote(key), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def verify(req: SignedRequest, secret_for: Callable[[str], str | None],
           now: float | None = None, max_skew: int = 900) -> str:
    """Check the request's signature; its access key id. ObjectError otherwise."""
    try:
        return _verify(req, secret_for, time.time() if now is None else now, max_skew)
    except ObjectError:
        raise
    except (ValueError, TypeError, UnicodeError):
        raise _malformed("undecodable") from None


def _verify(req: SignedRequest, secret_for: Callable[[str], str | None], now: float,
            max_skew: int) -> str:
    p = _parse(req)
    secret = secret_for(p.access_key)
    if secret is None:
        raise ObjectError("InvalidAccessKeyId", "the access key id does not exist", 403)
    signed_at = calendar.timegm(time.strptime(p.amz_date, "%Y%m%dT%H%M%SZ"))
    if p.presigned:
        if now > signed_at + p.expires:
            raise ObjectError("AccessDenied", "request has expired", 403)
        if signed_at - now > max_skew:
            raise ObjectError("RequestTimeTooSkewed", "the request time is in the future", 403)
    elif abs(now - signed_at) > max_skew:
        raise ObjectError("RequestTimeTooSkewed",
                          "the difference between the request time and the server's time "
                          "is too large", 403)
    auth = S3SigV4Auth(Credentials(p.access_key, secret), "s3", p.region)
    headers = HTTPHeaders()
    for name in p.signed:
        for value in _header(req, name):
            headers.add_header(name, value)
    payload = _header(req, "x-amz-content-sha256")
    canonical = "\n".join([
        req.method.upper(), req.raw_path, _canonical_query(req.raw_query, p.presigned),
        auth.canonical_headers(headers) + "\n", ";".join(p.signed),
        payload[0] if payload and not p.presigned else "UNSIGNED-PAYLOAD"])
    request = AWSRequest(method=req.method, url="http://unused/")
    request.context["timestamp"] = p.amz_date
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, p.signature):
        raise ObjectError("SignatureDoesNotMatch", "the request signature we calculated "
                          "does not match the signature you provided", 403)
    return p.access_key
