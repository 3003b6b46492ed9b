"""`[spack] signing_key`: what the registry synthesizes for specs pushed over OCI
is clearsigned by the system gpg with the site key, whose public half is
published in both classic layouts; a consumer that trusts only the published
key verifies every document. A key that cannot sign stops the start."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests
from harness import child_env
from pushing import push_spack_oci as push_oci
from s3api.s3util import s3_client

from loadtest.spackdir import v2_names
from loadtest.spackgen import make_spec

CACHE = "site/signed"


def gpg(home: str, *args: str, data: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["gpg", "--batch", "--no-tty", "--homedir", home, *args],
                          input=data, capture_output=True, timeout=60)


@pytest.fixture
def gpg_home():
    """A throwaway keyring. Short path: gpg-agent's socket must fit in 108 bytes."""
    home = tempfile.mkdtemp(prefix="g", dir="/tmp")
    yield home
    subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def site_key(gpg_home) -> tuple[str, str]:
    done = gpg(gpg_home, "--passphrase", "", "--quick-gen-key",
               "Site Signer <spack@site.example>", "ed25519", "sign", "never")
    assert done.returncode == 0, done.stderr
    listing = gpg(gpg_home, "--with-colons", "--list-secret-keys").stdout.decode()
    fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr"))
    return gpg_home, fpr


def get(url: str) -> bytes:
    r = requests.get(url)
    assert r.status_code == 200, (url, r.status_code, r.text)
    return r.content


def verify(home: str, signed: bytes, fpr: str) -> bytes:
    """gpg's verdict on a clearsigned document; its payload."""
    done = gpg(home, "--status-fd", "1", "--verify", data=signed)
    assert done.returncode == 0, done.stderr
    assert f"VALIDSIG {fpr}" in done.stdout.decode(), done.stdout
    payload = gpg(home, "--decrypt", data=signed)
    assert payload.returncode == 0, payload.stderr
    return payload.stdout


def test_synthesized_documents_are_signed_with_the_published_key(start_registry, tmp_path,
                                                                  site_key):
    home, fpr = site_key
    reg = start_registry(tmp_path / "server", config=(
        f'[spack]\nsigning_key = "spack@site.example"\ngnupg_home = "{home}"\n'))
    new, old = make_spec("hdf5", "1.14"), make_spec("zlib", "1.3", fmt=4)
    for spec in (new, old):
        push_oci(reg.url, CACHE, spec)
    base = f"{reg.url}/spack/{CACHE}"

    # A consumer that knows nothing but what the cache publishes.
    consumer = tempfile.mkdtemp(prefix="c", dir="/tmp")
    try:
        keys = json.loads(get(f"{base}/build_cache/_pgp/index.json"))["keys"]
        assert list(keys) == [fpr]
        v2_key = get(f"{base}/build_cache/_pgp/{fpr}.pub")
        key_manifest = json.loads(get(f"{base}/v3/manifests/key/{fpr}.key.manifest.json"))
        digest = key_manifest["data"][0]["checksum"]
        v3_key = get(f"{base}/blobs/sha256/{digest[:2]}/{digest}")
        assert v3_key == v2_key and b"BEGIN PGP PUBLIC KEY BLOCK" in v3_key
        listed = json.loads(get(f"{base}/v3/manifests/key/keys.manifest.json"))
        digest = listed["data"][0]["checksum"]
        assert json.loads(get(f"{base}/blobs/sha256/{digest[:2]}/{digest}")) == {
            "keys": {fpr: {}}}
        assert gpg(consumer, "--import", data=v3_key).returncode == 0

        manifest_url = (f"{base}/v3/manifests/spec/hdf5/"
                        f"hdf5-1.14-{new.hash}.spec.manifest.json")
        signed = get(manifest_url)
        assert signed.startswith(b"-----BEGIN PGP SIGNED MESSAGE-----")
        payload = json.loads(verify(consumer, signed, fpr))
        assert payload["version"] == 3
        spec_file = payload["data"][0]["checksum"]
        assert get(f"{base}/blobs/sha256/{spec_file[:2]}/{spec_file}")
        # Made once and kept: every request (and replica) serves the same bytes.
        assert get(manifest_url) == signed

        spec_name, _ = v2_names(old)
        sig = get(f"{base}/build_cache/{spec_name}.sig")
        assert json.loads(verify(consumer, sig, fpr))["spec"] == old.doc
        # Tampering is caught: the check above is not vacuous.
        forged = sig.replace(b'"zlib"', b'"zlib2"')
        assert forged != sig
        assert gpg(consumer, "--verify", data=forged).returncode != 0
    finally:
        subprocess.run(["gpgconf", "--homedir", consumer, "--kill", "all"],
                       capture_output=True)
        shutil.rmtree(consumer, ignore_errors=True)


