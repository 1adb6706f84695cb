"""Small per-data-row bookkeeping kernels."""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True, parallel=True)
def _count_row_features(gt_off, gt_feat, pd_off, pd_feat):
    n_rows = gt_off.shape[0] - 1
    counts = np.zeros(n_rows, dtype=np.int64)
    for r in prange(n_rows):
        both = np.concatenate((gt_feat[gt_off[r]:gt_off[r + 1]], pd_feat[pd_off[r]:pd_off[r + 1]]))
        counts[r] = np.unique(both).shape[0]
    return counts


@njit(cache=True, nogil=True, parallel=True)
def _fill_row_features(gt_off, gt_feat, pd_off, pd_feat, rf_off, rf_feat):
    n_rows = gt_off.shape[0] - 1
    for r in prange(n_rows):
        both = np.concatenate((gt_feat[gt_off[r]:gt_off[r + 1]], pd_feat[pd_off[r]:pd_off[r + 1]]))
        rf_feat[rf_off[r]:rf_off[r + 1]] = np.unique(both)


def row_features(gt_off, gt_feat, pd_off, pd_feat):
    """Per data row, the sorted distinct feature codes present on either side (CSR)."""
    counts = _count_row_features(gt_off, gt_feat, pd_off, pd_feat)
    rf_off = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=rf_off[1:])
    rf_feat = np.empty(int(rf_off[-1]), dtype=np.int32)
    _fill_row_features(gt_off, gt_feat, pd_off, pd_feat, rf_off, rf_feat)
    return rf_off, rf_feat


@njit(cache=True, nogil=True, parallel=True)
def compact_events(ev_off, ev_n, ev_gt, ev_pd, ev_iou, out_off, out_row, out_c, out_gt, out_pd, out_iou):
    """Gather the used event slots (row-major, then confidence index) into dense arrays."""
    n_rows, n_conf = ev_n.shape
    for r in prange(n_rows):
        cap = (ev_off[r + 1] - ev_off[r]) // n_conf if n_conf > 0 else 0
        o = out_off[r]
        for c in range(n_conf):
            src = ev_off[r] + c * cap
            for i in range(ev_n[r, c]):
                out_row[o] = r
                out_c[o] = c
                out_gt[o] = ev_gt[src + i]
                out_pd[o] = ev_pd[src + i]
                out_iou[o] = ev_iou[src + i]
                o += 1
