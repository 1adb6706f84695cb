"""Spare buffers: a large array made again on every call, reused once nothing references it.

The data-row table's counts and means (48 bytes per data row and threshold cell: 116 MB at
20,000 images, 580 MB at 100,000) are built on every read of ``data_rows``, at the end of an
evaluation. Memory a process gave back and touches again costs far more than memory it reuses:
fresh pages are zeroed by the kernel, and in a VM whose guest reports free pages to the host
they are backed again by the host (about 1 s per 100 MB measured on the benchmark machine, once
freed memory has been idle for a few seconds — the time of one large evaluation). Reusing the
previous table's memory once its frame is gone avoids that.

Why only the table: it is the last large allocation of a call and the largest, so a spare that
waits for it through the next call's earlier stages stays below the peak the table itself sets.
(Spares for the pairs and for a chunked box column's join were measured and dropped: they wait
through the stage that sets the peak, +50 MB at 20,000 images.) A process keeps at most
``SPARE_BYTES`` of spares after its results are gone; :func:`release_spares` lets them go.
"""
from __future__ import annotations

import math
import sys
import threading

import numpy as np

# spares kept at most, all names together (0: none); release_spares() lets them go
SPARE_BYTES = 1 << 30
_spares: dict[str, np.ndarray] = {}
_spares_lock = threading.Lock()


def _references(held: dict[str, np.ndarray], name: str) -> int:
    return sys.getrefcount(held[name])


# what _references counts for an array only the dict holds (calibrated the same way)
_UNUSED = _references({"probe": np.empty(0)}, "probe")


def reserve(name: str, shape: tuple[int, ...], dtype) -> None:
    """Make sure a free spare of this size exists now: a run that will build the data-row
    table reserves it in its match stage, right after the pairs stage freed more than it. The
    walk keeps its per-row slots in it (:func:`borrow`) and the table's arrays are built into
    it on a pool thread while the cube stage runs, so its pages are first touched there, off
    the calling thread, rather than at the end of the call. Nothing is done when a free spare
    fits already (a later call of a loop).

    >>> reserve("doc_reserved", (4, 2), np.int64)
    >>> _spares["doc_reserved"].size
    8
    """
    n = math.prod(shape)
    dtype = np.dtype(dtype)
    with _spares_lock:
        if _fits(name, n, dtype):
            return
    spare_buffer(name, shape, dtype)


def _fits(name: str, n: int, dtype: np.dtype) -> bool:
    if name not in _spares or _references(_spares, name) != _UNUSED:
        return False
    spare = _spares[name]
    return spare.dtype == dtype and n <= spare.size <= 4 * n + 4096


def spare_buffer(name: str, shape: tuple[int, ...], dtype, keep_below: int | None = None
                 ) -> np.ndarray:
    """An uninitialized array, in the memory of the last one handed out under ``name`` when
    nothing references that one any more (its frame or result was dropped), else a new one
    (kept for the next call while all spares together stay within ``SPARE_BYTES``).

    A spare is reused only when its reference count shows that no array, view or frame column
    uses it any more; at most one is kept per name (a new one replaces it when it is in use,
    too small, of another dtype, or more than 4× too large). With ``keep_below``, a new array
    of that many bytes or more is not kept: it is handed out as a plain array.

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
        if _fits(name, n, dtype):
            return _spares[name][:n].reshape(shape)
        _spares.pop(name, None)
        fresh = np.empty(n, dtype=dtype)
        small = keep_below is None or fresh.nbytes < keep_below
        if small and fresh.nbytes + sum(a.nbytes for a in _spares.values()) <= SPARE_BYTES:
            _spares[name] = fresh
        return fresh.reshape(shape)


def borrow(name: str, nbytes: int) -> np.ndarray | None:
    """The memory of the free spare ``name`` as ``nbytes`` bytes of scratch (a uint8 view), or
    None when it is in use, missing or too small. The view holds the spare: nothing else gets
    it until the view and every array carved from it are gone, so scratch that dies within a
    stage reuses the pages the spare keeps resident anyway. The match stage's walk keeps its
    per-row slots in the data-row table's spares, idle until the table is built (at 100,000
    images, 150 MB less peak than fresh slots).

    >>> a = spare_buffer("doc_borrow", (1000,), np.float64)
    >>> borrow("doc_borrow", 800) is None  # ``a`` holds it
    True
    >>> del a  # now only the pool keeps it
    >>> scratch = borrow("doc_borrow", 800)
    >>> scratch.nbytes, borrow("doc_borrow", 8) is None  # in use while the scratch lives
    (800, True)
    >>> del scratch
    >>> borrow("doc_borrow", 8001) is None  # too small
    True
    """
    with _spares_lock:
        if name not in _spares or _references(_spares, name) != _UNUSED:
            return None
        spare = _spares[name]
        if spare.nbytes < nbytes:
            return None
        return spare.reshape(-1).view(np.uint8)[:nbytes]


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
