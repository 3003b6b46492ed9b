"""The bounds every scan keeps, and the error a layer that breaks one reports.

A layer is hostile until read: each bound turns a bomb, a loop or a huge header
into a `LayerError` in the scan's result, never into memory, disk or time spent.
"""

from __future__ import annotations

from dataclasses import dataclass


class LayerError(Exception):
    """A layer that could not be read to its end: its message goes into the result."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What one scan may spend. Sizes in bytes."""

    # A layer inflates to at most max(min_inflated, ratio x its compressed size), and
    # never beyond max_inflated: real layers compress 2-10x, a bomb ~1000x.
    ratio: int = 200
    min_inflated: int = 256 << 20
    max_inflated: int = 64 << 30
    entries: int = 1_000_000  # tar entries per layer
    pax_header: int = 1 << 20  # a pax extended header (its records)
    long_name: int = 64 << 10  # a GNU long name or link name
    path: int = 4096  # PATH_MAX: a longer name is skipped with an error
    layers: int = 256
    # The files read into memory, each at most this much (more is an error for a
    # package database, a cut for a Python METADATA whose headers come first).
    database: int = 64 << 20  # dpkg status, apk installed
    metadata: int = 256 << 10  # METADATA, PKG-INFO, os-release
    spec: int = 8 << 20  # .spack/spec.json
    rpmdb: int = 512 << 20  # rpmdb.sqlite, written to a scratch file
    key_file: int = 16 << 10  # files looked at for a PEM private key
    items: int = 200_000  # packages and findings kept
    errors: int = 100  # errors reported per scan

    def inflated(self, compressed: int) -> int:
        """The most a layer of `compressed` bytes may inflate to."""
        return min(self.max_inflated, max(self.min_inflated, self.ratio * compressed))
