"""Label-error and active-learning queues: where the labels, not the model, look wrong.

:func:`suspects` ranks likely labeling mistakes from the model's confident predictions and the
overlaps of every (ground truth, prediction) pair, across features. With ``c`` the confidence
threshold, ``bg`` / ``fg`` the background / foreground IoU thresholds (TIDE's 0.1 / 0.5 by
default) and a *confident* prediction one with ``confidence >= c``; a ground truth is *covered*
when a confident prediction of its own feature overlaps it with IoU >= ``fg``:

========================  ====================================================  ==================
reason                    rule                                                  score
========================  ====================================================  ==================
``missing_label``         a confident prediction overlapping no ground truth     confidence
                          (any feature) with IoU >= bg
``wrong_class``           a confident prediction overlapping an uncovered       confidence × IoU
                          ground truth of another feature with IoU >= fg and
                          none of its own feature with IoU >= fg
``contradicted``          classifications: a confident answer to a question     confidence
                          the ground truth answers otherwise, and no equal
                          answer
``mislocated``            a confident prediction whose best same-feature        confidence × (1 − IoU)
                          ground truth (uncovered) overlaps with
                          bg <= IoU < fg
``spurious_label``        a ground truth no prediction (any feature, any        ½ × recall of its
                          confidence) overlaps with IoU >= bg                   feature at (c, fg)
========================  ====================================================  ==================

The recall of a feature is the share of its ground truths covered: a label no prediction comes
near is suspect when the model finds the feature elsewhere. It is halved because a model miss
is the likelier cause, so a ``spurious_label`` ranks below a model-backed reason of equal
strength (on the benchmark's synthetic data, ``python -m benchmarks suspects``, unhalved they
filled the top of the queue with model misses).

A prediction gets at most one reason (``wrong_class`` before ``mislocated``). Every score lies in
[0, 1]; the queue is sorted by score, descending (ties: reason, data row, gt_id, pd_id). ``mislocated``
reads as a loose or shifted box, polygon, mask or span label.

:func:`uncertain` lists predictions nearest the decision: ``margin`` = min(|confidence − c|,
|IoU − t|) with IoU the prediction's best same-feature overlap (the IoU term only for geometric
pairs). :func:`disagreements` compares several runs per ground truth.
"""
from __future__ import annotations

import polars as pl

from polars_metrics import schema as s
from polars_metrics.errors import PolarsMetricsError
from polars_metrics.state import Detail

REASONS = ("missing_label", "wrong_class", "contradicted", "mislocated", "spurious_label")
REASON_DTYPE = pl.Enum(list(REASONS))
SCORE, MARGIN = "score", "margin"
GT, PD = (s.GT_ID, s.GT_FEATURE), (s.PD_ID, s.PD_FEATURE)  # an annotation: id and feature
SPURIOUS_WEIGHT = 0.5  # a spurious_label's score: this times its feature's recall
FREE = "threshold_free"
SUSPECT_COLUMNS = (s.REASON, SCORE, s.GT_ID, s.PD_ID, s.GT_FEATURE, s.PD_FEATURE, s.CONFIDENCE,
                   s.IOU)


def _pairs_frame(detail: Detail) -> pl.DataFrame:
    """(*keys, gt_id, pd_id, iou, threshold_free, gt_feature, pd_feature, confidence): every
    pair with IoU > 0, across features (:attr:`polars_metrics.state.Detail.pairs`)."""
    return detail.pairs


def _labelled_pairs(pairs: pl.DataFrame) -> pl.DataFrame:
    """pairs + same (equal features)."""
    return pairs.with_columns((pl.col(s.GT_FEATURE) == pl.col(s.PD_FEATURE)).alias("same"))


def _best(pairs: pl.DataFrame, keys: list[str], side: str, prefix: str) -> pl.DataFrame:
    """Per annotation of ``side`` ("pd" | "gt"), its highest-IoU pair (ties: smallest partner
    id): (*keys, own id, own feature, <prefix>_<partner id>, <prefix>_<partner feature>,
    <prefix>_iou, <prefix>_free). An annotation is (keys, id, feature): a checklist's options
    share their row's id."""
    own, other = (PD, GT) if side == "pd" else (GT, PD)
    # sorted on the numbers only; ``unique`` keeps each annotation's first row in that order
    top = (pairs.sort([s.IOU, other[0]], descending=[True, False])
           .unique(subset=[*keys, *own], keep="first"))
    return top.select(*keys, *own, *[pl.col(c).alias(f"{prefix}_{c}") for c in other],
                      pl.col(s.IOU).alias(f"{prefix}_iou"), pl.col(FREE).alias(f"{prefix}_free"))


