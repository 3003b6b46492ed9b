"""Users, robots, S3 access keys and token-signing keys, kept in the store.

Everything lives under `_auth/` of the registry's own storage (data directory or
S3 bucket), so every worker and replica sees the same users and a revocation
reaches all of them: records are read through a cache that holds them for at most
`ttl` seconds (half a second: a revoked robot is refused everywhere within a
second), misses included.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Coroutine
from dataclasses import asdict, dataclass, field
from typing import Any

from registry.core.areas import AuthArea

MAX_RECORD = 64 << 10
# Names come from hostile headers: only ones that are safe file names get near the store.
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass
class User:
    name: str
    password: str  # scrypt hash (auth.passwords)
    groups: list[str] = field(default_factory=list)
    created: float = 0.0


@dataclass
class Robot:
    name: str
    token_sha256: str
    scopes: list[str]
    expires: float = 0.0  # 0: never
    created: float = 0.0

    def expired(self, now: float) -> bool:
        return bool(self.expires) and now >= self.expires


@dataclass
class AccessKey:
    access_key_id: str
    secret: str  # SigV4 needs the secret itself to check a signature
    user: str
    created: float = 0.0


_KINDS: dict[str, type] = {"users": User, "robots": Robot, "keys": AccessKey}


class AuthStore:
    """Reads and writes the records of `_auth/`, with a short-lived read cache."""

    def __init__(self, area: AuthArea, ttl: float = 0.5) -> None:
        self.area = area
        self.ttl = ttl
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}

    def cached(self, kind: str, name: str) -> Any:
        """The record `_get` would answer, if the cache holds it fresh; None when it
        does not (or holds a miss): the Bearer fast path's look-up, no coroutine."""
        hit = self._cache.get((kind, name))
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        return None

    async def _get(self, kind: str, name: str) -> Any:
        key = (kind, name)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]  # only safe names are ever cached: no need to check again
        if not _SAFE.fullmatch(name):
            return None
        raw = await self.area.records(kind).read(name, MAX_RECORD)
        record = None if raw is None else _KINDS[kind](**json.loads(raw))
        if len(self._cache) > 10_000:  # names are hostile: bound the cache
            self._cache.clear()
        self._cache[key] = (now, record)
        return record

    async def _put(self, kind: str, name: str, record: Any) -> None:
        await self.area.records(kind).write(
            name, json.dumps(asdict(record), sort_keys=True).encode())
        self._cache.pop((kind, name), None)

    async def _delete(self, kind: str, name: str) -> bool:
        self._cache.pop((kind, name), None)
        return await self.area.records(kind).delete(name)

    async def _names(self, kind: str) -> list[str]:
        return sorted(await self.area.records(kind).list())

    def user(self, name: str) -> Coroutine[Any, Any, User | None]:
        # Not a coroutine of its own: every Bearer request asks (one frame less).
        return self._get("users", name)

    async def put_user(self, user: User) -> None:
        await self._put("users", user.name, user)

    async def remove_user(self, name: str) -> bool:
        return await self._delete("users", name)

    async def users(self) -> list[User]:
        return [u for n in await self._names("users") if (u := await self.user(n))]

    async def robot(self, name: str) -> Robot | None:
        return await self._get("robots", name)

    async def put_robot(self, robot: Robot) -> None:
        await self._put("robots", robot.name, robot)

    async def remove_robot(self, name: str) -> bool:
        await self._delete("used", name)
        return await self._delete("robots", name)

    async def robots(self) -> list[Robot]:
        return [r for n in await self._names("robots") if (r := await self.robot(n))]

    async def mark_used(self, name: str, when: float) -> None:
        await self.area.records("used").write(name, json.dumps({"last_used": when}).encode())

    async def last_used(self, name: str) -> float | None:
        raw = await self.area.records("used").read(name, MAX_RECORD)
        try:
            return float(json.loads(raw)["last_used"]) if raw is not None else None
        except (ValueError, KeyError, TypeError):
            return None

    async def access_key(self, key_id: str) -> AccessKey | None:
        return await self._get("keys", key_id)

    async def put_access_key(self, key: AccessKey) -> None:
        await self._put("keys", key.access_key_id, key)

    async def remove_access_key(self, key_id: str) -> bool:
        return await self._delete("keys", key_id)

    async def access_keys(self) -> list[AccessKey]:
        return [k for n in await self._names("keys") if (k := await self.access_key(n))]

    async def signing_keys(self) -> dict[str, bytes]:
        """kid -> PEM of every token-signing key in the store."""
        keys = {}
        for kid in await self._names("signing"):
            pem = await self.area.records("signing").read(kid, MAX_RECORD)
            if pem is not None:  # removed meanwhile
                keys[kid] = pem
        return keys

    async def put_signing_key(self, kid: str, pem: bytes) -> None:
        await self.area.records("signing").write(kid, pem)
