"""`[trust] policies` over HTTP: a registry in this process (tests/appthread.py) on the
filesystem driver, its key store holding the test's public keys, pulled and pushed
with requests; signatures laid out as `cosign sign --key` does (tests/trust/signers.py).
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
from harness import poll
from policyutil import OTHER, POLICIES, SITE, push_doc, start
from pushing import (
    OCI_INDEX,
    OCI_MANIFEST,
    digest_of,
    image_config,
    manifest_for,
    push_blob,
    push_spack_oci,
    put_manifest,
)
from signers import bundle_dsse, bundle_referrer, cosign_sign

from loadtest.spackgen import make_spec


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    app = start(tmp_path_factory.mktemp("policy"), POLICIES)
    yield app
    app.stop()


def push(reg, repo: str, ref: str | None, note: str,
         shared: bytes = b"") -> tuple[str, list[str], bytes]:
    """An image (its own layer, and `shared` if given): digest, blob digests, bytes."""
    config = image_config(note=note)
    layers = [f"layer {repo} {note}".encode()] + ([shared] if shared else [])
    blobs = [push_blob(reg, repo, b) for b in [config, *layers]]
    body = manifest_for(config, layers, note)
    return put_manifest(reg, repo, ref or digest_of(body), body), blobs, body


def get(reg, repo: str, ref: str, method: str = "GET", kind: str = "manifests"):
    return requests.request(method, f"{reg.url}/v2/{repo}/{kind}/{ref}", timeout=30,
                            headers={"Accept": "application/vnd.oci.image.manifest.v1+json,"
                                     f"{OCI_INDEX}"})


def refused(resp, reason: str) -> None:
    assert resp.status_code == 403, (resp.status_code, resp.text)
    error = resp.json()["errors"][0]
    assert error["code"] == "DENIED" and reason in error["message"], error


def test_require_refuses_then_allows(reg):
    repo = reg.repo("prod")
    digest, blobs, _ = push(reg, repo, "v1", "a")
    refused(get(reg, repo, "v1"), "unsigned")
    refused(get(reg, repo, digest), "unsigned")
    assert get(reg, repo, "v1", "HEAD").status_code == 200  # no bytes: pushers ask it
    for blob in blobs:  # the config and layer of a refused manifest
        refused(get(reg, repo, blob, kind="blobs"), "unsigned")
    # Signed by a key the rule does not name; then a tampered payload.
    push_doc(reg, repo, cosign_sign(OTHER, f"r/{repo}", digest))
    refused(get(reg, repo, "v1"), "unknown key")
    # A bundle naming the site key whose statement was altered after signing.
    other, _, body = push(reg, repo, "v2", "b")
    subject = {"mediaType": OCI_MANIFEST, "digest": other, "size": len(body)}
    push_doc(reg, repo, bundle_referrer(subject, bundle_dsse(SITE, f"r/{repo}", other,
                                                             tamper=True)))
    refused(get(reg, repo, "v2"), ": bad signature")
    # The signature manifest itself is always served: clients must read it to verify.
    sig_tag = digest.replace(":", "-") + ".sig"
    assert get(reg, repo, sig_tag).status_code == 200
    push_doc(reg, repo, cosign_sign(SITE, f"r/{repo}", digest))
    for ref in ("v1", digest):
        r = get(reg, repo, ref)
        assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == digest
    for blob in blobs:
        assert get(reg, repo, blob, kind="blobs").status_code == 200
    # Outside every rule: served unsigned.
    free = reg.repo("free")
    assert get(reg, free, push(reg, free, "v1", "f")[0]).status_code == 200


def test_index_judged_by_each_child(reg):
    """The index is served; each child is judged when asked for; a blob both children
    share is served through the signed one, a blob only the unsigned one has is not."""
    repo = reg.repo("prod")
    shared = b"a layer both children have"
    signed, signed_blobs, signed_body = push(reg, repo, None, "amd64", shared)
    unsigned, unsigned_blobs, unsigned_body = push(reg, repo, None, "arm64", shared)
    push_doc(reg, repo, cosign_sign(SITE, f"r/{repo}", signed))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d,
         "size": len(body), "platform": {"os": "linux", "architecture": arch}}
        for d, body, arch in ((signed, signed_body, "amd64"),
                              (unsigned, unsigned_body, "arm64"))]}
    put_manifest(reg, repo, "multi", json.dumps(index).encode(), OCI_INDEX)
    r = get(reg, repo, "multi")
    assert r.status_code == 200 and r.headers["Content-Type"] == OCI_INDEX
    assert get(reg, repo, signed).status_code == 200
    refused(get(reg, repo, unsigned), "unsigned")
    assert get(reg, repo, digest_of(shared), kind="blobs").status_code == 200
    only_unsigned = [b for b in unsigned_blobs if b not in signed_blobs]
    assert only_unsigned
    for blob in only_unsigned:
        refused(get(reg, repo, blob, kind="blobs"), "unsigned")


def test_quarantine_with_concurrent_pulls(reg):
    """A push by tag is invisible until signed: the tag goes on resolving to the
    previous digest (404 when there is none) for every puller, polling all along;
    the signature moves it."""
    repo = reg.repo("hpc")
    first, _, _ = push(reg, repo, "latest", "1")
    r = get(reg, repo, "latest")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    push_doc(reg, repo, cosign_sign(SITE, f"r/{repo}", first))
    poll(lambda: get(reg, repo, "latest").status_code == 200, what="first release")
    assert get(reg, repo, "latest").headers["Docker-Content-Digest"] == first

    seen: list[tuple[float, str]] = []
    stop = threading.Event()

    def pull_loop() -> None:
        with requests.Session() as s:
            while not stop.is_set():
                started = time.monotonic()
                r = s.get(f"{reg.url}/v2/{repo}/manifests/latest", timeout=30)
                seen.append((started, r.headers.get("Docker-Content-Digest", str(r.status_code))))

    pollers = [threading.Thread(target=pull_loop) for _ in range(3)]
    for t in pollers:
        t.start()
    try:
        second, _, _ = push(reg, repo, "latest", "2")
        poll(lambda: len(seen) > 30, what="pulls while the push is held")
        assert get(reg, repo, "latest").headers["Docker-Content-Digest"] == first
        signing = time.monotonic()
        push_doc(reg, repo, cosign_sign(SITE, f"r/{repo}", second))
        poll(lambda: any(d == second for _, d in seen), what="the tag moved")
    finally:
        stop.set()
        for t in pollers:
            t.join(30)
    assert {d for _, d in seen} <= {first, second}
    assert not [d for at, d in seen if d == second and at < signing]
    assert get(reg, repo, "latest").headers["Docker-Content-Digest"] == second


def test_spack_views_and_s3_serve_no_refused_blob(reg):
    """A covered repository's blob, read as a Spack cache's classic view or as the S3
    object a Spack push made of it, is refused like the OCI blob; served once signed."""
    name = reg.repo("p").split("/")[1]
    repo = f"prod/{name}"
    digest, blobs, _ = push(reg, repo, "v1", "s")
    layer = blobs[1]
    hexd = layer.split(":")[1]
    path = f"blobs/sha256/{hexd[:2]}/{hexd}"
    view = f"{reg.url}/spack/{repo}/{path}"
    r = requests.get(view, timeout=30)
    assert r.status_code == 403 and "unsigned" in r.text, r.text
    assert requests.put(f"{reg.url}/s3/prod", timeout=30).status_code in (200, 409)
    obj = f"{reg.url}/s3/prod/{name}/{path}"
    r = requests.put(obj, data=f"layer {repo} s".encode(), timeout=30)
    assert r.status_code == 200, r.text
    r = requests.get(obj, timeout=30)
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text, r.text
    assert "unsigned" in r.text
    assert requests.head(obj, timeout=30).status_code == 200  # no bytes
    push_doc(reg, repo, cosign_sign(SITE, f"r/{repo}", digest))
    assert requests.get(view, timeout=30).status_code == 200
    assert requests.get(obj, timeout=30).content == f"layer {repo} s".encode()


def test_sign_signs_every_push_off_the_request_path(reg):
    """sign=: the registry signs what is pushed (a `.sig` tag appears); with require=
    and quarantine on the same key, the tag is held until the registry's own
    signature is there, and then moves."""
    repo = reg.repo("ci")
    digest, _, _ = push(reg, repo, "v1", "c")
    sig_tag = digest.replace(":", "-") + ".sig"
    poll(lambda: get(reg, repo, sig_tag).status_code == 200, what="the registry's signature")
    held = reg.repo("signed")
    digest, _, _ = push(reg, held, "v1", "h")
    poll(lambda: get(reg, held, "v1").status_code == 200, what="the signed push released")
    assert get(reg, held, "v1").headers["Docker-Content-Digest"] == digest
    assert get(reg, held, digest.replace(":", "-") + ".sig").status_code == 200


def test_spack_server_index_is_served_and_specs_are_judged(reg):
    """Spack's server-kept `index.spack` (a list the registry renders, not a binary)
    and its blob are served under require=; the spec's image is judged."""
    repo = reg.repo("prod")
    spec = make_spec("zlib", "1.3")
    push_spack_oci(reg, repo, spec)
    index = get(reg, repo, "index.spack")
    assert index.status_code == 200, index.text
    for layer in index.json()["layers"]:
        assert get(reg, repo, layer["digest"], kind="blobs").status_code == 200
    refused(get(reg, repo, spec.tag), "unsigned")
