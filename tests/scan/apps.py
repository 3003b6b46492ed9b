"""The in-process registry the scan tests push to: a filesystem store and index under
`tmp`, with a registry.toml beside them for the CLI (`registry scan --config`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from appthread import start_app

from registry.config import Config, load


def filesystem_app(tmp: Path, **sections: dict[str, Any]) -> tuple[Any, Config]:
    """(the started app, its config); `sections` adds config sections (e.g. scan=...)."""
    config = load(env={}, overrides={
        "storage": {"driver": "filesystem", "root": str(tmp / "storage")},
        "index": {"path": str(tmp / "index.sqlite")}, **sections})
    (tmp / "registry.toml").write_text(
        f'[storage]\nroot = "{tmp / "storage"}"\n[index]\npath = "{tmp / "index.sqlite"}"\n')
    return start_app(config, "filesystem", tmp), config
