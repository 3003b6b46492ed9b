"""The decorator bases (core/decorators.py) forward every Protocol method to `inner`,
so a decorator overrides only what it changes and no `__getattr__` is needed."""

from __future__ import annotations

import inspect

import pytest

from registry.core import decorators, hooks, protocols

PAIRS = [
    (protocols.Blobs, decorators.BlobsDecorator),
    (protocols.Uploads, decorators.UploadsDecorator),
    (protocols.Manifests, decorators.ManifestsDecorator),
    (protocols.Tags, decorators.TagsDecorator),
    (protocols.Referrers, decorators.ReferrersDecorator),
    (protocols.Catalog, decorators.CatalogDecorator),
    (protocols.Objects, decorators.ObjectsDecorator),
    (hooks.Hooks, decorators.HooksDecorator),
]
IDS = [proto.__name__ for proto, _ in PAIRS]


def members(proto: type) -> list[str]:
    return sorted(name for name, value in vars(proto).items()
                  if not name.startswith("_") and callable(value))


def shape(fn: object) -> list[tuple[str, object, object]]:
    """Parameter names, kinds and defaults (annotations are spelled differently:
    `builtins.list` in a class with a `list` method)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_every_protocol_has_a_base() -> None:
    names = {name for name, value in vars(protocols).items()
             if inspect.isclass(value) and getattr(value, "_is_protocol", False)
             and value.__module__ == protocols.__name__}
    assert names | {"Hooks"} == set(IDS)  # and core.hooks' Protocol, which feeds wrap


@pytest.mark.parametrize(("proto", "base"), PAIRS, ids=IDS)
def test_base_defines_every_member_with_its_signature(proto: type, base: type) -> None:
    for name in members(proto):
        assert name in vars(base), f"{base.__name__} does not forward {name}"
        assert shape(vars(base)[name]) == shape(vars(proto)[name]), name
        assert (inspect.iscoroutinefunction(vars(base)[name])
                == inspect.iscoroutinefunction(vars(proto)[name])), name


def recorder(proto: type, calls: list[tuple[str, tuple[object, ...]]]) -> object:
    """A stand-in for the wrapped service: records each call, answers a marker."""
    ns: dict[str, object] = {}
    for name in members(proto):
        def make(name: str, is_async: bool) -> object:
            if is_async:
                async def method(self: object, *args: object) -> object:
                    calls.append((name, args))
                    return ("answer of", name)
            else:
                def method(self: object, *args: object) -> object:
                    calls.append((name, args))
                    return ("answer of", name)
            return method
        ns[name] = make(name, inspect.iscoroutinefunction(vars(proto)[name]))
    return type(f"Recording{proto.__name__}", (), ns)()


@pytest.mark.parametrize(("proto", "base"), PAIRS, ids=IDS)
async def test_base_forwards_every_call_to_inner(proto: type, base: type) -> None:
    calls: list[tuple[str, tuple[object, ...]]] = []
    wrapped = base(recorder(proto, calls))
    for name in members(proto):
        params = list(inspect.signature(vars(proto)[name]).parameters)[1:]  # past self
        args = tuple(object() for _ in params)
        answer = getattr(wrapped, name)(*args)
        if inspect.isawaitable(answer):
            answer = await answer
        assert calls.pop() == (name, args), f"{base.__name__}.{name} did not forward"
        if inspect.signature(vars(proto)[name]).return_annotation != "None":
            assert answer == ("answer of", name), f"{base.__name__}.{name} lost the answer"
    assert calls == []
