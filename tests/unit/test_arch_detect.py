"""Host detection for the node cache's host-aware mode: archspec's target, and the CUDA
version a real `nvidia-smi` program prints (stand-ins are executables on disk, run as
the real one is), with every way it can fail ending in "no CUDA", never an exception."""

from __future__ import annotations

import os
import platform
import re
import stat
from pathlib import Path

import archspec.cpu

from registry.arch.detect import detect, nvidia_cuda, pci_devices
from registry.arch.host import host_query, parse_host

# The header of a real nvidia-smi (550 driver).
HEADER = """\
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 550.54.15              Driver Version: 550.54.15      CUDA Version: 12.4     |
|-----------------------------------------+------------------------+----------------------+
"""


def program(tmp_path: Path, body: str) -> str:
    path = tmp_path / "nvidia-smi"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_cuda_from_the_header(tmp_path):
    cuda, note = nvidia_cuda(program(tmp_path, f"cat <<'END'\n{HEADER}END\n"))
    assert cuda == (12, 4)
    assert note == "NVIDIA driver 550.54.15, CUDA 12.4"


def test_every_failure_is_no_cuda(tmp_path):
    assert nvidia_cuda(str(tmp_path / "absent"))[0] is None
    failing = program(tmp_path, "echo 'NVIDIA-SMI has failed because it could not "
                                "communicate with the NVIDIA driver.' >&2\nexit 9\n")
    cuda, note = nvidia_cuda(failing)
    assert cuda is None and "exit 9" in note and "communicate" in note
    for garbage in ("echo 'CUDA Version: twelve'", "echo 'CUDA Version: 1.2.3.4.5.6'",
                    "head -c 200000 /dev/zero | tr '\\0' x", "printf '\\377\\376'"):
        assert nvidia_cuda(program(tmp_path, garbage + "\n"))[0] is None, garbage
    # Hangs are cut off (the timeout is what the test waits for, not a sleep of its own).
    cuda, note = nvidia_cuda(program(tmp_path, "exec sleep 30\n"), timeout=0.2)
    assert cuda is None and "did not answer" in note


def test_detected_host_is_archspecs():
    found = detect(program="/nonexistent/nvidia-smi")
    assert found.host.target == archspec.cpu.host().name
    assert found.host.os == "linux" and found.host.cuda is None
    assert len(found.notes) == 3
    # The facts compatibility artifacts ask about, as the system states them.
    assert found.host.kernel == tuple(
        int(p) for p in re.match(r"[0-9.]+", platform.release()).group(0).split("."))
    libc, version = os.confstr("CS_GNU_LIBC_VERSION").split()
    assert libc == "glibc" and found.host.glibc == tuple(map(int, version.split(".")))
    # What is logged and shown reads back as the same host (features left out).
    again = parse_host(host_query(found.host))
    assert (again.os, again.target, again.cuda) == ("linux", found.host.target, None)


def test_host_query_round_trip():
    text = "os=linux&target=zen3&cuda=12.4&rocm=6.0&mpi=openmpi@4.1"
    assert host_query(parse_host(text)) == text


def sysfs_device(root: Path, name: str, vendor: str, device: str, klass: str) -> None:
    entry = root / name
    entry.mkdir(parents=True)
    for key, value in (("vendor", vendor), ("device", device), ("class", klass)):
        (entry / key).write_text(value + "\n")


def test_pci_devices_from_sysfs(tmp_path):
    # An H100 twice (one pair), a ConnectX-7, a bridge; garbage is skipped.
    sysfs_device(tmp_path, "0000:01:00.0", "0x10de", "0x2330", "0x030200")
    sysfs_device(tmp_path, "0000:02:00.0", "0x10de", "0x2330", "0x030200")
    sysfs_device(tmp_path, "0000:03:00.0", "0x15b3", "0x1021", "0x020700")
    sysfs_device(tmp_path, "0000:00:00.0", "0x8086", "0x0d57", "0x060000")
    sysfs_device(tmp_path, "0000:04:00.0", "nonsense", "0x1", "0x0")
    assert pci_devices(str(tmp_path)) == {("10de", "2330"), ("15b3", "1021"), ("8086", "0d57")}
    # More distinct devices than a host may state: its GPUs, NICs and accelerators.
    for n in range(70):
        sysfs_device(tmp_path, f"0000:80:{n:02x}.0", "0x8086", f"0x{n:04x}", "0x088000")
    assert pci_devices(str(tmp_path)) == {("10de", "2330"), ("15b3", "1021")}
    assert pci_devices(str(tmp_path / "absent")) is None
