"""The cross-worker fetch lock of the node cache (registry/cache/shared.py), on
real files: flock is per open file description, so two opens in one process
contend as two processes would."""

from __future__ import annotations

import os

from registry.cache import shared
from registry.cache.shared import SharedPaths
from registry.core.grammar import Digest

DIGEST = Digest("sha256", "a" * 64)


def test_one_holder_and_no_lock_file_left(tmp_path):
    p = SharedPaths.of(str(tmp_path), DIGEST)
    first = shared.try_lock(p.lock)
    assert first is not None
    assert shared.try_lock(p.lock) is None  # another worker: follows instead
    assert not shared.holder_gone(p)
    shared.unlock(first, p.lock)
    assert not os.path.exists(p.lock)
    assert shared.holder_gone(p)
    assert os.listdir(tmp_path) == []  # holder_gone cleans up after itself too


def test_a_lock_on_an_unlinked_file_is_not_taken(tmp_path):
    """The race unlink-before-release guards: a process that opened the old file
    and locks it after the holder let go must not believe it holds the lock."""
    p = SharedPaths.of(str(tmp_path), DIGEST)
    holder = shared.try_lock(p.lock)
    stale = os.open(p.lock, os.O_RDWR)  # opened before the holder unlinks
    shared.unlock(holder, p.lock)
    second = shared.try_lock(p.lock)  # a new file: a real lock
    assert second is not None
    assert os.fstat(second).st_ino != os.fstat(stale).st_ino
    assert shared.try_lock(p.lock) is None
    os.close(stale)
    shared.unlock(second, p.lock)


def test_size_is_published_whole(tmp_path):
    p = SharedPaths.of(str(tmp_path), DIGEST)
    assert shared.read_size(p) is None
    shared.publish_size(p, 123456789)
    assert shared.read_size(p) == 123456789
    shared.remove(p.size, p.data)
    assert shared.read_size(p) is None
