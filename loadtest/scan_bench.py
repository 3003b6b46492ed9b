"""`python -m loadtest scan`: the scan of a 1 GiB image, its throughput and memory.

    python -m loadtest scan [--size 1GiB] [--repeat 3] [--out DIR]

Builds (once, cached) the image of loadtest/scanimage.py: four layers, gzip and zstd,
about 40,000 files, a dpkg status, Python dist-infos, Spack prefixes and a few large
files. Each repetition starts a fresh registry (`registry serve`, one process, the
filesystem store, scanning on as by default), pushes the layers (sendfile, never held
in memory), then the config and the manifest, and polls `GET /api/v1/scan/<name>@<digest>`
until the result is there. Measured: the wall time from the manifest PUT to the
result, MB/s of compressed and of tar bytes, the worker's CPU seconds (utime + stime
from /proc/PID/stat), and its resident memory during the scan: VmRSS sampled every
20 ms, and VmHWM, whose peak is reset (/proc/PID/clear_refs, 5) just before the PUT
when the kernel allows, so it is the scan's own peak.

The baseline reads the same layer files as fast as the machine's tools do:
`zcat FILE | tar -t` (`zstd -dc` for zstd), listing every member, and Python's
decompressors alone (zlib, zstandard: inflate and discard). Repetitions alternate
which runs first; the table shows medians and the ratio scan / baseline (above 1:
the scan takes longer). Results: JSON in DIR (default loadtest/results/scan-<stamp>/).
Touches only 127.0.0.1 and temp dirs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import zstandard

from loadtest import scanimage, sysinfo, targets
from loadtest.client import RegistryClient, push_file_monolithic
from loadtest.data import BlobFile, sha256_digest
from loadtest.spack_rss import rss_kb

REPO = "loadtest/scan"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "registry-loadtest"
RESULTS = Path(__file__).resolve().parent / "results"
CLK = 100  # clock ticks per second of /proc/PID/stat (os.sysconf("SC_CLK_TCK"))


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` (every thread), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Sampler(threading.Thread):
    """The largest VmRSS of `pid` seen every `every` seconds until `stop`."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peak_kb = 0
        self.samples = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                self.peak_kb = max(self.peak_kb, rss_kb(self.pid)["VmRSS"])
                self.samples += 1
            except (OSError, KeyError):
                return
            self.done.wait(self.every)

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.peak_kb


async def _push(server: targets.Server, image: scanimage.Image) -> tuple[bytes, bytes]:
    for layer in image.layers:
        await asyncio.to_thread(push_file_monolithic, server.url, REPO,
                                BlobFile(layer.path, layer.size, layer.digest))
    config = image.config()
    async with RegistryClient(server.url) as client:
        await client.push_blob(REPO, config, sha256_digest(config), single_post=False)
    return config, image.manifest(config)


