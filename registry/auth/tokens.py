"""Short-lived ES256 JWTs, as the Docker token specification describes them.

Signing keys live in the store (auth.store) so a token issued by one replica is
accepted by every other: a replica signs with the first key it finds (making one
when there is none) and verifies with whichever key a token's `kid` names. PyJWT
does the JWT work; only ES256 is accepted, so `none` and HS256-with-the-public-key
tokens are refused before any key is used.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from registry.auth.store import AuthStore

ALGORITHM = "ES256"
MAX_TOKEN_BYTES = 8 << 10
LEEWAY_S = 10  # clock drift between replicas tolerated on nbf/exp


class TokenError(Exception):
    """A token that does not verify; the message says why (safe to show)."""


@dataclass(frozen=True, slots=True)
class Issued:
    token: str
    issued_at: float
    expires_in: int


def _kid(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:24]


class TokenKeys:
    """The signing key of this replica and the public keys of every replica."""

    def __init__(self, store: AuthStore) -> None:
        self.store = store
        self._signer: tuple[str, ec.EllipticCurvePrivateKey] | None = None
        self._public: dict[str, ec.EllipticCurvePublicKey] = {}
        self._reloaded = 0.0
        # token -> (expiry, claims) of tokens that verified: only valid ones get in.
        self._verified: dict[str, tuple[float, dict[str, Any]]] = {}

    async def load(self) -> None:
        """Read the keys; make one if the store has none."""
        pems = await self.store.signing_keys()
        if not pems:
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            await self.store.put_signing_key(_kid(key), pem)
            # Another replica may have made one at the same time: both stay valid.
            pems = await self.store.signing_keys()
        self._public = {}
        for kid, pem in sorted(pems.items()):
            loaded = serialization.load_pem_private_key(pem, password=None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                continue
            if self._signer is None:
                self._signer = (kid, loaded)
            self._public[kid] = loaded.public_key()
        self._reloaded = time.monotonic()

    async def public(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        # A replica (or worker) that started with us may have made its own key; the
        # throttle bounds the store reads a flood of made-up kids can cause.
        if kid not in self._public and time.monotonic() - self._reloaded > 0.1:
            await self.load()
        return self._public.get(kid)

    def issue(self, claims: dict[str, Any], ttl: int) -> Issued:
        assert self._signer is not None, "load() first"
        kid, key = self._signer
        now = int(time.time())
        body = {**claims, "iat": now, "nbf": now, "exp": now + ttl,
                "jti": secrets.token_urlsafe(12)}
        return Issued(jwt.encode(body, key, algorithm=ALGORITHM, headers={"kid": kid}),
                      now, ttl)

    def known(self, token: str, audience: str) -> dict[str, Any] | None:
        """The claims of a token `verify` accepted lately for `audience` and still
        valid, else None: the Bearer hot path asks this first, without a coroutine."""
        seen = self._verified.get(token)
        if seen is None or time.time() >= seen[0] or seen[1].get("aud") != audience:
            return None
        return seen[1]

    async def verify(self, token: str, audience: str, issuer: str) -> dict[str, Any]:
        """The claims of a valid token; TokenError otherwise. A token seen lately
        skips the signature check (clients send the same one for minutes)."""
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenError("token too long")
        if not token.isascii():
            # A JWT is base64url and dots; anything else (a header byte that was not
            # UTF-8 arrives as a surrogate) would make PyJWT raise UnicodeEncodeError.
            raise TokenError("malformed token")
        # One cache for every audience (API tokens, dashboard sessions): a hit counts
        # only for the audience and issuer it was verified for, or a session would
        # pass as a Bearer token once verified as a session.
        seen = self._verified.get(token)
        if seen is not None and time.time() < seen[0] and seen[1].get("aud") == audience \
                and seen[1].get("iss") == issuer:
            return seen[1]
        claims = await self._verify(token, audience, issuer)
        if len(self._verified) >= 4096:
            self._verified.clear()
        self._verified[token] = (float(claims["exp"]), claims)
        return claims

    async def _verify(self, token: str, audience: str, issuer: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("malformed token") from None
        if header.get("alg") != ALGORITHM:
            raise TokenError("token algorithm not accepted")
        kid = header.get("kid")
        key = await self.public(kid) if isinstance(kid, str) and len(kid) < 100 else None
        if key is None:
            raise TokenError("token signed by an unknown key")
        try:
            return jwt.decode(token, key, algorithms=[ALGORITHM], audience=audience,
                              issuer=issuer, leeway=LEEWAY_S,
                              options={"require": ["exp", "nbf", "iat", "aud", "iss", "sub"]})
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("token not yet valid") from None
        except jwt.InvalidAudienceError:
            raise TokenError("token is for another service") from None
        except jwt.PyJWTError:
            raise TokenError("invalid token") from None
