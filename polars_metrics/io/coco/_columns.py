"""Column builders shared by the COCO reader's stages: JSON values to typed numpy columns
with a "bad" mask, and numpy columns to polars Series; plus the reader's rejects wording."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics._lazy import lazy
from polars_metrics._rejects import Reject, Rejects
from polars_metrics.errors import FormatError
from polars_metrics.kinds import KIND_DTYPE, KIND_NAMES

msgspec = lazy("msgspec")


def _message(rej: Reject, count: int, fix: str) -> str:
    more = f" ({count} entries in all)" if count > 1 else ""
    return (f'{rej.table}[{rej.row}]: "{rej.column}" {rej.reason}{more}. {fix}'
            'Fix the file, or pass on_invalid="drop" to set such entries aside.')


def coco_rejects(on_invalid: str) -> Rejects:
    """The rejects collector, with errors worded in COCO's terms (``annotations[3]: "bbox" ...``)."""
    return Rejects(on_invalid, _message)


def fail(msg: str) -> FormatError:
    return FormatError(msg + " The file does not follow the COCO format.")


def load_json(obj: Any, what: str) -> Any:
    """A parsed JSON file (msgspec: 2-3x the standard library's speed on COCO files, see
    pyproject.toml); what msgspec refuses and Python's json reads (``NaN``, ``Infinity``) is
    read by the latter, so nothing the previous reader took is lost."""
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        with open(path, "rb") as f:
            data = f.read()
        try:
            return msgspec.json.decode(data)
        except msgspec.DecodeError:
            pass
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise FormatError(f"{what} {path}: not valid JSON ({e}).") from e
    return obj


def _all_of(values: list, types: set[type]) -> bool:
    """Every value's exact type is one of ``types`` (bool is not int here)."""
    return set(map(type, values)) <= types


INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1  # ids and sizes are int64 columns


def int_column(values: list) -> tuple[np.ndarray, np.ndarray]:
    """Values as int64 plus a 'bad' mask: missing, not an integer, a bool, or an integer
    beyond int64 (JSON numbers have no size limit; the rejects say "not a 64-bit integer").

    >>> out, bad = int_column([3, 2.0, None, True, 1.5, 2**63, -2**63])
    >>> out.tolist(), bad.tolist()
    ([3, 2, 0, 0, 0, 0, -9223372036854775808], [False, False, True, True, True, True, False])
    """
    if values and _all_of(values, {int}):  # the usual file: one conversion, no Python loop
        try:
            return np.array(values, np.int64), np.zeros(len(values), bool)
        except OverflowError:
            pass
    out = np.zeros(len(values), np.int64)
    bad = np.zeros(len(values), bool)
    for i, v in enumerate(values):
        if isinstance(v, bool) or v is None:
            bad[i] = True
        elif isinstance(v, int) and INT64_MIN <= v <= INT64_MAX:
            out[i] = v
        elif isinstance(v, float) and v.is_integer() and INT64_MIN <= v < -INT64_MIN:
            out[i] = int(v)
        else:
            bad[i] = True
    return out, bad


def float_column(values: list) -> tuple[np.ndarray, np.ndarray]:
    if values and _all_of(values, {int, float}):
        try:
            out = np.array(values, np.float64)
            return out, ~np.isfinite(out)
        except OverflowError:
            pass
    out = np.full(len(values), np.nan)
    bad = np.zeros(len(values), bool)
    for i, v in enumerate(values):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and _finite(v):
            out[i] = v
        else:
            bad[i] = True
    return out, bad


