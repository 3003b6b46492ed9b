"""Signing what the registry synthesizes with a site GPG key, through the
system `gpg`.

Spack verifies clearsigned spec manifests (layout v3) and `.spec.json.sig`
files (layout v2) with gpg and the keys a cache publishes; a spec pushed over
OCI has neither, so with `[spack] signing_key` the registry makes them, and
publishes the key's public half in both layouts. gpg is run, not
reimplemented: the OpenPGP clearsign format spack checks is gpg's, and the
site's key stays in the keyring (or the gpg-agent / smartcard) it lives in.
The key must sign without a passphrase prompt: gpg runs with --batch.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from dataclasses import dataclass

FPR_RE = re.compile(r"[0-9A-F]{40}")
# Documents are spec manifests and spec files: a few MB at most.
MAX_DOCUMENT = 16 << 20
GPG_TIMEOUT_S = 30.0


class SigningError(Exception):
    """The key cannot be used (the message says why, for the log or config check)."""


def _base(home: str) -> list[str]:
    args = ["gpg", "--batch", "--no-tty", "--quiet"]
    if home:
        args += ["--homedir", home]
    return args


def _run(args: list[str]) -> bytes:
    try:
        done = subprocess.run(args, capture_output=True, timeout=GPG_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise SigningError("gpg is not installed (apt-get install gnupg)") from None
    except subprocess.TimeoutExpired:
        raise SigningError(f"gpg did not answer within {GPG_TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        raise SigningError(done.stderr.decode(errors="replace").strip()[-500:]
                           or f"gpg exited with {done.returncode}")
    return done.stdout


@dataclass(frozen=True)
class GpgSigner:
    """Clearsigns documents with one secret key of a gpg keyring (spack.service's
    Signer): `fingerprint` names it, `public_key()` is its armored public half."""

    fingerprint: str
    home: str
    armored: bytes
    concurrency: asyncio.Semaphore

    @classmethod
    def open(cls, key: str, home: str = "") -> GpgSigner:
        """Find `key` (a fingerprint, key id or user id) among the keyring's secret
        keys, check that it signs without a prompt, export its public key.
        Synchronous: run it at start-up or from `registry config check`."""
        if not key or key.startswith("-") or "\n" in key or len(key) > 256:
            raise SigningError(f"signing_key {key[:80]!r} is not a key name")
        try:
            listing = _run([*_base(home), "--with-colons", "--list-secret-keys", "--", key])
        except SigningError as exc:
            raise SigningError(f"no secret key {key!r} in the keyring "
                               f"{home or '~/.gnupg'} ({exc})") from None
        fprs = []
        primary = False
        for line in listing.decode(errors="replace").splitlines():
            fields = line.split(":")
            if fields[0] == "sec":
                primary = True
            elif fields[0] == "ssb":
                primary = False
            elif fields[0] == "fpr" and primary and len(fields) > 9:
                fprs.append(fields[9])
                primary = False
        if len(fprs) != 1 or not FPR_RE.fullmatch(fprs[0]):
            raise SigningError(f"{key!r} names {len(fprs)} secret keys in the keyring "
                               f"{home or '~/.gnupg'}, not one")
        fpr = fprs[0]
        armored = _run([*_base(home), "--armor", "--export", "--", fpr])
        if b"BEGIN PGP PUBLIC KEY BLOCK" not in armored:
            raise SigningError(f"gpg exported no public key for {fpr}")
        try:  # fail at start, not on the first request, when gpg would prompt
            subprocess.run([*_base(home), "--local-user", fpr, "--clearsign"],
                           input=b"registry signing check\n", capture_output=True,
                           timeout=GPG_TIMEOUT_S, check=True)
        except subprocess.CalledProcessError as exc:
            raise SigningError(f"key {fpr} cannot sign without a prompt: "
                               f"{exc.stderr.decode(errors='replace').strip()[-300:]}") from None
        except subprocess.TimeoutExpired:
            raise SigningError(f"key {fpr} did not sign within {GPG_TIMEOUT_S:.0f} s") from None
        return cls(fpr, home, armored, asyncio.Semaphore(4))

    def public_key(self) -> bytes:
        return self.armored

    async def clearsign(self, data: bytes) -> bytes:
        """`data` clearsigned (an OpenPGP cleartext signature, armored)."""
        if len(data) > MAX_DOCUMENT:
            raise SigningError("document too large to sign")
        async with self.concurrency:
            proc = await asyncio.create_subprocess_exec(
                *_base(self.home), "--local-user", self.fingerprint, "--clearsign",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            try:
                async with asyncio.timeout(GPG_TIMEOUT_S):
                    out, err = await proc.communicate(data)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise SigningError("gpg did not sign in time") from None
        if proc.returncode != 0 or b"BEGIN PGP SIGNED MESSAGE" not in out:
            raise SigningError(err.decode(errors="replace").strip()[-300:]
                               or f"gpg exited with {proc.returncode}")
        return out
