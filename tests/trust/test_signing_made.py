"""Signatures the registry makes, checked by implementations that are not ours: its keys
(`registry keys ...`, `/api/v1/keys`), `registry sign` and `POST /api/v1/sign/...` with
token auth on (a robot without the `sign` action refused), and what they write read
back over the OCI API as cosign and sigstore clients read it: the simple-signing
payload verified by `openssl dgst`, the sigstore bundle by @sigstore/verify on Node.js
(tests/trust/checkers.py); tampered payloads and other keys refused by both.

One registry in this process (tests/appthread.py) on the filesystem driver for the
module; users, robots and keys are written into its store as the CLI writes them."""

from __future__ import annotations

import asyncio
import base64
import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from appthread import AppRegistry, start_app
from checkers import openssl_verifies, sigstore_verifies
from harness import child_env
from nonblocking import guarded
from pushing import OCI_INDEX, OCI_MANIFEST, descriptor, push_image, put_manifest
from signers import ec_key, pem

from registry.auth.logins import new_robot_token
from registry.auth.passwords import hash_password
from registry.auth.store import AuthStore, Robot, User
from registry.cli import main
from registry.config import StorageConfig, load
from registry.core.areas import AuthArea, TrustArea
from registry.storage import create_driver
from registry.trust.keys import KeyStore

ADMIN = ("admin", "admin-pw-1")
RULES = ["* group:admins admin", "team/* anonymous pull"]
SIMPLE = "application/vnd.dev.cosign.simplesigning.v1+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
COSIGN_REF = "application/vnd.dev.cosign.artifact.sig.v1+json"


def _seed(root: Path) -> dict[str, str]:
    """Keys `site` (no passphrase) and `locked` (passphrase `pw`), user admin, robots
    `signer` (pull,sign) and `pusher` (pull,push) on team/*: their tokens."""
    async def run() -> dict[str, str]:
        driver = create_driver(StorageConfig(driver="filesystem", root=str(root)))
        keys = KeyStore(TrustArea(driver))
        await keys.generate("site")
        await keys.generate("locked", b"pw")
        auth = AuthStore(AuthArea(driver), ttl=0)
        await auth.put_user(User(ADMIN[0], hash_password(ADMIN[1]), ["admins"], time.time()))
        tokens = {}
        for name, actions in (("signer", "pull,sign"), ("pusher", "pull,push")):
            token, digest = new_robot_token()
            await auth.put_robot(Robot(name, digest, [f"repository:team/*:{actions}"], 0.0,
                                       time.time()))
            tokens[name] = token
        await driver.close()
        return tokens
    return asyncio.run(run())


@pytest.fixture
def no_blocking():
    """Blockbuster, allowing what registry code does once at a start (tests/nonblocking):
    the command lines run here start the way the server does; and the audit log's
    appends, synchronous by design (auth/audit.py: one small write a line)."""
    with guarded() as bb:
        for function in bb.functions.values():
            function.can_block_in("registry/auth/audit.py", ["_append", "_open"])
        yield


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("signing")
    data = tmp / "data"
    tokens = _seed(data / "storage")
    overrides = {"storage": {"driver": "filesystem", "root": str(data / "storage")},
                 "index": {"path": str(data / "index.sqlite")},
                 "auth": {"mode": "token", "rules": RULES,
                          "audit_log": str(data / "audit.log")}}
    reg = start_app(load(env={}, overrides=overrides), "filesystem", data)
    yield reg, tokens
    reg.stop()


def cli(reg: AppRegistry, *args: str) -> subprocess.CompletedProcess:
    """`registry ARGS --data DIR` as a process, against the store the registry serves."""
    return subprocess.run([sys.executable, "-m", "registry", *args, "--data",
                           str(reg.data_dir)], capture_output=True, text=True,
                          env=child_env(), timeout=60)


def cli_here(reg: AppRegistry, capsys, *args: str) -> tuple[int, str, str]:
    """The same command line run in this process (the same code, without the cost of a
    new interpreter): (exit code, stdout, stderr)."""
    code = main([*args, "--data", str(reg.data_dir)])
    out, err = capsys.readouterr()
    return code, out, err


def sign(reg: AppRegistry, repo: str, digest: str, auth=ADMIN, **query) -> requests.Response:
    return requests.post(f"{reg.url}/api/v1/sign/{repo}@{digest}",
                         params={"key": "site", **query}, auth=auth, timeout=30)


def get(reg: AppRegistry, path: str, accept: str = OCI_MANIFEST,
        **params: str) -> requests.Response:
    r = requests.get(f"{reg.url}/v2/{path}", headers={"Accept": accept}, auth=ADMIN,
                     params=params, timeout=30)
    assert r.status_code == 200, (path, r.text)
    return r


