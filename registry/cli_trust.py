"""`registry keys ...` and `registry sign`: the trust room's keys and signatures,
from the command line. They take the same `--config`/`--data` as `registry serve`
and work while it runs (they write through the store, as the server does)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from registry.config import Config
from registry.trust.keys import MAX_PEM, KeyProblem, KeyStore, check_name


@contextlib.asynccontextmanager
async def _key_store(config: Config) -> AsyncIterator[KeyStore]:
    from registry.core.areas import TrustArea
    from registry.storage import create_driver

    driver = create_driver(config.storage)
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

    async def run() -> int:
        async with _key_store(config) as store:
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


def add_parsers(sub: argparse._SubParsersAction, common: Callable, load: Callable) -> None:
    """The `keys` subcommands."""
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
