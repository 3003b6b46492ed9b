"""The describer the index is handed (index/builds.py's `Describer`): what a manifest
needs of a host, as the flat columns of its `builds` table. The index may not import
this room, so app.py and cli.py give it this function when they open it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from registry.arch.describe import describe, fields


def describer(*, annotations: Mapping[str, str] | None, config: Mapping[str, Any] | None,
              platform: Mapping[str, Any] | None) -> dict[str, str | int | None]:
    """`describe` as columns: `fields`, with `sources` as a JSON object (field -> source)."""
    build = describe(annotations=annotations, config=config, platform=platform)
    columns = fields(build)
    columns["sources"] = json.dumps(dict(sorted(build.sources.items())))
    return columns
