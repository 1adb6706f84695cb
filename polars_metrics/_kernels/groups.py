"""Small per-data-row bookkeeping kernels."""
from __future__ import annotations

import numpy as np

from polars_metrics._kernels._jit import njit


@njit(cache=True, nogil=True)
def compact_events(ev_off, ev_n, ev_pair, out_off, out_c, out_pair, r0, r1):
    """Gather the used event slots of rows ``[r0, r1)`` (row-major, then confidence index)
    into dense arrays (the row of an event is its ground truth's row)."""
    n_conf = ev_n.shape[1]
    for r in range(r0, r1):
        cap = (ev_off[r + 1] - ev_off[r]) // n_conf if n_conf > 0 else 0
        o = out_off[r]
        for c in range(n_conf):
            src = ev_off[r] + c * cap
            for i in range(ev_n[r, c]):
                out_c[o] = c
                out_pair[o] = ev_pair[src + i]
                o += 1


@njit(cache=True, nogil=True, _nrt=False)
def kept_side(keep, row, feat, npass, idx, feat_out, npass_out, counts):
    """One pass over a table's annotations that keeps those with ``keep`` set: their positions
    (``idx``), feature codes and — when ``npass`` has entries — confidence-threshold counts,
    packed in input order, and ``counts[r]`` += the kept annotations of data row ``row[i]``
    (>= 0 for every kept one). Returns 1 when the kept annotations' data rows never decrease
    (the kept table is in data-row order), else 0. Compiled without reference counts
    (``_nrt=False``): it allocates nothing and returns a number."""
    with_npass = npass.shape[0] > 0
    ascending = 1
    last = -1
    j = 0
    for i in range(keep.shape[0]):
        if keep[i]:
            r = row[i]
            if r < last:
                ascending = 0
            last = r
            counts[r] += 1
            idx[j] = i
            feat_out[j] = feat[i]
            if with_npass:
                npass_out[j] = npass[i]
            j += 1
    return ascending


@njit(cache=True, nogil=True)
def stable_group_order(codes, n_groups):
    """Positions that sort ``codes`` (integers in [0, n_groups)) stably: a counting sort."""
    start = np.zeros(n_groups + 1, dtype=np.int64)
    for c in codes:
        start[c + 1] += 1
    for g in range(n_groups):
        start[g + 1] += start[g]
    order = np.empty(codes.shape[0], dtype=np.int64)
    for i in range(codes.shape[0]):
        c = codes[i]
        order[start[c]] = i
        start[c] += 1
    return order


@njit(cache=True, nogil=True)
def compact_values(ev_off, iv_n, iv_rf, iv_val, out_off, out_c, out_rf, out_val, r0, r1):
    """:func:`compact_events` for the sparse IoU-metric values (an index and a float each)."""
    n_conf = iv_n.shape[1]
    for r in range(r0, r1):
        cap = (ev_off[r + 1] - ev_off[r]) // n_conf if n_conf > 0 else 0
        o = out_off[r]
        for c in range(n_conf):
            src = ev_off[r] + c * cap
            for i in range(iv_n[r, c]):
                out_c[o] = c
                out_rf[o] = iv_rf[src + i]
                out_val[o] = iv_val[src + i]
                o += 1


@njit(cache=True, nogil=True)
def row_feature_counts(gt_off, gt_feat, pd_off, pd_feat, n_feat, counts, r0, r1):
    """counts[r]: the distinct feature codes among data row r's annotations (both sides), for
    rows ``r0 <= r < r1``; annotations of a row are ``*_off[r]:*_off[r + 1]``."""
    seen = np.full(max(n_feat, 1), -1, dtype=np.int64)  # the last row a code was seen on
    for r in range(r0, r1):
        n = 0
        for off, feat in ((gt_off, gt_feat), (pd_off, pd_feat)):
            for i in range(off[r], off[r + 1]):
                if seen[feat[i]] != r:
                    seen[feat[i]] = r
                    n += 1
        counts[r] = n


@njit(cache=True, nogil=True)
def row_feature_fill(gt_off, gt_feat, pd_off, pd_feat, n_feat, rf_off, rf_feat, r0, r1):
    """rf_feat[rf_off[r]:rf_off[r + 1]]: data row r's distinct feature codes, ascending (the
    slots :func:`row_feature_counts` counted), for rows ``r0 <= r < r1``."""
    seen = np.full(max(n_feat, 1), -1, dtype=np.int64)
    for r in range(r0, r1):
        o = rf_off[r]
        n = 0
        for off, feat in ((gt_off, gt_feat), (pd_off, pd_feat)):
            for i in range(off[r], off[r + 1]):
                f = feat[i]
                if seen[f] != r:
                    seen[f] = r
                    rf_feat[o + n] = f  # in order of first appearance
                    n += 1
        if n * n > 2 * n_feat:  # many of the codes: read them off in order
            n = 0
            for f in range(n_feat):
                if seen[f] == r:
                    rf_feat[o + n] = f
                    n += 1
        else:  # few: an insertion sort of the row's codes
            for j in range(1, n):
                f = rf_feat[o + j]
                a = o + j
                while a > o and rf_feat[a - 1] > f:
                    rf_feat[a] = rf_feat[a - 1]
                    a -= 1
                rf_feat[a] = f
