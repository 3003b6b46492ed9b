"""Kubernetes node-feature-discovery's image compatibility (artifactType
`application/vnd.nfd.image-compatibility.v1alpha1`, spec layer
`application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml`): `version: v1alpha1`
and `compatibilities`, each with `rules` (NodeFeatureRule rules: `name`,
`matchFeatures`, `matchAny`), an optional `weight`, `tag` and `description`.

As `nfd compat validate-node` does, a compatibility set holds when every rule
matches; a rule matches when all its `matchFeatures` terms match and, if it has
`matchAny`, one of those elements' terms all match. The host offers these NFD
features: `cpu.cpuid` (flags), `cpu.model` (`vendor_id`), `kernel.version`
(`major`, `minor`, `revision`, `full`) and `pci.device` (instances with `vendor`,
`device`). An expression about any other feature or attribute is not checked
(a registry never sees the node), and the reason says so.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from registry.arch.compat_facts import Facts, feature_key
from registry.arch.compat_load import CompatError
from registry.arch.host import dotted

MAX_SETS = 64
MAX_RULES = 64
MAX_TERMS = 64
MAX_VALUES = 64
MAX_PATTERN = 128
OPS = frozenset({"In", "NotIn", "InRegexp", "Exists", "DoesNotExist", "Gt", "Lt", "GtLt",
                 "IsTrue", "IsFalse"})
_NO_VALUE = frozenset({"Exists", "DoesNotExist", "IsTrue", "IsFalse"})
_INT = re.compile(r"-?[0-9]{1,18}")
# Python's re backtracks (NFD's Go regexp does not): a pattern may not repeat a group,
# refer back, or hold more than a few quantifiers, so no pattern can take long on the
# short values a host states.
_QUANTIFIED_GROUP = re.compile(r"\)[*+?{]")
_BACKREF = re.compile(r"\\[1-9]|\(\?P=")
_QUANTIFIERS = re.compile(r"[*+{]|(?<!\()\?")
_VENDOR_ID = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}
# Regular-expression work one set may cost, in steps estimated as (len + 1) ** (q + 1)
# per search of a value by a pattern of q quantifiers (the worst a backtracking search
# can do): a hostile set spends it and does not hold, rather than hold a thread.
REGEX_BUDGET = 2_000_000
_BUDGET: ContextVar[list[int]] = ContextVar("compat_regex_budget")


class _TooCostly(Exception):
    pass


@dataclass(frozen=True)
class Expr:
    """One MatchExpression: `op` and its `value` list."""

    op: str
    values: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.op} {list(self.values)}" if self.values else self.op


@dataclass(frozen=True)
class Term:
    """One FeatureMatcherTerm: a feature, its `matchExpressions` and `matchName`."""

    feature: str
    expressions: tuple[tuple[str, Expr], ...]
    name: Expr | None


@dataclass(frozen=True)
class Rule:
    name: str
    match_features: tuple[Term, ...]
    match_any: tuple[tuple[Term, ...], ...]


@dataclass(frozen=True)
class NfdSet:
    """One element of `compatibilities`."""

    number: int
    rules: tuple[Rule, ...]
    weight: int
    tag: str
    description: str


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise CompatError(f"{where} is not a string")
    return value


def _list(value: Any, where: str, cap: int) -> list[Any]:
    if not isinstance(value, list):
        raise CompatError(f"{where} is not a list")
    if len(value) > cap:
        raise CompatError(f"{where} has more than {cap} entries")
    return value


def _expr(raw: Any, where: str) -> Expr:
    if not isinstance(raw, dict):
        raise CompatError(f"{where} is not an expression object")
    op = raw.get("op")
    if op not in OPS:
        raise CompatError(f"{where}: op {str(op)[:20]!r} is not one of {', '.join(sorted(OPS))}")
    raw_values = raw.get("value")
    values = tuple(_str(v, f"{where}.value[]") for v in
                   _list(raw_values if raw_values is not None else [], f"{where}.value",
                         MAX_VALUES))
    if op in _NO_VALUE and values:
        raise CompatError(f"{where}: {op} takes no value")
    if op in ("In", "NotIn", "InRegexp") and not values:
        raise CompatError(f"{where}: {op} needs at least one value")
    if op in ("Gt", "Lt", "GtLt"):
        want = 2 if op == "GtLt" else 1
        if len(values) != want or not all(_INT.fullmatch(v) for v in values):
            count = "two integers" if want == 2 else "one integer"
            raise CompatError(f"{where}: {op} needs {count}")
        if op == "GtLt" and int(values[0]) >= int(values[1]):
            raise CompatError(f"{where}: GtLt's first value must be below its second")
    if op == "InRegexp":
        for pattern in values:
            _check_pattern(pattern, where)
    return Expr(op, values)


def _check_pattern(pattern: str, where: str) -> None:
    if (len(pattern) > MAX_PATTERN or _QUANTIFIED_GROUP.search(pattern)
            or _BACKREF.search(pattern) or len(_QUANTIFIERS.findall(pattern)) > 3):
        raise CompatError(f"{where}: regular expression {pattern[:40]!r} is too complex "
                          "(at most 128 characters and 3 quantifiers, no repeated group "
                          "or back-reference)")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise CompatError(f"{where}: {pattern[:40]!r} is not a regular expression: {exc}"
                          ) from None


def _term(raw: Any, where: str) -> Term:
    if not isinstance(raw, dict):
        raise CompatError(f"{where} is not a feature matcher term")
    feature = _str(raw.get("feature"), f"{where}.feature")
    expressions: list[tuple[str, Expr]] = []
    raw_exprs = raw.get("matchExpressions")
    if raw_exprs is not None:
        if not isinstance(raw_exprs, dict):
            raise CompatError(f"{where}.matchExpressions is not an object")
        if len(raw_exprs) > MAX_TERMS:
            raise CompatError(f"{where}.matchExpressions has more than {MAX_TERMS} entries")
        expressions = [(name, _expr(e, f"{where}.matchExpressions.{name[:40]}"))
                       for name, e in sorted(raw_exprs.items())]  # as recorded: sorted
    name = _expr(raw["matchName"], f"{where}.matchName") \
        if raw.get("matchName") is not None else None
    if not expressions and name is None:
        raise CompatError(f"{where} has neither matchExpressions nor matchName")
    return Term(feature, tuple(expressions), name)


def _terms(raw: Any, where: str) -> tuple[Term, ...]:
    return tuple(_term(t, f"{where}[{i}]") for i, t in enumerate(_list(raw, where, MAX_TERMS)))


def _rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise CompatError(f"{where} is not a rule object")
    name = _str(raw.get("name"), f"{where}.name")
    features = _terms(raw["matchFeatures"], f"{where}.matchFeatures") \
        if raw.get("matchFeatures") is not None else ()
    any_of = []
    for i, elem in enumerate(_list(raw.get("matchAny") or [], f"{where}.matchAny", MAX_TERMS)):
        if not isinstance(elem, dict) or elem.get("matchFeatures") is None:
            raise CompatError(f"{where}.matchAny[{i}] has no matchFeatures")
        any_of.append(_terms(elem["matchFeatures"], f"{where}.matchAny[{i}].matchFeatures"))
    if not features and not any_of:
        raise CompatError(f"{where} has neither matchFeatures nor matchAny")
    return Rule(name, features, tuple(any_of))


def parse_nfd(doc: Any) -> tuple[NfdSet, ...]:
    """The sets of an NFD image-compatibility spec (a loaded tree); CompatError when
    it is not one. Rule fields about labels (`labels`, `vars`, `taints`, ...) are
    ignored, as unknown keys are by NFD's own decoder."""
    if not isinstance(doc, dict):
        raise CompatError("the spec is not a mapping")
    if doc.get("version") != "v1alpha1":
        raise CompatError("version is not v1alpha1")
    raw_sets = _list(doc.get("compatibilities"), "compatibilities", MAX_SETS)
    if not raw_sets:
        raise CompatError("compatibilities is empty")
    sets = []
    for n, raw in enumerate(raw_sets, 1):
        where = f"compatibilities[{n - 1}]"
        if not isinstance(raw, dict):
            raise CompatError(f"{where} is not a mapping")
        rules = _list(raw.get("rules"), f"{where}.rules", MAX_RULES)
        if not rules:
            raise CompatError(f"{where}.rules is empty")
        weight = raw.get("weight", 0)
        if isinstance(weight, bool) or not isinstance(weight, int) or abs(weight) >= 1 << 31:
            raise CompatError(f"{where}.weight is not a 32-bit integer")
        sets.append(NfdSet(n, tuple(_rule(r, f"{where}.rules[{i}]") for i, r in enumerate(rules)),
                           weight, _str(raw.get("tag", ""), f"{where}.tag"),
                           _str(raw.get("description", ""), f"{where}.description")))
    return tuple(sets)


