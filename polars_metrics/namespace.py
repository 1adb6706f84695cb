"""The only place that registers Polars namespaces: thin, explicit sugar over the functions.

Every expression method is one line over a kind's row-aligned IoU (``Kind.aligned_iou``);
``.pm.iou(other, kind=...)`` reaches any registered kind, the named methods are the
discoverable, typed spelling of the same call.
"""
from __future__ import annotations

from functools import partial
from typing import Any

import polars as pl

from polars_metrics import schema as s
from polars_metrics.evaluate import evaluate
from polars_metrics.iou import pairwise_iou
from polars_metrics.kinds import REGISTRY, box, kind, line, mask, point, polygon, span
from polars_metrics.validation import POS, run_checks


@pl.api.register_dataframe_namespace("pm")
class MetricsFrame:
    """``ground_truth.pm.evaluate(predictions, ...)`` is ``pm.evaluate(ground_truth, predictions, ...)``."""

    def __init__(self, df: pl.DataFrame) -> None:
        self._df = df

    def evaluate(self, predictions: pl.DataFrame, **kwargs: Any):
        """:func:`polars_metrics.evaluate` with this frame as the ground truth.

        Examples
        --------
        >>> import polars as pl, polars_metrics as pm
        >>> gt = pl.DataFrame({"data_row": ["a"], "feature": ["cat"], "bbox": [[0.0, 0.0, 2.0, 2.0]]})
        >>> pd = gt.with_columns(confidence=pl.lit(0.9))
        >>> gt.pm.evaluate(pd).overall.select("tp", "fp", "fn").row(0)
        (1, 0, 0)
        """
        return evaluate(self._df, predictions, **kwargs)

    def pairwise_iou(self, predictions: pl.DataFrame, **kwargs: Any) -> pl.DataFrame:
        """:func:`polars_metrics.pairwise_iou` with this frame as the ground truth.

        Examples
        --------
        >>> import polars as pl, polars_metrics as pm
        >>> gt = pl.DataFrame({"data_row": ["a"], "feature": ["cat"], "bbox": [[0.0, 0.0, 2.0, 2.0]]})
        >>> pd = pl.DataFrame({"data_row": ["a"], "feature": ["cat"], "bbox": [[1.0, 0.0, 3.0, 2.0]]})
        >>> gt.pm.pairwise_iou(pd)
        shape: (1, 4)
        ┌──────────┬───────┬───────┬──────────┐
        │ data_row ┆ gt_id ┆ pd_id ┆ iou      │
        │ ---      ┆ ---   ┆ ---   ┆ ---      │
        │ str      ┆ i64   ┆ i64   ┆ f64      │
        ╞══════════╪═══════╪═══════╪══════════╡
        │ a        ┆ 0     ┆ 0     ┆ 0.333333 │
        └──────────┴───────┴───────┴──────────┘
        """
        return pairwise_iou(self._df, predictions, **kwargs)


