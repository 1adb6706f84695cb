"""Accumulation kernels for the additive count tables (see ``polars_metrics.cube``)."""
from __future__ import annotations

import numpy as np

from polars_metrics._kernels._jit import njit
from polars_metrics._kernels.matching import pair_bin


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
def slice_feature_sums(iv_off, iv_c, iv_rf, iv_val, rf_feat, row_slice, n_slices, n_conf, n_feat):
    """Sum the per-(data row, feature) IoU-metric values into (slice, confidence index,
    feature) cells, in data-row order (values of 0 are not stored: adding 0.0 changes no sum).
    ``iv_off``: CSR offsets of the values over data rows."""
    iou_sum = np.zeros((n_slices, n_conf, n_feat), dtype=np.float64)
    for r in range(iv_off.shape[0] - 1):
        s = row_slice[r]
        for i in range(iv_off[r], iv_off[r + 1]):
            iou_sum[s, iv_c[i], rf_feat[iv_rf[i]]] += iv_val[i]
    return iou_sum


@njit(cache=True, nogil=True)
def emit_confusion(key_slice, key_gt, key_pd, matched, gt_none, pd_none, slice_start):
    """The nonzero confusion cells, already in (slice, c, t, gt, pd) order, None last.

    ``key_*`` : the matched (slice, gt, pd) keys, sorted; ``slice_start[s]`` : the first key of
    slice s (length S + 1). ``matched`` (K, C, T); ``gt_none`` / ``pd_none`` (S, C, T, F): the
    [gt, None] and [None, pd] cells. Feature F stands for None in the output.
    """
    S, C, T, F = gt_none.shape
    n = 0
    for pass_ in range(2):
        if pass_ == 1:
            out_s = np.empty(n, dtype=np.int64)
            out_c = np.empty(n, dtype=np.int64)
            out_t = np.empty(n, dtype=np.int64)
            out_g = np.empty(n, dtype=np.int64)
            out_p = np.empty(n, dtype=np.int64)
            out_n = np.empty(n, dtype=np.int64)
        i = 0
        for s in range(S):
            for c in range(C):
                for t in range(T):
                    k = slice_start[s]
                    for g in range(F + 1):
                        # matched cells [g, p] (keys sorted by gt then pd), then [g, None]
                        while k < slice_start[s + 1] and key_gt[k] == g:
                            v = matched[k, c, t]
                            if v != 0:
                                if pass_ == 1:
                                    out_s[i], out_c[i], out_t[i] = s, c, t
                                    out_g[i], out_p[i], out_n[i] = g, key_pd[k], v
                                i += 1
                            k += 1
                        if g < F:
                            v = gt_none[s, c, t, g]
                            if v != 0:
                                if pass_ == 1:
                                    out_s[i], out_c[i], out_t[i] = s, c, t
                                    out_g[i], out_p[i], out_n[i] = g, F, v
                                i += 1
                    for p in range(F):
                        v = pd_none[s, c, t, p]
                        if v != 0:
                            if pass_ == 1:
                                out_s[i], out_c[i], out_t[i] = s, c, t
                                out_g[i], out_p[i], out_n[i] = F, p, v
                            i += 1
        n = i
    return out_s, out_c, out_t, out_g, out_p, out_n


@njit(cache=True, nogil=True)
def sequential_segment_sums(values, starts):
    """Sum each segment ``values[starts[i]:starts[i+1]]`` left to right, from 0.0 — the order
    :func:`slice_feature_sums` adds in, so merged partial results reproduce it bit for bit."""
    out = np.zeros(starts.shape[0] - 1, dtype=np.float64)
    for i in range(out.shape[0]):
        acc = 0.0
        for j in range(starts[i], starts[i + 1]):
            acc += values[j]
        out[i] = acc
    return out