# -- judging against a host -------------------------------------------------------

# A feature as the host offers it: ("flags", names) | ("attrs", {name: value}) |
# ("instances", [{name: value}]); None when the host states nothing about it.
Feature = tuple[str, Any]
Check = tuple[bool, str]


def host_features(facts: Facts) -> dict[str, Feature]:
    """The NFD features a host's facts give."""
    out: dict[str, Feature] = {"cpu.cpuid": ("flags", facts.cpu_features)}
    if facts.vendor is not None:
        out["cpu.model"] = ("attrs", {"vendor_id": _VENDOR_ID.get(facts.vendor, facts.vendor)})
    if facts.kernel is not None:
        attrs = {"full": dotted(facts.kernel)}
        for key, part in zip(("major", "minor", "revision"), facts.kernel, strict=False):
            attrs[key] = str(part)
        out["kernel.version"] = ("attrs", attrs)
    if facts.pci is not None:
        out["pci.device"] = ("instances", [{"vendor": v, "device": d} for v, d in
                                           sorted(facts.pci)])
    return out


def _op(expr: Expr, value: str | None) -> bool:
    """NFD's MatchExpression on one value; None: the element is absent."""
    if expr.op == "DoesNotExist":
        return value is None
    if value is None:
        return False  # as in NFD: an absent element matches only DoesNotExist
    if expr.op == "Exists":
        return True
    if expr.op == "In":
        return value in expr.values
    if expr.op == "NotIn":
        return value not in expr.values
    if expr.op == "InRegexp":
        budget = _BUDGET.get(None)
        for pattern in expr.values:
            if budget is not None:
                budget[0] -= (len(value) + 1) ** (len(_QUANTIFIERS.findall(pattern)) + 1)
                if budget[0] < 0:
                    raise _TooCostly
            if re.search(pattern, value):
                return True
        return False
    if expr.op in ("IsTrue", "IsFalse"):
        return value == ("true" if expr.op == "IsTrue" else "false")
    if _INT.fullmatch(value) is None:
        return False
    n = int(value)
    if expr.op == "Gt":
        return n > int(expr.values[0])
    if expr.op == "Lt":
        return n < int(expr.values[0])
    return int(expr.values[0]) < n < int(expr.values[1])  # GtLt


