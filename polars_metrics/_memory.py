"""Where an evaluation's arrays get their memory, and when it goes back to the system.

The figures are from this project's 2-core VM, where a first touch of a 4 KB page costs about
1.8 us (filling 100 MB of fresh pages: ~47 ms). Elsewhere than glibc on Linux only the huge-page
switch applies.

**Huge pages.** numpy asks the kernel for transparent huge pages on every array of 4 MB or more
(``madvise(MADV_HUGEPAGE)``). Where the kernel honours that request by compacting memory on the
spot (``/sys/kernel/mm/transparent_hugepage/defrag`` = ``madvise``, the default of many
distributions and cloud VMs), each first touch of such an array can stall while 2 MB of
physical memory is assembled. Measured: allocating and filling 400 MB took 10-15 s with numpy's
default (2.6-3.1 s of system time, 3,125 faults) against 1-3 s without (0.24-0.42 s of system
time). :func:`use_small_pages` turns numpy's request off when polars_metrics is imported,
unless ``NUMPY_MADVISE_HUGEPAGE`` is set (numpy's own switch: ``1`` keeps huge pages).

**glibc's thresholds.** glibc serves an allocation above its mmap threshold (128 KB at first)
with a fresh ``mmap`` and unmaps it when it is freed. After the first such free it raises the
threshold to that size (at most 32 MB) and its trim threshold to twice that, so later arrays
come from the heap and reuse freed memory. A fresh process's first evaluation runs before that
has happened: each temporary it frees goes back to the system, and the next one is faulted in
afresh. :func:`settle_heap_thresholds`, called at import, starts glibc where its own adjustment
ends (32 MB and 64 MB). Measured, interleaved: a fresh process's first 5,000-image call faulted
~5,000 fewer pages and took 8-12 ms (7%) less; a warm call 3-7% less; the peak rose ~6 MB at
5,000 images and not measurably at 20,000 or 100,000. Not done when the user set glibc's
thresholds (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, or ``GLIBC_TUNABLES``
naming them). A streamed run raises them further while its batches run (``stream._malloc``)
and comes back to these.

**The free heap.** Once freed, an evaluation's arrays stay resident as free heap space, which
the next evaluation reuses. ``malloc_trim(0)`` returns those pages (1-2 ms), but the next
evaluation then faults them in again: that made a warm 5,000-image call 8-12% slower. So
once ``pm.evaluate`` or ``pm.evaluate_coco`` has returned (:func:`gives_back_free_heap`),
:func:`release_free_heap` trims only when more than ``KEEP_FREE`` bytes of the heap are free
(glibc's ``mallinfo2``): small and medium evaluations keep their free pages for the next one
(measured with the previous result alive: +3 to +8 MB peak at 5,000 images, +23 to +34 MB at
20,000), large ones give them back (at 100,000 images an untrimmed heap raised that peak by
205 MB). :func:`release_memory` (``pm.release_memory()``) gives back everything kept for the
next evaluation: this free heap and the data-row table's spare buffers.
"""
from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

KEEP_FREE = 256 << 20  # bytes of free heap left for the next evaluation to reuse
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters
MMAP_THRESHOLD = 32 << 20  # the ceiling of glibc's own adjustment on 64-bit systems
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # what glibc pairs with it
_USER_THRESHOLDS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")  # glibc's variables
_USER_TUNABLES = ("glibc.malloc.mmap_threshold", "glibc.malloc.trim_threshold")


@dataclass(frozen=True)
class _Glibc:
    trim: Callable[[int], int]
    mallopt: Callable[[int, int], int]
    free_bytes: Callable[[], int] | None  # mallinfo2 (glibc >= 2.33)


_glibc: _Glibc | None | bool = False  # False: not looked up yet


def _lookup() -> _Glibc | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    class _Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]

    try:
        libc = ctypes.CDLL("libc.so.6")  # glibc's soname; musl has no malloc_trim
        trim, mallopt = libc.malloc_trim, libc.mallopt
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    info = getattr(libc, "mallinfo2", None)
    if info is not None:
        info.argtypes, info.restype = [], _Mallinfo2
    return _Glibc(trim, mallopt, None if info is None else (lambda: info().fordblks))


def _functions() -> _Glibc | None:
    global _glibc
    if _glibc is False:
        _glibc = _lookup()
    return _glibc


def free_heap_bytes() -> int | None:
    """Bytes in glibc's free heap chunks (all arenas), None elsewhere than glibc >= 2.33."""
    glibc = _functions()
    return None if glibc is None or glibc.free_bytes is None else glibc.free_bytes()


def release_free_heap(keep: int | None = None) -> bool:
    """``malloc_trim(0)`` when more than ``keep`` bytes (default ``KEEP_FREE``) of the heap are
    free (always, where glibc cannot tell), see the module docstring; returns whether it
    trimmed.

    >>> release_free_heap(keep=0) == (_functions() is not None)
    True
    """
    glibc = _functions()
    if glibc is None:
        return False
    free = free_heap_bytes()
    if free is not None and free <= (KEEP_FREE if keep is None else keep):
        return False
    glibc.trim(0)
    return True


def gives_back_free_heap(function: Callable) -> Callable:
    """Wrap an entry point so that :func:`release_free_heap` runs once the call has returned:
    its locals (input tables read from paths, partial results) are freed by then, so the
    budget sees all the heap the call freed.

    >>> @gives_back_free_heap
    ... def total(values):
    ...     return sum(values)
    >>> total([1, 2])
    3
    """
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        result = function(*args, **kwargs)
        release_free_heap()
        return result

    return wrapper


def release_memory() -> int | None:
    """Give back the memory polars_metrics keeps between evaluations for the next one to reuse:
    the data-row table's spare buffers (up to 1 GB, ``polars_metrics._spare``) and glibc's
    free heap (up to ``KEEP_FREE`` after an evaluation). Results still referenced keep their
    memory. Returns the resident bytes the process gave back (None where Linux cannot say).

    Examples
    --------
    >>> import polars_metrics as pm
    >>> _ = pm.release_memory()  # e.g. after the last evaluation of a notebook session
    """
    import gc

    from polars_metrics._spare import release_spares

    before = _resident_bytes()
    gc.collect()  # results in reference cycles give their arrays (and spares) back first
    release_spares()
    release_free_heap(keep=0)
    after = _resident_bytes()
    return None if before is None or after is None else max(0, before - after)


def _resident_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError, IndexError):
        return None


def user_set_thresholds() -> bool:
    """Whether the user chose glibc's mmap / trim thresholds (environment variables)."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return (any(name in os.environ for name in _USER_THRESHOLDS)
            or any(f"{name}=" in tunables for name in _USER_TUNABLES))


def set_heap_thresholds(mmap_threshold: int, trim_threshold: int) -> bool:
    """Set glibc's mmap and trim thresholds, unless the user chose them; returns whether set."""
    glibc = _functions()
    if glibc is None or user_set_thresholds():
        return False
    glibc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)
    glibc.mallopt(M_TRIM_THRESHOLD, trim_threshold)
    return True


def settle_heap_thresholds() -> bool:
    """Start glibc's thresholds where its own adjustment ends (see the module docstring);
    returns whether they were set.

    >>> settle_heap_thresholds() == (_functions() is not None and not user_set_thresholds())
    True
    """
    return set_heap_thresholds(MMAP_THRESHOLD, TRIM_THRESHOLD)


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
