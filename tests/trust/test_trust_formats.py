"""sigstore bundles v0.3 (cosign v3) and Notation JWS signatures, pushed as referrers and
verified through core's services; documents laid out as the tools write them
(tests/trust/signers.py)."""

from __future__ import annotations

import base64
import datetime
import json

from cryptography.hazmat.primitives.asymmetric import rsa
from pushing import store_blob, store_image
from signers import (
    bundle_dsse,
    bundle_message,
    bundle_referrer,
    certificate,
    ec_key,
    jws_envelope,
    notation_referrer,
    pem,
    referrer,
)

from registry.trust.checks import load_public_key
from registry.trust.verify import TrustMaterial, judgement, verify

OCI = "application/vnd.oci.image.manifest.v1+json"
NOW = datetime.datetime.now(datetime.UTC)


async def push(reg, repo, doc):
    for blob in doc.blobs:
        await store_blob(reg, repo, blob)
    await reg.manifests.put(repo, doc.tag or doc.digest, doc.manifest, OCI)


async def image(reg, repo="a/app", tag="v1", note=""):
    digest, body = await store_image(reg, repo, tag, note=note)
    return digest, body, {"mediaType": OCI, "digest": str(digest), "size": len(body)}


def keys(*named):
    return tuple(load_public_key(pem(k), n) for n, k in named)


def summary(checks):
    return [(c.format, c.identity, c.valid, c.reason) for c in checks]


# -- sigstore bundles ---------------------------------------------------------------


async def test_bundles(reg):
    key, other = ec_key(), ec_key()
    digest, body, subject = await image(reg)
    elsewhere, _, _ = await image(reg, tag="v2", note="2")
    for bundle in (bundle_dsse(key, "r/a/app", str(digest)),
                   bundle_message(key, body),
                   bundle_dsse(key, "r/a/app", str(digest), tamper=True),
                   bundle_dsse(other, "r/a/app", str(digest)),
                   bundle_dsse(key, "r/a/app", str(elsewhere))):
        await push(reg, "a/app", bundle_referrer(subject, bundle))
    checks = await verify(reg, "a/app", digest, TrustMaterial(keys(("site", key))))
    assert sorted((c.valid, c.reason) for c in checks) == [
        (False, "bad signature"), (False, "unknown key"), (False, "wrong digest"),
        (True, ""), (True, "")]
    wrong = next(c for c in checks if c.reason == "wrong digest")
    assert wrong.detail == f"signature is for {elsewhere}"
    assert judgement(checks, ["site"]).ok


async def test_bundle_without_hint_and_hostile(reg):
    key = ec_key()
    digest, _, subject = await image(reg)
    await push(reg, "a/app", bundle_referrer(subject, bundle_dsse(key, "r", str(digest),
                                                                  hint=False)))
    deep = b"[" * 100_000 + b"]" * 100_000
    for junk in (b"not json", deep, json.dumps({"mediaType": "x"}).encode(),
                 json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                             "verificationMaterial": {}, "dsseEnvelope": {
                                 "payload": "!!", "payloadType": "t", "signatures": []}}
                            ).encode()):
        await push(reg, "a/app", bundle_referrer(subject, junk))
    checks = await verify(reg, "a/app", digest, TrustMaterial(keys(("site", key))))
    assert sorted((c.valid, c.reason) for c in checks) == [(False, "malformed")] * 4 + [
        (True, "")]


# -- Notation ------------------------------------------------------------------------


def pki(days=30, start=None):
    root_key, leaf_key = ec_key(), ec_key()
    root = certificate("root", root_key, ca=True, days=365)
    leaf = certificate("signer", leaf_key, (root, root_key), days=days, start=start)
    return root, leaf, leaf_key


async def test_notation(reg):
    root, leaf, leaf_key = pki()
    other_root, other_leaf, other_key = pki()
    digest, _, subject = await image(reg)
    elsewhere, _, other_subject = await image(reg, tag="v2", note="2")
    for envelope, chain in (
            (jws_envelope(leaf_key, [leaf, root], subject), [leaf, root]),
            (jws_envelope(leaf_key, [leaf], subject), [leaf]),  # root from the store
            (jws_envelope(leaf_key, [leaf, root], subject, tamper=True), [leaf, root]),
            (jws_envelope(other_key, [other_leaf, other_root], subject),
             [other_leaf, other_root]),
            (jws_envelope(leaf_key, [leaf, root], other_subject), [leaf, root]),
            (jws_envelope(leaf_key, [leaf, root], subject,
                          expiry=NOW - datetime.timedelta(minutes=1)), [leaf, root])):
        await push(reg, "a/app", notation_referrer(subject, envelope, chain))
    checks = await verify(reg, "a/app", digest,
                          TrustMaterial((), (("site-ca", root),)))
    assert sorted((c.valid, c.reason) for c in checks) == [
        (False, "bad signature"), (False, "expired"), (False, "untrusted chain"),
        (False, "wrong digest"), (True, ""), (True, "")]
    valid = [c for c in checks if c.valid]
    assert {c.key for c in valid} == {"site-ca"}
    assert all("CN=signer" in c.identity for c in valid)
    assert judgement(checks, ["site-ca"]).ok
    assert not judgement(checks, ["site"]).ok
    assert next(c for c in checks if c.reason == "wrong digest").detail == \
        f"signature is for {elsewhere}"


async def test_notation_expired_certificate_and_rsa(reg):
    root_key = ec_key()
    root = certificate("root", root_key, ca=True, days=365,
                       start=NOW - datetime.timedelta(days=100))
    old_key, rsa_key = ec_key(), rsa.generate_private_key(public_exponent=65537,
                                                          key_size=2048)
    old = certificate("old", old_key, (root, root_key), days=10,
                      start=NOW - datetime.timedelta(days=60))
    rsa_leaf = certificate("rsa", rsa_key, (root, root_key))
    digest, _, subject = await image(reg)
    await push(reg, "a/app", notation_referrer(
        subject, jws_envelope(old_key, [old, root], subject,
                              signing_time=NOW - datetime.timedelta(days=55)), [old, root]))
    await push(reg, "a/app", notation_referrer(
        subject, jws_envelope(rsa_key, [rsa_leaf, root], subject), [rsa_leaf, root]))
    checks = await verify(reg, "a/app", digest, TrustMaterial((), (("ca", root),)))
    assert sorted((c.identity.split(",")[0], c.valid, c.reason) for c in checks) == [
        ("CN=old", False, "expired"), ("CN=rsa", True, "")]


async def test_notation_hostile(reg):
    root, leaf, leaf_key = pki()
    digest, _, subject = await image(reg)
    good = json.loads(jws_envelope(leaf_key, [leaf, root], subject))
    variants = [b"\x00" * 10, {**good, "header": {"x5c": ["AAAA"]}},
                {**good, "header": {"x5c": []}}, {**good, "protected": "e30"},
                {**good, "signature": "%%%"},
                {**good, "header": {"x5c": [base64.b64encode(b"\x30\x82" + b"\xff" * 50)
                                            .decode()]}}]
    for v in variants:
        blob = v if isinstance(v, bytes) else json.dumps(v).encode()
        await push(reg, "a/app", notation_referrer(subject, blob, [leaf]))
    cose = referrer(subject, "application/vnd.cncf.notary.signature", "application/cose",
                    b"\xd2\x84")
    await push(reg, "a/app", cose)
    checks = await verify(reg, "a/app", digest, TrustMaterial((), (("ca", root),)))
    assert [c.reason for c in checks] == ["malformed"] * 7, summary(checks)
