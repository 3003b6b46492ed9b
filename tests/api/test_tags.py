"""Tag listing with n/last pagination and Link headers."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from .helpers import assert_error, call, parse_link, push_image, push_manifest, raw

TAGS = ["1.0", "1.1", "2.0", "Latest", "a", "b_c", "b-c", "latest", "z.9"]


@pytest.fixture(scope="module")
def tagged(registry):
    repo = registry.repo()
    pushed = push_image(registry, repo)
    for tag in TAGS:
        push_manifest(registry, repo, pushed.body, tag)
    return repo


def listing(reg, repo, query=""):
    r = call(reg, "GET", f"/v2/{repo}/tags/list{query}")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    doc = r.json()
    assert doc["name"] == repo
    return doc["tags"], r.headers.get("Link")


def test_list_sorted(registry, tagged):
    tags, link = listing(registry, tagged)
    assert sorted(tags) == sorted(TAGS)
    assert len(tags) == len(set(tags))
    # lexical order; case-insensitive order is also allowed by the spec
    assert tags in (sorted(TAGS), sorted(TAGS, key=lambda t: (t.lower(), t)))
    assert link is None


def test_page_with_n(registry, tagged):
    everything, _ = listing(registry, tagged)
    tags, link = listing(registry, tagged, "?n=3")
    assert tags == everything[:3]
    assert link is not None
    target = parse_link(link)
    parts = urlsplit(target)
    assert parts.path == f"/v2/{tagged}/tags/list"
    query = parse_qs(parts.query)
    assert query["n"] == ["3"]
    assert query["last"] == [everything[2]]


def test_last_is_exclusive(registry, tagged):
    everything, _ = listing(registry, tagged)
    tags, link = listing(registry, tagged, f"?last={everything[3]}")
    assert tags == everything[4:]
    assert link is None
    tags, _ = listing(registry, tagged, f"?n=2&last={everything[3]}")
    assert tags == everything[4:6]


def test_last_not_a_tag(registry, tagged):
    everything, _ = listing(registry, tagged)
    tags, _ = listing(registry, tagged, "?last=1.05")
    assert tags == [t for t in everything if t > "1.05"]
    tags, link = listing(registry, tagged, "?last=~~~")
    assert tags == []
    assert link is None


def test_exact_last_page_has_no_link(registry, tagged):
    everything, _ = listing(registry, tagged)
    tags, link = listing(registry, tagged, f"?n={len(everything)}")
    assert tags == everything
    assert link is None
    tags, link = listing(registry, tagged, f"?n={len(everything) + 10}")
    assert tags == everything
    assert link is None
    tags, link = listing(registry, tagged, f"?n=2&last={everything[-3]}")
    assert tags == everything[-2:]
    assert link is None


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_follow_links(registry, tagged, n):
    everything, _ = listing(registry, tagged)
    seen, query = [], f"?n={n}"
    for _ in range(len(everything) + 2):
        tags, link = listing(registry, tagged, query)
        assert 0 < len(tags) <= n
        seen += tags
        if link is None:
            break
        target = parse_link(link)
        assert target.startswith(f"/v2/{tagged}/tags/list?")
        query = "?" + target.split("?", 1)[1]
    assert seen == everything


def test_n_zero(registry, tagged):
    tags, link = listing(registry, tagged, "?n=0")
    assert tags == []
    assert link is None


def test_unknown_repository(registry):
    r = call(registry, "GET", f"/v2/{registry.repo()}/tags/list")
    assert_error(r, 404, "NAME_UNKNOWN")
    r = call(registry, "GET", f"/v2/{registry.repo()}/tags/list?n=1")
    assert_error(r, 404, "NAME_UNKNOWN")


def test_repository_without_tags(registry):
    repo = registry.repo()
    push_image(registry, repo)
    assert listing(registry, repo) == ([], None)


def test_invalid_name(registry):
    assert_error(call(registry, "GET", "/v2/UPPER/tags/list"), 400, "NAME_INVALID")


@pytest.mark.parametrize("n", ["-1", "abc", "1.5", "1e3", "99999999999999999999", "%20"])
def test_invalid_n(registry, tagged, n):
    r = call(registry, "GET", f"/v2/{tagged}/tags/list?n={n}")
    assert_error(r, 400)


def test_deleted_tag_disappears(registry):
    repo = registry.repo()
    pushed = push_image(registry, repo, "x")
    push_manifest(registry, repo, pushed.body, "y")
    assert call(registry, "DELETE", f"/v2/{repo}/manifests/x").status_code == 202
    assert listing(registry, repo) == (["y"], None)


def test_parent_of_repository_is_unknown(registry):
    repo = registry.repo("parent") + "/child/leaf"
    push_image(registry, repo, "t")
    assert listing(registry, repo) == (["t"], None)
    for parent in (repo.rsplit("/", 1)[0], repo.rsplit("/", 2)[0]):
        r = call(registry, "GET", f"/v2/{parent}/tags/list")
        assert_error(r, 404, "NAME_UNKNOWN")


def test_cached_pages_follow_every_tag_change(registry):
    """Rendered pages are cached; each push or delete of a tag must show at once."""
    repo = registry.repo()
    pushed = push_image(registry, repo, "m")
    push_manifest(registry, repo, pushed.body, "p")
    assert listing(registry, repo, "?n=1") == (["m"], f'</v2/{repo}/tags/list?n=1&last=m>; '
                                                     'rel="next"')
    assert listing(registry, repo, "?n=1&last=m") == (["p"], None)
    push_manifest(registry, repo, pushed.body, "a")
    push_manifest(registry, repo, pushed.body, "n")
    assert listing(registry, repo, "?n=1")[0] == ["a"]
    assert listing(registry, repo, "?n=1&last=m")[0] == ["n"]
    assert call(registry, "DELETE", f"/v2/{repo}/manifests/a").status_code == 202
    assert listing(registry, repo, "?n=1")[0] == ["m"]
    assert listing(registry, repo)[0] == ["m", "n", "p"]


def test_pages_keyed_by_the_raw_query(registry):
    """`last=a%26n%3D1` (one parameter, last = "a&n=1") and `last=a&n=1` decode to the
    same text but mean different pages: the cache must not confuse them."""
    repo = registry.repo()
    pushed = push_image(registry, repo, "a")
    for tag in ("b", "c"):
        push_manifest(registry, repo, pushed.body, tag)
    assert listing(registry, repo, "?last=a%26n%3D1") == (["b", "c"], None)
    assert listing(registry, repo, "?last=a&n=1")[0] == ["b"]
    assert listing(registry, repo, "?last=a%26n%3D1") == (["b", "c"], None)


def test_percent_encoded_name_gets_the_canonical_link(registry):
    repo = registry.repo()
    pushed = push_image(registry, repo, "a")
    push_manifest(registry, repo, pushed.body, "b")
    encoded = "%" + repo[0].encode().hex() + repo[1:]  # "test/..." -> "%74est/..."
    for path in (f"/v2/{encoded}/tags/list?n=1", f"/v2/{repo}/tags/list?n=1"):
        r = raw(registry, "GET", path)
        assert r.status == 200 and r.json() == {"name": repo, "tags": ["a"]}
        assert r.headers["Link"] == f'</v2/{repo}/tags/list?n=1&last=a>; rel="next"'


def test_a_big_tag_list_is_sorted_and_paged_off_the_event_loop(registry):
    """Past BIG_LIST tags the list is sorted and pages rendered on worker threads:
    the answers must be exactly those of the small-list path."""
    from concurrent.futures import ThreadPoolExecutor

    from registry.core.offload import BIG_LIST

    if getattr(registry, "driver", None) == "s3":  # sorting and paging do not depend on the driver
        pytest.skip("2,300 manifest PUTs take minutes on SeaweedFS; the S3 driver's "
                    "listing pages are tested in tests/storage (test_walk_pages)")
    repo = registry.repo()
    pushed = push_image(registry, repo, "seed")
    count = BIG_LIST + 300
    names = [f"v{i}.{i % 7}-r{i % 13}" for i in range(count)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda t: push_manifest(registry, repo, pushed.body, t), names))
    expected = sorted([*names, "seed"])
    everything, link = listing(registry, repo)
    assert everything == expected and link is None
    seen, query = [], "?n=1000"
    while query is not None:
        tags, link = listing(registry, repo, query)
        seen += tags
        query = None if link is None else "?" + parse_link(link).split("?", 1)[1]
    assert seen == expected
    assert listing(registry, repo, f"?n=3&last={expected[1500]}")[0] == expected[1501:1504]
