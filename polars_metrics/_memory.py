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
resident memory. ``malloc_trim(0)`` returns those free pages (about 1 ms). Elsewhere than glibc
this does nothing.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable

_trim: Callable[[int], int] | None | bool = False  # False: not looked up yet


def _lookup() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        fn = ctypes.CDLL("libc.so.6").malloc_trim  # glibc's soname; musl has no malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def release_free_heap() -> None:
    global _trim
    if _trim is False:
        _trim = _lookup()
    if _trim is not None:
        _trim(0)


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
