"""Who may do what: identities, grants (a robot's scopes, a token's claims) and
the site's access rules on namespaces.

A rule is one line: `PATTERN WHO ACTIONS`, e.g. `public/* anonymous pull`,
`ci/* group:ci pull,push`, `* group:admins admin`. PATTERN is a glob over
repository (and Spack cache, and bucket) names in which `*` matches any run of
characters, `/` included, so `ci/*` is the whole `ci` namespace. WHO is
`anonymous` (everyone, logged in or not), `authenticated` (every user; robots
have their scopes and what anonymous has, no more), `user:NAME` or `group:NAME`.
ACTIONS are pull, push, delete, sign (have the registry sign a manifest with its
key) and admin (all of them), separated by `,` or `+`.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from registry.core.access import ACTIONS, ADMIN, DELETE, PULL, PUSH, SIGN
from registry.core.errors import RegistryError
from registry.core.grammar import check_glob, glob_matches, validate_name

ALL = frozenset((PULL, PUSH, DELETE, SIGN, ADMIN))
# Users, robots and groups: what also makes a safe file name in the store.
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class RuleError(ValueError):
    """A rule, scope or name that does not parse; the message says why."""


def check_name(name: str, what: str = "name") -> str:
    if not NAME.fullmatch(name):
        raise RuleError(f"{what} {name[:80]!r}: expected 1-64 of a-z 0-9 . _ -, "
                        "starting with a letter or digit")
    return name


def parse_actions(text: str) -> frozenset[str]:
    actions = frozenset(a.strip() for a in re.split(r"[,+]", text) if a.strip())
    if text.strip() == "*":
        return ALL
    unknown = actions - set(ACTIONS)
    if unknown or not actions:
        raise RuleError(f"actions {text[:80]!r}: expected some of {', '.join(ACTIONS)}")
    return ALL if ADMIN in actions else actions


def _check_pattern(pattern: str) -> str:
    try:
        return check_glob(pattern)
    except ValueError as exc:
        raise RuleError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Grant:
    """Actions on every resource whose name matches `pattern`."""

    pattern: str
    actions: frozenset[str]

    def covers(self, resource: str) -> bool:
        return glob_matches(resource, self.pattern)

    def to_scope(self) -> str:
        return f"repository:{self.pattern}:{','.join(sorted(self.actions))}"


def parse_scope(text: str) -> Grant:
    """A robot's scope as `registry tokens create --scope` takes it:
    `repository:PATTERN:ACTIONS`."""
    kind, sep, rest = text.strip().partition(":")
    pattern, sep2, actions = rest.rpartition(":")
    if kind != "repository" or not sep or not sep2:
        raise RuleError(f"scope {text[:80]!r}: expected repository:PATTERN:ACTIONS")
    return Grant(_check_pattern(pattern), parse_actions(actions))


@dataclass(frozen=True, slots=True)
class Rule:
    """One site rule: `who` may do `grant.actions` on names matching its pattern."""

    grant: Grant
    who: str  # anonymous | authenticated | user:NAME | group:NAME

    @classmethod
    def parse(cls, text: str) -> Rule:
        parts = text.split()
        if len(parts) != 3:
            raise RuleError(f"rule {text[:80]!r}: expected PATTERN WHO ACTIONS")
        pattern, who, actions = parts
        kind, _, name = who.partition(":")
        if who not in ("anonymous", "authenticated"):
            if kind not in ("user", "group"):
                raise RuleError(f"rule {text[:80]!r}: WHO is anonymous, authenticated, "
                                "user:NAME or group:NAME")
            check_name(name, kind)
        return cls(Grant(_check_pattern(pattern), parse_actions(actions)), who)

    def __str__(self) -> str:
        return f"{self.grant.pattern} {self.who} {','.join(sorted(self.grant.actions))}"


ANONYMOUS, USER, ROBOT = "anonymous", "user", "robot"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is asking: anonymous, a user (with groups) or a robot (with its scopes)."""

    kind: str
    name: str = ""
    groups: frozenset[str] = frozenset()
    grants: tuple[Grant, ...] = ()  # a robot's scopes
    via: str = ""  # how: basic, bearer, sigv4 (for the audit log)
    # Which credentials the record holds now (auth.logins.stamp): a token carries the
    # stamp it was issued under and dies with it (a password change, a new robot).
    stamp: str = ""

    @property
    def anonymous(self) -> bool:
        return self.kind == ANONYMOUS

    def audit_fields(self) -> dict[str, str | None]:
        return {"user": self.name if self.kind == USER else None,
                "robot": self.name if self.kind == ROBOT else None}


