"""`python -m loadtest scan` at a toy size: a real registry scans the generated image
and finds every package the generator put in it; the baseline tools read it too."""

from __future__ import annotations

import json
from pathlib import Path

from loadtest import scan_bench, scanimage


def test_scan_scenario_finds_what_the_image_holds(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert scan_bench.main(["--size", "4MiB", "--repeat", "1", "--cache-dir",
                            str(tmp_path / "cache"), "--tmp-root", str(tmp_path / "servers"),
                            "--out", str(out)]) == 0
    doc = json.loads((out / "results.json").read_text())
    image = scanimage.build(tmp_path / "cache", 4 << 20)  # cached: the same files
    assert [x["digest"] for x in doc["image"]["layers"]] == [x.digest for x in image.layers]
    assert {x.compression for x in image.layers} == {"gzip", "zstd"}
    (scan,) = doc["scans"]
    assert scan["errors"] == [] and scan["packages"] == image.packages == {
        "deb": 400, "pypi": 120, "spack": len(scanimage.SPACK)}
    assert scan["findings"] == 1  # the setuid usr/bin/passwd
    # every tar byte read, up to the end-of-archive blocks
    assert 0 <= image.inflated - scan["tar_bytes_read"] <= 1024 * len(image.layers)
    assert scan["rss_peak_sampled_mb"] > 0 and scan["hwm_mb"] > 0
    (base,) = doc["baselines"]
    assert base["tools_s"] > 0 and base["python_s"] > 0
    assert "MB/s" in (out / "table.txt").read_text()


def test_the_image_is_the_same_for_the_same_seed(tmp_path: Path) -> None:
    one = scanimage.build(tmp_path / "a", 1 << 20, seed=3)
    two = scanimage.build(tmp_path / "b", 1 << 20, seed=3)
    assert [x.digest for x in one.layers] == [x.digest for x in two.layers]
    assert [x.diff_id for x in one.layers] != [x.digest for x in one.layers]
