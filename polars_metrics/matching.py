"""Pairs → matches: the greedy walks of SPEC §5 (IoU order) and the score-ordered walks.

IoU order (:func:`match`): the kernel emits the match events of the IoU-threshold-0 walk at each
confidence threshold (the prefix property gives every IoU threshold from them), the per-(data
row, feature) quantities that the cube needs, and the data-row table's per-row aggregates.

Score order (:func:`match_by_score`, ``greedy_order="score"``): predictions by confidence
descending each take their best free ground truth, one walk per IoU threshold; a confidence
threshold only truncates the walk, so a match found at IoU index ``t`` holds at every
confidence threshold its prediction passes. The threshold-free IoU metric does not depend on
the walk order and comes from the same computation as under IoU order.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

from polars_metrics import _arrays
from polars_metrics import schema as s
from polars_metrics._kernels.aot import kernel
from polars_metrics._parallel import run_ranges
from polars_metrics._spare import reserve
from polars_metrics.events import (
    ALMOST_ONE,
    Matches,
    compact_events,
    compact_walk_values,
    drop_unread_tables,
    event_kernel,
    iou_passes,
    narrowed,
    walk_rows,
)
from polars_metrics.pairs import Pairs, index_dtype
from polars_metrics.prepare import Prepared
from polars_metrics.profiles import Profile

THRESHOLD_FREE = "threshold_free"  # matches-frame column: a classification pair

def row_features(prep: Prepared, gt_feat: np.ndarray, pd_feat: np.ndarray):
    """Per data row, the sorted distinct feature codes present on either side (CSR): counted,
    then written, by data-row ranges on threads (no per-annotation temporaries).

    >>> import polars as pl, polars_metrics as pm
    >>> gt = pl.DataFrame({"data_row": ["a", "a", "b"], "feature": ["dog", "cat", "dog"],
    ...                    "bbox": [[0.0, 0, 1, 1]] * 3}, schema_overrides={"bbox": pl.Array(pl.Float64, 4)})
    >>> prep = pm.partial(gt, gt.with_columns(confidence=pl.lit(0.9))).detail.prep
    >>> off, feat = row_features(prep, prep.gt.feat, prep.pd.feat)
    >>> off.tolist(), [prep.features[f] for f in feat]
    ([0, 2, 3], ['cat', 'dog', 'dog'])
    """
    n_rows, n_feat = prep.n_rows, len(prep.features)
    sides = (prep.gt.off, gt_feat, prep.pd.off, pd_feat, n_feat)
    work = prep.gt.off + prep.pd.off
    counts = np.zeros(n_rows, dtype=np.int64)
    run_ranges(row_feature_counts, (*sides, counts), work)
    rf_off = _arrays.offsets_from_lengths(counts)
    rf_feat = np.empty(int(rf_off[-1]), dtype=np.int32)
    run_ranges(row_feature_fill, (*sides, rf_off, rf_feat), work)
    return rf_off, rf_feat


row_feature_counts = kernel("groups", "row_feature_counts")
row_feature_fill = kernel("groups", "row_feature_fill")


def match(prep: Prepared, pairs: Pairs, profile: Profile) -> Matches:
    n_rows, n_conf, n_iou = prep.n_rows, prep.conf_thr.shape[0], prep.iou_thr.shape[0]
    gt_feat, pd_feat, npass = prep.gt.feat, prep.pd.feat, prep.pd.npass
    if not profile.use_confidence:
        npass = np.full_like(npass, n_conf)
    rf_off, rf_feat = row_features(prep, gt_feat, pd_feat)
    drop_unread_tables()  # the last run's, built ahead: their spare is this run's
    if profile.greedy_order != "score":  # (score order builds its table with the walk)
        for name, dtype in (("row_counts", np.int64), ("row_means", np.float64)):
            reserve(name, (3, n_rows, n_conf, n_iou), dtype)  # the data-row table's: see _spare
    sides = (prep.gt.off, prep.pd.off, gt_feat, pd_feat)
    walk = walk_rows(sides, npass, pairs, n_conf, profile.class_aware, rf_off, rf_feat)
    ev_off, ev_n, ev_pair, rf_ngt, rf_until, _, _, _, row_iou = walk
    out_off = _arrays.offsets_from_lengths(ev_n.sum(axis=1))
    n_ev = int(out_off[-1])
    # the events' pairs written in their kept dtype (int32 below 2**31 pairs), not converted
    ev_c, ev_k = np.empty(n_ev, np.int32), np.empty(n_ev, index_dtype(len(pairs)))
    run_ranges(event_kernel(compact_events, ev_k), (ev_off, ev_n, ev_pair, out_off, ev_c, ev_k),
               out_off)
    del ev_pair
    walk = walk[:2] + (None,) + walk[3:]  # the events' scratch goes before the values'
    return Matches(
        ev_k=ev_k, pairs=pairs, rf_off=rf_off,
        narrow=narrowed(ev_c=ev_c, rf_feat=rf_feat, rf_ngt=rf_ngt, rf_until=rf_until,
                        npass=npass),
        values=compact_walk_values(walk), class_aware=profile.class_aware,
        row_iou=row_iou, gt_row=prep.gt.row, ev_roff=out_off, sides=sides,
        iou_thr=prep.iou_thr, iou_strict=profile.iou_strict)


greedy_match_by_score = kernel("matching", "greedy_match_by_score")
accumulate_rectangles = kernel("cube", "accumulate_rectangles")


def _walk_order(prep: Prepared, pairs: Pairs, npass: np.ndarray, class_aware: bool) -> np.ndarray:
    """The pairs taking part in the score-ordered walk, in walk order: data row, prediction
    by confidence descending (ties: input order), then ground truth in input order.
    Predictions that pass no confidence threshold count nowhere and are left out."""
    conf = prep.pd.column(s.CONFIDENCE).fill_null(1.0).to_numpy()
    rank = np.empty(len(prep.pd), dtype=np.int64)
    rank[np.lexsort((-conf, prep.pd.row))] = np.arange(len(prep.pd))
    keep = npass[pairs.pd] > 0
    if class_aware:
        keep &= prep.gt.feat[pairs.gt] == prep.pd.feat[pairs.pd]
    k = np.flatnonzero(keep)
    return k[np.lexsort((pairs.gt[k], rank[pairs.pd[k]]))]


def match_by_score(prep: Prepared, pairs: Pairs, profile: Profile) -> Matches:
    """Score-ordered greedy matching (``greedy_order="score"``), one walk per IoU threshold.

    At IoU threshold t, per data row (only equal features when ``profile.class_aware``), the
    predictions by confidence descending (ties: input order) each take the still-free ground
    truth of highest IoU passing the test (``iou > t``, or ``iou >= t`` unless
    ``profile.iou_strict``; ties: ground-truth input order). Classification pairs pass every
    threshold. A confidence threshold truncates the walk, so a match holds at every confidence
    threshold its prediction passes. The IoU metric and the per-(data row, feature) quantities
    are those of :func:`match` (they do not depend on the walk order).

    Examples
    --------
    >>> import polars as pl, polars_metrics as pm
    >>> from polars_metrics.pairs import build_pairs
    >>> from polars_metrics.prepare import prepare
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"data_row": ["a"] * 2, "feature": ["cat"] * 2,
    ...                    "bbox": [[0.0, 0, 10, 10], [0.0, 0, 10, 8]]}, schema_overrides={"bbox": box})
    >>> pd = pl.DataFrame({"data_row": ["a"] * 2, "feature": ["cat"] * 2, "confidence": [0.6, 0.9],
    ...                    "bbox": [[0.0, 0, 10, 9], [0.0, 0, 10, 10]]}, schema_overrides={"bbox": box})
    >>> prof = pm.get_profile("labelbox", greedy_order="score")
    >>> prep = prepare(gt, pd, keys=["data_row"], by=[], data_rows=None, profile=prof,
    ...                conf_thr=np.array([0.5]), iou_thr=np.array([0.5, 0.85]), on_invalid="raise")
    >>> m = match_by_score(prep, build_pairs(prep), prof)
    >>> m.ev_t.tolist(), m.ev_gt.tolist(), m.ev_pd.tolist()  # pd 1 (0.9) goes first
    ([0, 0, 1, 1], [0, 1, 0, 1], [1, 0, 1, 0])
    """
    base = match(prep, pairs, profile)  # IoU metric, per-(row, feature) counts, npass
    n_rows, n_iou = prep.n_rows, prep.iou_thr.shape[0]
    k = _walk_order(prep, pairs, base.npass, profile.class_aware)
    walk_gt, walk_pd, walk_iou = pairs.gt[k], pairs.pd[k], pairs.iou[k]
    walk_nt = iou_passes(walk_iou, prep.iou_thr, profile.iou_strict)
    walk_nt[pairs.always[k]] = n_iou
    walk_off = _arrays.offsets(prep.gt.row[walk_gt], n_rows)
    cap = np.minimum(np.diff(prep.gt.off), np.diff(prep.pd.off)) * n_iou
    ev_off = _arrays.offsets_from_lengths(cap)
    ev_n = np.zeros((n_rows, n_iou), dtype=np.int64)
    ev_walk = np.empty(int(ev_off[-1]), dtype=np.int64)
    run_ranges(greedy_match_by_score, (prep.gt.off, walk_off, walk_gt, walk_pd, walk_iou,
                                       walk_nt, n_iou, ev_off, ev_n, ev_walk),
               walk_off + prep.gt.off)
    out_off = _arrays.offsets_from_lengths(ev_n.sum(axis=1))
    n_ev = int(out_off[-1])
    ev_t, ev_w = np.empty(n_ev, np.int32), np.empty(n_ev, index_dtype(k.shape[0]))
    run_ranges(event_kernel(compact_events, ev_w), (ev_off, ev_n, ev_walk, out_off, ev_t, ev_w),
               out_off)
    ev_k = k[ev_w].astype(index_dtype(len(pairs)))
    ev_c = base.npass[pairs.pd[ev_k]].astype(np.int32)
    score_rows = _score_row_tables(prep, base, ev_k, ev_c, ev_t)
    return dataclasses.replace(base, narrow={**base.narrow, **narrowed(ev_c=ev_c)}, ev_k=ev_k,
                               ev_t=ev_t, ev_roff=out_off, score_rows=score_rows)


def rf_true_positives(prep: Prepared, m: Matches) -> tuple[np.ndarray, np.ndarray]:
    """(rf, tp): the (data row, feature) entries with a same-feature match event (sorted) and
    their true positives (len(rf), C, T), from the events' rectangles.

    Examples
    --------
    >>> import polars as pl, polars_metrics as pm
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"data_row": ["a"], "feature": ["cat"], "bbox": [[0.0, 0, 10, 10]]},
    ...                   schema_overrides={"bbox": box})
    >>> pd = gt.with_columns(confidence=pl.lit(0.9))
    >>> part = pm.partial(gt, pd, greedy_order="score", confidence_thresholds=[0.5, 0.95],
    ...                   iou_thresholds=[0.5])
    >>> rf, tp = rf_true_positives(part.detail.prep, part.detail.matches_arrays)
    >>> rf.tolist(), tp.tolist()  # one (row, feature); a match at c = 0.5 only
    ([0], [[[1], [0]]])
    """
    C, T = prep.conf_thr.shape[0], prep.iou_thr.shape[0]
    F = max(len(prep.features), 1)
    ev_gt = m.ev_gt
    gf = prep.gt.feat[ev_gt]
    same = gf == prep.pd.feat[m.ev_pd]
    ev_rf = np.searchsorted(m.rf_row * F + m.rf_feat, m.gt_row[ev_gt[same]] * F + gf[same])
    rf, inv = np.unique(ev_rf, return_inverse=True)
    c_lo, c_hi, t_lo, t_hi = (np.ascontiguousarray(a[same], dtype=np.int64)
                              for a in m.rectangles())
    tp = accumulate_rectangles(inv.astype(np.int64), c_lo, c_hi, t_lo, t_hi, rf.shape[0], C, T)
    return rf, tp


def _per_row(values: np.ndarray, rows: np.ndarray, n_rows: int) -> np.ndarray:
    """Sum the leading axis of ``values`` into data rows (``rows`` ascending)."""
    out = np.zeros((n_rows, *values.shape[1:]), dtype=values.dtype)
    if rows.shape[0]:
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        out[rows[starts]] = np.add.reduceat(values, starts, axis=0)
    return out


def _score_row_tables(prep: Prepared, base: Matches, ev_k, ev_c, ev_t):
    """row_counts and row_means (see :class:`Matches`) of the score-ordered walk: sums over
    the features of a row, and means of the per-feature ratios defined on it (defined-ness
    depends on the counts of annotations only, as under IoU order)."""
    n, C, T = prep.n_rows, prep.conf_thr.shape[0], prep.iou_thr.shape[0]
    probe = dataclasses.replace(base, narrow={**base.narrow, "ev_c": ev_c}, ev_k=ev_k, ev_t=ev_t)
    rf, tp = rf_true_positives(prep, probe)
    rf_row = base.rf_row
    kept = base.rf_kept(prep)                      # (n_rf, C)
    ngt = base.rf_ngt.astype(np.int64)
    k_a, g_a = kept[rf][:, :, None], ngt[rf][:, None, None]
    tp_f = tp.astype(np.float64)
    ratios = (np.divide(tp_f, k_a, out=np.zeros_like(tp_f), where=k_a > 0), tp_f / g_a,
              2.0 * tp_f / (k_a + g_a))
    sums = [_per_row(v, rf_row[rf], n) for v in ratios]
    tp_row = _per_row(tp, rf_row[rf], n)
    kept_row = _per_row(kept, rf_row, n)[:, :, None]
    defined = (_per_row((kept > 0).astype(np.int64), rf_row, n),
               _per_row((ngt > 0).astype(np.int64)[:, None], rf_row, n),
               _per_row((np.arange(C)[None, :] < base.rf_until[:, None]).astype(np.int64),
                        rf_row, n))
    row_counts = np.empty((3, n, C, T), dtype=np.int64)
    row_counts[0] = tp_row
    row_counts[1] = kept_row - tp_row
    row_counts[2] = np.diff(prep.gt.off)[:, None, None] - tp_row
    row_means = np.empty((3, n, C, T), dtype=np.float64)
    for i in range(3):
        d = np.broadcast_to(defined[i][:, :, None], (n, C, T))
        row_means[i] = np.where(d > 0, sums[i] / np.maximum(d, 1), np.nan)
    return row_counts, row_means


def matches_frame(prep: Prepared, m: Matches) -> pl.DataFrame:
    """The match events as a frame.

    IoU order: (*keys, confidence_threshold, gt_id, pd_id, iou, threshold_free, gt_feature,
    pd_feature) — the pairs matched by the walk at IoU threshold 0 for each confidence
    threshold; the matches at IoU threshold ``t`` are those passing the IoU test or
    ``threshold_free`` (classification pairs, which IoU thresholds do not apply to).

    Score order: (*keys, iou_threshold, confidence_threshold, gt_id, pd_id, iou,
    threshold_free, gt_feature, pd_feature) — the matches of the walk at each IoU threshold;
    ``confidence_threshold`` is the highest confidence threshold the match holds at, and it
    holds at every lower one too. :func:`matched_at` reads either at one cell.

    Examples
    --------
    >>> import polars as pl, polars_metrics as pm
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"data_row": ["a"], "feature": ["cat"], "bbox": [[0.0, 0, 10, 10]]},
    ...                   schema_overrides={"bbox": box})
    >>> pd = gt.with_columns(confidence=pl.lit(0.9))
    >>> part = pm.partial(gt, pd, greedy_order="score", confidence_thresholds=[0.5, 0.8],
    ...                   iou_thresholds=[0.5])
    >>> matches_frame(part.detail.prep, part.detail.matches_arrays).select("iou_threshold", "confidence_threshold", "pd_id").rows()
    [(0.5, 0.8, 0)]
    """
    names = pl.Series(list(prep.features), dtype=pl.String)
    cols: dict[str, object] = {}
    if m.score_ordered:
        cols[s.IOU_THRESHOLD] = prep.iou_thr[m.ev_t]
        cols[s.CONFIDENCE_THRESHOLD] = prep.conf_thr[m.ev_c - 1]
    else:
        cols[s.CONFIDENCE_THRESHOLD] = prep.conf_thr[m.ev_c]
    ev_gt, ev_pd = m.ev_gt, m.ev_pd
    cols.update({
        s.GT_ID: prep.gt.column(s.ID).gather(ev_gt),
        s.PD_ID: prep.pd.column(s.ID).gather(ev_pd),
        s.IOU: m.ev_iou,
        THRESHOLD_FREE: m.ev_free,
        s.GT_FEATURE: names.gather(prep.gt.feat[ev_gt]),
        s.PD_FEATURE: names.gather(prep.pd.feat[ev_pd]),
    })
    return pl.concat([prep.rows.select(prep.keys)[m.gt_row[ev_gt]], pl.DataFrame(cols)],
                     how="horizontal")


def matched_at(matches: pl.DataFrame, confidence: float, iou: float,
               strict: bool = True) -> pl.DataFrame:
    """The rows of a :func:`matches_frame` (or of merged ones) that are matches at the cell
    (confidence threshold, IoU threshold); both values are grid values. ``strict``: the
    profile's ``iou_strict`` (read under IoU order; score-ordered frames list each IoU
    threshold's matches).

    Examples
    --------
    >>> frame = pl.DataFrame({"iou_threshold": [0.5, 0.5, 0.75], "confidence_threshold": [0.2, 0.9, 0.9],
    ...                       "gt_id": [1, 2, 2]})
    >>> matched_at(frame, 0.5, 0.5)["gt_id"].to_list()
    [2]
    """
    if s.IOU_THRESHOLD in matches.columns:  # score order
        return matches.filter((pl.col(s.IOU_THRESHOLD) == iou)
                              & (pl.col(s.CONFIDENCE_THRESHOLD) >= confidence))
    passes = pl.col(s.IOU) > iou if strict else pl.col(s.IOU) >= min(iou, ALMOST_ONE)
    return matches.filter((pl.col(s.CONFIDENCE_THRESHOLD) == confidence)
                          & (passes | pl.col(THRESHOLD_FREE)))
