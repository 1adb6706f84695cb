"""Counts → metrics: the cube's ratios, micro/macro rows, the data-row table, PR curves, best F1.

Undefined ratios (0/0) are null, never a made-up 0 (SPEC §5).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from polars_metrics import _arrays
from polars_metrics import schema as s
from polars_metrics._parallel import map_ranges
from polars_metrics._spare import spare_buffer
from polars_metrics.matching import rf_true_positives
from polars_metrics.prepare import Prepared

C_T = (s.CONFIDENCE_THRESHOLD, s.IOU_THRESHOLD)


def _ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    return pl.when(den > 0).then(num / den).otherwise(None)


def ratio_columns(tp="tp", fp="fp", fn="fn") -> list[pl.Expr]:
    tp, fp, fn = pl.col(tp), pl.col(fp), pl.col(fn)
    return [
        _ratio(tp, tp + fp).alias(s.PRECISION),
        _ratio(tp, tp + fn).alias(s.RECALL),
        _ratio(2 * tp, 2 * tp + fp + fn).alias(s.F1),
    ]


def cube_and_overall(counts: pl.DataFrame, by: Sequence[str],
                     zero_tn: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The cube and the overall table from additive counts. One pass computes the per-feature
    ratios and one aggregation both the summed counts and the means of those ratios: a small
    evaluation's cost is mostly per polars operation (4.3-4.9 ms here at 100 images as two
    group-bys and a join, 2.7-3.4 ms so).

    cube : (*by, feature, c, t, tp, fp, tn, fn, precision, recall, f1, iou), sorted.
    overall : (*by, average, c, t, tp, fp, tn, fn, precision, recall, f1, iou): ``micro`` rows
        (ratios of the summed counts) and ``macro`` rows (the summed counts with the means of
        the per-feature ratios), sorted. Both aggregate the sorted per-feature rows, so their
        float sums do not depend on the order ``counts`` came in.

    Examples
    --------
    Feature a: 1 TP of 1 prediction and 2 ground truths; b: 1 TP of 4 predictions and 1
    ground truth. Micro precision 2 / 5, recall 2 / 3; macro (1 + 1/4) / 2, (1/2 + 1) / 2.

    >>> counts = pl.DataFrame({"feature": ["b", "a"], "confidence_threshold": [0.5, 0.5],
    ...     "iou_threshold": [0.5, 0.5], "tp": [1, 1], "gt_count": [1, 2], "pd_count": [4, 1],
    ...     "iou_sum": [0.6, 0.8], "iou_rows": [1, 1], "tn": [None, None]},
    ...     schema_overrides={"tn": pl.Int64})
    >>> cube, overall = cube_and_overall(counts, (), zero_tn=False)
    >>> cube.select("feature", "tp", "fp", "fn", "precision", "recall").rows()
    [('a', 1, 0, 1, 1.0, 0.5), ('b', 1, 3, 0, 0.25, 1.0)]
    >>> overall.select("average", "tp", "fp", "fn", pl.col("precision", "recall").round(4)).rows()
    [('macro', 2, 3, 1, 0.625, 0.75), ('micro', 2, 3, 1, 0.4, 0.6667)]
    """
    keys = [*by, *C_T]
    per_feature = (
        counts.select(
            *by, s.FEATURE, *C_T,
            pl.col(s.TP).cast(pl.Int64),
            (pl.col("pd_count") - pl.col(s.TP)).cast(pl.Int64).alias(s.FP),
            pl.col(s.TN).cast(pl.Int64),
            (pl.col("gt_count") - pl.col(s.TP)).cast(pl.Int64).alias(s.FN),
            pl.col("iou_sum"), pl.col("iou_rows"),
        )
        .with_columns(*ratio_columns(), _ratio(pl.col("iou_sum"), pl.col("iou_rows")).alias(s.IOU))
        .sort([*by, s.FEATURE, *C_T], nulls_last=True)
    )
    tn = pl.col(s.TN).fill_null(0) if zero_tn else pl.col(s.TN)
    cube = per_feature.select(*by, s.FEATURE, *C_T, s.TP, s.FP, tn, s.FN, *s.RATIO_COLUMNS)
    sums = per_feature.group_by(keys).agg(
        pl.col(s.TP).sum(), pl.col(s.FP).sum(), pl.col(s.FN).sum(),
        pl.when(pl.col(s.TN).is_not_null().any()).then(pl.col(s.TN).sum()).cast(pl.Int64)
        .alias(s.TN),
        pl.col("iou_sum").sum(), pl.col("iou_rows").sum(),
        *(pl.col(c).mean().alias(f"mean_{c}") for c in s.RATIO_COLUMNS),
    )
    micro = sums.select(*keys, pl.lit("micro").alias(s.AVERAGE), s.TP, s.FP, tn, s.FN,
                        *ratio_columns(), _ratio(pl.col("iou_sum"), pl.col("iou_rows")).alias(s.IOU))
    macro = sums.select(*keys, pl.lit("macro").alias(s.AVERAGE), s.TP, s.FP, tn, s.FN,
                        *(pl.col(f"mean_{c}").alias(c) for c in s.RATIO_COLUMNS))
    overall = (pl.concat([micro, macro]).sort([*by, s.AVERAGE, *C_T], nulls_last=True)
               .select(*by, s.AVERAGE, *C_T, *s.METRIC_COLUMNS))
    return cube, overall


