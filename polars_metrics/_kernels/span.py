"""Span IoU kernels: half-open character ranges [start, end) with a message code."""
from __future__ import annotations

import numpy as np

from polars_metrics._kernels._jit import njit


@njit(cache=True, nogil=True, inline="always")
def span_iou_one(s0, e0, m0, s1, e1, m1):
    """IoU of [s0, e0) and [s1, e1): 0 across messages; two empty spans at one offset → 1."""
    if m0 != m1:
        return 0.0
    union = max(e0, e1) - min(s0, s1)
    if union == 0:
        return 1.0  # both zero-length, same offset
    inter = min(e0, e1) - max(s0, s1)
    if inter <= 0:
        return 0.0
    return inter / union


@njit(cache=True, nogil=True, inline="always")
def _hit(s0, e0, m0, s1, e1, m1):
    if m0 != m1:
        return False
    return min(e0, e1) > max(s0, s1) or (s0 == e0 and s1 == e1 and s0 == s1)


@njit(cache=True, nogil=True)
def count_span_pairs(gs, ge, gm, gt_off, ps, pe, pm, pd_off, counts, lo, hi):
    """``counts[r]``: span pairs with IoU > 0 of data rows ``lo <= r < hi``."""
    for r in range(lo, hi):
        c = 0
        for g in range(gt_off[r], gt_off[r + 1]):
            a, b, m = gs[g], ge[g], gm[g]
            for p in range(pd_off[r], pd_off[r + 1]):
                if _hit(a, b, m, ps[p], pe[p], pm[p]):
                    c += 1
        counts[r] = c


@njit(cache=True, nogil=True)
def fill_span_pairs(gs, ge, gm, gt_off, ps, pe, pm, pd_off, pair_off, out_gt, out_pd, out_iou,
                    lo, hi):
    """The pairs of ``count_span_pairs`` of data rows ``lo <= r < hi``, gt-major per row."""
    for r in range(lo, hi):
        k = pair_off[r]
        for g in range(gt_off[r], gt_off[r + 1]):
            a, b, m = gs[g], ge[g], gm[g]
            for p in range(pd_off[r], pd_off[r + 1]):
                if _hit(a, b, m, ps[p], pe[p], pm[p]):
                    out_gt[k] = g
                    out_pd[k] = p
                    out_iou[k] = span_iou_one(a, b, m, ps[p], pe[p], pm[p])
                    k += 1


@njit(cache=True, nogil=True)
def span_iou_aligned(s0, e0, m0, s1, e1, m1, out, lo, hi):
    """``out[i]`` = IoU of span i of each side, for ``lo <= i < hi``."""
    for i in range(lo, hi):
        out[i] = span_iou_one(s0[i], e0[i], m0[i], s1[i], e1[i], m1[i])


def _serial(kernel, args, cum_work):
    kernel(*args, 0, cum_work.shape[0] - 1)


def span_pairs(gs, ge, gm, gt_off, ps, pe, pm, pd_off, run=_serial):
    """All (gt, pd) span pairs with IoU > 0 inside each data row, gt-major within a row.

    Arrays are int64 in data-row order (``*m`` = message codes); offsets are CSR over rows.
    ``run(kernel, args, cum_work)`` calls a row-range kernel over every row: serially here,
    on threads with ``polars_metrics._parallel.run_ranges``.
    """
    n_rows = gt_off.shape[0] - 1
    grid = np.zeros(n_rows + 1, np.int64)
    np.cumsum((gt_off[1:] - gt_off[:-1]) * (pd_off[1:] - pd_off[:-1]), out=grid[1:])
    counts = np.zeros(n_rows, np.int64)
    run(count_span_pairs, (gs, ge, gm, gt_off, ps, pe, pm, pd_off, counts), grid)
    pair_off = np.zeros(counts.shape[0] + 1, np.int64)
    np.cumsum(counts, out=pair_off[1:])
    n = int(pair_off[-1])
    out_gt = np.empty(n, np.int64)
    out_pd = np.empty(n, np.int64)
    out_iou = np.empty(n, np.float64)
    run(fill_span_pairs, (gs, ge, gm, gt_off, ps, pe, pm, pd_off, pair_off, out_gt, out_pd,
                          out_iou), grid)
    return pair_off, out_gt, out_pd, out_iou
