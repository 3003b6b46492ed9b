"""Rules, scopes and identities: the pure logic of who may do what."""

from __future__ import annotations

import pytest

from registry.auth.passwords import hash_password, looks_hashed, verify_password
from registry.auth.rules import (
    ALL,
    NOBODY,
    ROBOT,
    USER,
    Identity,
    Rule,
    RuleError,
    Rules,
    parse_scope,
    requested_scopes,
)
from registry.core.errors import NameInvalid, RegistryError

RULES = Rules([Rule.parse(r) for r in [
    "public/* anonymous pull",
    "team/* group:team pull,push",
    "docs user:alice push+delete",
    "* group:admins admin",
    "shared/* authenticated pull",
]])
ALICE = Identity(USER, "alice", frozenset({"team"}))
ADMIN = Identity(USER, "root", frozenset({"admins"}))
ROBOT_CI = Identity(ROBOT, "ci", grants=(parse_scope("repository:ci/*:push,pull"),))


@pytest.mark.parametrize("who,resource,want", [
    (NOBODY, "public/base", {"pull"}),
    (NOBODY, "publicity", set()),  # the namespace, not the prefix
    (NOBODY, "team/app", set()),
    (ALICE, "team/app", {"pull", "push"}),
    (ALICE, "team/deep/er/app", {"pull", "push"}),  # * crosses /
    (ALICE, "docs", {"push", "delete"}),
    (ALICE, "shared/x", {"pull"}),
    (ALICE, "public/base", {"pull"}),
    (ADMIN, "anything/at/all", set(ALL)),
    (ROBOT_CI, "ci/app", {"pull", "push"}),
    (ROBOT_CI, "shared/x", set()),  # authenticated rules are for users
    (ROBOT_CI, "public/base", {"pull"}),
    (ROBOT_CI, "team/app", set()),
    (Identity(ROBOT, "alice"), "docs", set()),  # a robot named like a user is no user
])
def test_actions(who, resource, want):
    assert set(RULES.actions(who, resource)) == want


def test_the_puller_answers_as_the_rules_do():
    """Rules.puller (a search's test of thousands of names) says pull exactly where
    actions() does, for every kind of caller and the glob's every operator."""
    rules = Rules([*RULES.rules, *(Rule.parse(r) for r in [
        "img?/x user:alice pull", "lab/[ab]* group:team pull", "lab/[b-d]x user:bob pull",
        "ro/* user:alice push", "wide/*/end anonymous pull"])])
    names = ["public/base", "publicity", "team/app", "team/deep/er/app", "docs", "shared/x",
             "anything/at/all", "ci/app", "img1/x", "img12/x", "lab/a1", "lab/c1", "lab/dx",
             "lab/cx", "ro/app", "wide/a/b/end", "wide/end", "a.b/c-d_e"]
    bob = Identity(USER, "bob")
    for who in (NOBODY, ALICE, ADMIN, ROBOT_CI, Identity(ROBOT, "alice"), bob):
        test = rules.puller(who)
        for name in names:
            assert test(name) == ("pull" in rules.actions(who, name)), (who.name, name)
    assert not Rules([]).puller(ALICE)("team/app")


@pytest.mark.parametrize("text", [
    "", "a b", "a b c d", "team/* group: pull", "team/* someone pull", "team/* user:Alice pull",
    "team/* anonymous fly", "TEAM anonymous pull", "team/{a,b} anonymous pull",
    "../x anonymous pull",
])
def test_bad_rules(text):
    with pytest.raises(RuleError):
        Rule.parse(text)


def test_scopes():
    assert parse_scope("repository:ci/*:push,pull").to_scope() == "repository:ci/*:pull,push"
    assert parse_scope("repository:x:admin").actions == ALL
    for bad in ("registry:catalog:*", "repository:x", "repository::pull", "repository:x:eat"):
        with pytest.raises(RuleError):
            parse_scope(bad)
    wanted = requested_scopes(["repository:a/b:pull,push repository:c:pull",
                               "repository:a/b:delete", "registry:catalog:*",
                               "repository(plugin):d:pull,bogus"])
    assert wanted == {"a/b": frozenset({"pull", "push", "delete"}), "c": frozenset({"pull"}),
                      "d": frozenset({"pull"})}
    with pytest.raises(NameInvalid):
        requested_scopes("repository:a/*:pull")
    with pytest.raises(RegistryError):
        requested_scopes(" ".join(["repository:a:pull"] * 101))


def test_passwords():
    stored = hash_password("correct horse")
    assert looks_hashed(stored) and "correct" not in stored
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsE", stored)
    assert not verify_password("x" * 2000, stored)
    assert not verify_password("correct horse", "scrypt$1048577$8$1$AA$AA")  # too costly
    assert not verify_password("correct horse", "garbage")
    with pytest.raises(ValueError):
        hash_password("x" * 2000)
