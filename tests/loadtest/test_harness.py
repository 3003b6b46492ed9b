"""End-to-end: `python -m loadtest bench --quick` starts, measures and stops cleanly.

These never assert a speed: only that the harness runs, writes the documented JSON,
leaves no process running and removes its temp dirs (also after SIGINT).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("docker-registry", "wrk", "curl", "nginx")
MISSING = [t for t in TOOLS if shutil.which(t) is None]



@pytest.fixture(autouse=True)
def _tools_installed() -> None:
    # `bash tests/run.sh` installs these; a missing one is a broken install, not a skip.
    assert not MISSING, f"needs {', '.join(MISSING)}: run the suite with `bash tests/run.sh`"


def bench_argv(tmp: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "loadtest",
        "bench",
        "--quick",
        "--repeat",
        "1",
        "--out",
        str(tmp / "out"),
        "--tmp-root",
        str(tmp / "tmp"),
        "--cache-dir",
        str(tmp / "cache"),
        *extra,
    ]


def run_bench(tmp: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run(
        bench_argv(tmp, *extra),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    results = tmp / "out" / "results.json"
    assert results.exists(), proc.stdout + proc.stderr
    return proc, json.loads(results.read_text())


def processes_mentioning(text: str) -> list[tuple[int, str]]:
    """Live processes whose command line mentions `text` (our temp dirs are in it)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ")
            state = Path(f"/proc/{entry.name}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if text.encode() in cmdline and state != b"Z":
            found.append((int(entry.name), cmdline.decode(errors="replace")))
    return found


def assert_clean(tmp: Path, doc: dict) -> None:
    leftovers = processes_mentioning(str(tmp))
    assert not leftovers, f"processes left running: {leftovers}"
    for run in doc["runs"]:
        assert run["pid"], run
        assert not Path(f"/proc/{run['pid']}").exists() or not processes_mentioning(run["tmp_dir"])
        assert not Path(run["tmp_dir"]).exists(), f"temp dir left: {run['tmp_dir']}"
    for work in doc["work_dirs"]:
        assert not Path(work).exists()
    assert list((tmp / "tmp").iterdir()) == []


def assert_shape(doc: dict, scenarios: list[str], targets: list[str]) -> None:
    assert doc["schema"] == "registry-loadtest/1"
    for key in ("started_at", "finished_at", "config", "machine", "versions", "runs", "summary"):
        assert key in doc, key
    m = doc["machine"]
    for key in ("cpu_model", "logical_cores", "memory_bytes", "kernel", "python"):
        assert m[key], key
    for key in ("docker-registry", "wrk", "curl", "aiohttp"):
        assert doc["versions"][key], key
    assert doc["config"]["scenarios"] == scenarios
    assert doc["config"]["profile"]["name"] == "quick"
    assert sorted(doc["targets"]) == sorted(targets)
    assert [r["target"] for r in doc["runs"]] == targets  # one rep: ours, theirs[, nginx]
    for run in doc["runs"]:
        assert "error" not in run, run
        for name, entry in run["scenarios"].items():
            assert name in scenarios
            assert entry["status"] == "ok", entry
            for metric in entry["metrics"]:
                assert metric["value"] > 0, metric
                assert metric["unit"] and metric["better"] in ("higher", "lower")
    rows = {(r["scenario"], r["metric"]): r for r in doc["summary"]}
    for name in scenarios:
        assert any(s == name for s, _ in rows), name
    for row in doc["summary"]:
        assert set(row["median"]) >= {"ours", "theirs"}, row
        assert row["ratio"]["ours/theirs"] > 0
    assert doc["complete"] is True
    assert doc["interrupted"] is None


def test_bench_docker_registry_vs_itself(tmp_path: Path) -> None:
    """The harness end to end with docker-registry standing in for our server."""
    scenarios = ["manifest-get", "push-small"]
    proc, doc = run_bench(
        tmp_path,
        "--ours-cmd",
        "docker-registry",
        "--scenario",
        "manifest-get",
        "--scenario",
        "push-small",
        "--no-chart",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # nginx serves the manifest (the ceiling for small requests), not the pushes
    assert_shape(doc, scenarios, ["ours", "theirs", "nginx"])
    assert list(doc["runs"][2]["scenarios"]) == ["manifest-get"]
    row = next(r for r in doc["summary"] if r["scenario"] == "manifest-get")
    assert row["ratio"]["ours/nginx"] > 0
    assert doc["targets"]["ours"]["flavor"] == "docker-registry"
    table = (tmp_path / "out" / "table.txt").read_text()
    assert "manifest-get" in table and "ours/theirs" in table
    assert "manifest-get" in proc.stdout
    assert_clean(tmp_path, doc)


def test_bench_ours_vs_docker_registry_and_nginx(tmp_path: Path) -> None:
    """Our registry vs docker-registry, plus nginx for a blob read; a chart if matplotlib."""
    scenarios = ["manifest-get", "blob-get-1", "push-mono"]
    argv = [a for s in scenarios for a in ("--scenario", s)]
    proc, doc = run_bench(tmp_path, *argv)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_shape(doc, scenarios, ["ours", "theirs", "nginx"])
    assert doc["targets"]["ours"]["flavor"] == "ours"
    blob = next(r for r in doc["summary"] if r["scenario"] == "blob-get-1" and r["unit"] == "GB/s")
    assert set(blob["ratio"]) == {"ours/theirs", "ours/nginx"}
    rss = next(r for r in doc["summary"] if r["scenario"] == "blob-get-1" and r["unit"] == "MiB")
    assert rss["better"] == "lower" and rss["median"]["ours"] > 0
    try:
        import matplotlib  # noqa: F401

        assert (tmp_path / "out" / "ratios.png").stat().st_size > 0
    except ImportError:
        assert "matplotlib is not installed" in proc.stderr
    assert_clean(tmp_path, doc)


def test_baseline_checkout_alternates_with_ours(tmp_path: Path) -> None:
    """--baseline-src: our registry from another checkout (here this one) is a target
    of its own, run beside ours in each rep (ABBA), with an ours/baseline ratio."""
    proc, doc = run_bench(tmp_path, "--scenario", "manifest-get", "--baseline-src",
                          str(REPO_ROOT), "--no-theirs", "--no-nginx", "--repeat", "2",
                          "--no-chart")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [r["target"] for r in doc["runs"]] == ["ours", "baseline", "baseline", "ours"]
    assert doc["targets"]["baseline"]["flavor"] == "ours"
    assert f"PYTHONPATH={REPO_ROOT}" in doc["targets"]["baseline"]["describe"]
    assert doc["versions"]["baseline_src"] == str(REPO_ROOT)
    (row,) = doc["summary"]
    assert len(row["runs"]["baseline"]) == 2 and row["ratio"]["ours/baseline"] > 0
    assert "ours/theirs" not in row["ratio"]
    table = (tmp_path / "out" / "table.txt").read_text()
    assert "ours/baseline" in table and "docker-registry" not in table
    assert_clean(tmp_path, doc)


def test_baseline_checkout_must_hold_the_registry(tmp_path: Path) -> None:
    proc = subprocess.run(bench_argv(tmp_path, "--baseline-src", str(tmp_path)), cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and "no registry/__init__.py" in proc.stderr


def test_big_repo_scenarios(tmp_path: Path) -> None:
    """big-repo-list/-page/-delete/-sync end to end on ours (and docker-registry, which
    has no tags pagination and no replica index), with a small repository: 100 tags
    (each seeded twice: on the filesystem and on S3 for -sync), pages of 20 from the middle,
    so that a page is full and `n` is what stops it."""
    proc, doc = run_bench(tmp_path, "--scenario", "big-repo", "--big-tags", "100",
                          "--big-page", "20", "--no-nginx", "--no-chart")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = ["big-repo-list", "big-repo-page", "big-repo-delete", "big-repo-sync"]
    assert doc["config"]["scenarios"] == names
    assert doc["config"]["profile"]["big_tags"] == 100
    assert doc["config"]["profile"]["big_page"] == 20
    ours, theirs = doc["runs"]
    assert ours["seed_seconds"]["bigrepo"] > 0
    for name in names:
        entry = ours["scenarios"][name]
        assert entry["status"] == "ok", entry
        assert all(m["value"] > 0 for m in entry["metrics"]), entry
        assert entry["metrics"][0]["better"] == "higher"
    assert ours["scenarios"]["big-repo-list"]["details"]["tags"] == 100
    page = ours["scenarios"]["big-repo-page"]["details"]
    assert page["page"] == 20 and page["last"] == "t000050"
    assert ours["scenarios"]["big-repo-delete"]["details"]["tags_removed"] > 0
    sync = ours["scenarios"]["big-repo-sync"]
    # An idle pass (nothing new) is timed when one ran between rounds; a loaded machine
    # may see every pass of B's catch up with new tags.
    idle = ({"pass_s"} if sync["details"]["idle_pass_s"] else set())
    assert {m["key"] for m in sync["metrics"]} == {"per_s", "ttv_s", "catch_up_pass_s"} | idle
    rounds = sync["details"]["rounds"]
    assert len(rounds) == 2 and all(r["time_to_visible_s"] > 0 for r in rounds)
    # Tags set by a pass: "tags" in core/indexing.IndexStats ("retagged" before it).
    assert any(x["stats"].get("tags", x["stats"].get("retagged", 0)) >= 10
               for x in sync["details"]["passes"])
    for name in ("big-repo-list", "big-repo-delete"):
        assert theirs["scenarios"][name]["status"] == "ok"
    for name in ("big-repo-page", "big-repo-sync"):
        assert theirs["scenarios"][name]["status"] == "unsupported"
    rows = {(r["scenario"], r["metric"]): r for r in doc["summary"]}
    assert rows[("big-repo-list", "listings_per_s")]["ratio"]["ours/theirs"] > 0
    assert rows[("big-repo-sync", "per_s")]["status"]["theirs"] == "unsupported"
    assert_clean(tmp_path, doc)


def test_sigint_stops_servers_and_load_tool(tmp_path: Path) -> None:
    """Ctrl-C while wrk runs: every process stops, temp dirs go, partial JSON is written."""
    argv = bench_argv(
        tmp_path,
        "--ours-cmd",
        "docker-registry",
        "--scenario",
        "manifest-get",
        "--duration",
        "30",
        "--no-chart",
    )
    proc = subprocess.Popen(
        argv,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    lines = []
    try:
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while time.monotonic() < deadline:  # wait until ours is seeded: wrk starts next
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "ours: seeded" in line:
                break
        assert any("ours: seeded" in ln for ln in lines), "".join(lines)
        wait_until = time.monotonic() + 10
        while time.monotonic() < wait_until and not any(
            "wrk" in cmd for _, cmd in processes_mentioning(str(tmp_path))
        ):
            time.sleep(0.05)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        assert time.monotonic() - t0 < 30, "took too long to stop"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, "".join(lines) + out
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["interrupted"] == "SIGINT"
    assert doc["complete"] is False
    assert [r["target"] for r in doc["runs"]] == ["ours"]  # theirs never started
    assert_clean(tmp_path, doc)


def test_server_that_fails_to_start_is_recorded(tmp_path: Path) -> None:
    """A broken "ours" is an error in the JSON; theirs still runs; nothing is left behind."""
    proc, doc = run_bench(
        tmp_path,
        "--ours-cmd",
        f"{sys.executable} -c 'import sys; sys.exit(3)' {{port}}",
        "--scenario",
        "manifest-get",
        "--no-chart",
        "--no-nginx",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    ours, theirs = doc["runs"]
    assert "exited early (code 3)" in ours["error"]
    assert theirs["scenarios"]["manifest-get"]["status"] == "ok"
    (row,) = doc["summary"]
    assert row["status"]["ours"] == "error" and "ours/theirs" not in row["ratio"]
    assert "error manifest-get ours" in (tmp_path / "out" / "table.txt").read_text()
    assert_clean(tmp_path, doc)
