"""Small stable sorts for per-data-row work (numba's generic mergesort is slow on short arrays)."""
from __future__ import annotations

import numpy as np

from polars_metrics._kernels._jit import njit

_RUN = 16


@njit(cache=True, nogil=True)
def argsort_desc_stable_into(values, idx, buf):
    """Indices that sort ``values`` descending, equal values in input order, into
    caller-owned scratch (``idx``, ``buf``: at least
    ``len(values)`` long); returns a view of the one that holds the result.

    Insertion sort on runs of 16, then bottom-up merges: fast for the tens to hundreds of
    candidate pairs a data row usually has.
    """
    n = values.shape[0]
    for i in range(n):
        idx[i] = i
    for lo in range(0, n, _RUN):
        hi = min(lo + _RUN, n)
        for i in range(lo + 1, hi):
            cur = idx[i]
            v = values[cur]
            j = i - 1
            while j >= lo and values[idx[j]] < v:
                idx[j + 1] = idx[j]
                j -= 1
            idx[j + 1] = cur
    src, dst = idx, buf
    width = _RUN
    while width < n:
        for lo in range(0, n, 2 * width):
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i, j, k = lo, mid, lo
            while i < mid and j < hi:
                # take from the right run only when strictly larger: keeps ties stable
                if values[src[j]] > values[src[i]]:
                    dst[k] = src[j]
                    j += 1
                else:
                    dst[k] = src[i]
                    i += 1
                k += 1
            while i < mid:
                dst[k] = src[i]
                i += 1
                k += 1
            while j < hi:
                dst[k] = src[j]
                j += 1
                k += 1
        src, dst = dst, src
        width *= 2
    return src[:n]


@njit(cache=True, nogil=True, inline="always")
def count_below(sorted_values, v):
    """Number of entries of an ascending array strictly below ``v`` (a short linear scan)."""
    n = 0
    for x in sorted_values:
        if x < v:
            n += 1
        else:
            break
    return n


@njit(cache=True, nogil=True, inline="always")
def find_sorted(sorted_values, v):
    """Index of ``v`` in an ascending array that contains it (binary search)."""
    lo, hi = 0, sorted_values.shape[0] - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if sorted_values[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True, _nrt=False)
def argsort_desc_stable_kv(values, idx, buf, val, vbuf):
    """:func:`argsort_desc_stable_into` that sorts a copy of the values along with the indices
    (``val``, ``vbuf``: float64 scratch, at least ``len(values)`` long): comparisons read
    contiguous memory instead of ``values[idx[j]]``. The order ends in ``idx[:n]`` (returns 0)
    or ``buf[:n]`` (returns 1); the same order as :func:`argsort_desc_stable_into`. Compiled
    without reference counts (the merge passes swap arrays), so it returns no array."""
    n = values.shape[0]
    for i in range(n):
        idx[i] = i
        val[i] = values[i]
    for lo in range(0, n, _RUN):
        hi = min(lo + _RUN, n)
        for i in range(lo + 1, hi):
            cur = idx[i]
            v = val[i]
            j = i - 1
            while j >= lo and val[j] < v:
                idx[j + 1] = idx[j]
                val[j + 1] = val[j]
                j -= 1
            idx[j + 1] = cur
            val[j + 1] = v
    src, dst = idx, buf
    vsrc, vdst = val, vbuf
    in_buf = 0  # which array ``src`` is
    width = _RUN
    while width < n:
        for lo in range(0, n, 2 * width):
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i, j, k = lo, mid, lo
            while i < mid and j < hi:
                # take from the right run only when strictly larger: keeps ties stable.
                # Selects, not branches: which run gives is unpredictable (IoUs)
                vi, vj = vsrc[i], vsrc[j]
                right = vj > vi
                dst[k] = src[j] if right else src[i]
                vdst[k] = vj if right else vi
                j += right
                i += 1 - right
                k += 1
            while i < mid:
                dst[k] = src[i]
                vdst[k] = vsrc[i]
                i += 1
                k += 1
            while j < hi:
                dst[k] = src[j]
                vdst[k] = vsrc[j]
                j += 1
                k += 1
        src, dst = dst, src
        vsrc, vdst = vdst, vsrc
        in_buf = 1 - in_buf
        width *= 2
    return in_buf


@njit(cache=True, nogil=True)
def count_at_or_below(sorted_values, values):
    """out[i] = number of entries of an ascending array that are <= values[i] (int32):
    ``np.searchsorted(sorted_values, values, side="right")`` for non-NaN values, in one pass
    over ``values`` (numpy's search per value is several times slower for short arrays)."""
    n = values.shape[0]
    out = np.empty(n, dtype=np.int32)
    m = sorted_values.shape[0]
    for i in range(n):
        v = values[i]
        j = 0
        for q in range(m):  # no early exit: branch-free, several times faster
            j += sorted_values[q] <= v
        out[i] = j if v == v else m  # NaN sorts last, as in numpy
    return out


@njit(cache=True, nogil=True)
def first_descent(values):
    """The first index ``i`` with ``values[i] <= values[i - 1]``; -1 when the values increase
    strictly (so they are distinct)."""
    for i in range(1, values.shape[0]):
        if values[i] <= values[i - 1]:
            return i
    return -1
