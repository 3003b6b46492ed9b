"""`/api/v1/spack/<cache>/resolve`: which cached builds of a package fit a host, over
specs concretized by a real spack for different targets (tests/fixtures/spack/targets)
and generated ones; problem documents for what does not fit and for hostile queries."""

from __future__ import annotations

import json
from pathlib import Path

from pushing import push_spack_oci_async

from loadtest.spackgen import FakeSpec, make_spec, tarball

TARGETS = Path(__file__).parent.parent / "fixtures" / "spack" / "targets"


def real_specs() -> dict[str, FakeSpec]:
    """The fixtures by target: spack's own `spack spec --json` documents, pushed as
    spack's OCI push would push their root (one layer)."""
    out = {}
    for path in sorted(TARGETS.glob("*.json")):
        doc = json.loads(path.read_text())["spec"]
        root = doc["nodes"][0]
        out[root["arch"]["target"]["name"] if isinstance(root["arch"]["target"], dict)
            else root["arch"]["target"]] = FakeSpec(
            root["name"], root["version"], root["hash"], doc["nodes"],
            tarball(root["name"], 64, len(out)), doc["_meta"]["version"])
    return out


async def resolve(client, query: str, status: int = 200) -> dict:
    r = await client.get(f"/api/v1/spack/{query}")
    body = json.loads(await r.read())
    assert r.status == status, body
    if status != 200:
        assert r.headers["Content-Type"] == "application/problem+json"
    return body


async def test_real_spack_builds_resolve_for_each_host(client):
    specs = real_specs()
    assert set(specs) == {"x86_64_v2", "x86_64_v3", "haswell", "zen2", "zen3"}
    for spec in specs.values():
        assert (await push_spack_oci_async(client, "site/cache", spec))[0] == 201
    os_name = next(iter(specs.values())).nodes[0]["arch"]["platform_os"]
    for host, want in [("zen3", "zen3"), ("zen4", "zen3"), ("zen2", "zen2"),
                       ("x86_64_v4", "x86_64_v3"),
                       ("haswell", "haswell"), ("icelake", "haswell"),
                       ("x86_64_v2", "x86_64_v2"), ("nehalem", "x86_64_v2")]:
        body = await resolve(client, f"site/cache/resolve?spec=zlib&target={host}&os={os_name}")
        assert body["hash"] == specs[want].hash, (host, body)
        assert (body["name"], body["version"]) == ("zlib", specs[want].version)
        ranks = [c["rank"] for c in body["candidates"] if c["fits"]]
        assert ranks == list(range(1, len(ranks) + 1))
        best = body["candidates"][0]
        assert best["target"] == want and best["os"] == os_name and best["compiler"]
    body = await resolve(client, f"site/cache/resolve?spec=zlib&target=zen3&os={os_name}")
    assert [c["target"] for c in body["candidates"] if c["fits"]] == [
        "zen3", "zen2", "x86_64_v3", "x86_64_v2"]  # the most specific first
    reasons = {c["target"]: c["reason"] for c in body["candidates"]}
    assert "ancestor of zen3" in reasons["x86_64_v3"]
    assert not next(c for c in body["candidates"] if c["target"] == "haswell")["fits"]
    # A host older than every build: 404, the candidates in the problem body, each with why.
    problem = await resolve(client, "site/cache/resolve?spec=zlib&target=x86_64", 404)
    assert problem["title"] == "NOTHING_FITS"
    assert {c["target"] for c in problem["errors"]["candidates"]} == set(specs)
    assert all(not c["fits"] and "x86_64" in c["reason"]
               for c in problem["errors"]["candidates"])
    # Another OS: nothing fits; no OS given: any OS.
    other = await resolve(client, "site/cache/resolve?spec=zlib&target=zen3&os=rhel8", 404)
    assert all("rhel8" in c["reason"] for c in other["errors"]["candidates"])
    assert (await resolve(client, "site/cache/resolve?spec=zlib&target=zen3"))["hash"] == (
        specs["zen3"].hash)


async def test_versions_then_targets(client):
    pushed = [make_spec("mylib", "1.2.1", target="x86_64_v3"),
              make_spec("mylib", "1.2.9", target="x86_64_v3"),
              make_spec("mylib", "1.2.9", target="x86_64_v2", seed=7),
              make_spec("mylib", "1.3.0", target="x86_64_v2"),
              make_spec("mylib", "2.0", target="zen4")]
    for s in pushed:
        assert (await push_spack_oci_async(client, "c", s))[0] == 201

    async def chosen(spec: str, target: str = "zen3") -> str:
        body = await resolve(client, f"c/resolve?spec={spec}&target={target}&os=debian12")
        return next(s for s in pushed if s.hash == body["hash"]).version + "/" + (
            body["candidates"][0]["target"])

    assert await chosen("mylib") == "1.2.9/x86_64_v3"  # the most specific target first
    assert await chosen("mylib", "zen4") == "2.0/zen4"
    assert await chosen("mylib@1.3:") == "1.3.0/x86_64_v2"
    assert await chosen("mylib@1.2") == "1.2.9/x86_64_v3"  # newest of 1.2.x
    assert await chosen("mylib@=1.2.1") == "1.2.1/x86_64_v3"
    assert await chosen("mylib@1.2.1,1.3") == "1.2.1/x86_64_v3"
    body = await resolve(client, "c/resolve?spec=mylib@1.2&target=zen3&os=debian12")
    assert [c["version"] for c in body["candidates"]] == ["1.2.9", "1.2.1", "1.2.9"]
    nothing = await resolve(client, "c/resolve?spec=mylib@3&target=zen3", 404)
    assert nothing["errors"]["candidates"] == []
    assert (await resolve(client, "c/resolve?spec=other&target=zen3", 404))["title"] == (
        "NOTHING_FITS")


async def test_hostile_queries_are_problem_documents(client):
    assert (await push_spack_oci_async(client, "c2", make_spec("a-pkg")))[0] == 201
    for query, status in [
        ("c2/resolve?target=zen3", 400), ("c2/resolve?spec=a-pkg", 400),
        ("c2/resolve?spec=a-pkg&target=zen99", 400),
        ("c2/resolve?spec=a-pkg&target=zen3&target=zen2", 400),
        ("c2/resolve?spec=A-PKG&target=zen3", 400),
        ("c2/resolve?spec=a-pkg@2:1&target=zen3", 400),
        ("c2/resolve?spec=a-pkg@1:2:3&target=zen3", 400),
        ("c2/resolve?spec=a-pkg%00&target=zen3", 400),
        ("c2/resolve?spec=a-pkg&target=zen3&os=a%2Fb", 400),
        ("c2/resolve?spec=" + "a" * 5000 + "&target=zen3", 400),
        ("c2/resolve?spec=a-pkg&target=" + "%FF" * 10, 400),
        ("NOT..valid/resolve?spec=a-pkg&target=zen3", 400),
        ("nothing/here/resolve?spec=a-pkg&target=zen3", 404),
    ]:
        r = await client.get(f"/api/v1/spack/{query}")
        assert r.status == status, (query, await r.text())
        assert r.headers["Content-Type"] == "application/problem+json"
        assert json.loads(await r.read())["status"] == status
    r = await client.post("/api/v1/spack/c2/resolve?spec=a-pkg&target=zen3")
    assert r.status == 405
