"""The commands a page tells its reader to run: `podman pull`, `apptainer pull`, and for
a Spack build pushed over `oci://` the `spack mirror add` and `spack install` lines.

They name this registry by the Host header the browser sent, which a client controls:
it is used only when it is a plain host name or address with an optional port (no
scheme, path, user info, spaces or markup), else a placeholder is shown. The pages
escape it too; the grammar keeps a copied command from carrying anything else."""

from __future__ import annotations

import re

from aiohttp import web

PLACEHOLDER = "REGISTRY-HOST"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST_RE = re.compile(
    rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]{{2,45}}\])(?::(?P<port>[0-9]{{1,5}}))?")
MAX_HOST = 255


def host_of(request: web.BaseRequest) -> str:
    """The registry's host[:port] as the browser reached it, or PLACEHOLDER when the
    Host header is missing or not a strict host name."""
    given = request.headers.get("Host", "")
    m = HOST_RE.fullmatch(given) if len(given) <= MAX_HOST else None
    if m is None or (m["port"] is not None and not 0 < int(m["port"]) <= 65535):
        return PLACEHOLDER
    return given.lower()


def pull_commands(host: str, repo: str, digest: str) -> list[tuple[str, str]]:
    """(tool, command) pairs that pull `repo@digest` from `host`."""
    ref = f"{host}/{repo}@{digest}"
    return [("podman", f"podman pull {ref}"),
            ("apptainer", f"apptainer pull docker://{ref}")]


def mirror_name(repo: str) -> str:
    """A spack mirror name for the cache `repo` (spack's names are one word)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", repo)


def spack_commands(host: str, repo: str, name: str, dag_hash: str) -> list[tuple[str, str]]:
    """How spack installs the spec `name/dag_hash` from the cache `repo` over oci://
    (docs/spack.md); `name` and `dag_hash` come from a parsed spec document."""
    return [("spack mirror", f"spack mirror add {mirror_name(repo)} oci://{host}/{repo}"),
            ("spack install", f"spack install --cache-only {name}/{dag_hash}")]
