"""The policy assembled from `[trust]`: the decorators `registry serve` puts around
core's services, the background tasks, and the reload on SIGHUP (audited)."""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import json
import logging
import os
from collections.abc import Coroutine
from typing import Any, Protocol

from registry.config import ConfigError, TrustConfig
from registry.core.areas import TrustArea
from registry.core.service import Registry
from registry.trust.blocking import ScanVerdicts
from registry.trust.guard import PolicyBlobs, PolicyGuard, PolicyManifests
from registry.trust.object_guard import PolicyObjects
from registry.trust.policy import Policies, parse_policies
from registry.trust.quarantine import Held, QuarantineManifests
from registry.trust.seams import Judge, ScanLookup, Signer
from registry.trust.signing import SigningManifests, SigningQueue, scan_gate

log = logging.getLogger("registry.trust")


class AuditWrite(Protocol):
    """The audit log's `write` (registry.auth.audit.AuditLog)."""

    def __call__(self, event: str, **fields: object) -> None: ...


class Trust:
    """`[trust] policies` in force: `decorate` is the factory decorator (the guard
    outermost, so every family's reads pass it), `tasks` the work off the request
    path, `reload` applies new rules. `made_tags` are tags whose manifest the
    registry renders itself (Spack's `index.spack`), served as they are."""

    def __init__(self, config: TrustConfig, area: TrustArea, judge: Judge,
                 signer: Signer | None = None, audit: AuditWrite | None = None,
                 made_tags: frozenset[str] = frozenset(),
                 scans: ScanLookup | None = None) -> None:
        self.guard = PolicyGuard(parse_policies(config), judge, made_tags,
                                 ScanVerdicts(scans) if scans is not None else None)
        self.area = area
        self.audit = audit
        self.held = Held(area.held(), self.guard)
        self.guard.on_signature.append(self.held.release)
        self._reloading: set[asyncio.Task[bool]] = set()
        self.signing = SigningQueue(signer, self.guard) if signer is not None else None
        if self.signing is not None and self.guard.scans is not None:
            # sign= with block=: signed only once the scan passes (blocking.py)
            self.signing.gates.append(scan_gate(self.guard))
        if self.signing is None and any(p.sign for p in self.guard.policies.rules):
            log.warning("[trust] policies name sign= keys, but no signer is wired: "
                        "pushes there are not signed")

    @property
    def policies(self) -> Policies:
        return self.guard.policies

    def decorate(self, registry: Registry) -> Registry:
        self.guard.services = registry  # the judge and the release read below the guard
        manifests = registry.manifests
        if self.signing is not None:
            manifests = SigningManifests(manifests, self.signing)
        manifests = PolicyManifests(QuarantineManifests(manifests, self.held), self.guard)
        return dataclasses.replace(registry, manifests=manifests,
                                   blobs=PolicyBlobs(registry.blobs, self.guard),
                                   objects=PolicyObjects(registry.objects, self.guard))

    def tasks(self) -> list[Coroutine[Any, Any, None]]:
        out = [self.held.run()]
        if self.signing is not None:
            out.append(self.signing.run())
        return out

    async def applied(self, how: str, source: str = "") -> None:
        """Record the rules in force in the store, and in the audit log when they
        differ from what was applied last (at start-up: by the previous run)."""
        new = self.policies.texts()
        raw = await self.area.policies().read("current", 1 << 20)
        try:
            old = json.loads(raw) if raw else []
        except ValueError:
            old = None
        if old == new:
            return
        if self.audit is not None:
            self.audit("policy_changed", how=how, old=old, new=new, config=source or None,
                       by=_operator(), pid=os.getpid())
        await self.area.policies().write("current", json.dumps(new).encode())
        log.info("trust policies (%s): %s", how, "; ".join(new) or "none")

    async def reload(self, config: TrustConfig, source: str = "") -> bool:
        """New rules from a reloaded config (SIGHUP); False, keeping the old ones,
        when they do not parse."""
        try:
            policies = parse_policies(config)
        except ConfigError as exc:
            log.error("SIGHUP: [trust] policies have problems, keeping the old ones: %s", exc)
            return False
        self.guard.policies = policies
        self.guard.forget()
        await self.applied("reload", source)
        return True

    def reload_soon(self, config: TrustConfig, source: str = "") -> None:
        """`reload` from a signal handler (which cannot await)."""
        task = asyncio.get_running_loop().create_task(self.reload(config, source))
        self._reloading.add(task)
        task.add_done_callback(self._reloading.discard)


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid
        return str(os.getuid())
