"""A request aiohttp's parser refuses before any handler runs (an oversized header,
too many headers) is answered in the format of the family its path names: S3's
XML (RequestHeaderSectionTooLarge) under /s3/, and each other family keeps its own
(OCI JSON, problem JSON, plain text), also when the header section arrives in many
small pieces, as over a real network."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import xml.etree.ElementTree as ET

import pytest

BIG = "X-Big: " + "a" * 10_000
MANY = "\r\n".join(f"X-H{i}: v" for i in range(200))


def send(reg, target: str, header: str, piece: int = 0) -> http.client.HTTPResponse:
    """GET `target` with `header`; with `piece`, the bytes go out `piece` at a time,
    each after the server has had a moment to read the one before."""
    host, port = reg.host.rsplit(":", 1)
    data = f"GET {target} HTTP/1.1\r\nHost: {reg.host}\r\n{header}\r\n\r\n".encode()
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pace = threading.Event()  # never set: pacing, not a wait for state
    try:
        for start in range(0, len(data), piece or len(data)):
            sock.sendall(data[start:start + (piece or len(data))])
            if piece:
                pace.wait(0.01)
    except OSError:
        pass  # refused midway: the answer is already there
    resp = http.client.HTTPResponse(sock, method="GET")
    resp.begin()
    resp.body = resp.read()  # type: ignore[attr-defined]
    sock.close()
    return resp


@pytest.mark.parametrize("header", [BIG, MANY], ids=["big", "many"])
@pytest.mark.parametrize("piece", [0, 1000], ids=["whole", "pieces"])
def test_an_oversized_header_section_gets_s3_xml(registry, header, piece):
    resp = send(registry, "/s3/some-bucket/some/key", header, piece)
    assert resp.status == 400
    assert resp.getheader("Content-Type") == "application/xml", resp.body
    root = ET.fromstring(resp.body)
    assert root.tag == "Error" and root.findtext("Code") == "RequestHeaderSectionTooLarge"


@pytest.mark.parametrize("piece", [0, 1000], ids=["whole", "pieces"])
def test_other_families_keep_their_error_format(registry, piece):
    oci = send(registry, "/v2/", BIG, piece)
    assert oci.status == 400 and oci.getheader("Content-Type") == "application/json"
    assert json.loads(oci.body)["errors"][0]["code"] == "UNSUPPORTED"
    api = send(registry, "/api/v1/", BIG, piece)
    assert api.status == 400 and api.getheader("Content-Type") == "application/problem+json"
    assert json.loads(api.body)["status"] == 400
    spack = send(registry, "/spack/cache/v3/layout.json", BIG, piece)
    assert spack.status == 400 and spack.getheader("Content-Type").startswith("text/plain")
