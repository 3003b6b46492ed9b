"""The aiohttp application: routes, middleware and the services' lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from registry.api import blobs, discovery, manifests, uploads
from registry.api.common import CONFIG, REGISTRY
from registry.api.errors import API_VERSION_HEADER, error_middleware
from registry.api.routes import Dispatcher, Endpoint
from registry.config import Config
from registry.core.cache import Generation
from registry.core.hooks import Hooks
from registry.core.service import Registry
from registry.index.db import Index, IndexHooks
from registry.index.sync import index_sync_ctx
from registry.storage import create_driver

log = logging.getLogger("registry")

INDEX = web.AppKey("index", Index)


def build_dispatcher() -> Dispatcher:
    d = Dispatcher()
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


async def _add_api_version(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault(*API_VERSION_HEADER)


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


def create_app(config: Config, hooks: Hooks | None = None,
               generation: Generation | None = None) -> web.Application:
    """The registry as an aiohttp application. `generation` is the write counter
    shared by worker processes (see core.cache); None for a single process."""
    app = web.Application(middlewares=[error_middleware], client_max_size=1 << 20)
    app[CONFIG] = config
    dispatcher = build_dispatcher()
    app.router.add_route("*", "/v2", dispatcher.handle)
    # [\s\S]: a decoded CR or LF in the path must still reach the dispatcher,
    # which refuses it with the right error code.
    app.router.add_route("*", r"/v2/{tail:[\s\S]*}", dispatcher.handle)
    app.on_response_prepare.append(_add_api_version)
    # Other machines write to the same store: no exact cache invalidation, and the
    # index must catch up with their writes.
    shared_store = config.storage.driver != "filesystem"

    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        driver = create_driver(config.storage)
        clean = getattr(driver, "clean_tmp", None)
        if clean is not None:  # scratch files a crash left behind
            await asyncio.to_thread(clean)
        index = Index(config.index.path)
        await index.open()
        app[INDEX] = index
        app[REGISTRY] = Registry.create(
            driver, hooks or IndexHooks(index),
            auto_mount=config.storage.auto_mount,
            manifest_max_bytes=config.limits.manifest_max_bytes,
            generation=generation,
            shared_store=shared_store,
            tag_cache_seconds=config.storage.tag_cache_ms / 1000,
        )
        purger = None
        if config.storage.upload_purge_after > 0:
            purger = asyncio.create_task(_purge_uploads(app[REGISTRY],
                                                        config.storage.upload_purge_after))
        yield
        if purger is not None:
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
        await driver.close()
        await index.close()

    app.cleanup_ctx.append(services_ctx)
    app.cleanup_ctx.append(index_sync_ctx(REGISTRY, INDEX, config.index.sync_interval,
                                          enabled=shared_store))
    return app
