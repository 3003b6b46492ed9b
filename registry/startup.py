"""Checks `registry serve` makes before it starts anything, each failing with one
clear line (exit status 2) instead of a traceback from deep inside a worker:

- the TLS certificate and key load;
- the data directories exist or can be made, and are writable;
- no other registry uses this store or this index (an exclusive lock, held for the
  life of the instance and inherited by its workers);
- the port is free (a plain bind: with SO_REUSEPORT a second instance's workers
  could otherwise join the first one's port).
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import ssl

from registry.config import Config, local_store_root
from registry.storage.paths import KEEP_PREFIX, TMP

LOCK_NAME = f"{KEEP_PREFIX}instance.lock"  # under the store's _tmp/, which cleaning keeps


class StartupError(Exception):
    """Why the registry cannot start, in one line for the operator."""


def ssl_context(config: Config) -> ssl.SSLContext | None:
    """The server's TLS context, None without a certificate."""
    if not config.server.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(config.server.tls_cert, config.server.tls_key)
    return ctx


def check_tls(config: Config) -> None:
    try:
        ssl_context(config)
    except (OSError, ssl.SSLError) as exc:
        raise StartupError(f"cannot load the TLS certificate {config.server.tls_cert} and key "
                           f"{config.server.tls_key}: {exc}") from None


def _local_dirs(config: Config) -> list[str]:
    dirs = [os.path.dirname(os.path.abspath(config.index.path))]
    if (root := local_store_root(config)) is not None:
        dirs.append(os.path.abspath(root))
    return dirs


def check_dirs(config: Config) -> None:
    for path in _local_dirs(config):
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise StartupError(f"cannot create the directory {path}: {exc.strerror}") from None
        if not os.access(path, os.W_OK | os.X_OK):
            raise StartupError(f"the directory {path} is not writable by this user "
                               f"(uid {os.getuid()})")


def lock_instance(config: Config) -> list[int]:
    """Exclusive locks on the index and the local store; the descriptors (kept open
    for the life of the instance). StartupError when another instance holds one."""
    paths = [config.index.path + ".lock"]
    if (root := local_store_root(config)) is not None:
        os.makedirs(os.path.join(root, TMP), exist_ok=True)
        paths.append(os.path.join(root, TMP, LOCK_NAME))
    fds: list[int] = []
    for path in paths:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            for held in fds:
                os.close(held)
            what = os.path.dirname(os.path.dirname(path)) if path.endswith(LOCK_NAME) \
                else config.index.path
            raise StartupError(
                f"another registry (pid {holder}) is using {what}: stop it, or give this one "
                "its own --data (several hosts on one shared filesystem are not replicas: "
                "replicas share an S3 store, see docs/scale-out.md)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        fds.append(fd)
    return fds


def check_port(config: Config) -> None:
    host, port = config.server.host, config.server.port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        infos = socket.getaddrinfo(host, port, family if ":" in host else socket.AF_UNSPEC,
                                   socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise StartupError(f"cannot resolve the listen address {host!r}: {exc}") from None
    fam, kind, proto, _, addr = infos[0]
    with socket.socket(fam, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            sock.bind(addr)
        except OSError as exc:
            why = "in use (another registry or program listens there)" \
                if exc.errno == errno.EADDRINUSE else exc.strerror
            raise StartupError(f"cannot listen on {config.server.listen}: {why}") from None


def preflight(config: Config) -> list[int]:
    """Every check above, in order; the instance locks' descriptors."""
    check_tls(config)
    check_dirs(config)
    fds = lock_instance(config)
    check_port(config)
    return fds
