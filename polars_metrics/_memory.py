"""Give freed heap memory back to the operating system.

numpy's large temporaries come from glibc's malloc. After the first large free, glibc raises
its mmap threshold (up to 32 MB), so later arrays of an evaluation live in the heap; once
freed, they stay resident as free heap space that the next evaluation only partly reuses.
Repeated evaluations in one process (a notebook, a benchmark loop) then creep upwards in
resident memory. ``malloc_trim(0)`` returns those free pages (about 1 ms). Elsewhere than glibc
this does nothing.
"""
from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable

import numpy as np

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


# --- spare buffers: large per-call arrays reused once nothing references them ---

# spares kept at most, all names together (0: none); release_spares() lets them go
SPARE_BYTES = 1 << 30
_spares: dict[str, np.ndarray] = {}
_spares_lock = threading.Lock()


def _references(held: dict[str, np.ndarray], name: str) -> int:
    return sys.getrefcount(held[name])


# what _references counts for an array only the dict holds (calibrated the same way)
_UNUSED = _references({"probe": np.empty(0)}, "probe")


def spare_buffer(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialized array, in the memory of the last one handed out under ``name`` when
    nothing references that one any more (its frame or result was dropped), else a new one
    (kept for the next call while all spares together stay within ``SPARE_BYTES``).

    Why: the box path's largest arrays (the data-row table's counts and means, 48 bytes per data
    row and threshold cell; the pairs; a joined box column) are made again on every call, and
    memory a process gave back and touches again costs far more than memory it reuses: fresh
    pages are zeroed by the kernel, and in a VM backed again by the host (about 1 s per 100 MB
    measured on the benchmark machine). A spare is reused only when its reference count shows
    that no array, view or frame column uses it any more; at most one is kept per name (a new
    one replaces it when it is in use, too small, of another dtype, or more than 4× too large).

    >>> a = spare_buffer("doc", (2, 3), np.int64)
    >>> b = spare_buffer("doc", (2, 3), np.int64)  # ``a`` still holds the first: a new one
    >>> np.shares_memory(a, b)
    False
    >>> del a, b
    >>> c = spare_buffer("doc", (3,), np.int64)  # nothing holds the last one: reused
    >>> c.base is _spares["doc"]
    True
    """
    n = math.prod(shape)
    dtype = np.dtype(dtype)
    with _spares_lock:
        if name in _spares and _references(_spares, name) == _UNUSED:
            spare = _spares[name]
            if spare.dtype == dtype and n <= spare.size <= 4 * n + 4096:
                return spare[:n].reshape(shape)
            del spare
        _spares.pop(name, None)
        fresh = np.empty(n, dtype=dtype)
        if fresh.nbytes + sum(a.nbytes for a in _spares.values()) <= SPARE_BYTES:
            _spares[name] = fresh
        return fresh.reshape(shape)


def release_spares() -> int:
    """Drop every spare buffer (arrays still in use stay with their users); the bytes dropped.

    >>> _ = spare_buffer("doc", (1000,), np.float64)
    >>> release_spares() >= 8000
    True
    """
    with _spares_lock:
        freed = sum(a.nbytes for a in _spares.values())
        _spares.clear()
    return freed
