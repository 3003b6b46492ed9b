"""What a node must offer to run a build, in the words schedulers use.

A `Need` is one manifest's requirements (from `describe.Build`, or from the index's
`builds` row): OS, architecture, the minimum archspec target and the CPU features that
target implies (archspec's `features`), CUDA, ROCm, MPI, memory. Rendered as:

- Kubernetes node labels as node-feature-discovery (NFD) and NVIDIA's GPU feature
  discovery (GFD) publish them: `kubernetes.io/os`, `kubernetes.io/arch`,
  `feature.node.kubernetes.io/cpu-cpuid.<FLAG>=true` for each CPU feature NFD labels by
  default (its cpuid names, klauspost/cpuid's, e.g. fma -> FMA3, sse4_2 -> SSE42; the
  flags NFD's default `attributeBlacklist` hides are left out, a node would not carry
  them), `nvidia.com/gpu.present=true` for CUDA; and a node affinity whose terms also
  ask `nvidia.com/cuda.runtime-version.major/minor` for at least the CUDA version;
- a Slurm `--constraint` expression: the features' names joined with `&` (the target's
  archspec name, `cuda<major>`, `rocm<major>`, `<mpi flavour><major>`), alternatives of
  an index joined with `|`. Sites name node features themselves; docs/architecture-aware.md
  says which names this expects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from registry.arch.describe import Build
from registry.arch.host import Mpi, Version, dotted, parse_version
from registry.arch.platforms import FAMILY_TO_OCI, known_target

NFD = "feature.node.kubernetes.io/cpu-cpuid."
GPU_PRESENT = "nvidia.com/gpu.present"
CUDA_MAJOR = "nvidia.com/cuda.runtime-version.major"
CUDA_MINOR = "nvidia.com/cuda.runtime-version.minor"

# archspec's feature names (Linux's /proc/cpuinfo flags) -> NFD's cpuid flag names
# (klauspost/cpuid's FeatureID), per archspec family, where they are not simply the
# upper-case name; a flag with no NFD name (sha512 on x86, sve2) gets no label.
_RENAMED = {
    "x86_64": {"aes": "AESNI", "fma": "FMA3", "pclmulqdq": "CLMUL", "sse4_1": "SSE4",
               "sse4_2": "SSE42", "lahf_lm": "LAHF", "abm": "LZCNT", "sha_ni": "SHA",
               "3dnow": "AMD3DNOW", "3dnowext": "AMD3DNOWEXT", "flush_l1d": "FLUSH_L1D",
               "sm3": "SM3_X86", "sm4": "SM4_X86", "avx512_bf16": "AVX512BF16",
               "avx512_bitalg": "AVX512BITALG", "avx512_fp16": "AVX512FP16",
               "avx512_vbmi2": "AVX512VBMI2", "avx512_vnni": "AVX512VNNI",
               "avx512_vp2intersect": "AVX512VP2INTERSECT",
               "avx512_vpopcntdq": "AVX512VPOPCNTDQ", "avx_vnni": "AVXVNNI",
               "avx_ifma": "AVXIFMA", "avx_ne_convert": "AVXNECONVERT",
               "avx_vnni_int8": "AVXVNNIINT8", "avx_vnni_int16": "AVXVNNIINT16",
               "amx_bf16": "AMXBF16", "amx_int8": "AMXINT8", "amx_tile": "AMXTILE"},
    "aarch64": {"aes": "AESARM", "cpuid": "ARMCPUID", "asimdfhm": "FHM"},
}
_SAME = {
    "x86_64": frozenset({
        "adx", "avx", "avx2", "avx512bw", "avx512cd", "avx512dq", "avx512er", "avx512f",
        "avx512ifma", "avx512pf", "avx512vbmi", "avx512vl", "bmi1", "bmi2", "cldemote",
        "clzero", "cmpccxadd", "cx16", "f16c", "fma4", "gfni", "mmx", "movbe",
        "movdir64b", "movdiri", "popcnt", "rdrand", "rdseed", "serialize", "sse", "sse2",
        "sse3", "sse4a", "ssse3", "tbm", "vaes", "vpclmulqdq", "waitpkg", "xop", "xsave",
        "xsavec", "xsaveopt"}),
    "aarch64": frozenset({
        "asimd", "asimddp", "asimdhp", "asimdrdm", "atomics", "crc32", "dcpop", "evtstrm",
        "fcma", "fp", "fphp", "jscvt", "lrcpc", "pmull", "sha1", "sha2", "sha3", "sha512",
        "sm3", "sm4", "sve"}),
}
# NFD's default cpuid attributeBlacklist (source/cpu/cpu.go): not labelled by default.
NFD_HIDDEN = frozenset({
    "BMI1", "BMI2", "CLMUL", "CMOV", "CX16", "ERMS", "F16C", "HTT", "LZCNT", "MMX", "MMXEXT",
    "NX", "POPCNT", "RDRAND", "RDSEED", "RDTSCP", "SGX", "SGXLC", "SSE", "SSE2", "SSE3",
    "SSE4", "SSE42", "SSSE3"})


def nfd_flag(family: str, feature: str) -> str | None:
    """NFD's cpuid name of an archspec feature of `family`, None when it has none."""
    renamed = _RENAMED.get(family, {}).get(feature)
    if renamed is not None:
        return renamed
    return feature.upper() if feature in _SAME.get(family, frozenset()) else None


