"""Mask IoU between data-row groups of COCO RLE masks (the pairs stage of the ``mask`` kind).

Builds on ``_kernels.rle`` (same CSR layout: uint32 ``counts``, int64 ``offsets``, column-major
runs starting with a run of 0s). The intersection of two masks only needs their foreground runs
inside the overlap of their foreground column ranges: a binary search on the run start
positions jumps there and a merge of foreground intervals counts the common pixels; the union
is area_a + area_b - intersection. Integer counts, so the IoU is the same double pycocotools'
``maskUtils.iou`` returns.
"""
from __future__ import annotations

import numpy as np

from polars_metrics._kernels._jit import njit


@njit(cache=True, nogil=True)
def mask_stats(counts, offsets, heights, starts, col0, col1, area, lo, hi):
    """One pass over the runs of masks ``lo <= i < hi``: the pixel position where each run
    starts (``starts``, aligned with ``counts``), the foreground column range [col0, col1)
    (0, 0 when empty) and the area. Masks are independent: callers run ranges on threads."""
    for i in range(lo, hi):
        pos = 0
        first = -1
        last = -1
        a = 0
        for j in range(offsets[i], offsets[i + 1]):
            starts[j] = pos
            c = np.int64(counts[j])
            if (j - offsets[i]) % 2 == 1 and c > 0:
                if first < 0:
                    first = pos
                last = pos + c
                a += c
            pos += c
        area[i] = a
        col0[i] = 0
        col1[i] = 0
        h = heights[i]
        if a > 0 and h > 0:
            col0[i] = first // h
            col1[i] = (last - 1) // h + 1


@njit(cache=True, nogil=True)
def _first_fg(starts, counts, lo_run, hi_run, pos):
    """Index of the first foreground run (odd index relative to ``lo_run``) ending after ``pos``."""
    lo = lo_run
    hi = hi_run
    while lo < hi:  # last run with start <= pos
        mid = (lo + hi) // 2
        if starts[mid] <= pos:
            lo = mid + 1
        else:
            hi = mid
    j = lo - 1 if lo > lo_run else lo_run
    if (j - lo_run) % 2 == 0:
        j += 1
    elif starts[j] + counts[j] <= pos:
        j += 2
    return j


@njit(cache=True, nogil=True)
def intersection(a_counts, a_starts, a0, a1, b_counts, b_starts, b0, b1, lo, hi):
    """Common foreground pixels of two masks within pixel positions [lo, hi)."""
    i = _first_fg(a_starts, a_counts, a0, a1, lo)
    j = _first_fg(b_starts, b_counts, b0, b1, lo)
    inter = 0
    while i < a1 and j < b1:
        s_a = a_starts[i]
        s_b = b_starts[j]
        if s_a >= hi or s_b >= hi:
            break
        e_a = s_a + a_counts[i]
        e_b = s_b + b_counts[j]
        w = min(e_a, e_b) - max(s_a, s_b)
        if w > 0:
            inter += w
        if e_a <= e_b:
            i += 2
        else:
            j += 2
    return inter


@njit(cache=True, nogil=True, inline="always")
def _pair_iou(g, p, gc, gs, goff, gcol0, gcol1, garea, gh, pc, ps, poff, pcol0, pcol1, parea):
    """IoU of gt mask g and pd mask p (same size): intersection within their common columns."""
    if garea[g] == 0 or parea[p] == 0:
        return 0.0
    c0 = max(gcol0[g], pcol0[p])
    c1 = min(gcol1[g], pcol1[p])
    if c1 <= c0:
        return 0.0
    h = gh[g]
    inter = intersection(gc, gs, goff[g], goff[g + 1], pc, ps, poff[p], poff[p + 1], c0 * h, c1 * h)
    if inter == 0:
        return 0.0
    union = garea[g] + parea[p] - inter
    return np.float64(inter) / np.float64(union)


@njit(cache=True, nogil=True)
def mask_pair_ious(gc, gs, goff, gcol0, gcol1, garea, gh, gt_off,
                   pc, ps, poff, pcol0, pcol1, parea, pd_off, sizes, out, lo, hi):
    """Dense gt × pd IoU blocks of data rows ``lo <= r < hi``, gt-major, written at
    ``out[sizes[r]:sizes[r + 1]]`` (``sizes``: the blocks' offsets). Rows are independent:
    callers run ranges of them on threads."""
    for r in range(lo, hi):
        k = sizes[r]
        for g in range(gt_off[r], gt_off[r + 1]):
            for p in range(pd_off[r], pd_off[r + 1]):
                out[k] = _pair_iou(g, p, gc, gs, goff, gcol0, gcol1, garea, gh,
                                   pc, ps, poff, pcol0, pcol1, parea)
                k += 1


@njit(cache=True, nogil=True)
def mask_iou_indexed(gc, gs, goff, gcol0, gcol1, garea, gh, pc, ps, poff, pcol0, pcol1, parea,
                     ia, ib, out, lo, hi):
    """``out[k]`` = IoU of the pair (a[ia[k]], b[ib[k]]) for ``lo <= k < hi`` (same sizes:
    the caller checks)."""
    for k in range(lo, hi):
        out[k] = _pair_iou(ia[k], ib[k], gc, gs, goff, gcol0, gcol1, garea, gh,
                           pc, ps, poff, pcol0, pcol1, parea)
