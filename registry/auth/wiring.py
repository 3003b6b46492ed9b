"""Auth assembled from the configuration: the guard `registry serve` puts in the
access step, and the checks `registry config check` runs on `[auth]`."""

from __future__ import annotations

from registry.auth.audit import AuditLog
from registry.auth.guard import Guard
from registry.auth.logins import Logins
from registry.auth.passwords import looks_hashed
from registry.auth.rules import Rule, RuleError, Rules, check_name
from registry.auth.store import AuthStore, User
from registry.auth.tokens import TokenKeys
from registry.config import AuthConfig, ConfigError
from registry.core.access import trusted_networks
from registry.core.areas import AuthArea


def parse(config: AuthConfig) -> tuple[Rules, dict[str, User]]:
    """The rules and the config file's users; ConfigError naming every bad entry."""
    problems: list[str] = []
    rules = []
    for text in config.rules:
        try:
            rules.append(Rule.parse(text))
        except RuleError as exc:
            problems.append(f"[auth] rules: {exc}")
    users: dict[str, User] = {}
    for entry in config.users:
        name, _, rest = entry.partition(":")
        password, _, groups = rest.partition(":")
        try:
            check_name(name, "user")
            for group in filter(None, groups.split("+")):
                check_name(group, "group")
        except RuleError as exc:
            problems.append(f"[auth] users: {exc}")
            continue
        if not looks_hashed(password):
            # Never echo the entry: it may hold a password in clear.
            problems.append(f"[auth] users: {name}: expected NAME:HASH[:GROUP+GROUP] with "
                            "a hash from `registry users hash`, never a password")
            continue
        users[name] = User(name, password, [g for g in groups.split("+") if g])
    if problems:
        raise ConfigError(problems)
    return Rules(rules), users


async def build_guard(config: AuthConfig, area: AuthArea,
                      trusted_proxies: list[str] | None = None) -> Guard:
    """The access step of `[auth] mode = "token"` over the `_auth/` area core hands
    it, its signing keys loaded; `trusted_proxies` are `[server] trusted_proxies`."""
    rules, users = parse(config)
    store = AuthStore(area)
    keys = TokenKeys(store)
    await keys.load()
    audit = AuditLog(config.audit_log, config.audit_max_bytes, config.audit_keep) \
        if config.audit_log else None
    return Guard(Logins(store, users, config.login_attempts), keys, rules, config.service,
                 config.realm, audit, config.token_ttl,
                 trusted_networks(trusted_proxies or []))
