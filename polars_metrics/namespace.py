"""The only place that registers Polars namespaces: thin, explicit sugar over the functions."""
from __future__ import annotations

import polars as pl

from polars_metrics import schema as s


@pl.api.register_dataframe_namespace("pm")
class MetricsFrame:
    """``ground_truth.pm.evaluate(predictions, ...)`` is ``pm.evaluate(ground_truth, predictions, ...)``."""

    def __init__(self, df: pl.DataFrame) -> None:
        self._df = df

    def evaluate(self, predictions, **kwargs):
        from polars_metrics.evaluate import evaluate

        return evaluate(self._df, predictions, **kwargs)

    def pairwise_iou(self, predictions, **kwargs) -> pl.DataFrame:
        from polars_metrics.iou import pairwise_iou

        return pairwise_iou(self._df, predictions, **kwargs)


@pl.api.register_expr_namespace("pm")
class MetricsExpr:
    """Row-aligned IoU: ``pl.col("gt_box").pm.box_iou(pl.col("pd_box"))``."""

    def __init__(self, expr: pl.Expr) -> None:
        self._expr = expr

    def box_iou(self, other: pl.Expr | str) -> pl.Expr:
        """IoU of two Array(Float64, 4) box columns, row by row (null where either is null)."""
        other = pl.col(other) if isinstance(other, str) else other
        return pl.struct(self._expr.alias("a"), other.alias("b")).map_batches(
            _box_iou_batch, return_dtype=pl.Float64)


def _box_iou_batch(pairs: pl.Series) -> pl.Series:
    from polars_metrics.kinds.box import aligned_iou

    a = pairs.struct.field("a").cast(s.BBOX_DTYPE)
    b = pairs.struct.field("b").cast(s.BBOX_DTYPE)
    valid = a.is_not_null() & b.is_not_null()
    out = pl.Series(s.IOU, [None] * pairs.len(), dtype=pl.Float64)
    if valid.any():
        vals = aligned_iou(a.filter(valid), b.filter(valid))
        out = out.scatter(valid.arg_true(), pl.Series(vals))
    return out
