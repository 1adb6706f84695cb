"""Accumulation kernels for the additive count tables (see ``polars_metrics.cube``)."""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def accumulate_rectangles(inv, c_lo, c_hi, t_lo, t_hi, n_keys, n_conf, n_iou):
    """out[k, c, t] = number of rectangles i with inv[i] == k covering cell (c, t).

    Rectangle i covers [c_lo[i], c_hi[i]) × [t_lo[i], t_hi[i]). A 2-D difference array takes
    four corner increments per rectangle; a 2-D prefix sum turns it into counts.
    """
    diff = np.zeros((n_keys, n_conf + 1, n_iou + 1), dtype=np.int64)
    for i in range(inv.shape[0]):
        k = inv[i]
        diff[k, c_lo[i], t_lo[i]] += 1
        diff[k, c_lo[i], t_hi[i]] -= 1
        diff[k, c_hi[i], t_lo[i]] -= 1
        diff[k, c_hi[i], t_hi[i]] += 1
    out = np.zeros((n_keys, n_conf, n_iou), dtype=np.int64)
    for k in range(n_keys):
        for c in range(n_conf):
            row = 0
            for t in range(n_iou):
                row += diff[k, c, t]
                out[k, c, t] = row + (out[k, c - 1, t] if c > 0 else 0)
    return out


@njit(cache=True, nogil=True)
def slice_feature_sums(rf_slice, rf_feat, rf_ngt, rf_kept, rf_iou_sum, n_slices, n_feat):
    """Sum per-(data row, feature) quantities into (slice, confidence index, feature) cells.

    Returns kept predictions, Σ per-row IoU-metric values and the number of such values
    (a (row, feature) has a value at c when it has a ground truth or a kept prediction).
    """
    n_conf = rf_kept.shape[1]
    kept = np.zeros((n_slices, n_conf, n_feat), dtype=np.int64)
    iou_sum = np.zeros((n_slices, n_conf, n_feat), dtype=np.float64)
    iou_rows = np.zeros((n_slices, n_conf, n_feat), dtype=np.int64)
    for i in range(rf_feat.shape[0]):
        s = rf_slice[i]
        f = rf_feat[i]
        for c in range(n_conf):
            kept[s, c, f] += rf_kept[i, c]
            denom = max(rf_ngt[i], rf_kept[i, c])
            if denom > 0:
                iou_sum[s, c, f] += rf_iou_sum[i, c] / denom
                iou_rows[s, c, f] += 1
    return kept, iou_sum, iou_rows
