"""`POST /api/v1/spack/<cache>/images`: images composed from a build cache, over
builds made by a real spack (tests/fixtures/spack/v1.1.0-signed: trivial-root, which
links trivial-dep) and generated ones; the layer order, the same digest twice, 404 /
409 / 400, who may compose what, and the image pulled by skopeo and unpacked.

The answer comes from the cache's state and the mount rule, the same on every driver:
these run on the memory driver only (the suite's time budget)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile

import pytest
from pushing import digest_of, image_config, push_image, push_spack_oci
from spackreal import real_specs

from loadtest.spackgen import FakeSpec, make_spec
from registry.auth.passwords import hash_password

from .helpers import call

PASSWORDS = {"writer": "writer-pw-1", "alice": "alice-pw-2", "bob": "bob-pw-3",
             "carol": "carol-pw-4"}


@pytest.fixture(autouse=True)
def memory_only(driver: str) -> None:
    if driver not in ("memory", "external"):
        pytest.skip("the cache's state and the mount rule answer the same on every driver")


def prefix_of(spec: FakeSpec) -> str:
    with tarfile.open(fileobj=io.BytesIO(spec.tarball)) as tar:
        name = next(m.name for m in tar if "/.spack/" in m.name)
    return "/" + name.split("/.spack/")[0]


def compose(reg, cache: str, body: dict | bytes, status: int = 201, auth=None) -> dict:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = call(reg, "POST", f"/api/v1/spack/{cache}/images", data=data, auth=auth,
             headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    if status != 201:
        assert r.headers["Content-Type"] == "application/problem+json"
    return r.json() | ({"location": r.headers["Location"]} if status == 201 else {})


def image(reg, repo: str, ref: str, auth=None) -> tuple[dict, dict]:
    r = call(reg, "GET", f"/v2/{repo}/manifests/{ref}", auth=auth,
             headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 200, r.text
    manifest = r.json()
    c = call(reg, "GET", f"/v2/{repo}/blobs/{manifest['config']['digest']}", auth=auth)
    assert c.status_code == 200
    return manifest, c.json()


def diff_id(tarball: bytes) -> str:
    return "sha256:" + hashlib.sha256(gzip.decompress(tarball)).hexdigest()


@pytest.fixture(scope="module")
def cache(registry) -> dict[str, FakeSpec]:
    """A cache holding the real-spack builds and generated ones with variants."""
    specs = real_specs()
    push_spack_oci(registry, "cmp/cache", specs["trivial-root"])
    push_spack_oci(registry, "cmp/cache", specs["trivial-dep"])
    for seed, (version, target, mpi) in enumerate([
            ("1.0", "x86_64_v2", True), ("1.1", "x86_64_v3", False),
            ("1.1", "x86_64_v2", False)]):
        spec = make_spec("mylib", version, target=target, seed=seed)
        spec.nodes[0]["parameters"].update(mpi=mpi, api="v2")
        push_spack_oci(registry, "cmp/cache", spec)
        specs[f"mylib-{version}-{target}"] = spec
    return specs


def test_layers_in_dependency_order_the_same_digest_twice(registry, cache):
    dep, root = cache["trivial-dep"], cache["trivial-root"]
    made = compose(registry, "cmp/cache", {"specs": ["trivial-root@1.0"], "target": "zen4"})
    assert made["reference"].startswith("cmp/cache/images:trivial-root-")
    assert made["location"] == f"/v2/cmp/cache/images/manifests/{made['digest']}"
    assert [s["name"] for s in made["specs"]] == ["trivial-dep", "trivial-root"]
    tag = made["reference"].split(":", 1)[1]
    manifest, config = image(registry, "cmp/cache/images", tag)
    assert [lay["digest"] for lay in manifest["layers"]] == [
        dep.tarball_digest, root.tarball_digest]  # the cache's own blobs, dependencies first
    assert config["rootfs"]["diff_ids"] == [diff_id(dep.tarball), diff_id(root.tarball)]
    assert (config["architecture"], config["os"]) == ("amd64", "linux")
    assert config["config"]["Env"] == [
        f"PATH={prefix_of(root)}/bin:{prefix_of(dep)}/bin:/bin:/usr/bin"]
    assert "created" not in config and "history" not in config
    # Again, and with the dependency named too and the order changed: the same image
    # for the same roots; another set of roots is another tag.
    again = compose(registry, "cmp/cache", {"specs": ["trivial-root@1.0"], "target": "zen4"})
    assert (again["reference"], again["digest"]) == (made["reference"], made["digest"])
    both = compose(registry, "cmp/cache", {"specs": ["trivial-root", "trivial-dep"]})
    swapped = compose(registry, "cmp/cache", {"specs": ["trivial-dep", "trivial-root"]})
    assert both["digest"] == swapped["digest"] and both["reference"] != made["reference"]
    named = compose(registry, "cmp/cache", {"specs": ["trivial-root"], "tag": "mine"})
    assert named["reference"] == "cmp/cache/images:mine"
    assert named["digest"] == compose(registry, "cmp/cache", {"specs": ["trivial-root"]})[
        "digest"]


def test_variants_versions_and_targets_choose_the_build(registry, cache):
    def chosen(*specs: str, target: str | None = None) -> list[str]:
        body: dict = {"specs": list(specs)} | ({"target": target} if target else {})
        made = compose(registry, "cmp/cache", body)
        return [f"{s['version']}/{s['target']}" for s in made["specs"]]

    assert chosen("mylib") == ["1.1/x86_64_v2"]  # newest, the most portable build
    assert chosen("mylib", target="zen3") == ["1.1/x86_64_v3"]  # the most specific fit
    assert chosen("mylib+mpi") == ["1.0/x86_64_v2"]
    assert chosen("mylib ~mpi api=v2", target="haswell") == ["1.1/x86_64_v3"]
    assert chosen("mylib@1.0:1.0.9") == ["1.0/x86_64_v2"]
    h = cache["mylib-1.1-x86_64_v3"].hash
    assert chosen(f"mylib /{h[:8]}") == ["1.1/x86_64_v3"]
    # Nothing matches: 404 naming the spec; builds that match but do not fit: 409.
    for spec in ["mylib@2", "mylib+mpi api=v1", "nosuch", "mylib@1.0 ~mpi"]:
        problem = compose(registry, "cmp/cache", {"specs": ["trivial-root", spec]}, 404)
        assert problem["title"] == "SPEC_UNKNOWN" and problem["errors"]["spec"] == spec
    problem = compose(registry, "cmp/cache", {"specs": ["trivial-root"], "target": "zen2"},
                      409)
    assert problem["title"] == "SPEC_DOES_NOT_FIT" and problem["errors"]["spec"] == (
        "trivial-root")
    assert "zen3" in problem["errors"]["candidates"][0]["reason"]
    problem = compose(registry, "cmp/cache", {"specs": ["mylib+mpi"], "target": "aarch64"},
                      409)
    assert "x86_64" in problem["errors"]["candidates"][0]["reason"]
    assert compose(registry, "cmp/nosuchcache", {"specs": ["zlib"]}, 404)["title"] == (
        "NAME_UNKNOWN")


@pytest.mark.parametrize("body", [
    b"not json", b"[]", b'{"specs": "zlib"}', b'{"specs": []}', b'{"specs": [1]}',
    b'{"specs": ["zlib"], "extra": 1}', b'{"specs": ["zlib"], "target": 3}',
    b'{"specs": ["A"]}', b'{"specs": ["zlib%gcc"]}', b'{"specs": ["zlib ^dep"]}',
    b'{"specs": ["zlib@2:1"]}', b'{"specs": ["zlib@1:2:3"]}', b'{"specs": ["zlib\\u0000"]}',
    b'{"specs": ["zlib +x +x"]}', b'{"specs": ["zlib target=zen3"]}',
    b'{"specs": ["zlib /ABC"]}', b'{"specs": ["zlib <script>"]}',
    json.dumps({"specs": ["z" + " +v" * 40]}).encode(),
    json.dumps({"specs": ["z" * 600]}).encode(),
    json.dumps({"specs": ["zlib"] * 65}).encode(),
    b'{"specs": ["zlib"], "target": "zen99"}', b'{"specs": ["zlib"], "base": "a b:c"}',
    b'{"specs": ["zlib"], "base": "noTAG"}', b'{"specs": ["zlib"], "base": "UP/x:v1"}',
    b'{"specs": ["zlib"], "tag": "x.spack"}', b'{"specs": ["zlib"], "tag": "-x"}',
    b"[" * 100000,
])
def test_hostile_bodies_are_400(registry, cache, body):
    problem = compose(registry, "cmp/cache", body, 413 if len(body) > 65536 else 400)
    assert problem["status"] in (400, 413)


def test_a_base_image_comes_first_and_keeps_its_config(registry, cache):
    base_config = image_config("amd64", config={"Env": ["PATH=/usr/local/bin:/usr/bin",
                                                        "LANG=C.UTF-8"],
                                                "Cmd": ["/bin/sh"]},
                               rootfs={"type": "layers", "diff_ids": ["sha256:" + "1" * 64]},
                               history=[{"created_by": "base layer"}])
    base = push_image(registry, "cmp/base", "v1", [b"base layer bytes"], config=base_config)
    made = compose(registry, "cmp/cache", {"specs": ["trivial-root"], "base": "cmp/base:v1"})
    manifest, config = image(registry, "cmp/cache/images", made["digest"])
    assert [lay["digest"] for lay in manifest["layers"]] == [
        base.blobs[1], cache["trivial-dep"].tarball_digest, cache["trivial-root"].tarball_digest]
    assert config["rootfs"]["diff_ids"][0] == "sha256:" + "1" * 64
    assert config["config"]["Cmd"] == ["/bin/sh"]
    assert config["config"]["Env"][1:] == ["LANG=C.UTF-8"]
    assert config["config"]["Env"][0].endswith("/bin:/usr/local/bin:/usr/bin")
    assert [h["created_by"] for h in config["history"]][1:] == [
        f"spack: trivial-dep@1.0 /{cache['trivial-dep'].hash}",
        f"spack: trivial-root@1.0 /{cache['trivial-root'].hash}"]
    by_digest = compose(registry, "cmp/cache", {"specs": ["trivial-root"],
                                                 "base": f"cmp/base@{base.digest}"})
    assert (by_digest["digest"], by_digest["reference"]) == (made["digest"], made["reference"])
    assert compose(registry, "cmp/cache", {"specs": ["trivial-root"], "base": "cmp/base:no"},
                   404)["title"] == "MANIFEST_UNKNOWN"
    odd = push_image(registry, "cmp/base", "odd", [b"odd"],
                     config=image_config(rootfs={"type": "layers", "diff_ids": "no"}))
    assert compose(registry, "cmp/cache", {"specs": ["trivial-root"], "base": "cmp/base:odd"},
                   409)["title"] == "BASE_UNUSABLE" and odd.digest
    arm = push_image(registry, "cmp/base", "arm", [b"arm"], config=image_config("arm64"))
    assert arm.digest
    assert compose(registry, "cmp/cache", {"specs": ["trivial-root"], "base": "cmp/base:arm"},
                   409)["title"] == "BASE_UNUSABLE"


def test_the_caller_needs_the_cache_the_images_repository_and_the_base(start_registry):
    users = ", ".join(json.dumps(f"{n}:{hash_password(pw)}") for n, pw in PASSWORDS.items())
    reg = start_registry(config=(
        f'[auth]\nmode = "token"\naudit_log = ""\nusers = [{users}]\n'
        'rules = ["* user:writer pull,push,delete", "spc/cache user:alice pull", '
        '"spc/cache/images user:alice pull,push", "pub/base user:alice pull", '
        '"spc/cache user:bob pull", "spc/cache/images user:bob pull", '
        '"spc/cache/images user:carol pull,push"]\n'))
    w, alice, bob, carol = (("writer", PASSWORDS["writer"]), ("alice", PASSWORDS["alice"]),
                            ("bob", PASSWORDS["bob"]), ("carol", PASSWORDS["carol"]))
    specs = real_specs()
    push_spack_oci(reg, "spc/cache", specs["trivial-root"], auth=w)
    push_spack_oci(reg, "spc/cache", specs["trivial-dep"], auth=w)
    secret = push_image(reg, "secret/base", "v1", [b"secret layer"], auth=w)
    push_image(reg, "pub/base", "v1", [b"public layer"], auth=w, config=image_config(
        rootfs={"type": "layers", "diff_ids": [digest_of(b"public layer")]}))
    body = {"specs": ["trivial-root"]}
    assert compose(reg, "spc/cache", body, 403, auth=bob)["title"] == "DENIED"  # no push
    assert compose(reg, "spc/cache", body, 403, auth=carol)["title"] == "DENIED"  # no pull
    assert compose(reg, "spc/cache", body | {"base": "secret/base:v1"}, 403,
                   auth=alice)["title"] == "DENIED"
    for digest in secret.blobs:  # nothing of the base reached the images repository
        assert call(reg, "HEAD", f"/v2/spc/cache/images/blobs/{digest}",
                    auth=w).status_code == 404
    assert compose(reg, "spc/cache", body, 401)["status"] == 401  # anonymous
    made = compose(reg, "spc/cache", body | {"base": "pub/base:v1"}, auth=alice)
    manifest, _ = image(reg, "spc/cache/images", made["digest"], auth=alice)
    assert len(manifest["layers"]) == 3


def test_skopeo_pulls_the_composed_image_and_the_files_are_at_their_prefixes(
        registry, cache, tmp_path):
    made = compose(registry, "cmp/cache", {"specs": ["trivial-root"], "tag": "e2e"})
    layout = tmp_path / "layout"
    done = subprocess.run(
        ["skopeo", "copy", "--src-tls-verify=false",
         f"docker://{registry.host}/cmp/cache/images:e2e", f"oci:{layout}:e2e"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    assert digest == made["digest"]
    manifest = json.loads((layout / "blobs" / "sha256" / digest.split(":")[1]).read_text())
    rootfs = tmp_path / "rootfs"
    for layer in manifest["layers"]:
        with tarfile.open(layout / "blobs" / "sha256" / layer["digest"].split(":")[1]) as tar:
            tar.extractall(rootfs, filter="data")
    for name in ("trivial-dep", "trivial-root"):
        prefix = prefix_of(cache[name])
        assert (rootfs / prefix.lstrip("/") / "share" / f"{name}.txt").is_file(), prefix
        assert (rootfs / prefix.lstrip("/") / ".spack" / "spec.json").is_file()


def test_a_tarball_that_is_not_gzip_is_a_409_not_a_500(registry, cache):
    spec = make_spec("notgz", "1.0", seed=99)
    spec.tarball = b"this is not a gzip stream" * 10
    push_spack_oci(registry, "cmp/cache", spec)
    problem = compose(registry, "cmp/cache", {"specs": ["notgz"]}, 409)
    assert problem["title"] == "LAYER_UNUSABLE" and "notgz" in problem["detail"]
