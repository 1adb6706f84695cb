"""``pm.compare``: is run B better than run A, with paired-bootstrap intervals over data rows.

Each run is evaluated once with :func:`polars_metrics.evaluate`; the point deltas are the
differences of those evaluations' frames, the intervals re-sum each run's per-(data row,
feature) counts under data-row resamples shared by all runs (no re-matching; see
:mod:`polars_metrics.compare.bootstrap`).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics.compare.bootstrap import resample_weights, summarize
from polars_metrics.compare.coco_ap import bootstrap_stats
from polars_metrics.compare.comparison import Comparison
from polars_metrics.compare.counts import raw_counts, shared_index
from polars_metrics.compare.deltas import (
    BASELINE_VALUE,
    DELTA,
    METRIC,
    RUN,
    STAT_COLUMNS,
    VALUE,
    bootstrap_frame,
    point_frame,
)
from polars_metrics.errors import PolarsMetricsError
from polars_metrics.evaluate import evaluate

__all__ = ["compare", "Comparison"]
AP_ROWS = (0, 1, 2, 8)  # AP, AP50, AP75, AR at the largest maxDet: rows of the 12 COCO stats


def compare(ground_truth, runs: Mapping, *, baseline: str | None = None, level: float = 0.95,
            n_resamples: int = 1000, seed=0, ap_resamples: int | None = None,
            **evaluate_kwargs) -> Comparison:
    """Compare prediction runs on one ground truth: every metric's delta at every cell, with
    paired-bootstrap intervals and p-values, flips per ground truth and deltas per data row.

    Parameters
    ----------
    ground_truth : the ground-truth table (as :func:`polars_metrics.evaluate` takes it).
    runs : ``{name: predictions}``, at least two; every run is compared with ``baseline``.
    baseline : the reference run (default: the first).
    level : the intervals' confidence level. n_resamples, seed : the bootstrap's resamples and
        the seed of its ``numpy.random.Generator`` (``seed=None``: fresh entropy).
    ap_resamples : under ``profile="coco"``, how many of the resamples also re-accumulate
        AP / AR (default: all; AP costs far more than the cube, see
        :mod:`polars_metrics.compare.coco_ap`); 0 skips the AP intervals.
    **evaluate_kwargs : passed to :func:`polars_metrics.evaluate` for every run (``profile``,
        thresholds, ``by``, ``data_row``, ...). In-memory evaluation only.

    Examples
    --------
    >>> import polars as pl, polars_metrics as pm
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"data_row": ["a", "b", "c"], "feature": ["cat"] * 3,
    ...                    "bbox": [[0.0, 0, 10, 10]] * 3}, schema_overrides={"bbox": box})
    >>> pd_a = gt.head(1).with_columns(confidence=pl.lit(0.9))
    >>> pd_b = gt.head(2).with_columns(confidence=pl.lit(0.9))
    >>> cmp = pm.compare(gt, {"A": pd_a, "B": pd_b}, n_resamples=200, rows="ground_truth",
    ...                  confidence_thresholds=[0.5], iou_thresholds=[0.5])
    >>> cmp.at(0.5, 0.5).filter(pl.col("metric") == "recall").select(
    ...     "baseline_value", "value", "delta").rows()
    [(0.3333333333333333, 0.6666666666666666, 0.3333333333333333)]
    >>> cmp.flip_counts(0.5, 0.5).row(1)
    (None, 1, 0, 1, 1, 3)
    """
    names = [str(k) for k in runs]
    if len(names) < 2:
        raise PolarsMetricsError(f"pm.compare needs at least two runs; got {names}. Pass "
                                 "{'A': predictions_a, 'B': predictions_b}.")
    if len(set(names)) != len(names):
        raise PolarsMetricsError(f"run names must be distinct as strings; got {names}.")
    base = names[0] if baseline is None else str(baseline)
    if base not in names:
        raise PolarsMetricsError(f"baseline {baseline!r} is not one of the runs {names}.")
    if not 0 < level < 1:
        raise PolarsMetricsError(f"level={level}; give a confidence level in (0, 1), e.g. 0.95.")
    if int(n_resamples) < 1:
        raise PolarsMetricsError(f"n_resamples={n_resamples}; give at least 1 (1000 is usual).")
    evs = [evaluate(ground_truth, pd, **evaluate_kwargs) for pd in runs.values()]
    return comparison_of(dict(zip(names, evs, strict=True)), baseline=base, level=level,
                         n_resamples=int(n_resamples), seed=seed, ap_resamples=ap_resamples)


def comparison_of(evaluations: dict, *, baseline: str, level: float, n_resamples: int,
                  seed, ap_resamples: int | None = None) -> Comparison:
    """The :class:`Comparison` of evaluations of the same ground truth and grid."""
    names = list(evaluations)
    evs = list(evaluations.values())
    b = names.index(baseline)
    first = evs[b]
    for name, ev in evaluations.items():
        same = (ev.keys == first.keys and ev.by == first.by
                and ev.confidence_thresholds.tolist() == first.confidence_thresholds.tolist()
                and ev.iou_thresholds.tolist() == first.iou_thresholds.tolist()
                and ev.profile.name == first.profile.name)
        if not same:
            raise PolarsMetricsError(
                f"run {name!r} was evaluated with another data-row key, by=, grid or profile "
                f"than {baseline!r}; compare runs evaluated with the same settings.")
    by = list(first.by)
    raws = [raw_counts(ev) for ev in evs]
    universe, groups, counts = shared_index(raws, list(first.keys), by)
    weights = resample_weights(universe.height, n_resamples, seed)
    boot = bootstrap_frame(universe, groups, counts, names, b, by, weights=weights,
                           level=level, conf_thr=first.confidence_thresholds,
                           iou_thr=first.iou_thresholds)
    points = point_frame(evs, names, b, by)
    keys = [RUN, *by, s.AVERAGE, s.FEATURE, s.CONFIDENCE_THRESHOLD, s.IOU_THRESHOLD, METRIC]
    if boot.height:
        deltas = points.join(boot, on=keys, how="left", nulls_equal=True, maintain_order="left")
    else:
        deltas = points.with_columns([pl.lit(None, dtype=pl.Float64).alias(c)
                                      for c in STAT_COLUMNS])
    coco = None
    if getattr(first, "coco", None) is not None:
        n_ap = n_resamples if ap_resamples is None else min(int(ap_resamples), n_resamples)
        coco = _coco_deltas(evs, names, b, universe, weights[:, :n_ap], level)
    return Comparison(runs=tuple(names), baseline=baseline, evaluations=dict(evaluations),
                      deltas=deltas, coco=coco, level=level, n_resamples=n_resamples, seed=seed)


def _coco_deltas(evs: list, names: list[str], b: int, universe: pl.DataFrame, weights,
                 level: float) -> pl.DataFrame:
    """The 12 COCO stats per run against the baseline (null delta where either is -1), with
    bootstrap intervals for AP, AP50, AP75 and AR100 (rows 0, 1, 2, 8 of the summary)."""
    base = evs[b].coco_summary
    on = [c for c in base.columns if c != VALUE]
    boot = None
    if weights.shape[1] > 0:
        images = evs[b].coco.image_ids
        w = np.zeros((weights.shape[1], images.size))
        pos = np.searchsorted(images, universe[s.DATA_ROW].to_numpy())
        w[:, pos] = weights.T
        boot = [bootstrap_stats(ev, w) for ev in evs]
    out = []
    for r, ev in enumerate(evs):
        if r == b:
            continue
        j = base.rename({VALUE: BASELINE_VALUE}).join(ev.coco_summary, on=on, how="left",
                                                      nulls_equal=True, maintain_order="left")
        defined = (pl.col(BASELINE_VALUE) >= 0) & (pl.col(VALUE) >= 0)
        j = j.select(pl.lit(names[r]).alias(RUN), *on, BASELINE_VALUE, VALUE,
                     pl.when(defined).then(pl.col(VALUE) - pl.col(BASELINE_VALUE)).alias(DELTA))
        stats = {c: np.full(j.height, np.nan) for c in STAT_COLUMNS}
        if boot is not None:
            d = np.where((boot[r] >= 0) & (boot[b] >= 0), boot[r] - boot[b], np.nan)
            summ = summarize(d, level)
            for i, row in enumerate(AP_ROWS):
                for c in STAT_COLUMNS:
                    stats[c][row] = summ[c][i]
        out.append(j.with_columns(*[pl.Series(c, v).fill_nan(None) for c, v in stats.items()])
                   .with_columns(pl.col("resamples").cast(pl.Int64)))
    return pl.concat(out)
