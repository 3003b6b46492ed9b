"""The SQLite spec index: every pushed spec is a row, listed by the API
(`/api/v1/spack/...`, problem JSON on bad input) and gone when its tag is."""

from __future__ import annotations

import json

from pushing import push_spack_oci_async

from loadtest.spackgen import make_spec


async def specs(client, path: str, status: int = 200) -> dict:
    r = await client.get(f"/api/v1/spack/{path}")
    body = await r.read()
    assert r.status == status, body
    return json.loads(body)


async def test_pushed_specs_are_indexed_with_what_search_needs(client):
    dep = make_spec("zlib", "1.3.1", fmt=4)
    root = make_spec("hdf5", "1.14.5", deps=[dep], target="zen3")
    for s in (dep, root):
        assert (await push_spack_oci_async(client, "site/cache", s))[0] == 201
    body = await specs(client, "site/cache/specs")
    assert body["cache"] == "site/cache"
    by_name = {s["name"]: s for s in body["specs"]}
    assert [s["name"] for s in body["specs"]] == ["hdf5", "zlib"]  # sorted by name
    hdf5, zlib = by_name["hdf5"], by_name["zlib"]
    assert hdf5["hash"] == root.hash and hdf5["version"] == "1.14.5"
    assert (hdf5["platform"], hdf5["os"], hdf5["target"]) == ("linux", "debian12", "zen3")
    assert hdf5["compiler"] == "gcc@=12.2.0" and zlib["compiler"] == "gcc@12.2.0"
    assert hdf5["variants"] == {"build_system": "generic", "shared": True}
    assert hdf5["dependencies"] == [{"name": "zlib", "hash": dep.hash}]
    assert hdf5["size"] == len(root.tarball)
    assert (hdf5["format"], zlib["format"]) == (5, 4)
    assert hdf5["source"] == "oci"
    caches = await specs(client, "")
    assert caches == {"caches": [{"name": "site/cache", "specs": 2}]}


async def test_filters_and_pages(client):
    pushed = [make_spec(f"pkg{i}", target="zen3" if i % 2 else "icelake") for i in range(5)]
    pushed += [make_spec("pkg1", "2.0", target="zen3")]
    for s in pushed:
        assert (await push_spack_oci_async(client, "c", s))[0] == 201
    named = await specs(client, "c/specs?name=pkg1")
    assert sorted(s["version"] for s in named["specs"]) == ["1.0", "2.0"]
    zen = await specs(client, "c/specs?target=zen3")
    assert {s["name"] for s in zen["specs"]} == {"pkg1", "pkg3"} and len(zen["specs"]) == 3
    both = await specs(client, "c/specs?target=icelake&name=pkg2")
    assert [s["name"] for s in both["specs"]] == ["pkg2"]
    seen, path = [], "c/specs?n=2"
    for _ in range(10):
        r = await client.get(f"/api/v1/spack/{path}")
        page = json.loads(await r.read())
        assert len(page["specs"]) <= 2
        seen += [s["hash"] for s in page["specs"]]
        if "next" not in page:
            assert "Link" not in r.headers
            break
        assert r.headers["Link"] == f'<{page["next"]}>; rel="next"'
        path = page["next"].removeprefix("/api/v1/spack/")
    assert sorted(seen) == sorted(s.hash for s in pushed)  # each once, none lost


async def test_deleted_tag_leaves_the_index(client):
    a, b = make_spec("a-pkg"), make_spec("b-pkg")
    for s in (a, b):
        assert (await push_spack_oci_async(client, "c1", s))[0] == 201
    r = await client.delete(f"/v2/c1/manifests/{a.tag}")
    assert r.status == 202
    assert [s["name"] for s in (await specs(client, "c1/specs"))["specs"]] == ["b-pkg"]


async def test_bad_queries_are_problem_documents(client):
    assert (await push_spack_oci_async(client, "c2", make_spec("a-pkg")))[0] == 201
    for path, status in [("c2/specs?n=0", 400), ("c2/specs?n=100000", 400),
                         ("c2/specs?n=x", 400), ("c2/specs?name=..%2F..", 400),
                         ("c2/specs?target=a%00b", 400), ("c2/specs?last=zzz", 400),
                         ("c2/specs?name=a&name=b", 400), ("NOT..valid/specs", 400),
                         ("nothing/here/specs", 404)]:
        r = await client.get(f"/api/v1/spack/{path}")
        assert r.status == status, (path, await r.text())
        assert r.headers["Content-Type"] == "application/problem+json"
        problem = json.loads(await r.read())
        assert problem["status"] == status and problem["title"]
    r = await client.post("/api/v1/spack/c2/specs")
    assert r.status == 405
