"""What a request wants to do, and where it comes from, as the access step sees it.

A domain notion shared by the HTTP layer (which derives a `Scope` from each
route, and logs the client's address) and the guards that decide on it
(registry.auth, which counts failed logins by that address), so neither imports
the other.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scope:
    """What a request wants to do: `action` on `resource` of protocol `family`.

    `resource` is a repository or cache name, or "" for the registry as a whole
    (the catalog, the API root); `action` is one of pull, push, delete, sign, admin."""

    family: str
    resource: str
    action: str


PULL, PUSH, DELETE, ADMIN = "pull", "push", "delete", "admin"
# Have the registry sign a manifest with one of its keys (POST /api/v1/sign/...): it
# writes signature manifests into the repository, and vouches with the site's key.
SIGN = "sign"
# Look at a listing whose answer the handler narrows to what the caller may pull (search,
# the dashboard's pages): anyone may ask, anonymous callers included, and each sees only
# what `AccessControl.allowed` admits. Not an action a rule grants (not in ACTIONS).
BROWSE = "browse"

# What the dispatcher and the access step note on a request, for those that read
# it later (handlers, the access and audit logs): its id, and who is asking.
REQUEST_ID, IDENTITY = "request_id", "auth.identity"
ACTIONS = (PULL, PUSH, DELETE, SIGN, ADMIN)

_METHOD_ACTIONS = {"GET": PULL, "HEAD": PULL, "OPTIONS": PULL, "PUT": PUSH, "POST": PUSH,
                   "PATCH": PUSH, "DELETE": DELETE}


def action_of(method: str) -> str:
    """The action an HTTP method performs on a resource (unknown methods: admin)."""
    return _METHOD_ACTIONS.get(method, ADMIN)


Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def trusted_networks(proxies: list[str]) -> Networks:
    """`[server] trusted_proxies` (addresses or networks, checked by the config check)."""
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _trusted(address: str, trusted: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def client_address(peer: str, forwarded_for: str | None, trusted: Networks) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the
    last address of X-Forwarded-For that is not one of ours. Proxies append the
    address they saw; whatever the client itself put in front is its own claim, so
    the rightmost untrusted entry is the first one we can believe (a client cannot
    pick its address by sending the header)."""
    if not trusted or not forwarded_for or not _trusted(peer, trusted):
        return peer
    for entry in reversed(forwarded_for.split(",")[-16:]):
        entry = entry.strip()
        try:
            address = str(ipaddress.ip_address(entry))
        except ValueError:
            return peer  # a proxy of ours writes addresses: this one is garbage
        if not _trusted(address, trusted):
            return address
    return peer


def _never(scope: Scope) -> bool:
    return False


def _always(scope: Scope) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Caller:
    """What the client behind a write may do elsewhere, for the decisions core makes
    on its behalf: which repositories it may pull (the mount rule, core/mounts.py)
    and push (the tags an S3 push makes). `allowed` is the access step's answer for
    a scope; the HTTP layer binds it to the request (`ctx.access.allowed`)."""

    allowed: Callable[[Scope], bool]

    def may_pull(self, repo: str) -> bool:
        return self.allowed(Scope("oci", repo, PULL))

    def may_push(self, repo: str) -> bool:
        return self.allowed(Scope("oci", repo, PUSH))

    @property
    def pulls_everything(self) -> bool:
        """May pull every repository (`*`): an automatic mount may take a blob from
        wherever it is."""
        return self.allowed(Scope("oci", "*", PULL))


# No client rights at all: only what the target repository already holds.
NOBODY = Caller(_never)
# Work an operator started on the server itself (`registry spack import`): whoever
# can run the CLI against the store can read every blob in it already.
OPERATOR = Caller(_always)


# The rights of the client whose request this task serves, where the access step
# knows them (auth on): set by the dispatcher after the access step, read by the
# decorators that answer differently for those who may push a repository (the trust
# policy lets a pipeline read back what it pushed, to sign it). None: no client
# (auth off, where anyone could claim to be the pipeline, or work off the request
# path), which such a decorator treats as the strictest case.
CALLER: ContextVar[Caller | None] = ContextVar("registry.caller", default=None)
