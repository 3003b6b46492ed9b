"""`GET /api/v1/search` over a mixed store: images (an index of two platforms, one with a
zen3 target), an artifact, an image with config labels and Spack specs pushed as spack's
OCI push does, in repositories the rules hide from one reader; every filter, pagination
by the Link header, and hostile parameters (400 problem documents, never a 500)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from urllib.parse import quote

import pytest
from harness import wait_for
from pushing import (
    OCI_INDEX,
    OCI_MANIFEST,
    descriptor,
    image_config,
    push_blob,
    push_image,
    push_spack_oci,
    put_manifest,
)

from loadtest.spackgen import make_spec
from registry.auth.passwords import hash_password

from .helpers import call, parse_link

PASSWORDS = {"writer": "writer-pw-1", "reader": "reader-pw-2"}
W = ("writer", PASSWORDS["writer"])
ZEN3 = {"io.github.registry.arch.target": "zen3",
        "org.opencontainers.image.title": "py-numpy"}
HDF5 = make_spec("hdf5", "1.14.3", target="zen2")
OLD_HDF5 = make_spec("hdf5", "1.12.2", target="x86_64_v3")
NUMPY = make_spec("py-numpy", "1.26.4", target="x86_64_v3")
HIDDEN = make_spec("hdf5", "1.14.3", target="zen3", seed=99)


def search(reg, query: str, who: str | None = "reader", status: int = 200):
    r = call(reg, "GET", f"/api/v1/search?{query}",
             auth=(who, PASSWORDS[who]) if who else None)
    assert r.status_code == status, (query, r.status_code, r.text)
    return r


def found(reg, query: str, who: str | None = "reader") -> list[tuple[str, str, str]]:
    """(kind, repository, tag or spec) of each result, in the answer's order."""
    return [(x["kind"], x["repository"],
             f"{x['name']}@{x['version']}" if x["kind"] == "spack" else x["tag"])
            for x in search(reg, query, who).json()["results"]]


@pytest.fixture(scope="module")
def users() -> str:
    return ", ".join(json.dumps(f"{name}:{hash_password(pw)}")
                     for name, pw in PASSWORDS.items())


def push_store(reg) -> str:
    """The mixed store; the digest of the SBOM artifact."""
    amd = push_image(reg, "pub/app", None, [b"amd"], auth=W, annotations=ZEN3,
                     config=image_config("amd64", variant="v3"))
    arm = push_image(reg, "pub/app", None, [b"arm"], auth=W, config=image_config("arm64"))
    put_manifest(reg, "pub/app", "latest", {
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            descriptor(OCI_MANIFEST, amd.manifest,
                       platform={"os": "linux", "architecture": "amd64", "variant": "v3"}),
            descriptor(OCI_MANIFEST, arm.manifest,
                       platform={"os": "linux", "architecture": "arm64"})]},
        OCI_INDEX, auth=W)
    push_image(reg, "pub/tool", "2.0", [b"tool"], auth=W, config=image_config(
        "amd64", config={"Labels": {"org.example.team": "hpc", "stage": "beta"}}))
    push_image(reg, "secret/app", "py-numpy", [b"secret"], auth=W, annotations=ZEN3,
               config=image_config("amd64", variant="v3"))
    for data in (b"{}", b"[sbom]"):
        push_blob(reg, "pub/app", data, auth=W)
    sbom = put_manifest(reg, "pub/app", "sbom", {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/spdx+json",
        "config": descriptor("application/vnd.oci.empty.v1+json", b"{}"),
        "layers": [descriptor("application/spdx+json", b"[sbom]")],
        "subject": descriptor(OCI_MANIFEST, amd.manifest)}, auth=W)
    for spec in (HDF5, OLD_HDF5, NUMPY):
        push_spack_oci(reg, "pub/cache", spec, auth=W)
    push_spack_oci(reg, "secret/cache", HIDDEN, auth=W)
    return sbom


