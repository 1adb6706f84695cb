"""Give freed heap memory back to the operating system; first-touched memory without huge-page
compaction.

Huge pages: numpy asks the kernel for transparent huge pages on every array of 4 MB or more
(``madvise(MADV_HUGEPAGE)``). Where the kernel honours that request by compacting memory on the
spot (``/sys/kernel/mm/transparent_hugepage/defrag`` = ``madvise``, the default of many
distributions and cloud VMs), each first touch of such an array can stall while 2 MB of
physical memory is assembled. Measured on this project's 2-core VM: allocating and filling
400 MB took 10-15 s with numpy's default (2.6-3.1 s of system time, 3,125 faults) against 1-3 s
without (0.24-0.42 s of system time). An evaluation allocates and fills hundreds of MB of fresh
arrays, so :func:`use_small_pages` turns numpy's request off when polars_metrics is imported,
unless ``NUMPY_MADVISE_HUGEPAGE`` is set (numpy's own switch: ``1`` keeps huge pages).

numpy's large temporaries come from glibc's malloc. After the first large free, glibc raises
its mmap threshold (up to 32 MB), so later arrays of an evaluation live in the heap; once
freed, they stay resident as free heap space that the next evaluation only partly reuses.
Repeated evaluations in one process (a notebook, a benchmark loop) then creep upwards in
resident memory. ``malloc_trim(0)`` returns those free pages (about 1-2 ms), but the next
evaluation then faults them in again: on the 2-core VM, where a first touch costs ~1.8 us a
page, that made a warm 5,000-image call 8-12% slower. So the heap is trimmed only when more
than ``KEEP_FREE`` bytes of it are free (glibc's ``mallinfo2``): small and medium evaluations
keep their free pages for the next one (measured: +3 MB peak at 5,000 images, +23 MB at
20,000), large ones give them back (at 100,000 images an untrimmed heap raised the peak with
the previous result alive by 205 MB). Elsewhere than glibc this does nothing.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable

KEEP_FREE = 256 << 20  # bytes of free heap left for the next evaluation to reuse

# (malloc_trim, free heap bytes) from glibc; None off glibc; False: not looked up yet
_glibc: tuple[Callable[[int], int], Callable[[], int]] | None | bool = False


def _lookup() -> tuple[Callable[[int], int], Callable[[], int]] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    class _Mallinfo2(ctypes.Structure):  # glibc >= 2.33
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]

    try:
        libc = ctypes.CDLL("libc.so.6")  # glibc's soname; musl has no malloc_trim
        trim, info = libc.malloc_trim, libc.mallinfo2
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    info.argtypes, info.restype = [], _Mallinfo2
    return trim, lambda: info().fordblks


def free_heap_bytes() -> int | None:
    """Bytes in glibc's free heap chunks (all arenas), None elsewhere than glibc >= 2.33."""
    glibc = _functions()
    return None if glibc is None else glibc[1]()


def release_free_heap(keep: int = KEEP_FREE) -> bool:
    """``malloc_trim(0)`` when more than ``keep`` bytes of the heap are free (see the module
    docstring); returns whether it trimmed.

    >>> release_free_heap(keep=0) == (free_heap_bytes() is not None)
    True
    """
    glibc = _functions()
    if glibc is None or glibc[1]() <= keep:
        return False
    glibc[0](0)
    return True


def _functions():
    global _glibc
    if _glibc is False:
        _glibc = _lookup()
    return _glibc


def use_small_pages() -> bool:
    """Stop numpy from asking for transparent huge pages (see the module docstring), unless
    the user set ``NUMPY_MADVISE_HUGEPAGE``; returns whether numpy's setting was changed.

    >>> import os
    >>> use_small_pages() == ("NUMPY_MADVISE_HUGEPAGE" not in os.environ and _numpy_switch() is not None)
    True
    """
    switch = _numpy_switch()
    if switch is None or "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return False
    switch(False)
    return True


def _numpy_switch() -> Callable[[bool], bool] | None:
    """numpy's ``_set_madvise_hugepage`` (numpy 2: ``numpy._core.multiarray``), if there is one."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        try:
            from numpy.core import multiarray
        except ImportError:
            return None
    return getattr(multiarray, "_set_madvise_hugepage", None)
