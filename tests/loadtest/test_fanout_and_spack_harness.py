"""`python -m loadtest fanout` and `python -m loadtest spack` at toy sizes: they
start every process, measure, write the documented JSON and clean up. Never a
speed asserted: only that the harnesses run (they are run by hand at size)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "loadtest", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)


def test_fanout_harness(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    proc = run("fanout", "--clients", "3", "--caches", "2", "--image-size", "4MiB",
               "--layers", "2", "--out", str(tmp_path / "out"),
               "--tmp-root", str(tmp_path / "tmp"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(doc["scenarios"]) == {"cache", "peers", "distribution", "nginx", "warm"}
    for name, sc in doc["scenarios"].items():
        assert sc["origin_egress_x"] >= 0 and sc["aggregate_gib_s"] > 0, name
    # Each blob left the origin about once through our caches; the warm cache not at all.
    assert doc["scenarios"]["cache"]["origin_egress_x"] < 1.5
    assert doc["scenarios"]["warm"]["origin_egress_x"] < 0.1
    assert (tmp_path / "out" / "fanout.png").stat().st_size > 0
    assert list((tmp_path / "tmp").iterdir()) == []  # temp dirs removed


def test_spack_harness(tmp_path: Path) -> None:
    proc = run("spack", "--specs", "20", "--repeat", "1", "--seconds", "1", "--big-mib", "1",
               "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    for key in ("push_to_index_s.ours (server-kept)",
                "push_to_index_s.docker-registry + update-index",
                "index_fetch_s.nginx", "classic_tarball_mib_s.ours",
                "classic_tarball_mib_s.nginx", "first_update_index_s.docker-registry"):
        assert doc[key] > 0, key
    assert "push-to-index" in proc.stdout


def test_hotpath_harness() -> None:
    """`python -m loadtest hotpath`: anonymous, then a Bearer token with token auth;
    each GET must answer the manifest (it checks), and nothing is left behind."""
    for extra in ((), ("--auth", "--bearer")):
        proc = run("hotpath", "--requests", "50", "--rounds", "2", "--warm", "10", *extra)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "us CPU per manifest GET" in proc.stdout
        assert "registry.access" not in proc.stdout + proc.stderr  # the lines went to its log
