"""Start and stop the servers under test: our registry, docker-registry and nginx.

Every server runs on 127.0.0.1 on a free port, in its own session (process group) with
its data in a fresh temp dir. `Server.stop()` terminates the whole session (workers
included), waits for it, and removes the temp dir. Children also get PR_SET_PDEATHSIG so
they die with the harness even if it is killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from loadtest.data import BlobFile

REPO_ROOT = Path(__file__).resolve().parent.parent

try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux/glibc
    _LIBC = None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_pids(sid: int) -> list[int]:
    """Live (non-zombie) processes whose session id is `sid` (a server and its workers)."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 3 and int(fields[3]) == sid and fields[0] != b"Z":
            pids.append(int(entry.name))
    return pids


def rss_bytes(pids: list[int]) -> int:
    """Sum of VmRSS over `pids` (processes that vanished count as 0)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def tree_rss_bytes(leader: int) -> int:
    return rss_bytes(session_pids(leader))


@dataclass
class TargetSpec:
    """How to start one side of the comparison."""

    name: str  # "ours", "theirs", "nginx"
    flavor: str  # "ours", "docker-registry", "nginx"
    binary: str = ""  # docker-registry / nginx executable
    argv: list[str] = field(default_factory=list)  # ours: command template
    workers: int | None = None
    config_file: Path | None = None  # ours: base TOML config
    settings: dict[str, dict[str, str]] = field(default_factory=dict)  # ours: TOML overrides
    src: Path | None = None  # ours: the checkout whose `registry` runs (default: this one)
    # ours with token auth (--auth): the user that seeds and asks for tokens
    credentials: tuple[str, str] | None = None

    @property
    def kind(self) -> str:
        return "nginx" if self.flavor == "nginx" else "registry"

    def describe(self) -> str:
        if self.flavor == "ours":
            return " ".join(self.argv) + (f" (PYTHONPATH={self.src})" if self.src else "")
        if self.flavor == "nginx":
            return f"{self.binary} (nginx, worker_processes {self.workers or 'auto'})"
        return f"{self.binary} ({self.flavor})"


def default_ours_argv() -> list[str]:
    return [sys.executable, "-m", "registry", "serve", "--listen", "{listen}", "--data", "{data}"]


def ours_spec(
    cmd: str | None,
    workers: int | None = None,
    config_file: Path | None = None,
    settings: dict[str, dict[str, str]] | None = None,
) -> TargetSpec:
    """`cmd` is a command template ({python} {listen} {host} {port} {data} {config}), or
    names a docker-registry binary to stand in for our server during development."""
    argv = shlex.split(cmd) if cmd else default_ours_argv()
    exe = shutil.which(argv[0]) or argv[0]
    if os.path.basename(exe) == "docker-registry":
        return TargetSpec("ours", "docker-registry", binary=exe)
    return TargetSpec(
        "ours", "ours", argv=argv, workers=workers, config_file=config_file,
        settings=settings or {},
    )  # fmt: skip


def baseline_spec(ours: TargetSpec, src: Path) -> TargetSpec:
    """Our server as `ours` runs it (same command and config), from checkout `src`."""
    if ours.flavor != "ours":
        raise ValueError("a baseline needs our registry as `ours`")
    return dataclasses.replace(ours, name="baseline", src=src.resolve())


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def set_toml_keys(text: str, settings: dict[str, dict[str, str]]) -> str:
    """Set `key = <TOML literal>` in each `[section]` of a TOML text, adding what is missing.

    Only flat `[section]` tables are handled (all our config uses); other lines are kept.
    """
    lines = text.splitlines()
    out: list[str] = []
    section = ""
    done: set[tuple[str, str]] = set()

    def flush(sec: str) -> None:
        for key, value in settings.get(sec, {}).items():
            if (sec, key) not in done:
                out.append(f"{key} = {value}")
                done.add((sec, key))

    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            flush(section)
            section = stripped.strip("[]").strip()
            out.append(line)
            continue
        key = stripped.split("=", 1)[0].strip() if "=" in stripped else ""
        if key and key in settings.get(section, {}):
            continue  # replaced by flush()
        out.append(line)
    flush(section)
    for sec, values in settings.items():
        missing = [k for k in values if (sec, k) not in done]
        if missing:
            out += ["", f"[{sec}]"] + [f"{k} = {values[k]}" for k in missing]
            done.update((sec, k) for k in missing)
    return "\n".join(out).strip() + "\n"


def ours_config_text(
    base: Path | None, workers: int | None, settings: dict[str, dict[str, str]] | None = None
) -> str:
    """Our TOML config: the base file (if any), logging at error level unless the base file
    sets it, then `[server] workers = N` and explicit `settings` (TOML literals) on top."""
    text = base.read_text() if base is not None else ""
    merged: dict[str, dict[str, str]] = {}
    try:
        has_level = "log_level" in tomllib.loads(text).get("server", {})
    except tomllib.TOMLDecodeError:
        has_level = False
    if not has_level:
        merged.setdefault("server", {})["log_level"] = '"error"'
    if workers is not None:
        merged.setdefault("server", {})["workers"] = str(workers)
    for sec, values in (settings or {}).items():
        merged.setdefault(sec, {}).update(values)
    return set_toml_keys(text, merged)


DOCKER_REGISTRY_CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
"""

