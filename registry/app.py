"""The application: the dispatcher's table of handlers and the services' lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from registry.api.access import AccessControl
from registry.api.blob_uses import register as register_blob_uses
from registry.api.common import Context
from registry.api.compose_api import register as register_compose_api
from registry.api.dispatch import Dispatcher, Family
from registry.api.families import ApiFamily, MetricsFamily, SpackFamily
from registry.api.health import HealthFamily, Readiness, ReadyFamily
from registry.api.keys_api import KeysFamily
from registry.api.metrics import Metrics
from registry.api.oci import OciFamily
from registry.api.requirements_api import register as register_requirements_api
from registry.api.resolve_api import register as register_resolve_api
from registry.api.s3 import S3Family
from registry.api.s3_buckets import register as register_s3
from registry.api.scan_api import register as register_scan_api
from registry.api.search_api import register as register_search_api
from registry.api.sign_api import register as register_sign_api
from registry.api.signatures_api import register as register_signatures_api
from registry.api.spack_api import register as register_spack_api
from registry.api.spack_views import register as register_spack_views
from registry.api.token import TokenFamily
from registry.api.usage_api import Collector
from registry.api.usage_api import register as register_usage_api
from registry.arch.compat_check import CompatCheck, index_compat
from registry.arch.indexed import describer
from registry.arch.needs import RequirementsService
from registry.arch.resolver import Resolver
from registry.auth.wiring import build_guard
from registry.cache.node import NodeCache
from registry.config import Config, ConfigError, advisories_path
from registry.core import indexing
from registry.core.areas import AuthArea, ScanArea, SpackArea, TrustArea
from registry.core.builds import Builds
from registry.core.cache import Generations
from registry.core.factory import CoreSettings, build_registry
from registry.core.gc import GcWatch, collect, run_periodically
from registry.core.grammar import Digest
from registry.core.health import storage_problem
from registry.core.hooks import Hooks
from registry.core.mounts import Holders
from registry.core.quotas import Quota, quota_decorator
from registry.core.retention import retention_rules
from registry.core.scratch import ScratchSpace
from registry.core.scrub import last_scrub
from registry.core.search import Search
from registry.core.service import Registry
from registry.core.usage import Usage
from registry.index.db import Index
from registry.index.hooks import IndexHooks
from registry.lifecycle import background
from registry.scan import spack_map
from registry.scan.results import ScanResults
from registry.scan.vulns import Vulnerabilities
from registry.scan.worker import Holders as ScanHolders
from registry.scan.worker import ScanFeed
from registry.spack.catalog import SpecCatalog, keep_current
from registry.spack.images import Composer
from registry.spack.layout import INDEX_TAG
from registry.spack.signing import GpgSigner, SigningError
from registry.spack.views import ClassicViews
from registry.spack.wiring import Spack
from registry.storage import create_driver
from registry.storage.driver import Driver, StorageError
from registry.trust.feed import SignatureStates
from registry.trust.keys import KeyStore
from registry.trust.signatures import build_signatures
from registry.trust.signer import listen_host, registry_signer
from registry.trust.wiring import Trust
from registry.ui.family import build as build_ui

log = logging.getLogger("registry")


def build_dispatcher(registry: Registry, config: Config,
                     access: AccessControl | None = None,
                     spack: Spack | None = None,
                     spack_views: ClassicViews | None = None,
                     metrics: Metrics | None = None,
                     ready: Readiness | None = None,
                     usage: Usage | None = None,
                     gc: Collector | None = None,
                     keys: KeyStore | None = None,
                     resolver: Resolver | None = None,
                     builds: Builds | None = None,
                     signatures: SignatureStates | None = None,
                     search: Search | None = None,
                     scans: ScanFeed | None = None) -> Dispatcher:
    """Every protocol family mounted at its prefix, behind one access step."""
    resolver = resolver or Resolver(registry)
    oci = OciFamily()
    s3 = S3Family()
    register_s3(s3)
    spack_family = SpackFamily()
    register_spack_views(spack_family)
    api = ApiFamily()
    register_spack_api(api)
    register_compose_api(api)
    register_usage_api(api)
    register_resolve_api(api)
    register_requirements_api(api)
    register_sign_api(api)
    register_blob_uses(api)
    register_signatures_api(api)
    register_search_api(api)
    register_scan_api(api)
    ui = build_ui()
    families: list[Family] = [oci, spack_family, api, ui, MetricsFamily(), s3,
                              TokenFamily(), HealthFamily(), ReadyFamily(), KeysFamily()]
    ctx = Context(registry, config, {f.name: f.prefix for f in families},
                  spack_views=spack.views if spack is not None else spack_views,
                  specs=spack.catalog if spack is not None else None,
                  metrics=metrics or Metrics(), ready=ready, usage=usage, gc=gc, keys=keys,
                  resolver=resolver, builds=builds,
                  requirements=RequirementsService(
                      resolver, builds.of_manifest if builds is not None else None),
                  signatures=signatures, search=search, scans=scans,
                  composer=Composer(registry, spack.caches) if spack is not None else None)
    ui.context = ctx
    d = Dispatcher(ctx, default=oci, access=access)
    for family in families:
        d.mount(family)
    return d


async def _purge_uploads(reg: Registry, older_than: int) -> None:
    """Delete abandoned upload sessions, checking every hour (or sooner for short ttls)."""
    interval = max(1.0, min(3600.0, older_than / 2))
    while True:
        await asyncio.sleep(interval)
        try:
            purged = await reg.uploads.purge_stale(await reg.catalog.repositories(), older_than)
            purged += await reg.objects.purge_stale_uploads(older_than)
            if purged:
                log.info("purged %d abandoned upload(s)", purged)
        except Exception:  # housekeeping must never stop the server
            log.exception("upload purge failed")


def collection_settings(config: Config) -> dict[str, Any]:
    """What every collection of this config's store applies beyond its grace period
    (the server's, and `registry gc`'s): retention rules, the upload purge."""
    return {"retention": retention_rules(config.gc.retention),
            "uploads_after": config.storage.upload_purge_after}


def _collector(driver: Driver, reg: Registry, config: Config, metrics: Metrics) -> Collector:
    """A collection in this process with the server's settings (its workers' caches
    follow): POST /api/v1/gc, and [gc] interval."""
    async def run(dry_run: bool, grace: float | None) -> dict:
        report = await collect(driver, reg,
                               config.gc.grace if grace is None else grace, dry_run,
                               **collection_settings(config))
        metrics.requests.gc_report(report)
        return dataclasses.asdict(report)

    return run


def _readiness(driver: Driver, index: Index) -> Readiness:
    async def ready() -> list[str]:
        problems = []
        if (problem := await storage_problem(driver)) is not None:
            problems.append(problem)
        try:
            await index.ping()
        except Exception as exc:  # any failure means not ready; say which
            problems.append(f"index: {exc}"[:300])
        return problems

    return ready


async def _signer(config: Config) -> GpgSigner | None:
    if not config.spack.signing_key:
        return None
    try:
        return await asyncio.to_thread(GpgSigner.open, config.spack.signing_key,
                                       config.spack.gnupg_home)
    except SigningError as exc:
        raise ConfigError([f"[spack] signing_key: {exc}"]) from None


def _holders(index: Index) -> Holders:
    """The repositories the index says link a blob: candidates for a mount."""
    async def holders(digest: Digest) -> list[str]:
        return (await index.blob_usage(str(digest))).linked_in
    return holders


def _manifest_holders(index: Index, hooks: IndexHooks) -> ScanHolders:
    """The repositories the index says hold a manifest digest, once every event queued
    so far is applied; None while it is catching up with the store (it may not know)."""
    async def holders(digest: str) -> list[str] | None:
        await hooks.flush()
        if index.dirty:
            return None
        return await index.manifest_holders(digest)
    return holders


def _scratch(driver: Driver) -> str | None:
    """The scratch directory a scan writes an rpm database to; None when the store
    keeps no files on local disk (then the system's temporary directory)."""
    try:
        return ScratchSpace(driver).directory()
    except StorageError:
        return None


def _vulnerabilities(config: Config) -> Vulnerabilities:
    """What matches scan results against the imported advisories ([scan])."""
    try:
        table = spack_map.load(config.scan.spack_map)
    except spack_map.MapError as exc:
        raise ConfigError([f"[scan] spack_map: {exc}"]) from None
    return Vulnerabilities(config.scan.advisories or advisories_path(config), table)


def _trust_reload(trust: Trust | None) -> Callable[[Config], None]:
    """What a SIGHUP does with `[trust] policies`."""
    def reload(config: Config) -> None:
        if trust is not None:
            trust.reload_soon(config.trust)
        elif config.trust.policies:
            log.error("SIGHUP: [trust] policies were added to a server started without "
                      "any: restart it to apply them")

    return reload


@contextlib.asynccontextmanager
async def running(config: Config, hooks: Hooks | None = None,
                  generations: Generations | None = None) -> AsyncIterator[Dispatcher]:
    """The registry's services started, with the dispatcher whose `handle` serves
    requests (give it to aiohttp's low-level `web.Server`); stopped on exit.
    `generations` are the write counters shared by worker processes (see core.cache);
    None for a single process."""
    # Image-compatibility artifacts are checked at push (registry/arch/compat_check.py).
    settings = dataclasses.replace(CoreSettings.from_config(config),
                                   artifact_check=CompatCheck())
    # First: a key that cannot sign stops the start before anything is opened.
    signer = None if config.cache.enabled else await _signer(config)
    # Other machines write to the same store: no exact cache invalidation, and the
    # index must catch up with their writes.
    shared_store = settings.shared_store
    storage = config.storage
    if config.cache.enabled:
        # A node cache's store is its cache directory, on local disk (see config).
        storage = dataclasses.replace(storage, driver="filesystem", root=config.cache.dir)
    driver = create_driver(storage)
    clean = getattr(driver, "clean_tmp", None)
    if clean is not None:  # scratch files a crash left behind
        await asyncio.to_thread(clean)
    guard = await build_guard(config.auth, AuthArea(driver), config.server.trusted_proxies) \
        if config.auth.mode == "token" else None
    index = Index(config.index.path, describer)
    await index.open()
    index_hooks = IndexHooks(index, pull_flush_seconds=config.index.pull_flush_seconds)
    generations = generations or Generations()
    node_cache = None
    if config.cache.enabled:
        node_cache = NodeCache(config.cache, ScratchSpace(driver),
                               config.limits.manifest_max_bytes, storage.fsync,
                               hooks or index_hooks)
    # A node cache serves what its upstream holds; its spack views come with it.
    spack = None
    signatures = None
    if node_cache is None:
        spack = Spack(SpackArea(driver), SpecCatalog(index, index_hooks), signer)
        try:  # verification wraps core's hooks: it learns of signatures pushed
            signatures = await build_signatures(TrustArea(driver), config.trust,
                                                hooks or index_hooks, index, index_hooks)
        except ValueError as exc:
            raise ConfigError([str(exc)]) from None
    try:
        # While a garbage collection runs, blobs found to exist are marked (core/gc.py).
        watch = None if node_cache else GcWatch(driver)
        settings = dataclasses.replace(settings, gc_watch=watch, holders=_holders(index))
        if spack is not None:  # Spack's blob keys are content-addressed objects
            settings = dataclasses.replace(settings, object_keys=spack.object_keys)
        decorators: list[Callable[[Registry], Registry]] = (
            [node_cache.decorate] if node_cache else [spack.decorate] if spack else [])
        if config.limits.quotas and node_cache is None:
            quotas = [Quota.parse(q) for q in config.limits.quotas]
            decorators.append(quota_decorator(quotas, index.unique_bytes))
        below = signatures.feed if signatures else hooks or index_hooks
        # The scanner learns of every manifest put (a Spack build pushed over S3 or
        # imported is stored as the image spack would have pushed, and comes this way).
        # Its results' summaries go to the index through its queued hooks.
        scans = None if node_cache else ScanFeed(below, ScanResults(ScanArea(driver).results()),
                                                 scratch=_scratch(driver),
                                                 vulns=_vulnerabilities(config),
                                                 sink=index_hooks.scan_event,
                                                 holders=_manifest_holders(index, index_hooks))
        trust = None
        if config.trust.policies and signatures is not None:
            # Last, so outermost: every family's reads of a repository pass the policy.
            trust = Trust(config.trust, TrustArea(driver), signatures.verifier.judge,
                          registry_signer(signatures.keys, listen_host(config.server.listen)),
                          audit=guard.audit.write if guard and guard.audit else None,
                          # Spack's server-kept index: a list, not a binary (security.md)
                          made_tags=frozenset({INDEX_TAG}) if spack else frozenset(),
                          scans=scans.findings if scans else None)
            decorators.append(trust.decorate)
        reg = build_registry(driver, scans or below, settings, generations,
                             decorators=decorators)
        if scans is not None:  # below any policy guard, without the request path's caches
            # It writes the SBOM and report referrers as a push would: through `reg`.
            scans.attach(build_registry(driver, settings=CoreSettings(shared_store=True)),
                         writer=reg if config.scan.referrers else None)
        if signatures is not None:
            # Off the request path it reads the truth through services without caches,
            # as the catch-up does: it must not fill the request path's caches (which
            # a writer in another process, `registry sign`, would leave stale).
            signatures.feed.attach(build_registry(driver,
                                                  settings=CoreSettings(shared_store=True)))
        async with contextlib.AsyncExitStack() as stack:
            if node_cache is not None:
                await stack.enter_async_context(node_cache)
            if config.storage.upload_purge_after > 0:
                await stack.enter_async_context(background(
                    _purge_uploads(reg, config.storage.upload_purge_after)))
            index_hooks.start()
            metrics = Metrics(node_cache.counter_values if node_cache else None,
                              (lambda: node_cache.lru.total) if node_cache else None,
                              lambda: index_hooks.queued, getattr(driver, "stats", None),
                              lambda: last_scrub(driver))
            await stack.enter_async_context(background(metrics.run()))
            gc = None
            if watch is not None:
                await stack.enter_async_context(background(watch.run()))
                gc = _collector(driver, reg, config, metrics)
                if config.gc.interval:
                    await stack.enter_async_context(background(run_periodically(
                        config.gc.interval, lambda: gc(False, None))))
            # Catch-up passes: after a crash (dirty index) and, on a shared store,
            # every sync_interval for the other replicas' writes. They read the store
            # through services without caches: they want the truth, and must not
            # fill (or be served by) the request path's caches.
            uncached = build_registry(driver, settings=CoreSettings(
                shared_store=True, artifact_check=settings.artifact_check))
            await stack.enter_async_context(background(indexing.keep_current(
                uncached, index, index_hooks, config.index.sync_interval if shared_store else 0,
                rooms=(scans.sync_index,) if scans else ())))
            if spack is not None and spack.catalog is not None:
                await stack.enter_async_context(background(
                    keep_current(spack.caches, spack.catalog)))
            if scans is not None:
                await stack.enter_async_context(background(scans.run()))
            if trust is not None:
                await trust.applied("start")
                for task in trust.tasks():
                    await stack.enter_async_context(background(task))
            dispatcher = build_dispatcher(reg, config, access=guard, spack=spack,
                                          spack_views=node_cache.spack if node_cache else None,
                                          metrics=metrics, ready=_readiness(driver, index),
                                          usage=None if node_cache else Usage(index), gc=gc,
                                          keys=signatures.keys if signatures else None,
                                          builds=None if node_cache else Builds(index),
                                          search=None if node_cache else Search(index),
                                          # image-compatibility artifacts must hold too;
                                          # a cache's are upstream (cache/compat.py)
                                          resolver=Resolver(reg, node_cache.compat
                                                            if node_cache else
                                                            index_compat(index)),
                                          signatures=signatures.states if signatures else None,
                                          scans=scans)
            dispatcher.reloads.append(_trust_reload(trust))
            dispatcher.callers = trust is not None  # the policy exempts pushers
            yield dispatcher
    finally:
        if guard is not None and guard.audit is not None:
            guard.audit.close()
        if signatures is not None:
            await signatures.feed.close()
        await index_hooks.close()  # drain the queue and the pull counts first
        await driver.close()
        await index.close()
