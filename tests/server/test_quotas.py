"""Quotas per namespace glob: a push that would pass one is refused with 413 DENIED
naming it, before the bytes are written when the length is declared."""

from __future__ import annotations

import os

import requests
from api.helpers import push_blob
from harness import launch, wait_for
from pushing import digest_of

KiB = 1024



def test_quota_refuses_what_would_pass_it(tmp_path):
    reg = launch(tmp_path, config='[limits]\nquotas = ["team/* 1MiB"]\n')
    try:
        first = os.urandom(600 * KiB)
        push_blob(reg, "team/a", first)
        # The index has it (usage is read from there, at most every 2 s).
        wait_for(lambda: requests.get(f"{reg.url}/api/v1/usage?namespace=team",
                                      timeout=10).json()["namespaces"],
                 lambda rows: rows and rows[0]["unique"] == len(first), 10)
        second = os.urandom(600 * KiB)

        def refused(r: requests.Response) -> None:
            assert r.status_code == 413, r.text
            err = r.json()["errors"][0]
            assert err["code"] == "DENIED" and "quota team/* of 1.0 MiB" in err["message"]

        def over_quota() -> requests.Response:
            return requests.post(f"{reg.url}/v2/team/b/blobs/uploads/?digest={digest_of(second)}",
                                 data=second, timeout=30)

        refused(over_quota())  # at once: this process counts what it just stored
        # Streamed (no declared length): refused once it passes, and nothing kept.
        location = requests.post(f"{reg.url}/v2/team/b/blobs/uploads/",
                                 timeout=10).headers["Location"]
        r = requests.patch(f"{reg.url}{location}", data=iter([second[:300 * KiB],
                                                             second[300 * KiB:]]), timeout=30)
        refused(r)
        status = requests.get(f"{reg.url}{location}", timeout=10)
        assert status.headers["Range"] == "0-0"
        assert requests.head(f"{reg.url}/v2/team/b/blobs/{digest_of(second)}",
                             timeout=10).status_code == 404
        # Within the quota, and outside its pattern: fine.
        push_blob(reg, "team/b", os.urandom(100 * KiB))
        push_blob(reg, "other/x", os.urandom(2000 * KiB))
    finally:
        reg.stop()
