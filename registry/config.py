"""Configuration: TOML file < REGISTRY_<SECTION>_<KEY> environment < command line.

Every key has a typed default here; `registry config check FILE` reports every
problem at once, each naming the exact key.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from registry.specs import parse_quota, parse_retention


class ConfigError(Exception):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass
class ServerConfig:
    listen: str = "127.0.0.1:5000"
    tls_cert: str = ""
    tls_key: str = ""
    workers: int = 1
    log_level: str = "info"
    # One line a request at info level (text or JSON); the client address comes
    # from X-Forwarded-For only when the peer is one of `trusted_proxies`.
    access_log: bool = True
    log_format: str = "text"
    trusted_proxies: list[str] = field(default_factory=list)
    # On SIGTERM/SIGINT: stop accepting, let requests in flight finish this long.
    drain_seconds: int = 30

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


# The drivers registry.storage registers (named here so config imports no storage).
STORAGE_DRIVERS = ("filesystem", "s3", "memory")


@dataclass
class StorageConfig:
    driver: str = "filesystem"  # one of STORAGE_DRIVERS; memory is for tests
    root: str = "./data/storage"
    auto_mount: bool = True
    fsync: bool = True
    # Upload sessions untouched this long (seconds) are deleted; 0 keeps them forever.
    upload_purge_after: int = 7 * 24 * 3600
    # s3 driver
    bucket: str = ""
    prefix: str = ""
    endpoint_url: str = ""
    region: str = "us-east-1"
    access_key: str = ""
    secret_key: str = ""
    part_size: int = 16 << 20
    path_style: bool = True
    redirect: bool = False
    # Replicas on a shared store (s3) cache tag lookups this long; 0 = never.
    tag_cache_ms: int = 0


@dataclass
class IndexConfig:
    # "" = beside the storage root (the node cache's directory in node-cache mode):
    # DIR/storage -> DIR/index.sqlite; ./data/index.sqlite with the s3 driver.
    path: str = ""
    # Seconds between passes that catch this replica's index up with writes made by
    # other replicas on a shared S3 store (registry/core/indexing.py); 0 disables.
    sync_interval: int = 30
    # Seconds between writes of the pull counts kept in memory (and at shutdown).
    pull_flush_seconds: int = 5


@dataclass
class LimitsConfig:
    manifest_max_bytes: int = 4 << 20
    # "PATTERN SIZE": at most SIZE stored for the repositories matching the glob,
    # e.g. "team/* 50GiB" (registry/core/quotas.py).
    quotas: list[str] = field(default_factory=list)


@dataclass
class CacheConfig:
    """Node-cache mode: a pull-through cache of an upstream registry (docs/hpc-fanout.md).
    Off while `upstream` is empty."""

    upstream: str = ""  # http(s)://host[:port] of the registry this node caches
    # The cache's local store (a filesystem store: blobs are served with sendfile,
    # also while they download); replaces [storage] in node-cache mode.
    dir: str = "./data/cache"
    max_bytes: int = 0  # least recently used blobs are evicted above this; 0 = no cap
    tag_ttl: int = 60  # seconds a tag is served before it is revalidated upstream
    username: str = ""  # upstream credentials: Basic, or for the bearer token flow
    password: str = ""
    ca_bundle: str = ""  # PEM CA certificates for an https upstream; "" = system CAs
    # Sibling caches sharing the upstream, this one included (the same list on
    # each): per digest one of them, by rendezvous hashing, fetches from the
    # upstream and the others fetch from it. `advertise` is this cache's entry.
    peers: list[str] = field(default_factory=list)
    advertise: str = ""
    # Start fetching an image's config and layers when its manifest is fetched.
    prefetch: bool = True
    # Answer a tag that names an index with its best child for this node's host
    # (docs/architecture-aware.md): for clients that cannot send `Registry-Host`.
    host_aware: bool = False
    # The host, as `Registry-Host` spells it ("target=zen3&cuda=12.4"); "" = detect it
    # (archspec's target, nvidia-smi's CUDA) at start.
    host: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.upstream)


@dataclass
class SpackConfig:
    """Spack build caches (docs/spack.md)."""

    # A secret key of the gpg keyring below (fingerprint, key id or user id): the
    # registry clearsigns the spec manifests and spec files it synthesizes with
    # it and publishes its public key; "" = synthesized documents are unsigned.
    signing_key: str = ""
    gnupg_home: str = ""  # the keyring's directory; "" = gpg's default (~/.gnupg)


@dataclass
class GcConfig:
    """Online garbage collection (docs/operations.md)."""

    interval: int = 0  # seconds between collections in the server; 0 = only on demand
    grace: int = 3600  # unreferenced blobs younger than this are kept (pushes in flight)
    # Untagged manifests to delete: "PATTERN keep=N days=D", first match applies
    # (core/retention.py); none: every manifest stays.
    retention: list[str] = field(default_factory=list)


@dataclass
class AuthConfig:
    """Who may do what (docs/security.md)."""

    # none: no auth, only on a loopback address; open: no auth, on any address
    # (the operator said so); token: users, robots, rules and tokens.
    mode: str = "none"
    service: str = "registry"  # the tokens' audience (the `service` of the challenge)
    realm: str = ""  # the token endpoint's URL; "" = this server's /token, as asked
    token_ttl: int = 300  # seconds an issued token is valid
    # Users in the config file: NAME:SCRYPT-HASH[:GROUP+GROUP] (`registry users hash`).
    users: list[str] = field(default_factory=list)
    # PATTERN WHO ACTIONS, e.g. "public/* anonymous pull" (auth/rules.py).
    rules: list[str] = field(default_factory=list)
    audit_log: str = "./data/audit.log"  # JSON lines; "" = no audit log
    audit_max_bytes: int = 50 << 20  # rotated at this size
    audit_keep: int = 10  # rotated files kept
    # Failed logins per user and address within a minute before 429s.
    login_attempts: int = 10


@dataclass
class TrustConfig:
    """Signatures and the pull-time policy built on them (docs/security.md)."""

    # "PATTERN OPTION...", first match applies: require=KEY[+KEY] (pulls need a valid
    # signature by one of them), sign=KEY (the registry signs what is pushed there),
    # quarantine (a push is invisible to pullers until it verifies); parsed by
    # registry/trust/policy.py for the server and `registry config check` alike.
    policies: list[str] = field(default_factory=list)
    # Certificates Notation signatures' chains must end at (PEM files, each holding
    # one or more certificates): "PATH" (named after the file) or "NAME=PATH".
    notation_certs: list[str] = field(default_factory=list)


@dataclass
class ScanConfig:
    """The scan room (registry/scan): where imported OSV advisories are kept and how
    Spack packages map to OSV (docs/security.md, Advisories)."""

    # The advisory database (SQLite): "" = advisories.sqlite beside the index file.
    advisories: str = ""
    # TOML files extending the shipped Spack mapping table (registry/scan/spack_map.toml),
    # in order; a later file's entry replaces an earlier one of the same package.
    spack_map: list[str] = field(default_factory=list)
    # Publish each image's SBOM and scan report as its referrers (security.md): off by
    # default, since they are manifests in the users' repositories (listed, counted by
    # quotas and retention) that a site asks for.
    referrers: bool = False


@dataclass
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    spack: SpackConfig = field(default_factory=SpackConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    gc: GcConfig = field(default_factory=GcConfig)
    trust: TrustConfig = field(default_factory=TrustConfig)
    scan: ScanConfig = field(default_factory=ScanConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SECTIONS = {f.name: f.type for f in fields(Config)}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _section_fields(section: str) -> dict[str, dataclasses.Field]:
    cls = {"server": ServerConfig, "storage": StorageConfig, "index": IndexConfig,
           "limits": LimitsConfig, "cache": CacheConfig, "spack": SpackConfig,
           "auth": AuthConfig, "gc": GcConfig,
           "trust": TrustConfig, "scan": ScanConfig}[section]
    return {f.name: f for f in fields(cls)}


def _coerce(value: Any, default: Any, where: str, problems: list[str]) -> Any:
    """Convert a file or environment value to the type of the default."""
    kind = type(default)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        problems.append(f"{where}: expected true or false, got {value!r}")
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        problems.append(f"{where}: expected an integer, got {value!r}")
    elif kind is list:
        if isinstance(value, str):  # the environment: comma-separated
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        problems.append(f"{where}: expected a list of strings, got {value!r}")
    else:
        if isinstance(value, str):
            return value
        problems.append(f"{where}: expected a string, got {value!r}")
    return default


def _apply(config: Config, section: str, values: Mapping[str, Any], origin: str,
           problems: list[str]) -> None:
    known = _section_fields(section)
    target = getattr(config, section)
    for key, value in values.items():
        where = f"{origin} [{section}] {key}"
        if key not in known:
            problems.append(f"{where}: unknown key (known: {', '.join(sorted(known))})")
            continue
        setattr(target, key, _coerce(value, getattr(target, key), where, problems))


def load(path: str | os.PathLike[str] | None = None,
         env: Mapping[str, str] | None = None,
         overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Config:
    """Build the effective config; ConfigError lists every problem found."""
    problems: list[str] = []
    config = Config()
    if path is not None:
        try:
            doc = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError([f"{path}: no such file"]) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
        for section, values in doc.items():
            if section not in SECTIONS:
                problems.append(f"{path}: unknown section [{section}] "
                                f"(known: {', '.join(SECTIONS)})")
            elif not isinstance(values, dict):
                problems.append(f"{path}: {section} must be a table")
            else:
                _apply(config, section, values, str(path), problems)
    env = os.environ if env is None else env
    for name, value in env.items():
        if not name.startswith("REGISTRY_"):
            continue
        rest = name[len("REGISTRY_"):].lower()
        section, _, key = rest.partition("_")
        if section in SECTIONS and key:
            _apply(config, section, {key: value}, f"environment {name}:", problems)
    for section, values in (overrides or {}).items():
        _apply(config, section, values, "command line", problems)
    if not config.index.path:
        config.index.path = default_index_path(config)
    if not config.scan.advisories:
        config.scan.advisories = advisories_path(config)
    problems += validate(config)
    if problems:
        raise ConfigError(problems)
    return config


def local_store_root(config: Config) -> str | None:
    """The directory of the store on this machine: a node cache's directory, the
    filesystem driver's root; None when the store is elsewhere (s3, memory)."""
    if config.cache.enabled:
        return config.cache.dir or None
    if config.storage.driver == "filesystem":
        return config.storage.root or None
    return None


