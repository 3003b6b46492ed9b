"""Blockbuster for the async tests that are not under tests/api, tests/core or
tests/inprocess (those have stricter fixtures of their own: they start their app
before blockbuster and allow nothing after).

Here the test itself makes drivers and indexes on its loop, so the few places where
registry code blocks once per process, at start-up or stop, are allowed; any other
blocking call that registry code makes on the loop raises."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from blockbuster import BlockBuster, blockbuster_ctx

# (file, functions) where registry code may block: once per process, not per request.
START_AND_STOP = [
    # A driver is made, and a crash's scratch files cleaned, at start-up.
    ("registry/storage/filesystem.py", ["__init__", "clean_tmp"]),
    ("registry/storage/s3_client.py", ["client"]),  # botocore reads its data files once
    # The index file is prepared before the workers start; its thread joined at stop.
    ("registry/index/db.py", ["prepare", "close"]),
]


@contextmanager
def guarded() -> Iterator[BlockBuster]:
    with blockbuster_ctx(["registry"]) as bb:
        for function in bb.functions.values():
            for filename, names in START_AND_STOP:
                function.can_block_in(filename, names)
        yield bb
