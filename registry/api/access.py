"""The access step: one decision per request, before any handler runs.

The dispatcher asks the access control whether the request may do what its route
says (`Scope`), after routing and before `100 Continue` is sent, so a refused
client never uploads its body. While auth is off everything is allowed (`AllowAll`,
and the dispatcher skips the call altogether); registry.auth plugs token, Basic
and SigV4 checks in here without touching any handler. The few handlers whose
answer depends on who asks (the catalog, mounts, listings) ask `allowed`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Protocol

from aiohttp import web

from registry.core.access import ADMIN, DELETE, PULL, PUSH, Scope, action_of

__all__ = ["ADMIN", "DELETE", "PULL", "PUSH", "AccessControl", "AllowAll", "Scope",
           "action_of"]


class AccessControl(Protocol):
    """Decides whether a request may proceed; raises a domain error (401, 403,
    429) to refuse. Must not read the request body."""

    async def check(self, request: web.BaseRequest, scope: Scope) -> None: ...

    def allowed(self, request: web.BaseRequest, scope: Scope) -> bool:
        """Whether the caller `check` let through may also do `scope` (another
        repository's pull, for a mount or a listing)."""
        ...

    def puller(self, request: web.BaseRequest) -> Callable[[str], bool]:
        """Whether the caller may pull a repository or cache, by name: what `allowed`
        answers for `Scope(family, name, PULL)`, for the many names of a listing."""
        ...

    def rights_key(self, request: web.BaseRequest) -> Hashable | None:
        """A value equal for two requests only when `allowed` answers them alike for
        every scope (who the caller is and the rules' generation), so what was worked
        out from those answers can be kept under it; None: nothing may be kept."""
        ...

    def done(self, request: web.BaseRequest, scope: Scope, status: int) -> None:
        """The request was answered with `status` (for the audit log)."""
        ...

    def owner(self, request: web.BaseRequest) -> str | None:
        """Who the caller `check` let through is, as the owner of what they open (an
        upload session); None when anyone may use what anyone opened."""
        ...


class AllowAll:
    """The access control while auth is off: every request proceeds."""

    async def check(self, request: web.BaseRequest, scope: Scope) -> None:
        return None

    def allowed(self, request: web.BaseRequest, scope: Scope) -> bool:
        return True

    def puller(self, request: web.BaseRequest) -> Callable[[str], bool]:
        return lambda name: True

    def rights_key(self, request: web.BaseRequest) -> Hashable | None:
        return None

    def done(self, request: web.BaseRequest, scope: Scope, status: int) -> None:
        return None

    def owner(self, request: web.BaseRequest) -> str | None:
        return None
