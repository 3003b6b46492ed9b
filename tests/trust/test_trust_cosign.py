"""cosign simple signing (the `sha256-<hex>.sig` tag), verified through core's services:
signatures made as `cosign sign --key` lays them out (tests/trust/signers.py)."""

from __future__ import annotations

from pushing import core_digest, store_blob, store_image
from signers import cosign_layer, cosign_sign, cosign_signature, ec_key, pem, sign
from signers import simple_signing_payload as payload_of

from registry.core.grammar import Digest
from registry.trust.checks import load_public_key
from registry.trust.verify import TrustMaterial, Verifier, judgement, verify


async def push(reg, repo, doc):
    for blob in doc.blobs:
        await store_blob(reg, repo, blob)
    await reg.manifests.put(repo, doc.tag or doc.digest, doc.manifest,
                            "application/vnd.oci.image.manifest.v1+json")


def material(*named):
    return TrustMaterial(tuple(load_public_key(pem(k), n) for n, k in named))


async def test_valid_and_judged(reg):
    key = ec_key()
    digest, _ = await store_image(reg, "a/app", "v1")
    await push(reg, "a/app", cosign_sign(key, "reg.example/a/app", str(digest)))
    checks = await verify(reg, "a/app", digest, material(("site", key)))
    assert [(c.format, c.identity, c.valid, c.reason) for c in checks] == [
        ("cosign", "site", True, "")]
    assert judgement(checks, ["site"]).ok
    j = judgement(checks, ["ci"])
    assert (j.ok, j.reason) == (False, "unknown key")


async def test_unsigned(reg):
    digest, _ = await store_image(reg, "a/app", "v1")
    j = judgement(await verify(reg, "a/app", digest, material(("site", ec_key()))), ["site"])
    assert (j.ok, j.reason) == (False, "unsigned")


async def test_wrong_key_tampered_and_other_digest(reg):
    key, other = ec_key(), ec_key()
    digest, _ = await store_image(reg, "a/app", "v1")
    elsewhere, _ = await store_image(reg, "a/app", "v2", note="2")
    good = payload_of("r/a/app", str(digest))
    moved = payload_of("r/a/app", str(elsewhere))
    tampered = good.replace(b"r/a/app", b"r/a/evil")
    layers = [cosign_layer(other, good), cosign_layer(key, moved),
              ({**cosign_layer(key, good), "size": len(tampered),
                "digest": cosign_layer(key, tampered)["digest"]}),
              cosign_layer(key, good, signature=b"\x30\x03junk")]
    doc = cosign_signature(list(zip(layers, [good, moved, tampered, good], strict=True)),
                           str(digest))
    await push(reg, "a/app", doc)
    checks = await verify(reg, "a/app", digest, material(("site", key)))
    assert [(c.position, c.valid, c.reason) for c in checks] == [
        (0, False, "unknown key"), (1, False, "wrong digest"), (2, False, "unknown key"),
        (3, False, "unknown key")]
    assert checks[1].detail == f"signature is for {elsewhere}"
    assert checks[1].identity == "site"
    j = judgement(checks, ["site"])
    assert (j.ok, j.reason) == (False, "unknown key")


async def test_malformed_documents(reg):
    key = ec_key()
    digest, _ = await store_image(reg, "a/app", "v1")
    good = payload_of("r/a/app", str(digest))
    not_json = b"\xff{not json"
    huge = b"{" + b" " * (1 << 20) + b"}"
    no_digest = b'{"critical":{"type":"cosign container image signature"}}'
    bad_b64 = {**cosign_layer(key, good)}
    bad_b64["annotations"] = {"dev.cosignproject.cosign/signature": "***"}
    pairs = [(cosign_layer(key, not_json), not_json), (cosign_layer(key, no_digest), no_digest),
             (bad_b64, good), (cosign_layer(key, huge), huge),
             ({**cosign_layer(key, good), "mediaType": "text/plain"}, good)]
    await push(reg, "a/app", cosign_signature(pairs, str(digest)))
    checks = await verify(reg, "a/app", digest, material(("site", key)))
    assert [c.reason for c in checks] == ["malformed"] * 5, checks


async def test_blob_of_another_repository_is_not_read(reg):
    """A signature layer naming a payload stored only in another repository is not
    read on this repository's behalf."""
    key = ec_key()
    digest, _ = await store_image(reg, "a/app", "v1")
    doc = cosign_sign(key, "r/a/app", str(digest))
    payload = doc.blobs[1]
    await store_blob(reg, "b/other", payload)
    for blob in doc.blobs[:1]:
        await store_blob(reg, "a/app", blob)
    await reg.manifests.mirror("a/app", core_digest(doc.manifest), doc.manifest,
                               "application/vnd.oci.image.manifest.v1+json", doc.tag)
    checks = await verify(reg, "a/app", digest, material(("site", key)))
    assert [c.reason for c in checks] == ["malformed"]
    assert "not in the repository" in checks[0].detail


async def test_verifier_remembers_until_signatures_change(reg):
    key = ec_key()
    calls = []

    async def keys():
        calls.append(1)
        return material(("site", key))

    digest, _ = await store_image(reg, "a/app", "v1")
    v = Verifier(keys)
    assert (await v.judge(reg, "a/app", digest, ["site"])).reason == "unsigned"
    assert (await v.judge(reg, "a/app", digest, ["site"])).reason == "unsigned"
    assert len(calls) == 1
    await push(reg, "a/app", cosign_sign(key, "r/a/app", str(digest)))
    assert (await v.judge(reg, "a/app", digest, ["site"])).ok
    assert len(calls) == 2


async def test_rsa_and_ed25519_keys(reg):
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    digest, _ = await store_image(reg, "a/app", "v1")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    good = payload_of("r/a/app", str(digest))
    pairs = [(cosign_layer(rsa_key, good, sign(rsa_key, good)), good),
             (cosign_layer(ed_key, good, sign(ed_key, good)), good)]
    await push(reg, "a/app", cosign_signature(pairs, str(digest)))
    checks = await verify(reg, "a/app", Digest.parse(str(digest)),
                          material(("rsa", rsa_key), ("ed", ed_key)))
    assert [(c.identity, c.valid) for c in checks] == [("rsa", True), ("ed", True)]
