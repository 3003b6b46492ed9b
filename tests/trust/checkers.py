"""Independent verifiers of the signatures the registry makes, run as the field runs
them: the `openssl` command line for cosign's simple-signing payload, and the npm
package @sigstore/verify on Node.js (Debian's; installed by tests/node/install.sh,
which tests/run.sh and the first use here run) for sigstore bundles v0.3 with a key."""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent.parent / "node"


@functools.cache
def node_modules() -> str:
    """Where @sigstore/verify is installed (installing it the first time)."""
    done = subprocess.run(["bash", str(NODE_DIR / "install.sh")], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"npm could not install @sigstore/verify:\n{done.stderr}"
    return done.stdout.strip()


def _files(**contents: bytes) -> tuple[tempfile.TemporaryDirectory, dict[str, str]]:
    tmp = tempfile.TemporaryDirectory(prefix="checker-")
    paths = {}
    for name, data in contents.items():
        path = os.path.join(tmp.name, name)
        Path(path).write_bytes(data)
        paths[name] = path
    return tmp, paths


def openssl_verifies(payload: bytes, signature_der: bytes, public_pem: bytes) -> bool:
    """`openssl dgst -sha256 -verify pub.pem -signature sig.der payload`."""
    tmp, p = _files(payload=payload, sig=signature_der, pub=public_pem)
    with tmp:
        done = subprocess.run(["openssl", "dgst", "-sha256", "-verify", p["pub"],
                               "-signature", p["sig"], p["payload"]],
                              capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 or "Verification failure" in done.stdout + done.stderr, \
        done.stderr
    return done.returncode == 0


def sigstore_verifies(bundle: bytes, public_pem: bytes) -> tuple[bool, str]:
    """@sigstore/verify's verdict on the bundle with this public key (found by the
    bundle's hint); (True, the signed DSSE payload) or (False, the verifier's error)."""
    tmp, p = _files(bundle=bundle, pub=public_pem)
    with tmp:
        done = subprocess.run(["node", str(NODE_DIR / "verify-bundle.js"), p["bundle"],
                               p["pub"]], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "NODE_PATH": node_modules()})
    return done.returncode == 0, done.stdout if done.returncode == 0 else done.stderr
