"""Image-compatibility artifacts through the core services (memory driver) and a real
index (here, not in tests/core: closing the index joins its thread): the push-time
check injected by the factory, the `artifacts` rows the hooks and the rebuild record
for the subject, and the resolver's seam: a child whose artifact does not hold on the
host does not fit, and says why."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pushing import OCI_INDEX, OCI_MANIFEST, descriptor, digest_of, manifest_doc, store_blob
from test_index_builds import rewound

from registry.arch import platforms
from registry.arch.compat import ARTIFACT_NFD, ARTIFACT_OCI, SPEC_NFD, SPEC_OCI
from registry.arch.compat_check import CompatCheck, index_compat
from registry.arch.host import parse_host
from registry.arch.indexed import describer
from registry.arch.resolver import Resolver
from registry.core.errors import ManifestInvalid, ManifestUnknown
from registry.core.factory import CoreSettings, build_registry
from registry.core.grammar import Digest
from registry.core.indexing import catch_up, rebuild
from registry.index import schema
from registry.index.db import Index
from registry.index.hooks import IndexHooks
from registry.storage.memory import MemoryDriver

EMPTY = "application/vnd.oci.empty.v1+json"
INTEL_ONLY = json.dumps({"compatibilities": [
    {"oci.cpu.vendor": "GenuineIntel", "oci.cpu.features": "AVX2", "compatibility-score": 5}]})
NFD_KERNEL = b"""version: v1alpha1
compatibilities:
- rules:
  - name: new kernel
    matchFeatures:
    - feature: kernel.version
      matchExpressions:
        major: {op: Gt, value: ["5"]}
