"""`registry keys ...` and `registry sign REF --key NAME`: the trust room's keys and signatures,
from the command line. They take the same `--config`/`--data` as `registry serve`
and work while it runs (they write through the store, as the server does)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from registry.config import Config
from registry.trust.keys import MAX_PEM, KeyProblem, KeyStore, check_name

if TYPE_CHECKING:
    from registry.index.db import Index
    from registry.storage.driver import Driver


# cli._store: the configured store and the index, open (for the offline commands).
Store = Callable[[Config], contextlib.AbstractAsyncContextManager[tuple["Driver", "Index"]]]


@contextlib.asynccontextmanager
async def _key_store(driver: Driver) -> AsyncIterator[KeyStore]:
    from registry.core.areas import TrustArea

    try:
        yield KeyStore(TrustArea(driver))
    finally:
        await driver.close()


def read_passphrase(path: str | None) -> bytes | None:
    """The first line of the passphrase file (`-`: standard input); None without one."""
    if path is None:
        return None
    if path == "-":
        raw = sys.stdin.buffer.readline()
    else:
        try:
            raw = Path(path).read_bytes()[:4096]
        except OSError as exc:
            raise KeyProblem(f"--passphrase-file: {exc.strerror}: {path}") from None
    passphrase = raw.splitlines()[0] if raw.strip() else b""
    if not passphrase:
        raise KeyProblem(f"--passphrase-file {path}: empty passphrase")
    return passphrase


def _read_pem(name: str, path: str) -> bytes:
    check_name(name)  # before the file: a bad name is the first thing to hear of
    try:
        with open(path, "rb") as fh:
            return fh.read(MAX_PEM + 1)
    except OSError as exc:
        raise KeyProblem(f"{path}: {exc.strerror}") from None


def keys_command(load: Callable[[argparse.Namespace], Config],
                 args: argparse.Namespace) -> int:
    config = load(args)
    what = args.keys_command
    try:
        passphrase = read_passphrase(getattr(args, "passphrase_file", None))
        pem = _read_pem(args.name, args.file) if what == "import" else b""
    except KeyProblem as exc:
        print(f"registry: {exc}", file=sys.stderr)
        return 2

    from registry.storage import create_driver

    driver = create_driver(config.storage)  # before the loop: it resolves paths

    async def run() -> int:
        async with _key_store(driver) as store:
            if what == "generate":
                key = await store.generate(args.name, passphrase)
                print(f"generated key {key.name} (ECDSA P-256, fingerprint "
                      f"{key.fingerprint}); its public half:")
                sys.stdout.write(key.public_pem.decode())
            elif what == "import":
                key = await store.import_public(args.name, pem)
                print(f"imported public key {key.name} (fingerprint {key.fingerprint}): "
                      "signatures by it verify; the registry cannot sign with it")
            elif what == "list":
                for key in await store.list():
                    print(f"{key.name}\tecdsa-p256\t"
                          f"{'private+public' if key.has_private else 'public only'}\t"
                          f"sha256:{key.fingerprint}")
            elif what == "remove":
                if not await store.remove(args.name):
                    print(f"registry: no key {args.name}", file=sys.stderr)
                    return 1
                print(f"removed key {args.name}")
            return 0

    try:
        return asyncio.run(run())
    except KeyProblem as exc:
        print(f"registry: {exc}", file=sys.stderr)
        return 2


def parse_ref(ref: str) -> tuple[str, str]:
    """(repository, reference) of `name:tag`, `name@digest` or `name` (tag latest)."""
    if "@" in ref:
        name, _, reference = ref.partition("@")
        return name, reference
    name, sep, tag = ref.rpartition(":")
    if sep and "/" not in tag:
        return name, tag
    return ref, "latest"


def sign_command(load: Callable[[argparse.Namespace], Config], store: Store,
                 args: argparse.Namespace) -> int:
    from registry.core.errors import RegistryError
    from registry.trust.signer import (
        FORMATS,
        check_formats,
        listen_host,
        resolve,
        sign_manifest,
    )

    config = load(args)
    repo, reference = parse_ref(args.ref)
    try:
        passphrase = read_passphrase(args.passphrase_file)
        formats = check_formats(args.format or FORMATS)
    except (KeyProblem, RegistryError) as exc:
        print(f"registry: {exc}", file=sys.stderr)
        return 2

    async def run() -> dict[str, object]:
        from registry.core.areas import TrustArea
        from registry.core.factory import CoreSettings, build_registry
        from registry.core.grammar import validate_name
        from registry.index.hooks import IndexHooks

        validate_name(repo)
        async with store(config) as (driver, index):
            # The server's index learns of the signatures as it would of a push.
            hooks = IndexHooks(index)
            hooks.start()
            try:
                reg = build_registry(driver, hooks, CoreSettings.from_config(config))
                signer = await KeyStore(TrustArea(driver)).signer(args.key, passphrase)
                target = await resolve(reg, repo, reference)
                host = args.host or listen_host(config.server.listen)
                signed = await sign_manifest(reg, repo, target.digest, signer, host, formats)
                return signed.to_json()
            finally:
                await hooks.close()

    try:
        done = asyncio.run(run())
    except (KeyProblem, RegistryError) as exc:
        detail = getattr(exc, "detail", None)
        print(f"registry: {exc}{f' {detail}' if detail else ''}", file=sys.stderr)
        return 2 if isinstance(exc, KeyProblem) else 1
    if args.json:
        print(json.dumps(done, indent=2))
    else:
        print(f"signed {repo}@{done['digest']} with key {done['key']}")
        for made in done["signatures"]:  # type: ignore[attr-defined]
            where = f"tag {made['tag']}" if made["tag"] else "referrer"
            print(f"  {made['format']}: {where} {made['digest']}")
    return 0


def add_parsers(sub: argparse._SubParsersAction, common: Callable, load: Callable,
                store: Store) -> None:
    """The `keys` subcommands and `sign`."""
    k = sub.add_parser("keys", help="signing keys (ECDSA P-256, kept in the store)")
    ksub = k.add_subparsers(dest="keys_command", required=True)

    def leaf(name: str, text: str) -> argparse.ArgumentParser:
        cmd = ksub.add_parser(name, help=text)
        common(cmd)
        return cmd

    gen = leaf("generate", "make a key pair the registry signs with")
    gen.add_argument("name")
    gen.add_argument("--passphrase-file", metavar="FILE",
                     help="encrypt the private half with the first line of FILE (- : stdin)")
    imp = leaf("import", "trust a public key whose private half lives elsewhere "
                         "(a CI system's cosign.pub)")
    imp.add_argument("name")
    imp.add_argument("file", help="the PEM public key (ECDSA P-256)")
    leaf("list", "list keys: name, algorithm, halves held, fingerprint")
    leaf("remove", "forget a key (signatures by it no longer verify)").add_argument("name")
    k.set_defaults(func=lambda a: keys_command(load, a))

    s = sub.add_parser("sign", help="sign a manifest with a registry key (cosign's .sig tag "
                                    "and referrer, and a sigstore bundle referrer)")
    common(s)
    s.add_argument("ref", help="REPO:TAG or REPO@DIGEST (an index is signed as itself)")
    s.add_argument("--key", required=True, help="the key's name (registry keys list)")
    s.add_argument("--passphrase-file", metavar="FILE",
                   help="the key's passphrase: first line of FILE (- : stdin)")
    s.add_argument("--format", action="append", choices=["cosign", "bundle"],
                   help="only this format (repeatable; default both)")
    s.add_argument("--host", help="the registry's name as clients pull from it, for the "
                                  "payload's docker-reference (default: [server] listen)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=lambda a: sign_command(load, store, a))