def test_keys_a_client_published_are_listed_beside_the_site_key(start_registry, tmp_path,
                                                                 site_key):
    home, fpr = site_key
    reg = start_registry(tmp_path / "server", config=(
        f'[spack]\nsigning_key = "spack@site.example"\ngnupg_home = "{home}"\n'))
    push_oci(reg.url, CACHE, make_spec("zlib", "1.3"))
    other = "0123456789ABCDEF0123456789ABCDEF01234567"
    bucket, prefix = CACHE.split("/")
    s3 = s3_client(reg)
    try:
        for key in (f"build_cache/_pgp/{other}.pub",
                    f"v3/manifests/key/{other}.key.manifest.json",
                    # Not keys by spack's names: never listed as fingerprints.
                    "build_cache/_pgp/not-a-key.pub", "build_cache/_pgp/sub/ABCDEF0123456789.pub",
                    "v3/manifests/key/nested/ABCDEF0123456789.key.manifest.json"):
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=b"a client's key")
    finally:
        s3.close()
    base = f"{reg.url}/spack/{CACHE}"
    want = {fpr: {}, other: {}}
    assert json.loads(get(f"{base}/build_cache/_pgp/index.json"))["keys"] == want
    listed = json.loads(get(f"{base}/v3/manifests/key/keys.manifest.json"))
    digest = listed["data"][0]["checksum"]
    assert json.loads(get(f"{base}/blobs/sha256/{digest[:2]}/{digest}"))["keys"] == want
    # The client's own key is the object it pushed.
    assert get(f"{base}/build_cache/_pgp/{other}.pub") == b"a client's key"


def test_unsigned_registry_publishes_no_key(start_registry, tmp_path):
    reg = start_registry(tmp_path / "server")
    spec = make_spec("zlib", "1.3", fmt=4)
    push_oci(reg.url, CACHE, spec)
    spec_name, _ = v2_names(spec)
    base = f"{reg.url}/spack/{CACHE}"
    assert requests.get(f"{base}/build_cache/{spec_name}").status_code == 200
    assert requests.get(f"{base}/build_cache/{spec_name}.sig").status_code == 404
    manifest = requests.get(f"{base}/v3/manifests/spec/zlib/zlib-1.3-{spec.hash}"
                            ".spec.manifest.json")
    assert manifest.status_code == 200 and manifest.content.startswith(b"{")


def test_a_key_that_cannot_sign_stops_the_start(tmp_path, gpg_home):
    cfg = tmp_path / "registry.toml"
    cfg.write_text(f'[spack]\nsigning_key = "nobody@site.example"\ngnupg_home = "{gpg_home}"\n')
    checked = subprocess.run([sys.executable, "-m", "registry", "config", "check", str(cfg)],
                             capture_output=True, text=True, env=child_env(), timeout=60)
    assert checked.returncode == 1
    assert "[spack] signing_key: no secret key 'nobody@site.example'" in checked.stderr
    served = subprocess.run([sys.executable, "-m", "registry", "serve", "--config", str(cfg),
                             "--data", str(tmp_path / "data"), "--listen", "127.0.0.1:1"],
                            capture_output=True, text=True, env=child_env(), timeout=60)
    assert served.returncode == 2
    assert "[spack] signing_key" in served.stderr
    assert not Path(tmp_path / "data" / "index.sqlite").exists()
    cfg.write_text('[spack]\ngnupg_home = "/nonexistent/dir"\n')
    checked = subprocess.run([sys.executable, "-m", "registry", "config", "check", str(cfg)],
                             capture_output=True, text=True, env=child_env(), timeout=60)
    assert checked.returncode == 1 and "gnupg_home" in checked.stderr
