"""Protocol families mounted by prefix, each with its own errors, over a real server."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from .helpers import call, raw


def test_spack_family_answers_plain_text_404(registry):
    r = call(registry, "GET", "/spack/some/cache/build_cache/index.json")
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("text/plain")
    assert "Docker-Distribution-API-Version" not in r.headers

def test_api_root_lists_the_families(registry):
    r = call(registry, "GET", "/api/v1/")
    assert r.status_code == 200
    families = r.json()["families"]
    assert families["oci"] == "/v2/" and families["s3"] == "/s3/"
    assert set(families) == {"oci", "spack", "api", "ui", "s3", "metrics", "token",
                             "healthz", "readyz", "keys"}
    assert families["keys"] == "/api/v1/keys/"


def test_metrics_are_prometheus_text(registry):
    r = call(registry, "GET", "/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=")
    assert "process_resident_memory_bytes" in r.text
    assert "registry_cache_" not in r.text  # not a node cache
    r = call(registry, "POST", "/metrics")
    assert r.status_code == 405 and r.headers["Content-Type"].startswith("text/plain")

def test_api_errors_are_problem_json(registry):
    r = call(registry, "GET", "/api/v1/no/such/thing")
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.json()["status"] == 404 and r.json()["title"]
    r = call(registry, "DELETE", "/api/v1/")
    assert r.status_code == 405 and r.json()["status"] == 405
    # Escapes that are not UTF-8 name nothing: a 404 in the family's words, not a 500.
    r = raw(registry, "GET", "/api/v1/spack/%ff%fe/specs")
    assert r.status == 404 and b'"status": 404' in r.body

def test_ui_answers_html(registry):
    r = call(registry, "GET", "/ui/")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    r = call(registry, "GET", "/ui/<script>")
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html")
    assert "<script>" not in r.text

@pytest.mark.parametrize("method,path,status,code", [
    ("GET", "/s3/bucket", 501, "NotImplemented"),  # ListObjects v1: Spack lists with v2
    ("GET", "/s3/no-such-bucket?list-type=2", 404, "NoSuchBucket"),
    ("PUT", "/s3/Bad_Bucket/a/b.spack", 400, "InvalidBucketName"),
    ("PATCH", "/s3/bucket/key", 405, "MethodNotAllowed"),
    ("PUT", "/s3/bucket/key?partNumber=10001&uploadId=x", 400, "InvalidArgument"),
    ("PUT", "/s3/bucket/key?partNumber=0&uploadId=x", 400, "InvalidArgument"),
    ("PUT", "/s3/bucket/key?partNumber=abc&uploadId=x", 400, "InvalidArgument"),
    ("PUT", "/s3/bucket/key?partNumber=3", 400, "InvalidArgument"),
    ("GET", "/s3/bucket/a%00b", 400, "InvalidArgument"),
    ("GET", "/s3/bucket/a/../b", 400, "InvalidArgument"),
    ("GET", "/s3/bucket/a/%2e%2e/b", 400, "InvalidArgument"),
    ("GET", "/s3/bucket/%ff", 400, "InvalidURI"),
    ("GET", "/s3/bucket/" + "k" * 1025, 400, "KeyTooLongError"),
])
def test_s3_family_errors_are_s3_xml(registry, method, path, status, code):
    r = raw(registry, method, path)
    assert r.status == status
    assert r.headers["Content-Type"] == "application/xml"
    root = ET.fromstring(r.body)
    assert root.findtext("Code") == code

def test_outside_every_family_is_oci_json(registry):
    r = call(registry, "GET", "/s4/")
    assert r.status_code == 404 and r.json()["errors"][0]["code"]
