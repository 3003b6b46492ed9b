"""Hostile credentials against the parsers that read them: whatever a Bearer token or
Basic credentials hold (surrogates from bytes that were not UTF-8, near-JWTs with odd
JSON), only the refusal the guard turns into a 401 comes out, never another
exception (which would be a 500)."""

from __future__ import annotations

import asyncio
import base64
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from registry.auth.logins import parse_basic
from registry.auth.store import AuthStore
from registry.auth.tokens import TokenError, TokenKeys
from registry.core.areas import AuthArea
from registry.core.errors import Unauthorized
from registry.storage.memory import MemoryDriver


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
_header = st.fixed_dictionaries({}, optional={"alg": st.sampled_from(["ES256", "none", "HS256"])
                                              | _json, "kid": _json, "typ": _json})
# Three dot-separated parts, each base64url of JSON or arbitrary text (surrogates too).
_segment = _json.map(lambda v: _b64(json.dumps(v).encode())) | st.text(max_size=40)
_near_jwt = st.tuples(_header.map(lambda h: _b64(json.dumps(h).encode())), _segment,
                      _segment).map(".".join)
_tokens = st.text(max_size=200) | _near_jwt | st.sampled_from(
    ["abc\udcffdef", "\udcff", "a.b.c", "..", "é.é.é", "\x00.\x00.\x00"])


def _keys() -> TokenKeys:
    keys = TokenKeys(AuthStore(AuthArea(MemoryDriver())))
    asyncio.run(keys.load())
    return keys


_KEYS = _keys()


@settings(max_examples=250, deadline=None)
@given(_tokens)
def test_any_token_is_a_token_error_or_valid(token: str) -> None:
    async def check() -> None:
        try:
            await _KEYS.verify(token, "registry", "registry")
        except TokenError:
            return
        raise AssertionError(f"accepted {token!r}")  # nothing here is signed

    asyncio.run(check())


_credentials = st.text(max_size=100) | st.binary(max_size=60).map(
    lambda raw: base64.b64encode(raw).decode()) | st.sampled_from(
    ["\udcff\udcfe", base64.b64encode(b"user:\xff").decode(),
     base64.b64encode(b"\xff:pw").decode(), base64.b64encode(b"nocolon").decode()])


@settings(max_examples=250, deadline=None)
@given(_credentials)
def test_any_basic_credentials_parse_or_are_unauthorized(credentials: str) -> None:
    try:
        name, password = parse_basic(credentials)
    except Unauthorized:
        return
    assert isinstance(name, str) and isinstance(password, str)
