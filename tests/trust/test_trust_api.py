"""Signatures pushed over HTTP to an in-process registry, their state in the index and
`GET /api/v1/signatures/<name>@<digest>`; one Notation signature attached by the real
`oras` client."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys

import pytest
import requests
from appthread import start_app
from harness import child_env, wait_for
from pushing import push_blob, push_image, put_manifest
from signers import (
    bundle_dsse,
    bundle_referrer,
    cert_pem,
    certificate,
    cosign_sign,
    ec_key,
    jws_envelope,
    notation_referrer,
    pem,
)

from registry.config import load
from registry.core.areas import TrustArea
from registry.storage import create_driver
from registry.trust.keys import KeyStore

OCI = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trust-api")
    root_key, leaf_key, site = ec_key(), ec_key(), ec_key()
    root = certificate("site root", root_key, ca=True, days=365)
    leaf = certificate("ci signer", leaf_key, (root, root_key))
    (tmp / "ca.pem").write_bytes(cert_pem(root))
    config = load(env={}, overrides={
        "storage": {"driver": "filesystem", "root": str(tmp / "storage")},
        "index": {"path": str(tmp / "index.sqlite")},
        "trust": {"notation_certs": [f"site-ca={tmp / 'ca.pem'}"]}})

    async def keys():
        driver = create_driver(config.storage)
        await KeyStore(TrustArea(driver)).import_public("site", pem(site))
        await KeyStore(TrustArea(driver)).generate("made")  # the registry signs with it
        await driver.close()

    asyncio.run(keys())
    (tmp / "registry.toml").write_text(
        f'[storage]\nroot = "{tmp / "storage"}"\n[index]\npath = "{tmp / "index.sqlite"}"\n'
        f'[trust]\nnotation_certs = ["site-ca={tmp / "ca.pem"}"]\n')
    (tmp / "site.pem").write_bytes(pem(site))
    (tmp / "stranger.pem").write_bytes(pem(ec_key()))
    reg = start_app(config, "filesystem", tmp)
    yield reg, site, leaf_key, [leaf, root], tmp
    reg.stop()


def push_doc(reg, repo, doc):
    for blob in doc.blobs:
        push_blob(reg, repo, blob)
    return put_manifest(reg, repo, doc.tag or doc.digest, doc.manifest, OCI)


def state(reg, repo, digest, **params):
    return requests.get(f"{reg.url}/api/v1/signatures/{repo}@{digest}", params=params,
                        timeout=30)


def test_signatures_pushed_are_verified_into_the_index(world):
    reg, site, leaf_key, chain, _ = world
    image = push_image(reg, "team/app", "v1")
    subject = {"mediaType": OCI, "digest": image.digest, "size": len(image.manifest)}
    unsigned = state(reg, "team/app", image.digest)
    assert unsigned.status_code == 200, unsigned.text
    assert (unsigned.json()["signed"], unsigned.json()["signatures"]) == (False, [])
    push_doc(reg, "team/app", cosign_sign(site, "reg/team/app", image.digest))
    push_doc(reg, "team/app", notation_referrer(
        subject, jws_envelope(leaf_key, chain, subject), chain))
    push_doc(reg, "team/app", bundle_referrer(subject, bundle_dsse(ec_key(), "r",
                                                                   image.digest)))
    body = wait_for(lambda: state(reg, "team/app", image.digest).json(),
                    lambda b: len(b["signatures"]) == 3)
    got = sorted((s["format"], s["key"], s["valid"], s["reason"]) for s in body["signatures"])
    assert got == [("cosign", "site", True, ""), ("notation", "site-ca", True, ""),
                   ("sigstore-bundle", "", False, "unknown key")]
    assert body["signed"] and body["valid"]
    notation = next(s for s in body["signatures"] if s["format"] == "notation")
    assert "CN=ci signer" in notation["identity"]
    def key(s):
        return s["signature"], s["position"]

    fresh = state(reg, "team/app", image.digest, refresh="1").json()["signatures"]
    assert sorted(fresh, key=key) == sorted(body["signatures"], key=key)


def test_a_deleted_signature_leaves_the_state(world):
    """Deleting a signature referrer (by digest: nothing names its subject then)
    verifies its subject again."""
    reg, site, _, _, _ = world
    image = push_image(reg, "team/del", "v1")
    subject = {"mediaType": OCI, "digest": image.digest, "size": len(image.manifest)}
    push_doc(reg, "team/del", cosign_sign(site, "reg/team/del", image.digest))
    bundle = bundle_referrer(subject, bundle_dsse(site, "r", image.digest))
    push_doc(reg, "team/del", bundle)
    body = wait_for(lambda: state(reg, "team/del", image.digest).json(),
                    lambda b: len(b["signatures"]) == 2)
    assert [s["valid"] for s in body["signatures"]] == [True, True]
    r = requests.delete(f"{reg.url}/v2/team/del/manifests/{bundle.digest}", timeout=30)
    assert r.status_code == 202, r.text
    body = wait_for(lambda: state(reg, "team/del", image.digest).json(),
                    lambda b: len(b["signatures"]) == 1)
    assert [s["format"] for s in body["signatures"]] == ["cosign"]


def test_bad_requests(world):
    reg = world[0]
    image = push_image(reg, "team/other", "v1")
    missing = "sha256:" + "0" * 64
    assert state(reg, "team/other", missing).status_code == 404
    assert state(reg, "team/other", "sha256:xyz").status_code == 400
    assert state(reg, "team/nothing", image.digest).status_code == 404


def test_notation_signature_pushed_by_oras(world, monkeypatch):
    """oras-py pushes the envelope as Notation lays it out without artifactType: the
    config of media type application/vnd.cncf.notary.signature, one JWS layer, the
    image as subject."""
    import oras.client
    import oras.oci

    reg, _, leaf_key, chain, tmp = world
    image = push_image(reg, "team/oras", "v1")
    subject = {"mediaType": OCI, "digest": image.digest, "size": len(image.manifest)}
    (tmp / "sig.jws").write_bytes(jws_envelope(leaf_key, chain, subject))
    (tmp / "config.json").write_bytes(b"{}")
    monkeypatch.chdir(tmp)
    client = oras.client.OrasClient(hostname=reg.host, insecure=True)
    client.push(target=f"{reg.host}/team/oras:notation", files=["sig.jws:application/jose+json"],
                manifest_config="config.json:application/vnd.cncf.notary.signature",
                subject=oras.oci.Subject(OCI, image.digest, len(image.manifest)))
    body = wait_for(lambda: state(reg, "team/oras", image.digest).json(),
                    lambda b: b["signatures"])
    assert [(s["format"], s["valid"], s["key"]) for s in body["signatures"]] == [
        ("notation", True, "site-ca")], json.dumps(body)


def test_cli_verify(world, capsys):
    """`registry verify` over the store the server serves: one line per signature, exit
    0 only with a valid signature by a trusted (or given) key."""
    from registry.cli import main

    reg, site, leaf_key, chain, tmp = world
    image = push_image(reg, "team/cli", "v1")
    subject = {"mediaType": OCI, "digest": image.digest, "size": len(image.manifest)}
    config = ["--config", str(tmp / "registry.toml")]
    assert main(["verify", "team/cli:v1", *config]) == 1
    assert "NOT verified" in capsys.readouterr().out
    push_doc(reg, "team/cli", cosign_sign(site, "reg/team/cli", image.digest))
    push_doc(reg, "team/cli", notation_referrer(
        subject, jws_envelope(leaf_key, chain, subject, tamper=True), chain))
    assert main(["verify", "team/cli:v1", *config]) == 0
    out = capsys.readouterr().out
    assert "cosign" in out and "valid" in out and "invalid: bad signature" in out
    assert main(["verify", f"team/cli@{image.digest}", "--key", str(tmp / "stranger.pem"),
                 "--json", *config]) == 1
    done = json.loads(capsys.readouterr().out)
    assert [(s["format"], s["reason"]) for s in done["signatures"]] == [
        ("cosign", "unknown key"), ("notation", "bad signature")]
    assert main(["verify", "team/cli:v1", "--key", str(tmp / "site.pem"), *config]) == 0
    capsys.readouterr()


def test_registry_made_signatures_verify(world):
    """What the registry signs (POST /api/v1/sign, registry/trust/signer.py) verifies
    here in every form it is stored: cosign's .sig tag, the same signature as a cosign
    OCI 1.1 referrer, and the sigstore bundle referrer."""
    reg = world[0]
    image = push_image(reg, "team/made", "v1")
    r = requests.post(f"{reg.url}/api/v1/sign/team/made@{image.digest}",
                      params={"key": "made"}, timeout=30)
    assert r.status_code == 201, r.text
    body = wait_for(lambda: state(reg, "team/made", image.digest).json(),
                    lambda b: len(b["signatures"]) >= 3)
    assert sorted((s["format"], s["key"], s["valid"]) for s in body["signatures"]) == [
        ("cosign", "made", True), ("cosign", "made", True),
        ("sigstore-bundle", "made", True)], body


def test_reindex_verifies_every_manifest(world):
    """`registry reindex` (a process, as an operator runs it) clears the index and fills
    each manifest's signature rows from the store again (the server reads the file)."""
    reg, site, _, _, tmp = world
    image = push_image(reg, "team/re", "v1")
    push_doc(reg, "team/re", cosign_sign(site, "reg/team/re", image.digest))
    wait_for(lambda: state(reg, "team/re", image.digest).json(),
             lambda b: b["signatures"])
    done = subprocess.run([sys.executable, "-m", "registry", "reindex", "--config",
                           str(tmp / "registry.toml")], capture_output=True, text=True,
                          env=child_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["signatures_checked"] >= 2
    with sqlite3.connect(tmp / "index.sqlite") as db:  # the rows, not a verdict made now
        rows = db.execute("SELECT format, key, valid FROM signatures WHERE repo = ? AND"
                          " digest = ?", ["team/re", image.digest]).fetchall()
    assert rows == [("cosign", "site", 1)]
