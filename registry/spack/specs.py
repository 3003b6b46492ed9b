"""Spack spec documents, read as hostile JSON, and the record the server keeps
of each spec in a cache.

A spec document is what spack writes with `Spec.to_dict()`: `{"spec": {"_meta":
{"version": N}, "nodes": [root, dep, ...]}}`, format 4 (spack 0.2x) or 5
(spack 1.x). Each node carries its DAG hash (32 characters of base32) and the
hashes of its dependencies. Only what the index and the views need is read;
the document itself is kept as pushed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from registry.core.grammar import Digest

# A spack DAG hash: 32 characters of RFC 4648 base32, lower case.
HASH_RE = re.compile(r"[a-z2-7]{32}")
# Spec documents of huge DAGs reach a few MB; anything far larger is not one.
SPEC_MAX_BYTES = 16 << 20
FORMATS = (4, 5)
# Node names and versions appear in paths and tags: keep them to spack's grammar.
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,127}")
VERSION_RE = re.compile(r"[A-Za-z0-9_.=+-][A-Za-z0-9_.=+:~-]{0,127}")


class InvalidSpec(ValueError):
    """A document that is not a usable spack spec (the message says why)."""


def _str(node: dict, key: str, pattern: re.Pattern[str] | None = None) -> str:
    value = node.get(key)
    if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
        raise InvalidSpec(f"node {key!r} is missing or malformed")
    return value


@dataclass(frozen=True, slots=True)
class Node:
    """What the index needs of one node of a spec's DAG."""

    hash: str
    name: str
    version: str
    platform: str
    os: str
    target: str
    compiler: str  # "name@version", "" when the node has none (externals, v5 runtimes)
    # A format-5 node without a compiler annotation names its compiler by a build edge
    # providing c, cxx or fortran (SpecDoc.parse fills `compiler` from that node).
    variants: dict[str, Any]
    deps: tuple[str, ...]  # DAG hashes of its direct dependencies
    external: bool
    raw: dict  # the node as pushed


def _target(arch: dict) -> str:
    target = arch.get("target")
    if isinstance(target, dict):
        target = target.get("name")
    return target if isinstance(target, str) else ""


def _compiler(node: dict, deps: list[dict]) -> str:
    compiler = node.get("compiler")  # format 4
    if isinstance(compiler, dict):
        name, version = compiler.get("name"), compiler.get("version")
        if isinstance(name, str) and isinstance(version, str):
            return f"{name}@{version}"
    annotations = node.get("annotations")  # format 5: compilers are dependencies
    if isinstance(annotations, dict) and isinstance(annotations.get("compiler"), str):
        return annotations["compiler"][:128]
    return ""


def parse_node(node: Any) -> Node:
    if not isinstance(node, dict):
        raise InvalidSpec("a node is not an object")
    deps_raw = node.get("dependencies", [])
    if not isinstance(deps_raw, list):
        raise InvalidSpec("node dependencies are not a list")
    deps = []
    for dep in deps_raw:
        if not isinstance(dep, dict):
            raise InvalidSpec("a dependency is not an object")
        deps.append(_str(dep, "hash", HASH_RE))
    raw_arch, raw_params = node.get("arch"), node.get("parameters")
    arch: dict[str, Any] = raw_arch if isinstance(raw_arch, dict) else {}
    params: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
    variants = {k: v for k, v in params.items()
                if isinstance(k, str) and k not in _FLAGS}
    return Node(
        hash=_str(node, "hash", HASH_RE),
        name=_str(node, "name", NAME_RE),
        version=str(node.get("version") or "")[:128],
        platform=str(arch.get("platform") or "")[:64],
        os=str(arch.get("platform_os") or "")[:64],
        target=_target(arch)[:64],
        compiler=_compiler(node, deps_raw),
        variants=variants,
        deps=tuple(deps),
        external=bool(node.get("external")),
        raw=node,
    )


_LANGUAGES = frozenset({"c", "cxx", "fortran"})


def _compiler_edge(node: Node) -> str | None:
    """The hash of the dependency that compiles `node` in format 5: spack 1.x writes
    compilers as build dependencies providing the virtuals c, cxx, fortran."""
    for dep in node.raw.get("dependencies", []):
        params = dep.get("parameters")
        virtuals = params.get("virtuals") if isinstance(params, dict) else None
        if isinstance(virtuals, list) and _LANGUAGES & {v for v in virtuals
                                                        if isinstance(v, str)}:
            return str(dep["hash"])
    return None


