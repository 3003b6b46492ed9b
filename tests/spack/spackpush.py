"""Pushing like spack does, for the spack tests."""

from __future__ import annotations

import hashlib
import json

from loadtest.spackgen import FakeSpec


async def push_blob(client, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = await client.post(f"/v2/{repo}/blobs/uploads/", data=b"")
    assert r.status == 202, await r.text()
    loc = r.headers["Location"]
    sep = "&" if "?" in loc else "?"
    r = await client.put(f"{loc}{sep}digest={digest}", data=data)
    assert r.status == 201, await r.text()
    return digest


async def push_oci(client, repo: str, spec: FakeSpec, config: bytes | None = None,
                   tag: str | None = None) -> tuple[int, str]:
    """Push a spec as spack's OCI push does: dependencies' tarballs first, the
    root's last, then the config and the manifest under the spec's tag."""
    layers = []
    for s in [*_deps(spec), spec]:
        digest = await push_blob(client, repo, s.tarball)
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       "digest": digest, "size": len(s.tarball)})
    config = config if config is not None else spec.oci_config()
    cdigest = await push_blob(client, repo, config)
    manifest = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                "schemaVersion": 2,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": cdigest, "size": len(config)},
                "layers": layers}
    r = await client.put(f"/v2/{repo}/manifests/{tag or spec.tag}",
                         data=json.dumps(manifest).encode(),
                         headers={"Content-Type": manifest["mediaType"]})
    return r.status, await r.text()


def _deps(spec: FakeSpec) -> list[FakeSpec]:
    out: list[FakeSpec] = []
    for d in spec.deps:
        for x in [*_deps(d), d]:
            if x not in out:
                out.append(x)
    return out
