"""glibc's allocator tuned for the batches of a streamed run.

Each batch allocates and frees the same large numpy arrays (tens of MB). glibc serves an
allocation above its mmap threshold with a fresh ``mmap`` and returns it with ``munmap`` when
freed, so every batch page-faults all of its memory in again: on the 2-core benchmark machine
that was a third of the run's CPU time, as *system* time. :func:`reusing_memory` raises the
mmap and trim thresholds while the batches run (the freed memory stays in the heap and the next
batch reuses it: the peak is unchanged, the page faults go) and puts glibc's defaults back
after. Elsewhere than glibc (macOS, musl, Windows) it does nothing.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
_DEFAULT = 128 * 1024  # glibc's initial thresholds
_KEEP = 256 * 1024 * 1024  # below this, allocations come from (and return to) the heap


def _mallopt():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return None


def keep_reusing_memory() -> bool:
    """Raise the thresholds for the rest of the process (a Ray worker's); False off glibc."""
    mallopt = _mallopt()
    if mallopt is None:
        return False
    mallopt(M_MMAP_THRESHOLD, _KEEP)
    mallopt(M_TRIM_THRESHOLD, 2 * _KEEP)
    return True


@contextlib.contextmanager
def reusing_memory():
    """Raise glibc's mmap / trim thresholds for the duration (see the module docstring).

    Examples
    --------
    >>> with reusing_memory():
    ...     pass
    """
    if not keep_reusing_memory():
        yield
        return
    mallopt = _mallopt()
    try:
        yield
    finally:
        mallopt(M_MMAP_THRESHOLD, _DEFAULT)
        mallopt(M_TRIM_THRESHOLD, _DEFAULT)
