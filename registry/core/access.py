"""What a request wants to do, as the access step sees it.

A domain notion shared by the HTTP layer (which derives a `Scope` from each
route) and the guards that decide on it (registry.auth), so neither imports
the other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scope:
    """What a request wants to do: `action` on `resource` of protocol `family`.

    `resource` is a repository or cache name, or "" for the registry as a whole
    (the catalog, the API root); `action` is one of pull, push, delete, admin."""

    family: str
    resource: str
    action: str


PULL, PUSH, DELETE, ADMIN = "pull", "push", "delete", "admin"

# What the dispatcher and the access step note on a request, for those that read
# it later (handlers, the access and audit logs): its id, and who is asking.
REQUEST_ID, IDENTITY = "request_id", "auth.identity"
ACTIONS = (PULL, PUSH, DELETE, ADMIN)

_METHOD_ACTIONS = {"GET": PULL, "HEAD": PULL, "OPTIONS": PULL, "PUT": PUSH, "POST": PUSH,
                   "PATCH": PUSH, "DELETE": DELETE}


def action_of(method: str) -> str:
    """The action an HTTP method performs on a resource (unknown methods: admin)."""
    return _METHOD_ACTIONS.get(method, ADMIN)
