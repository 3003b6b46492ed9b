"""`registry users ...` and `registry tokens ...`: the people and robots of
`[auth] mode = "token"`, kept in the store every worker and replica reads.
They take the same `--config`/`--data` as `registry serve` and work while it runs
(a change reaches every worker within a second)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import re
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from registry.auth.logins import new_robot_token
from registry.auth.passwords import MAX_PASSWORD_BYTES, hash_password
from registry.auth.rules import RuleError, check_name, parse_scope
from registry.auth.store import AccessKey, AuthStore, Robot, User
from registry.config import Config

_DURATION = re.compile(r"(\d{1,6})([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> int:
    """Seconds in `30d`, `12h`, `90m`, `2w`, `45s`; 0 for `never`."""
    if text == "never":
        return 0
    m = _DURATION.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"expected a duration like 30d, 12h, 90m or never, got {text!r}")
    return int(m.group(1)) * _UNITS[m.group(2)]


@contextlib.asynccontextmanager
async def _auth_store(config: Config) -> AsyncIterator[AuthStore]:
    from registry.core.areas import AuthArea
    from registry.storage import create_driver

    driver = create_driver(config.storage)
    try:
        yield AuthStore(AuthArea(driver), ttl=0)
    finally:
        await driver.close()


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise SystemExit("the passwords differ")
    if not password:
        raise SystemExit("empty password")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise SystemExit(f"passwords are at most {MAX_PASSWORD_BYTES} bytes")
    return password


def _run(load: Callable[[argparse.Namespace], Config], args: argparse.Namespace,
         body: Callable[[AuthStore], Any]) -> int:
    config = load(args)

    async def run() -> int:
        async with _auth_store(config) as store:
            return await body(store)

    try:
        return asyncio.run(run())
    except RuleError as exc:
        print(f"registry: {exc}", file=sys.stderr)
        return 2


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(t)) if t else "-"


def users_command(load: Callable[[argparse.Namespace], Config],
                  args: argparse.Namespace) -> int:
    what = args.users_command
    if what == "hash":
        print(hash_password(_password(args)))
        return 0
    given: str | None = getattr(args, "name", None)
    name = given or ""  # the commands that use it require it
    if given is not None:
        try:
            check_name(name, "user")
            for group in getattr(args, "group", None) or []:
                check_name(group, "group")
        except RuleError as exc:
            print(f"registry: {exc}", file=sys.stderr)
            return 2

    async def body(store: AuthStore) -> int:
        if what == "add":
            if await store.user(name) is not None:
                print(f"registry: user {name} exists (use passwd)", file=sys.stderr)
                return 1
            await store.put_user(User(name, hash_password(_password(args)),
                                      sorted(set(args.group or [])), time.time()))
            print(f"added user {name}")
        elif what == "passwd":
            user = await store.user(name)
            if user is None:
                print(f"registry: no user {name}", file=sys.stderr)
                return 1
            user.password = hash_password(_password(args))
            if args.group is not None:
                user.groups = sorted(set(args.group))
            await store.put_user(user)
            print(f"changed the password of {name}")
        elif what == "remove":
            if not await store.remove_user(name):
                print(f"registry: no user {name}", file=sys.stderr)
                return 1
            for key in await store.access_keys():
                if key.user == name:
                    await store.remove_access_key(key.access_key_id)
            print(f"removed user {name} and their access keys")
        elif what == "list":
            for user in await store.users():
                print(f"{user.name}\tgroups={','.join(user.groups) or '-'}\t"
                      f"created={_when(user.created)}")
        elif what == "keys":
            return await _keys(store, args)
        return 0

    return _run(load, args, body)


async def _keys(store: AuthStore, args: argparse.Namespace) -> int:
    if args.keys_command == "create":
        if await store.user(args.name) is None:
            print(f"registry: no user {args.name} (keys belong to users in the store)",
                  file=sys.stderr)
            return 1
        key_id = "RK" + secrets.token_hex(9).upper()
        secret = secrets.token_urlsafe(30)
        await store.put_access_key(AccessKey(key_id, secret, args.name, time.time()))
        print(json.dumps({"access_key_id": key_id, "secret_access_key": secret,
                          "user": args.name}, indent=2))
        print("the secret is shown this once: keep it now", file=sys.stderr)
    elif args.keys_command == "list":
        for key in await store.access_keys():
            if args.name in (None, key.user):
                print(f"{key.access_key_id}\tuser={key.user}\tcreated={_when(key.created)}")
    elif args.keys_command == "revoke":
        if not await store.remove_access_key(args.key_id):
            print(f"registry: no access key {args.key_id}", file=sys.stderr)
            return 1
        print(f"revoked access key {args.key_id}")
    return 0


def tokens_command(load: Callable[[argparse.Namespace], Config],
                   args: argparse.Namespace) -> int:
    what = args.tokens_command

    async def body(store: AuthStore) -> int:
        if what == "create":
            check_name(args.name, "robot")
            scopes = [parse_scope(s).to_scope() for s in args.scope]
            try:
                ttl = parse_duration(args.expires)
            except ValueError as exc:
                print(f"registry: --expires: {exc}", file=sys.stderr)
                return 2
            if await store.robot(args.name) is not None:
                print(f"registry: robot {args.name} exists (revoke it first)", file=sys.stderr)
                return 1
            if await store.user(args.name) is not None:
                print(f"registry: {args.name} is a user's name", file=sys.stderr)
                return 1
            token, digest = new_robot_token()
            now = time.time()
            await store.put_robot(Robot(args.name, digest, scopes,
                                        now + ttl if ttl else 0.0, now))
            print(token)
            print(f"robot {args.name}: log in with user name {args.name!r} and this token "
                  "as the password; it is shown this once", file=sys.stderr)
        elif what == "list":
            rows = []
            for robot in await store.robots():
                rows.append({"name": robot.name, "scopes": robot.scopes,
                             "created": _when(robot.created),
                             "expires": _when(robot.expires) if robot.expires else "never",
                             "last_used": _when(await store.last_used(robot.name))})
            if args.json:
                print(json.dumps(rows, indent=2))
            for row in [] if args.json else rows:
                print(f"{row['name']}\t{' '.join(row['scopes'])}\texpires={row['expires']}"
                      f"\tlast used={row['last_used']}")
        elif what == "revoke":
            if not await store.remove_robot(args.name):
                print(f"registry: no robot {args.name}", file=sys.stderr)
                return 1
            print(f"revoked robot {args.name}")
        return 0

    return _run(load, args, body)


def add_parsers(sub: argparse._SubParsersAction, common: Callable, load: Callable) -> None:
    """The `users` and `tokens` subcommands."""

    def leaf(parent: argparse._SubParsersAction, name: str, text: str) -> argparse.ArgumentParser:
        cmd = parent.add_parser(name, help=text)
        common(cmd)  # --config, --data: the store `registry serve` uses
        return cmd

    u = sub.add_parser("users", help="users of [auth] mode = token (in the store)")
    usub = u.add_subparsers(dest="users_command", required=True)
    for name, text in [("add", "add a user"), ("passwd", "change a user's password"),
                       ("remove", "remove a user and their S3 access keys")]:
        cmd = leaf(usub, name, text)
        cmd.add_argument("name")
        if name != "remove":
            cmd.add_argument("--group", action="append", help="a group (repeatable)")
            cmd.add_argument("--password-stdin", action="store_true",
                             help="read the password from the first line of stdin")
    leaf(usub, "list", "list users")
    h = usub.add_parser("hash", help="print a password hash for [auth] users in a config")
    h.add_argument("--password-stdin", action="store_true")
    keys = usub.add_parser("keys", help="S3 access keys (SigV4) of users")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    leaf(ksub, "create", "create an access key for a user (secret shown once)").add_argument(
        "name")
    leaf(ksub, "list", "list access keys (not their secrets)").add_argument("name", nargs="?")
    leaf(ksub, "revoke", "revoke an access key").add_argument("key_id")
    u.set_defaults(func=lambda a: users_command(load, a))

    t = sub.add_parser("tokens", help="robot tokens for pipelines")
    tsub = t.add_subparsers(dest="tokens_command", required=True)
    tc = leaf(tsub, "create", "create a robot token (printed once)")
    tc.add_argument("--name", required=True, help="the robot's name (its login user name)")
    tc.add_argument("--scope", action="append", required=True,
                    help="repository:PATTERN:ACTIONS, e.g. 'repository:ci/*:push,pull' "
                         "(repeatable)")
    tc.add_argument("--expires", default="90d", help="30d, 12h, ... or never (default 90d)")
    leaf(tsub, "list", "list robots with their last use").add_argument("--json",
                                                                      action="store_true")
    leaf(tsub, "revoke", "revoke a robot: refused everywhere within a second").add_argument(
        "name")
    t.set_defaults(func=lambda a: tokens_command(load, a))
