"""Real spack (v1.1.0 and v0.23.1) using the registry as an `oci://` build cache, and as
a classic `s3://` one through its S3-compatible endpoint (second half of this file).

Slow (95-100 s for v1.1.0, 80-95 s for v0.23.1 on 2 busy cores, and 70-100 s more per
version for the two-target resolve at the end) and opt-in: it runs only
when SPACK_ROOT (and/or SPACK_ROOT_V023) points at a spack checkout, so CI,
which has neither, skips it. How to get spack offline and what each variable
means: tests/clients/REQUIREMENTS.md, section "spack".

Per spack version, against one registry of ours served over TLS (spack's OCI
support is https only; the self-signed certificate is trusted through
SSL_CERT_FILE and config:ssl_certs):

  producer: spack mirror add --unsigned NAME oci://127.0.0.1:PORT/<repo>
            spack install --no-cache trivial-root      (the one solver run)
            spack buildcache push --unsigned NAME trivial-root
            spack buildcache update-index NAME
            spack buildcache list -l                   (reads the index.spack tag)
  consumer: a fresh config, user cache and install tree;
            spack buildcache install -u trivial-root   (no solver)
  consumer: another fresh one; spack install --cache-only trivial-root (solver)

trivial-root depends on trivial-dep; both have `has_code = False` and install a
file without any source, from a package repository the test writes. Each
installed spec is one layer of the root's image, so the root's manifest has at
least two (three under v0.23, which adds gcc-runtime).

Everything spack writes stays under the test's tmp dir: SPACK_USER_CONFIG_PATH,
SPACK_USER_CACHE_PATH, a SPACK_SYSTEM_CONFIG_PATH holding only `mirrors:: {}`
(drops spack-public from the defaults, while `spack mirror add` still writes
into the user scope), HOME and TMPDIR.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from harness import RunningRegistry, launch
from tlsutil import make_cert

pytestmark = pytest.mark.slow

# A concretizing command takes 30-70 s on a busy 2-core machine; leave room.
SPACK_TIMEOUT = 900

# Which environment variable names which spack; a test per variable that is set.
SPACK_VARIABLES = ("SPACK_ROOT", "SPACK_ROOT_V023")

REGISTRY_CONFIG = """\
[server]
tls_cert = "{cert}"
tls_key = "{key}"
log_level = "debug"
"""

PACKAGE = '''\
from spack.package import *


class {cls}(Package):
    """Installs one file and has no source (test package of registry's test_spack)."""

    homepage = "https://example.invalid/{name}"
    has_code = False

    version("1.0")
{deps}
    def install(self, spec, prefix):
        mkdirp(prefix.share)
        with open(join_path(prefix.share, "{name}.txt"), "w") as f:
            f.write("{name}\\n")
'''


def write_package_repo(root: Path) -> Path:
    """A package repository (package API v1: readable by spack 0.23 and 1.x) with
    trivial-root -> trivial-dep."""
    (root / "packages").mkdir(parents=True)
    (root / "repo.yaml").write_text("repo:\n  namespace: registrytest\n")
    for name, cls, deps in [
        ("trivial-dep", "TrivialDep", ""),
        ("trivial-root", "TrivialRoot",
         '    depends_on("trivial-dep", type=("build", "link", "run"))\n\n'),
    ]:
        (root / "packages" / name).mkdir()
        (root / "packages" / name / "package.py").write_text(
            PACKAGE.format(cls=cls, name=name, deps=deps))
    return root


def spack_version(spack_root: Path) -> tuple[int, ...]:
    init = spack_root / "lib" / "spack" / "spack" / "__init__.py"
    match = re.search(r'^__version__ = "(\d+)\.(\d+)', init.read_text(), re.M) if (
        init.is_file()) else None
    if match is None:
        pytest.fail(f"{spack_root} is not a spack checkout (no version in {init})")
    return tuple(int(x) for x in match.groups())


def spack_python() -> str:
    """SPACK_PYTHON, else this Python; it must import clingo, or spack would try to
    bootstrap the concretizer from the network."""
    python = os.environ.get("SPACK_PYTHON") or sys.executable
    probe = subprocess.run([python, "-c", "import clingo"], capture_output=True, text=True)
    if probe.returncode != 0:
        error = (probe.stderr.strip().splitlines() or ["?"])[-1]
        pytest.fail(f"{python} cannot import clingo (`pip install clingo`, or set "
                    f"SPACK_PYTHON to a Python that can): {error}")
    return python


class SpackError(AssertionError):
    """A spack command failed; carries its output and the registry's recent log."""


@dataclass
class Spack:
    """One isolated spack client: its own config, caches and install tree under `root`."""

    spack_root: Path
    version: tuple[int, ...]
    root: Path
    repos: list[Path]
    cert: Path
    registry: RunningRegistry
    python: str
    seed: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        cfg, system = self.root / "config", self.root / "system"
        if self.seed is not None:
            # Indexing spack's ~8,000 builtin packages costs a fresh client ~35 s: start
            # from the producer's package-repo indices, but not from its copy of the
            # build caches' indices (`indices/`), which a fresh client must fetch itself.
            shutil.copytree(self.seed, self.misc_cache, ignore=shutil.ignore_patterns("indices"))
        for d in (cfg, system, self.root / "cache", self.root / "home", self.root / "tmp"):
            d.mkdir(parents=True)
        # `mirrors::` in the system scope drops the defaults' spack-public (no network);
        # `spack mirror add` writes a plain `mirrors:` into the user scope above it.
        (system / "mirrors.yaml").write_text("mirrors:: {}\n")
        (cfg / "repos.yaml").write_text(
            "repos::\n" + "".join(f"- {p}\n" for p in self.repos))
        (cfg / "config.yaml").write_text(
            "config:\n"
            f"  install_tree:\n    root: {self.root / 'store'}\n"
            f"  build_stage:\n  - {self.root / 'stage'}\n"
            f"  source_cache: {self.root / 'source-cache'}\n"
            f"  misc_cache: {self.misc_cache}\n"
            f"  ssl_certs: {self.cert}\n")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SPACK_")}
        self.env.update(
            SPACK_ROOT=str(self.spack_root),
            SPACK_PYTHON=self.python,
            SPACK_USER_CONFIG_PATH=str(cfg),
            SPACK_USER_CACHE_PATH=str(self.root / "cache"),
            SPACK_SYSTEM_CONFIG_PATH=str(system),
            SSL_CERT_FILE=str(self.cert),
            HOME=str(self.root / "home"),
            TMPDIR=str(self.root / "tmp"),
            LC_ALL="C.UTF-8",
        )

    @property
    def misc_cache(self) -> Path:
        return self.root / "misc-cache"

    def __call__(self, *args: str | Path) -> str:
        """Run `spack ARGS`; returns stdout+stderr, raises SpackError on failure."""
        __tracebackhide__ = True
        argv = [str(self.spack_root / "bin" / "spack"), *map(str, args)]
        start = time.monotonic()
        try:
            proc = subprocess.run(argv, env=self.env, cwd=self.root, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  timeout=SPACK_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            raise SpackError(f"timed out after {SPACK_TIMEOUT}s: {shlex.join(argv)}\n"
                             f"{exc.stdout}\n{self._registry_log()}") from None
        took = time.monotonic() - start
        print(f"[{took:5.1f}s] spack {shlex.join(map(str, args))}")
        if proc.returncode != 0:
            raise SpackError(f"exit {proc.returncode} after {took:.1f}s: {shlex.join(argv)}\n"
                             f"--- output ---\n{proc.stdout}\n{self._registry_log()}")
        return proc.stdout

    def _registry_log(self, lines: int = 60) -> str:
        tail = self.registry.log().splitlines()[-lines:]
        return f"--- registry log ({self.registry.log_path}), last {len(tail)} lines ---\n" + (
            "\n".join(tail))

    def prefix(self, name: str) -> Path:
        return Path(self("location", "-i", name).strip().splitlines()[-1])


@dataclass
class Setup:
    """What the producer left behind for the consumer tests."""

    variable: str
    spack_root: Path
    version: tuple[int, ...]
    registry: RunningRegistry
    cert: Path
    repo: str
    mirror_url: str
    repos: list[Path]
    python: str
    tmp: Path
    hashes: dict[str, str]
    push_output: str
    list_output: str
    producer: Spack

    def client(self, name: str) -> Spack:
        return Spack(self.spack_root, self.version, self.tmp / name, self.repos, self.cert,
                     self.registry, self.python, seed=self.tmp / "producer" / "misc-cache")

    def get(self, path: str) -> requests.Response:
        return requests.get(f"{self.registry.url}/v2/{self.repo}/{path}", verify=str(self.cert),
                            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
                            timeout=30)


@pytest.fixture(scope="module", params=SPACK_VARIABLES)
def pushed(request, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """Per spack: a TLS registry, the trivial packages built, pushed and indexed."""
    variable = request.param
    if not os.environ.get(variable):
        pytest.skip(f"{variable} is not set: point it at a spack checkout to run the real-spack "
                    "build-cache tests (see tests/clients/REQUIREMENTS.md, section spack)")
    spack_root = Path(os.environ[variable]).resolve()
    version = spack_version(spack_root)
    python = spack_python()

    tmp = tmp_path_factory.mktemp(f"spack-{'.'.join(map(str, version))}")
    repos = [write_package_repo(tmp / "package-repo")]
    if version >= (1, 0):
        # spack 1.x keeps its packages (and the build systems of API v1 repos) apart.
        packages = os.environ.get("SPACK_PACKAGES")
        builtin = Path(packages or "-") / "repos" / "spack_repo" / "builtin"
        if not (builtin / "repo.yaml").is_file():
            pytest.fail(f"{variable} is spack {'.'.join(map(str, version))}, which needs "
                        "SPACK_PACKAGES pointing at a spack/spack-packages checkout "
                        f"(branch releases/v2025.11); got {packages!r}")
        repos.append(builtin)
    else:
        # spack 0.23 injects gcc-runtime from its own builtin repo.
        repos.append(spack_root / "var" / "spack" / "repos" / "builtin")

    cert, key = make_cert(tmp)
    registry = launch(tmp / "registry", config=REGISTRY_CONFIG.format(cert=cert, key=key),
                      scheme="https", verify=str(cert))
    try:
        repo = "spack/buildcache"
        mirror_url = f"oci://{registry.host}/{repo}"
        spack = Spack(spack_root, version, tmp / "producer", repos, cert, registry, python)

        spack("mirror", "add", "--unsigned", "ours", mirror_url)
        assert mirror_url in spack("mirror", "list")
        spack("install", "--no-cache", "trivial-root")
        hashes = {}
        for name in ("trivial-root", "trivial-dep"):
            hashes[name] = spack("find", "--format", "{hash}", name).strip().splitlines()[-1]
        push_output = spack("buildcache", "push", "--unsigned", "ours", "trivial-root")
        spack("buildcache", "update-index", "ours")
        list_output = spack("buildcache", "list", "--allarch", "-l")
        yield Setup(variable, spack_root, version, registry, cert, repo, mirror_url, repos,
                    python, tmp, hashes, push_output, list_output, spack)
    finally:
        registry.stop()


def test_push_update_index_list(pushed: Setup):
    tags = pushed.get("tags/list")
    assert tags.status_code == 200, tags.text
    tag_set = set(tags.json()["tags"])
    root_tag = f"trivial-root-1.0-{pushed.hashes['trivial-root']}.spack"
    dep_tag = f"trivial-dep-1.0-{pushed.hashes['trivial-dep']}.spack"
    assert {root_tag, dep_tag, "index.spack"} <= tag_set, tag_set

    # One layer per installed spec, the root's own last: its dependency rides along.
    manifest = pushed.get(f"manifests/{root_tag}")
    assert manifest.status_code == 200, manifest.text
    layers = manifest.json()["layers"]
    assert len(layers) >= 2, layers
    dep_manifest = pushed.get(f"manifests/{dep_tag}").json()
    assert dep_manifest["layers"][-1]["digest"] in {layer["digest"] for layer in layers}
    for layer in layers:
        blob = pushed.get(f"blobs/{layer['digest']}")
        assert blob.status_code == 200 and len(blob.content) == layer["size"]

    # `buildcache list` reads the index that update-index wrote under index.spack.
    for name in ("trivial-root", "trivial-dep"):
        assert re.search(rf"\b{pushed.hashes[name][:7]} {name}@1\.0\b", pushed.list_output), (
            pushed.list_output)


def _check_installed(spack: Spack) -> None:
    for name in ("trivial-root", "trivial-dep"):
        installed = spack.prefix(name) / "share" / f"{name}.txt"
        assert installed.read_text() == f"{name}\n"
        assert str(spack.root / "store") in str(installed)


def _install_from_cache(spack: Spack) -> None:
    """`spack install --cache-only trivial-root` takes both from the binary cache."""
    out = spack("install", "--cache-only", "trivial-root")
    assert "from binary cache" in out, out
    _check_installed(spack)


def test_buildcache_install(pushed: Setup):
    """A fresh client installs the root and its dependency from the cache, no solver."""
    spack = pushed.client("consumer-buildcache-install")
    spack("mirror", "add", "--unsigned", "ours", pushed.mirror_url)
    spack("buildcache", "install", "-u", "trivial-root")
    _check_installed(spack)
    hashes = {n: spack("find", "--format", "{hash}", n).strip().splitlines()[-1]
              for n in pushed.hashes}
    assert hashes == pushed.hashes


def test_install_cache_only(pushed: Setup):
    """A fresh client concretizes against the cache's index and installs from it only."""
    spack = pushed.client("consumer-install-cache-only")
    spack("mirror", "add", "--unsigned", "ours", pushed.mirror_url)
    out = spack("install", "--cache-only", "trivial-root")
    assert "from binary cache" in out, out
    _check_installed(spack)
    hashes = {n: spack("find", "--format", "{hash}", n).strip().splitlines()[-1]
              for n in pushed.hashes}
    assert hashes == pushed.hashes


# -- the classic build cache through the S3-compatible endpoint ---------------------------
#
# Per spack version, against a second TLS registry of ours (so that its blob store holds
# only what came through S3), reusing the producer's installation of trivial-root:
#
#   producer: spack mirror add --unsigned --s3-endpoint-url https://HOST/s3 s3cache s3://BUCKET
#             spack buildcache push --unsigned s3cache trivial-root   (boto3 upload_file)
#             spack buildcache update-index s3cache                  (ListObjectsV2, GETs, PUT;
#                                                     without, then with the aws CLI on PATH)
#   consumer: a fresh config, user cache and install tree with only that mirror;
#             spack buildcache list --allarch -l; spack buildcache install -u trivial-root
#
# spack 1.x writes layout v3: tarballs and spec files at blobs/sha256/<2 hex>/<hex>, which
# the registry keeps in its (OCI) blob store; spack 0.23 writes layout v2 (build_cache/).

S3_BUCKET = "spackcache"


def use_s3(spack: Spack, registry: RunningRegistry) -> Spack:
    """`spack` talking to `registry` through boto3: trust the test certificate
    (AWS_CA_BUNDLE; SSL_CERT_FILE is only for spack's urllib) and hand boto3 dummy
    credentials from the environment (it signs with them; the endpoint does not check
    signatures yet), with no lookup in ~/.aws or the EC2 metadata service.

    AWS_ENDPOINT_URL_S3 is for the `aws` CLI: when one is on PATH, spack 1.x's
    `buildcache update-index` lists and fetches the spec manifests with `aws s3 sync` and
    `aws s3 ls`, without passing the mirror's endpoint URL (and fails rather than fall
    back if that fails). boto3 gets the endpoint from the mirror's config anyway."""
    spack.registry = registry
    env = {k: v for k, v in spack.env.items() if not k.startswith("AWS_")}
    aws = spack.root / "aws"
    env.update(
        AWS_CA_BUNDLE=str(spack.cert),
        AWS_ENDPOINT_URL_S3=f"{registry.url}/s3",
        AWS_ACCESS_KEY_ID="registry-test",
        AWS_SECRET_ACCESS_KEY="registry-test-secret",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(aws / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(aws / "credentials"),
    )
    spack.env = env
    return spack


def path_without(program: str, path: str) -> str:
    """PATH minus the directories holding `program` (spack needs only system tools)."""
    return os.pathsep.join(d for d in path.split(os.pathsep)
                           if d and not shutil.which(program, path=d))


@dataclass
class S3Setup:
    pushed: Setup
    registry: RunningRegistry
    endpoint: str
    mirror_url: str
    push_output: str

    def add_mirror(self, spack: Spack) -> None:
        spack("mirror", "add", "--unsigned", "--s3-endpoint-url", self.endpoint, "s3cache",
              self.mirror_url)

    def get(self, key: str, **params: str) -> requests.Response:
        return requests.get(f"{self.endpoint}/{S3_BUCKET}/{key}", params=params,
                            verify=str(self.pushed.cert), timeout=30)

    def keys(self, prefix: str) -> list[str]:
        """ListObjectsV2 (one page is plenty here) straight from the registry."""
        resp = requests.get(f"{self.endpoint}/{S3_BUCKET}",
                            params={"list-type": "2", "prefix": prefix},
                            verify=str(self.pushed.cert), timeout=30)
        assert resp.status_code == 200, resp.text
        assert "<IsTruncated>false</IsTruncated>" in resp.text, resp.text
        return re.findall(r"<Key>([^<]*)</Key>", resp.text)


@pytest.fixture(scope="module")
def s3_pushed(pushed: Setup) -> Iterator[S3Setup]:
    """The producer's trivial-root pushed and indexed through the S3 endpoint of a
    second registry (same certificate)."""
    registry = launch(pushed.tmp / "registry-s3",
                      config=REGISTRY_CONFIG.format(cert=pushed.cert,
                                                    key=pushed.cert.with_name("key.pem")),
                      scheme="https", verify=str(pushed.cert))
    try:
        setup = S3Setup(pushed, registry, f"{registry.url}/s3", f"s3://{S3_BUCKET}", "")
        # The producer's installation, seen through a copy that talks to the new registry.
        spack = use_s3(copy.copy(pushed.producer), registry)
        setup.add_mirror(spack)
        assert setup.mirror_url in spack("mirror", "list")
        setup.push_output = spack("buildcache", "push", "--unsigned", "s3cache", "trivial-root")
        # spack 1.x indexes through `aws s3 sync` if an `aws` is on PATH, else through
        # boto3 (ListObjectsV2 and a HeadObject per manifest): both ways when it can.
        without_aws = copy.copy(spack)
        without_aws.env = dict(spack.env, PATH=path_without("aws", spack.env.get("PATH", "")))
        without_aws("buildcache", "update-index", "s3cache")
        if shutil.which("aws", path=spack.env.get("PATH", "")):
            spack("buildcache", "update-index", "s3cache")
        # The copy shares the producer's configuration: without the mirror again, or the
        # module's later tests (whose producer does not trust the certificate for boto3)
        # fail when spack 0.23 reads every mirror's index to concretize.
        spack("mirror", "remove", "s3cache")
        yield setup
    finally:
        registry.stop()


def test_s3_push_stores_tarballs_once(s3_pushed: S3Setup):
    pushed, storage = s3_pushed.pushed, s3_pushed.registry.data_dir / "storage"
    if pushed.version < (1, 0):
        # Layout v2: build_cache/<arch>/<compiler>/<name>-<version>/...-<hash>.spack and a
        # spec file per spec; nothing content-addressed, all in the objects area.
        keys = s3_pushed.keys("build_cache/")
        for name, h in pushed.hashes.items():
            assert any(k.endswith(f"{name}-1.0-{h}.spack") for k in keys), keys
            assert any(k.endswith(f"{name}-1.0-{h}.spec.json") for k in keys), keys
        assert "build_cache/index.json" in keys, keys
        return

    assert "v3/layout.json" in s3_pushed.keys("v3/")
    assert "v3/manifests/index/index.manifest.json" in s3_pushed.keys("v3/manifests/index/")
    objectdata = {hashlib.sha256(f.read_bytes()).hexdigest()
                  for f in (storage / "objectdata").rglob("*") if f.is_file()}
    for name, h in pushed.hashes.items():
        manifest = s3_pushed.get(f"v3/manifests/spec/{name}/{name}-1.0-{h}.spec.manifest.json")
        assert manifest.status_code == 200, manifest.text
        records = manifest.json()["data"]
        media_types = {r["mediaType"].split("+")[0] for r in records}
        assert "application/vnd.spack.install.v2.tar" in media_types, records
        for record in records:
            assert record["checksumAlgorithm"] == "sha256", record
            digest = record["checksum"]
            key = f"blobs/sha256/{digest[:2]}/{digest}"
            # Through S3 the key reads back the blob ...
            got = s3_pushed.get(key)
            assert got.status_code == 200 and len(got.content) == record["contentLength"]
            assert hashlib.sha256(got.content).hexdigest() == digest
            # ... whose bytes are the registry's blob store's, once.
            blob = storage / "blobs" / "sha256" / digest[:2] / digest
            assert blob.is_file(), f"{key} is not in the blob store {storage / 'blobs'}"
            assert blob.stat().st_size == record["contentLength"]
            assert digest not in objectdata, f"{key}'s bytes are also in objectdata/"


def test_s3_buildcache_list_and_install(s3_pushed: S3Setup):
    """A fresh client with only the s3:// mirror lists the specs and installs them."""
    pushed = s3_pushed.pushed
    spack = use_s3(pushed.client("consumer-s3"), s3_pushed.registry)
    s3_pushed.add_mirror(spack)
    listed = spack("buildcache", "list", "--allarch", "-l")
    for name in ("trivial-root", "trivial-dep"):
        assert re.search(rf"\b{pushed.hashes[name][:7]} {name}@1\.0\b", listed), listed
    spack("buildcache", "install", "-u", "trivial-root")
    _check_installed(spack)
    hashes = {n: spack("find", "--format", "{hash}", n).strip().splitlines()[-1]
              for n in pushed.hashes}
    assert hashes == pushed.hashes


# -- one push, every client: the server-kept index and the views across protocols ---------
#
#   oci push, no update-index  -> a fresh client lists and installs: the server kept the index
#   oci push                   -> a fresh client installs from https://HOST/spack/<repo>
#                                 (layout v3 for spack 1.x, v2 for spack 0.2x)
#   s3 push (classic)          -> a fresh client installs over oci:// from the same cache


def test_server_kept_index_without_update_index(pushed: Setup):
    """Push to a new repository without running update-index: the index is there."""
    repo = "spack/noindex"
    url = f"oci://{pushed.registry.host}/{repo}"
    producer = copy.copy(pushed.producer)
    producer("mirror", "add", "--unsigned", "noindex", url)
    producer("buildcache", "push", "--unsigned", "noindex", "trivial-root")
    spack = pushed.client("consumer-server-index")
    spack("mirror", "add", "--unsigned", "ours", url)
    listed = spack("buildcache", "list", "--allarch", "-l")
    for name in ("trivial-root", "trivial-dep"):
        assert re.search(rf"\b{pushed.hashes[name][:7]} {name}@1\.0\b", listed), listed
    spack("buildcache", "install", "-u", "trivial-root")
    _check_installed(spack)


def test_classic_view_of_oci_push(pushed: Setup):
    """The OCI cache is also a plain https mirror (layout v3 or v2 by spack version)."""
    spack = pushed.client("consumer-classic-view")
    url = f"{pushed.registry.url}/spack/{pushed.repo}"
    spack("mirror", "add", "--unsigned", "classic", url)
    listed = spack("buildcache", "list", "--allarch", "-l")
    for name in ("trivial-root", "trivial-dep"):
        assert re.search(rf"\b{pushed.hashes[name][:7]} {name}@1\.0\b", listed), listed
    spack("buildcache", "install", "-u", "trivial-root")
    _check_installed(spack)
    hashes = {n: spack("find", "--format", "{hash}", n).strip().splitlines()[-1]
              for n in pushed.hashes}
    assert hashes == pushed.hashes


def test_oci_view_of_s3_push(s3_pushed: S3Setup):
    """A classic cache pushed through S3 installs over oci:// from the same cache."""
    pushed = s3_pushed.pushed
    spack = pushed.client("consumer-oci-of-s3")
    spack.registry = s3_pushed.registry
    spack("mirror", "add", "--unsigned", "ours",
          f"oci://{s3_pushed.registry.host}/{S3_BUCKET}")
    listed = spack("buildcache", "list", "--allarch", "-l")
    for name in ("trivial-root", "trivial-dep"):
        assert re.search(rf"\b{pushed.hashes[name][:7]} {name}@1\.0\b", listed), listed
    spack("buildcache", "install", "-u", "trivial-root")
    _check_installed(spack)


def test_import_of_a_directory_push(pushed: Setup):
    """`spack buildcache push file:///DIR` then `registry spack import DIR`: the
    cache installs over oci:// and from its classic view, no update-index run."""
    producer = copy.copy(pushed.producer)
    directory = pushed.tmp / "offline-cache"
    producer("buildcache", "push", "--unsigned", f"file://{directory}", "trivial-root")
    repo = "spack/imported"
    done = subprocess.run(
        [sys.executable, "-m", "registry", "spack", "import", str(directory), "--cache", repo,
         "--data", str(pushed.registry.data_dir)],
        capture_output=True, text=True, env=pushed.registry.env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 refused" in done.stdout, done.stdout
    for name, url in [("oci", f"oci://{pushed.registry.host}/{repo}"),
                      ("classic", f"{pushed.registry.url}/spack/{repo}")]:
        spack = pushed.client(f"consumer-import-{name}")
        spack("mirror", "add", "--unsigned", "ours", url)
        listed = spack("buildcache", "list", "--allarch", "-l")
        for pkg in ("trivial-root", "trivial-dep"):
            assert re.search(rf"\b{pushed.hashes[pkg][:7]} {pkg}@1\.0\b", listed), listed
        spack("buildcache", "install", "-u", "trivial-root")
        _check_installed(spack)


def _gpg(home: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["gpg", "--batch", "--no-tty", "--homedir", home, *args],
                          capture_output=True, text=True, timeout=60)


def test_signed_install_from_the_classic_view(pushed: Setup):
    """`[spack] signing_key`: a second registry process on a copy of the store (one
    instance per store), with a site key, signs what it synthesizes for the unsigned OCI
    push; a client that trusts only the key the cache publishes installs with signature
    checks on (no --unsigned)."""
    homes = [tempfile.mkdtemp(prefix="g", dir="/tmp") for _ in range(2)]  # short: agent socket
    site, client_home = homes
    try:
        made = _gpg(site, "--passphrase", "", "--quick-gen-key",
                    "Site Signer <spack@site.example>", "ed25519", "sign", "never")
        assert made.returncode == 0, made.stderr
        cert = pushed.cert
        config = (REGISTRY_CONFIG.format(cert=cert, key=cert.parent / "key.pem")
                  + f'[spack]\nsigning_key = "spack@site.example"\ngnupg_home = "{site}"\n')
        copy = pushed.tmp / "signing-registry" / "data"
        shutil.copytree(pushed.registry.data_dir, copy)
        signing = launch(pushed.tmp / "signing-registry", config=config, scheme="https",
                         verify=str(cert))
        try:
            spack = Spack(pushed.spack_root, pushed.version, pushed.tmp / "consumer-signed",
                          pushed.repos, cert, signing, pushed.python,
                          seed=pushed.tmp / "producer" / "misc-cache")
            spack.env["SPACK_GNUPGHOME"] = client_home
            spack("mirror", "add", "--signed", "ours", f"{signing.url}/spack/{pushed.repo}")
            spack("buildcache", "keys", "--install", "--trust")
            assert "spack@site.example" in spack("gpg", "list")
            spack("buildcache", "install", "trivial-root")
            _check_installed(spack)
        finally:
            signing.stop()
    finally:
        for home in homes:
            subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"],
                           capture_output=True)
            shutil.rmtree(home, ignore_errors=True)


# -- auth on ----------------------------------------------------------------------------
#
# A third TLS registry with `[auth] mode = "token"` (spack's bearer flow needs an https
# realm): a CI robot pushes the producer's trivial-root with --oci-username-variable /
# --oci-password-variable, a node's read-only robot installs it, and may not push.


def test_push_and_install_with_robot_tokens(pushed: Setup):
    sys.path.insert(0, str(Path(__file__).parent.parent / "auth"))
    from authutil import add_robot

    cert, key = pushed.cert, pushed.cert.with_name("key.pem")
    tmp = pushed.tmp / "authed"
    registry = launch(tmp, config=REGISTRY_CONFIG.format(cert=cert, key=key) +
                      '[auth]\nmode = "token"\n', scheme="https", verify=str(cert))
    producer = pushed.producer
    mirror = f"oci://{registry.host}/spack/secure"
    creds = ["--oci-username-variable", "REG_USER", "--oci-password-variable", "REG_PASS"]
    try:
        producer.env.update(REG_USER="ci", REG_PASS=add_robot(
            registry, "ci", "repository:spack/*:pull,push"))
        producer("mirror", "add", "--unsigned", *creds, "secure", mirror)
        producer("buildcache", "push", "--unsigned", "secure", "trivial-root")
        producer("buildcache", "update-index", "secure")

        node = pushed.client("consumer-with-credentials")
        node.env.update(REG_USER="node", REG_PASS=add_robot(
            registry, "node", "repository:spack/*:pull"))
        node("mirror", "add", "--unsigned", *creds, "secure", mirror)
        _install_from_cache(node)
        with pytest.raises(SpackError):
            node("buildcache", "push", "--unsigned", "--force", "secure", "trivial-root")
        anonymous = pushed.client("consumer-without-credentials")
        anonymous("mirror", "add", "--unsigned", "secure", mirror)
        with pytest.raises(SpackError):
            anonymous("buildcache", "install", "-u", "trivial-root")
    finally:
        producer("mirror", "remove", "secure")
        registry.stop()


def test_s3_push_and_install_with_access_keys(pushed: Setup):
    """The S3 path with auth on: spack signs with access keys given through
    --s3-access-key-id-variable/--s3-access-key-secret-variable; a CI user's key
    pushes and indexes, a node's key installs and may not push."""
    sys.path.insert(0, str(Path(__file__).parent.parent / "auth"))
    import json as json_module

    from authutil import add_user, cli

    cert, key = pushed.cert, pushed.cert.with_name("key.pem")
    registry = launch(pushed.tmp / "authed-s3", config=REGISTRY_CONFIG.format(
        cert=cert, key=key) + '[auth]\nmode = "token"\nrules = ['
        '"securecache user:ci pull,push,delete", "securecache user:node pull"]\n',
        scheme="https", verify=str(cert))
    creds = ["--s3-access-key-id-variable", "S3_KEY", "--s3-access-key-secret-variable",
             "S3_SECRET"]
    endpoint = f"{registry.url}/s3"

    def keys_of(user: str) -> dict[str, str]:
        add_user(registry, user, f"{user}-password")
        done = cli(registry, "users", "keys", "create", user)
        assert done.returncode == 0, done.stderr
        doc = json_module.loads(done.stdout)
        return {"S3_KEY": doc["access_key_id"], "S3_SECRET": doc["secret_access_key"]}

    producer = use_s3(copy.copy(pushed.producer), registry)
    try:
        producer.env = dict(producer.env, **keys_of("ci"),
                            PATH=path_without("aws", producer.env.get("PATH", "")))
        producer("mirror", "add", "--unsigned", "--s3-endpoint-url", endpoint, *creds,
                 "s3secure", "s3://securecache")
        producer("buildcache", "push", "--unsigned", "s3secure", "trivial-root")
        producer("buildcache", "update-index", "s3secure")

        node = use_s3(pushed.client("s3-node-with-keys"), registry)
        node.env = dict(node.env, **keys_of("node"),
                        PATH=path_without("aws", node.env.get("PATH", "")))
        node("mirror", "add", "--unsigned", "--s3-endpoint-url", endpoint, *creds,
             "s3secure", "s3://securecache")
        node("buildcache", "install", "-u", "trivial-root")
        _check_installed(node)
        with pytest.raises(SpackError):
            node("buildcache", "push", "--unsigned", "--force", "s3secure", "trivial-root")
    finally:
        producer("mirror", "remove", "s3secure")
        registry.stop()


# -- builds for two targets, resolved for hosts ------------------------------------------
#
# The producer's trivial-root was built for this machine's target; a second one is built
# for x86_64_v2 (one solver run). Both are pushed to one cache, and
# /api/v1/spack/<cache>/resolve picks, per host, the most specific build that runs there.


def test_builds_for_two_targets_resolve_per_host(pushed: Setup):
    producer = copy.copy(pushed.producer)
    native = producer("find", "--format", "{hash} {architecture}",
                      "trivial-root").strip().splitlines()[-1].split()
    native_hash, native_target = native[0], native[1].rsplit("-", 1)[-1]
    if native_target == "x86_64_v2":
        pytest.skip("this machine's target is x86_64_v2 itself")
    producer("install", "--no-cache", "trivial-root", "target=x86_64_v2")
    v2_hash = producer("find", "--format", "{hash}", "trivial-root",
                       "target=x86_64_v2").strip().splitlines()[-1]
    assert v2_hash != native_hash
    url = f"oci://{pushed.registry.host}/spack/targets"
    producer("mirror", "add", "--unsigned", "targets", url)
    try:
        for h in (native_hash, v2_hash):
            producer("buildcache", "push", "--unsigned", "targets", f"/{h}")
    finally:
        producer("mirror", "remove", "targets")
        # The producer is shared by the module's tests, which name `trivial-root`: a
        # second install of it would make that name ambiguous for them.
        producer("uninstall", "-y", f"/{v2_hash}")

    def resolve(target: str) -> requests.Response:
        return requests.get(f"{pushed.registry.url}/api/v1/spack/spack/targets/resolve",
                            params={"spec": "trivial-root@1.0", "target": target},
                            verify=str(pushed.cert), timeout=30)

    for host, want in [(native_target, native_hash), ("x86_64_v2", v2_hash)]:
        got = resolve(host)
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["hash"] == want, (host, body)
        assert next(c["hash"] for c in body["candidates"] if c["fits"]) == want
    older = resolve("x86_64")  # older than both builds: nothing fits, each says why
    assert older.status_code == 404, older.text
    candidates = older.json()["errors"]["candidates"]
    assert {c["hash"] for c in candidates} == {native_hash, v2_hash}
    assert not any(c["fits"] for c in candidates)


# -- [trust] policies over oci:// ---------------------------------------------------------
# A TLS registry with auth on and `spack/* require=site`: a CI robot pushes and indexes
# (a pusher reads its repository as is), a node's pull-only robot is refused the
# unsigned binaries (the server-kept index.spack is served: a list, not a binary), a
# signer robot has the registry sign every spec's manifest (POST /api/v1/sign), and the
# node installs.


def test_policy_refuses_then_allows_install(pushed: Setup):
    sys.path.insert(0, str(Path(__file__).parent.parent / "auth"))
    from authutil import add_robot, cli

    cert, key = pushed.cert, pushed.cert.with_name("key.pem")
    registry = launch(pushed.tmp / "policy", config=REGISTRY_CONFIG.format(cert=cert, key=key) +
                      '[auth]\nmode = "token"\n[trust]\npolicies = ["spack/* require=site"]\n',
                      scheme="https", verify=str(cert))
    producer = pushed.producer
    repo = "spack/policed"
    mirror = f"oci://{registry.host}/{repo}"
    creds = ["--oci-username-variable", "REG_USER", "--oci-password-variable", "REG_PASS"]
    try:
        generated = cli(registry, "keys", "generate", "site")
        assert generated.returncode == 0, generated.stderr
        producer.env.update(REG_USER="ci", REG_PASS=add_robot(
            registry, "ci", "repository:spack/*:pull,push"))
        producer("mirror", "add", "--unsigned", *creds, "policed", mirror)
        producer("buildcache", "push", "--unsigned", "policed", "trivial-root")
        producer("buildcache", "update-index", "policed")

        node = pushed.client("consumer-under-policy")
        node.env.update(REG_USER="node", REG_PASS=add_robot(
            registry, "node", "repository:spack/*:pull"))
        node("mirror", "add", "--unsigned", *creds, "policed", mirror)
        with pytest.raises(SpackError) as refused:
            node("buildcache", "install", "-u", "trivial-root")
        # spack says the download failed; the registry says why (403, unsigned).
        assert "failed" in str(refused.value), refused.value
        assert re.search(r'"GET /v2/spack/policed/manifests/\S+\.spack HTTP/1.1" 403 ',
                         registry.log()), registry.log()[-3000:]

        signer = ("signer", add_robot(registry, "signer", "repository:spack/*:pull,sign"))
        http = requests.Session()
        # Per call: a session's `verify` loses to REQUESTS_CA_BUNDLE in the environment.
        http.auth, tls = signer, {"verify": str(cert), "timeout": 60}
        tags = http.get(f"{registry.url}/v2/{repo}/tags/list", **tls).json()["tags"]
        accept = {"Accept": "application/vnd.oci.image.manifest.v1+json,"
                            "application/vnd.oci.image.index.v1+json"}
        for tag in tags:
            if tag == "index.spack":  # the server renders it: served as is, nothing to sign
                continue
            head = http.head(f"{registry.url}/v2/{repo}/manifests/{tag}", headers=accept,
                             **tls)
            assert head.status_code == 200, (tag, head.status_code)
            signed = http.post(f"{registry.url}/api/v1/sign/{repo}@"
                               f"{head.headers['Docker-Content-Digest']}?key=site", **tls)
            assert signed.status_code == 201, signed.text
        _install_from_cache(node)
    finally:
        producer("mirror", "remove", "policed")
        registry.stop()


# -- images composed from the cache (POST /api/v1/spack/<cache>/images) ------------------


def test_composed_image_has_spacks_own_layers(pushed: Setup):
    """The image composed of trivial-root from spack's own push holds the layers (and
    diff_ids) of the image spack pushed for it, dependencies first, the root last."""
    r = requests.post(f"{pushed.registry.url}/api/v1/spack/{pushed.repo}/images",
                      json={"specs": ["trivial-root"]}, verify=str(pushed.cert), timeout=60)
    assert r.status_code == 201, r.text
    ours = requests.get(f"{pushed.registry.url}/v2/{r.headers['Location'][4:]}",
                        verify=str(pushed.cert), timeout=30,
                        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert ours.status_code == 200, ours.text
    root_tag = f"trivial-root-1.0-{pushed.hashes['trivial-root']}.spack"
    spacks = pushed.get(f"manifests/{root_tag}").json()
    layers = [x["digest"] for x in ours.json()["layers"]]
    theirs = [x["digest"] for x in spacks["layers"]]
    # The same blobs, the root's last (the order of independent dependencies may differ
    # from spack's topological order; under 1.1 there is only trivial-dep).
    assert sorted(layers) == sorted(theirs) and layers[-1] == theirs[-1], (layers, theirs)

    def config(repo: str, manifest: dict) -> dict:
        c = requests.get(f"{pushed.registry.url}/v2/{repo}/blobs/"
                         f"{manifest['config']['digest']}", verify=str(pushed.cert), timeout=30)
        assert c.status_code == 200, c.text
        return c.json()

    mine = config(f"{pushed.repo}/images", ours.json())
    assert sorted(mine["rootfs"]["diff_ids"]) == sorted(
        config(pushed.repo, spacks)["rootfs"]["diff_ids"])
    path = mine["config"]["Env"][0]
    assert str(pushed.producer.prefix("trivial-root") / "bin") in path, path


# -- [trust] block= over oci:// -------------------------------------------------------------
# A TLS registry whose scanner maps trivial-dep to an upstream repository (a site's own
# `[scan] spack_map` file, as docs/security.md says to extend the table) and holds an
# OSV GIT record, rated critical, listing that repository's tag v1.0. The producer
# pushes trivial-root (no update-index: the server keeps the index, and its pulls
# would be judged too); once the scan finds trivial-dep 1.0 in both images, a
# consumer's `install --cache-only` fails on the registry's 403 DENIED naming the
# advisory; after `allow=` and a SIGHUP, it installs.

BLOCKED_ADVISORY = "REGTEST-2026-0001"


def test_scan_policy_blocks_then_allows_install(pushed: Setup):
    import json as json_module
    import signal

    from harness import wait_for

    from tests.scan.osvdocs import CVSS_CRITICAL, git_advisory, write_dir

    tmp = pushed.tmp / "blocking"
    tmp.mkdir()
    upstream = "https://example.invalid/registrytest/trivial-dep"
    table = tmp / "spack_map.toml"
    table.write_text(f'[packages.trivial-dep]\nrepos = ["{upstream}"]\ntags = ["v{{version}}"]\n')
    osv = write_dir(str(tmp / "osv"), [git_advisory(
        BLOCKED_ADVISORY, upstream, ["v0.9", "v1.0"],
        severity=[{"type": "CVSS_V3", "score": CVSS_CRITICAL}])])
    imported = subprocess.run(
        [sys.executable, "-m", "registry", "advisories", "import", osv, "--data",
         str(tmp / "data")], capture_output=True, text=True, env=pushed.registry.env,
        timeout=300)
    assert imported.returncode == 0, imported.stdout + imported.stderr

    cert, key = pushed.cert, pushed.cert.with_name("key.pem")

    def config(policy: str) -> str:
        return (REGISTRY_CONFIG.format(cert=cert, key=key) +
                f'[scan]\nspack_map = ["{table}"]\n[trust]\npolicies = ["{policy}"]\n')

    registry = launch(tmp, config=config("spack/* block=high"), scheme="https",
                      verify=str(cert))
    producer = pushed.producer
    repo = "spack/blocked"
    mirror = f"oci://{registry.host}/{repo}"
    try:
        producer("mirror", "add", "--unsigned", "blocked", mirror)
        producer("buildcache", "push", "--unsigned", "blocked", "trivial-root")

        def manifest(name: str) -> requests.Response:
            tag = f"{name}-1.0-{pushed.hashes[name]}.spack"
            return requests.get(f"{registry.url}/v2/{repo}/manifests/{tag}", timeout=30,
                                verify=str(cert),
                                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})

        # Served until scanned (no scan=required); refused once the scan found trivial-dep.
        for name in ("trivial-dep", "trivial-root"):
            got = wait_for(lambda name=name: manifest(name), lambda r: r.status_code == 403,
                           deadline=120)
            assert got.status_code == 403, (name, got.status_code, got.text)
            error = json_module.loads(got.text)["errors"][0]
            assert error["code"] == "DENIED" and BLOCKED_ADVISORY in error["message"], error

        node = pushed.client("consumer-blocked")
        node.registry = registry  # its errors carry this registry's log
        node("mirror", "add", "--unsigned", "blocked", mirror)
        seen = len(registry.log())
        with pytest.raises(SpackError) as refused:
            node("install", "--cache-only", "trivial-root")
        # spack passes over a manifest it cannot fetch (its OCI fetch drops the error)
        # and says no binary was found; the registry's log has the 403s it got.
        assert "trivial-root" in str(refused.value), refused.value
        assert re.search(rf'"GET /v2/{repo}/manifests/\S+\.spack HTTP/1.1" 403 ',
                         registry.log()[seen:]), registry.log()[seen:][-3000:]

        (tmp / "registry.toml").write_text(
            config(f"spack/* block=high allow={BLOCKED_ADVISORY}"))
        assert registry.process is not None
        registry.process.send_signal(signal.SIGHUP)
        got = wait_for(lambda: manifest("trivial-root"), lambda r: r.status_code == 200)
        assert got.status_code == 200, got.text
        _install_from_cache(node)
    finally:
        producer("mirror", "remove", "blocked")
        registry.stop()
