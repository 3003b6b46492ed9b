"""Machine and software versions recorded with every result."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path

from loadtest.targets import REPO_ROOT


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _cmd(argv: list[str], timeout: float = 10, cwd: Path | None = None,
         env: dict[str, str] | None = None) -> str:
    try:
        p = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=env,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return (p.stdout + p.stderr).strip()


def machine() -> dict:
    cpuinfo = _read("/proc/cpuinfo")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    physical = set()
    for block in cpuinfo.split("\n\n"):
        pid = re.search(r"^physical id\s*:\s*(\d+)", block, re.M)
        cid = re.search(r"^core id\s*:\s*(\d+)", block, re.M)
        if pid and cid:
            physical.add((pid.group(1), cid.group(1)))
    mem = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    os_release = re.search(r'^PRETTY_NAME="?([^"\n]+)', _read("/etc/os-release"), re.M)
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    return {
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "logical_cores": os.cpu_count(),
        "physical_cores": len(physical) or None,
        "usable_cores": affinity,
        "memory_bytes": int(mem.group(1)) * 1024 if mem else None,
        "kernel": platform.release(),
        "os": os_release.group(1) if os_release else platform.platform(),
        "arch": platform.machine(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
    }


def _first_line(text: str) -> str:
    return text.splitlines()[0].strip() if text else ""


def registry_source(src: Path) -> dict[str, str]:
    """Version and git revision of the `registry` package in checkout `src`."""
    probe = "import registry; print(registry.__version__)"
    env = dict(os.environ, PYTHONPATH=str(src))
    ours = _cmd([sys.executable, "-c", probe], cwd=src, env=env)
    rev = _cmd(["git", "-C", str(src), "rev-parse", "--short", "HEAD"])
    git = "no commit"
    if re.fullmatch(r"[0-9a-f]+", rev):
        dirty = _cmd(["git", "-C", str(src), "status", "--porcelain", "--", "registry"])
        git = rev + (" (modified)" if dirty else "")
    return {
        "version": _first_line(ours) if "Error" not in ours else "not importable",
        "git": git,
    }


def versions(docker_registry: str | None, nginx: str | None, wrk_bin: str, curl_bin: str,
             baseline_src: Path | None = None) -> dict:
    out: dict[str, str] = {
        "wrk": _first_line(_cmd([wrk_bin, "-v"])),
        "curl": _first_line(_cmd([curl_bin, "--version"])),
    }
    if docker_registry:
        out["docker-registry"] = _first_line(_cmd([docker_registry, "--version"]))
    if nginx:
        out["nginx"] = _first_line(_cmd([nginx, "-v"]))
    for mod in ("aiohttp", "uvloop", "matplotlib"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:
            out[mod] = "not installed"
    ours = registry_source(REPO_ROOT)
    out["registry"], out["registry_git"] = ours["version"], ours["git"]
    if baseline_src is not None:
        base = registry_source(baseline_src)
        out["baseline_registry"], out["baseline_git"] = base["version"], base["git"]
        out["baseline_src"] = str(baseline_src)
    return out