def public_pem(reg: AppRegistry, name: str) -> bytes:
    r = requests.get(f"{reg.url}/api/v1/keys/{name}.pub", timeout=30)  # no credentials
    assert r.status_code == 200, r.text
    return r.content


def cosign_layers(reg: AppRegistry, repo: str, digest: str) -> list[tuple[bytes, bytes]]:
    """(payload, DER signature) of each layer of the `sha256-<hex>.sig` image, read as
    `cosign verify` reads them."""
    tag = digest.replace(":", "-") + ".sig"
    manifest = get(reg, f"{repo}/manifests/{tag}").json()
    config = get(reg, f"{repo}/blobs/{manifest['config']['digest']}").json()
    assert config["rootfs"]["diff_ids"] == [layer["digest"] for layer in manifest["layers"]]
    out = []
    for layer in manifest["layers"]:
        assert layer["mediaType"] == SIMPLE
        data = get(reg, f"{repo}/blobs/{layer['digest']}").content
        sig = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
        out.append((data, sig))
    return out


def referrers(reg: AppRegistry, repo: str, digest: str, artifact_type: str) -> list[dict]:
    index = get(reg, f"{repo}/referrers/{digest}", "application/vnd.oci.image.index.v1+json",
                artifactType=artifact_type).json()
    return [get(reg, f"{repo}/manifests/{d['digest']}").json() for d in index["manifests"]]


def test_keys_cli(env, tmp_path, capsys):
    reg, _ = env
    (tmp_path / "pw").write_text("s3cret\n")
    code, _, err = cli_here(reg, capsys, "keys", "generate", "release", "--passphrase-file",
                            str(tmp_path / "pw"))
    assert code == 0, err
    private = Path(reg.data_dir) / "storage" / "_trust" / "keys" / "release.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in private.read_bytes()
    (tmp_path / "rsa.pem").write_bytes(subprocess.run(
        "openssl genrsa 1024 2>/dev/null | openssl rsa -pubout 2>/dev/null", shell=True,
        capture_output=True, check=True).stdout)
    code, _, err = cli_here(reg, capsys, "keys", "import", "ci", str(tmp_path / "rsa.pem"))
    assert code == 2 and "only ECDSA P-256" in err
    (tmp_path / "ci.pub").write_bytes(pem(ec_key()))
    code, _, err = cli_here(reg, capsys, "keys", "import", "ci", str(tmp_path / "ci.pub"))
    assert code == 0, err
    code, out, _ = cli_here(reg, capsys, "keys", "list")
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in out.splitlines()}
    assert rows["ci"][:2] == ["ecdsa-p256", "public only"]
    assert rows["release"][:2] == ["ecdsa-p256", "private+public"]


def test_keys_api_is_public(env):
    reg, _ = env
    r = requests.get(f"{reg.url}/api/v1/keys", timeout=30)
    assert r.status_code == 200, r.text
    keys = {k["name"]: k for k in r.json()["keys"]}
    assert keys["site"]["private"] and keys["site"]["algorithm"] == "ecdsa-p256-sha256"
    on_disk = Path(reg.data_dir) / "storage" / "_trust" / "keys" / "site.pub"
    assert public_pem(reg, "site") == on_disk.read_bytes()
    for bad in ("nope.pub", "..%2Fsite.pub", "site.key", "SITE.pub", "site"):
        r = requests.get(f"{reg.url}/api/v1/keys/{bad}", timeout=30)
        assert r.status_code == 404, (bad, r.status_code)
        assert r.headers["Content-Type"] == "application/problem+json"


def test_sign_api_rights(env):
    reg, tokens = env
    image = push_image(reg, "team/rights", "v1", auth=ADMIN)
    assert sign(reg, "team/rights", image.digest, auth=None).status_code == 401
    r = sign(reg, "team/rights", image.digest, auth=("pusher", tokens["pusher"]))
    assert r.status_code == 403, r.text
    r = sign(reg, "team/rights", image.digest, auth=("signer", tokens["signer"]))
    assert r.status_code == 201, r.text
    assert r.json()["key"] == "site"
    events = [json.loads(line) for line in
              (Path(reg.data_dir) / "audit.log").read_text().splitlines()]
    assert any(e["event"] == "sign" and e.get("robot") == "signer" for e in events), events
    r = sign(reg, "team/rights", image.digest, key="locked")
    assert r.status_code == 409 and "passphrase" in r.json()["detail"]
    assert sign(reg, "team/rights", image.digest, key="nope").status_code == 404
    assert sign(reg, "team/rights", "sha256:" + "0" * 64).status_code == 404
    assert sign(reg, "team/rights", "sha256:zz").status_code == 400
    assert sign(reg, "team/rights", image.digest, format="gpg").status_code == 400
    for bad in ("../site", "", "Site"):
        assert sign(reg, "team/rights", image.digest, key=bad).status_code == 400
    r = sign(reg, "Team/rights", image.digest)
    assert r.status_code == 400 and r.headers["Content-Type"] == "application/problem+json"


