"""Matches → additive count tables: the per-feature cube counts and the sparse confusion cube.

Every quantity is a count (or a sum of IoUs) over data rows, so the tables are additive and a
partial result over some data rows merges with another by summation (``state.py``).

Match events are *rectangles* in the (confidence index × IoU index) grid: under IoU-ordered
matching an event found at confidence index ``c`` with ``b`` thresholds below its IoU is a
match at ``[c, c+1) × [0, b)``; under score-ordered (COCO) matching an event found at IoU index
``t`` by a detection that passes ``n`` confidence thresholds is a match at ``[0, n) × [t, t+1)``.
Rectangles are accumulated with 2-D difference arrays (four corner increments and two cumulative
sums), so no cube cell is ever visited in Python.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from polars_metrics import _arrays
from polars_metrics import schema as s
from polars_metrics._kernels.aot import kernel
from polars_metrics._memory import MMAP_THRESHOLD
from polars_metrics._parallel import even_parts, map_ranges
from polars_metrics.events import Matches, event_kernel
from polars_metrics.prepare import SLICE, Prepared
from polars_metrics.true_negatives import slice_true_negatives

accumulate_rectangles = kernel("cube", "accumulate_rectangles")
emit_confusion = kernel("cube", "emit_confusion")
slice_feature_sums = kernel("cube", "slice_feature_sums")
slice_histogram = kernel("cube", "slice_histogram")
until_histogram = kernel("cube", "until_histogram")
event_keys = kernel("cube", "event_keys")
accumulate_events = kernel("cube", "accumulate_events")
event_key_cells = kernel("cube", "event_key_cells")

DENSE_KEY_LIMIT = 1 << 22  # key spaces up to this size use a lookup table instead of np.unique
DENSE_CELL_BYTES = 16 << 20  # at most this per thread: (key, c, t) counts over the whole key space


def compress_keys(key: np.ndarray, space: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct keys, index of each key in them)."""
    if space <= DENSE_KEY_LIMIT:
        present = np.bincount(key, minlength=space) > 0
        uniq = np.flatnonzero(present)
        lut = np.zeros(space, dtype=np.int64)
        lut[uniq] = np.arange(uniq.shape[0])
        return uniq, lut[key]
    uniq, inv = np.unique(key, return_inverse=True)
    return uniq, inv


def _sum_rows(values: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """out[i] = sum of values[j] over j with index[j] == i; values (K, C, T) int64."""
    out = np.zeros((n, *values.shape[1:]), dtype=np.int64)
    order = np.argsort(index, kind="stable")
    idx, vals = index[order], values[order]
    starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]]) if idx.size else idx
    if idx.size:
        out[idx[starts]] = np.add.reduceat(vals, starts, axis=0)
    return out


def count_tables(*, n_slices: int, n_features: int, conf_thr: np.ndarray, iou_thr: np.ndarray,
                 ev_slice, ev_gt_feat, ev_pd_feat, c_lo, c_hi, t_lo, t_hi, **totals):
    """Dense per-feature counts and the sparse confusion cells from match events given as
    rectangles [c_lo, c_hi) × [t_lo, t_hi) of the (confidence × IoU) grid.

    ``totals`` are the keyword arguments of :func:`tables_from_matched`.
    """
    S, F, C, T = n_slices, n_features, conf_thr.shape[0], iou_thr.shape[0]
    W = F + 1
    key = (ev_slice.astype(np.int64) * W + ev_gt_feat) * W + ev_pd_feat
    uniq, inv = compress_keys(key, S * W * W)
    matched = accumulate_rectangles(inv, *(np.ascontiguousarray(a, dtype=np.int64)
                                           for a in (c_lo, c_hi, t_lo, t_hi)),
                                    uniq.shape[0], C, T)  # (K, C, T)
    return tables_from_matched(uniq, matched, n_slices=S, n_features=F, **totals)


