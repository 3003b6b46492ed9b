"""Password hashes: scrypt (the standard library's), salted, parameters kept in
the hash so they can be raised later without invalidating stored ones."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

# 16 MiB of memory and ~50 ms a check: slow for a guesser, tolerable for a login
# (checks run on a thread, and verified credentials are remembered briefly).
N, R, P = 1 << 14, 8, 1
# Longer passwords are refused before hashing: nobody types more, and hashing
# a megabyte per guess is a denial of service.
MAX_PASSWORD_BYTES = 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """The stored form of `password`: `scrypt$N$r$p$salt$hash`."""
    raw = password.encode()
    if len(raw) > MAX_PASSWORD_BYTES:
        raise ValueError(f"passwords are at most {MAX_PASSWORD_BYTES} bytes")
    salt = os.urandom(16)
    digest = hashlib.scrypt(raw, salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches the stored hash (False for a malformed hash)."""
    raw = password.encode(errors="surrogateescape")
    if len(raw) > MAX_PASSWORD_BYTES:
        return False
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt" or int(n) > 1 << 20 or int(r) > 32 or int(p) > 16:
            return False
        want = _unb64(digest)
        got = hashlib.scrypt(raw, salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(want), maxmem=256 << 20)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def looks_hashed(text: str) -> bool:
    """Whether `text` is a stored hash (config files must never hold clear text)."""
    parts = text.split("$")
    return len(parts) == 6 and parts[0] == "scrypt"
