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

    def polygon_iou(self, other: pl.Expr | str) -> pl.Expr:
        """IoU of two polygon columns, row by row (null where either is null).

        Each side holds polygons (rings, shell first), multipolygons, or boxes
        (Array(Float64, 4)); invalid polygons are repaired with ``make_valid`` first.
        """
        return self._aligned(other, _polygon_iou_batch)

    def mask_iou(self, other: pl.Expr | str) -> pl.Expr:
        """IoU of two ``mask`` (COCO RLE) columns, row by row; sizes must agree."""
        return self._aligned(other, _mask_iou_batch)

    def span_iou(self, other: pl.Expr | str) -> pl.Expr:
        """IoU of two span columns, row by row: Struct{start, end[, message_id]} or (start, end)
        as a 2-element Array / List of integers; half-open [start, end)."""
        return self._aligned(other, _span_iou_batch)

    def point_iou(self, other: pl.Expr | str, *, radius: float = 70.0,
                  how: str = "buffer") -> pl.Expr:
        """IoU of two (x, y) point columns buffered by ``radius`` (``how="buffer"``: shapely's
        64-gon discs; ``"circle"``: exact circles), row by row."""
        from functools import partial

        return self._aligned(other, partial(_point_iou_batch, radius=radius, how=how))

    def line_iou(self, other: pl.Expr | str, *, radius: float = 70.0) -> pl.Expr:
        """IoU of two polyline columns buffered by ``radius`` (shapely's ``buffer``), row by row."""
        from functools import partial

        return self._aligned(other, partial(_line_iou_batch, radius=radius))

    def _aligned(self, other: pl.Expr | str, batch) -> pl.Expr:
        other = pl.col(other) if isinstance(other, str) else other
        return pl.struct(self._expr.alias("a"), other.alias("b")).map_batches(
            lambda pairs: _null_aware(pairs, batch), return_dtype=pl.Float64)


def _null_aware(pairs: pl.Series, batch) -> pl.Series:
    """Run ``batch(a, b) -> ndarray`` on the rows where both sides are present."""
    a, b = pairs.struct.field("a"), pairs.struct.field("b")
    valid = a.is_not_null() & b.is_not_null()
    out = pl.Series(s.IOU, [None] * pairs.len(), dtype=pl.Float64)
    if valid.any():
        vals = batch(a.filter(valid), b.filter(valid))
        out = out.scatter(valid.arg_true(), pl.Series(vals, dtype=pl.Float64))
    return out


def _polygon_iou_batch(a: pl.Series, b: pl.Series):
    from polars_metrics.kinds.polygon import aligned_iou

    return aligned_iou(a, b)


def _mask_iou_batch(a: pl.Series, b: pl.Series):
    from polars_metrics.kinds.mask import aligned_iou

    return aligned_iou(a, b)


def _span_parts(x: pl.Series):
    if isinstance(x.dtype, pl.Struct):
        names = [f.name for f in x.dtype.fields]
        msg = x.struct.field(s.MESSAGE_ID) if s.MESSAGE_ID in names else None
        return x.struct.field(s.START), x.struct.field(s.END), msg
    if isinstance(x.dtype, pl.Array):
        return x.arr.get(0), x.arr.get(1), None
    return x.list.get(0), x.list.get(1), None


def _span_iou_batch(a: pl.Series, b: pl.Series):
    from polars_metrics.kinds.span import aligned_iou

    a0, a1, am = _span_parts(a)
    b0, b1, bm = _span_parts(b)
    return aligned_iou(a0, a1, b0, b1, am, bm)


def _point_iou_batch(a: pl.Series, b: pl.Series, *, radius: float, how: str):
    from polars_metrics.kinds.point import aligned_iou

    xy_a = a.cast(s.POINT_DTYPE).to_numpy().reshape(-1, 2)
    xy_b = b.cast(s.POINT_DTYPE).to_numpy().reshape(-1, 2)
    return aligned_iou(xy_a, xy_b, radius, how)


def _line_iou_batch(a: pl.Series, b: pl.Series, *, radius: float):
    from polars_metrics.kinds.line import aligned_iou

    return aligned_iou(a, b, radius)


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
