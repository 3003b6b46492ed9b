"""`/healthz` and `/readyz`: outside /v2 and outside auth, for load balancers."""

from __future__ import annotations

import shutil

import requests
from harness import launch


def test_probes_answer_without_credentials_and_readyz_sees_the_store(tmp_path):
    reg = launch(tmp_path, config='[auth]\nmode = "token"\n')
    try:
        assert requests.get(f"{reg.url}/v2/", timeout=10).status_code == 401
        health = requests.get(f"{reg.url}/healthz", timeout=10)
        assert health.status_code == 200 and health.text == "ok\n"
        ready = requests.get(f"{reg.url}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json() == {"ready": True, "problems": []}
        assert requests.head(f"{reg.url}/readyz", timeout=10).status_code == 200
        # The store stops taking writes: not ready, and it says why.
        scratch = reg.data_dir / "storage" / "_tmp"
        shutil.rmtree(scratch)
        scratch.write_text("not a directory any more")
        ready = requests.get(f"{reg.url}/readyz", timeout=10)
        assert ready.status_code == 503, ready.text
        assert ready.json()["problems"][0].startswith("storage")
        assert requests.get(f"{reg.url}/healthz", timeout=10).status_code == 200
        scratch.unlink()
        scratch.mkdir()
        assert requests.get(f"{reg.url}/readyz", timeout=10).status_code == 200
        assert requests.post(f"{reg.url}/healthz", timeout=10).status_code == 405
    finally:
        reg.stop()