def _finite(v: int | float) -> bool:
    """A JSON number that is a finite float64 (an integer beyond ~1.8e308 is not).

    >>> _finite(1.5), _finite(float("nan")), _finite(10**400)
    (True, False, False)
    """
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def bbox_column(values: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, 4) xywh, ``missing`` (absent / empty list), ``bad`` (malformed) masks."""
    n = len(values)
    if n and _all_of(values, {list}) and set(map(len, values)) == {4}:
        try:  # every entry a 4-list: the loop below would assign each one the same way
            out = np.array(values, np.float64)
            return out, np.zeros(n, bool), ~np.isfinite(out).all(axis=1)
        except (TypeError, ValueError, OverflowError):
            pass
    out = np.full((n, 4), np.nan)
    missing = np.zeros(n, bool)
    bad = np.zeros(n, bool)
    for i, v in enumerate(values):
        if isinstance(v, np.ndarray):  # pycocotools' loadRes stores toBbox() arrays in place
            v = v.tolist() if v.ndim == 1 else None if v.size == 0 else [v.tolist()]
        if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
            missing[i] = True
            continue
        if not isinstance(v, (list, tuple)) or len(v) != 4:
            bad[i] = True
            continue
        try:
            out[i] = v
        except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond float
            bad[i] = True
    bad |= ~missing & ~np.isfinite(out).all(axis=1)
    return out, missing, bad


def enum_take(names: list[str], enum: pl.Enum, codes: np.ndarray) -> pl.Series:
    """Enum column from category positions (-1 = null), without a Python string per row."""
    codes = np.asarray(codes, dtype=np.int64)
    idx = pl.Series(np.maximum(codes, 0).astype(np.uint32))
    if (codes < 0).any():
        idx = pl.select(pl.when(pl.lit(pl.Series(codes >= 0))).then(pl.lit(idx))).to_series()
    if not names:
        return pl.Series([None] * codes.size, dtype=enum)
    return pl.Series(names, dtype=enum).gather(idx)


def kind_column(is_mask: np.ndarray, null: np.ndarray | None = None) -> pl.Series:
    """"mask" / "box" per row (null where ``null``), as the ``kind`` Enum: a byte a row (a
    String column would hold a 16-byte view a row).

    >>> kind_column(np.array([True, False, False]), null=np.array([False, False, True])).to_list()
    ['mask', 'box', None]
    """
    codes = np.where(is_mask, KIND_NAMES.index("mask"), KIND_NAMES.index("box"))
    if null is not None:
        codes = np.where(null, -1, codes)
    return enum_take(KIND_NAMES, KIND_DTYPE, codes).alias(s.KIND)


def comparable_kind(has_box: np.ndarray, has_mask: np.ndarray, iou_type: str) -> np.ndarray:
    """Whether each row's ``kind`` is "mask": by ``iou_type``, not by what each entry happens
    to carry (ground truths with a segmentation read as masks while detections read as boxes
    would never pair): "bbox" makes every row with a box a box, "segm" every row with a mask
    a mask."""
    return ~has_box if iou_type == "bbox" else has_mask


def xyxy(xywh: np.ndarray) -> np.ndarray:
    """x0, y0, x1, y1 from x, y, w, h (one new array, no temporaries)."""
    out = np.empty_like(xywh)
    out[:, :2] = xywh[:, :2]
    np.add(xywh[:, :2], xywh[:, 2:], out=out[:, 2:])
    return out


def nonneg_or_null(name: str, values: np.ndarray) -> pl.Series:
    """Int64 column with the negative values (unknown image sizes) as nulls."""
    col = pl.Series(name, values, dtype=pl.Int64)
    neg = values < 0
    if neg.any():
        col = pl.select(pl.when(pl.lit(pl.Series(neg))).then(None).otherwise(pl.lit(col))
                        ).to_series().alias(name)
    return col


def array_series(name: str, arr: np.ndarray, null: np.ndarray) -> pl.Series:
    col = pl.Series(name, np.ascontiguousarray(arr, dtype=np.float64), dtype=s.BBOX_DTYPE)
    if null.any():
        col = pl.select(pl.when(pl.lit(pl.Series(~null))).then(pl.lit(col))).to_series().alias(name)
    return col


def take_mask(mask: pl.Series, idx: np.ndarray) -> pl.Series:
    """Rows ``idx`` of a mask column, -1 = null."""
    col = mask.gather(np.maximum(idx, 0))
    if (idx < 0).any():
        col = pl.select(pl.when(pl.lit(pl.Series(idx >= 0))).then(pl.lit(col))).to_series()
    return col.alias(s.MASK)




def repeats(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """True on the ``ok`` entries whose value an earlier ``ok`` entry already has."""
    dup = np.zeros(values.size, bool)
    if ok.any():
        rows = np.flatnonzero(ok)
        _, first = np.unique(values[rows], return_index=True)
        dup[rows] = True
        dup[rows[first]] = False
    return dup


def find_sorted(sorted_ids: np.ndarray, values: np.ndarray, valid: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``values`` in ``sorted_ids`` (unique) and whether each (``valid``) value is
    there; positions of values that are not there are unspecified. Ids spanning a compact
    range (the usual 1..n) go through a lookup table: a few linear passes instead of a binary
    search per value."""
    m = sorted_ids.size
    if m and values.size > m and int(sorted_ids[-1]) - int(sorted_ids[0]) < 4 * m + 4096:
        lo = sorted_ids[0]
        lut = np.full(int(sorted_ids[-1] - lo) + 1, -1, np.int64)
        lut[sorted_ids - lo] = np.arange(m)
        pos = lut.take(values - lo, mode="clip")  # wrapped or clipped offsets: checked below
    else:
        pos = np.searchsorted(sorted_ids, values)
    np.clip(pos, 0, max(m - 1, 0), out=pos)
    known = valid & (sorted_ids.take(pos) == values) if m else np.zeros(values.size, bool)
    return pos, known
