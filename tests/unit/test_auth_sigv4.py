"""SigV4 verification: against what boto3 really sends (captured before it leaves),
requests signed by botocore with each payload-hash form, presigned URLs, tampered
requests, and hostile Authorization headers, paths and queries."""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote_to_bytes, urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.config import Config
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from registry.auth.sigv4 import SignedRequest, access_key_of, is_sigv4, verify
from registry.core.errors import ObjectError

KEY, SECRET = "AKIDEXAMPLE00000001", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
ENDPOINT = "http://127.0.0.1:9000"
HOST = "127.0.0.1:9000"


def secret_for(key: str) -> str | None:
    return SECRET if key == KEY else None


def received(method: str, url: str, headers: Any) -> SignedRequest:
    """The request as our server would see it: raw path and query split off the URL,
    text headers, and the Host the HTTP client adds on the way out."""
    parts = urlsplit(url)
    fixed = CIMultiDict((k, v.decode() if isinstance(v, bytes) else v)
                        for k, v in headers.items())
    fixed.setdefault("Host", parts.netloc)
    return SignedRequest(method, parts.path, parts.query, CIMultiDictProxy(fixed))


class _Captured(Exception):
    pass


def client(**config: Any) -> Any:
    return boto3.client("s3", endpoint_url=ENDPOINT + "/s3", region_name="us-east-1",
                        aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                        config=Config(s3={"addressing_style": "path"},
                                      retries={"max_attempts": 0}, **config))


def capture(call: Callable[[Any], Any]) -> SignedRequest:
    """What boto3 would send for `call(client)`; nothing leaves the process."""
    s3, seen = client(), []

    def grab(request: AWSRequest, **_: Any) -> None:
        seen.append(received(request.method, request.url, request.headers))
        raise _Captured

    s3.meta.events.register("before-send.s3.*", grab)
    with pytest.raises(_Captured):
        call(s3)
    return seen[0]


def signed_at(req: SignedRequest) -> float:
    amz = {k.lower(): v for k, v in req.headers.items()}.get("x-amz-date") or dict(
        p.split("=", 1) for p in req.raw_query.split("&"))["X-Amz-Date"]
    return calendar.timegm(time.strptime(amz, "%Y%m%dT%H%M%SZ"))


def code_of(req: SignedRequest, secrets: Callable[[str], str | None] = secret_for,
            now: float | None = None) -> tuple[str, int]:
    with pytest.raises(ObjectError) as info:
        verify(req, secrets, now=signed_at(req) if now is None else now)
    return info.value.s3_code, info.value.status


def replace(req: SignedRequest, **over: Any) -> SignedRequest:
    fields = {"method": req.method, "raw_path": req.raw_path, "raw_query": req.raw_query,
              "headers": dict(req.headers)}
    return SignedRequest(**{**fields, **over})


SPECIAL_KEYS = ["a b.spack", "a+b", "100%", "a%2Fb", "tilde~x", "ünïcödé/日本", "k=v&x=y",
                "build_cache/linux-x86_64/gcc-12/zlib-1.3/a b+c%~=.spack", "a/./b/../c"]

