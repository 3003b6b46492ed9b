"""`/metrics` counts requests by family, method and status, with latency histograms
and bytes, added up over every worker process."""

from __future__ import annotations

import pytest
import requests
from api.helpers import push_image
from harness import launch
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
