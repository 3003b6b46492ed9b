"""registry.arch.resolver over the core services (memory driver): an index's children
described, judged and ranked for a host; children it cannot describe listed with why;
the compatibility seam; nothing read beyond what the Protocols hand out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pushing import OCI_INDEX, OCI_MANIFEST, descriptor, digest_of, manifest_doc, store_blob

from registry.arch import platforms, resolver
from registry.arch.host import Host, parse_host
from registry.arch.resolver import Resolver
from registry.core.errors import ManifestUnknown


async def child(reg: Any, repo: str, arch: str = "amd64", note: str = "",
                annotations: dict[str, str] | None = None, env: list[str] | None = None,
                config: bytes | None = None) -> dict:
    """Push one image (config + layer) by digest; its descriptor for an index."""
    if config is None:
        doc: dict[str, Any] = {"architecture": arch, "os": "linux", "note": note}
        if env:
            doc["config"] = {"Env": env}
        config = json.dumps(doc).encode()
    layer = f"layer {arch} {note}".encode()
    await store_blob(reg, repo, config)
    await store_blob(reg, repo, layer)
    body = json.dumps(manifest_doc(config, [layer], annotations=annotations)).encode()
    await reg.manifests.put(repo, digest_of(body), body, OCI_MANIFEST)
    return descriptor(OCI_MANIFEST, body)


async def index(reg: Any, repo: str, tag: str, children: list[tuple[dict, dict | None]]) -> str:
    manifests = [{**desc, **({"platform": plat} if plat else {})} for desc, plat in children]
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                       "manifests": manifests}).encode()
    digest, _ = await reg.manifests.put(repo, tag, body, OCI_INDEX)
    return str(digest)


def amd64(variant: str = "") -> dict:
    return {"os": "linux", "architecture": "amd64", **({"variant": variant} if variant else {})}


@pytest.fixture
async def mixed(reg: Any) -> dict[str, str]:
    """The mixed cluster's image: generic, v3, zen4, neoverse_v2, CUDA 12.2 (v3)."""
    kids = {
        "generic": (await child(reg, "hpc/app", note="generic"), amd64()),
        "v3": (await child(reg, "hpc/app", note="v3"), amd64("v3")),
        "zen4": (await child(reg, "hpc/app", note="zen4",
                             annotations={platforms.TARGET: "zen4"}), amd64("v4")),
        "grace": (await child(reg, "hpc/app", arch="arm64", note="grace",
                              annotations={platforms.TARGET: "neoverse_v2"}),
                  {"os": "linux", "architecture": "arm64"}),
        "cuda": (await child(reg, "hpc/app", note="cuda",
                             env=["NVIDIA_REQUIRE_CUDA=cuda>=12.2 brand=tesla"]), amd64("v3")),
    }
    names = {name: desc["digest"] for name, (desc, _) in kids.items()}
    names["index"] = await index(reg, "hpc/app", "latest", list(kids.values()))
    return names


@pytest.mark.parametrize(("host", "best"), [
    ("target=zen3", "v3"),
    ("target=zen4", "zen4"),
    ("target=sapphirerapids", "v3"),  # zen4 is not an ancestor of sapphirerapids
    ("target=zen3&cuda=12.4", "cuda"),
    ("target=zen3&cuda=12.1", "v3"),
    ("target=nehalem", "generic"),
    ("arch=arm64&target=neoverse_v2", "grace"),
    ("arch=arm64&target=neoverse_v1", None),  # neoverse_v2 does not run on a v1
])
async def test_the_best_child_for_each_host(reg: Any, mixed: dict[str, str], host: str,
                                            best: str | None) -> None:
    res = await Resolver(reg).resolve("hpc/app", "latest", parse_host(host))
    assert res.digest == mixed["index"] and res.media_type == OCI_INDEX
    assert (res.chosen.digest if res.chosen else None) == (mixed[best] if best else None)
    assert len(res.candidates) == 5
    fitting = [c for c in res.candidates if c.fits]
    assert [c.rank for c in fitting] == list(range(1, len(fitting) + 1))
    assert all(c.rank is None and c.reason for c in res.candidates if not c.fits)
    body = res.to_json()
    assert body["digest"] == (mixed[best] if best else None) and body["index"] == mixed["index"]
    assert json.loads(json.dumps(body)) == body


