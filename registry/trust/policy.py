"""The pull-time policy: `[trust] policies`, one rule a line, first match applies.

A rule is `PATTERN OPTION...`, e.g. `prod/* require=site`, `ci/* sign=site`,
`hpc/* require=site+ci quarantine`. PATTERN is a repository glob as the auth rules
write it (core.grammar.check_glob: `*` matches any run, `/` included). OPTIONs:

- `require=KEY[+KEY...]`: a pull of a manifest needs a valid signature by one of
  the keys (registry/trust/guard.py refuses it with 403 DENIED otherwise);
- `sign=KEY`: the registry signs every manifest pushed there, off the request path;
- `quarantine`: a push does not move its tag until the manifest verifies (by the
  `require` keys, else the `sign` key), so pullers keep the previous digest;
- `block=LEVEL` (critical, high, medium, low): a pull of a manifest whose scan found
  a vulnerability at or above LEVEL is refused (trust/blocking.py), unless
- `allow=ID[,ID...]` names it (an advisory id or one of its aliases: accepted);
- `scan=required`: a manifest not scanned yet is refused until it is (without it,
  served).

The server and `registry config check` parse with `parse_policies`, so what the
check accepts is what the server runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from registry.config import ConfigError, TrustConfig
from registry.core.grammar import check_glob, glob_matches
from registry.trust.keys import KeyProblem, check_name

OPTIONS = ("require=KEY[+KEY]", "sign=KEY", "quarantine", "block=LEVEL", "allow=ID[,ID]",
           "scan=required")
# Severity levels a rule may block at, lowest first (the scanner's levels above "none").
BLOCK_LEVELS = ("low", "medium", "high", "critical")
# An advisory id or alias as OSV writes them: CVE-2024-1234, GHSA-xxxx-xxxx-xxxx,
# DSA-5611-1, ALSA-2023:1234, PYSEC-2021-1, RUSTSEC-2020-0001.
ADVISORY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
MAX_ALLOW = 1000


class PolicyError(ValueError):
    """A policy rule that does not parse; the message says why."""


@dataclass(frozen=True, slots=True)
class Policy:
    """One rule: what the repositories matching `pattern` need and get."""

    pattern: str
    require: tuple[str, ...] = ()
    sign: str | None = None
    quarantine: bool = False
    block: str | None = None
    allow: frozenset[str] = frozenset()  # upper-cased advisory ids and aliases
    scan_required: bool = False

    def covers(self, repo: str) -> bool:
        return glob_matches(repo, self.pattern)

    @property
    def verify_keys(self) -> tuple[str, ...]:
        """The keys a manifest must be signed by to be served (`require`) or to
        leave quarantine (`require`, else the registry's own `sign` key)."""
        if self.require:
            return self.require
        return (self.sign,) if self.sign else ()

    @property
    def guards_pulls(self) -> bool:
        """Whether pulls are judged at all (a `sign=` rule alone only signs)."""
        return bool(self.require) or self.quarantine or self.judges_scans

    @property
    def judges_scans(self) -> bool:
        """Whether pulls depend on the manifest's scan (`block=`, `scan=required`)."""
        return self.block is not None or self.scan_required

    @property
    def judges_signatures(self) -> bool:
        """Whether pulls depend on signatures (`require=`, `quarantine`)."""
        return bool(self.require) or self.quarantine

    def __str__(self) -> str:
        words = [self.pattern]
        if self.require:
            words.append("require=" + "+".join(self.require))
        if self.sign:
            words.append(f"sign={self.sign}")
        if self.quarantine:
            words.append("quarantine")
        if self.block:
            words.append(f"block={self.block}")
        if self.allow:
            words.append("allow=" + ",".join(sorted(self.allow)))
        if self.scan_required:
            words.append("scan=required")
        return " ".join(words)


def _keys(option: str, text: str) -> tuple[str, ...]:
    name, _, value = option.partition("=")
    keys = tuple(k for k in value.split("+"))
    if not value or any(not k for k in keys):
        raise PolicyError(f"policy {text[:80]!r}: {name}= needs a key name "
                          f"(empty key list in {option[:80]!r})")
    for key in keys:
        try:
            check_name(key)  # the key store's grammar
        except KeyProblem as exc:
            raise PolicyError(f"policy {text[:80]!r}: {exc}") from None
    if len(set(keys)) != len(keys):
        raise PolicyError(f"policy {text[:80]!r}: a key named twice in {option[:80]!r}")
    return keys


def _allow(option: str, text: str) -> frozenset[str]:
    ids = option.partition("=")[2].split(",")
    if len(ids) > MAX_ALLOW:
        raise PolicyError(f"policy {text[:80]!r}: allow= names more than {MAX_ALLOW} advisories")
    for one in ids:
        if not ADVISORY_ID.fullmatch(one):
            raise PolicyError(f"policy {text[:80]!r}: allow= takes advisory ids or aliases "
                              f"separated by commas (like CVE-2024-1234,GHSA-xxxx-xxxx-xxxx),"
                              f" not {one[:80]!r}")
    return frozenset(one.upper() for one in ids)


def parse_policy(text: str) -> Policy:
    """One rule; PolicyError naming what is wrong."""
    words = text.split()
    if len(words) < 2:
        raise PolicyError(f"policy {text[:80]!r}: expected PATTERN OPTION... with options "
                          f"{', '.join(OPTIONS)}")
    try:
        pattern = check_glob(words[0])
    except ValueError as exc:
        raise PolicyError(f"policy {text[:80]!r}: {exc}") from None
    require: tuple[str, ...] = ()
    sign: str | None = None
    quarantine = scan_required = False
    block: str | None = None
    allow: frozenset[str] = frozenset()
    seen: set[str] = set()
    for option in words[1:]:
        name = option.partition("=")[0]
        if name in seen:
            raise PolicyError(f"policy {text[:80]!r}: {name} given twice")
        seen.add(name)
        if name == "require" and "=" in option:
            require = _keys(option, text)
        elif name == "sign" and "=" in option:
            keys = _keys(option, text)
            if len(keys) != 1:
                raise PolicyError(f"policy {text[:80]!r}: sign= takes one key, "
                                  f"got {option[:80]!r}")
            sign = keys[0]
        elif option == "quarantine":
            quarantine = True
        elif name == "block" and "=" in option:
            block = option.partition("=")[2]
            if block not in BLOCK_LEVELS:
                raise PolicyError(f"policy {text[:80]!r}: block= takes a severity, one of "
                                  f"{', '.join(reversed(BLOCK_LEVELS))}, not {block[:80]!r}")
        elif name == "allow" and "=" in option:
            allow = _allow(option, text)
        elif name == "scan" and "=" in option:
            if option != "scan=required":
                raise PolicyError(f"policy {text[:80]!r}: scan= takes `required` "
                                  f"(hold manifests until scanned), not {option[:80]!r}")
            scan_required = True
        else:
            raise PolicyError(f"policy {text[:80]!r}: unknown option {option[:80]!r} "
                              f"(known: {', '.join(OPTIONS)})")
    if quarantine and not require and not sign:
        raise PolicyError(f"policy {text[:80]!r}: quarantine needs require= or sign= "
                          "(the keys a push must be signed by to leave it)")
    if allow and block is None:
        raise PolicyError(f"policy {text[:80]!r}: allow= needs block= (it names advisories "
                          "a blocking rule accepts)")
    return Policy(pattern, require, sign, quarantine, block, allow, scan_required)


@dataclass
class Policies:
    """The site's rules in order; `for_repo` answers the first that matches. Never
    changed once made (a reload makes new Policies), so answers are remembered."""

    rules: tuple[Policy, ...] = ()
    _memo: dict[str, Policy | None] = field(default_factory=dict, init=False, repr=False,
                                            compare=False)

    def for_repo(self, repo: str) -> Policy | None:
        try:
            return self._memo[repo]
        except KeyError:
            pass
        if len(self._memo) >= 4096:  # names are hostile: bounded
            self._memo.clear()
        found = self._memo[repo] = next((p for p in self.rules if p.covers(repo)), None)
        return found

    @property
    def keys(self) -> set[str]:
        """Every key a rule names."""
        return {k for p in self.rules for k in (*p.require, *([p.sign] if p.sign else []))}

    def texts(self) -> list[str]:
        return [str(p) for p in self.rules]


def parse_policies(config: TrustConfig) -> Policies:
    """`[trust] policies`; ConfigError naming every bad rule."""
    problems: list[str] = []
    rules: list[Policy] = []
    for text in config.policies:
        try:
            rules.append(parse_policy(text))
        except PolicyError as exc:
            problems.append(f"[trust] policies: {exc}")
    if problems:
        raise ConfigError(problems)
    return Policies(tuple(rules))
