"""What a caller asks a build cache for, in a small part of spack's spec syntax:
`hdf5`, `hdf5@1.14:1.14.3`, `hdf5@1.14 +mpi ~cxx api=v110`, `hdf5 /abcdef` (a DAG
hash prefix). Compilers (`%`), dependencies (`^`), flags and anything else spack
would read are refused rather than guessed at. A request is hostile input: the
text, its tokens and its values are bounded, and only InvalidWanted leaves here.

Variants match as spack's `satisfies` does for a concrete spec: `+x`/`~x` a boolean
variant that is on/off, `x=v` a single value equal to v, `x=a,b` a multi-valued
variant holding every value named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from registry.spack.specs import NAME_RE, Node
from registry.spack.versions import InvalidVersion, SpecQuery

MAX_TEXT = 512
MAX_VARIANTS = 32
_HEAD = re.compile(r"\s*(?P<name>[a-z0-9][a-z0-9_-]{0,127})"
                   r"(?:@(?P<versions>[A-Za-z0-9_.:,=-]{1,256}))?")
_TOKEN = re.compile(
    r"\s*(?:(?P<sign>[+~])(?P<flag>[a-z0-9_][a-z0-9_-]{0,63})"
    r"|(?P<key>[a-z0-9_][a-z0-9_-]{0,63})=(?P<value>[A-Za-z0-9_.:+-]{1,128}(?:,[A-Za-z0-9_.:+-]{1,128}){0,15})"
    r"|/(?P<hash>[a-z2-7]{1,32}))")
_RESERVED = frozenset({"target", "os", "platform", "arch", "namespace", "dev_path"})


class InvalidWanted(ValueError):
    """A spec the grammar does not accept (the message says where)."""


@dataclass(frozen=True)
class Wanted:
    """One requested spec: name and versions, variants, an optional hash prefix."""

    query: SpecQuery
    variants: tuple[tuple[str, Any], ...] = ()  # (name, True | False | tuple of values)
    hash_prefix: str = ""
    text: str = ""

    @property
    def name(self) -> str:
        return self.query.name

    @classmethod
    def parse(cls, text: Any) -> Wanted:
        if not isinstance(text, str) or not 0 < len(text) <= MAX_TEXT:
            raise InvalidWanted("a spec must be a string of 1 to 512 characters")
        head = _HEAD.match(text)
        if head is None or not NAME_RE.fullmatch(head.group("name")):
            raise InvalidWanted(f"{text[:64]!r} does not start with a package name")
        try:
            name, versions = head.group("name"), head.group("versions")
            query = SpecQuery.parse(f"{name}@{versions}" if versions else name)
        except InvalidVersion as exc:
            raise InvalidWanted(str(exc)) from None
        variants: dict[str, Any] = {}
        hash_prefix = ""
        pos = head.end()
        while pos < len(text):
            if not text[pos:].strip():
                break
            m = _TOKEN.match(text, pos)
            if m is None:
                raise InvalidWanted(f"cannot read {text[pos:pos + 32].strip()!r} "
                                    "(accepted: name@versions +variant ~variant key=value /hash)")
            pos = m.end()
            if m.group("hash"):
                if hash_prefix:
                    raise InvalidWanted("more than one /hash")
                hash_prefix = m.group("hash")
                continue
            key = m.group("flag") or m.group("key")
            if key in _RESERVED:
                raise InvalidWanted(f"{key}= is not supported here (give target separately)")
            if key in variants:
                raise InvalidWanted(f"variant {key!r} given twice")
            if m.group("sign"):
                variants[key] = m.group("sign") == "+"
            else:
                variants[key] = tuple(m.group("value").split(","))
            if len(variants) > MAX_VARIANTS:
                raise InvalidWanted(f"more than {MAX_VARIANTS} variants")
        return cls(query, tuple(sorted(variants.items())), hash_prefix, text.strip())

    def matches(self, node: Node) -> bool:
        """Whether the concrete `node` satisfies this request."""
        if node.name != self.name or not node.hash.startswith(self.hash_prefix):
            return False
        if not self.query.matches(node.version):
            return False
        return all(_variant_holds(node.variants.get(k), want) for k, want in self.variants)


def _variant_holds(have: Any, want: Any) -> bool:
    if isinstance(want, bool):
        return have is want
    if isinstance(have, bool):  # `shared=true` spelt as a value
        return len(want) == 1 and want[0].lower() == str(have).lower()
    if isinstance(have, str):
        return len(want) == 1 and want[0] == have
    if isinstance(have, list):
        held = {str(v) for v in have}
        return all(v in held for v in want)
    return False