def suspects(pairs: pl.DataFrame, gt: pl.DataFrame, pd: pl.DataFrame, keys: list[str],
             confidence: float = 0.5, fg: float = 0.5, bg: float = 0.1) -> pl.DataFrame:
    """The label-error queue (see the module docstring): (*keys, reason, score, gt_id, pd_id,
    gt_feature, pd_feature, confidence, iou), sorted by score descending.

    ``pairs`` from :func:`_pairs_frame`; ``gt`` (*keys, id, feature); ``pd`` (*keys, id,
    feature, confidence) — the counted annotations of the evaluation.

    Examples
    --------
    >>> gt = pl.DataFrame({"data_row": ["a"], "id": [0], "feature": ["dog"]})
    >>> pd = pl.DataFrame({"data_row": ["a", "a"], "id": [0, 1], "feature": ["cat", "cat"],
    ...                    "confidence": [0.9, 0.8]})
    >>> pairs = pl.DataFrame({"data_row": ["a"], "gt_id": [0], "pd_id": [0], "iou": [0.8],
    ...                       "threshold_free": [False], "gt_feature": ["dog"],
    ...                       "pd_feature": ["cat"], "confidence": [0.9]})
    >>> suspects(pairs, gt, pd, ["data_row"]).select("reason", "score", "gt_id", "pd_id").rows()
    [('missing_label', 0.8, None, 1), ('wrong_class', 0.7200000000000001, 0, 0)]
    """
    if not 0 <= bg <= fg <= 1:
        raise ValueError(f"need 0 <= bg <= fg <= 1; got bg={bg}, fg={fg}.")
    lp = _labelled_pairs(pairs)
    confident = pd.filter(pl.col(s.CONFIDENCE) >= confidence).select(
        *keys, pl.col(s.ID).alias(s.PD_ID), pl.col(s.FEATURE).alias(s.PD_FEATURE),
        pl.col(s.CONFIDENCE).cast(pl.Float64))
    hits = lp.filter(pl.col("same") & (pl.col(s.CONFIDENCE) >= confidence)
                     & (pl.col(FREE) | (pl.col(s.IOU) >= fg)))
    covered = hits.select(*keys, *GT).unique().with_columns(pl.lit(True).alias("covered"))
    lp = lp.join(covered, on=[*keys, *GT], how="left").with_columns(
        pl.col("covered").fill_null(False))
    on = [*keys, *PD]
    anyb = lp.group_by(on).agg(pl.col(s.IOU).max().alias("any_iou"))
    same = _best(lp.filter(pl.col("same") & ~pl.col("covered")), keys, "pd", "same")
    own = lp.filter(pl.col("same")).group_by(on).agg(pl.col(s.IOU).max().alias("own_iou"))
    other = _best(lp.filter(~pl.col("same") & ~pl.col("covered")), keys, "pd", "other")
    c = (confident.join(anyb, on=on, how="left").join(own, on=on, how="left")
         .join(same, on=on, how="left").join(other, on=on, how="left")
         .with_columns(pl.col("any_iou", "own_iou").fill_null(0.0)))
    missing = c.filter(pl.col("any_iou") < bg).select(
        *keys, pl.lit("missing_label").alias(s.REASON), pl.col(s.CONFIDENCE).alias(SCORE),
        pl.lit(None, dtype=gt.schema[s.ID]).alias(s.GT_ID), s.PD_ID,
        pl.lit(None, dtype=pl.String).alias(s.GT_FEATURE), s.PD_FEATURE, s.CONFIDENCE,
        pl.lit(None, dtype=pl.Float64).alias(s.IOU))
    wrong = c.filter((pl.col("other_iou") >= fg) & (pl.col("own_iou") < fg) & ~pl.col("other_free"))
    contra = c.filter(pl.col("other_free") & (pl.col("own_iou") == 0))
    loose = c.filter(~pl.col("same_free") & (pl.col("same_iou") >= bg) & (pl.col("same_iou") < fg)
                     & (pl.col("own_iou") < fg)).join(wrong.select(on), on=on, how="anti")

    def rows(frame, reason, prefix, score):
        return frame.select(
            *keys, pl.lit(reason).alias(s.REASON), score.alias(SCORE),
            pl.col(f"{prefix}_{s.GT_ID}").alias(s.GT_ID), s.PD_ID,
            pl.col(f"{prefix}_{s.GT_FEATURE}").alias(s.GT_FEATURE), s.PD_FEATURE, s.CONFIDENCE,
            pl.col(f"{prefix}_iou").alias(s.IOU))

    conf = pl.col(s.CONFIDENCE)
    parts = [missing, rows(wrong, "wrong_class", "other", conf * pl.col("other_iou")),
             rows(contra, "contradicted", "other", conf),
             rows(loose, "mislocated", "same", conf * (1 - pl.col("same_iou"))),
             _spurious(lp, gt, covered, keys, bg)]
    out = pl.concat(parts, how="vertical_relaxed").with_columns(pl.col(s.REASON).cast(REASON_DTYPE))
    order = [SCORE, s.REASON, *keys, s.GT_ID, s.PD_ID, s.GT_FEATURE, s.PD_FEATURE]
    return out.sort(order, descending=[True, *[False] * (len(order) - 1)], nulls_last=True)