def tables_from_matched(uniq: np.ndarray, matched: np.ndarray, *, n_slices: int, n_features: int,
                        gt_total: np.ndarray, pd_total: np.ndarray, present: np.ndarray,
                        iou_sum: np.ndarray, iou_rows: np.ndarray, tn: np.ndarray,
                        has_tn: np.ndarray):
    """Dense per-feature counts and the sparse confusion cells, as index arrays.

    uniq, matched : the distinct (slice, gt feature, pd feature) keys ``(s * W + g) * W + p``
        (W = F + 1, feature F = None) of the matches, sorted, and their counts (K, C, T).
    gt_total, pd_total : (S, C, T, F) ground truths / predictions counted at each cell.
    present : (S, F) features that appear in a slice (they get a complete grid in the cube).
    iou_sum, iou_rows : (S, C, F) IoU-metric numerators and the number of (row, feature) values.
    tn : (S, C, F) true negatives, for the features where ``has_tn`` (else null).
    Returns ``(counts, confusion)`` dicts of flat numpy columns; slice and feature are indices,
    with feature ``F`` standing for the None class in ``confusion``.
    """
    S, F = n_slices, n_features
    C, T = matched.shape[1], matched.shape[2]
    W = F + 1
    k_s, k_g, k_p = uniq // (W * W), (uniq // W) % W, uniq % W

    matched_gt = _sum_rows(matched, k_s * F + k_g, S * F)
    matched_pd = _sum_rows(matched, k_s * F + k_p, S * F)
    diag = k_g == k_p
    tp = _sum_rows(matched[diag], k_s[diag] * F + k_g[diag], S * F)
    tp = tp.reshape(S, F, C, T).transpose(0, 2, 3, 1)           # (S, C, T, F)
    gt_none = gt_total - matched_gt.reshape(S, F, C, T).transpose(0, 2, 3, 1)
    pd_none = pd_total - matched_pd.reshape(S, F, C, T).transpose(0, 2, 3, 1)

    # --- complete per-feature grid for the features present in each slice ---
    ps, pf = np.nonzero(present)
    n = ps.shape[0]
    cc, tt = np.meshgrid(np.arange(C), np.arange(T), indexing="ij")
    cc, tt = np.tile(cc.ravel(), n), np.tile(tt.ravel(), n)
    gs, gf = np.repeat(ps, C * T), np.repeat(pf, C * T)
    counts = {
        "slice": gs, "feature": gf, "c": cc, "t": tt,
        s.TP: tp[gs, cc, tt, gf], "gt_count": gt_total[gs, cc, tt, gf],
        "pd_count": pd_total[gs, cc, tt, gf],
        "iou_sum": iou_sum[gs, cc, gf], "iou_rows": iou_rows[gs, cc, gf],
        s.TN: np.ma.masked_array(tn[gs, cc, gf], mask=~has_tn[gf]),
    }

    # --- sparse confusion: matched cells, [gt, None] and [None, pd], emitted in
    # (slice, c, t, gt, pd) order with None last, so no sort is needed later ---
    slice_start = np.searchsorted(k_s, np.arange(S + 1)).astype(np.int64)
    cols = emit_confusion(k_s.astype(np.int64), k_g.astype(np.int64), k_p.astype(np.int64),
                          matched, np.ascontiguousarray(gt_none, dtype=np.int64),
                          np.ascontiguousarray(pd_none, dtype=np.int64), slice_start)
    confusion = dict(zip(("slice", "c", "t", "gt", "pd", s.COUNT), cols, strict=True))
    return counts, confusion


def _series(name: str, values) -> pl.Series:
    """A column from numpy; masked entries become null."""
    if isinstance(values, np.ma.MaskedArray):
        return pl.Series(name, values.filled(0)).scatter(np.flatnonzero(values.mask), None) \
            if values.mask.any() else pl.Series(name, values.data)
    return pl.Series(name, values)