@njit(cache=True, nogil=True)
def slice_histogram(off, feat, bins, row_slice, n_slices, n_feat, n_bins):
    """hist[s, f, b]: annotations i of the data rows r of slice s = row_slice[r] (rows are the
    CSR groups of ``off``), feature f = feat[i] and bin b = bins[i] (``bins`` may be empty: then
    every annotation is in bin 0)."""
    hist = np.zeros((n_slices, n_feat, n_bins), dtype=np.int64)
    binned = bins.shape[0] > 0
    for r in range(off.shape[0] - 1):
        s = row_slice[r]
        for i in range(off[r], off[r + 1]):
            hist[s, feat[i], bins[i] if binned else 0] += 1
    return hist


@njit(cache=True, nogil=True)
def until_histogram(rf_off, rf_feat, rf_until, row_slice, n_slices, n_feat, n_bins):
    """hist[s, f, u]: (data row, feature) entries of slice s and feature f with rf_until = u."""
    hist = np.zeros((n_slices, n_feat, n_bins), dtype=np.int64)
    for r in range(rf_off.shape[0] - 1):
        s = row_slice[r]
        for i in range(rf_off[r], rf_off[r + 1]):
            hist[s, rf_feat[i], rf_until[i]] += 1
    return hist


@njit(cache=True, nogil=True)
def event_keys(ev_k, pair_gt, pair_pd, gt_row, row_slice, gt_feat, pd_feat, width):
    """The (slice, gt feature, pd feature) key of each match event (pair ``ev_k``):
    (s * W + g) * W + p."""
    key = np.empty(ev_k.shape[0], dtype=np.int64)
    for i in range(ev_k.shape[0]):
        g, p = pair_gt[ev_k[i]], pair_pd[ev_k[i]]
        key[i] = (row_slice[gt_row[g]] * width + gt_feat[g]) * width + pd_feat[p]
    return key


@njit(cache=True, nogil=True, _nrt=False)
def event_key_cells(ev_k, ev_c, pair_gt, pair_pd, gt_row, row_slice, gt_feat, pd_feat, width,
                    pair_iou, pair_free, iou_cut, bounds, present, diff, lo, hi):
    """:func:`event_keys` and :func:`accumulate_events`' differences in one pass over the events
    ``bounds[lo]:bounds[hi]``, over the whole (dense) key space: ``present[key]`` set for every
    event's key, its +1 / -1 at ``diff[key, c]``. No per-event array of keys or bins."""
    n_iou = diff.shape[2] - 1
    for i in range(bounds[lo], bounds[hi]):
        k = ev_k[i]
        g, p = pair_gt[k], pair_pd[k]
        key = (row_slice[gt_row[g]] * width + gt_feat[g]) * width + pd_feat[p]
        b = pair_bin(k, pair_iou, pair_free, iou_cut)
        present[key] = True
        diff[key, ev_c[i], 0] += 1
        diff[key, ev_c[i], min(b, n_iou)] -= 1


@njit(cache=True, nogil=True, _nrt=False)
def _event_differences(inv, ev_c, ev_k, pair_iou, pair_free, iou_cut, n_iou, diff):
    """The events' +1 / -1 into ``diff``, without reference counts (the inlined ``pair_bin``
    would count its three arrays per event)."""
    for i in range(inv.shape[0]):
        b = pair_bin(ev_k[i], pair_iou, pair_free, iou_cut)
        diff[inv[i], ev_c[i], 0] += 1
        diff[inv[i], ev_c[i], min(b, n_iou)] -= 1


@njit(cache=True, nogil=True)
def accumulate_events(inv, ev_c, ev_k, pair_iou, pair_free, iou_cut, n_keys, n_conf, n_iou):
    """:func:`accumulate_rectangles` for IoU-ordered match events, whose rectangles are one
    confidence index tall, [c, c + 1) × [0, bin) with the bin of the event's pair
    (:func:`matching.pair_bin`): a difference array along the IoU axis only."""
    diff = np.zeros((n_keys, n_conf, n_iou + 1), dtype=np.int64)
    _event_differences(inv, ev_c, ev_k, pair_iou, pair_free, iou_cut, n_iou, diff)
    out = np.empty((n_keys, n_conf, n_iou), dtype=np.int64)
    for k in range(n_keys):
        for c in range(n_conf):
            acc = 0
            for t in range(n_iou):
                acc += diff[k, c, t]
                out[k, c, t] = acc
    return out
