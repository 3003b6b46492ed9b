"""Run wrk with one of the Lua scripts under loadtest/lua/ and parse what it prints.

Each scenario script is concatenated with lua/common.lua, whose done() prints a
`WRK_JSON {...}` line; the human-readable summary is parsed only as a fallback.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
from pathlib import Path

LUA_DIR = Path(__file__).resolve().parent / "lua"

_UNITS = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}
_UNITS.update({"TB": 1024**4})


class WrkError(RuntimeError):
    pass


def script(name: str, dest_dir: Path) -> Path:
    """Write lua/<name>.lua + lua/common.lua to dest_dir and return the path."""
    body = (LUA_DIR / f"{name}.lua").read_text()
    common = (LUA_DIR / "common.lua").read_text()
    out = dest_dir / f"wrk-{name}.lua"
    out.write_text(f"{body}\n{common}")
    return out


def _num(value: str, unit: str = "") -> float:
    return float(value) * _UNITS.get(unit, 1)


def parse_output(text: str) -> dict:
    """Parse wrk's stdout into a summary dict (see lua/common.lua for the JSON shape)."""
    for line in text.splitlines():
        if line.startswith("WRK_JSON "):
            doc = json.loads(line[len("WRK_JSON ") :])
            break
    else:  # plain wrk output (no done() hook)
        m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m), ([\d.]+)([KMGT]?B) read", text)
        if not m:
            raise WrkError(f"cannot parse wrk output:\n{text[-2000:]}")
        scale = {"us": 1, "ms": 1e3, "s": 1e6, "m": 6e7}[m.group(3)]
        doc = {
            "requests": int(m.group(1)),
            "duration_us": float(m.group(2)) * scale,
            "bytes": _num(m.group(4), m.group(5)),
            "errors": {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0},
            "latency_us": {},
        }
        e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
        if e:
            doc["errors"].update(
                connect=int(e.group(1)),
                read=int(e.group(2)),
                write=int(e.group(3)),
                timeout=int(e.group(4)),
            )
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    doc["non_2xx_3xx"] = int(non2xx.group(1)) if non2xx else 0
    seconds = doc["duration_us"] / 1e6 if doc["duration_us"] else 0.0
    doc["seconds"] = seconds
    doc["rps"] = doc["requests"] / seconds if seconds else 0.0
    doc["bytes_per_s"] = doc["bytes"] / seconds if seconds else 0.0
    return doc


def check(summary: dict) -> None:
    """Raise if the run measured nothing or the server answered errors."""
    if summary["requests"] <= 0:
        raise WrkError(f"no request completed: {summary}")
    bad = summary["errors"]["status"] + summary.get("non_2xx_3xx", 0)
    if bad:
        raise WrkError(f"{bad} error responses out of {summary['requests']}")


async def run_tool(argv: list[str], limit_s: float) -> str:
    """Run a load tool to completion (killed after `limit_s`), return its stdout."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit_s)
    except BaseException:  # timeout, Ctrl-C: never leave it running
        if proc.returncode is None:
            proc.kill()
            await asyncio.shield(proc.wait())
        raise
    if proc.returncode != 0:
        raise WrkError(f"{argv[0]} exited {proc.returncode}: {err.decode(errors='replace')}")
    return out.decode(errors="replace")


async def run(
    url: str,
    script_path: Path,
    *,
    connections: int,
    duration: float,
    threads: int,
    args: list[str] | None = None,
    wrk_bin: str = "wrk",
    timeout_s: float = 10.0,
) -> dict:
    threads = max(1, min(threads, connections))
    argv = [
        wrk_bin,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={timeout_s:g}s",
        "-s",
        str(script_path),
        url,
    ]
    if args:
        argv += ["--", *args]
    text = await run_tool(argv, limit_s=duration + timeout_s + 30)
    summary = parse_output(text)
    summary["tool"] = "wrk"
    summary["threads"] = threads
    summary["connections"] = connections
    return summary


async def run_headload(
    url: str, *, connections: int, duration: float, headers: dict[str, str]
) -> dict:
    """The HEAD fallback: loadtest/headload.py in its own process (same JSON shape)."""
    argv = [sys.executable, str(Path(__file__).with_name("headload.py")), url]
    argv += ["-c", str(connections)]
    argv += ["-d", str(duration)]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    text = await run_tool(argv, limit_s=duration + 60)
    summary = parse_output(text)
    summary["tool"] = "headload"
    summary["connections"] = connections
    return summary


def available(binary: str = "wrk") -> bool:
    return shutil.which(binary) is not None