@pl.api.register_expr_namespace("pm")
class MetricsExpr:
    """Row-aligned IoU: ``pl.col("gt_box").pm.box_iou(pl.col("pd_box"))``, null where either
    side is null.

    Examples
    --------
    >>> import polars as pl, polars_metrics as pm
    >>> df = pl.DataFrame({"a": [[0.0, 0.0, 2.0, 2.0], None], "b": [[1.0, 0.0, 3.0, 2.0]] * 2})
    >>> df.select(pl.col("a").pm.box_iou("b"))["iou"].to_list()
    [0.3333333333333333, None]
    >>> df.select(pl.col("a").pm.iou("b", kind="box"))["iou"].to_list()
    [0.3333333333333333, None]
    """

    def __init__(self, expr: pl.Expr) -> None:
        self._expr = expr

    def iou(self, other: pl.Expr | str, *, kind: str, **options: Any) -> pl.Expr:
        """IoU of this column and ``other`` row by row, as annotations of ``kind`` (any
        registered kind with an IoU); ``options`` go to the kind (``radius``, ``how``)."""
        return aligned_iou_expr(kind, self._expr, other, **options)

    def box_iou(self, other: pl.Expr | str) -> pl.Expr:
        """IoU of two Array(Float64, 4) box columns, row by row (null where either is null)."""
        return aligned_iou_expr(box.NAME, self._expr, other)

    def polygon_iou(self, other: pl.Expr | str) -> pl.Expr:
        """IoU of two polygon columns, row by row (null where either is null).

        Each side holds polygons (rings, shell first), multipolygons, or boxes
        (Array(Float64, 4)); invalid polygons are repaired with ``make_valid`` first.

        Examples
        --------
        >>> import polars as pl, polars_metrics as pm
        >>> sq = [[[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]]]
        >>> df = pl.DataFrame({"a": [sq], "b": [[1.0, 0.0, 3.0, 2.0]]},
        ...                   schema={"a": pm.POLYGON_DTYPE, "b": pm.BBOX_DTYPE})
        >>> df.select(pl.col("a").pm.polygon_iou("b")).item()
        0.3333333333333333
        """
        return aligned_iou_expr(polygon.NAME, self._expr, other)

    def mask_iou(self, other: pl.Expr | str) -> pl.Expr:
        """IoU of two ``mask`` (COCO RLE) columns, row by row; sizes must agree.

        Examples
        --------
        >>> import numpy as np, polars as pl, polars_metrics as pm
        >>> a = pm.mask_from_array(np.array([[1, 1], [0, 0]]))
        >>> b = pm.mask_from_array(np.array([[1, 0], [0, 0]]))
        >>> df = pl.DataFrame({"a": [a], "b": [b]}, schema={"a": pm.MASK_DTYPE, "b": pm.MASK_DTYPE})
        >>> df.select(pl.col("a").pm.mask_iou("b")).item()
        0.5
        """
        return aligned_iou_expr(mask.NAME, self._expr, other)

    def span_iou(self, other: pl.Expr | str) -> pl.Expr:
        """IoU of two span columns, row by row: Struct{start, end[, message_id]} or (start, end)
        as a 2-element Array / List of integers; half-open [start, end).

        Examples
        --------
        >>> import polars as pl, polars_metrics as pm
        >>> df = pl.DataFrame({"a": [[0, 10]], "b": [[5, 15]]})
        >>> df.select(pl.col("a").pm.span_iou("b")).item()
        0.3333333333333333
        """
        return aligned_iou_expr(span.NAME, self._expr, other)

    def point_iou(self, other: pl.Expr | str, *, radius: float = 70.0,
                  how: str = "buffer") -> pl.Expr:
        """IoU of two (x, y) point columns buffered by ``radius`` (``how="buffer"``: shapely's
        64-gon discs; ``"circle"``: exact circles), row by row.

        Examples
        --------
        >>> import polars as pl, polars_metrics as pm
        >>> df = pl.DataFrame({"a": [[0.0, 0.0]], "b": [[0.0, 0.0]]})
        >>> df.select(pl.col("a").pm.point_iou("b", radius=5.0, how="circle")).item()
        1.0
        """
        return aligned_iou_expr(point.NAME, self._expr, other, radius=radius, how=how)

    def line_iou(self, other: pl.Expr | str, *, radius: float = 70.0) -> pl.Expr:
        """IoU of two polyline columns buffered by ``radius`` (shapely's ``buffer``), row by row.

        Examples
        --------
        >>> import polars as pl, polars_metrics as pm
        >>> df = pl.DataFrame({"a": [[[0.0, 0.0], [10.0, 0.0]]], "b": [[[0.0, 0.0], [10.0, 0.0]]]})
        >>> df.select(pl.col("a").pm.line_iou("b", radius=1.0)).item()
        1.0
        """
        return aligned_iou_expr(line.NAME, self._expr, other, radius=radius)


