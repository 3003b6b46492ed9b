"""Verification as the server builds it: the key store, the verifier over it and
Notation's trust store, and the feed that keeps the index's signature state (the
policy that uses the verifier is registry/trust/wiring.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from registry.config import TrustConfig
from registry.core.areas import TrustArea
from registry.core.hooks import Hooks
from registry.index.db import Index
from registry.index.hooks import IndexHooks
from registry.trust.feed import SignatureFeed, SignatureStates
from registry.trust.keys import KeyStore
from registry.trust.material import key_source, load_trust_store
from registry.trust.verify import Verifier


@dataclass
class Signatures:
    """What the server wires of verification: `feed` wraps core's hooks (give it to
    the factory, then `feed.attach(registry)`), `verifier.judge` answers policies,
    `states` the signatures API."""

    keys: KeyStore
    verifier: Verifier
    feed: SignatureFeed
    states: SignatureStates


async def build_signatures(area: TrustArea, config: TrustConfig, hooks: Hooks, index: Index,
                           index_hooks: IndexHooks) -> Signatures:
    """Verification over the keys of `area`; ValueError if a `[trust] notation_certs` file cannot
    be read."""
    store = await asyncio.to_thread(load_trust_store, config.notation_certs)
    keys = KeyStore(area)
    verifier = Verifier(key_source(keys, store))
    async def signed_by(repo: str, signature: str) -> list[str]:
        if index_hooks.queued:  # the rows naming it may still be queued
            await index_hooks.flush()
        return await index.signed_by(repo, signature)

    feed = SignatureFeed(hooks, verifier, index_hooks.signature_event, signed_by)
    return Signatures(keys, verifier, feed, SignatureStates(feed, index, index_hooks))
