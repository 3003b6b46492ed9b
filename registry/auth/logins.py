"""Checking credentials: passwords (users) and robot tokens, with the failed
attempts counted per user name and client address, and per client address, so
guessing is slowed to a crawl without one address locking a user out for all."""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict, deque

from registry.auth.passwords import MAX_PASSWORD_BYTES, verify_password
from registry.auth.rules import NAME, ROBOT, USER, Identity, RuleError, parse_scope
from registry.auth.store import AuthStore, Robot, User
from registry.core.errors import TooManyRequests, Unauthorized

log = logging.getLogger("registry.auth")

# Robot tokens start with this, so a login tells a robot from a user at a glance.
ROBOT_TOKEN_PREFIX = "rrt_"
WINDOW_S = 60.0
# Failed logins one address may make (for any names) per `login_attempts` of one name.
ADDRESS_FACTOR = 5


def new_robot_token() -> tuple[str, str]:
    """A fresh robot token and the hash the store keeps of it."""
    token = ROBOT_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    # Robot tokens are 256 random bits: a plain hash is enough (no guessing to slow).
    return hashlib.sha256(token.encode(errors="surrogateescape")).hexdigest()


@functools.lru_cache(maxsize=4096)
def stamp(secret: str) -> str:
    """What a token records of the credentials it was issued for (a stored password
    hash or robot token hash): it changes with them, and tells nothing about them."""
    return hashlib.sha256(b"registry token stamp\0" +
                          secret.encode(errors="surrogateescape")).hexdigest()[:16]


def parse_basic(credentials: str) -> tuple[str, str]:
    """User name and password of a Basic Authorization header's credentials."""
    try:
        raw = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Unauthorized("malformed Basic credentials: expected base64 of user:password",
                           ) from None
    name, sep, password = raw.partition(":")
    if not sep:
        raise Unauthorized("malformed Basic credentials: no colon between user and password")
    return name, password