def aligned_iou_expr(kind_name: str, expr: pl.Expr, other: pl.Expr | str,
                     **options: Any) -> pl.Expr:
    """The expression computing ``kind_name``'s IoU of ``expr`` and ``other`` row by row
    (Float64 named ``iou``; null where either side is null). Raises ValueError for a kind
    without IoU (classifications).

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"a": [[0, 4]], "b": [[2, 6]]})
    >>> df.select(aligned_iou_expr("span", pl.col("a"), "b")).item()
    0.3333333333333333
    """
    iou = kind(kind_name).aligned_iou
    if iou is None:
        with_iou = [k.name for k in REGISTRY if k.aligned_iou is not None]
        raise ValueError(f"kind {kind_name!r} has no IoU (it matches by equality); "
                         f"IoU expressions exist for {with_iou}.")
    other = pl.col(other) if isinstance(other, str) else other
    names = (_name(expr, "left"), _name(other, "right"))
    batch = partial(_null_aware, iou=partial(iou, **options), kind_name=kind_name, names=names)
    return pl.struct(expr.alias("a"), other.alias("b")).map_batches(
        batch, return_dtype=pl.Float64).alias(s.IOU)


def _name(expr: pl.Expr, default: str) -> str:
    try:
        return expr.meta.output_name()
    except Exception:  # an expression without one output name
        return default


def _null_aware(pairs: pl.Series, iou, kind_name: str, names: tuple[str, str]) -> pl.Series:
    """Run ``iou(a, b) -> ndarray`` on the rows where both sides are present, after the row
    checks ``pm.evaluate`` runs (same reasons, rows named by their position in the frame)."""
    a, b = pairs.struct.field("a"), pairs.struct.field("b")
    valid = a.is_not_null() & b.is_not_null()
    out = pl.Series(s.IOU, [None] * pairs.len(), dtype=pl.Float64)
    if valid.any():
        rows = valid.arg_true().to_numpy()
        a, b = a.filter(valid), b.filter(valid)
        check_values(a, rows, kind_name, names[0])
        check_values(b, rows, kind_name, names[1])
        vals = iou(a, b)
        out = out.scatter(valid.arg_true(), pl.Series(vals, dtype=pl.Float64))
    return out


def check_values(values: pl.Series, rows, kind_name: str, table: str) -> None:
    """Raise the error ``pm.evaluate`` raises for any invalid value of a geometry column
    (``rows``: each value's row in the frame).

    Examples
    --------
    >>> import numpy as np
    >>> check_values(pl.Series([[0.0, 0.0, 1.0, 1.0], [2.0, 0.0, 1.0, 1.0]]), np.array([0, 3]),
    ...              "box", "a")
    Traceback (most recent call last):
    ...
    polars_metrics.errors.InvalidAnnotationError: a.bbox: 1 row(s) invalid: bbox has x1 < x0 or y1 < y0.
      row 3: bbox=[2.0, 0.0, 1.0, 1.0]
    Fix: store boxes as (x0, y0, x1, y1) with x0 <= x1 and y0 <= y1 (pm.bbox_from_xywh converts x/y/width/height).
    """
    k = kind(kind_name)
    if kind_name == polygon.NAME and isinstance(values.dtype, pl.Array) and values.dtype.size == 4:
        k = kind(box.NAME)  # polygon_iou takes boxes as rectangles
    if k.name == span.NAME:  # (start, end) pairs or structs: checked as the two columns
        start, end, _ = span._parts(values)
        frame = pl.DataFrame({s.START: start, s.END: end})
    else:
        frame = pl.DataFrame({k.geometry[0]: values})
    frame = frame.with_columns(pl.Series(POS, rows, dtype=pl.Int64),
                               pl.Series(s.ID, rows, dtype=pl.Int64))
    frame = k.normalize(frame, table)
    run_checks(frame, table, (), k.checks(table, ()), "raise")
