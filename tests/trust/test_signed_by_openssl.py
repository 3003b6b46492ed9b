"""A client-pushed cosign signature whose bytes no code of ours made: the key pair and
the ECDSA signature come from the `openssl` command line (as a CI pipeline without
cosign signs), laid out as `cosign sign --key` lays it out (tests/trust/signers.py),
pushed over HTTP to an in-process registry whose key is imported with
`registry keys import`, and judged by `GET /api/v1/signatures`, `registry verify` and
a `require=` policy."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests
from harness import wait_for
from policyutil import push_doc, start
from pushing import push_image
from signers import cosign_layer, cosign_signature, simple_signing_payload

from registry.cli import main


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("openssl")
    reg = start(tmp, ["ossl/* require=pipeline"])
    root = tmp / "data" / "storage"
    config = tmp / "registry.toml"
    config.write_text(f'[storage]\ndriver = "filesystem"\nroot = "{root}"\n'
                      f'[index]\npath = "{tmp / "data" / "index.sqlite"}"\n')
    yield reg, tmp, ["--config", str(config)]
    reg.stop()


def openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def openssl_signs(tmp: Path, key: Path, payload: bytes) -> bytes:
    """`openssl dgst -sha256 -sign`: the DER ECDSA signature cosign also writes."""
    (tmp / "payload.json").write_bytes(payload)
    openssl("dgst", "-sha256", "-sign", str(key), "-out", str(tmp / "sig.der"),
            str(tmp / "payload.json"))
    return (tmp / "sig.der").read_bytes()


def state(reg, repo: str, digest: str) -> dict:
    r = requests.get(f"{reg.url}/api/v1/signatures/{repo}@{digest}", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def pull(reg, repo: str, ref: str) -> requests.Response:
    return requests.get(f"{reg.url}/v2/{repo}/manifests/{ref}", timeout=30,
                        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})


def test_openssl_signature_verifies_and_opens_the_policy(world, capsys):
    reg, tmp, config = world
    key, pub = tmp / "key.pem", tmp / "pub.pem"
    openssl("ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", str(key))
    openssl("ec", "-in", str(key), "-pubout", "-out", str(pub))
    assert main(["keys", "import", "pipeline", str(pub), *config]) == 0
    repo = reg.repo("ossl")
    image = push_image(reg, repo, "v1")
    refused = pull(reg, repo, "v1")
    assert refused.status_code == 403 and "unsigned" in refused.text, refused.text

    payload = simple_signing_payload(f"{reg.host}/{repo}", image.digest)
    der = openssl_signs(tmp, key, payload)
    push_doc(reg, repo, cosign_signature([(cosign_layer(None, payload, der), payload)],
                                         image.digest))
    body = wait_for(lambda: state(reg, repo, image.digest), lambda b: b["signatures"])
    assert [(s["format"], s["key"], s["valid"], s["reason"]) for s in body["signatures"]] \
        == [("cosign", "pipeline", True, "")], body
    assert main(["verify", f"{repo}:v1", *config]) == 0
    assert "valid" in capsys.readouterr().out
    allowed = pull(reg, repo, "v1")
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["Docker-Content-Digest"] == image.digest

    # The same key over a payload naming the first image, tagged as the second's.
    second = push_image(reg, repo, "v2", note="2")
    moved = simple_signing_payload(f"{reg.host}/{repo}", image.digest)
    push_doc(reg, repo, cosign_signature(
        [(cosign_layer(None, moved, openssl_signs(tmp, key, moved)), moved)], second.digest))
    body = wait_for(lambda: state(reg, repo, second.digest), lambda b: b["signatures"])
    assert [(s["identity"], s["valid"], s["reason"], s["detail"]) for s in body["signatures"]
            ] == [("pipeline", False, "wrong digest", f"signature is for {image.digest}")], body
    refused = pull(reg, repo, "v2")
    assert refused.status_code == 403 and "wrong digest" in refused.text, refused.text