def default_index_path(config: Config) -> str:
    """The SQLite index beside the local store: derived data next to what it derives from."""
    root = local_store_root(config)
    if root is None:
        return "./data/index.sqlite"
    parent = os.path.dirname(os.path.normpath(root)) or "."
    return os.path.join(parent, "index.sqlite")


def advisories_path(config: Config) -> str:
    """The advisory database beside the index file: a local SQLite file, as the index
    is, re-importable from the same OSV export (`[scan] advisories` overrides it)."""
    index = config.index.path or default_index_path(config)
    return os.path.join(os.path.dirname(index) or ".", "advisories.sqlite")


def listen_problem(listen: str) -> str | None:
    """What is wrong with a `[server] listen` value (None: usable)."""
    if "://" in listen:
        return f"[server] listen: expected HOST:PORT without a scheme, got {listen!r}"
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return f"[server] listen: expected HOST:PORT with a port of 1 to 65535, got {listen!r}"
    if host.startswith("[") or host.endswith("]"):
        inner = host[1:-1] if host.startswith("[") and host.endswith("]") else ""
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            return f"[server] listen: {host!r} in {listen!r} is not an IPv6 address in brackets"
        return None
    if ":" in host:
        return (f"[server] listen: IPv6 addresses need brackets, e.g. [{host}]:{port}; "
                f"got {listen!r}")
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"[server] listen: {host!r} in {listen!r} is not an IPv4 address"
        return None
    if not re.fullmatch(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*", host):
        return f"[server] listen: {host!r} in {listen!r} is not a host name or address"
    return None


def validate(config: Config) -> list[str]:
    problems = []
    s = config.server
    if (problem := listen_problem(s.listen)) is not None:
        problems.append(problem)
    if s.log_format not in ("text", "json"):
        problems.append(f"[server] log_format: expected text or json, got {s.log_format!r}")
    for proxy in s.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            problems.append(f"[server] trusted_proxies: {proxy!r} is not an address or "
                            "network (e.g. 10.0.0.5 or 10.0.0.0/8)")
    if not 0 <= s.drain_seconds <= 3600:
        problems.append(f"[server] drain_seconds: expected 0 to 3600, got {s.drain_seconds}")
    if bool(s.tls_cert) != bool(s.tls_key):
        problems.append("[server] tls_cert and tls_key must be set together")
    for key in ("tls_cert", "tls_key"):
        value = getattr(s, key)
        if value and not Path(value).is_file():
            problems.append(f"[server] {key}: no such file {value!r}")
    if not 1 <= s.workers <= 64:
        problems.append(f"[server] workers: expected 1 to 64, got {s.workers}")
    if s.log_level.lower() not in ("debug", "info", "warning", "error"):
        problems.append(f"[server] log_level: expected debug, info, warning or error, "
                        f"got {s.log_level!r}")
    st = config.storage
    if st.driver not in STORAGE_DRIVERS:
        problems.append(f"[storage] driver: expected one of {', '.join(STORAGE_DRIVERS)}, "
                        f"got {st.driver!r}")
    if st.driver == "memory" and s.workers != 1:
        # Each worker process would have a store of its own.
        problems.append("[storage] driver: the memory driver needs [server] workers = 1")
    if st.driver == "filesystem" and not st.root:
        problems.append("[storage] root: required for the filesystem driver")
    if st.driver == "s3":
        if not st.bucket:
            problems.append("[storage] bucket: required for the s3 driver")
        if st.part_size < 5 << 20:
            problems.append("[storage] part_size: S3 needs at least 5 MiB (5242880)")
    if st.upload_purge_after < 0:
        problems.append("[storage] upload_purge_after: expected seconds >= 0")
    if not config.index.path:
        problems.append("[index] path: required")
    if config.index.sync_interval < 0:
        problems.append("[index] sync_interval: expected seconds >= 0, "
                        f"got {config.index.sync_interval}")
    if config.index.pull_flush_seconds < 1:
        problems.append("[index] pull_flush_seconds: expected seconds >= 1, "
                        f"got {config.index.pull_flush_seconds}")
    if not 1024 <= config.limits.manifest_max_bytes <= 64 << 20:
        problems.append("[limits] manifest_max_bytes: expected 1024 to 67108864, "
                        f"got {config.limits.manifest_max_bytes}")
    # The very parsers the services use (registry/specs.py).
    for quota in config.limits.quotas:
        try:
            parse_quota(quota)
        except ValueError as exc:
            problems.append(f"[limits] quotas: {exc}")
    for rule in config.gc.retention:
        try:
            parse_retention(rule)
        except ValueError as exc:
            problems.append(f"[gc] retention: {exc}")
    if config.gc.interval < 0 or config.gc.grace < 60:
        problems.append(f"[gc] interval >= 0 and grace >= 60 seconds expected, got "
                        f"{config.gc.interval} and {config.gc.grace}")
    problems += _validate_cache(config)
    problems += _validate_auth(config)
    sp = config.spack
    if sp.gnupg_home and not Path(sp.gnupg_home).is_dir():
        problems.append(f"[spack] gnupg_home: no such directory {sp.gnupg_home!r}")
    if sp.gnupg_home and not sp.signing_key:
        problems.append("[spack] gnupg_home: set without a signing_key")
    for path in config.scan.spack_map:
        if not os.path.isfile(path):
            problems.append(f"[scan] spack_map: no such file {path!r}")
    for entry in config.trust.notation_certs:
        path = entry.split("=", 1)[1] if "=" in entry else entry
        if not Path(path).is_file():
            problems.append(f"[trust] notation_certs: no such file {path!r}")
    return problems


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _validate_auth(config: Config) -> list[str]:
    a = config.auth
    problems = []
    if a.mode not in ("none", "open", "token"):
        problems.append(f"[auth] mode: expected none, open or token, got {a.mode!r}")
    elif a.mode == "none" and not _loopback(config.server.host):
        problems.append(f"[auth] mode: \"none\" only listens on a loopback address, and "
                        f"[server] listen is {config.server.listen!r}: set mode = \"token\" "
                        "(docs/security.md), or mode = \"open\" to run without auth anyway")
    if not 30 <= a.token_ttl <= 86400:
        problems.append(f"[auth] token_ttl: expected 30 to 86400 seconds, got {a.token_ttl}")
    if a.realm and not a.realm.startswith(("http://", "https://")):
        problems.append(f"[auth] realm: expected an http(s) URL, got {a.realm!r}")
    if a.audit_max_bytes < 4096:
        problems.append("[auth] audit_max_bytes: expected at least 4096")
    if a.audit_keep < 0 or a.login_attempts < 1:
        problems.append("[auth] audit_keep >= 0 and login_attempts >= 1 expected")
    return problems


def _is_base_url(url: str) -> bool:
    scheme, sep, rest = url.partition("://")
    host = rest.rstrip("/")
    return scheme in ("http", "https") and bool(sep) and bool(host) and "/" not in host \
        and "?" not in host and "@" not in host


def _validate_cache(config: Config) -> list[str]:
    c = config.cache
    problems = []
    if c.tag_ttl < 0:
        problems.append(f"[cache] tag_ttl: expected seconds >= 0, got {c.tag_ttl}")
    if c.max_bytes < 0:
        problems.append(f"[cache] max_bytes: expected bytes >= 0 (0: no cap), got {c.max_bytes}")
    if c.ca_bundle and not Path(c.ca_bundle).is_file():
        problems.append(f"[cache] ca_bundle: no such file {c.ca_bundle!r}")
    if c.password and not c.username:
        problems.append("[cache] password: set without a username")
    if c.host:
        from registry.arch.host import HostError, parse_host  # archspec: only when used

        try:
            parse_host(c.host)
        except HostError as exc:
            problems.append(f"[cache] host: {exc}")
        if not c.host_aware:
            problems.append("[cache] host: set without host_aware = true (it would do nothing)")
    if not c.upstream:
        return problems
    for key, url in [("upstream", c.upstream), *(("peers", p) for p in c.peers)]:
        if not _is_base_url(url):
            problems.append(f"[cache] {key}: expected http://HOST[:PORT] or "
                            f"https://HOST[:PORT], got {url!r}")
    if c.peers and c.advertise not in c.peers:
        problems.append(f"[cache] advertise: must be this cache's entry in [cache] peers, "
                        f"got {c.advertise!r}")
    if len(set(c.peers)) != len(c.peers):
        problems.append("[cache] peers: listed twice")
    if not c.dir:
        problems.append("[cache] dir: required when [cache] upstream is set")
    if config.storage.driver != "filesystem":
        # Blobs are served with sendfile while they download: the store is local.
        problems.append("[storage] driver: a node cache keeps its store on local disk at "
                        f"[cache] dir; expected filesystem, got {config.storage.driver!r}")
    return problems
