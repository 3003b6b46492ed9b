"""`registry scrub`: re-hash every blob, quarantine corrupt ones with --repair (never
served again, a push puts good bytes back), list links to missing blobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import requests
from api.helpers import push_blob, push_image
from harness import child_env, launch


def scrub(data_dir, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "registry", "scrub", "--json", *args,
                           "--data", str(data_dir)], capture_output=True, text=True,
                          env=child_env(), timeout=120)


def blob_path(data_dir, digest: str):
    alg, hex_ = digest.split(":")
    return data_dir / "storage" / "blobs" / alg / hex_[:2] / hex_


def test_scrub_finds_quarantines_and_lists(tmp_path):
    reg = launch(tmp_path)
    good = os.urandom(3 << 20)
    rotten = os.urandom(1 << 20)
    try:
        push_image(reg, "scrub/app", "v1")
        good_digest = push_blob(reg, "scrub/app", good)
        rotten_digest = push_blob(reg, "scrub/app", rotten)
        gone_digest = push_blob(reg, "scrub/other", b"soon gone")
    finally:
        reg.stop()
    data = reg.data_dir
    clean = scrub(data)
    assert clean.returncode == 0, clean.stderr
    report = json.loads(clean.stdout)
    assert report["clean"] and report["blobs"] >= 5 and report["bytes"] > len(good)

    # A flipped byte (same size) and a blob file lost.
    path = blob_path(data, rotten_digest)
    raw = bytearray(path.read_bytes())
    raw[12345] ^= 0xFF
    path.write_bytes(bytes(raw))
    blob_path(data, gone_digest).unlink()
    found = scrub(data)
    assert found.returncode == 1
    report = json.loads(found.stdout)
    assert [c["digest"] for c in report["corrupt"]] == [rotten_digest]
    assert report["missing"] == [{"repository": "scrub/other", "digest": gone_digest,
                                  "kind": "layer"}]
    assert report["quarantined"] == [] and path.exists()  # no --repair: nothing moved

    repaired = scrub(data, "--repair")
    assert repaired.returncode == 1
    assert json.loads(repaired.stdout)["quarantined"] == [rotten_digest]
    assert not path.exists()
    alg, hex_ = rotten_digest.split(":")
    assert (data / "storage" / "_quarantine" / alg / hex_).read_bytes() == bytes(raw)

    reg = launch(tmp_path)
    try:
        url = f"{reg.url}/v2/scrub/app/blobs/{rotten_digest}"
        assert requests.get(url, timeout=10).status_code == 404  # never the bad bytes
        good_get = requests.get(f"{reg.url}/v2/scrub/app/blobs/{good_digest}", timeout=30)
        assert good_get.content == good
        push_blob(reg, "scrub/app", rotten)  # pushed again: good bytes are back
        assert requests.get(url, timeout=30).content == rotten
    finally:
        reg.stop()
    after = json.loads(scrub(data).stdout)
    assert after["corrupt"] == [] and [m["digest"] for m in after["missing"]] == [gone_digest]
