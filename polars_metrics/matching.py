"""Pairs → matches: the greedy walks of SPEC §5 for every confidence threshold.

The kernel emits the match events of the IoU-threshold-0 walk at each confidence threshold
(the prefix property gives every IoU threshold from them), the per-(data row, feature)
quantities that the cube needs, and the data-row table's per-row aggregates.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from polars_metrics import _arrays
from polars_metrics._kernels.aot import kernel
from polars_metrics._parallel import run_ranges
from polars_metrics.pairs import Pairs
from polars_metrics.prepare import Prepared
from polars_metrics.profiles import Profile


@dataclass(frozen=True)
class Matches:
    # match events (matched pairs of the t=0 walk), ordered by data row then confidence index
    ev_c: np.ndarray        # int32 confidence index
    ev_gt: np.ndarray       # int32 positions in prep.gt / prep.pd (data-row order)
    ev_pd: np.ndarray
    ev_iou: np.ndarray
    ev_free: np.ndarray     # bool: a match at every IoU threshold (classification pairs)
    ev_bin: np.ndarray      # int32: the event is a match at IoU index t iff t < ev_bin
    # per (data row, feature present on the row): CSR over rows
    rf_off: np.ndarray
    rf_feat: np.ndarray     # int32 feature code
    rf_ngt: np.ndarray      # int32 ground truths
    rf_until: np.ndarray    # int32: the IoU metric of the (row, feature) is defined at c < rf_until
    # its nonzero values, ordered by data row, then c, then feature (zeros are not stored);
    # iv_off: CSR offsets of the values over data rows
    iv_off: np.ndarray
    iv_c: np.ndarray        # int32
    iv_rf: np.ndarray       # int32
    iv_val: np.ndarray
    npass: np.ndarray       # per prediction, the confidence thresholds it passes (as matched)
    # per data row, stored metric-major so each metric is one contiguous column (zero-copy)
    row_counts: np.ndarray  # (3, n_rows, C, T): tp, fp, fn
    row_means: np.ndarray   # (3, n_rows, C, T): mean precision, recall, f1 (NaN = undefined)
    row_iou: np.ndarray     # (n_rows, C): mean IoU metric (NaN = undefined)
    gt_row: np.ndarray      # the data row of each ground truth (prep.gt.row, not a copy)

    @property
    def ev_row(self) -> np.ndarray:
        """The data row of each event (its ground truth's; not stored)."""
        return self.gt_row[self.ev_gt]

    @property
    def rf_row(self) -> np.ndarray:
        return np.repeat(np.arange(self.rf_off.shape[0] - 1), np.diff(self.rf_off))

    def rf_iou(self) -> np.ndarray:
        """(n_rf, C) IoU metric per (data row, feature) and confidence threshold; NaN where
        undefined. Built on demand from the sparse values (dense, it is the largest array of a
        run)."""
        C = self.row_iou.shape[1]
        dense = np.where(np.arange(C)[None, :] < self.rf_until[:, None], 0.0, np.nan)
        dense[self.iv_rf, self.iv_c] = self.iv_val
        return dense

    def rf_kept(self, prep: Prepared) -> np.ndarray:
        """(n_rf, C) kept predictions per (data row, feature) and confidence threshold,
        from the predictions themselves (not stored)."""
        n_rf, C = self.rf_feat.shape[0], self.row_iou.shape[1]
        F = max(len(prep.features), 1)
        rf = np.searchsorted(self.rf_row * F + self.rf_feat, prep.pd.row * F + prep.pd.feat)
        hist = np.bincount(rf * (C + 1) + self.npass, minlength=n_rf * (C + 1))
        return _arrays.count_above(hist.reshape(n_rf, C + 1))  # kept at c iff npass > c


greedy_match_by_iou = kernel("matching", "greedy_match_by_iou")
compact_events = kernel("groups", "compact_events")
compact_values = kernel("groups", "compact_values")
ROWS_PER_CHUNK = 64  # must equal _kernels.matching.ROWS_PER_CHUNK (rows sharing scratch arrays)

BITMAP_LIMIT = 1 << 26  # (rows × features) cells up to which a bitmap finds row features


def row_features(prep: Prepared, gt_feat: np.ndarray, pd_feat: np.ndarray):
    """Per data row, the sorted distinct feature codes present on either side (CSR)."""
    n_rows, n_feat = prep.n_rows, len(prep.features)
    code = np.concatenate([prep.gt.row * n_feat + gt_feat, prep.pd.row * n_feat + pd_feat])
    if n_rows * n_feat <= BITMAP_LIMIT:
        seen = np.zeros(n_rows * n_feat, dtype=bool)
        seen[code] = True
        code = np.flatnonzero(seen)
    else:
        code = np.unique(code)
    return _arrays.offsets(code // n_feat, n_rows), (code % n_feat).astype(np.int32)


def match(prep: Prepared, pairs: Pairs, profile: Profile) -> Matches:
    n_rows, n_conf, n_iou = prep.n_rows, prep.conf_thr.shape[0], prep.iou_thr.shape[0]
    gt_feat, pd_feat, npass = prep.gt.feat, prep.pd.feat, prep.pd.npass
    if not profile.use_confidence:
        npass = np.full_like(npass, n_conf)
    rf_off, rf_feat = row_features(prep, gt_feat, pd_feat)
    n_rf = rf_feat.shape[0]

    cap = np.minimum(np.diff(prep.gt.off), np.diff(prep.pd.off)) * n_conf
    ev_off = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(cap, out=ev_off[1:])
    n_cap = int(ev_off[-1])
    ev_n = np.zeros((n_rows, n_conf), dtype=np.int64)
    ev_pair = np.empty(n_cap, dtype=np.int64)
    rf_ngt = np.zeros(n_rf, dtype=np.int32)
    rf_until = np.zeros(n_rf, dtype=np.int32)
    iv_n = np.zeros((n_rows, n_conf), dtype=np.int64)
    iv_rf = np.empty(n_cap, dtype=np.int32)
    iv_val = np.empty(n_cap, dtype=np.float64)
    # the kernel writes every cell of these
    row_counts = np.empty((3, n_rows, n_conf, n_iou), dtype=np.int64)
    row_means = np.empty((3, n_rows, n_conf, n_iou), dtype=np.float64)
    row_iou = np.empty((n_rows, n_conf), dtype=np.float64)
    # work per chunk of rows: its pairs, plus its annotations (rows without pairs still count)
    chunk_rows = np.minimum(np.arange(0, n_rows + ROWS_PER_CHUNK, ROWS_PER_CHUNK), n_rows)
    chunk_work = pairs.off[chunk_rows] + prep.gt.off[chunk_rows] + prep.pd.off[chunk_rows]
    run_ranges(greedy_match_by_iou, (
        prep.gt.off, prep.pd.off, gt_feat, pd_feat, npass,
        pairs.off, pairs.gt, pairs.pd, pairs.iou, pairs.always,
        prep.iou_thr, n_conf, profile.class_aware,
        rf_off, rf_feat, ev_off,
        ev_n, ev_pair,
        rf_ngt, rf_until, iv_n, iv_rf, iv_val,
        row_counts, row_means, row_iou,
    ), chunk_work)
    out_off = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(ev_n.sum(axis=1), out=out_off[1:])
    n_ev = int(out_off[-1])
    ev_c, ev_k = np.empty(n_ev, np.int32), np.empty(n_ev, np.int64)
    run_ranges(compact_events, (ev_off, ev_n, ev_pair, out_off, ev_c, ev_k), out_off)
    del ev_pair
    iv_off = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(iv_n.sum(axis=1), out=iv_off[1:])
    n_iv = int(iv_off[-1])
    iv_c, iv_rf_out = np.empty(n_iv, np.int32), np.empty(n_iv, np.int32)
    iv_val_out = np.empty(n_iv, np.float64)
    run_ranges(compact_values, (ev_off, iv_n, iv_rf, iv_val, iv_off, iv_c, iv_rf_out, iv_val_out),
               iv_off)
    ev_iou = pairs.iou[ev_k]
    ev_free = pairs.always[ev_k]
    ev_bin = np.searchsorted(prep.iou_thr, ev_iou).astype(np.int32)
    ev_bin[ev_free] = n_iou
    return Matches(ev_c, pairs.gt[ev_k].astype(np.int32), pairs.pd[ev_k].astype(np.int32),
                   ev_iou, ev_free, ev_bin,
                   rf_off, rf_feat, rf_ngt, rf_until, iv_off, iv_c, iv_rf_out, iv_val_out, npass,
                   row_counts, row_means, row_iou, prep.gt.row)