def _with_compilers(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    by_hash = {n.hash: n for n in nodes}
    out = []
    for node in nodes:
        edge = None if node.compiler else _compiler_edge(node)
        compiler = by_hash.get(edge) if edge else None
        if compiler is not None:
            node = replace(node, compiler=f"{compiler.name}@{compiler.version}"[:128])
        out.append(node)
    return tuple(out)


_FLAGS = frozenset({"cflags", "cppflags", "cxxflags", "fflags", "ldflags", "ldlibs"})


RUNTIME = frozenset({"link", "run"})


def _runtime_edges(node: Node) -> list[str]:
    """Hashes of `node`'s link and run dependencies (what its binaries need)."""
    out = []
    for dep in node.raw.get("dependencies", []):
        params = dep.get("parameters")
        types = params.get("deptypes") if isinstance(params, dict) else dep.get("type")
        if isinstance(types, list) and RUNTIME & set(types):
            out.append(dep["hash"])
    return out


@dataclass(frozen=True, slots=True)
class SpecDoc:
    """A parsed spec document: its format, its nodes (root first) by hash."""

    format: int
    nodes: tuple[Node, ...]
    doc: dict  # {"_meta": ..., "nodes": [...]}: the value of the document's "spec"

    @property
    def root(self) -> Node:
        return self.nodes[0]

    def runtime_deps(self) -> list[Node]:
        """The nodes the root needs at run time (link and run edges, transitively),
        externals excluded, each after its own dependencies: the layers of the
        root's image before its own, as spack's OCI push orders them."""
        by_hash = {n.hash: n for n in self.nodes}
        done: set[str] = set()
        out: list[Node] = []
        stack: list[tuple[Node, bool]] = [(self.root, False)]
        while stack:  # iterative post-order: DAGs of hostile depth cannot recurse
            node, expanded = stack.pop()
            if expanded:
                if node is not self.root and not node.external:
                    out.append(node)
                continue
            if node.hash in done:
                continue
            done.add(node.hash)
            stack.append((node, True))
            for h in reversed(_runtime_edges(node)):
                child = by_hash.get(h)
                if child is not None and child.hash not in done:
                    stack.append((child, False))
        return out

    @classmethod
    def parse(cls, doc: Any) -> SpecDoc:
        """Parse `{"spec": {"_meta": ..., "nodes": [...]}}` (a spec file, an OCI
        config's `spec`) or its inner value; raise InvalidSpec otherwise."""
        if isinstance(doc, dict) and isinstance(doc.get("spec"), dict):
            doc = doc["spec"]
        if not isinstance(doc, dict):
            raise InvalidSpec("not a spec document")
        meta = doc.get("_meta")
        version = meta.get("version") if isinstance(meta, dict) else None
        if version not in FORMATS:
            raise InvalidSpec(f"unsupported spec format {version!r}")
        raw_nodes = doc.get("nodes")
        if not isinstance(raw_nodes, list) or not raw_nodes:
            raise InvalidSpec("a spec has no nodes")
        nodes = _with_compilers(tuple(parse_node(n) for n in raw_nodes))
        return cls(version, nodes, doc)

    @classmethod
    def loads(cls, raw: bytes | str) -> SpecDoc:
        if len(raw) > SPEC_MAX_BYTES:
            raise InvalidSpec("spec document too large")
        try:
            return cls.parse(json.loads(raw))
        except (ValueError, RecursionError) as exc:
            if isinstance(exc, InvalidSpec):
                raise
            raise InvalidSpec(f"not valid JSON: {exc}") from None


@dataclass(frozen=True, slots=True)
class SpecRecord:
    """One spec a cache holds: its document and where its bytes are.

    `source` says how it arrived: "oci" (a `.spack` tag), "v3" (a classic spec
    manifest through S3) or "v2" (a classic `.spec.json[.sig]` through S3).
    `key` is then the object key of what spack wrote, served unchanged by the
    views (it may be signed); `oci` the manifest digest of an OCI push.
    """

    spec: SpecDoc
    tarball: Digest
    tarball_size: int
    source: str
    spec_blob: Digest | None = None  # gzipped spec file of layout v3, when there is one
    spec_blob_size: int = 0
    key: str | None = None
    oci: Digest | None = None
    pushed: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def hash(self) -> str:
        return self.spec.root.hash

    @property
    def root(self) -> Node:
        return self.spec.root

    def to_json(self) -> dict:
        doc: dict[str, Any] = {
            "spec": self.spec.doc, "tarball": str(self.tarball),
            "tarball_size": self.tarball_size, "source": self.source, "pushed": self.pushed,
        }
        if self.spec_blob is not None:
            doc["spec_blob"] = str(self.spec_blob)
            doc["spec_blob_size"] = self.spec_blob_size
        if self.key is not None:
            doc["key"] = self.key
        if self.oci is not None:
            doc["oci"] = str(self.oci)
        if self.extra:
            doc["extra"] = self.extra
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> SpecRecord:
        blob = doc.get("spec_blob")
        oci = doc.get("oci")
        return cls(SpecDoc.parse(doc["spec"]), Digest.parse(doc["tarball"]),
                   int(doc["tarball_size"]), str(doc["source"]),
                   Digest.parse(blob) if blob else None, int(doc.get("spec_blob_size", 0)),
                   doc.get("key"), Digest.parse(oci) if oci else None,
                   float(doc.get("pushed", 0.0)), dict(doc.get("extra") or {}))