NGINX_CONFIG = """\
daemon off;
master_process on;
worker_processes {workers};
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log error;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 120;
    keepalive_requests 100000000;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{ }}
    default_type application/octet-stream;
    # Docker-Content-Digest of each manifest file, keyed by URL path (written before start).
    map_hash_bucket_size 256;
    map $uri $docker_content_digest {{
        default "";
        include {tmp}/digests.map;
    }}
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
        location = /v2/ {{
            default_type application/json;
            return 200 "{{}}";
        }}
        location ~ ^/v2/.+/manifests/[^/]+$ {{
            default_type application/vnd.oci.image.manifest.v1+json;
            add_header Docker-Content-Digest $docker_content_digest;
        }}
    }}
}}
"""


class StartError(RuntimeError):
    pass


@dataclass
class Server:
    """A running server process (session leader) and its temp dir."""

    spec: TargetSpec
    port: int
    tmp_dir: Path
    cmd: list[str]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    env: dict[str, str] = field(default_factory=dict)  # extra environment for spawn()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def basic_auth(self) -> aiohttp.BasicAuth | None:
        """Credentials for pushes and tokens when the server runs with token auth."""
        creds = self.spec.credentials
        return aiohttp.BasicAuth(*creds) if creds else None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def log_path(self) -> Path:
        return self.tmp_dir / "server.log"

    def log_tail(self, n: int = 4000) -> str:
        texts = []
        for p in (self.log_path, self.tmp_dir / "error.log"):
            try:
                texts.append(p.read_text(errors="replace")[-n:])
            except OSError:
                pass
        return "\n".join(t for t in texts if t)

    def rss(self) -> int:
        return tree_rss_bytes(self.pid) if self.proc is not None else 0

    def link_blob(self, repo: str, blob: BlobFile) -> None:
        """nginx only: serve `blob` at the same path a registry uses for it."""
        dest = self.tmp_dir / "www" / "v2" / repo / "blobs" / blob.digest
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            dest.symlink_to(blob.path.resolve())

    def add_static(self, path: str, data: bytes, digest: str = "") -> None:
        """nginx only, before spawn(): serve `data` at URL `path` (e.g. a manifest at
        /v2/<repo>/manifests/<ref>), with `Docker-Content-Digest: digest` if given."""
        dest = self.tmp_dir / "www" / path.lstrip("/")
        if not dest.resolve().is_relative_to((self.tmp_dir / "www").resolve()):
            raise ValueError(f"path outside the web root: {path}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        if digest:
            with (self.tmp_dir / "digests.map").open("a") as f:
                f.write(f'"{path}" "{digest}";\n')

    def spawn(self) -> None:
        log = self.log_path.open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        cwd = self.tmp_dir
        if self.spec.flavor == "ours":
            # `python -m registry` imports from the working directory first, then
            # PYTHONPATH: both name the checkout under test (a baseline's is another).
            cwd = self.spec.src or REPO_ROOT
            env["PYTHONPATH"] = os.pathsep.join(
                [str(cwd)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env.update(self.env)
        try:
            self.proc = subprocess.Popen(
                self.cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()
        self.started_at = time.monotonic()

    async def wait_ready(self, limit_s: float) -> None:
        deadline = time.monotonic() + limit_s
        last = "no answer"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2),
                                         auth=self.basic_auth) as session:
            while time.monotonic() < deadline:
                if self.proc is None or self.proc.poll() is not None:
                    code = self.proc.returncode if self.proc else None
                    raise StartError(f"{self.name} exited early (code {code}):\n{self.log_tail()}")
                try:
                    async with session.get(f"{self.url}/v2/") as resp:
                        if resp.status == 200:
                            return
                        last = f"HTTP {resp.status}"
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    last = repr(exc)
                await asyncio.sleep(0.05)
        raise StartError(f"{self.name} not ready after {limit_s:.0f}s ({last}):\n{self.log_tail()}")

    def stop(self, keep_tmp: bool = False) -> None:
        """Terminate the session, reap it, kill stragglers, remove the temp dir. Idempotent."""
        proc = self.proc
        if proc is not None:
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    _signal_group(proc.pid, signal.SIGKILL)
                    try:
                        proc.wait(10)
                    except subprocess.TimeoutExpired:
                        pass
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # workers that outlived the leader
                left = session_pids(proc.pid)
                if not left:
                    break
                for pid in left:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.05)
        if not keep_tmp:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def prepare(spec: TargetSpec, tmp_root: Path | None) -> Server:
    """Make the temp dir and config for one run of `spec` (does not start it)."""
    if tmp_root is not None:
        tmp_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"loadtest-{spec.name}-", dir=tmp_root))
    port = free_port()
    data = tmp / "data"
    data.mkdir()
    if spec.flavor == "docker-registry":
        cfg = tmp / "config.yml"
        cfg.write_text(DOCKER_REGISTRY_CONFIG.format(data=data, port=port))
        cmd = [spec.binary, "serve", str(cfg)]
    elif spec.flavor == "nginx":
        for sub in ("www", "client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (tmp / sub).mkdir()
        (tmp / "digests.map").write_text("")
        user = "user root root;" if os.geteuid() == 0 else ""
        workers = spec.workers or "auto"
        cfg = tmp / "nginx.conf"
        cfg.write_text(NGINX_CONFIG.format(tmp=tmp, port=port, user=user, workers=workers))
        cmd = [spec.binary, "-e", str(tmp / "error.log"), "-p", str(tmp), "-c", str(cfg)]
    else:
        cfg_path = tmp / "registry.toml"
        cfg_path.write_text(ours_config_text(spec.config_file, spec.workers, spec.settings))
        values = {
            "python": sys.executable,
            "listen": f"127.0.0.1:{port}",
            "host": "127.0.0.1",
            "port": str(port),
            "data": str(data),
            "config": str(cfg_path),
        }
        cmd = [arg.format(**values) for arg in spec.argv]
        if not any("{config}" in a for a in spec.argv):
            cmd += ["--config", str(cfg_path)]
    return Server(spec=spec, port=port, tmp_dir=tmp, cmd=cmd)


async def start(spec: TargetSpec, tmp_root: Path | None, limit_s: float = 60.0) -> Server:
    server = prepare(spec, tmp_root)
    try:
        server.spawn()
        await server.wait_ready(limit_s)
    except BaseException:
        server.stop()
        raise
    return server
