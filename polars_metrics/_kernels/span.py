"""Span IoU kernels: half-open character ranges [start, end) with a message code."""
from __future__ import annotations

import numpy as np

from polars_metrics._kernels._jit import njit, prange


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


@njit(cache=True, nogil=True, parallel=True)
def count_span_pairs(gs, ge, gm, gt_off, ps, pe, pm, pd_off):
    n_rows = gt_off.shape[0] - 1
    counts = np.zeros(n_rows, np.int64)
    for r in prange(n_rows):
        c = 0
        for g in range(gt_off[r], gt_off[r + 1]):
            a, b, m = gs[g], ge[g], gm[g]
            for p in range(pd_off[r], pd_off[r + 1]):
                if _hit(a, b, m, ps[p], pe[p], pm[p]):
                    c += 1
        counts[r] = c
    return counts


@njit(cache=True, nogil=True, parallel=True)
def fill_span_pairs(gs, ge, gm, gt_off, ps, pe, pm, pd_off, pair_off, out_gt, out_pd, out_iou):
    n_rows = gt_off.shape[0] - 1
    for r in prange(n_rows):
        k = pair_off[r]
        for g in range(gt_off[r], gt_off[r + 1]):
            a, b, m = gs[g], ge[g], gm[g]
            for p in range(pd_off[r], pd_off[r + 1]):
                if _hit(a, b, m, ps[p], pe[p], pm[p]):
                    out_gt[k] = g
                    out_pd[k] = p
                    out_iou[k] = span_iou_one(a, b, m, ps[p], pe[p], pm[p])
                    k += 1


@njit(cache=True, nogil=True, parallel=True)
def span_iou_aligned(s0, e0, m0, s1, e1, m1):
    n = s0.shape[0]
    out = np.empty(n, np.float64)
    for i in prange(n):
        out[i] = span_iou_one(s0[i], e0[i], m0[i], s1[i], e1[i], m1[i])
    return out


def span_pairs(gs, ge, gm, gt_off, ps, pe, pm, pd_off):
    """All (gt, pd) span pairs with IoU > 0 inside each data row, gt-major within a row.

    Arrays are int64 in data-row order (``*m`` = message codes); offsets are CSR over rows.
    """
    counts = count_span_pairs(gs, ge, gm, gt_off, ps, pe, pm, pd_off)
    pair_off = np.zeros(counts.shape[0] + 1, np.int64)
    np.cumsum(counts, out=pair_off[1:])
    n = int(pair_off[-1])
    out_gt = np.empty(n, np.int64)
    out_pd = np.empty(n, np.int64)
    out_iou = np.empty(n, np.float64)
    fill_span_pairs(gs, ge, gm, gt_off, ps, pe, pm, pd_off, pair_off, out_gt, out_pd, out_iou)
    return pair_off, out_gt, out_pd, out_iou