# The table's generated columns (thresholds, row IoU, numeric keys) are kept as spares only
# below this size each. A spare waits through the next call's earlier stages and adds to their
# peak: measured at 20,000 images (4 columns of 19 MB), +46 MB of peak RSS (688 vs 631 MB with
# the previous result alive); at 5,000 images (5 MB columns) it saves about half a warm call's
# page faults (15.9k -> 7.7k) and 10% of its time.
GRID_SPARE_BYTES = 8 << 20
GRID_THREADS_ROWS = 1 << 20  # table rows from which its generated columns are made on threads


def _repeat_rows(frame: pl.DataFrame, k: int) -> pl.DataFrame:
    """Each row ``k`` times in a row. Numeric columns without nulls are repeated by numpy into
    a spare buffer (handed to polars without a copy); others are gathered with a 32-bit index."""
    index = None
    cols = []
    for col in frame.get_columns():
        if col.dtype.is_numeric() and not col.has_nulls():
            values = col.to_numpy()
            out = spare_buffer(f"row_key_{col.name}", (frame.height, k), values.dtype,
                               keep_below=GRID_SPARE_BYTES)
            out[...] = values[:, None]
            cols.append(pl.Series(col.name, out.reshape(-1), dtype=col.dtype))
        else:
            if index is None:
                index = pl.Series(np.repeat(np.arange(frame.height, dtype=np.uint32), k))
            cols.append(col.gather(index))
    return pl.DataFrame(cols, schema=frame.schema) if cols else pl.DataFrame()


