"""Run the registry CLI with every index sync pass timed: `python loadtest/sync_probe.py
serve ...` is `python -m registry serve ...` plus one JSON line per pass of
`registry.core.indexing.catch_up` (`registry.index.sync.sync_once` in older checkouts)
(start, end, pid, stats or error, wall-clock seconds,
and the directory `registry` was imported from)
appended to the file named by $LOADTEST_SYNC_LOG.

big-repo-sync runs replica B this way to report how long a pass takes. `registry` is
imported from PYTHONPATH (the checkout under test, ours or the baseline). If that
checkout has neither, the registry runs unchanged and nothing is logged.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
import time

# Run as a script, this file's directory is sys.path[0]: it must not shadow anything.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]


def _stats(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return repr(value)


def _append(path: str, line: str) -> None:
    with open(path, "a") as f:  # one short line per pass: an atomic append
        f.write(line)


def install(log_path: str) -> bool:
    """Wrap the pass function, which the background task looks up at each pass:
    registry.core.indexing.catch_up, or registry.index.sync.sync_once before it."""
    try:
        import registry
    except ImportError:
        return False
    for module_name, attr in (("registry.core.indexing", "catch_up"),
                              ("registry.index.sync", "sync_once")):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        original = getattr(module, attr, None)
        if original is not None:
            break
    else:
        return False
    package = os.path.dirname(os.path.realpath(registry.__file__))  # which checkout runs

    async def timed(*args, **kwargs):
        record: dict = {"pid": os.getpid(), "registry": package, "start": time.time()}
        try:
            stats = await original(*args, **kwargs)
            record["stats"] = _stats(stats)
            return stats
        except BaseException as exc:
            record["error"] = repr(exc)
            raise
        finally:
            record["end"] = time.time()
            _append(log_path, json.dumps(record) + "\n")

    setattr(module, attr, timed)
    return True


def main() -> int:
    log_path = os.environ.get("LOADTEST_SYNC_LOG")
    if log_path:
        install(log_path)
    from registry.cli import main as registry_main

    return registry_main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
