"""Helpers for the policy tests: an in-process registry (tests/appthread.py) on the
filesystem driver with `[trust] policies`, its key store holding the test's public keys."""

from __future__ import annotations

import asyncio
from pathlib import Path

from appthread import AppRegistry, start_app
from pushing import push_blob, put_manifest
from signers import Doc, ec_key, pem

from registry.config import StorageConfig, load
from registry.core.areas import TrustArea
from registry.storage import create_driver
from registry.trust.keys import KeyStore

POLICIES = ["prod/* require=site", "hpc/* require=site quarantine", "ci/* sign=regkey",
            "signed/* require=regkey sign=regkey quarantine"]
SITE, OTHER = ec_key(), ec_key()


def _import_keys(root: Path, keys: dict) -> None:
    driver = create_driver(StorageConfig(driver="filesystem", root=str(root)))

    async def run() -> None:
        store = KeyStore(TrustArea(driver))
        for name, key in keys.items():
            await store.import_public(name, pem(key))
        await store.generate("regkey")  # the registry's own, for sign=
        await driver.close()
    asyncio.run(run())


def start(tmp: Path, policies: list[str], toml: dict | None = None) -> AppRegistry:
    root = tmp / "data" / "storage"
    _import_keys(root, {"site": SITE, "other": OTHER})
    overrides = {"storage": {"driver": "filesystem", "root": str(root)},
                 "index": {"path": str(tmp / "data" / "index.sqlite")},
                 "trust": {"policies": policies}, **(toml or {})}
    return start_app(load(env={}, overrides=overrides), "filesystem", tmp / "data")


def push_doc(reg, repo: str, doc: Doc) -> str:
    for blob in doc.blobs:
        push_blob(reg, repo, blob)
    return put_manifest(reg, repo, doc.tag or doc.digest, doc.manifest)
