"""Outcomes per annotation at one cell: what happened to every ground truth and prediction.

Pure Polars over an evaluation's per-annotation detail (``ev.detail``): the annotations and the
match events of the IoU-threshold-0 walk, of which the matches at IoU threshold ``t`` are the
pairs with ``iou > t`` (or threshold-free classification pairs). Counting the outcomes per
feature gives the cube at that cell:

* ``tp`` = predictions of the feature whose outcome is ``tp``;
* ``fp`` = predictions of the feature that are ``fp`` or ``misclassified``;
* ``fn`` = ground truths of the feature that are ``fn`` or ``misclassified``.
"""
from __future__ import annotations

import polars as pl

from polars_metrics import schema as s
from polars_metrics.matching import matched_at

SIDE = "side"
OUTCOME = "outcome"
PARTNER_ID = "partner_id"
PARTNER_FEATURE = "partner_feature"
TP, FP, FN, MISCLASSIFIED = "tp", "fp", "fn", "misclassified"
OUTCOMES = (TP, FP, FN, MISCLASSIFIED)
GT_SIDE, PD_SIDE = "gt", "pd"
OUTCOME_DTYPE = pl.Enum(list(OUTCOMES))
_SIDE_DTYPE = pl.Enum([GT_SIDE, PD_SIDE])


def cell_matches(ev, confidence: float, iou: float) -> pl.DataFrame:
    """The matched pairs at one (exact) cell of the grid: (*keys, gt_id, pd_id, iou,
    gt_feature, pd_feature)."""
    keys = list(ev.keys)
    return matched_at(ev.detail.matches, confidence, iou, ev.profile.iou_strict).select(
        *keys, s.GT_ID, s.PD_ID, s.IOU, s.GT_FEATURE, s.PD_FEATURE)


def _side(ann: pl.DataFrame, pairs: pl.DataFrame, keys: list[str], side: str,
          unmatched: str) -> pl.DataFrame:
    own, other = (s.GT_ID, s.PD_ID) if side == GT_SIDE else (s.PD_ID, s.GT_ID)
    own_feature, other_feature = ((s.GT_FEATURE, s.PD_FEATURE) if side == GT_SIDE
                                  else (s.PD_FEATURE, s.GT_FEATURE))
    # an annotation is (data row, id, feature): a checklist's options share their answer's id
    partner = pairs.select(*keys, pl.col(own).alias(s.ID), pl.col(own_feature).alias(s.FEATURE),
                           pl.col(other).alias(PARTNER_ID),
                           pl.col(other_feature).alias(PARTNER_FEATURE), s.IOU)
    if s.CONFIDENCE not in ann.columns:
        ann = ann.with_columns(pl.lit(None, dtype=pl.Float64).alias(s.CONFIDENCE))
    out = ann.join(partner, on=[*keys, s.ID, s.FEATURE], how="left", maintain_order="left")
    outcome = (pl.when(pl.col(PARTNER_ID).is_null() & pl.col(PARTNER_FEATURE).is_null())
               .then(pl.lit(unmatched))
               .when(pl.col(PARTNER_FEATURE) == pl.col(s.FEATURE)).then(pl.lit(TP))
               .otherwise(pl.lit(MISCLASSIFIED)))
    return out.select(
        pl.lit(side, dtype=_SIDE_DTYPE).alias(SIDE), *keys, s.ID, s.FEATURE,
        pl.col(s.CONFIDENCE).cast(pl.Float64), outcome.cast(OUTCOME_DTYPE).alias(OUTCOME),
        pl.col(PARTNER_ID).cast(ann.schema[s.ID]), PARTNER_FEATURE, pl.col(s.IOU).cast(pl.Float64))


def outcomes(ev, confidence: float = 0.5, iou: float = 0.5) -> pl.DataFrame:
    """One row per ground truth and per counted prediction at one cell of the grid.

    Columns: ``side`` ("gt" | "pd"), the data-row keys, the ``by`` columns, ``id``, ``feature``,
    ``confidence`` (null for ground truth), ``outcome`` ("tp" | "fp" | "fn" | "misclassified"),
    ``partner_id`` and ``partner_feature`` (the matched annotation on the other side, null when
    unmatched) and ``iou`` (of the matched pair). Predictions below the confidence threshold
    are not counted and not listed. ``ev.outcomes(...)`` calls this.

    Examples
    --------
    >>> import polars as pl, polars_metrics as pm
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"data_row": ["a", "a"], "feature": ["cat", "dog"],
    ...                    "bbox": [[0.0, 0, 10, 10], [20.0, 20, 30, 30]]}, schema_overrides={"bbox": box})
    >>> pd = pl.DataFrame({"data_row": ["a", "a"], "feature": ["cat", "cat"], "confidence": [0.9, 0.8],
    ...                    "bbox": [[0.0, 0, 10, 10], [50.0, 50, 60, 60]]}, schema_overrides={"bbox": box})
    >>> pm.evaluate(gt, pd).outcomes(0.5, 0.5).select("side", "id", "feature", "outcome", "partner_id").rows()
    [('gt', 0, 'cat', 'tp', 0), ('gt', 1, 'dog', 'fn', None), ('pd', 0, 'cat', 'tp', 0), ('pd', 1, 'cat', 'fp', None)]
    """
    c = ev._threshold(confidence, s.CONFIDENCE_THRESHOLD)
    t = ev._threshold(iou, s.IOU_THRESHOLD)
    keys = list(ev.keys)
    pairs = cell_matches(ev, c, t)
    gt_ann, pd_ann = ev.detail.annotations
    pd_ann = pd_ann.filter(pl.col(s.CONFIDENCE) >= c)
    gt_out = _side(gt_ann, pairs, keys, GT_SIDE, FN)
    pd_out = _side(pd_ann, pairs, keys, PD_SIDE, FP)
    if gt_out.schema[s.ID] != pd_out.schema[s.ID]:  # e.g. Int64 ids on one side, null on the other
        gt_out = gt_out.with_columns(pl.col(s.ID, PARTNER_ID).cast(pl.String))
        pd_out = pd_out.with_columns(pl.col(s.ID, PARTNER_ID).cast(pl.String))
    out = pl.concat([gt_out, pd_out], how="vertical_relaxed")
    if not ev.by:
        return out
    by_values = ev.data_rows.select(*keys, *ev.by).unique(subset=keys, maintain_order=True)
    return out.join(by_values, on=keys, how="left", maintain_order="left").select(
        SIDE, *keys, *ev.by, *[c for c in out.columns if c not in (SIDE, *keys)])


def outcome_counts(frame: pl.DataFrame) -> pl.DataFrame:
    """Per feature: the tp, fp and fn the outcomes add up to (the cube's counts at the cell).

    Examples
    --------
    >>> f = pl.DataFrame({"side": ["gt", "pd", "pd"], "feature": ["cat", "cat", "dog"],
    ...                   "outcome": ["misclassified", "tp", "fp"]})
    >>> outcome_counts(f).sort("feature").rows()
    [('cat', 1, 0, 1), ('dog', 0, 1, 0)]
    """
    o, side = pl.col(OUTCOME).cast(pl.String), pl.col(SIDE).cast(pl.String)
    return frame.group_by(s.FEATURE).agg(
        ((side == PD_SIDE) & (o == TP)).sum().alias(s.TP),
        ((side == PD_SIDE) & o.is_in([FP, MISCLASSIFIED])).sum().alias(s.FP),
        ((side == GT_SIDE) & o.is_in([FN, MISCLASSIFIED])).sum().alias(s.FN),
    )