def _spurious(lp: pl.DataFrame, gt: pl.DataFrame, covered: pl.DataFrame, keys: list[str],
              bg: float) -> pl.DataFrame:
    near = lp.filter(pl.col(s.IOU) >= bg).select(*keys, *GT).unique()
    g = gt.select(*keys, pl.col(s.ID).alias(s.GT_ID), pl.col(s.FEATURE).alias(s.GT_FEATURE))
    recall = (g.join(covered, on=[*keys, *GT], how="left")
              .group_by(s.GT_FEATURE).agg(
                  (SPURIOUS_WEIGHT * pl.col("covered").fill_null(False).mean()).alias(SCORE)))
    return (g.join(near, on=[*keys, *GT], how="anti", maintain_order="left")
            .join(recall, on=s.GT_FEATURE, how="left", maintain_order="left")
            .select(*keys, pl.lit("spurious_label").alias(s.REASON), pl.col(SCORE).cast(pl.Float64),
                    s.GT_ID, pl.lit(None, dtype=lp.schema[s.PD_ID]).alias(s.PD_ID), s.GT_FEATURE,
                    pl.lit(None, dtype=pl.String).alias(s.PD_FEATURE),
                    pl.lit(None, dtype=pl.Float64).alias(s.CONFIDENCE),
                    pl.lit(None, dtype=pl.Float64).alias(s.IOU)))


def uncertain(pairs: pl.DataFrame, gt: pl.DataFrame, pd: pl.DataFrame, matched: pl.DataFrame,
              keys: list[str], confidence: float, iou: float) -> pl.DataFrame:
    """Predictions nearest the decision at the cell (confidence, iou): (*keys, pd_id,
    pd_feature, confidence, gt_id, iou, kept, tp, margin), sorted by ``margin`` ascending.

    ``gt_id`` / ``iou``: the prediction's best same-feature overlap (null when none, or for
    classifications, where no IoU threshold applies); ``kept``: confidence >= the threshold;
    ``tp``: a true positive at the cell (``matched`` = the matched pairs there).

    Examples
    --------
    >>> gt = pl.DataFrame({"data_row": ["a"], "id": [0], "feature": ["cat"]})
    >>> pd = pl.DataFrame({"data_row": ["a", "a"], "id": [0, 1], "feature": ["cat", "cat"],
    ...                    "confidence": [0.9, 0.45]})
    >>> pairs = pl.DataFrame({"data_row": ["a"], "gt_id": [0], "pd_id": [0], "iou": [0.52],
    ...                       "threshold_free": [False], "gt_feature": ["cat"],
    ...                       "pd_feature": ["cat"], "confidence": [0.9]})
    >>> m = pl.DataFrame({"data_row": ["a"], "gt_id": [0], "pd_id": [0], "gt_feature": ["cat"],
    ...                   "pd_feature": ["cat"]})
    >>> out = uncertain(pairs, gt, pd, m, ["data_row"], 0.5, 0.5)
    >>> out.select("pd_id", "tp", "margin").with_columns(pl.col("margin").round(6)).rows()
    [(0, True, 0.02), (1, False, 0.05)]
    """
    lp = _labelled_pairs(pairs).filter(pl.col("same") & ~pl.col(FREE))
    best = _best(lp, keys, "pd", "best")
    tp = (matched.filter(pl.col(s.GT_FEATURE) == pl.col(s.PD_FEATURE))
          .select(*keys, *PD).unique().with_columns(pl.lit(True).alias(s.TP)))
    on = [*keys, *PD]
    out = (pd.select(*keys, pl.col(s.ID).alias(s.PD_ID), pl.col(s.FEATURE).alias(s.PD_FEATURE),
                     pl.col(s.CONFIDENCE).cast(pl.Float64))
           .join(best, on=on, how="left", maintain_order="left")
           .join(tp, on=on, how="left", maintain_order="left"))
    conf_m = (pl.col(s.CONFIDENCE) - confidence).abs()
    iou_m = (pl.col(s.IOU) - iou).abs()
    out = out.select(
        *keys, s.PD_ID, s.PD_FEATURE, s.CONFIDENCE, pl.col("best_gt_id").alias(s.GT_ID),
        pl.col("best_iou").alias(s.IOU), (pl.col(s.CONFIDENCE) >= confidence).alias("kept"),
        pl.col(s.TP).fill_null(False),
    ).with_columns(pl.min_horizontal(conf_m, iou_m).alias(MARGIN))
    # ties keep the predictions' data-row order (a sort on the margin alone: fast)
    return out.sort(MARGIN, maintain_order=True)


