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
from polars_metrics._threads import serial_if_small
from polars_metrics.errors import SchemaError
from polars_metrics.validation import Check

K = lazy("polars_metrics._kernels.span")

NAME = "span"
GEOMETRY = (s.START, s.END)


def normalize(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """Cast ``start`` / ``end`` to Int64 (any integer dtype is accepted)."""
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


def checks(table: str, keys=None) -> list[Check]:
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
    """Integer codes of message ids, shared by both sides (null → 0, its own message)."""
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


def pairs(gt, pd):
    """Candidate pairs with IoU > 0 per data row (see ``_kernels.span.span_pairs``)."""
    gm, pm = message_codes(_message(gt), _message(pd), len(gt), len(pd))
    with serial_if_small(len(gt) + len(pd), small=65536):
        return K.span_pairs(_arrays.i64(gt.column(s.START)), _arrays.i64(gt.column(s.END)), gm,
                          gt.off, _arrays.i64(pd.column(s.START)), _arrays.i64(pd.column(s.END)),
                          pm, pd.off)


def aligned_iou(a_start, a_end, b_start, b_end, a_message=None, b_message=None) -> np.ndarray:
    """IoU of span a[i] with b[i] for every i (int arrays or Series; messages optional)."""
    n = len(a_start)
    am, bm = message_codes(a_message, b_message, n, n)
    return K.span_iou_aligned(_arrays.i64(a_start), _arrays.i64(a_end), am,
                            _arrays.i64(b_start), _arrays.i64(b_end), bm)
