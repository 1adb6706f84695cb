"""Text spans (NER): ``start``, ``end`` character offsets, half-open [start, end), and an
optional ``message_id`` (conversations).

IoU = max(0, min(end) - max(start)) / (max(end) - min(start)); two zero-length spans at the
same offset → 1; spans of different messages → 0 (a null ``message_id`` is a message of its
own). The labeling platform writes an inclusive ``end``; its readers add 1. Checks: null
offsets, negative offsets, ``end < start``.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from polars_metrics import _arrays
from polars_metrics import schema as s
from polars_metrics._lazy import lazy
from polars_metrics._parallel import run_ranges
from polars_metrics._threads import serial_if_small
from polars_metrics.errors import SchemaError
from polars_metrics.kinds._base import Kind
from polars_metrics.validation import Check

K = lazy("polars_metrics._kernels.span")

NAME = "span"
GEOMETRY = (s.START, s.END)


def normalize(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """Cast ``start`` / ``end`` to Int64 (any integer dtype is accepted).

    >>> f = pl.DataFrame({"start": [0], "end": [4]}, schema={"start": pl.UInt8, "end": pl.Int32})
    >>> normalize(f, "gt").schema
    Schema([('start', Int64), ('end', Int64)])
    """
    casts = []
    for col in GEOMETRY:
        dtype = frame.schema[col]
        if dtype == s.SPAN_DTYPE:
            continue
        if dtype == pl.Null or dtype.is_integer():
            casts.append(pl.col(col).cast(s.SPAN_DTYPE))
        else:
            raise SchemaError(f"{table}.{col} has dtype {dtype}; expected integer character offsets "
                              f"(Int64), half-open [{s.START}, {s.END}).")
    return frame.with_columns(casts) if casts else frame


def checks(table: str, keys=()) -> list[Check]:
    """Null offsets, negative offsets, ``end < start``.

    >>> f = pl.DataFrame({"start": [0, 5, -1], "end": [4, 3, 2]})
    >>> [c.mask(f).tolist() for c in checks("gt")][2:]
    [[False, False, True], [False, True, False]]
    """
    start, end = pl.col(s.START), pl.col(s.END)
    return [
        Check(s.START, start.is_null(), "span start is null", "give every span its start offset"),
        Check(s.END, end.is_null(), "span end is null", "give every span its end offset"),
        Check(s.START, start < 0, "span start is negative", "offsets count characters from 0"),
        Check(s.END, end < start, "span end < start",
              f"spans are half-open [{s.START}, {s.END}) with {s.END} >= {s.START} (an inclusive "
              "end, as the platform exports it, needs + 1)"),
    ]


def message_codes(a: pl.Series | None, b: pl.Series | None, n_a: int, n_b: int):
    """Integer codes of message ids, shared by both sides (null → 0, its own message).

    >>> a, b = message_codes(pl.Series(["m1", None]), pl.Series(["m2", "m1"]), 2, 2)
    >>> a.tolist(), b.tolist()
    ([1, 0], [2, 1])
    """
    if a is None and b is None:
        return np.zeros(n_a, np.int64), np.zeros(n_b, np.int64)
    a = pl.Series([None] * n_a, dtype=(b.dtype if b is not None else pl.String)) if a is None else a
    b = pl.Series([None] * n_b, dtype=a.dtype) if b is None else b
    if a.dtype != b.dtype:
        a, b = a.cast(pl.String), b.cast(pl.String)
    codes = pl.concat([a, b]).rank("dense").fill_null(0).cast(pl.Int64).to_numpy()
    return np.ascontiguousarray(codes[:n_a]), np.ascontiguousarray(codes[n_a:])


def _message(side) -> pl.Series | None:
    return side.column(s.MESSAGE_ID) if s.MESSAGE_ID in side.frame.columns else None


def pairs(gt, pd, profile=None):
    """Candidate pairs with IoU > 0 per data row (see ``_kernels.span.span_pairs``); the
    profile is not read."""
    gm, pm = message_codes(_message(gt), _message(pd), len(gt), len(pd))
    with serial_if_small(len(gt) + len(pd), small=65536):
        return K.span_pairs(_arrays.i64(gt.column(s.START)), _arrays.i64(gt.column(s.END)), gm,
                          gt.off, _arrays.i64(pd.column(s.START)), _arrays.i64(pd.column(s.END)),
                          pm, pd.off, run=run_ranges)


def _parts(x: pl.Series) -> tuple[pl.Series, pl.Series, pl.Series | None]:
    """(start, end, message id or None) of a span column: Struct{start, end[, message_id]} or
    (start, end) as a 2-element Array / List."""
    if isinstance(x.dtype, pl.Struct):
        names = [f.name for f in x.dtype.fields]
        msg = x.struct.field(s.MESSAGE_ID) if s.MESSAGE_ID in names else None
        return x.struct.field(s.START), x.struct.field(s.END), msg
    if isinstance(x.dtype, pl.Array) and x.dtype.size == 2:
        return x.arr.get(0), x.arr.get(1), None
    if isinstance(x.dtype, pl.List):
        lengths = x.list.len()
        bad = (lengths != 2).fill_null(False)
        if bad.any():
            i = int(bad.arg_true()[0])
            raise SchemaError(f"span: row {i} has {lengths[i]} values; expected (start, end).")
        return x.list.get(0), x.list.get(1), None
    raise SchemaError(f"span values have dtype {x.dtype}; expected Struct{{start, end}} or "
                      "(start, end) as a 2-element Array / List of integers.")


def aligned_iou(a: pl.Series, b: pl.Series) -> np.ndarray:
    """IoU of span a[i] with b[i] for every i (no nulls): Struct{start, end[, message_id]} or
    (start, end) as a 2-element Array / List of integers; half-open [start, end).

    Examples
    --------
    >>> a = pl.Series([[0, 10], [0, 4], [3, 3]])
    >>> b = pl.Series([[5, 15], [4, 8], [3, 3]])
    >>> aligned_iou(a, b).tolist()
    [0.3333333333333333, 0.0, 1.0]
    """
    a0, a1, am = _parts(a)
    b0, b1, bm = _parts(b)
    n = len(a0)
    am, bm = message_codes(am, bm, n, n)
    out = np.empty(n, np.float64)
    run_ranges(K.span_iou_aligned, (_arrays.i64(a0), _arrays.i64(a1), am, _arrays.i64(b0),
                                    _arrays.i64(b1), bm, out), np.arange(n + 1, dtype=np.int64))
    return out


KIND = Kind(NAME, GEOMETRY, normalize, checks, pairs, aligned_iou=aligned_iou)