"""


async def open_world(driver: Any, path: Any) -> Any:
    index = Index(str(path), describer)
    await index.open()
    hooks = IndexHooks(index)
    return build_registry(driver, hooks, CoreSettings(artifact_check=CompatCheck())), index, hooks


@pytest.fixture
async def world(tmp_path: Any) -> Any:
    reg, index, hooks = await open_world(MemoryDriver(), tmp_path / "index.sqlite")
    yield reg, index, hooks
    await hooks.close()
    await index.close()


async def image(reg: Any, repo: str, note: str, target: str) -> dict:
    config = json.dumps({"architecture": "amd64", "os": "linux", "note": note}).encode()
    await store_blob(reg, repo, config)
    await store_blob(reg, repo, note.encode())
    body = json.dumps(manifest_doc(config, [note.encode()],
                                   annotations={platforms.TARGET: target})).encode()
    await reg.manifests.put(repo, digest_of(body), body, OCI_MANIFEST)
    return descriptor(OCI_MANIFEST, body)


async def attach(reg: Any, repo: str, subject: dict, kind: str, spec: bytes,
                 layer_type: str | None = None, created: str = "") -> str:
    """An image-compatibility artifact referring to `subject`; its digest."""
    await store_blob(reg, repo, b"{}")
    await store_blob(reg, repo, spec)
    doc = manifest_doc(b"{}", [spec], layer_type=layer_type or
                       (SPEC_OCI if kind == ARTIFACT_OCI else SPEC_NFD), subject=subject,
                       annotations={"org.opencontainers.image.created": created}
                       if created else None)
    doc["config"]["mediaType"] = EMPTY
    doc["artifactType"] = kind
    body = json.dumps(doc).encode()
    digest, _ = await reg.manifests.put(repo, digest_of(body), body, OCI_MANIFEST)
    return str(digest)


async def test_an_artifact_that_fails_on_the_host_excludes_its_child(world: Any) -> None:
    reg, index, hooks = world
    tuned = await image(reg, "hpc/app", "tuned", "x86_64_v3")
    generic = await image(reg, "hpc/app", "generic", "x86_64")
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {**tuned, "platform": {"os": "linux", "architecture": "amd64", "variant": "v3"}},
        {**generic, "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    await reg.manifests.put("hpc/app", "latest", body, OCI_INDEX)
    await attach(reg, "hpc/app", tuned, ARTIFACT_OCI, INTEL_ONLY.encode())
    await hooks.flush()
    resolver = Resolver(reg, compat=index_compat(index))

    res = await resolver.resolve("hpc/app", "latest", parse_host("target=zen3"))
    by = {c.digest: c for c in res.candidates}
    assert res.chosen is not None and res.chosen.digest == generic["digest"]
    assert not by[tuned["digest"]].fits and by[tuned["digest"]].rank is None
    assert "needs CPU vendor GenuineIntel, the host's is AuthenticAMD" in \
        by[tuned["digest"]].reason

    res = await resolver.resolve("hpc/app", "latest", parse_host("target=icelake"))
    assert res.chosen is not None and res.chosen.digest == tuned["digest"]
    assert "OCI compatibility set 1 (score 5) holds" in res.chosen.reason

    # An NFD artifact on the same child must hold too (each type's newest counts).
    await attach(reg, "hpc/app", tuned, ARTIFACT_NFD, NFD_KERNEL)
    await hooks.flush()
    res = await resolver.resolve("hpc/app", "latest", parse_host("target=icelake&kernel=5.4"))
    assert res.chosen is not None and res.chosen.digest == generic["digest"]
    assert "kernel.version major Gt ['5'] fails (host: 5)" in res.candidates[-1].reason


async def test_hostile_spec_refused_before_anything_is_stored(world: Any) -> None:
    reg, index, hooks = world
    subject = await image(reg, "hpc/bad", "img", "x86_64")
    bad = [
        (ARTIFACT_OCI, b"[" * 5000 + b"]" * 5000, None),
        (ARTIFACT_OCI, b'{"compatibilities": [{"oci.kernel.versions": 5}]}', None),
        (ARTIFACT_NFD, b"a: &a [1]\nb: *a\n", None),
        (ARTIFACT_NFD, NFD_KERNEL, "application/octet-stream"),  # no spec layer
    ]
    for kind, spec, layer_type in bad:
        with pytest.raises(ManifestInvalid):
            await attach(reg, "hpc/bad", subject, kind, spec, layer_type)
    assert await reg.referrers.list("hpc/bad", Digest.parse(subject["digest"])) == []
    await hooks.flush()
    assert await index.artifacts("hpc/bad", subject["digest"]) == []
    assert [m.digest for m in await index.manifests("hpc/bad")] == [subject["digest"]]


async def test_rebuild_records_the_artifacts_from_storage(world: Any) -> None:
    reg, index, hooks = world
    subject = await image(reg, "hpc/re", "img", "x86_64")
    old = await attach(reg, "hpc/re", subject, ARTIFACT_OCI, INTEL_ONLY.encode(),
                       created="2024-01-01T00:00:00Z")
    await hooks.flush()
    assert [r.digest for r in await index.artifacts("hpc/re", subject["digest"])] == [old]
    await rebuild(reg, index)
    rows = await index.artifacts("hpc/re", subject["digest"])
    assert [(r.digest, r.artifact_type, r.created) for r in rows] == [
        (old, ARTIFACT_OCI, "2024-01-01T00:00:00Z")]
    await reg.manifests.delete("hpc/re", old)
    await hooks.flush()
    assert await index.artifacts("hpc/re", subject["digest"]) == []
    with pytest.raises(ManifestUnknown):
        await reg.manifests.get("hpc/re", old)


async def test_a_version_4_index_gets_its_artifacts_from_the_catch_up(tmp_path: Any) -> None:
    path = tmp_path / "index.sqlite"
    reg, index, hooks = await open_world(MemoryDriver(), path)
    subject = await image(reg, "hpc/old", "img", "x86_64")
    artifact = await attach(reg, "hpc/old", subject, ARTIFACT_NFD, NFD_KERNEL)
    await hooks.close()
    await index.close()
    index = await rewound(  # what schema version 4 left
        path, 4, "DROP TABLE artifacts",
        "DROP TABLE signatures",  # version 6's, which version 4 did not have
        "DROP TABLE search_fts", "DROP TABLE search_docs",  # and version 7's
        "ALTER TABLE manifests DROP COLUMN labels",
        "DROP TABLE scans", "DROP INDEX idx_manifests_digest",  # and version 8's
        "DROP INDEX idx_platforms_digest",
        "DROP INDEX idx_tags_updated")  # and version 9's
    try:
        assert index.opened is schema.Opened.MIGRATED and index.dirty
        # Version 5 asks for the artifact to be described again (version 7 for every
        # manifest, for its search document).
        assert artifact in await index.undescribed("hpc/old")
        await catch_up(reg, index)
        [row] = await index.artifacts("hpc/old", subject["digest"])
        assert (row.digest, row.artifact_type) == (artifact, ARTIFACT_NFD)
    finally:
        await index.close()