def label_tables(counts: dict, confusion: dict, *, slices: pl.DataFrame, by, features,
                 conf_thr, iou_thr) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Index arrays → frames with by-values, feature names and threshold values."""
    names = pl.Series(s.FEATURE, list(features) + [None], dtype=pl.String)
    by_values = slices.select(by) if by else None

    def frame(cols: dict, feature_cols: dict, features_first: bool) -> pl.DataFrame:
        out = []
        if by_values is not None:
            out.append(by_values[cols["slice"]])
        feats = {name: names.gather(cols[src]) for name, src in feature_cols.items()}
        grid = {s.CONFIDENCE_THRESHOLD: conf_thr[cols["c"]], s.IOU_THRESHOLD: iou_thr[cols["t"]]}
        parts = {**feats, **grid} if features_first else {**grid, **feats}
        for k, v in cols.items():
            if k not in ("slice", "c", "t", "feature", "gt", "pd"):
                parts[k] = _series(k, v)
        out.append(pl.DataFrame(parts))
        return pl.concat(out, how="horizontal") if len(out) > 1 else out[0]

    counts_df = frame(counts, {s.FEATURE: "feature"}, features_first=True)
    confusion_df = frame(confusion, {s.GT_FEATURE: "gt", s.PD_FEATURE: "pd"}, features_first=False)
    return counts_df, confusion_df


def _count_above(hist: np.ndarray) -> np.ndarray:
    """(S, F, C + 1) histogram of a per-item threshold count n → (S, C, F) items with n > c."""
    return _arrays.count_above(hist).transpose(0, 2, 1)


def pipeline_totals(prep: Prepared, m: Matches) -> tuple[np.ndarray, dict]:
    """The per-slice totals every walk order shares: (row_slice, keyword arguments of
    :func:`tables_from_matched` other than the matches) — ground truths and kept predictions
    per (slice, c, t, feature), the threshold-free IoU-metric sums and true negatives.

    Examples
    --------
    >>> import polars as pl, polars_metrics as pm
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"data_row": ["a"], "feature": ["cat"], "bbox": [[0.0, 0, 10, 10]]},
    ...                   schema_overrides={"bbox": box})
    >>> pd = gt.with_columns(confidence=pl.lit(0.9))
    >>> part = pm.partial(gt, pd, confidence_thresholds=[0.5], iou_thresholds=[0.5, 0.9])
    >>> row_slice, totals = pipeline_totals(part.detail.prep, part.detail.matches_arrays)
    >>> totals["gt_total"].shape, totals["pd_total"].tolist()  # (S, C, T, F)
    ((1, 1, 2, 1), [[[[1], [1]]]])
    """
    S, F = prep.slices.height, len(prep.features)
    C, T = prep.conf_thr.shape[0], prep.iou_thr.shape[0]
    row_slice = np.ascontiguousarray(prep.rows[SLICE].to_numpy(), dtype=np.int64)
    none = np.zeros(0, dtype=np.int32)
    n_gt = slice_histogram(prep.gt.off, prep.gt.feat, none, row_slice, S, F, 1)[:, :, 0]
    # kept[s, c, f]: predictions passing threshold c (npass > c), summed from the top
    hist = slice_histogram(prep.pd.off, prep.pd.feat, m.npass, row_slice, S, F, C + 1)
    kept = _count_above(hist)
    iou_sum = slice_feature_sums(m.iv_off, m.iv_c, m.iv_rf, m.iv_val, m.rf_feat, row_slice,
                                 S, C, F)
    # iou_rows[s, c, f]: (row, feature) values defined at c, i.e. with c < rf_until
    iou_rows = _count_above(until_histogram(m.rf_off, m.rf_feat, m.rf_until, row_slice, S, F,
                                            C + 1))
    tn, has_tn = slice_true_negatives(prep, row_slice, S, iou_rows)
    return row_slice, dict(
        gt_total=np.broadcast_to(n_gt[:, None, None, :], (S, C, T, F)),
        pd_total=np.broadcast_to(kept[:, :, None, :], (S, C, T, F)),
        present=(n_gt + hist.sum(axis=2)) > 0, iou_sum=iou_sum, iou_rows=iou_rows, tn=tn,
        has_tn=has_tn)


def score_ordered_tables(prep: Prepared, m: Matches) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The count tables (counts, confusion) of a score-ordered walk (:func:`matching.match_by_score`):
    a match found at IoU index t whose prediction passes n confidence thresholds is the
    rectangle [0, n) × [t, t + 1) of the grid.

    Examples
    --------
    >>> import polars as pl, polars_metrics as pm
    >>> from polars_metrics.matching import match_by_score
    >>> from polars_metrics.pairs import build_pairs
    >>> from polars_metrics.prepare import prepare
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"data_row": ["a"], "feature": ["cat"], "bbox": [[0.0, 0, 10, 10]]},
    ...                   schema_overrides={"bbox": box})
    >>> pd = pl.DataFrame({"data_row": ["a"], "feature": ["dog"], "bbox": [[0.0, 0, 10, 5]],
    ...                    "confidence": [0.9]}, schema_overrides={"bbox": box})
    >>> prof = pm.get_profile("labelbox", greedy_order="score", iou_strict=False)
    >>> prep = prepare(gt, pd, keys=["data_row"], by=[], data_rows=None, profile=prof,
    ...                conf_thr=np.array([0.5]), iou_thr=np.array([0.5, 0.6]), on_invalid="raise")
    >>> counts, confusion = score_ordered_tables(prep, match_by_score(prep, build_pairs(prep), prof))
    >>> confusion.rows()  # IoU 0.5 passes ">= 0.5": a misclassification, then nothing at 0.6
    [(0.5, 0.5, 'cat', 'dog', 1), (0.5, 0.6, 'cat', None, 1), (0.5, 0.6, None, 'dog', 1)]
    """
    row_slice, totals = pipeline_totals(prep, m)
    ev_slice = row_slice[m.ev_row]
    c_lo, c_hi, t_lo, t_hi = m.rectangles()
    counts, confusion = count_tables(
        n_slices=prep.slices.height, n_features=len(prep.features), conf_thr=prep.conf_thr,
        iou_thr=prep.iou_thr, ev_slice=ev_slice, ev_gt_feat=prep.gt.feat[m.ev_gt],
        ev_pd_feat=prep.pd.feat[m.ev_pd], c_lo=c_lo, c_hi=c_hi, t_lo=t_lo, t_hi=t_hi, **totals)
    return label_tables(counts, confusion, slices=prep.slices, by=prep.by, features=prep.features,
                        conf_thr=prep.conf_thr, iou_thr=prep.iou_thr)