def _grid_column(name: str, values: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """``values`` broadcast to (data rows, C, T) and flattened, in a spare buffer while small
    (``GRID_SPARE_BYTES``): the same columns are made on every read of the table, and a loop's
    reads reuse one memory (see ``_spare``) instead of first-touching fresh pages each time."""
    out = spare_buffer(name, shape, np.float64, keep_below=GRID_SPARE_BYTES)
    out[...] = values
    return out.reshape(-1)


def data_row_table(prep: Prepared, m, row_tn, *, zero_tn: bool) -> pl.DataFrame:
    """Per (data row, c, t): counts summed over features and means of per-feature ratios."""
    n, C, T = prep.n_rows, prep.conf_thr.shape[0], prep.iou_thr.shape[0]
    head = _repeat_rows(prep.rows.select(*prep.keys, *prep.by), C * T)
    counts, means = (a.reshape(3, -1) for a in m.row_tables())  # zero-copy columns
    grid = (n, C, T)
    # the generated columns on threads: at scale they are fresh pages (97 MB each at
    # 100,000 images), and first touches run in parallel
    made = (("row_conf_thr", prep.conf_thr[None, :, None]),
            ("row_iou_thr", prep.iou_thr[None, None, :]), ("row_iou", m.row_iou[:, :, None]))
    small = 0 if n * C * T >= GRID_THREADS_ROWS else len(made) + 1  # (else one thread)
    parts = map_ranges(
        lambda lo, hi: [_grid_column(name, values, grid) for name, values in made[lo:hi]],
        (), np.arange(len(made) + 1), small=small)
    conf_thr, iou_thr, iou = (column for part in parts for column in part)
    body = pl.DataFrame([
        pl.Series(s.CONFIDENCE_THRESHOLD, conf_thr),
        pl.Series(s.IOU_THRESHOLD, iou_thr),
        pl.Series(s.TP, counts[0]),
        pl.Series(s.FP, counts[1]),
        _row_tn(row_tn, n * C * T, T, zero_tn),
        pl.Series(s.FN, counts[2]),
        pl.Series(s.PRECISION, means[0], nan_to_null=True),
        pl.Series(s.RECALL, means[1], nan_to_null=True),
        pl.Series(s.F1, means[2], nan_to_null=True),
        pl.Series(s.IOU, iou, nan_to_null=True),
    ])
    return pl.concat([head, body], how="horizontal")


def data_row_feature_table(prep: Prepared, m, *, zero_tn: bool) -> pl.DataFrame:
    """Per (data row, feature present on it, c, t): counts and ratios of that feature alone.

    The unit the per-row means of :func:`data_row_table` average over; also the per-feature,
    per-data-row view of the platform SDK. Built on demand: it has rows × features × C × T rows.

    Examples
    --------
    >>> import polars as pl, polars_metrics as pm
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"data_row": ["a"], "feature": ["cat"], "bbox": [[0.0, 0, 10, 10]]},
    ...                   schema_overrides={"bbox": box})
    >>> pd = gt.with_columns(confidence=pl.lit(0.9))
    >>> ev = pm.evaluate(gt, pd, greedy_order="score", confidence_thresholds=[0.5, 0.95],
    ...                  iou_thresholds=[0.5])
    >>> ev.data_row_features.select("feature", "confidence_threshold", "tp", "fp", "fn").rows()
    [('cat', 0.5, 1, 0, 0), ('cat', 0.95, 0, 0, 1)]
    """
    rf_row, rf, tp_rf, rf_kept, ngt_rf, iou = data_row_feature_arrays(prep, m)
    n_rf, C, T = rf_row.shape[0], iou.shape[1], prep.iou_thr.shape[0]
    tp = np.zeros((n_rf, C, T), dtype=np.int64)
    tp[rf] = tp_rf
    kept = np.broadcast_to(rf_kept[:, :, None], tp.shape)
    ngt = np.broadcast_to(ngt_rf[:, None, None], tp.shape)
    reps = np.repeat(rf_row, C * T)
    names = pl.Series(s.FEATURE, list(prep.features), dtype=pl.String)
    frame = pl.concat([
        prep.rows.select(*prep.keys, *prep.by)[reps],
        pl.DataFrame([
            names.gather(np.repeat(m.rf_feat, C * T)),
            pl.Series(s.CONFIDENCE_THRESHOLD, np.tile(np.repeat(prep.conf_thr, T), n_rf)),
            pl.Series(s.IOU_THRESHOLD, np.tile(prep.iou_thr, n_rf * C)),
            pl.Series(s.TP, tp.ravel()),
            pl.Series(s.FP, (kept - tp).ravel()),
            pl.repeat(0 if zero_tn else None, n_rf * C * T, dtype=pl.Int64, eager=True).alias(s.TN),
            pl.Series(s.FN, (ngt - tp).ravel()),
            pl.Series(s.IOU, np.repeat(iou.ravel(), T), nan_to_null=True),
        ]),
    ], how="horizontal")
    return frame.with_columns(*ratio_columns()).select(
        *prep.keys, *prep.by, s.FEATURE, *C_T, *s.METRIC_COLUMNS)


def data_row_feature_arrays(prep: Prepared, m):
    """The arrays behind :func:`data_row_feature_table`, one entry per (data row, feature
    present on it), sorted by data row then feature: ``(rf_row, rf, tp, kept, ngt, iou)`` with
    ``tp`` (len(rf), C, T) the true positives of the entries ``rf`` that have any (the others
    have none), ``kept`` (n_rf, C) predictions counted at each confidence threshold, ``ngt``
    (n_rf,) ground truths and ``iou`` (n_rf, C) the IoU metric (NaN where undefined);
    ``m.rf_feat`` holds each entry's feature index. fp = kept - tp, fn = ngt - tp."""
    C = m.row_iou.shape[1]
    T = prep.iou_thr.shape[0]
    F = max(len(prep.features), 1)
    rf_row = m.rf_row
    if m.score_ordered:  # the events' rectangles, per (row, feature) with a match
        rf, tp = rf_true_positives(prep, m)
    else:
        # true positives: same-feature match events, counted by IoU bin, summed from the top
        gf = prep.gt.feat[m.ev_gt]
        same = gf == prep.pd.feat[m.ev_pd]
        rf_code = rf_row * F + m.rf_feat
        ev_rf = np.searchsorted(rf_code, m.ev_row[same] * F + gf[same])  # int64 arithmetic
        rf, inv = np.unique(ev_rf, return_inverse=True)
        hist = np.bincount((inv * C + m.ev_c[same]) * (T + 1) + m.ev_bin[same],
                           minlength=rf.shape[0] * C * (T + 1)).reshape(-1, C, T + 1)
        tp = _arrays.count_above(hist)  # (len(rf), C, T): tp at t iff bin > t
    return rf_row, rf, tp, m.rf_kept(prep), m.rf_ngt.astype(np.int64), m.rf_iou()

def pr_curve_from_cube(cube: pl.DataFrame, overall: pl.DataFrame, by: Sequence[str],
                       iou: float) -> pl.DataFrame:
    """Per feature and micro (feature = null): precision, recall, f1 per confidence threshold."""
    cols = [*by, s.FEATURE, s.CONFIDENCE_THRESHOLD, s.PRECISION, s.RECALL, s.F1]
    per_feature = cube.filter(pl.col(s.IOU_THRESHOLD) == iou).select(cols)
    micro = overall.filter((pl.col(s.IOU_THRESHOLD) == iou) & (pl.col(s.AVERAGE) == "micro"))
    micro = micro.select(*by, pl.lit(None, dtype=pl.String).alias(s.FEATURE), *cols[len(by) + 1:])
    return pl.concat([per_feature, micro]).sort([*by, s.FEATURE, s.CONFIDENCE_THRESHOLD],
                                                nulls_last=True)


def best_from_curve(curve: pl.DataFrame, by: Sequence[str]) -> pl.DataFrame:
    """The confidence threshold of maximum F1 per feature (ties → the lowest threshold)."""
    group = [*by, s.FEATURE]
    return (
        curve.filter(pl.col(s.F1).is_not_null())
        .sort([*group, s.F1, s.CONFIDENCE_THRESHOLD], descending=[False] * len(group) + [True, False],
              nulls_last=True)
        .group_by(group, maintain_order=True).first()
        .sort(group, nulls_last=True)
    )


def _row_tn(row_tn, size: int, n_iou: int, zero_tn: bool) -> pl.Series:
    if row_tn is None:
        return pl.repeat(0 if zero_tn else None, size, dtype=pl.Int64, eager=True).alias(s.TN)
    values = pl.Series(s.TN, np.repeat(row_tn.ravel(), n_iou), nan_to_null=True).cast(pl.Int64)
    return values.fill_null(0) if zero_tn else values