class _Window:
    """Failures per key within a sliding minute; `limit` of them refuse the key."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()

    def check(self, key: tuple[str, str]) -> None:
        seen = self._failures.get(key)
        if seen is None:
            return
        now = time.monotonic()
        while seen and now - seen[0] > WINDOW_S:
            seen.popleft()
        if len(seen) >= self.limit:
            retry = int(WINDOW_S - (now - seen[0])) + 1
            raise TooManyRequests("too many failed logins: wait before trying again",
                                  {"retry_after": retry}, {"Retry-After": str(retry)})

    def fail(self, key: tuple[str, str]) -> None:
        seen = self._failures.pop(key, None) or deque(maxlen=self.limit)
        seen.append(time.monotonic())
        self._failures[key] = seen  # most recent last: the oldest go first below
        while len(self._failures) > 100_000:
            self._failures.popitem(last=False)


class Limiter:
    """Failed logins within a sliding minute, counted per (user name, client address)
    and per client address. `attempts` failures for one user from one address refuse
    that user from that address only, so a guesser cannot lock a user out for
    everyone; ADDRESS_FACTOR times as many from one address, whatever the names,
    refuse that address (a guesser spraying names)."""

    def __init__(self, attempts: int) -> None:
        self.attempts = attempts
        self._pairs = _Window(attempts)
        self._addresses = _Window(attempts * ADDRESS_FACTOR)

    def check(self, name: str, address: str) -> None:
        self._addresses.check(("", address))
        self._pairs.check((name, address))

    def fail(self, name: str, address: str) -> None:
        self._addresses.fail(("", address))
        self._pairs.fail((name, address))


class Logins:
    """Turns a user name and password (or robot token) into an identity."""

    def __init__(self, store: AuthStore, config_users: dict[str, User], attempts: int) -> None:
        self.store = store
        self.config_users = config_users
        self.limiter = Limiter(attempts)
        # Credentials verified lately (keyed by a hash that includes the stored
        # hash, so a password change drops them): Basic on every request must not
        # cost an scrypt each.
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._identities: dict[tuple[str, str], tuple[User | Robot, Identity]] = {}
        self._used: dict[str, float] = {}
        self._tasks: set[asyncio.Task] = set()

    async def user(self, name: str) -> User | None:
        return self.config_users.get(name) or await self.store.user(name)

    async def identity(self, kind: str, name: str) -> Identity | None:
        """The current identity of a user or robot (None: removed, revoked, expired)."""
        if kind == USER:
            user = self.config_users.get(name) or await self.store.user(name)  # self.user
            return None if user is None else self._of(name, user, None)
        robot = await self.store.robot(name)
        return None if robot is None else self._of(name, None, robot)

    def identity_now(self, kind: str, name: str) -> Identity | None:
        """What `identity` answers, when the store's cache holds the record fresh (or
        the config has the user); None otherwise, and then the caller awaits
        `identity`. The same records, the same freshness: only the coroutines go."""
        if kind == USER:
            record: User | Robot | None = self.config_users.get(name) \
                or self.store.cached("users", name)
        elif kind == ROBOT:
            record = self.store.cached("robots", name)
        else:
            return None
        if record is None:
            return None
        known = self._identities.get((kind, name))  # _of's hit, without the call
        if known is not None and known[0] is record and isinstance(record, User):
            return known[1]
        if isinstance(record, User):
            return self._of(name, record, None)
        return self._of(name, None, record)

    def _of(self, name: str, user: User | None, robot: Robot | None) -> Identity | None:
        # Every Bearer request asks: the identity made from the record the store (or
        # the config) holds now is kept while that record is the same object (records
        # are replaced, never changed in place), so nothing is rebuilt per request.
        record: User | Robot | None = user if user is not None else robot
        assert record is not None
        key = (USER if user is not None else ROBOT, name)
        known = self._identities.get(key)
        if robot is not None and robot.expired(time.time()):
            return None
        if known is not None and known[0] is record:
            return known[1]
        if user is not None:
            who = Identity(USER, name, frozenset(user.groups), stamp=stamp(user.password))
        else:
            assert robot is not None
            grants = []
            for scope in robot.scopes:
                try:
                    grants.append(parse_scope(scope))
                except RuleError:
                    continue
            who = Identity(ROBOT, name, grants=tuple(grants), stamp=stamp(robot.token_sha256))
        if known is not None and known[1] == who:
            # The store read the same record again (its cache expired): keep the old
            # object, which the rules' memo holds, so its look-up matches by `is`.
            who = known[1]
        if len(self._identities) >= 4096:  # names come from tokens we signed; bound anyway
            self._identities.clear()
        self._identities[key] = (record, who)
        return who

    async def login(self, name: str, password: str, address: str) -> Identity:
        """The identity these credentials prove; Unauthorized (or TooManyRequests)."""
        key = name[:64]
        self.limiter.check(key, address)
        who = await self._verify(name, password)
        if who is None:
            self.limiter.fail(key, address)
            raise Unauthorized("invalid user name or password", {"user": key})
        return who

    async def _verify(self, name: str, password: str) -> Identity | None:
        if not NAME.fullmatch(name) or len(password.encode(errors="replace")) > MAX_PASSWORD_BYTES:
            return None
        if password.startswith(ROBOT_TOKEN_PREFIX):
            robot = await self.store.robot(name)
            if robot is None or not hmac.compare_digest(robot.token_sha256,
                                                        token_hash(password)):
                return None
            who = await self.identity(ROBOT, name)
            if who is not None:
                self._note_use(name)
            return who
        user = await self.user(name)
        if user is None:
            return None
        memo = hashlib.sha256(b"\0".join(
            s.encode(errors="surrogateescape") for s in (name, password, user.password))).digest()
        if memo not in self._verified:
            if not await asyncio.to_thread(verify_password, password, user.password):
                return None
            self._verified[memo] = None
            if len(self._verified) > 1000:
                self._verified.popitem(last=False)
        # The one identity object per record (see _of): the rules' memo, filled by the
        # token endpoint with it, then matches the Bearer requests' identity by `is`.
        return self._of(name, user, None)

    def _note_use(self, robot: str) -> None:
        """Record a robot's last use, at most once a minute per process."""
        now = time.time()
        if now - self._used.get(robot, 0.0) < WINDOW_S:
            return
        self._used[robot] = now
        task = asyncio.get_running_loop().create_task(self._mark(robot, now))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _mark(self, robot: str, now: float) -> None:
        try:
            await self.store.mark_used(robot, now)
        except Exception as exc:  # only a statistic: never the request's problem
            log.warning("could not record the use of robot %s: %s", robot, exc)
