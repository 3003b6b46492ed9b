"""glibc malloc settings for a serving process.

glibc serves a large allocation (128 KiB and up, at first) with its own mmap
and unmaps it when freed; but each such free raises that threshold to the
freed size (up to 32 MiB), after which blocks of that size come from the heap
and from the arenas of the threads that made them, whose free space glibc
seldom returns. A worker streaming blobs over TLS makes such blocks all the
time (file reads on the I/O threads, TLS records, request bodies), and once
the threshold has risen it kept about 2 MB per connection served after the
connections closed (`python -m loadtest tls-rss`, docs/benchmarks.md).
Pinning the threshold keeps large blocks mmapped and returned when freed. At
256 KiB it stays above the TLS path's own buffers (64 KiB slices, records up to
its 128 KiB high-water mark, api/sendfile.py), which the arenas recycle: at
128 KiB those were mapped and unmapped each time, a quarter more CPU per byte.
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger("registry")

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)
MMAP_THRESHOLD = 256 * 1024  # no longer raised by frees


def pin_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold at 256 KiB for this process and the workers it
    forks, unless the environment sets it (MALLOC_MMAP_THRESHOLD_ or
    GLIBC_TUNABLES). False where the C library is not glibc."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "GLIBC_TUNABLES" in os.environ:
        return False
    try:  # the symbols the interpreter is linked with, its C library's among them
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    if not ok:
        log.debug("mallopt(M_MMAP_THRESHOLD) refused")
    return ok
