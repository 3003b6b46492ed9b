"""The node cache's host-aware mode in process, over the fake upstream of
test_core_node_cache: a tag naming an index is answered with the child that fits the
cache's host best; by digest, for a client that named its own host, and when nothing
fits, the index is served unchanged; children and configs are read (and kept) through
the cache, and only the chosen child's layers are prefetched."""

from __future__ import annotations

import gzip
import json
import os

import archspec.cpu
import pytest
from harness import wait_for_async
from test_core_node_cache import FakeUpstream, digest, node_cache
from test_core_node_cache import upstream as upstream  # the fixture

from registry.arch.compat import ARTIFACT_OCI, SPEC_OCI
from registry.arch.host import parse_host
from registry.arch.platforms import TARGET
from registry.arch.request import client_host
from registry.arch.resolver import Resolver
from registry.core.grammar import Digest

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CUDA = "io.github.registry.arch.cuda"  # platforms.CUDA


def _blob(upstream: FakeUpstream, media_type: str, data: bytes) -> dict:
    upstream.blobs[str(digest(data))] = data
    return {"mediaType": media_type, "digest": str(digest(data)), "size": len(data)}


def child(upstream: FakeUpstream, name: str, annotations: dict[str, str],
          env: list[str] | None = None) -> tuple[dict, str]:
    """An amd64 image whose config is labelled `name`: (its index entry, layer digest)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {
        "Labels": {"build": name}, "Env": env or []}}).encode()
    layer = _blob(upstream, "application/vnd.oci.image.layer.v1.tar+gzip",
                  gzip.compress(os.urandom(64)))
    doc = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                      "config": _blob(upstream, "application/vnd.oci.image.config.v1+json",
                                      config),
                      "layers": [layer], "annotations": annotations}).encode()
    upstream.manifests[str(digest(doc))] = doc
    return ({"mediaType": OCI_MANIFEST, "digest": str(digest(doc)), "size": len(doc),
             "platform": {"os": "linux", "architecture": "amd64"}}, layer["digest"])


def index(upstream: FakeUpstream, tag: str, entries: list[dict]) -> str:
    doc = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                      "manifests": entries}).encode()
    upstream.manifests[str(digest(doc))] = doc
    upstream.tags[tag] = str(digest(doc))
    return str(digest(doc))


def attach(upstream: FakeUpstream, subject: dict, spec: bytes) -> str:
    """An OCI image-compatibility artifact referring to `subject`; its digest."""
    doc = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": ARTIFACT_OCI,
        "config": _blob(upstream, "application/vnd.oci.empty.v1+json", b"{}"),
        "layers": [_blob(upstream, SPEC_OCI, spec)],
        "subject": {k: subject[k] for k in ("mediaType", "digest", "size")}}).encode()
    upstream.manifests[str(digest(doc))] = doc
    upstream.referrers.setdefault(subject["digest"], []).append(
        {"mediaType": OCI_MANIFEST, "digest": str(digest(doc)), "size": len(doc),
         "artifactType": ARTIFACT_OCI})
    return str(digest(doc))


def digest_of(desc: dict | str) -> Digest:
    return Digest.parse(desc["digest"] if isinstance(desc, dict) else desc)


def unfit_target(host: archspec.cpu.Microarchitecture) -> str:
    """A target of the host's family the host cannot run (a descendant when there is one)."""
    family = [t for t in archspec.cpu.TARGETS.values()
              if t.family == host.family and not host >= t]
    below = [t for t in family if host in t.ancestors]
    return sorted(t.name for t in (below or family))[0]


@pytest.fixture
def host() -> archspec.cpu.Microarchitecture:
    found = archspec.cpu.host()
    if found.family.name != "x86_64" or found.name == "x86_64":
        pytest.skip("needs an x86_64 host more specific than the baseline")
    return found


async def test_a_tag_of_an_index_answers_the_best_child(tmp_path, upstream, host):
    generic, generic_layer = child(upstream, "generic", {})
    mine, my_layer = child(upstream, "mine", {TARGET: host.name})
    other, other_layer = child(upstream, "other", {TARGET: unfit_target(host)})
    top = index(upstream, "v1", [generic, other, mine])
    async with node_cache(tmp_path, upstream, host_aware=True,
                          host=f"target={host.name}") as (reg, _):
        got = await reg.manifests.get("app", "v1")
        assert (str(got.digest), got.media_type) == (mine["digest"], OCI_MANIFEST)
        assert json.loads(got.data)["annotations"] == {TARGET: host.name}
        head = await reg.manifests.get("app", "v1", with_body=False)
        assert (head.digest, head.data) == (got.digest, None)
        # Content addressing: the index by its digest is the index.
        assert str((await reg.manifests.get("app", top)).digest) == top
        # A client that named its own host gets the index (the Registry-Host path
        # resolves it for that host).
        token = client_host.set(parse_host("target=x86_64"))
        try:
            assert str((await reg.manifests.get("app", "v1")).digest) == top
        finally:
            client_host.reset(token)
        # Children and configs came through the cache and are kept (a config is read
        # from the fetch's file as it arrives and stored right after: wait for that) ...
        for entry in (generic, mine, other):
            assert upstream.gets[f"/v2/app/manifests/{entry['digest']}"] == 1
            config = json.loads(upstream.manifests[entry["digest"]])["config"]
            assert await wait_for_async(lambda c=config: reg.blobs.size(digest_of(c)),
                                        lambda size: size is not None) == config["size"]
        # ... the chosen child's layers are prefetched, the others' are not.
        assert await wait_for_async(lambda: reg.blobs.size(digest_of(my_layer)),
                                    lambda size: size is not None)
        assert upstream.gets[f"/v2/app/blobs/{generic_layer}"] == 0
        assert upstream.gets[f"/v2/app/blobs/{other_layer}"] == 0
        # The choice is remembered: asking again reads no child again.
        await reg.manifests.get("app", "v1")
        assert upstream.gets[f"/v2/app/manifests/{mine['digest']}"] == 1

    # A cache told another host: the child for that host (the one this machine cannot
    # run is what its config asks for).
    async with node_cache(tmp_path / "other", upstream, host_aware=True,
                          host=f"target={unfit_target(host)}") as (reg, _):
        assert str((await reg.manifests.get("app", "v1")).digest) == other["digest"]
    # Without host_aware: the index, as ever.
    async with node_cache(tmp_path / "plain", upstream) as (reg, _):
        assert str((await reg.manifests.get("app", "v1")).digest) == top