async def test_candidates_say_why(reg: Any, mixed: dict[str, str]) -> None:
    res = await Resolver(reg).resolve("hpc/app", "latest", parse_host("target=zen3"))
    by = {c.digest: c for c in res.candidates}
    assert by[mixed["v3"]].reason.startswith("x86_64_v3 is an ancestor of zen3")
    assert "avx512" in by[mixed["zen4"]].reason
    assert "aarch64" in by[mixed["grace"]].reason
    assert "CUDA 12.2" in by[mixed["cuda"]].reason
    assert by[mixed["zen4"]].to_json()["target"] == "zen4"
    assert by[mixed["cuda"]].to_json()["cuda"] == "12.2"
    assert by[mixed["grace"]].platform == {"os": "linux", "architecture": "arm64"}


async def test_a_single_image_is_its_own_candidate(reg: Any) -> None:
    desc = await child(reg, "one/img", annotations={platforms.TARGET: "zen2"})
    res = await Resolver(reg).resolve("one/img", desc["digest"], parse_host("target=zen3"))
    assert res.chosen is not None and res.chosen.digest == desc["digest"]
    res = await Resolver(reg).resolve("one/img", desc["digest"], parse_host("target=haswell"))
    assert res.chosen is None and "zen2" in res.candidates[0].reason


async def test_children_it_cannot_describe_are_listed_with_why(reg: Any) -> None:
    good = await child(reg, "odd/app", note="good")
    hostile = await child(reg, "odd/app", config=b"[" * 5000 + b"]" * 5000)
    nested = {"mediaType": OCI_INDEX, "digest": await index(reg, "odd/app", "inner",
                                                           [(good, amd64())]),
              "size": 0}
    nested["size"] = len((await reg.manifests.get("odd/app", "inner")).data)
    attestation = (await child(reg, "odd/app", note="att"),
                   {"os": "unknown", "architecture": "unknown"})
    await index(reg, "odd/app", "latest", [(good, amd64()), (hostile, None), (nested, None),
                                           attestation])
    res = await Resolver(reg).resolve("odd/app", "latest", Host(target="zen3"))
    assert res.chosen is not None and res.chosen.digest == good["digest"]
    reasons = {c.digest: c.reason for c in res.candidates if not c.fits}
    assert "cannot tell what it needs" in reasons[hostile["digest"]]
    assert reasons[nested["digest"]] == "an index, not an image"
    assert "architecture" in reasons[attestation[0]["digest"]]


async def test_unknown_references_raise_cores_errors(reg: Any, mixed: dict[str, str]) -> None:
    with pytest.raises(ManifestUnknown):
        await Resolver(reg).resolve("hpc/app", "nope", Host())
    with pytest.raises(ManifestUnknown):
        await Resolver(reg).resolve("other/app", "latest", Host())


async def test_children_beyond_the_cap_are_listed_unexamined(reg: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(resolver, "MAX_CHILDREN", 2)
    kids = [(await child(reg, "many/app", note=str(i)), amd64()) for i in range(3)]
    await index(reg, "many/app", "latest", kids)
    res = await Resolver(reg).resolve("many/app", "latest", Host())
    assert [c.fits for c in res.candidates] == [True, True, False]
    assert "more than 2" in res.candidates[2].reason


async def test_the_compat_seam_can_veto_a_fitting_build(reg: Any, mixed: dict[str, str]) -> None:
    asked: list[tuple[str, str]] = []

    async def compat(repo: str, digest: str, host: Host) -> tuple[bool, str] | None:
        asked.append((repo, digest))
        if digest == mixed["cuda"]:
            return False, "compatibility: needs glibc 2.38"
        return (True, "compatibility holds") if digest == mixed["v3"] else None

    res = await Resolver(reg, compat=compat).resolve("hpc/app", "latest",
                                                     parse_host("target=zen3&cuda=12.4"))
    assert res.chosen is not None and res.chosen.digest == mixed["v3"]
    assert res.chosen.rank == 1 and res.chosen.reason.endswith("compatibility holds")
    vetoed = next(c for c in res.candidates if c.digest == mixed["cuda"])
    assert not vetoed.fits and vetoed.rank is None and "glibc" in vetoed.reason
    # Only builds that fit by target, CUDA and MPI are asked about.
    assert {d for _, d in asked} == {mixed["v3"], mixed["cuda"], mixed["generic"]}


async def test_builds_are_described_once(reg: Any, mixed: dict[str, str]) -> None:
    resolve = Resolver(reg)
    await resolve.resolve("hpc/app", "latest", Host(target="zen3"))
    read = 0
    original = reg.manifests.read_config

    async def counting(manifest: Any) -> bytes | None:
        nonlocal read
        read += 1
        return await original(manifest)

    reg.manifests.read_config = counting
    again = await resolve.resolve("hpc/app", "latest", Host(target="zen4"))
    assert read == 0 and again.chosen is not None and again.chosen.digest == mixed["zen4"]
