"""`registry verify REF [--key pub.pem ...]`: every signature of a manifest, checked as the
server checks them (registry/trust/verify.py), read from the configured store.

Prints one line per signature: format, identity, valid or invalid and why. Exits 0
only when at least one signature is valid and vouched for by a key given with
`--key` (or, without `--key`, by a key of the registry's key store or a certificate
of `[trust] notation_certs`); 1 otherwise; 2 when the command cannot run."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path

from registry.config import Config
from registry.trust.checks import SignatureCheck, TrustedKey, load_public_key


def _keys(paths: list[str]) -> tuple[TrustedKey, ...]:
    keys = []
    for path in paths:
        p = Path(path)
        keys.append(load_public_key(p.read_bytes()[:1 << 16], p.stem))
    return tuple(keys)


def verify_command(load: Callable[[argparse.Namespace], Config], args: argparse.Namespace
                   ) -> int:
    from registry.cli_trust import parse_ref
    from registry.core.errors import RegistryError
    from registry.trust.material import key_source, load_trust_store

    config = load(args)
    repo, reference = parse_ref(args.ref)
    try:
        given = _keys(args.key or [])
        store = load_trust_store(config.trust.notation_certs)
    except (OSError, ValueError) as exc:
        print(f"registry: {exc}", file=sys.stderr)
        return 2

    from registry.storage import create_driver

    driver = create_driver(config.storage)  # before the loop: it resolves paths

    async def run() -> tuple[str, tuple[SignatureCheck, ...], set[str]]:
        from registry.core.areas import TrustArea
        from registry.core.factory import CoreSettings, build_registry
        from registry.core.grammar import validate_name
        from registry.core.hooks import NullHooks
        from registry.trust.keys import KeyStore
        from registry.trust.verify import TrustMaterial, verify

        validate_name(repo)
        try:
            reg = build_registry(driver, NullHooks(), CoreSettings(shared_store=True))
            digest = await reg.tags.resolve(repo, reference)
            if not await reg.manifests.exists(repo, digest):
                from registry.core.errors import ManifestUnknown

                raise ManifestUnknown(detail={"name": repo, "reference": reference})
            if given:
                material = TrustMaterial(given, store)
                accepted = {k.name for k in given}
            else:
                material = await key_source(KeyStore(TrustArea(driver)), store)()
                accepted = {k.name for k in material.keys} | {n for n, _ in store}
            checks = tuple(await verify(reg, repo, digest, material))
            return str(digest), checks, accepted
        finally:
            await driver.close()

    try:
        digest, checks, accepted = asyncio.run(run())
    except RegistryError as exc:
        detail = getattr(exc, "detail", None)
        print(f"registry: {exc}{f' {detail}' if detail else ''}", file=sys.stderr)
        return 2
    ok = any(c.valid and c.key in accepted for c in checks)
    if args.json:
        print(json.dumps({"name": repo, "digest": digest, "verified": ok,
                          "signatures": [c.to_json() for c in checks]}, indent=2))
    else:
        print(f"{repo}@{digest}: {len(checks) or 'no'} signature(s)")
        for c in checks:
            verdict = "valid" if c.valid else f"invalid: {c.reason}"
            detail = f" ({c.detail})" if c.detail else ""
            print(f"  {c.format:16} {c.identity or '-':40} {verdict}{detail}")
        print("verified" if ok else "NOT verified: no valid signature by a trusted key")
    return 0 if ok else 1


def add_parsers(sub: argparse._SubParsersAction, common: Callable,
                load: Callable[[argparse.Namespace], Config]) -> None:
    """`verify`."""
    v = sub.add_parser("verify", help="check a manifest's signatures (cosign, sigstore "
                                      "bundles, Notation); exit 0 if one is valid")
    common(v)
    v.add_argument("ref", help="REPO:TAG or REPO@DIGEST")
    v.add_argument("--key", action="append", metavar="PUB.pem",
                   help="trust this public key (repeatable; named after the file); "
                        "default: the registry's keys and [trust] notation_certs")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=lambda a: verify_command(load, a))
