"""The host the current request named for itself (the `Registry-Host` header).

Set by the OCI path for the request it serves (a ContextVar: per request task), so a
decorator that would otherwise resolve for a host of its own (the node cache's
host-aware mode, registry/cache/hostaware.py) leaves such a request to the client's
host: a client that says what it runs on gets what it asked for.
"""

from __future__ import annotations

from contextvars import ContextVar

from registry.arch.host import Host

client_host: ContextVar[Host | None] = ContextVar("client_host", default=None)
