"""What this machine offers, as a Host: archspec's target, the NVIDIA driver's CUDA, linux.

Used by the node cache's host-aware mode when `[cache] host` does not say it. Nothing
here may stop a start: archspec failing falls back to the generic target of the
machine's family, and `nvidia-smi` missing, failing, hanging or printing something
unexpected means "no CUDA", each with a note that says why (the cache logs them).

The CUDA version is the one the driver supports, as `nvidia-smi` prints it in its
header ("Driver Version: 550.54.15   CUDA Version: 12.4"), which is what a build's
minimum CUDA is compared with (a driver runs builds made with a CUDA up to its own).
"""

from __future__ import annotations

import logging
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass

import archspec.cpu

from registry.arch.host import Host, HostError, Version, dotted, parse_version

log = logging.getLogger("registry.arch")

NVIDIA_SMI = "nvidia-smi"
NVIDIA_SMI_TIMEOUT = 5.0
# nvidia-smi's header is a few lines; a program that prints more is not it.
OUTPUT_MAX = 1 << 16
_CUDA = re.compile(r"CUDA Version\s*:\s*([0-9]{1,6}(?:\.[0-9]{1,6}){0,3})(?![.0-9])")
_DRIVER = re.compile(r"Driver Version\s*:\s*([0-9]{1,6}(?:\.[0-9]{1,6}){0,3})(?![.0-9])")
# platform.machine() -> archspec's generic target, when archspec cannot tell more.
_MACHINE = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64",
            "arm64": "aarch64", "ppc64le": "ppc64le"}


@dataclass(frozen=True)
class Detected:
    """A detected host and notes, in words, on how each part was found (or not)."""

    host: Host
    notes: tuple[str, ...]


def cpu_target() -> tuple[str, frozenset[str], str]:
    """archspec's name for this CPU, its features, and a note on how it was found."""
    try:
        target = archspec.cpu.host()
        return target.name, frozenset(target.features), f"archspec: {target.name}"
    except Exception as exc:  # archspec reads /proc/cpuinfo, sysctl, ...: anything goes
        generic = _MACHINE.get(platform.machine().lower(), "x86_64")
        return generic, frozenset(), f"archspec failed ({exc}): generic {generic}"


def nvidia_cuda(program: str = NVIDIA_SMI,
                timeout: float = NVIDIA_SMI_TIMEOUT) -> tuple[Version | None, str]:
    """The CUDA version the NVIDIA driver supports, from `program`'s header, or None;
    and a note saying what was found or why there is none."""
    path = shutil.which(program)
    if path is None:
        return None, f"no {program} on PATH: no CUDA"
    try:
        proc = subprocess.Popen([path], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    except OSError as exc:
        return None, f"{program} could not run ({exc}): no CUDA"
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        # A driver in trouble can leave it in uninterruptible sleep: do not wait forever.
        try:
            proc.communicate(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
        return None, f"{program} did not answer within {timeout:g} s: no CUDA"
    if proc.returncode != 0:
        first = err[:200].decode(errors="replace").strip().splitlines()[:1]
        return None, (f"{program} failed (exit {proc.returncode}"
                      + (f": {first[0]}" if first else "") + "): no CUDA")
    text = out[:OUTPUT_MAX].decode(errors="replace")
    found = _CUDA.search(text)
    if found is None:
        return None, f"{program} names no CUDA version: no CUDA"
    try:
        cuda = parse_version(found.group(1), "cuda")
    except HostError as exc:
        return None, f"{program}: {exc}: no CUDA"
    driver = _DRIVER.search(text)
    return cuda, (f"NVIDIA driver {driver.group(1)}" if driver else "NVIDIA driver") \
        + f", CUDA {dotted(cuda)}"


def detect(program: str = NVIDIA_SMI, timeout: float = NVIDIA_SMI_TIMEOUT) -> Detected:
    """This machine as a Host (blocking: it runs `nvidia-smi`; call it off the event loop)."""
    target, features, cpu_note = cpu_target()
    cuda, gpu_note = nvidia_cuda(program, timeout)
    return Detected(Host(os="linux", target=target, cuda=cuda, features=features),
                    (cpu_note, gpu_note))
