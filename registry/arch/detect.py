"""What this machine offers, as a Host: archspec's target, the NVIDIA driver's CUDA, linux,
and the facts image-compatibility artifacts ask about (CPU vendor, kernel, glibc, PCI).

Used by the node cache's host-aware mode when `[cache] host` does not say it. Nothing
here may stop a start: archspec failing falls back to the generic target of the
machine's family, and `nvidia-smi` missing, failing, hanging or printing something
unexpected means "no CUDA", each with a note that says why (the cache logs them). A
fact that cannot be read is not stated (None), which the compatibility checks treat
as "not checked", never as "absent".

The CUDA version is the one the driver supports, as `nvidia-smi` prints it in its
header ("Driver Version: 550.54.15   CUDA Version: 12.4"), which is what a build's
minimum CUDA is compared with (a driver runs builds made with a CUDA up to its own).
"""

from __future__ import annotations

import logging
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import archspec.cpu

from registry.arch.host import (
    MAX_PCI,
    Host,
    HostError,
    PciDevice,
    Version,
    dotted,
    parse_version,
)

log = logging.getLogger("registry.arch")

NVIDIA_SMI = "nvidia-smi"
NVIDIA_SMI_TIMEOUT = 5.0
# nvidia-smi's header is a few lines; a program that prints more is not it.
OUTPUT_MAX = 1 << 16
_CUDA = re.compile(r"CUDA Version\s*:\s*([0-9]{1,6}(?:\.[0-9]{1,6}){0,3})(?![.0-9])")
_DRIVER = re.compile(r"Driver Version\s*:\s*([0-9]{1,6}(?:\.[0-9]{1,6}){0,3})(?![.0-9])")
_LEADING_VERSION = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6}){0,3}")
_HEX4 = re.compile(r"0x([0-9a-f]{4})")
PCI_ROOT = "/sys/bus/pci/devices"
# PCI classes kept when a machine has more distinct devices than a host may state:
# display (GPUs), network (InfiniBand, Ethernet) and processing accelerators.
_PCI_KEPT = ("0x03", "0x02", "0x12")
# platform.machine() -> archspec's generic target, when archspec cannot tell more.
_MACHINE = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64",
            "arm64": "aarch64", "ppc64le": "ppc64le"}


@dataclass(frozen=True)
class Detected:
    """A detected host and notes, in words, on how each part was found (or not)."""

    host: Host
    notes: tuple[str, ...]


def cpu_target() -> tuple[str, frozenset[str], str | None, str]:
    """archspec's name for this CPU, its features, its vendor as cpuid spells it (None
    when unknown), and a note on how they were found."""
    try:
        target = archspec.cpu.host()
        vendor = None if target.vendor == "generic" else str(target.vendor)
        vendor = vendor or _cpuinfo_vendor()
        return target.name, frozenset(target.features), vendor, \
            f"archspec: {target.name}" + (f" ({vendor})" if vendor else "")
    except Exception as exc:  # archspec reads /proc/cpuinfo, sysctl, ...: anything goes
        generic = _MACHINE.get(platform.machine().lower(), "x86_64")
        return generic, frozenset(), None, f"archspec failed ({exc}): generic {generic}"


def _cpuinfo_vendor() -> str | None:
    # archspec names a generic target's vendor "generic"; the kernel still knows it.
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "vendor_id" and re.fullmatch(r"\w{1,32}", value.strip()):
                    return value.strip()
                if not line.strip():
                    break  # the first processor's block is enough
    except OSError:
        pass
    return None


def _leading_version(text: str) -> Version | None:
    """`6.8.0-1015-aws` -> (6, 8, 0); None when it does not start with a version."""
    found = _LEADING_VERSION.match(text.strip())
    return tuple(int(p) for p in found.group(0).split(".")) if found else None


def kernel_version() -> Version | None:
    return _leading_version(platform.release())


def glibc_version() -> Version | None:
    try:
        said = os.confstr("CS_GNU_LIBC_VERSION") or ""  # "glibc 2.36"
    except (ValueError, OSError):
        said = ""
    name, _, version = said.partition(" ")
    return _leading_version(version) if name == "glibc" else None


def pci_devices(root: str = PCI_ROOT) -> frozenset[PciDevice] | None:
    """The machine's distinct PCI (vendor, device) pairs; with more than a host may
    state, only its GPUs, network cards and accelerators; None when unreadable."""
    found: dict[PciDevice, str] = {}
    try:
        for entry in Path(root).iterdir():
            ids = [(entry / name).read_text().strip().lower()
                   for name in ("vendor", "device", "class")]
            vendor, device = _HEX4.fullmatch(ids[0]), _HEX4.fullmatch(ids[1])
            if vendor and device:
                found[(vendor.group(1), device.group(1))] = ids[2]
    except OSError:
        return None
    if len(found) > MAX_PCI:
        found = {d: c for d, c in found.items() if c.startswith(_PCI_KEPT)}
    return frozenset(found) if 0 < len(found) <= MAX_PCI else None


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


def detect(program: str = NVIDIA_SMI, timeout: float = NVIDIA_SMI_TIMEOUT,
           pci_root: str = PCI_ROOT) -> Detected:
    """This machine as a Host (blocking: it runs `nvidia-smi`; call it off the event loop)."""
    target, features, vendor, cpu_note = cpu_target()
    cuda, gpu_note = nvidia_cuda(program, timeout)
    kernel, glibc, pci = kernel_version(), glibc_version(), pci_devices(pci_root)
    system = ", ".join(
        [f"kernel {dotted(kernel)}" if kernel else "kernel unknown",
         f"glibc {dotted(glibc)}" if glibc else "glibc unknown",
         f"{len(pci)} PCI devices" if pci else "PCI devices not stated"])
    return Detected(Host(os="linux", target=target, cuda=cuda, features=features,
                         vendor=vendor, kernel=kernel, glibc=glibc, pci=pci or frozenset()),
                    (cpu_note, gpu_note, system))