@dataclass(frozen=True)
class Need:
    """What one manifest needs of a node (see the module doc); `sources` says where each
    fact came from, as describe.Build.sources does."""

    os: str
    architecture: str
    target: str
    variant: str = ""
    cuda: Version | None = None
    rocm: Version | None = None
    mpi: Mpi | None = None
    memory: int | None = None
    sources: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_build(cls, build: Build) -> Need:
        return cls(build.os, build.architecture, build.target, build.variant, build.cuda,
                   build.rocm, build.mpi, build.memory, dict(build.sources))

    @classmethod
    def from_columns(cls, row: Any) -> Need:
        """From the index's flat columns (index.records.BuildRow: dotted versions, MPI as
        "flavour@version"); PlatformError when a column is not what describe writes."""
        def version(text: str | None, kind: str) -> Version | None:
            return None if text is None else parse_version(text, kind)

        known_target(row.target or "")
        return cls(row.os or "", row.architecture or "", row.target, row.variant or "",
                   version(row.cuda, "cuda"), version(row.rocm, "rocm"),
                   Mpi.parse(row.mpi) if row.mpi else None,
                   int(row.memory) if row.memory is not None else None, dict(row.sources))

    @property
    def family(self) -> str:
        return str(known_target(self.target).family.name)

    @property
    def cpu_features(self) -> list[str]:
        """The CPU features the target implies (archspec's own list), sorted."""
        return sorted(known_target(self.target).features)

    def labels(self) -> dict[str, str]:
        """Node labels a fitting node carries, in NFD's (and GFD's) names."""
        arch = FAMILY_TO_OCI.get(self.family, self.architecture)
        out = {"kubernetes.io/os": self.os, "kubernetes.io/arch": arch}
        for feature in self.cpu_features:
            flag = nfd_flag(self.family, feature)
            if flag is not None and flag not in NFD_HIDDEN:
                out[NFD + flag] = "true"
        if self.cuda is not None:
            out[GPU_PRESENT] = "true"
        return out

    def node_affinity(self) -> list[dict[str, Any]]:
        """Kubernetes nodeSelectorTerms (any one term suffices): the labels, and for CUDA
        X.Y a runtime of major > X, or major X and minor >= Y."""
        base = [{"key": k, "operator": "In", "values": [v]} for k, v in self.labels().items()]
        if self.cuda is None:
            return [{"matchExpressions": base}]
        major, minor = self.cuda[0], self.cuda[1] if len(self.cuda) > 1 else 0
        newer = [{"key": CUDA_MAJOR, "operator": "Gt", "values": [str(major)]}]
        same = [{"key": CUDA_MAJOR, "operator": "In", "values": [str(major)]}]
        if minor:
            same.append({"key": CUDA_MINOR, "operator": "Gt", "values": [str(minor - 1)]})
        return [{"matchExpressions": base + newer}, {"matchExpressions": base + same}]

    def slurm_features(self) -> list[str]:
        """Slurm feature names a fitting node has (see the module doc)."""
        out = [self.target]
        if self.cuda is not None:
            out.append(f"cuda{self.cuda[0]}")
        if self.rocm is not None:
            out.append(f"rocm{self.rocm[0]}")
        if self.mpi is not None:
            out.append(self.mpi.flavour + (str(self.mpi.version[0]) if self.mpi.version
                                           else ""))
        return out

    def slurm_constraint(self) -> str:
        return "&".join(self.slurm_features())

    def to_json(self) -> dict[str, Any]:
        memory = self.memory
        return {
            "os": self.os, "architecture": self.architecture, "variant": self.variant or None,
            "target": self.target, "cpu_features": self.cpu_features,
            "cuda": dotted(self.cuda) if self.cuda is not None else None,
            "rocm": dotted(self.rocm) if self.rocm is not None else None,
            "mpi": str(self.mpi) if self.mpi is not None else None, "memory": memory,
            "sources": dict(self.sources),
            "labels": self.labels(), "node_affinity": self.node_affinity(),
            "slurm": {"constraint": self.slurm_constraint(),
                      "mem": f"{-(-memory // (1 << 20))}M" if memory else None},
        }


def slurm_alternatives(needs: Iterable[Need]) -> str:
    """One constraint for any of several builds (an index's children): each build's
    features joined with `&`, alternatives with `|`, parenthesised when there are more."""
    parts = list(dict.fromkeys(n.slurm_constraint() for n in needs))
    if len(parts) <= 1:
        return parts[0] if parts else ""
    return "|".join(f"({p})" if "&" in p else p for p in parts)
