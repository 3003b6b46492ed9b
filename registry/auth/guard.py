"""The access step with auth on: who is asking, and may they do what they ask.

`Guard` is the registry's `AccessControl` in `[auth] mode = "token"`. Each request
is identified once, from its Authorization header: a Bearer token (an ES256 JWT
from /token, whose claims are the grants), Basic credentials (a user's password
or a robot's token, the rules deciding), SigV4 (an S3 access key of a user), or
none (anonymous; on the dashboard's family alone, its session cookie:
auth/sessions.py). A token's robot or user is looked up again on every request
(through the store's short cache), so a revocation holds within a second, and so
does a password change (a token names the credentials it was issued for) or a
lost group or rule (a token grants only what its holder may still do).

Refusals: anonymous callers get 401 with the challenge their protocol expects
(Bearer realm/service/scope for OCI, Basic elsewhere, S3's AccessDenied for
S3); a token that lacks a scope its holder could have gets 401 with
`error="insufficient_scope"` and the scope, as distribution answers; anything
else the caller may not do gets 403 DENIED.

A challenge on a repository asks for `pull,push` even where the request only
pulls: clients that take the challenge's scope as it is (spack, oras-py) then
get, in their first token, everything the caller may do there (the token
service still grants only the intersection with the caller's rights), so a push
after a blob check needs no second token. Clients that compute their own scopes
(podman, skopeo) are unaffected.
Every denial, failed login, token, push and delete goes to the audit log.
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from registry.auth.audit import AuditLog
from registry.auth.logins import Logins, parse_basic
from registry.auth.rules import (
    ANONYMOUS,
    NOBODY,
    ROBOT,
    USER,
    Identity,
    Rules,
    requested_scopes,
)
from registry.auth.sessions import TYPE as SESSION_TYPE
from registry.auth.sessions import Sessions
from registry.auth.sigv4 import SignedRequest, access_key_of, is_sigv4, verify
from registry.auth.tokens import TokenError, TokenKeys
from registry.core.access import (
    ADMIN,
    BROWSE,
    DELETE,
    IDENTITY,
    PULL,
    PUSH,
    REQUEST_ID,
    SIGN,
    Networks,
    Scope,
    client_address,
)
from registry.core.errors import Denied, ObjectError, RegistryError, Unauthorized

GRANTED = "auth.granted"
MAX_AUTHORIZATION = 8 << 10
# Families that authenticate by themselves (the token endpoint), and the probes.
# The public keys signatures verify with are trust anchors: anyone may read them.
OPEN_FAMILIES = frozenset({"token", "healthz", "readyz", "keys"})
_HOST = re.compile(r"[A-Za-z0-9.\[\]:-]{1,300}")
_BEARER = frozenset({"Bearer ", "bearer ", "BEARER "})  # what `identify` takes, mostly
_CHALLENGE_ACTIONS = {PULL: "pull,push", PUSH: "pull,push", DELETE: "pull,push,delete",
                      SIGN: "pull,sign", ADMIN: "*"}


class Guard:
    """Authentication and authorization for every family (see the module doc)."""

    def __init__(self, logins: Logins, keys: TokenKeys, rules: Rules, service: str,
                 realm: str = "", audit: AuditLog | None = None, token_ttl: int = 300,
                 trusted_proxies: Networks = ()) -> None:
        self.logins = logins
        self.keys = keys
        self.rules = rules
        self.service = service
        self.issuer = service
        self.realm = realm
        self.audit = audit
        self.token_ttl = token_ttl
        # Behind them, failed logins count by the forwarded client's address.
        self.trusted_proxies = trusted_proxies
        # Tokens whose signature verified (TokenKeys.verify), by their exact text:
        # what the fast path needs of their claims. Bounded; expiry checked on use.
        self._tokens: dict[str, _Known] = {}
        self.sessions = Sessions(keys, logins, service, self.issuer)

    # -- the access step -----------------------------------------------------

    async def check(self, request: web.BaseRequest, scope: Scope) -> None:
        if scope.family in OPEN_FAMILIES:
            return
        # One look-up of the header for both ways (anonymous pulls take the long one).
        header = request.headers.get("Authorization")
        known = None if header is None else self._known_bearer(header)
        granted: Mapping[str, frozenset[str]] | None
        if known is not None:
            who, granted = known
        else:
            try:
                who, granted = await self._identify(request, scope, header)
            except RegistryError as exc:
                self._audit(request, "denied", NOBODY, scope, reason=exc.message)
                raise self._s3_refusal(exc) if scope.family == "s3" else exc from None
        request[IDENTITY], request[GRANTED] = who, granted
        if self._permitted(who, granted, scope):
            return
        self._audit(request, "denied", who, scope)
        if scope.family == "s3":
            raise ObjectError("AccessDenied", "access denied", 403)
        if who.anonymous:  # with or without an anonymous token: log in
            raise Unauthorized(detail=_detail(scope),
                               headers={"WWW-Authenticate": self._challenge(request, scope)})
        if granted is not None and scope.resource \
                and scope.action in self.rules.actions(who, scope.resource):
            # The holder may, the token does not say so: 401 with the scope needed,
            # as distribution answers (spack and the docker clients ask again on it).
            challenge = self._challenge(request, scope, 'error="insufficient_scope"')
            raise Unauthorized("the token does not grant this: ask for a token with this "
                               "scope", _detail(scope), {"WWW-Authenticate": challenge})
        raise Denied(detail=_detail(scope))

    def allowed(self, request: web.BaseRequest, scope: Scope) -> bool:
        # By the caller's rights, not a token's claims: a token names what the client
        # asked for this request; a listing or the source of a mount is another
        # resource, which the caller may or may not read, whatever it asked.
        return self._permitted(request.get(IDENTITY, NOBODY), None, scope)

    def puller(self, request: web.BaseRequest) -> Callable[[str], bool]:
        # `allowed`'s answer for pulls (the rules, not a token's claims), for many names.
        return self.rules.puller(request.get(IDENTITY, NOBODY))

    def rights_key(self, request: web.BaseRequest) -> Hashable:
        # `allowed` reads the identity and the rules, nothing else: a new Rules (SIGHUP)
        # or a changed identity (groups, a robot's scopes, credentials) is a new key.
        return request.get(IDENTITY, NOBODY), self.rules.generation

    def done(self, request: web.BaseRequest, scope: Scope, status: int) -> None:
        if self.audit is None or scope.action in (PULL, BROWSE) or status >= 400:
            return
        if request.method == "PATCH" or (scope.action == PUSH and status == 202):
            return  # a chunk, or an upload session started: the push is its last request
        event = {DELETE: "delete", SIGN: "sign"}.get(scope.action, "push")
        self._audit(request, event, request.get(IDENTITY, NOBODY), scope, status=status)

    def owner(self, request: web.BaseRequest) -> str:
        # A user by any credential (password, token, S3 key) is one owner; a robot
        # is another even under the same name; anonymous callers share one.
        who: Identity = request.get(IDENTITY, NOBODY)
        return f"{who.kind}:{who.name}"

    def _permitted(self, who: Identity, granted: Mapping[str, frozenset[str]] | None,
                   scope: Scope) -> bool:
        if scope.action == BROWSE:  # a listing narrowed to what the caller may pull
            return True
        if not scope.resource:  # the registry as a whole: any caller who logged in
            return not who.anonymous
        if granted is not None and scope.action not in granted.get(scope.resource, ()):
            return False
        # A token's grants as well as the rights of its holder now: a group left or a
        # rule changed since it was issued narrows it at once.
        return scope.action in self.rules.actions(who, scope.resource)

    # -- identification --------------------------------------------------------

    def _known_bearer(self, header: str) -> tuple[Identity, dict[str, frozenset[str]]] | None:
        """Who a Bearer token verified lately names, and what it grants, when all
        that is known now without waiting: the token unexpired, its holder's record
        fresh in the store's cache, the credentials it was issued for unchanged. None
        sends the request the long way (`identify`), which also answers refusals."""
        if header[:7] not in _BEARER or len(header) > MAX_AUTHORIZATION:
            return None
        known = self._tokens.get(header[7:].strip())
        if known is None or time.time() >= known.expires:
            return None
        if known.kind == ANONYMOUS:
            return NOBODY, known.granted
        who = self.logins.identity_now(known.kind, known.sub)
        if who is None or (who.stamp and known.cred != who.stamp):
            return None
        return who, known.granted

    async def identify(self, request: web.BaseRequest, scope: Scope | None = None,
                       ) -> tuple[Identity, dict[str, frozenset[str]] | None]:
        """Who is asking, and for a Bearer token what it grants (None otherwise).
        Credentials that do not prove anyone raise Unauthorized with the challenge of
        `scope`'s family (or an S3 error), whatever bytes they hold."""
        return await self._identify(request, scope, request.headers.get("Authorization"))

    async def _identify(self, request: web.BaseRequest, scope: Scope | None,
                        header: str | None,
                        ) -> tuple[Identity, dict[str, frozenset[str]] | None]:
        s3 = scope is not None and scope.family == "s3"
        if header is None:
            if s3 and "X-Amz-Algorithm" in request.query:
                return await self._sigv4(request), None
            if scope is not None and scope.family == "ui":
                return await self.sessions.of_request(request), None
            return NOBODY, None
        if len(header) > MAX_AUTHORIZATION:
            raise Unauthorized("Authorization header too long")
        scheme, _, credentials = header.partition(" ")
        kind = scheme.lower()
        if kind == "bearer":
            return await self._bearer(request, scope, credentials.strip())
        if kind == "basic":
            name = ""
            try:
                name, password = parse_basic(credentials)
                return await self.logins.login(name, password, self._client(request)), None
            except Unauthorized as exc:
                self._audit(request, "login_failed", NOBODY, None, attempted=name[:64])
                raise Unauthorized(exc.message, exc.detail, {
                    "WWW-Authenticate": self._challenge(request, scope)}) from None
        if s3 and scheme == "AWS4-HMAC-SHA256":
            return await self._sigv4(request), None
        raise Unauthorized("unsupported Authorization scheme",
                           {"scheme": scheme[:20]},
                           {"WWW-Authenticate": self._challenge(request, scope)})

    async def _bearer(self, request: web.BaseRequest, scope: Scope | None,
                      token: str) -> tuple[Identity, dict[str, frozenset[str]]]:
        def invalid(why: str) -> Unauthorized:
            # With the realm, as distribution answers: a client whose token expired or
            # was revoked asks the realm for a new one.
            challenge = self._challenge(request, scope, 'error="invalid_token",'
                                                        f'error_description="{why}"')
            return Unauthorized(why, headers={"WWW-Authenticate": challenge})

        claims = self.keys.known(token, self.service)
        if claims is None:
            try:
                claims = await self.keys.verify(token, self.service, self.issuer)
            except TokenError as exc:
                raise invalid(str(exc)) from None
        kind, sub = claims.get("kind"), claims.get("sub")
        if claims.get("typ") == SESSION_TYPE:  # its audience differs too: belt and braces
            raise invalid("a dashboard session is not a token")
        if kind == ANONYMOUS:
            who: Identity | None = NOBODY
        elif kind in (USER, ROBOT) and isinstance(sub, str):
            who = await self.logins.identity(kind, sub)
        else:
            who = None
        if who is None:
            raise invalid("the token's user or robot no longer exists (revoked)")
        if who.stamp and claims.get("cred") != who.stamp:
            raise invalid("the credentials the token was issued for changed (revoked)")
        # What a token grants is a function of the token: read from its claims once.
        known = self._tokens.get(token)
        if known is None:
            if len(self._tokens) >= 4096:
                self._tokens.clear()
            known = self._tokens[token] = _Known(
                float(claims["exp"]), str(kind), sub if isinstance(sub, str) else "",
                claims.get("cred"), _granted(claims.get("access")))
        return who, known.granted

    async def login(self, request: web.BaseRequest, name: str, password: str) -> Identity:
        """The identity a login form's name and password prove, counted as any failed
        login is (Unauthorized, or TooManyRequests while refused), and audited."""
        try:
            who = await self.logins.login(name, password, self._client(request))
        except Unauthorized:
            self._audit(request, "login_failed", NOBODY, None, attempted=name[:64])
            raise
        self._audit(request, "session", who, None)
        return who

    async def _sigv4(self, request: web.BaseRequest) -> Identity:
        raw = request.raw_path if request.raw_path.startswith("/") \
            else request.rel_url.raw_path_qs
        path, _, query = raw.partition("?")
        signed = SignedRequest(request.method, path, query, request.headers)
        if not is_sigv4(signed):
            raise ObjectError("AuthorizationHeaderMalformed", "unsupported authorization", 400)
        key = await self.logins.store.access_key(access_key_of(signed))
        user = await self.logins.user(key.user) if key is not None else None
        if key is None or user is None:
            raise ObjectError("InvalidAccessKeyId", "the access key id does not exist", 403)
        limiter = self.logins.limiter
        client = self._client(request)
        limiter.check(key.access_key_id, client)
        try:
            verify(signed, lambda k: key.secret if k == key.access_key_id else None)
        except ObjectError:
            limiter.fail(key.access_key_id, client)
            self._audit(request, "login_failed", NOBODY, None, attempted=key.access_key_id)
            raise
        return Identity(USER, user.name, frozenset(user.groups), via="sigv4")

    # -- the token endpoint ------------------------------------------------------

    async def issue(self, request: web.BaseRequest, params: Mapping[str, Any],
                    credentials: tuple[str, str] | None) -> dict[str, Any]:
        """The token endpoint's answer: a JWT granting the asked scopes the caller
        may have. `credentials` come from an OAuth2 password grant; otherwise the
        Authorization header (Basic, or none for an anonymous token) is used."""
        service = params.get("service") or self.service
        if service != self.service:
            raise RegistryError("unknown service", {"service": str(service)[:100]},
                                status=400, code="UNSUPPORTED")
        wanted = requested_scopes(params.get("scope", []))
        if credentials is not None:
            try:
                who = await self.logins.login(*credentials, self._client(request))
            except Unauthorized:
                self._audit(request, "login_failed", NOBODY, None, attempted=credentials[0][:64])
                raise
        else:
            header = request.headers.get("Authorization", "")
            if header[:7].lower() == "bearer ":
                raise Unauthorized("log in with Basic credentials to get a token")
            who, _ = await self.identify(request)
        access = []
        for name, actions in wanted.items():
            allowed = actions & self.rules.actions(who, name)
            if allowed:
                access.append({"type": "repository", "name": name,
                               "actions": sorted(allowed)})
        claims = {"iss": self.issuer, "aud": self.service, "sub": who.name,
                  "kind": who.kind, "access": access}
        if who.stamp:
            claims["cred"] = who.stamp
        issued = self.keys.issue(claims, self.token_ttl)
        self._audit(request, "token", who, None, scopes=[
            f"repository:{a['name']}:{','.join(a['actions'])}" for a in access][:50])
        return {"token": issued.token, "access_token": issued.token,
                "expires_in": issued.expires_in,
                "issued_at": _rfc3339(issued.issued_at)}

    # -- helpers -----------------------------------------------------------------

    def _client(self, request: web.BaseRequest) -> str:
        peer = request.remote or ""
        if not self.trusted_proxies:
            return peer
        return client_address(peer, request.headers.get("X-Forwarded-For"),
                              self.trusted_proxies)

    def _challenge(self, request: web.BaseRequest, scope: Scope | None,
                   extra: str = "") -> str:
        if scope is not None and scope.family not in ("oci",):
            return 'Basic realm="registry"'
        realm = self.realm or f"{'https' if request.secure else 'http'}://{_host(request)}/token"
        parts = [f'realm="{realm}"', f'service="{self.service}"']
        if scope is not None and scope.resource:
            parts.append(f'scope="repository:{scope.resource}:'
                         f'{_CHALLENGE_ACTIONS.get(scope.action, "pull")}"')
        if extra:
            parts.append(extra)
        return "Bearer " + ",".join(parts)

    def _s3_refusal(self, exc: RegistryError) -> RegistryError:
        if isinstance(exc, ObjectError) or exc.status == 429:
            return exc
        return ObjectError("AccessDenied", exc.message, 403)

    def _audit(self, request: web.BaseRequest, event: str, who: Identity,
               scope: Scope | None, **fields: Any) -> None:
        if self.audit is None:
            return
        where = {} if scope is None else {"family": scope.family, "resource": scope.resource,
                                          "action": scope.action}
        client = self._client(request)
        proxy = {"proxy": request.remote} if client != request.remote else {}
        self.audit.write(event, **who.audit_fields(), address=client, **proxy,
                         method=request.method, path=request.path[:512],
                         request_id=request.get(REQUEST_ID), **where, **fields)


@dataclass(frozen=True, slots=True)
class _Known:
    """What the Bearer fast path needs of a verified token's claims."""

    expires: float
    kind: str
    sub: str
    cred: Any
    granted: dict[str, frozenset[str]]


def _granted(access: Any) -> dict[str, frozenset[str]]:
    granted: dict[str, frozenset[str]] = {}
    if not isinstance(access, list):
        return granted
    for entry in access[:1000]:
        if isinstance(entry, dict) and entry.get("type") == "repository" \
                and isinstance(entry.get("name"), str) and isinstance(entry.get("actions"), list):
            actions = frozenset(a for a in entry["actions"] if isinstance(a, str))
            granted[entry["name"]] = granted.get(entry["name"], frozenset()) | actions
    return granted


def _detail(scope: Scope) -> dict[str, str]:
    return {"resource": scope.resource, "action": scope.action}


def _host(request: web.BaseRequest) -> str:
    host = request.host
    return host if _HOST.fullmatch(host) else "localhost"


def _rfc3339(when: float) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
