"""Bytes of an image-compatibility spec layer -> a bounded tree of plain values.

The documents come from whoever may push: hostile input. Before anything is built
from them they are held to a size, a nesting depth and a node count, and only
JSON's value types survive (str, int, bool, None, list, dict with str keys). YAML
(NFD's spec layer) is first walked as a stream of parser events by libyaml, which
keeps no recursion: an alias, an anchor or an explicit tag is refused there, so a
billion-laughs document never expands, and only a document within the caps is
then constructed.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

MAX_BYTES = 64 << 10  # NFD's own example is 1.7 KiB
MAX_DEPTH = 16
MAX_NODES = 20_000
MAX_STRING = 1024

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CompatError(ValueError):
    """An image-compatibility document that is not valid or exceeds a limit; the
    message says which part and why, for the push's MANIFEST_INVALID detail."""


def _reject_constant(name: str) -> Any:
    raise CompatError(f"{name} is not a JSON number")


def load_json(data: bytes) -> Any:
    """The JSON document in `data`, bounded; CompatError on anything else."""
    _check_size(data)
    try:
        doc = json.loads(data, parse_constant=_reject_constant)
    except CompatError:
        raise
    except RecursionError:
        raise CompatError(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError among them
        raise CompatError(f"not JSON: {str(exc)[:120]}") from None
    check_tree(doc)
    return doc


def load_yaml(data: bytes) -> Any:
    """The single YAML document in `data` (JSON is YAML too), bounded; CompatError on
    aliases, anchors, explicit tags, several documents or anything over the caps."""
    _check_size(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CompatError("not UTF-8 text") from None
    depth = nodes = documents = 0
    try:
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise CompatError("YAML anchors and aliases are not accepted")
            if isinstance(event, yaml.NodeEvent):
                nodes += 1
                # Before composition a tag is only there when the text spells one.
                if getattr(event, "tag", None) is not None:
                    raise CompatError("explicit YAML tags are not accepted")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise CompatError(f"nested deeper than {MAX_DEPTH} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise CompatError("more than one YAML document")
            if nodes > MAX_NODES:
                raise CompatError(f"more than {MAX_NODES} values")
        doc = yaml.load(text, Loader=_LOADER)  # a safe loader, its events checked above
    except CompatError:
        raise
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise CompatError(f"not YAML: {str(exc).splitlines()[0][:120] if str(exc) else exc!r}"
                          ) from None
    check_tree(doc)
    return doc


def _check_size(data: bytes) -> None:
    if not isinstance(data, bytes | bytearray):
        raise CompatError("the document is not bytes")
    if len(data) > MAX_BYTES:
        raise CompatError(f"the document is {len(data)} bytes, more than {MAX_BYTES}")


def check_tree(doc: Any) -> None:
    """Only JSON's types, string keys, bounded depth, node count and string length;
    walked without recursion."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    seen = 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise CompatError(f"more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise CompatError(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    raise CompatError(f"key {str(key)[:40]!r} is not a string")
                if len(key) > MAX_STRING:
                    raise CompatError("a key is longer than 1024 characters")
                stack.append((value, depth + 1))
        elif isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)
        elif isinstance(node, str):
            if len(node) > MAX_STRING:
                raise CompatError(f"a string is longer than {MAX_STRING} characters")
        elif node is not None and not isinstance(node, bool | int):
            # floats, dates, sets, bytes: none of the formats uses them
            raise CompatError(f"a value of type {type(node).__name__} is not accepted")
