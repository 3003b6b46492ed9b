"""aws-chunked decoding and S3 XML parsing, without a server."""

from __future__ import annotations

import asyncio
import os

import pytest

from registry.api import s3_xml
from registry.api.s3_body import decode_aws_chunked
from registry.core.errors import ObjectError


def frames(payload: bytes, size: int, trailer: bytes = b"x-amz-checksum-crc32:AAAA\r\n"
           ) -> bytes:
    out = b""
    for i in range(0, len(payload), size):
        piece = payload[i:i + size]
        out += f"{len(piece):x};chunk-signature={'a' * 64}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n" + trailer + b"\r\n"


def decode(body: bytes, cut: int) -> bytes:
    async def pieces():
        for i in range(0, len(body), cut):
            yield body[i:i + cut]

    async def run() -> bytes:
        return b"".join([bytes(c) async for c in decode_aws_chunked(pieces())])

    return asyncio.run(run())


@pytest.mark.parametrize("cut", [1, 2, 3, 7, 100, 4096, 1 << 20])
def test_decodes_whatever_the_pieces(cut):
    payload = os.urandom(10_000)
    assert decode(frames(payload, 3000), cut) == payload
    assert decode(frames(payload, 3000, trailer=b""), cut) == payload
    assert decode(frames(b"", 10), cut) == b""


@pytest.mark.parametrize("body", [
    b"zz\r\nabc", b"3\r\nabcXY0\r\n\r\n", b"3\r\nab", b"3\r\nabc\r\n",
    b"3\r\nabc\r\n0\r\n\r\nextra", b"1" * 5000 + b"\r\n", b"ffffffffffffffffff\r\n",
])
def test_refuses_broken_framing(body):
    with pytest.raises(ObjectError) as exc:
        decode(body, 2)
    assert exc.value.s3_code == "IncompleteBody"


def test_xml_parsing_is_safe():
    with pytest.raises(ObjectError):
        s3_xml.parse(b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e "x">]><Delete>&e;</Delete>')
    with pytest.raises(ObjectError):
        s3_xml.parse(b"<Delete>")
    root = s3_xml.parse(b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                        b"<Object><Key>a</Key></Object></Delete>")
    assert s3_xml.local(root.tag) == "Delete"
    assert s3_xml.text_of(s3_xml.children(root, "Object")[0], "Key") == "a"
    assert s3_xml.encode_name("a b+c/\u00e9", url=True) == "a%20b%2Bc/%C3%A9"
    assert s3_xml.encode_name("a\x01b", url=False) == "a%01b"
