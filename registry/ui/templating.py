"""The dashboard's Jinja2 environment: every template loaded once, at import, from the
package (no file is read on the event loop), HTML autoescaped everywhere, and an
undefined name an error (a template that names a value the page did not give fails
the tests, not silently prints nothing)."""

from __future__ import annotations

import datetime
from importlib import resources
from typing import Any

import jinja2

from registry.units import human_size

_TEMPLATES = resources.files("registry.ui") / "templates"


def _load() -> dict[str, str]:
    return {item.name: item.read_text(encoding="utf-8")
            for item in _TEMPLATES.iterdir() if item.name.endswith(".html")}


ENV = jinja2.Environment(
    loader=jinja2.DictLoader(_load()),
    autoescape=True,  # every template is HTML: what users pushed is always escaped
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["bytes"] = human_size


def when(stamp: float | None) -> str:
    """A time the index recorded (seconds since the epoch) as UTC, to the minute."""
    if stamp is None:
        return ""
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


ENV.filters["when"] = when


def render(template: str, values: dict[str, Any]) -> str:
    """The text of `template` with `values`."""
    return ENV.get_template(template).render(values)