CALLS: dict[str, Callable[[Any], Any]] = {
    "put_object": lambda c: c.put_object(Bucket="cache", Key="k.spack", Body=b"x" * 100),
    "get_object range": lambda c: c.get_object(Bucket="cache", Key="k", Range="bytes=0-9"),
    "head_object": lambda c: c.head_object(Bucket="cache", Key="k"),
    "list_objects_v2": lambda c: c.list_objects_v2(
        Bucket="cache", Prefix="a/b", Delimiter="/", EncodingType="url", StartAfter="a b+"),
    "create_multipart_upload": lambda c: c.create_multipart_upload(Bucket="cache", Key="big"),
    "upload_part": lambda c: c.upload_part(Bucket="cache", Key="big", PartNumber=3,
                                           UploadId="u+/=1", Body=b"part"),
    "complete_multipart_upload": lambda c: c.complete_multipart_upload(
        Bucket="cache", Key="big", UploadId="u+/=1",
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"e"'}]}),
    "delete_objects": lambda c: c.delete_objects(
        Bucket="cache", Delete={"Objects": [{"Key": "a"}, {"Key": "b c"}]}),
    **{f"put {key!r}": (lambda c, key=key: c.put_object(Bucket="cache", Key=key, Body=b"x"))
       for key in SPECIAL_KEYS},
    **{f"get {key!r}": (lambda c, key=key: c.get_object(Bucket="cache", Key=key))
       for key in SPECIAL_KEYS},
}


@pytest.mark.parametrize("name", list(CALLS))
def test_what_boto3_sends_verifies(name: str) -> None:
    req = capture(CALLS[name])
    assert req.raw_path.startswith("/s3/cache")
    assert is_sigv4(req) and access_key_of(req) == KEY
    assert verify(req, secret_for, now=signed_at(req)) == KEY
    assert verify(req, secret_for) == KEY  # signed just now: within the skew of time.time()


def test_the_queries_boto3_builds_are_the_ones_meant() -> None:
    assert capture(CALLS["list_objects_v2"]).raw_query.startswith(
        "list-type=2&prefix=a%2Fb&delimiter=%2F&encoding-type=url")
    assert capture(CALLS["create_multipart_upload"]).raw_query == "uploads"
    assert capture(CALLS["upload_part"]).raw_query == "partNumber=3&uploadId=u%2B%2F%3D1"
    assert capture(CALLS["delete_objects"]).raw_query == "delete"
    assert capture(CALLS["put 'a%2Fb'"]).raw_path == "/s3/cache/a%252Fb"  # not decoded twice


class _Declaring(S3SigV4Auth):
    """botocore's signer declaring a payload hash of our choosing."""

    def __init__(self, payload: str) -> None:
        super().__init__(Credentials(KEY, SECRET), "s3", "us-east-1")
        self._payload = payload

    def payload(self, request: AWSRequest) -> str:
        return self._payload


def sign(method: str, target: str, headers: dict[str, str] | None = None,
         signer: S3SigV4Auth | None = None) -> SignedRequest:
    request = AWSRequest(method=method, url=ENDPOINT + target, headers=headers or {})
    (signer or S3SigV4Auth(Credentials(KEY, SECRET), "s3", "us-east-1")).add_auth(request)
    return received(method, request.url, request.headers)


@pytest.mark.parametrize("payload", [
    "UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "ab" * 32])
def test_the_declared_payload_hash_is_taken_as_given(payload: str) -> None:
    req = sign("PUT", "/s3/cache/k", {"Content-Encoding": "aws-chunked"}, _Declaring(payload))
    assert req.headers["X-Amz-Content-SHA256"] == payload
    assert verify(req, secret_for, now=signed_at(req)) == KEY
    other = "UNSIGNED-PAYLOAD" if payload != "UNSIGNED-PAYLOAD" else "cd" * 32
    assert code_of(replace(req, headers={**req.headers, "X-Amz-Content-SHA256": other})) \
        == ("SignatureDoesNotMatch", 403)


def test_headers_in_any_case_and_repeated() -> None:
    request = AWSRequest(method="PUT", url=ENDPOINT + "/s3/cache/k")
    request.headers = HTTPHeaders()
    for value in ("one", "two  spaced   out"):
        request.headers.add_header("x-amz-meta-tag", value)
    S3SigV4Auth(Credentials(KEY, SECRET), "s3", "us-east-1").add_auth(request)
    req = received("PUT", request.url, request.headers)
    assert req.headers.getall("x-amz-meta-tag") == ["one", "two  spaced   out"]
    assert verify(req, secret_for, now=signed_at(req)) == KEY
    shouting = {k.upper(): v for k, v in sign("GET", "/s3/cache/k").headers.items()}
    plain = replace(req, method="GET", raw_path="/s3/cache/k", headers=shouting)
    assert verify(plain, secret_for, now=signed_at(plain)) == KEY


def test_headers_botocore_would_not_sign_still_verify() -> None:
    class SignsEverything(S3SigV4Auth):  # as some clients do: user-agent and expect signed
        def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
            headers = HTTPHeaders()
            for name, value in request.headers.items():
                headers[name.lower()] = value
            headers["host"] = HOST
            return headers

    req = sign("PUT", "/s3/cache/k", {"User-Agent": "spack/1.0", "Expect": "100-continue"},
               SignsEverything(Credentials(KEY, SECRET), "s3", "us-east-1"))
    assert "user-agent" in req.headers["Authorization"]
    assert verify(req, secret_for, now=signed_at(req)) == KEY


def test_query_values_are_compared_in_canonical_encoding() -> None:
    req = sign("GET", "/s3/cache?prefix=a%2Fb&delimiter=%2F&list-type=2")
    bare = replace(req, raw_query="prefix=a/b&delimiter=/&list-type=2")
    assert verify(bare, secret_for, now=signed_at(req)) == KEY


def test_tampering_is_caught() -> None:
    req = capture(CALLS["list_objects_v2"])
    headers = dict(req.headers)
    mismatch = ("SignatureDoesNotMatch", 403)
    assert code_of(replace(req, raw_path="/s3/other")) == mismatch
    assert code_of(replace(req, raw_path="/cache")) == mismatch  # the /s3 prefix is signed
    assert code_of(replace(req, raw_query=req.raw_query.replace("a%2Fb", "a%2Fc"))) == mismatch
    assert code_of(replace(req, raw_query=req.raw_query + "&max-keys=1")) == mismatch
    assert code_of(replace(req, method="DELETE")) == mismatch
    assert code_of(replace(req, headers={**headers, "Host": "evil:9000"})) == mismatch
    later = headers["X-Amz-Date"][:-3] + ("58Z" if headers["X-Amz-Date"][-3:] != "58Z" else "59Z")
    assert code_of(replace(req, headers={**headers, "X-Amz-Date": later})) == mismatch
    signature = headers["Authorization"][-64:]
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    assert code_of(replace(req, headers={
        **headers, "Authorization": headers["Authorization"][:-64] + flipped})) == mismatch
    assert code_of(req, secrets=lambda _: "wrong") == mismatch
    ranged = capture(CALLS["get_object range"])
    assert code_of(replace(ranged, headers={**ranged.headers, "Range": "bytes=0-99"})) \
        == mismatch
    # urlsplit would cut the fragment off: refused rather than a shorter path verified.
    assert code_of(replace(ranged, raw_path=ranged.raw_path + "#x")) == mismatch


def test_unknown_key_and_time() -> None:
    req = capture(CALLS["head_object"])
    assert code_of(req, secrets=lambda _: None) == ("InvalidAccessKeyId", 403)
    assert verify(req, secret_for, now=signed_at(req) + 900) == KEY
    assert code_of(req, now=signed_at(req) + 901) == ("RequestTimeTooSkewed", 403)
    assert code_of(req, now=signed_at(req) - 901) == ("RequestTimeTooSkewed", 403)
    with pytest.raises(ObjectError):
        verify(req, secret_for, now=signed_at(req) + 61, max_skew=60)


ARABIC_INDIC_DATE = "".join(chr(0x0660 + int(d)) for d in "20260101") + "T000000Z"


@pytest.mark.parametrize("date", [None, "", "2026-01-01T00:00:00Z", "20260101T000000",
                                  "20261301T000000Z", "20260101T250000Z", ARABIC_INDIC_DATE])
def test_bad_dates_are_access_denied(date: str | None) -> None:
    req = capture(CALLS["head_object"])
    headers = {k: v for k, v in req.headers.items() if k != "X-Amz-Date"}
    if date is not None:
        headers["X-Amz-Date"] = date
    assert code_of(replace(req, headers=headers), now=time.time()) == ("AccessDenied", 403)


def presign(method: str = "get_object", expires: int = 60, **params: Any) -> SignedRequest:
    url = client(signature_version="s3v4").generate_presigned_url(
        method, Params={"Bucket": "cache", "Key": "a b+c~ü", **params}, ExpiresIn=expires)
    parts = urlsplit(url)
    return SignedRequest("GET" if method == "get_object" else "PUT", parts.path, parts.query,
                         {"host": parts.netloc})


def test_presigned_urls() -> None:
    req = presign()
    assert is_sigv4(req) and access_key_of(req) == KEY
    assert "X-Amz-Content-SHA256" not in req.headers  # so the payload is UNSIGNED-PAYLOAD
    assert verify(req, secret_for, now=signed_at(req) + 60) == KEY
    assert verify(req, secret_for) == KEY
    assert code_of(req, now=signed_at(req) + 61) == ("AccessDenied", 403)
    assert code_of(req, now=signed_at(req) - 901) == ("RequestTimeTooSkewed", 403)
    assert code_of(replace(req, raw_path=req.raw_path + "x")) == ("SignatureDoesNotMatch", 403)
    week = req.raw_query.replace("X-Amz-Expires=60", "X-Amz-Expires=604801")
    assert code_of(replace(req, raw_query=week)) == ("AccessDenied", 403)
    odd = req.raw_query.replace("X-Amz-Expires=60", "X-Amz-Expires=-1")
    assert code_of(replace(req, raw_query=odd)) == ("AuthorizationQueryParametersError", 400)
    put = presign("put_object", expires=604800)
    assert put.method == "PUT" and verify(put, secret_for, now=signed_at(put) + 604800) == KEY


def test_presigned_by_botocore_query_signer() -> None:
    request = AWSRequest(method="GET", url=ENDPOINT + "/s3/cache/k%20%2B?versionId=1")
    S3SigV4QueryAuth(Credentials(KEY, SECRET), "s3", "eu-west-3", expires=300).add_auth(request)
    req = received("GET", request.url, {})
    assert "eu-west-3" in req.raw_query
    assert verify(req, secret_for, now=signed_at(req)) == KEY


def test_is_sigv4() -> None:
    assert not is_sigv4(SignedRequest("GET", "/s3/b", "", {}))
    assert not is_sigv4(SignedRequest("GET", "/s3/b", "", {"authorization": "Basic eA=="}))
    assert not is_sigv4(SignedRequest("GET", "/s3/b", "", {"Authorization": ALG}))
    assert is_sigv4(SignedRequest("GET", "/s3/b", "", {"AUTHORIZATION": ALG + " x"}))
    assert is_sigv4(SignedRequest("GET", "/s3/b", "X-Amz-Algorithm=" + ALG, {}))


ALG = "AWS4-HMAC-SHA256"
SIG = "a" * 64
SCOPE = "AKIDEXAMPLE00000001/20260101/us-east-1/s3/aws4_request"
MALFORMED = ("AuthorizationHeaderMalformed", 400)
BAD_AUTHORIZATION = [
    ("", MALFORMED),
    ("garbage", MALFORMED),
    ("Bearer abc.def", MALFORMED),
    (ALG, MALFORMED),
    (f"{ALG} garbage", MALFORMED),
    (f"{ALG} Credential={SCOPE}", MALFORMED),
    (f"{ALG} Credential={SCOPE}, SignedHeaders=host;x-amz-date", MALFORMED),
    (f"{ALG} Credential={SCOPE}, Signature={SIG}", MALFORMED),
    (f"{ALG} Credential=AK/20260101/us-east-1/s3, SignedHeaders=host, Signature={SIG}",
     MALFORMED),
    (f"{ALG} Credential=AK/20260101/us-east-1/s3/aws4_request/x, SignedHeaders=host, "
     f"Signature={SIG}", MALFORMED),
    (f"{ALG} Credential=AK/20260101/us-east-1/s3/aws3_request, SignedHeaders=host, "
     f"Signature={SIG}", MALFORMED),
    (f"{ALG} Credential=AK/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, "
     f"Signature={SIG}", MALFORMED),
    (f"{ALG} Credential=AK/2026/us-east-1/s3/aws4_request, SignedHeaders=host, "
     f"Signature={SIG}", MALFORMED),
    (f"{ALG} Credential=AK/20260102/us-east-1/s3/aws4_request, SignedHeaders=host, "
     f"Signature={SIG}", MALFORMED),  # not X-Amz-Date's day
    (f"{ALG} Credential={SCOPE}, SignedHeaders=x-amz-date, Signature={SIG}", MALFORMED),
    (f"{ALG} Credential={SCOPE}, SignedHeaders=Host, Signature={SIG}", MALFORMED),
    (f"{ALG} Credential={SCOPE}, SignedHeaders=host;x-amz-meta-gone, Signature={SIG}",
     MALFORMED),
    (f"{ALG} Credential={SCOPE}, SignedHeaders=host, Signature={'A' * 64}", MALFORMED),
    (f"{ALG} Credential={SCOPE}, SignedHeaders=host, Signature={'a' * 63}", MALFORMED),
    (f"{ALG} Credential={SCOPE}, SignedHeaders=host, Signature={'é' * 64}", MALFORMED),
    (f"{ALG} Credential=ké/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, "
     f"Signature={SIG}", MALFORMED),
    (f"{ALG} Credential={SCOPE}, SignedHeaders=host, Signature={SIG}" + " " * 10_000,
     MALFORMED),
    (f"{ALG} Credential=" + "x" * 10_000, MALFORMED),
    (f"{ALG} Credential=NOBODY/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, "
     f"Signature={SIG}", ("InvalidAccessKeyId", 403)),
    (f"{ALG} Credential={SCOPE}, SignedHeaders=host;x-amz-date, Signature={SIG}",
     ("SignatureDoesNotMatch", 403)),
]


@pytest.mark.parametrize(("header", "expected"), BAD_AUTHORIZATION)
def test_bad_authorization_headers(header: str, expected: tuple[str, int]) -> None:
    req = SignedRequest("GET", "/s3/b/k", "", {"Authorization": header, "Host": HOST,
                                               "X-Amz-Date": "20260101T000000Z"})
    assert code_of(req, now=calendar.timegm((2026, 1, 1, 0, 0, 0))) == expected
    if expected == MALFORMED:
        with pytest.raises(ObjectError) as info:
            access_key_of(req)
        assert (info.value.s3_code, info.value.status) == MALFORMED


def _only_object_errors(req: SignedRequest) -> None:
    is_sigv4(req)
    for check in (access_key_of, lambda r: verify(r, secret_for)):
        try:
            check(req)
        except ObjectError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.text(max_size=100), st.text(max_size=100), st.text(max_size=30))
def test_arbitrary_input_raises_only_object_errors(header: str, path: str, query: str,
                                                   date: str) -> None:
    for authorization in (header, f"{ALG} {header}"):
        _only_object_errors(SignedRequest("GET", path, query, {
            "Authorization": authorization, "Host": HOST, "X-Amz-Date": date}))
    _only_object_errors(SignedRequest("GET", path, f"X-Amz-Algorithm={ALG}&{query}", {}))


_piece = st.text(st.characters(), max_size=40) | st.sampled_from(
    ["host", "host;x-amz-date", SIG, SCOPE, "20260101T000000Z", "%", "%zz", "%ff", "\ud800"])


@settings(max_examples=300, deadline=None)
@given(_piece, _piece, _piece, _piece, _piece, _piece)
def test_nearly_well_formed_input_raises_only_object_errors(
        credential: str, signed: str, signature: str, date: str, path: str, value: str) -> None:
    header = f"{ALG} Credential={credential}, SignedHeaders={signed}, Signature={signature}"
    _only_object_errors(SignedRequest("GET", "/s3/b/" + path, f"prefix={value}", {
        "Authorization": header, "Host": value, "X-Amz-Date": date, "x-amz-date": value}))
    query = (f"X-Amz-Algorithm={ALG}&X-Amz-Credential={credential}&X-Amz-Date={date}"
             f"&X-Amz-Expires={value}&X-Amz-SignedHeaders={signed}&X-Amz-Signature={signature}")
    _only_object_errors(SignedRequest("GET", path, query, {"host": value}))


_REAL = capture(CALLS["get_object range"])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.text(max_size=80), st.text(max_size=40))
def test_a_real_signature_never_covers_another_request(path: str, query: str,
                                                       ranged: str) -> None:
    def canonical(raw_query: str) -> list[str]:
        return sorted(quote(unquote_to_bytes(p), safe="=") for p in raw_query.split("&") if p)

    for req, same in [
            (replace(_REAL, raw_path=path), path == _REAL.raw_path),
            (replace(_REAL, raw_query=query), canonical(query) == canonical(_REAL.raw_query)),
            (replace(_REAL, headers={**_REAL.headers, "Range": ranged}),
             " ".join(ranged.split()) == _REAL.headers["Range"])]:
        try:
            verify(req, secret_for, now=signed_at(_REAL))
        except ObjectError:
            continue
        assert same  # verified: only when it is, canonically, the request signed
