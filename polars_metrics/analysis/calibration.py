"""Calibration: does a confidence of 0.8 mean 80 % of such predictions are right?

A prediction is *correct* when it is a true positive at the chosen IoU threshold, at the lowest
confidence threshold of the evaluation (0 on the default grid, where every prediction counts):
matched to a ground truth of its own feature. Predictions are binned by confidence; per bin the
reliability table gives the count, the mean confidence, the accuracy (share correct) and the
gap (accuracy − confidence, negative = over-confident). From the bins:

* ECE = Σ_b (n_b / N) · |accuracy_b − confidence_b| (count-weighted mean absolute gap),
* MCE = max_b |accuracy_b − confidence_b| over the non-empty bins,

per feature, per ``by=`` slice, and micro (``feature`` null: every prediction of the slice).
Binning is netcal's (``netcal.metrics.ECE(bins, detection=True)``): ``uniform`` edges
``linspace(0, 1, bins + 1)``, a value on an inner edge goes to the bin above it and 1.0 to the
last bin; ``quantile`` edges are the confidence quantiles of the group with the ends set to 0
and 1 (netcal's ``equal_intervals=False``).
"""
from __future__ import annotations

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics.errors import PolarsMetricsError

CORRECT = "correct"
BIN, LOWER, UPPER, ACCURACY, GAP = "bin", "lower", "upper", "accuracy", "gap"
ECE, MCE = "ece", "mce"
STRATEGIES = ("uniform", "quantile")


def prediction_flags(predictions: pl.DataFrame, matched: pl.DataFrame, keys: list[str],
                     lowest: float) -> pl.DataFrame:
    """Every counted prediction with its ``correct`` flag.

    ``predictions``: (*keys, *by, id, feature, confidence); ``matched``: the matched pairs at
    the cell (lowest confidence threshold, IoU threshold), with gt_feature / pd_feature (see
    :func:`polars_metrics.matching.matched_at`). Returns (*keys, *by, id, feature, confidence,
    correct) for the predictions with ``confidence >= lowest``.

    Examples
    --------
    >>> pd = pl.DataFrame({"data_row": ["a", "a"], "id": [0, 1], "feature": ["cat", "cat"],
    ...                    "confidence": [0.9, 0.4]})
    >>> m = pl.DataFrame({"data_row": ["a"], "pd_id": [1], "gt_feature": ["cat"], "pd_feature": ["cat"]})
    >>> prediction_flags(pd, m, ["data_row"], 0.0)["correct"].to_list()
    [False, True]
    """
    conf = predictions[s.CONFIDENCE]
    if conf.null_count():
        row = predictions.filter(pl.col(s.CONFIDENCE).is_null()).row(0, named=True)
        raise PolarsMetricsError(
            f"calibration needs a confidence on every prediction; predictions.confidence is null "
            f"on {conf.null_count()} row(s), e.g. data row "
            f"{ {k: row[k] for k in keys} } id {row[s.ID]!r}. Give every prediction a confidence "
            "(or leave the predictions without one out of the calibration).")
    # an annotation is (keys, id, feature): a checklist's options share their row's id
    tp = (matched.filter(pl.col(s.GT_FEATURE) == pl.col(s.PD_FEATURE))
          .select(*keys, pl.col(s.PD_ID).alias(s.ID), pl.col(s.PD_FEATURE).alias(s.FEATURE))
          .unique().with_columns(pl.lit(True).alias(CORRECT)))
    if tp.schema[s.ID] != predictions.schema[s.ID]:
        tp = tp.with_columns(pl.col(s.ID).cast(predictions.schema[s.ID]))
    out = predictions.filter(pl.col(s.CONFIDENCE) >= lowest).join(
        tp, on=[*keys, s.ID, s.FEATURE], how="left", maintain_order="left")
    return out.with_columns(pl.col(CORRECT).fill_null(False),
                            pl.col(s.CONFIDENCE).cast(pl.Float64))


