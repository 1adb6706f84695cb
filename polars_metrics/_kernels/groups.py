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
