"""`/metrics` counts requests by family, method and status, with latency histograms
and bytes, added up over every worker process."""

from __future__ import annotations

import json

import pytest
import requests
from api.helpers import push_image
from harness import launch, wait_for
from prometheus_client.parser import text_string_to_metric_families


def samples(url: str) -> dict[tuple, float]:
    text = requests.get(f"{url}/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(got: dict, name: str, **labels) -> float:
    return got.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.parametrize("workers", [1, 2])
def test_requests_are_counted_over_every_worker(tmp_path, workers):
    reg = launch(tmp_path, config=f"[server]\nworkers = {workers}\n")
    try:
        pushed = push_image(reg, "metrics/app", "v1")
        before = samples(reg.url)
        n = 40
        for _ in range(n):  # a new connection each: the kernel spreads them over workers
            r = requests.get(f"{reg.url}/v2/metrics/app/manifests/v1", timeout=10,
                             headers={"Accept": pushed.media_type})
            assert r.status_code == 200
            assert requests.get(f"{reg.url}/v2/metrics/app/manifests/nope",
                                timeout=10).status_code == 404
        after = samples(reg.url)
        ok = ("registry_http_requests_total", {"family": "oci", "method": "GET",
                                               "status": "200"})
        missing = ("registry_http_requests_total", {"family": "oci", "method": "GET",
                                                    "status": "404"})
        assert value(after, ok[0], **ok[1]) - value(before, ok[0], **ok[1]) == n
        assert value(after, missing[0], **missing[1]) - value(before, missing[0],
                                                              **missing[1]) == n
        count = "registry_http_request_duration_seconds_count"
        assert value(after, count, kind="manifest_get") - value(before, count,
                                                               kind="manifest_get") == 2 * n
        sent = value(after, "registry_http_sent_bytes_total", family="oci") - value(
            before, "registry_http_sent_bytes_total", family="oci")
        assert sent >= n * len(pushed.body)
        assert value(after, "registry_http_received_bytes_total", family="oci") > 0
        assert value(after, "registry_http_requests_in_flight") >= 0
    finally:
        reg.stop()


def test_store_uploads_first_byte_and_scrub_series(tmp_path):
    """Storage operations per driver (both workers' counts), uploads being received,
    a blob GET's time to first byte, and the last scrub's figures."""
    import subprocess
    import sys
    import threading
    import time

    from harness import child_env

    reg = launch(tmp_path, config="[server]\nworkers = 2\n")
    try:
        pushed = push_image(reg, "metrics/store", "v1")
        layer = json.loads(pushed.body)["layers"][0]["digest"]
        for _ in range(20):
            r = requests.get(f"{reg.url}/v2/metrics/store/blobs/{layer}", timeout=10)
            assert r.status_code == 200

        # An upload held open: its chunk arrives slowly.
        release = threading.Event()
        data = b"x" * 4096

        def body():
            yield data
            release.wait(20)
            yield data

        loc = requests.post(f"{reg.url}/v2/metrics/store/blobs/uploads/",
                            timeout=10).headers["Location"]
        url = loc if loc.startswith("http") else reg.url + loc
        done = threading.Thread(target=lambda: requests.patch(
            url, data=body(), headers={"Content-Type": "application/octet-stream"},
            timeout=30))
        done.start()
        try:
            deadline = time.monotonic() + 10
            while value(samples(reg.url), "registry_uploads_in_progress") < 1:
                assert time.monotonic() < deadline, "upload never counted"
                time.sleep(0.2)
        finally:
            release.set()
            done.join(30)
        assert value(samples(reg.url), "registry_uploads_in_progress") == 0

        ops = "registry_storage_operations_total"
        # Each worker moves its store counters to /metrics every 2 s: poll for them.
        # Both workers' figures: the image push's writes may reach /metrics before the
        # held upload's (another worker's), so wait for the bytes, not only a count.
        got = wait_for(lambda: samples(reg.url),
                       lambda got: value(got, "registry_storage_written_bytes_total",
                                         driver="filesystem", operation="writer") >= len(data))
        assert value(got, ops, driver="filesystem", operation="put_content") > 0
        assert value(got, ops, driver="filesystem", operation="writer") > 0
        assert value(got, "registry_storage_written_bytes_total", driver="filesystem",
                     operation="writer") >= len(data)
        assert value(got, "registry_storage_not_found_total", driver="filesystem",
                     operation="stat") > 0  # the first HEAD of each pushed blob
        assert value(got, "registry_http_first_byte_seconds_count", kind="blob_get") >= 20

        scrubbed = subprocess.run(
            [sys.executable, "-m", "registry", "scrub", "--json", "--data",
             str(reg.data_dir)], capture_output=True, text=True, env=child_env(), timeout=120)
        assert scrubbed.returncode == 0, scrubbed.stderr
        checked = json.loads(scrubbed.stdout)["blobs"]
        deadline = time.monotonic() + 15
        while value(got := samples(reg.url), "registry_scrub_checked_blobs") != checked:
            assert time.monotonic() < deadline, "scrub figures never shown"
            time.sleep(0.5)
        assert value(got, "registry_scrub_corrupt_blobs") == 0
        assert value(got, "registry_scrub_last_run_timestamp_seconds") > time.time() - 120
    finally:
        reg.stop()
