"""/v2/_catalog: every repository, nested names, n/last pagination with Link."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from .helpers import assert_error, call, parse_link, push_blob, push_image


@pytest.fixture(scope="module")
def repos(registry):
    prefix = "cat" + uuid.uuid4().hex[:8]
    names = [f"{prefix}/a", f"{prefix}/a/b", f"{prefix}/a/b/c", f"{prefix}/z-z", f"{prefix}/z.z"]
    for name in names:
        push_image(registry, name, "t")
    return prefix, sorted(names)


def catalog(reg, query=""):
    r = call(reg, "GET", f"/v2/_catalog{query}")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()["repositories"], r.headers.get("Link")


def test_lists_pushed_repositories(registry, repos):
    _, names = repos
    everything, link = catalog(registry)
    assert link is None
    assert set(names) <= set(everything)
    assert everything == sorted(everything)
    assert len(everything) == len(set(everything))


def test_blob_only_repository_is_listed(registry):
    repo = registry.repo("catblob")
    push_blob(registry, repo, b"x")
    assert repo in catalog(registry)[0]


def test_nested_names_in_order(registry, repos):
    prefix, names = repos
    mine = [n for n in catalog(registry)[0] if n.startswith(prefix + "/")]
    assert mine == names


def test_pagination(registry, repos):
    prefix, names = repos
    page, link = catalog(registry, f"?n=2&last={prefix}")
    assert page == names[:2]
    assert link is not None
    target = parse_link(link)
    parts = urlsplit(target)
    assert parts.path == "/v2/_catalog"
    assert parse_qs(parts.query) == {"n": ["2"], "last": [names[1]]}


def test_follow_links(registry, repos):
    prefix, names = repos
    seen, query = [], f"?n=2&last={prefix}"
    for _ in range(100):
        page, link = catalog(registry, query)
        assert len(page) <= 2
        seen += page
        if link is None or not page[-1].startswith(prefix):
            break
        query = "?" + parse_link(link).split("?", 1)[1]
    mine = [n for n in seen if n.startswith(prefix + "/")]
    assert mine == names


def test_follow_links_from_start_returns_everything_once(registry, repos):
    everything, _ = catalog(registry)
    seen, query = [], "?n=7"
    for _ in range(len(everything) + 2):
        page, link = catalog(registry, query)
        seen += page
        if link is None:
            break
        query = "?" + parse_link(link).split("?", 1)[1]
    assert seen == everything


def test_n_zero(registry, repos):
    assert catalog(registry, "?n=0") == ([], None)


def test_last_beyond_everything(registry, repos):
    assert catalog(registry, "?last=zzzzzzzz") == ([], None)


@pytest.mark.parametrize("n", ["-1", "x", "1.0"])
def test_invalid_n(registry, n):
    assert_error(call(registry, "GET", f"/v2/_catalog?n={n}"), 400)
