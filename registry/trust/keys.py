"""The registry's signing keys: ECDSA P-256, kept in the store's `_trust/keys/` area.

A key is named (`site`, `ci`): `<name>.pub` holds its public half (PEM
SubjectPublicKeyInfo, what `cosign verify --key` and openssl take) and, for a key
the registry made, `<name>.key` its private half (PEM PKCS8, encrypted with the
best available scheme when a passphrase was given), written owner-only. A key
imported for verification only (a CI system's cosign key) has no private half.

Keys are told apart by their fingerprint: the SHA-256 of the public key's DER
SubjectPublicKeyInfo. Its hex is what `registry keys list` and the API show; its
base64 is the hint a sigstore bundle carries (`verificationMaterial.publicKey.hint`),
as cosign writes it, so a verifier finds the key a bundle names.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from registry.core.areas import Area, TrustArea

ALGORITHM = "ecdsa-p256-sha256"
# Names make file names and URL segments (`/api/v1/keys/<name>.pub`): no dots, no
# slashes, so neither a suffix nor a path can hide in one.
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
PRIVATE, PUBLIC = ".key", ".pub"
# A PEM key is a few hundred bytes; anything much larger is not one.
MAX_PEM = 16 << 10


class KeyProblem(ValueError):
    """A key name, PEM or passphrase that cannot be used; the message says why."""


class UnknownKey(KeyProblem):
    """No key of that name (or no private half, for signing)."""


def check_name(name: str) -> str:
    """`name` if it can name a key; KeyProblem saying why not."""
    if not NAME.fullmatch(name):
        raise KeyProblem(f"key name {name[:80]!r}: expected 1-64 of a-z 0-9 _ -, "
                        "starting with a letter or digit")
    return name


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _pem(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def parse_public(pem: bytes) -> ec.EllipticCurvePublicKey:
    """The P-256 public key in `pem`; KeyProblem naming what is wrong with it."""
    if len(pem) > MAX_PEM:
        raise KeyProblem("not a public key: larger than any PEM key")
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise KeyProblem("not a PEM public key (expected -----BEGIN PUBLIC KEY-----)") from None
    except Exception as exc:  # cryptography raises its own kinds for unsupported algorithms
        raise KeyProblem(f"not a usable public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        kind = type(key).__name__.removeprefix("_").removesuffix("PublicKey") or "non-EC"
        raise KeyProblem(f"not an ECDSA key ({kind}): only ECDSA P-256 keys are supported")
    if not isinstance(key.curve, ec.SECP256R1):
        raise KeyProblem(f"an ECDSA key on {key.curve.name}: only P-256 (secp256r1) "
                        "is supported")
    return key


@dataclass(frozen=True, slots=True)
class TrustKey:
    """A named key as the store holds it: its public half, and whether the
    registry holds the private half too (it can sign) or only verifies with it."""

    name: str
    public_pem: bytes
    has_private: bool

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return parse_public(self.public_pem)

    @property
    def fingerprint(self) -> str:
        """The SHA-256 of the DER public key, in hex."""
        return hashlib.sha256(_spki(self.public_key)).hexdigest()

    @property
    def hint(self) -> str:
        """The same digest in base64: a sigstore bundle's public key hint."""
        return base64.b64encode(hashlib.sha256(_spki(self.public_key)).digest()).decode()

    def verify(self, signature: bytes, data: bytes) -> bool:
        """Whether `signature` (DER ECDSA) is this key's over `data` with SHA-256."""
        try:
            self.public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "algorithm": ALGORITHM, "fingerprint": self.fingerprint,
                "hint": self.hint, "private": self.has_private}


@dataclass(frozen=True, slots=True)
class Signer:
    """A key the registry can sign with (its private half loaded)."""

    key: TrustKey
    private: ec.EllipticCurvePrivateKey

    def sign(self, data: bytes) -> bytes:
        """An ECDSA P-256 signature over SHA-256(`data`), DER-encoded (what cosign,
        openssl and DSSE verifiers take)."""
        return self.private.sign(data, ec.ECDSA(hashes.SHA256()))


class KeyStore:
    """The named keys in the store's `_trust/keys/` area (see the module doc)."""

    def __init__(self, area: TrustArea) -> None:
        self._area: Area = area.keys()

    async def get(self, name: str) -> TrustKey | None:
        """The key `name`, or None when there is none (or the name cannot be one)."""
        if not NAME.fullmatch(name):
            return None
        pem = await self._area.read(name + PUBLIC, MAX_PEM)
        if pem is None:
            return None
        has_private = await self._area.read(name + PRIVATE, MAX_PEM) is not None
        return TrustKey(name, pem, has_private)

    async def list(self) -> list[TrustKey]:
        """Every key, by name."""
        keys = []
        for entry in await self._area.list():
            if entry.endswith(PUBLIC) and NAME.fullmatch(entry[:-len(PUBLIC)]):
                key = await self.get(entry[:-len(PUBLIC)])
                if key is not None:
                    keys.append(key)
        return keys

    async def generate(self, name: str, passphrase: bytes | None = None) -> TrustKey:
        """A new P-256 key pair named `name`; KeyProblem if the name is taken."""
        await self._free(check_name(name))
        private = ec.generate_private_key(ec.SECP256R1())
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase) if passphrase
            else serialization.NoEncryption())
        pem = private.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8, encryption)
        # The private half first: a public half alone would read as an imported key.
        await self._area.write(name + PRIVATE, pem, private=True)
        public = _pem(private.public_key())
        await self._area.write(name + PUBLIC, public)
        return TrustKey(name, public, True)

    async def import_public(self, name: str, pem: bytes) -> TrustKey:
        """Trust the public key in `pem` under `name` (its private half lives
        elsewhere); KeyProblem if it is no P-256 public key or the name is taken."""
        check_name(name)
        key = parse_public(pem)
        await self._free(name)
        public = _pem(key)  # normalised: one PEM block, nothing else from the file
        await self._area.write(name + PUBLIC, public)
        return TrustKey(name, public, False)

    async def remove(self, name: str) -> bool:
        """Forget the key (both halves); False when there was none."""
        if not NAME.fullmatch(name):
            return False
        private = await self._area.delete(name + PRIVATE)
        return await self._area.delete(name + PUBLIC) or private

    async def signer(self, name: str, passphrase: bytes | None = None) -> Signer:
        """The key `name` ready to sign; UnknownKey when there is no such key or
        its private half is elsewhere, KeyProblem for a missing or wrong passphrase."""
        key = await self.get(check_name(name))
        pem = await self._area.read(name + PRIVATE, MAX_PEM) if key is not None else None
        if key is None or pem is None:
            raise UnknownKey(f"no key {name!r} with a private half in the store "
                             "(`registry keys generate`)" if key is None else
                             f"key {name!r} is public only: its private half lives elsewhere")
        try:
            private = serialization.load_pem_private_key(pem, passphrase or None)
        except TypeError:
            raise KeyProblem(f"key {name!r} is protected by a passphrase, and none was given"
                            if not passphrase else
                            f"key {name!r} is not protected by a passphrase") from None
        except ValueError:
            raise KeyProblem(f"key {name!r}: wrong passphrase (or a damaged key)") from None
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise KeyProblem(f"key {name!r} is not an ECDSA key")
        return Signer(key, private)

    async def _free(self, name: str) -> None:
        if await self._area.read(name + PUBLIC, MAX_PEM) is not None \
                or await self._area.read(name + PRIVATE, MAX_PEM) is not None:
            raise KeyProblem(f"key {name!r} exists (choose another name)")