def event_cells(m: Matches, row_slice: np.ndarray, gt_feat: np.ndarray, pd_feat: np.ndarray, *,
                n_slices: int, n_features: int, n_conf: int) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct (slice, gt feature, pd feature) keys ``(s * W + g) * W + p`` (W =
    n_features + 1, the None class last) of an IoU-ordered walk's match events, and
    ``matched[k, c, t]``: the events of key k at confidence index c whose IoU passes threshold t.

    The keys as an array, their distinct values, then the differences at their index; or, once
    those per-event arrays (8 bytes an event) would be larger than glibc's mmap threshold (new
    pages on every call: at 100,000 images two of 43 MB) while a difference array over the
    whole key space is small (``DENSE_CELL_BYTES``), one pass over the events on threads, each
    with its own array — no per-event array at all (measured at 100,000 images: 57 ms against
    109; at 5,000 and 20,000 the arrays come from the heap and the first way is faster).
    """
    ev_k, pair_gt, pair_pd, pair_iou, pair_free, iou_cut = m.through_pairs()
    W, C, T = n_features + 1, n_conf, iou_cut.shape[0]
    space = n_slices * W * W
    keyed = (ev_k, pair_gt, pair_pd, m.gt_row, row_slice, gt_feat, pd_feat, W)
    # int32 counts while the events' pairs are int32 positions (fewer than 2**31 events)
    count_dtype = np.dtype(np.int32 if ev_k.dtype == np.int32 else np.int64)
    cell_bytes = space * C * (T + 1) * count_dtype.itemsize
    if 8 * ev_k.shape[0] < MMAP_THRESHOLD or cell_bytes > DENSE_CELL_BYTES:
        key = event_kernel(event_keys, ev_k)(*keyed)
        uniq, inv = compress_keys(key, space)
        del key
        return uniq, event_kernel(accumulate_events, ev_k)(
            inv, m.ev_c, ev_k, pair_iou, pair_free, iou_cut, uniq.shape[0], C, T)
    parts = even_parts(ev_k.shape[0])
    cells = event_kernel(event_key_cells, ev_k)

    def counted(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        present, diff = np.zeros(space, np.bool_), np.zeros((space, C, T + 1), count_dtype)
        cells(ev_k, m.ev_c, *keyed[1:], pair_iou, pair_free, iou_cut, parts, present, diff,
              lo, hi)
        return present, diff

    parts_counted = map_ranges(counted, (), parts)
    present, diff = parts_counted[0]
    for more_present, more in parts_counted[1:]:
        present |= more_present
        diff += more
    uniq = np.flatnonzero(present)
    return uniq, np.cumsum(diff[uniq, :, :T], axis=2, dtype=np.int64)


def iou_ordered_tables(prep: Prepared, m: Matches) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The count tables (counts, confusion) of an IoU-ordered walk: an event found at
    confidence index c with b thresholds below its IoU is the rectangle [c, c+1) × [0, b).
    Kernels read the per-annotation and per-event arrays in place: no gathered temporaries as
    long as the events."""
    row_slice, totals = pipeline_totals(prep, m)
    S, F = prep.slices.height, len(prep.features)
    uniq, matched = event_cells(m, row_slice, prep.gt.feat, prep.pd.feat, n_slices=S,
                                n_features=F, n_conf=prep.conf_thr.shape[0])
    counts, confusion = tables_from_matched(uniq, matched, n_slices=S, n_features=F, **totals)
    return label_tables(counts, confusion, slices=prep.slices, by=prep.by, features=prep.features,
                        conf_thr=prep.conf_thr, iou_thr=prep.iou_thr)
