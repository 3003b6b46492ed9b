"""Fixtures that run real container clients (skopeo, podman, buildah, oras-py).

Each test gets a `tools` fixture: an isolated environment under its tmp_path
with its own HOME, containers-storage (driver "vfs", graphroot/runroot in the
temp dir), registries.conf marking the test registry insecure, a policy.json
that accepts anything and a containers.conf that lets podman run without
systemd (cgroupfs, file events, tmp_dir in the temp dir). Images, containers
and config never touch /var/lib/containers/storage, /etc/containers or ~/.config.
What is still shared (c/image hardcodes it for root): the blob-info cache in
/var/lib/containers/cache, which only makes clients try cross-repository mounts
(POST ?mount=&from=), and an empty /run/containers/networks made by podman.

A missing client binary fails its tests: `bash tests/run.sh` installs them,
so a missing one means a broken install step, never a reason to skip.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

# Every command a test runs gets this long before it is killed; a hung client
# must not eat the suite's time budget.
COMMAND_TIMEOUT = 120

ACCEPT_ANYTHING_POLICY = {"default": [{"type": "insecureAcceptAnything"}]}

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: takes minutes (real spack in test_spack.py; opt-in through SPACK_ROOT)")


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run the suite with `bash tests/run.sh`, "
                    "which installs it (see tests/clients/REQUIREMENTS.md)")
    return path


class CommandError(AssertionError):
    """A client command failed; the message carries its full stdout and stderr."""


def _text(out: str | bytes | None) -> str:
    if isinstance(out, bytes):
        return out.decode(errors="replace")
    return out or ""


@dataclass
class ContainerTools:
    """Runs skopeo/podman/buildah against `host` inside an isolated environment."""

    root: Path
    host: str
    url: str
    env: dict[str, str]
    policy: Path

    def run(
        self, *cmd: str | Path, check: bool = True, binary: bool = False
    ) -> subprocess.CompletedProcess:
        """Run a command with the isolated env; on failure raise with its full output.

        stdout/stderr are str, or bytes with binary=True (for exact manifest bytes).
        """
        __tracebackhide__ = True
        argv = [str(c) for c in cmd]
        try:
            proc = subprocess.run(
                argv,
                env=self.env,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=not binary,
                timeout=COMMAND_TIMEOUT,
            )
        except subprocess.TimeoutExpired as exc:
            raise CommandError(
                f"timed out after {COMMAND_TIMEOUT}s: {shlex.join(argv)}\n"
                f"--- stdout ---\n{_text(exc.stdout)}\n--- stderr ---\n{_text(exc.stderr)}"
            ) from None
        if check and proc.returncode != 0:
            raise CommandError(
                f"exit {proc.returncode}: {shlex.join(argv)}\n"
                f"--- stdout ---\n{_text(proc.stdout)}\n--- stderr ---\n{_text(proc.stderr)}"
            )
        return proc

    # -- the tools ------------------------------------------------------------

    def skopeo(
        self, *args: str | Path, check: bool = True, binary: bool = False
    ) -> subprocess.CompletedProcess:
        require_tool("skopeo")
        return self.run("skopeo", "--policy", self.policy, *args, check=check, binary=binary)

    def podman(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess:
        require_tool("podman")
        flags = ["--cgroup-manager=cgroupfs", "--events-backend=file"]
        return self.run("podman", *flags, *args, check=check)

    def buildah(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess:
        require_tool("buildah")
        return self.run("buildah", *args, check=check)

    # -- helpers --------------------------------------------------------------

    def docker_ref(self, repo: str, ref: str = "latest") -> str:
        """`docker://HOST/repo:tag` or `docker://HOST/repo@sha256:...`."""
        sep = "@" if ":" in ref else ":"
        return f"docker://{self.host}/{repo}{sep}{ref}"

    def image_name(self, repo: str, ref: str = "latest") -> str:
        """`HOST/repo:tag` (podman/buildah style, no transport)."""
        sep = "@" if ":" in ref else ":"
        return f"{self.host}/{repo}{sep}{ref}"

    def inspect_raw(self, repo: str, ref: str) -> bytes:
        """Manifest bytes exactly as skopeo received them."""
        ref = self.docker_ref(repo, ref)
        return self.skopeo("inspect", "--raw", "--tls-verify=false", ref, binary=True).stdout

    def get_manifest(self, repo: str, ref: str, accept: str = MANIFEST_ACCEPT) -> requests.Response:
        """GET /v2/<repo>/manifests/<ref> straight from the registry, no client in between."""
        return requests.get(
            f"{self.url}/v2/{repo}/manifests/{ref}", headers={"Accept": accept}, timeout=30
        )

    def inspect(self, repo: str, ref: str, arch: str | None = None) -> dict:
        """skopeo's parsed view of an image; `arch` picks a platform out of an index."""
        pick = ["--override-os", "linux", "--override-arch", arch] if arch else []
        proc = self.skopeo(*pick, "inspect", "--tls-verify=false", self.docker_ref(repo, ref))
        return json.loads(proc.stdout)


