"""glibc's allocator tuned for the batches of a streamed run.

Each batch allocates and frees the same large numpy arrays (tens of MB, above the 32 MB mmap
threshold polars_metrics starts glibc with, see ``polars_metrics._memory``). glibc serves such
an allocation with a fresh ``mmap`` and returns it with ``munmap`` when freed, so every batch
page-faulted all of its memory in again: on the 2-core benchmark machine that was a third of
the run's CPU time, as *system* time. :func:`reusing_memory` raises the mmap and trim
thresholds while the batches run (the freed memory stays in the heap and the next batch reuses
it: the peak is unchanged, the page faults go) and comes back to the settled ones after.
Thresholds the user set (environment variables) are left alone. Elsewhere than glibc (macOS,
musl, Windows) it does nothing.
"""
from __future__ import annotations

import contextlib

from polars_metrics._memory import set_heap_thresholds, settle_heap_thresholds

_KEEP = 256 * 1024 * 1024  # below this, allocations come from (and return to) the heap


def keep_reusing_memory() -> bool:
    """Raise the thresholds for the rest of the process (a Ray worker's); False where they
    are not ours to set."""
    return set_heap_thresholds(_KEEP, 2 * _KEEP)


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
    try:
        yield
    finally:
        settle_heap_thresholds()