async def scan_once(image: scanimage.Image, tmp_root: Path | None, poll: float = 0.1,
                    limit_s: float = 3600) -> dict[str, Any]:
    """One fresh server: push `image`, time its scan; the measures."""
    spec = targets.ours_spec(None)
    server = await targets.start(spec, tmp_root)
    sampler = Sampler(server.pid)
    try:
        start = time.perf_counter()
        _, manifest = await _push(server, image)
        pushed_s = time.perf_counter() - start
        digest = sha256_digest(manifest)
        before = rss_kb(server.pid)
        reset = reset_peak(server.pid)
        cpu0 = cpu_seconds(server.pid)
        sampler.start()
        url = f"{server.url}/api/v1/scan/{REPO}@{digest}"
        async with RegistryClient(server.url) as client:
            start = time.perf_counter()
            await client.put_manifest(REPO, "v1", manifest)
            timeout = aiohttp.ClientTimeout(total=60)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                while True:
                    async with http.get(url) as r:
                        body = await r.read()
                        if r.status == 200:
                            break
                        if r.status != 404 or b'"pending"' not in body:
                            raise RuntimeError(f"GET {url}: {r.status} {body[:300]!r}")
                    if time.perf_counter() - start > limit_s:
                        raise RuntimeError(f"no scan result after {limit_s} s")
                    await asyncio.sleep(poll)
            wall = time.perf_counter() - start
        peak = sampler.stop()
        cpu = cpu_seconds(server.pid) - cpu0
        after = rss_kb(server.pid)
    finally:
        if sampler.is_alive():
            sampler.stop()
        server.stop()
    doc = json.loads(body)
    found: dict[str, int] = {}
    for p in doc.get("packages", []):
        found[p["ecosystem"]] = found.get(p["ecosystem"], 0) + 1
    inflated = sum(x.get("inflated", 0) for x in doc.get("layers", []))
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 2), "push_s": round(pushed_s, 2),
            "mb_per_s_compressed": round(image.size / wall / 1e6, 1),
            "mb_per_s_tar": round(image.inflated / wall / 1e6, 1),
            "rss_before_mb": round(before["VmRSS"] / 1024, 1),
            "rss_peak_sampled_mb": round(peak / 1024, 1), "rss_samples": sampler.samples,
            "hwm_reset": reset, "hwm_mb": round(after["VmHWM"] / 1024, 1),
            "rss_after_mb": round(after["VmRSS"] / 1024, 1),
            "packages": found, "findings": len(doc.get("findings", [])),
            "errors": doc.get("errors", []), "tar_bytes_read": inflated,
            "entries": sum(x.get("entries", 0) for x in doc.get("layers", []))}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tools_once(image: scanimage.Image) -> tuple[float, float]:
    """`zcat | tar -t` (or `zstd -dc | tar -t`) over every layer; wall and CPU seconds."""
    cpu = _children_cpu()
    start = time.perf_counter()
    for layer in image.layers:
        unpack = ["zcat"] if layer.compression == "gzip" else ["zstd", "-dcq"]
        inflate = subprocess.Popen([*unpack, str(layer.path)], stdout=subprocess.PIPE)
        listed = subprocess.run(["tar", "-t"], stdin=inflate.stdout, stdout=subprocess.DEVNULL,
                                check=False)
        assert inflate.stdout is not None
        inflate.stdout.close()
        if inflate.wait() != 0 or listed.returncode != 0:
            raise RuntimeError(f"baseline failed on {layer.path}")
    return time.perf_counter() - start, _children_cpu() - cpu


def _python_once(image: scanimage.Image) -> tuple[float, float]:
    """zlib / zstandard alone over every layer (inflate, discard); wall and CPU seconds."""
    cpu = time.process_time()
    start = time.perf_counter()
    for layer in image.layers:
        with layer.path.open("rb") as f:
            if layer.compression == "gzip":
                z = zlib.decompressobj(16 + zlib.MAX_WBITS)
                while chunk := f.read(1 << 20):
                    while chunk:
                        z.decompress(chunk, 1 << 20)
                        chunk = z.unconsumed_tail
            else:
                reader = zstandard.ZstdDecompressor().stream_reader(f)
                while reader.read(1 << 20):
                    pass
    return time.perf_counter() - start, time.process_time() - cpu


def baseline_once(image: scanimage.Image) -> dict[str, float]:
    (tools, tools_cpu), (python, python_cpu) = _tools_once(image), _python_once(image)
    return {"tools_s": round(tools, 3), "tools_cpu_s": round(tools_cpu, 2),
            "python_s": round(python, 3), "python_cpu_s": round(python_cpu, 2)}


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def summarize(image: scanimage.Image, scans: list[dict], bases: list[dict]) -> dict[str, Any]:
    wall = _median(scans, "wall_s")
    tools, python = _median(bases, "tools_s"), _median(bases, "python_s")
    return {"scan_wall_s": wall, "scan_cpu_s": _median(scans, "cpu_s"),
            "scan_mb_per_s_compressed": round(image.size / wall / 1e6, 1),
            "scan_mb_per_s_tar": round(image.inflated / wall / 1e6, 1),
            "scan_rss_peak_mb": _median(scans, "rss_peak_sampled_mb"),
            "scan_hwm_mb": _median(scans, "hwm_mb"),
            "rss_before_mb": _median(scans, "rss_before_mb"),
            "baseline_tools_s": tools, "baseline_python_s": python,
            "tools_mb_per_s_tar": round(image.inflated / tools / 1e6, 1),
            "python_mb_per_s_tar": round(image.inflated / python / 1e6, 1),
            "baseline_tools_cpu_s": _median(bases, "tools_cpu_s"),
            "baseline_python_cpu_s": _median(bases, "python_cpu_s"),
            "ratio_scan_over_tools": round(wall / tools, 2),
            "ratio_scan_over_python": round(wall / python, 2),
            "cpu_ratio_scan_over_tools": round(_median(scans, "cpu_s")
                                               / _median(bases, "tools_cpu_s"), 2),
            "cpu_ratio_scan_over_python": round(_median(scans, "cpu_s")
                                                / _median(bases, "python_cpu_s"), 2)}