def _names(term: Term, feature: Feature) -> Check:
    kind, data = feature
    assert term.name is not None
    if kind == "instances":
        return True, f"{term.feature} matchName not checked"
    names = data if kind == "flags" else data.keys()
    if any(_op(term.name, n) for n in sorted(names)):
        return True, f"{term.feature} name {term.name}"
    return False, f"{term.feature} has no name {term.name}"


def _term_holds(term: Term, features: dict[str, Feature]) -> tuple[bool, list[str]]:
    feature = features.get(term.feature)
    if feature is None:
        return True, [f"{term.feature} not checked (the host states no such feature)"]
    kind, data = feature
    notes: list[str] = []
    if term.name is not None:
        ok, why = _names(term, feature)
        if not ok:
            return False, [why]
    if kind == "instances":
        return _instances(term, data)
    for name, expr in term.expressions:
        if kind == "flags":
            if expr.op not in ("Exists", "DoesNotExist"):
                return False, [f"{term.feature} {name}: {expr.op} does not apply to a flag"]
            value = "" if feature_key(name) in data else None
        elif name not in data:
            notes.append(f"{term.feature} {name} not checked")
            continue
        else:
            value = data[name]
        if not _op(expr, value):
            shown = "absent" if value is None else ("present" if kind == "flags" else value)
            return False, [f"{term.feature} {name} {expr} fails (host: {shown})"]
    return True, notes


def _instances(term: Term, instances: list[dict[str, str]]) -> tuple[bool, list[str]]:
    known = [(n, e) for n, e in term.expressions if n in ("vendor", "device")]
    notes = [f"{term.feature} {n} not checked" for n, e in term.expressions
             if n not in ("vendor", "device")]
    if any(all(_op(e, inst.get(n)) for n, e in known) for inst in instances):
        return True, notes
    wanted = ", ".join(f"{n} {e}" for n, e in known)
    return False, [f"no {term.feature} on the host with {wanted}"]


def _all_terms(terms: tuple[Term, ...], features: dict[str, Feature]) -> tuple[bool, list[str]]:
    notes: list[str] = []
    for term in terms:
        ok, why = _term_holds(term, features)
        if not ok:
            return False, why
        notes += why
    return True, notes


def _rule_holds(rule: Rule, features: dict[str, Feature]) -> tuple[bool, list[str]]:
    ok, notes = _all_terms(rule.match_features, features)
    if not ok:
        return False, [f"rule {rule.name!r}: {'; '.join(notes)}"]
    if rule.match_any:
        tried = [_all_terms(terms, features) for terms in rule.match_any]
        held = [why for ok, why in tried if ok]
        if not held:
            return False, [f"rule {rule.name!r}: no matchAny element holds ("
                           + "; ".join(why[0] for _, why in tried[:4] if why) + ")"]
        notes += held[0]
    return True, notes


def judge_nfd_set(s: NfdSet, facts: Facts) -> Check:
    """Whether every rule of set `s` matches the host, with the reasons."""
    features = host_features(facts)
    notes: list[str] = []
    token = _BUDGET.set([REGEX_BUDGET])
    try:
        for rule in s.rules:
            ok, why = _rule_holds(rule, features)
            if not ok:
                return False, why[0]
            notes += why
    except _TooCostly:
        return False, "its regular expressions cost too much to evaluate"
    finally:
        _BUDGET.reset(token)
    matched = f"rules {', '.join(repr(r.name) for r in s.rules[:6])} match"
    return True, "; ".join([matched, *sorted(set(notes))[:6]])