def disagreements(found: dict[str, pl.DataFrame], gt: pl.DataFrame,
                  keys: list[str]) -> pl.DataFrame:
    """Ground truths on which runs disagree: (*keys, gt_id, feature, n_found, found_by,
    missed_by, <one column per run: the feature of the prediction matched to it, null =
    missed>), the most split first. ``found[run]``: the matched pairs of that run at the cell
    (*keys, gt_id, gt_feature, pd_feature); a ground truth is found when matched to its own
    feature.
    Rows where every run gives the same answer are left out.

    Examples
    --------
    >>> gt = pl.DataFrame({"data_row": ["a", "a"], "id": [0, 1], "feature": ["cat", "dog"]})
    >>> a = pl.DataFrame({"data_row": ["a", "a"], "gt_id": [0, 1], "gt_feature": ["cat", "dog"],
    ...                   "pd_feature": ["cat", "dog"]})
    >>> b = pl.DataFrame({"data_row": ["a"], "gt_id": [1], "gt_feature": ["dog"], "pd_feature": ["dog"]})
    >>> disagreements({"A": a, "B": b}, gt, ["data_row"]).select("gt_id", "found_by", "B").rows()
    [(0, ['A'], None)]
    """
    if len(found) < 2:
        raise PolarsMetricsError("comparing runs needs at least two; give {name: evaluation}.")
    out = gt.select(*keys, pl.col(s.ID).alias(s.GT_ID), s.FEATURE)
    names = list(found)
    for name in names:
        if name in out.columns:
            raise PolarsMetricsError(f"run name {name!r} clashes with a column; rename the run.")
        m = found[name].select(*keys, s.GT_ID, pl.col(s.GT_FEATURE).alias(s.FEATURE),
                               pl.col(s.PD_FEATURE).alias(name)).unique(
            subset=[*keys, s.GT_ID, s.FEATURE], keep="first", maintain_order=True)
        out = out.join(m, on=[*keys, s.GT_ID, s.FEATURE], how="left", maintain_order="left")
    hit = [pl.col(n).eq_missing(pl.col(s.FEATURE)) for n in names]
    n = len(names)
    out = out.with_columns(
        pl.sum_horizontal(hit).alias("n_found"),
        pl.concat_list([pl.when(h).then(pl.lit(nm)) for h, nm in zip(hit, names, strict=True)])
        .list.drop_nulls().alias("found_by"),
        pl.concat_list([pl.when(~h).then(pl.lit(nm)) for h, nm in zip(hit, names, strict=True)])
        .list.drop_nulls().alias("missed_by"),
        pl.concat_list(names).list.n_unique().alias("_answers"),
    ).filter((pl.col("_answers") > 1) | ((pl.col("n_found") > 0) & (pl.col("n_found") < n)))
    split = (pl.col("n_found") - n / 2).abs()
    return out.sort([split, *keys, s.GT_ID, s.FEATURE], maintain_order=True).select(
        *keys, s.GT_ID, s.FEATURE, "n_found", "found_by", "missed_by", *names)
