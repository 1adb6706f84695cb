"""Small frame builders for the hand cases of ``pm.labelbox_sdk`` (one data row, "r").

``obj(kind, name, sub=...)`` is one object annotation of a fixed shape per kind (the shapes the
SDK's own metric tests use); ``table(rows, columns)`` makes a frame with the canonical dtypes.
"""
from __future__ import annotations

import numpy as np
import polars as pl

import polars_metrics as pm
from polars_metrics import schema as s

SUB_DTYPE = pl.List(pl.Struct({s.QUESTION: pl.String, s.KIND: pl.String, s.ANSWER: pl.String}))
DTYPES = {
    s.DATA_ROW: pl.String, s.FEATURE: pl.String, s.KIND: pl.String, s.BBOX: s.BBOX_DTYPE,
    s.POLYGON: s.POLYGON_DTYPE, s.LINE: s.LINE_DTYPE, s.POINT: s.POINT_DTYPE,
    s.MASK: s.MASK_DTYPE, s.START: pl.Int64, s.END: pl.Int64, s.QUESTION: pl.String,
    s.ANSWER: pl.String, s.ANSWERS: pl.List(pl.String), "subclasses": SUB_DTYPE,
    "span_end": pl.String,
}
SQUARE = [[0.0, 0], [10, 0], [10, 10], [0, 10]]


def mask(pixels, size: int = 32) -> dict:
    """A size x size mask with the given (row, column) pixels set, as a ``mask`` struct."""
    arr = np.zeros((size, size), np.uint8)
    for r, c in pixels:
        arr[r, c] = 1
    return pm.masks_from_arrays([arr]).to_list()[0]


# one geometry per kind: identical on both sides in the "same shape" cases
SHAPES = {
    "polygon": {s.POLYGON: [SQUARE]},
    "box": {s.BBOX: [0.0, 0, 10, 10]},
    "mask": {s.MASK: mask([(0, 0)])},
    "line": {s.LINE: SQUARE},
    "point": {s.POINT: [0.0, 0]},
    "span": {s.START: 0, s.END: 10},
}


def obj(kind: str, name: str = "cat", sub: str | None = None, **geometry) -> dict:
    """One object annotation; ``sub`` = the answer of a nested radio "is_animal"."""
    row = {s.DATA_ROW: "r", s.FEATURE: name, s.KIND: kind, **(geometry or SHAPES[kind])}
    row["subclasses"] = [] if sub is None else [
        {s.QUESTION: "is_animal", s.KIND: "radio", s.ANSWER: sub}]
    return row


def radio(question: str, answer: str) -> dict:
    return {s.DATA_ROW: "r", s.KIND: "radio", s.QUESTION: question, s.ANSWER: answer}


def checklist(question: str, answers: list[str]) -> dict:
    return {s.DATA_ROW: "r", s.KIND: "checklist", s.QUESTION: question, s.ANSWERS: answers}


def text(question: str, answer: str) -> dict:
    return {s.DATA_ROW: "r", s.KIND: "text", s.QUESTION: question, s.ANSWER: answer}


def frames(gt_rows: list[dict], pd_rows: list[dict],
           like: dict | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Both sides with the same columns (those either side or ``like`` uses, and ``feature``)
    and canonical dtypes."""
    rows = gt_rows + pd_rows + ([like] if like else [])
    columns = [c for c in DTYPES if c == s.FEATURE or any(c in r for r in rows)]
    schema = {c: DTYPES[c] for c in columns}

    def table(rows):
        return pl.DataFrame([{c: r.get(c) for c in columns} for r in rows], schema=schema,
                            strict=False)
    return table(gt_rows), table(pd_rows)