def table(image: scanimage.Image, s: dict[str, Any], repeat: int) -> str:
    mb = 1e6
    return "\n".join([
        f"image: {len(image.layers)} layers, {image.size / mb:,.0f} MB compressed, "
        f"{image.inflated / mb:,.0f} MB of tar, {sum(x.files for x in image.layers):,} "
        f"files; medians of {repeat}",
        f"scan (registry worker)      {s['scan_wall_s']:8.2f} s  "
        f"{s['scan_mb_per_s_compressed']:7.1f} MB/s compressed  "
        f"{s['scan_mb_per_s_tar']:7.1f} MB/s tar  cpu {s['scan_cpu_s']:.1f} s",
        f"  worker memory: {s['rss_before_mb']:.0f} MB before, peak {s['scan_rss_peak_mb']:.0f} "
        f"MB (VmRSS sampled), VmHWM {s['scan_hwm_mb']:.0f} MB",
        f"zcat/zstd -dc | tar -t      {s['baseline_tools_s']:8.2f} s  "
        f"{s['tools_mb_per_s_tar']:7.1f} MB/s tar  cpu {s['baseline_tools_cpu_s']:.1f} s  "
        f"scan/this: wall {s['ratio_scan_over_tools']:.2f}, cpu "
        f"{s['cpu_ratio_scan_over_tools']:.2f}",
        f"python zlib/zstandard only  {s['baseline_python_s']:8.2f} s  "
        f"{s['python_mb_per_s_tar']:7.1f} MB/s tar  cpu {s['baseline_python_cpu_s']:.1f} s  "
        f"scan/this: wall {s['ratio_scan_over_python']:.2f}, cpu "
        f"{s['cpu_ratio_scan_over_python']:.2f}",
    ])


def _size(text: str) -> int:
    units = {"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "": 1}
    text = text.strip().lower()
    for unit in ("kib", "mib", "gib"):
        if text.endswith(unit):
            return int(float(text[:-3]) * units[unit])
    return int(text)


def run(args: argparse.Namespace) -> tuple[scanimage.Image, dict[str, Any]]:
    start = time.perf_counter()
    image = scanimage.build(args.cache_dir, args.size, args.seed)
    built_s = time.perf_counter() - start
    print(f"image ready ({built_s:.1f} s): {image.size:,} bytes in "
          f"{len(image.layers)} layers, {image.inflated:,} of tar", file=sys.stderr)
    scans: list[dict] = []
    bases: list[dict] = []
    for rep in range(args.repeat):
        order = ("scan", "baseline") if rep % 2 == 0 else ("baseline", "scan")
        for what in order:
            if what == "scan":
                scans.append(asyncio.run(scan_once(image, args.tmp_root)))
            else:
                bases.append(baseline_once(image))
            print(f"rep {rep + 1} {what}: {(scans if what == 'scan' else bases)[-1]}",
                  file=sys.stderr)
    summary = summarize(image, scans, bases)
    doc = {"schema": "registry-loadtest-scan/1",
           "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "machine": sysinfo.machine(), "git": sysinfo.registry_source(targets.REPO_ROOT),
           "image": {"size": image.size, "inflated": image.inflated,
                     "layers": [{"compression": x.compression, "size": x.size,
                                 "inflated": x.inflated, "files": x.files,
                                 "digest": x.digest} for x in image.layers],
                     "packages": image.packages, "build_s": round(built_s, 1)},
           "repeat": args.repeat, "scans": scans, "baselines": bases, "summary": summary}
    return image, doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest scan", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=_size, default=1 << 30,
                   help="tar bytes of the image (1GiB; KiB/MiB/GiB suffixes)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3, help="alternating repetitions (3)")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                   help=f"where the layer files are kept ({DEFAULT_CACHE})")
    p.add_argument("--tmp-root", type=Path, help="parent of the servers' temp dirs")
    p.add_argument("--out", type=Path, help="results dir (loadtest/results/scan-<stamp>/)")
    args = p.parse_args(argv)
    if not 1 <= args.repeat <= 50 or not 1 << 20 <= args.size <= 64 << 30:
        p.error("--repeat in [1, 50], --size in [1MiB, 64GiB]")
    image, doc = run(args)
    out = args.out or RESULTS / f"scan-{dt.datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    text = table(image, doc["summary"], args.repeat)
    (out / "table.txt").write_text(text + "\n")
    print(text)
    print(f"wrote {out}/results.json")
    bad = [s["errors"] for s in doc["scans"] if s["errors"]]
    return 1 if bad else 0
