"""The trust room's key store (registry/trust/keys.py) over the memory driver and the
filesystem driver: names, halves, passphrases, refusals, and a private half that is
owner-only on disk."""

from __future__ import annotations

import asyncio
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from registry.core.areas import TrustArea
from registry.storage.filesystem import FilesystemDriver
from registry.storage.memory import MemoryDriver
from registry.trust.keys import KeyProblem, KeyStore, UnknownKey


def _public_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("name", ["", "..", "../x", "a/b", "A", "a.pub", "-a", "a" * 65,
                                  "a\x00", "é"])
async def test_bad_names_are_refused(name: str) -> None:
    store = KeyStore(TrustArea(MemoryDriver()))
    with pytest.raises(KeyProblem, match="key name"):
        await store.generate(name)
    assert await store.get(name) is None


async def test_generate_sign_and_list() -> None:
    store = KeyStore(TrustArea(MemoryDriver()))
    key = await store.generate("site")
    assert key.has_private and len(key.fingerprint) == 64
    signer = await store.signer("site")
    assert key.verify(signer.sign(b"payload"), b"payload")
    assert not key.verify(signer.sign(b"payload"), b"tampered")
    with pytest.raises(KeyProblem, match="exists"):
        await store.generate("site")
    await store.import_public("ci", _public_pem(ec.generate_private_key(ec.SECP256R1())))
    assert [(k.name, k.has_private) for k in await store.list()] == [("ci", False),
                                                                     ("site", True)]
    with pytest.raises(UnknownKey, match="public only"):
        await store.signer("ci")
    with pytest.raises(UnknownKey):
        await store.signer("nope")


async def test_passphrase() -> None:
    store = KeyStore(TrustArea(MemoryDriver()))
    await store.generate("locked", b"s3cret")
    with pytest.raises(KeyProblem, match="passphrase"):
        await store.signer("locked")
    with pytest.raises(KeyProblem, match="wrong passphrase"):
        await store.signer("locked", b"wrong")
    signer = await store.signer("locked", b"s3cret")
    assert signer.key.verify(signer.sign(b"x"), b"x")


@pytest.mark.parametrize("pem, why", [
    (b"garbage", "not a PEM public key"),
    (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "public key"),
    (_public_pem(rsa.generate_private_key(65537, 1024)), "only ECDSA P-256"),
    (_public_pem(ec.generate_private_key(ec.SECP384R1())), "only P-256"),
    (b"x" * 20000, "larger than"),
])
async def test_import_refuses_what_is_no_p256_public_key(pem: bytes, why: str) -> None:
    store = KeyStore(TrustArea(MemoryDriver()))
    with pytest.raises(KeyProblem, match=why):
        await store.import_public("ci", pem)
    assert await store.list() == []


def test_private_half_is_owner_only_on_disk(tmp_path: Path) -> None:
    store = KeyStore(TrustArea(FilesystemDriver(str(tmp_path))))
    key = asyncio.run(store.generate("site", b"pw"))
    keys = tmp_path / "_trust" / "keys"
    assert stat.S_IMODE((keys / "site.key").stat().st_mode) == 0o600
    assert (keys / "site.pub").read_bytes() == key.public_pem
    # Encrypted PKCS8, readable by openssl with the passphrase (an independent reader).
    assert b"ENCRYPTED PRIVATE KEY" in (keys / "site.key").read_bytes()
    out = subprocess.run(["openssl", "pkey", "-in", str(keys / "site.key"), "-passin",
                          "pass:pw", "-pubout"], capture_output=True, check=True).stdout
    assert out == key.public_pem