async def test_when_nothing_fits_the_index_is_served(tmp_path, upstream):
    """CUDA builds only: a host without a GPU gets the index (its client chooses as it
    would without a host-aware cache); one whose driver offers CUDA 12.4 gets the
    build made with 12.2, not the one that needs 12.8 (from NVIDIA_REQUIRE_CUDA)."""
    old, _ = child(upstream, "cuda12.2", {CUDA: "12.2"})
    new, _ = child(upstream, "cuda12.8", {}, env=["NVIDIA_REQUIRE_CUDA=cuda>=12.8"])
    top = index(upstream, "gpu", [new, old])
    async with node_cache(tmp_path, upstream, host_aware=True,
                          host="target=x86_64") as (reg, _):
        got = await reg.manifests.get("app", "gpu")
        assert (str(got.digest), got.media_type) == (top, OCI_INDEX)
    async with node_cache(tmp_path / "gpu", upstream, host_aware=True,
                          host="target=x86_64&cuda=12.4") as (reg, _):
        assert str((await reg.manifests.get("app", "gpu")).digest) == old["digest"]



async def test_a_clients_own_host_is_resolved_through_the_cache(tmp_path, upstream):
    """What the Registry-Host path does on any node cache (host-aware or not): the
    resolver over the cache's services, with the client's host set. Children come
    through the cache without their layers, and configs are fetched for it (the CUDA
    an image's environment asks for is seen before anyone pulled that config)."""
    old, old_layer = child(upstream, "cuda12.2", {CUDA: "12.2"})
    new, new_layer = child(upstream, "cuda12.8", {}, env=["NVIDIA_REQUIRE_CUDA=cuda>=12.8"])
    index(upstream, "gpu", [new, old])
    async with node_cache(tmp_path, upstream) as (reg, _):
        host = parse_host("target=x86_64&cuda=12.4")
        token = client_host.set(host)
        try:
            stored = await reg.manifests.get("app", "gpu")
            resolution = await Resolver(reg).resolve_stored("app", stored, host)
        finally:
            client_host.reset(token)
        assert resolution.chosen is not None and resolution.chosen.digest == old["digest"]
        reasons = {c.digest: c.reason for c in resolution.candidates}
        assert "12.8" in reasons[new["digest"]], reasons
        assert upstream.gets[f"/v2/app/blobs/{old_layer}"] == 0
        assert upstream.gets[f"/v2/app/blobs/{new_layer}"] == 0


async def test_compatibility_artifacts_upstream_must_hold(tmp_path, upstream, host):
    """The build for this target says (by an image-compatibility artifact, upstream) it
    needs a CPU feature this target lacks: the cache's choice is the generic build. A
    hostile artifact on the generic build is left out, and changes nothing. Artifacts
    change upstream without the index changing: the choice is made again after the TTL."""
    generic, _ = child(upstream, "generic", {})
    mine, _ = child(upstream, "mine", {TARGET: host.name})
    lacking = sorted(archspec.cpu.TARGETS[unfit_target(host)].features - host.features)[0]
    attach(upstream, mine, json.dumps({"compatibilities": [
        {"oci.cpu.features": lacking.upper()}]}).encode())
    attach(upstream, generic, b'{"compatibilities": [' * 300)
    index(upstream, "v2", [generic, mine])
    async with node_cache(tmp_path, upstream, host_aware=True,
                          host=f"target={host.name}") as (reg, _):
        now = [1000.0]
        reg.manifests.clock = lambda: now[0]
        assert str((await reg.manifests.get("app", "v2")).digest) == generic["digest"]
        upstream.referrers[mine["digest"]] = []  # the artifact is withdrawn upstream
        now[0] += 59
        assert str((await reg.manifests.get("app", "v2")).digest) == generic["digest"]
        now[0] += 2
        assert str((await reg.manifests.get("app", "v2")).digest) == mine["digest"]