def test_signatures_verify_independently(env):
    reg, _ = env
    image = push_image(reg, "team/app", "v1", auth=ADMIN)
    r = sign(reg, "team/app", image.digest)
    assert r.status_code == 201, r.text
    made = r.json()["signatures"]
    assert [m["format"] for m in made] == ["cosign", "cosign", "bundle"]
    key = public_pem(reg, "site")
    # cosign's tag: the payload names the image, openssl accepts the signature.
    [(payload, sig)] = cosign_layers(reg, "team/app", image.digest)
    doc = json.loads(payload)
    assert doc["critical"] == {"identity": {"docker-reference": f"{reg.host}/team/app"},
                               "image": {"docker-manifest-digest": image.digest},
                               "type": "cosign container image signature"}
    assert openssl_verifies(payload, sig, key)
    assert not openssl_verifies(payload.replace(b"team/app", b"team/evil"), sig, key)
    assert not openssl_verifies(payload, sig, pem(ec_key()))
    # The same layer as an OCI 1.1 referrer of the image.
    [ref] = referrers(reg, "team/app", image.digest, COSIGN_REF)
    assert ref["subject"]["digest"] == image.digest and ref["layers"][0]["digest"] == \
        descriptor(SIMPLE, payload)["digest"]
    # The sigstore bundle: @sigstore/verify accepts it with the key, and the statement
    # it verified names the image.
    [ref] = referrers(reg, "team/app", image.digest, BUNDLE)
    assert ref["artifactType"] == BUNDLE and ref["config"]["mediaType"] == \
        "application/vnd.oci.empty.v1+json"
    bundle = get(reg, f"team/app/blobs/{ref['layers'][0]['digest']}").content
    ok, out = sigstore_verifies(bundle, key)
    assert ok, out
    statement = json.loads(out)
    assert statement["subject"] == [{"digest": {"sha256": image.digest.split(":")[1]}}]
    assert statement["predicateType"] == "https://sigstore.dev/cosign/sign/v1"
    # A statement about another digest under the same signature, or another key: refused.
    doc = json.loads(bundle)
    other = statement | {"subject": [{"digest": {"sha256": "0" * 64}}]}
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(other).encode()).decode()
    ok, out = sigstore_verifies(json.dumps(doc).encode(), key)
    assert not ok and "SIGNATURE_ERROR" in out
    ok, out = sigstore_verifies(bundle, pem(ec_key()))
    assert not ok and "PUBLIC_KEY_ERROR" in out


def test_cli_sign_appends_and_signs_an_index(env, tmp_path, capsys):
    reg, _ = env
    child = push_image(reg, "team/multi", None, auth=ADMIN)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [descriptor(OCI_MANIFEST, child.manifest)]}
    digest = put_manifest(reg, "team/multi", "v2", index, OCI_INDEX, auth=ADMIN)
    assert sign(reg, "team/multi", digest, format="cosign").status_code == 201
    (tmp_path / "pw").write_text("pw\n")
    done = cli(reg, "sign", "team/multi:v2", "--key", "locked", "--passphrase-file",
               str(tmp_path / "pw"), "--host", "registry.example.org", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["digest"] == digest  # the index itself
    # Appended as cosign appends: one layer per key, each verified by its own key.
    layers = cosign_layers(reg, "team/multi", digest)
    assert len(layers) == 2
    for (payload, sig), name in zip(layers, ["site", "locked"], strict=True):
        assert json.loads(payload)["critical"]["image"]["docker-manifest-digest"] == digest
        assert openssl_verifies(payload, sig, public_pem(reg, name))
    assert json.loads(layers[1][0])["critical"]["identity"]["docker-reference"] == \
        "registry.example.org/team/multi"
    # Signing again with the same key adds nothing to the .sig image.
    assert sign(reg, "team/multi", digest, format="cosign").status_code == 201
    assert len(cosign_layers(reg, "team/multi", digest)) == 2
    # A wrong passphrase is refused, and nothing is written.
    (tmp_path / "pw").write_text("wrong\n")
    code, _, err = cli_here(reg, capsys, "sign", "team/multi:v2", "--key", "locked",
                            "--passphrase-file", str(tmp_path / "pw"))
    assert code == 2 and "wrong passphrase" in err