def test_search_over_a_mixed_store(start_registry, users, driver):
    if driver not in ("memory", "external"):
        pytest.skip("the answer comes from the index alone: one driver is enough")
    reg = start_registry(config=(
        f'[auth]\nmode = "token"\naudit_log = ""\nusers = [{users}]\n'
        'rules = ["* user:writer pull,push,delete", "pub/* user:reader pull", '
        '"pub/tool anonymous pull"]\n'))
    sbom = push_store(reg)
    # New pushes are searchable once the index writer has applied them.
    wait_for(lambda: found(reg, "kind=spack", "writer"), lambda got: len(got) == 4)
    wait_for(lambda: found(reg, "q=sbom"), lambda got: len(got) == 1)

    # Words, and only what the caller may pull.
    assert {x[1] for x in found(reg, "q=py-numpy")} == {"pub/app", "pub/cache"}
    assert {x[1] for x in found(reg, "q=py-numpy", "writer")} == {
        "pub/app", "pub/cache", "secret/app"}
    assert set(found(reg, "q=hdf5&kind=spack")) == {
        ("spack", "pub/cache", "hdf5@1.12.2"), ("spack", "pub/cache", "hdf5@1.14.3")}
    assert len(found(reg, "q=hdf5&kind=spack", "writer")) == 3
    hit = search(reg, "q=hdf5@1.14&kind=spack").json()["results"]
    assert [(x["repository"], x["cache"], x["hash"], x["platforms"][0]["target"])
            for x in hit] == [
        ("pub/cache", "pub/cache", HDF5.hash, "zen2")]
    assert hit[0]["name"] == "hdf5" and hit[0]["version"] == "1.14.3" and hit[0]["compiler"]
    assert isinstance(hit[0]["variants"], dict) and isinstance(hit[0]["rank"], float)

    # The index stands for its untagged children; its platforms carry their targets.
    app = search(reg, "q=latest&kind=image").json()["results"]
    assert [(x["repository"], x["tag"]) for x in app] == [("pub/app", "latest")]
    assert {(p["architecture"], p.get("target")) for p in app[0]["platforms"]} == {
        ("amd64", "zen3"), ("arm64", "aarch64")}
    # Filters combine.
    assert found(reg, "os=linux&arch=arm64") == [("image", "pub/app", "latest")]
    assert found(reg, "target=zen3") == [("image", "pub/app", "latest")]
    # fits=1: whatever runs on a zen3 host, generic x86_64 builds (pub/tool) included.
    assert {("image", "pub/app", "latest"), ("image", "pub/tool", "2.0"),
            ("spack", "pub/cache", "hdf5@1.14.3"), ("spack", "pub/cache", "hdf5@1.12.2"),
            ("spack", "pub/cache", "py-numpy@1.26.4")} <= set(found(reg, "target=zen3&fits=1"))
    assert found(reg, "target=zen2&fits=1&q=tool") == [("image", "pub/tool", "2.0")]
    assert found(reg, "target=neoverse_v1&fits=1&kind=image&q=app") == [
        ("image", "pub/app", "latest")]  # its arm64 child
    assert set(found(reg, "target=zen3&fits=1&kind=spack&q=hdf5")) == {
        ("spack", "pub/cache", "hdf5@1.14.3"), ("spack", "pub/cache", "hdf5@1.12.2")}
    assert found(reg, "target=x86_64_v3&fits=1&spack=hdf5") == [
        ("spack", "pub/cache", "hdf5@1.12.2")]
    assert found(reg, "spack=hdf5@1.14") == [("spack", "pub/cache", "hdf5@1.14.3")]
    assert found(reg, "spack=hdf5@1.1") == []
    assert found(reg, "arch=amd64&kind=spack&spack=py-numpy") == [
        ("spack", "pub/cache", "py-numpy@1.26.4")]
    assert found(reg, "label=org.example.team%3Dhpc") == [("image", "pub/tool", "2.0")]
    assert found(reg, "label=org.example.team%3Dhpc&label=stage%3Dbeta&q=tool") == [
        ("image", "pub/tool", "2.0")]
    assert found(reg, "label=stage%3Dalpha") == []
    # Nothing here is signed (the trust room's state in the index says so); specs have no
    # signature state and match neither.
    assert found(reg, "signed=1") == []
    unsigned = found(reg, "signed=0&q=app")
    assert unsigned and all(k != "spack" for k, _, _ in unsigned)
    art = search(reg, "kind=artifact").json()["results"]
    assert [(x["repository"], x["digest"], x["artifactType"]) for x in art] == [
        ("pub/app", sbom, "application/spdx+json")]

    # Pages: n at a time by the Link header, together the whole answer, each once.
    whole = search(reg, "n=500").json()["results"]
    assert len(whole) >= 8 and not any(x["repository"].startswith("secret/") for x in whole)
    pages, url = [], "/api/v1/search?n=3"
    while url:
        r = call(reg, "GET", url, auth=("reader", PASSWORDS["reader"]))
        assert r.status_code == 200, r.text
        pages += r.json()["results"]
        url = parse_link(r.headers["Link"]) if "Link" in r.headers else ""
    assert [(x["kind"], x["repository"], x.get("digest") or x["hash"]) for x in pages] == [
        (x["kind"], x["repository"], x.get("digest") or x["hash"]) for x in whole]
    ranked, url = [], "/api/v1/search?q=hdf5&n=1"
    while url:
        r = call(reg, "GET", url, auth=("reader", PASSWORDS["reader"]))
        ranked += r.json()["results"]
        url = parse_link(r.headers["Link"]) if "Link" in r.headers else ""
    assert len(ranked) == len(search(reg, "q=hdf5").json()["results"]) >= 2

    # Anonymous callers (the dashboard's visitors) search what anonymous may pull;
    # credentials that do not hold are refused, not taken for anonymous.
    assert {x[1] for x in found(reg, "n=500", None)} == {"pub/tool"}
    assert found(reg, "q=hdf5", None) == []
    r = call(reg, "GET", "/api/v1/search?q=hdf5", auth=("reader", "wrong password"))
    assert r.status_code == 401, r.text


