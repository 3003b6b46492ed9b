"""Token mode: the mount rule holds for every way a blob is linked into a repository.

A Spack spec document pushed through S3 names its tarball (and, in layout v3, its
spec file) by digest. Knowing a digest must not be enough to pull a blob of another
namespace into the pusher's: a blob reaches a repository only with its bytes, or
from a repository the caller may pull. And an S3 push makes OCI tags only where the
caller may push over OCI.
"""

from __future__ import annotations

import hashlib
import json

import pytest
import requests
from authutil import auth_config, cli
from botocore.exceptions import ClientError
from harness import launch, wait_for
from pushing import push_image
from test_auth_s3 import client, make_key

from loadtest.spackdir import v2_names
from loadtest.spackgen import FakeSpec, make_spec

USERS = {  # name: (password, group)
    "owner": ("owner-pw-1", "secret"),      # pushes secret/*
    "mallory": ("mallory-pw-2", "s3only"),  # S3 push on bucket team, no OCI right on team/*
    "insider": ("insider-pw-3", "insiders"),  # S3 push on team, may pull secret/*
    "builder": ("builder-pw-4", "builders"),  # S3 push on team, OCI push on team/*
    "reader": ("reader-pw-5", "readers"),   # pulls team/*
}
RULES = [
    "secret/* group:secret pull,push",
    "team group:s3only pull,push",
    "team group:insiders pull,push",
    "secret/* group:insiders pull",
    "team group:builders pull,push",
    "team/* group:builders pull,push",
    "team/* group:readers pull",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    reg = launch(tmp_path_factory.mktemp("links"),
                 config=auth_config("login_attempts = 100000\n", rules=RULES))
    for name, (password, group) in USERS.items():
        done = cli(reg, "users", "add", name, "--password-stdin", "--group", group,
                   stdin=password + "\n")
        assert done.returncode == 0, done.stderr
    secret = push_image(reg, "secret/app", note="secret", auth=("owner", USERS["owner"][0]))
    layer = f"layer of secret/app {'secret'}".encode()
    assert "sha256:" + hashlib.sha256(layer).hexdigest() == secret.blobs[1]
    yield reg, layer
    reg.stop()


def s3_of(reg, user: str):
    return client(reg, *make_key(reg, user))


def error_of(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call()
    err = info.value.response["Error"]
    return err["Code"], err.get("Message", "")


def hex_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pulled(reg, path: str) -> requests.Response:
    return requests.get(f"{reg.url}{path}", auth=("reader", USERS["reader"][0]), timeout=30)


def spec_json(spec: FakeSpec, tarball_hex: str) -> bytes:
    return json.dumps({"spec": spec.doc, "buildcache_layout_version": 2,
                       "binary_cache_checksum": {"hash_algorithm": "sha256",
                                                 "hash": tarball_hex}}).encode()


def spec_manifest(spec: FakeSpec, tar_hex: str, tar_size: int, spec_file: bytes) -> bytes:
    return json.dumps({"version": 3, "data": [
        {"contentLength": tar_size, "mediaType": "application/vnd.spack.install.v2.tar+gzip",
         "compression": "gzip", "checksumAlgorithm": "sha256", "checksum": tar_hex},
        {"contentLength": len(spec_file), "mediaType": f"application/vnd.spack.spec.v{spec.fmt}"
         "+json", "compression": "gzip", "checksumAlgorithm": "sha256",
         "checksum": hex_of(spec_file)},
    ]}).encode()


def manifest_key(prefix: str, spec: FakeSpec) -> str:
    return (f"{prefix}v3/manifests/spec/{spec.name}/"
            f"{spec.name}-{spec.version}-{spec.hash}.spec.manifest.json")


def test_a_spec_json_cannot_link_a_blob_of_another_namespace(site):
    reg, secret = site
    spec = make_spec("leak2", fmt=4)
    key = f"x/build_cache/{v2_names(spec)[0]}"
    mallory = s3_of(reg, "mallory")
    code, message = error_of(lambda: mallory.put_object(
        Bucket="team", Key=key, Body=spec_json(spec, hex_of(secret))))
    # Refused exactly as a digest no one has: nothing tells that the blob exists.
    nowhere = hex_of(b"no such blob anywhere")
    code2, message2 = error_of(lambda: mallory.put_object(
        Bucket="team", Key=key, Body=spec_json(spec, nowhere)))
    assert code == code2 == "InvalidArgument"
    assert message.replace(hex_of(secret), "D") == message2.replace(nowhere, "D")
    # Completing a multipart upload of the document is judged the same, and keeps nothing.
    upload = mallory.create_multipart_upload(Bucket="team", Key=key)["UploadId"]
    etag = mallory.upload_part(Bucket="team", Key=key, UploadId=upload, PartNumber=1,
                               Body=spec_json(spec, hex_of(secret)))["ETag"]
    code3, message3 = error_of(lambda: mallory.complete_multipart_upload(
        Bucket="team", Key=key, UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]}))
    assert (code3, message3) == (code, message)
    assert error_of(lambda: mallory.head_object(Bucket="team", Key=key))[0] == "404"
    assert pulled(reg, f"/v2/team/x/blobs/sha256:{hex_of(secret)}").status_code == 404
    assert pulled(reg, f"/spack/team/x/blobs/sha256/{hex_of(secret)[:2]}/"
                       f"{hex_of(secret)}").status_code == 404
    assert pulled(reg, f"/spack/team/x/build_cache/{v2_names(spec)[0]}").status_code == 404

    # A caller who may pull secret/app may name its blob: the mount rule, as OCI's.
    insider = s3_of(reg, "insider")

    def push() -> bool:  # the index learns where the blob is linked a moment after its push
        try:
            insider.put_object(Bucket="team", Key=key, Body=spec_json(spec, hex_of(secret)))
            return True
        except ClientError:
            return False

    assert wait_for(push, bool)
    r = pulled(reg, f"/v2/team/x/blobs/sha256:{hex_of(secret)}")
    assert r.status_code == 200 and r.content == secret