def write_configs(root: Path, host: str) -> tuple[dict[str, str], Path]:
    """Write storage.conf, registries.conf, policy.json and containers.conf under root."""
    home = root / "home"
    conf = home / ".config" / "containers"
    conf.mkdir(parents=True)
    for sub in ("graph", "run", "tmp", "libpod-tmp", "volumes", "run-user"):
        (root / sub).mkdir()

    storage_conf = conf / "storage.conf"
    storage_conf.write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{root / "graph"}"\nrunroot = "{root / "run"}"\n'
    )
    registries_conf = conf / "registries.conf"
    registries_conf.write_text(
        "unqualified-search-registries = []\n"
        'short-name-mode = "permissive"\n\n'
        "[[registry]]\n"
        f'location = "{host}"\n'
        "insecure = true\n"
    )
    # c/image reads $HOME/.config/containers/policy.json before /etc/containers/policy.json,
    # so podman and buildah need no --signature-policy flag; skopeo also gets --policy.
    policy = conf / "policy.json"
    policy.write_text(json.dumps(ACCEPT_ANYTHING_POLICY))
    # podman refuses to start if REGISTRY_AUTH_FILE names a file that does not exist.
    auth_file = home / "auth.json"
    auth_file.write_text('{"auths": {}}')
    containers_conf = conf / "containers.conf"
    containers_conf.write_text(
        "[containers]\n"
        'log_driver = "k8s-file"\n\n'
        "[engine]\n"
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'events_logfile_path = "{root / "libpod-tmp" / "events.log"}"\n'
        f'tmp_dir = "{root / "libpod-tmp"}"\n'
        f'volume_path = "{root / "volumes"}"\n'
        'runtime = "crun"\n'
    )

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CONTAINERS_", "REGISTRY_", "BUILDAH_", "XDG_", "DOCKER_"))
    }
    env.update(
        HOME=str(home),
        TMPDIR=str(root / "tmp"),
        CONTAINERS_STORAGE_CONF=str(storage_conf),
        CONTAINERS_REGISTRIES_CONF=str(registries_conf),
        CONTAINERS_CONF=str(containers_conf),
        REGISTRY_AUTH_FILE=str(auth_file),
        BUILDAH_ISOLATION="chroot",
        LC_ALL="C.UTF-8",
    )
    return env, policy


def tools_for(root: Path, reg) -> ContainerTools:
    """An isolated skopeo/podman/buildah environment under `root` pointed at `reg`."""
    root.mkdir()
    env, policy = write_configs(root, reg.host)
    return ContainerTools(root=root, host=reg.host, url=reg.url, env=env, policy=policy)


@pytest.fixture
def tools(tmp_path: Path, registry) -> ContainerTools:
    """An isolated skopeo/podman/buildah environment pointed at the test registry."""
    return tools_for(tmp_path / "ctools", registry)


@pytest.fixture
def make_tools(tmp_path: Path):
    """Factory: tools for another registry (one with auth on, say)."""
    return lambda reg: tools_for(tmp_path / "ctools", reg)
