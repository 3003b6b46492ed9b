"""The application: the dispatcher's table of handlers and the services' lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from registry.api import blobs, discovery, manifests, uploads
from registry.api.common import Context
from registry.api.routes import Dispatcher, Endpoint
from registry.config import Config
from registry.core.cache import Generation
from registry.core.hooks import Hooks
from registry.core.service import Registry
from registry.index import sync
from registry.index.db import Index, IndexHooks
from registry.lifecycle import background
from registry.storage import create_driver

log = logging.getLogger("registry")


def build_dispatcher(ctx: Context) -> Dispatcher:
    d = Dispatcher(ctx)
    d.add(Endpoint.BASE, "GET", discovery.base)
    d.add(Endpoint.BASE, "HEAD", discovery.base)
    d.add(Endpoint.CATALOG, "GET", discovery.catalog)
    d.add(Endpoint.TAGS, "GET", discovery.tags_list)
    d.add(Endpoint.REFERRERS, "GET", discovery.referrers)
    for method in ("GET", "HEAD"):
        d.add(Endpoint.MANIFEST, method, manifests.get_manifest)
        d.add(Endpoint.BLOB, method, blobs.get_blob)
    d.add(Endpoint.MANIFEST, "PUT", manifests.put_manifest)
    d.add(Endpoint.MANIFEST, "DELETE", manifests.delete_manifest)
    d.add(Endpoint.BLOB, "DELETE", blobs.delete_blob)
    d.add(Endpoint.UPLOADS, "POST", uploads.start_upload)
    d.add(Endpoint.UPLOAD, "PATCH", uploads.patch_upload)
    d.add(Endpoint.UPLOAD, "PUT", uploads.put_upload)
    d.add(Endpoint.UPLOAD, "GET", uploads.get_upload)
    d.add(Endpoint.UPLOAD, "DELETE", uploads.cancel_upload)
    return d


async def _purge_uploads(reg: Registry, older_than: int) -> None:
    """Delete abandoned upload sessions, checking every hour (or sooner for short ttls)."""
    interval = max(1.0, min(3600.0, older_than / 2))
    while True:
        await asyncio.sleep(interval)
        try:
            purged = await reg.uploads.purge_stale(await reg.catalog.repositories(), older_than)
            if purged:
                log.info("purged %d abandoned upload(s)", purged)
        except Exception:  # housekeeping must never stop the server
            log.exception("upload purge failed")


@contextlib.asynccontextmanager
async def running(config: Config, hooks: Hooks | None = None,
                  generation: Generation | None = None) -> AsyncIterator[Dispatcher]:
    """The registry's services started, with the dispatcher whose `handle` serves
    requests (give it to aiohttp's low-level `web.Server`); stopped on exit.
    `generation` is the write counter shared by worker processes (see core.cache);
    None for a single process."""
    # Other machines write to the same store: no exact cache invalidation, and the
    # index must catch up with their writes.
    shared_store = config.storage.driver != "filesystem"
    driver = create_driver(config.storage)
    clean = getattr(driver, "clean_tmp", None)
    if clean is not None:  # scratch files a crash left behind
        await asyncio.to_thread(clean)
    index = Index(config.index.path)
    await index.open()
    try:
        reg = Registry.create(
            driver, hooks or IndexHooks(index),
            auto_mount=config.storage.auto_mount,
            manifest_max_bytes=config.limits.manifest_max_bytes,
            generation=generation,
            shared_store=shared_store,
            tag_cache_seconds=config.storage.tag_cache_ms / 1000,
        )
        async with contextlib.AsyncExitStack() as stack:
            if config.storage.upload_purge_after > 0:
                await stack.enter_async_context(background(
                    _purge_uploads(reg, config.storage.upload_purge_after)))
            if shared_store and config.index.sync_interval > 0:
                await stack.enter_async_context(background(
                    sync.run(reg, index, config.index.sync_interval)))
            yield build_dispatcher(Context(reg, config))
    finally:
        await driver.close()
        await index.close()
