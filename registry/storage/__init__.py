"""Storage drivers and the layout of the storage tree.

Drivers are registered by name (`register`); `create_driver` makes the one
`[storage] driver` names and wraps it in `base.CheckedDriver`. The built-in
factories import their module only when called, so aiobotocore is imported
only by a registry that uses the s3 driver.
"""

from __future__ import annotations

from collections.abc import Callable

from registry.config import StorageConfig
from registry.storage.base import CheckedDriver
from registry.storage.driver import Driver

DriverFactory = Callable[[StorageConfig], Driver]

_FACTORIES: dict[str, DriverFactory] = {}


def register(name: str, factory: DriverFactory) -> None:
    """Make `[storage] driver = name` build drivers with `factory(config)`."""
    _FACTORIES[name] = factory


def registered() -> tuple[str, ...]:
    """The names `create_driver` knows, sorted."""
    return tuple(sorted(_FACTORIES))


def create_driver(config: StorageConfig) -> Driver:
    """The driver named by `[storage] driver`, wrapped in CheckedDriver."""
    try:
        factory = _FACTORIES[config.driver]
    except KeyError:
        raise ValueError(f"unknown storage driver {config.driver!r}; "
                         f"known: {', '.join(registered())}") from None
    return CheckedDriver(factory(config))


def _filesystem(config: StorageConfig) -> Driver:
    from registry.storage.filesystem import FilesystemDriver

    return FilesystemDriver(config.root, fsync=config.fsync)


def _s3(config: StorageConfig) -> Driver:
    from registry.storage.s3 import S3Driver

    return S3Driver.from_config(config)


def _memory(config: StorageConfig) -> Driver:
    from registry.storage.memory import MemoryDriver

    return MemoryDriver()


register("filesystem", _filesystem)
register("s3", _s3)
register("memory", _memory)