HOSTILE = ["q=%22", "q=a%00b", "q=" + "x" * 300, "q=" + "+w" * 20, "q=%40%40", "n=0",
           "n=100000", "n=-1", "last=garbage", "last=1/image/%00@k", "target=zen3&fits=2",
           "fits=1", "target=nonsuch&fits=1", "target=%3Cscript%3E", "spack=hdf5@", "spack=@1",
           "label=novalue", "label==v", "kind=thing", "os=a%20b", "signed=maybe",
           "nope=1", "q=a&q=b", "arch=" + "a" * 40, "q=%28", "q=%E2%80%AE", "q=%2A",
           "severity=severe", "severity=HIGH", "severity=", "severity=high&severity=low",
           "severity=%00", "severity=" + "h" * 300, "scanned=2", "scanned=maybe"]


def test_hostile_parameters_are_refused_with_a_problem(registry, driver):
    if driver not in ("memory", "external"):
        pytest.skip("parameters are checked before any storage: one driver is enough")
    for query in HOSTILE:
        r = search(registry, query, None, 400)
        problem = r.json()
        assert r.headers["Content-Type"] == "application/problem+json"
        assert problem["title"] == "SEARCH_INVALID", (query, problem)
    # FTS5 syntax is only ever text: operators, quotes, column filters find nothing.
    # Bytes that are not UTF-8, surrogates: an answer, never a 500.
    for raw in ("%FF", "%ED%A0%80", "a%C0%AFb", "%F4%90%80%80"):
        r = call(registry, "GET", f"/api/v1/search?q={raw}")
        assert r.status_code in (200, 400), (raw, r.status_code, r.text)
    # The registry is shared with every other test of the session: words of our own, so
    # that what other tests pushed (a repository `.../a/b`) is not a match for the words.
    a, b, x, y = (f"zq{w}{uuid.uuid4().hex[:8]}" for w in "abxy")
    for q in [f'{a}"{b}', f"NEAR({a} {b})", f"{x} OR {y}", f"col:{x}", f"^{x}", f"{a}*{b}",
              f"*{x}", f"{x}'--"]:
        assert search(registry, f"q={quote(q)}", None).json() == {"results": []}


def test_the_cli_searches_the_store_s_index(registry, driver, tmp_path):
    """`registry search` reads the index file of a store another process serves."""
    if driver != "filesystem":
        pytest.skip("the command reads a data directory: the filesystem driver's")
    repo = registry.repo("clitool")
    push_image(registry, repo, "v9", [b"cli"], annotations={
        "org.opencontainers.image.title": "py-numpy-cli"},
        config=image_config("amd64", variant="v3"))
    cache = registry.repo("clicache")
    push_spack_oci(registry, cache, make_spec("hdf5", "1.14.9", target="zen3", seed=5))
    wait_for(lambda: call(registry, "GET", "/api/v1/search?q=clicache").json()["results"],
             lambda got: len(got) >= 2)

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "registry", "search", "--data",
                               str(registry.data_dir), *args],
                              capture_output=True, text=True, timeout=120, check=False)

    table = cli("numpy-cli")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["KIND", "REPOSITORY", "TAG/SPEC", "DIGEST", "SEVERITY",
                                 "PLATFORMS"]
    assert len(lines) == 2 and lines[1].split()[:3] == ["image", repo, "v9"]
    assert "linux/amd64/v3 (x86_64_v3)" in lines[1]
    got = cli("--spack", "hdf5@1.14.9", "--target", "zen3", "--fits", "--json")
    assert got.returncode == 0, got.stderr
    assert [(r["kind"], r["cache"], r["version"]) for r in json.loads(got.stdout)] == [
        ("spack", cache, "1.14.9")]