def bin_edges(confidence: np.ndarray, bins: int, strategy: str) -> np.ndarray:
    """The ``bins + 1`` bin edges (netcal's).

    Examples
    --------
    >>> bin_edges(np.array([0.1, 0.2]), 4, "uniform").tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    >>> bin_edges(np.array([0.1, 0.2, 0.3]), 2, "quantile").tolist()
    [0.0, 0.2, 1.0]
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    if strategy == "quantile" and confidence.size:
        edges = np.quantile(confidence, edges)
        edges[0], edges[-1] = 0.0, 1.0
    return edges


def _bin_index(confidence: np.ndarray, edges: np.ndarray) -> np.ndarray:
    # as np.histogramdd / scipy's binned_statistic_dd: searchsorted right, the last edge inside
    idx = np.searchsorted(edges, confidence, side="right") - 1
    return np.minimum(idx, edges.shape[0] - 2)


def _group_bins(conf: np.ndarray, correct: np.ndarray, bins: int, strategy: str) -> dict:
    # netcal clips confidences to [eps, 1 - eps] before binning and averaging
    eps = np.finfo(np.float64).eps
    conf = np.clip(conf, eps, 1.0 - eps)
    edges = bin_edges(conf, bins, strategy)
    idx = _bin_index(conf, edges)
    count = np.bincount(idx, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=bins) / count
        accuracy = np.bincount(idx, weights=correct.astype(np.float64), minlength=bins) / count
    empty = count == 0
    mean_conf[empty], accuracy[empty] = np.nan, np.nan
    return {BIN: np.arange(bins, dtype=np.int32), LOWER: edges[:-1], UPPER: edges[1:],
            s.COUNT: count.astype(np.int64), s.CONFIDENCE: mean_conf, ACCURACY: accuracy,
            GAP: accuracy - mean_conf}


def _check(flags: pl.DataFrame, bins: int, strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy={strategy!r}; choose one of {', '.join(STRATEGIES)}.")
    if not isinstance(bins, int | np.integer) or isinstance(bins, bool) or bins < 1:
        raise ValueError(f"bins={bins!r}; give a positive whole number of bins (e.g. 10).")
    outside = flags.filter((pl.col(s.CONFIDENCE) < 0) | (pl.col(s.CONFIDENCE) > 1))
    if outside.height:
        raise PolarsMetricsError(
            f"calibration bins confidences in [0, 1]; {outside.height} prediction(s) lie "
            f"outside, e.g. id {outside[s.ID][0]!r} with confidence {outside[s.CONFIDENCE][0]}. "
            "Rescale the confidences to probabilities first.")


def reliability(flags: pl.DataFrame, by: list[str], bins: int = 10,
                strategy: str = "uniform") -> pl.DataFrame:
    """The reliability-diagram table: (*by, feature, bin, lower, upper, count, confidence,
    accuracy, gap), every bin listed (empty bins: count 0, the means null), per feature and
    micro (``feature`` null) in each slice. ``flags`` from :func:`prediction_flags`.

    Examples
    --------
    >>> flags = pl.DataFrame({"feature": ["cat"] * 3, "confidence": [0.95, 0.9, 0.2],
    ...                       "correct": [True, False, False], "id": [0, 1, 2]})
    >>> t = reliability(flags, [], bins=2).filter(pl.col("feature") == "cat")
    >>> t.select("bin", "count", "accuracy").rows()
    [(0, 1, 0.0), (1, 2, 0.5)]
    """
    _check(flags, bins, strategy)
    parts = []
    for per_feature in (True, False):
        group = [*by, s.FEATURE] if per_feature else list(by)
        frame = flags if per_feature else flags.with_columns(
            pl.lit(None, dtype=flags.schema[s.FEATURE]).alias(s.FEATURE))
        if not group:
            frame, group = frame.with_columns(pl.lit(0).alias("_all")), ["_all"]
        for _key, g in frame.group_by(group, maintain_order=True):
            table = pl.DataFrame(_group_bins(g[s.CONFIDENCE].to_numpy(),
                                             g[CORRECT].to_numpy(), bins, strategy))
            head = pl.DataFrame([g[c][:1] for c in [*by, s.FEATURE]])
            parts.append(head.select(pl.all().repeat_by(bins).explode()).hstack(table))
    if not parts:
        empty = {c: flags.schema[c] for c in [*by, s.FEATURE]}
        return pl.DataFrame(schema={**empty, BIN: pl.Int32, LOWER: pl.Float64, UPPER: pl.Float64,
                                    s.COUNT: pl.Int64, s.CONFIDENCE: pl.Float64,
                                    ACCURACY: pl.Float64, GAP: pl.Float64})
    out = pl.concat(parts, how="vertical_relaxed").with_columns(
        pl.col(s.CONFIDENCE, ACCURACY, GAP).fill_nan(None))
    return out.sort([*by, s.FEATURE, BIN], nulls_last=True, maintain_order=True)


def calibration_error(table: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """ECE and MCE from a :func:`reliability` table: (*by, feature, count, ece, mce).

    Examples
    --------
    >>> t = pl.DataFrame({"feature": ["cat"] * 2, "count": [1, 3], "gap": [-0.2, 0.1]})
    >>> calibration_error(t, []).rows()  # ece = (1 * 0.2 + 3 * 0.1) / 4
    [('cat', 4, 0.125, 0.2)]
    """
    return (table.group_by([*by, s.FEATURE], maintain_order=True)
            .agg(pl.col(s.COUNT).sum(),
                 ((pl.col(GAP).abs() * pl.col(s.COUNT)).sum() / pl.col(s.COUNT).sum()).alias(ECE),
                 pl.col(GAP).abs().max().alias(MCE)))
