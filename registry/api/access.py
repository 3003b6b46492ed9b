"""The access step: one decision per request, before any handler runs.

The dispatcher asks the access control whether the request may do what its route
says (`Scope`), after routing and before `100 Continue` is sent, so a refused
client never uploads its body. Today everything is allowed; the auth stage
plugs token, Basic and SigV4 checks in here without touching any handler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Scope:
    """What a request wants to do: `action` on `resource` of protocol `family`.

    `resource` is a repository or cache name, or "" for the registry as a whole
    (the catalog, the API root); `action` is one of pull, push, delete, admin."""

    family: str
    resource: str
    action: str


PULL, PUSH, DELETE, ADMIN = "pull", "push", "delete", "admin"

_METHOD_ACTIONS = {"GET": PULL, "HEAD": PULL, "OPTIONS": PULL, "PUT": PUSH, "POST": PUSH,
                   "PATCH": PUSH, "DELETE": DELETE}


def action_of(method: str) -> str:
    """The action an HTTP method performs on a resource (unknown methods: admin)."""
    return _METHOD_ACTIONS.get(method, ADMIN)


class AccessControl(Protocol):
    """Decides whether a request may proceed; raises a domain error (401, 403,
    429) to refuse. Must not read the request body."""

    async def check(self, request: web.BaseRequest, scope: Scope) -> None: ...


class AllowAll:
    """The access control while auth is off: every request proceeds."""

    async def check(self, request: web.BaseRequest, scope: Scope) -> None:
        return None