def test_a_spec_manifest_cannot_link_a_blob_of_another_namespace(site):
    reg, secret = site
    spec = make_spec("leak3")
    spec_file = spec.spec_file_v3()
    mallory = s3_of(reg, "mallory")
    # The spec file is mallory's own (its bytes arrive); the tarball is the secret layer.
    mallory.put_object(Bucket="team", Key=f"y/blobs/sha256/{hex_of(spec_file)[:2]}/"
                                          f"{hex_of(spec_file)}", Body=spec_file)
    answers = set()
    for tar_hex, size in ((hex_of(secret), len(secret)), (hex_of(secret), len(secret) + 1),
                          (hex_of(b"nowhere"), len(secret))):
        code, message = error_of(lambda tar_hex=tar_hex, size=size: mallory.put_object(
            Bucket="team", Key=manifest_key("y/", spec),
            Body=spec_manifest(spec, tar_hex, size, spec_file)))
        answers.add((code, message.replace(tar_hex, "D")))
    # The secret blob, with its size or another, is refused as one that is nowhere.
    assert len(answers) == 1 and next(iter(answers))[0] == "InvalidArgument", answers
    assert pulled(reg, f"/v2/team/y/blobs/sha256:{hex_of(secret)}").status_code == 404
    assert pulled(reg, f"/spack/team/y/blobs/sha256/{hex_of(secret)[:2]}/"
                       f"{hex_of(secret)}").status_code == 404
    assert pulled(reg, "/spack/team/y/" + manifest_key("", spec)).status_code == 404
    # Its own tarball, pushed first, it may name.
    mallory.put_object(Bucket="team", Key=f"y/blobs/sha256/{hex_of(spec.tarball)[:2]}/"
                                          f"{hex_of(spec.tarball)}", Body=spec.tarball)
    mallory.put_object(Bucket="team", Key=manifest_key("y/", spec),
                       Body=spec_manifest(spec, hex_of(spec.tarball), len(spec.tarball),
                                          spec_file))
    r = pulled(reg, "/spack/team/y/" + manifest_key("", spec))
    assert r.status_code == 200


def test_an_s3_push_makes_oci_tags_only_for_oci_pushers(site):
    reg, _ = site
    for user, prefix, tagged in (("mallory", "z/", False), ("builder", "w/", True)):
        spec = make_spec(f"tagged-{user}")
        spec_file = spec.spec_file_v3()
        s3 = s3_of(reg, user)
        for data in (spec.tarball, spec_file):
            s3.put_object(Bucket="team", Key=f"{prefix}blobs/sha256/{hex_of(data)[:2]}/"
                                             f"{hex_of(data)}", Body=data)
        s3.put_object(Bucket="team", Key=manifest_key(prefix, spec),
                      Body=spec_manifest(spec, hex_of(spec.tarball), len(spec.tarball),
                                         spec_file))
        repo = f"team/{prefix.rstrip('/')}"
        # The spec is in the cache either way: its classic views serve it.
        assert pulled(reg, f"/spack/{repo}/" + manifest_key("", spec)).status_code == 200
        # Its image (made in the background, or at the latest by this first pull) only
        # for an OCI pusher.
        r = pulled(reg, f"/v2/{repo}/manifests/{spec.tag}")
        assert (r.status_code == 200) is tagged, (user, r.status_code, r.text)
        tags = pulled(reg, f"/v2/{repo}/tags/list")
        assert (spec.tag in (tags.json().get("tags") or []) if tags.status_code == 200
                else False) is tagged
