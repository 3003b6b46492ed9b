"""Storage drivers and the layout of the storage tree."""

from __future__ import annotations

from registry.config import StorageConfig
from registry.storage.driver import Driver


def create_driver(config: StorageConfig) -> Driver:
    """The driver named by `[storage] driver`."""
    if config.driver == "filesystem":
        from registry.storage.filesystem import FilesystemDriver

        return FilesystemDriver(config.root, fsync=config.fsync)
    if config.driver == "s3":
        from registry.storage.s3 import S3Driver

        return S3Driver.from_config(config)
    raise ValueError(f"unknown storage driver {config.driver!r}")