NOBODY = Identity(ANONYMOUS)
_GENERATIONS = itertools.count(1)


@dataclass
class Rules:
    """The site's rules; answers what an identity may do on a resource. The list is
    never changed once made (SIGHUP makes a new Rules), so answers are remembered."""

    rules: list[Rule] = field(default_factory=list)
    # Which Rules this is, never reused in the process: with an identity, it names that
    # identity's rights (Guard.rights_key), so a SIGHUP retires what was kept under them.
    generation: int = field(default_factory=lambda: next(_GENERATIONS), init=False,
                            compare=False)
    # Every request asks (a token's grants are checked against the rules too): a
    # dict hit instead of a glob match per rule. Names are hostile: bounded.
    _memo: dict[tuple[Identity, str], frozenset[str]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def _applies(self, rule: Rule, who: Identity) -> bool:
        if rule.who == "anonymous":
            return True
        if who.anonymous:
            return False
        if rule.who == "authenticated":  # users: a robot has its scopes, no more
            return who.kind == USER
        kind, _, name = rule.who.partition(":")
        if kind == "user":
            return who.kind == USER and who.name == name
        return who.kind == USER and name in who.groups

    def actions(self, who: Identity, resource: str) -> frozenset[str]:
        """Everything `who` may do on `resource` (a repository, cache or bucket)."""
        key = (who, resource)
        known = self._memo.get(key)
        if known is None:
            if len(self._memo) >= 4096:
                self._memo.clear()
            known = self._memo[key] = self._actions(who, resource)
        return known

    def puller(self, who: Identity) -> Callable[[str], bool]:
        """Whether `who` may pull a resource, by name: `PULL in actions(who, name)` for
        thousands of names (a search's), one match of the patterns that give `who` pull
        (admin included) as a single expression, none of the memo's churn."""
        patterns = [r.grant.pattern for r in self.rules
                    if PULL in r.grant.actions and self._applies(r, who)]
        if who.kind == ROBOT:
            patterns += [g.pattern for g in who.grants if PULL in g.actions]
        if not patterns:
            return lambda name: False
        # glob_matches is fnmatchcase, which matches by this same translation.
        match = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)).match
        return lambda name: match(name) is not None

    def _actions(self, who: Identity, resource: str) -> frozenset[str]:
        got: set[str] = set()
        for rule in self.rules:
            if rule.grant.covers(resource) and self._applies(rule, who):
                got |= rule.grant.actions
        if who.kind == ROBOT:
            for grant in who.grants:
                if grant.covers(resource):
                    got |= grant.actions
        return ALL if ADMIN in got else frozenset(got)


MAX_SCOPES = 100


def requested_scopes(values: list[str] | str) -> dict[str, frozenset[str]]:
    """What a token request asks for (`scope` parameters, each one or more
    space-separated `repository:NAME:ACTIONS`), by repository name. Names are
    checked against the repository grammar (no globs: a token names what it
    grants); other resource types (`registry:catalog:*`) ask nothing."""
    if isinstance(values, str):
        values = [values]
    items = [item for value in values for item in value.split()]
    if len(items) > MAX_SCOPES:
        raise RegistryError(f"too many scopes: at most {MAX_SCOPES} in one token request",
                            {"scopes": len(items)}, status=400, code="UNSUPPORTED")
    wanted: dict[str, frozenset[str]] = {}
    for item in items:
        kind, _, rest = item.partition(":")
        name, sep, actions = rest.rpartition(":")
        if not sep:
            raise RegistryError("malformed scope: expected repository:NAME:ACTIONS",
                                {"scope": item[:200]}, status=400, code="UNSUPPORTED")
        if kind.split("(")[0] != "repository":
            continue
        validate_name(name)
        asked = ALL if actions == "*" else frozenset(actions.split(",")) & ALL
        wanted[name] = wanted.get(name, frozenset()) | asked
    return wanted
