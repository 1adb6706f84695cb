"""Input frames as the SDK sees them, before the engine's ``prepare``.

Slimmed to the columns the SDK's rules read, spans given their raw numbers back
(``span_end="from_column"``), coordinates rounded like the SDK's geojson round trip
(``coordinate_decimals``), placeholder rows given a kind; after ``prepare``, nested
classifications (``subclasses``) become integer (key, value) sets per annotation.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl

from polars_metrics import _arrays
from polars_metrics import schema as s
from polars_metrics._kernels.labelbox_sdk import round_decimals
from polars_metrics._lazy import lazy
from polars_metrics.prepare import Prepared, Side, to_frame
from polars_metrics.profiles import SdkOptions

pa = lazy("pyarrow")

SUBCLASSES = "subclasses"  # list of {question, kind, answer | answers} structs per annotation
SPAN_END = "span_end"      # span rows: "inclusive" when a reader added 1 to ``end``
CLASSIFICATION_KINDS = ("radio", "checklist", "text")
USED_COLUMNS = (s.FEATURE, s.KIND, s.BBOX, s.POLYGON, s.POINT, s.LINE, s.MASK, s.START, s.END,
                s.MESSAGE_ID, s.QUESTION, s.ANSWER, s.ANSWERS, SPAN_END)
ROUNDED_COLUMNS = (s.BBOX, s.POINT, s.POLYGON, s.LINE)


def sdk_frames(gt, pd, keys: list[str], sdk: SdkOptions) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Both tables as the SDK's rules read them (see the module docstring).

    Examples
    --------
    >>> from polars_metrics.profiles import SdkOptions
    >>> gt = pl.DataFrame({"data_row": ["a"], "id": [7], "start": [0], "end": [6],
    ...                    "span_end": ["inclusive"]})
    >>> sdk_frames(gt, gt.clear(), ["data_row"], SdkOptions())[0]["end"].to_list()
    [5]
    >>> sdk_frames(gt, gt.clear(), ["data_row"], SdkOptions(span_end="as_given"))[0].columns
    ['data_row', 'start', 'end', 'span_end']
    """
    out = []
    for table, name in ((gt, s.GROUND_TRUTH), (pd, s.PREDICTIONS)):
        frame = slim(to_frame(table, name), keys, sdk.include_subclasses)
        if sdk.span_end == "from_column":
            frame = raw_spans(frame)
        if sdk.coordinate_decimals is not None:
            frame = round_coordinates(frame, sdk.coordinate_decimals)
        out.append(frame)
    return placeholder_kinds(out[0], out[1])


def slim(frame: pl.DataFrame, keys, include_subclasses: bool) -> pl.DataFrame:
    """Only the columns the SDK's rules read: ids and confidences play no part in them."""
    used = set(USED_COLUMNS) | set(keys) | ({SUBCLASSES} if include_subclasses else set())
    return frame.select([c for c in frame.columns if c in used])


def raw_spans(frame: pl.DataFrame) -> pl.DataFrame:
    """Give spans read with an inclusive end their raw numbers back (the SDK's arithmetic)."""
    if SPAN_END not in frame.columns or s.END not in frame.columns:
        return frame
    inclusive = pl.col(SPAN_END) == "inclusive"
    if s.KIND in frame.columns:
        inclusive = inclusive & (pl.col(s.KIND).cast(pl.String) == "span")
    return frame.with_columns(
        pl.when(inclusive.fill_null(False)).then(pl.col(s.END) - 1).otherwise(pl.col(s.END))
        .alias(s.END))


def round_like_python(x: np.ndarray, decimals: int = 6) -> np.ndarray:
    """``round(v, decimals)`` of Python for every value, vectorized.

    ``rint(v * 10**d) / 10**d`` is Python's result whenever the product is not within rounding
    error of a half-integer (the division of two exact numbers is correctly rounded, as is
    Python's decimal-string conversion); the rare ambiguous values are rounded by Python.

    Examples
    --------
    >>> round_like_python(np.array([2.5e-6, 0.1234565, 1.0000005])).tolist()
    [3e-06, 0.123456, 1.000001]
    >>> [round(v, 6) for v in (2.5e-6, 0.1234565, 1.0000005)]
    [3e-06, 0.123456, 1.000001]
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty_like(x)
    ambiguous = np.empty(x.shape[0], dtype=np.bool_)
    if round_decimals(x, 10.0 ** decimals, out, ambiguous):
        for i in np.flatnonzero(ambiguous):
            out[i] = round(float(x[i]), decimals)
    return out


def _round_leaves(arr, decimals: int):
    """Round the float leaves of a (nested) Arrow list / fixed-size-list array."""
    t = arr.type
    mask = arr.is_null() if arr.null_count else None
    if pa.types.is_floating(t):
        values = arr.to_numpy(zero_copy_only=False).astype(np.float64)
        null = None if mask is None else mask.to_numpy(zero_copy_only=False)
        return pa.array(round_like_python(values, decimals), pa.float64(), mask=null)
    if pa.types.is_fixed_size_list(t):
        size = t.list_size
        child = arr.values.slice(arr.offset * size, len(arr) * size)
        return pa.FixedSizeListArray.from_arrays(_round_leaves(child, decimals), size, mask=mask)
    offsets = arr.offsets.to_numpy().astype(np.int64)
    child = arr.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
    return pa.LargeListArray.from_arrays(pa.array(offsets - offsets[0], pa.int64()),
                                         _round_leaves(child, decimals), mask=mask)


def round_coordinates(frame: pl.DataFrame, decimals: int) -> pl.DataFrame:
    """Round geometry coordinates, as the SDK's geojson-built shapes are (6 decimals)."""
    cols = []
    for name in ROUNDED_COLUMNS:
        if name not in frame.columns or frame[name].null_count() == frame.height:
            continue
        col = frame[name].rechunk()
        leaf = col.dtype
        while isinstance(leaf, pl.List | pl.Array):
            leaf = leaf.inner
        if not leaf.is_float():
            continue
        rounded = pl.from_arrow(_round_leaves(col.to_arrow(), decimals))
        cols.append(pl.Series(name, rounded).cast(col.dtype))
    return frame.with_columns(cols) if cols else frame


def placeholder_kinds(gt: pl.DataFrame, pd: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Give placeholder rows (null kind: "this data row exists") a kind of the tables, so a
    table made only of placeholders still passes the engine's per-kind checks."""
    kinds = [f[s.KIND].cast(pl.String).drop_nulls() for f in (gt, pd) if s.KIND in f.columns]
    present = pl.concat(kinds).unique().sort().to_list() if kinds else []
    fill = present[0] if present else "box"

    def fix(frame):
        if s.KIND not in frame.columns or frame[s.KIND].null_count() == 0:
            return frame
        return frame.with_columns(pl.col(s.KIND).cast(pl.String).fill_null(fill))
    return fix(gt), fix(pd)


def object_features(prep: Prepared) -> np.ndarray:
    """Per feature code: is it an object feature (zero-IoU pairs matter in subclass mode)?"""
    out = np.zeros(max(len(prep.features), 1), dtype=np.bool_)
    code = {f: i for i, f in enumerate(prep.features)}
    for side in (prep.gt, prep.pd):
        pairs = side.frame.select(s.FEATURE, s.KIND).unique().drop_nulls().rows()
        out[[code[f] for f, k in pairs if f in code and str(k) not in CLASSIFICATION_KINDS]] = True
    return out


class SubclassCodes(NamedTuple):
    """Nested classifications of one side, CSR over its annotations (side order)."""

    off: np.ndarray   # offsets, length n + 1
    key: np.ndarray   # int64, sorted and unique per annotation
    val: np.ndarray   # int64 (text answer code; 0 for radio / checklist)
    has: np.ndarray   # bool: the annotation's subclasses list is non-empty
    dictionary: dict  # string -> code, shared by both sides


def subclass_codes(side: Side, include: bool, shared: SubclassCodes | None = None) -> SubclassCodes:
    """Nested classifications as integer (key, value) sets per annotation, in side order.

    Keys: radio ("r", question, answer), checklist option ("c", question, option), text
    ("t", question) with the answer string as value. Pass the other side's codes as
    ``shared`` so both sides use one dictionary.
    """
    n = len(side)
    empty = SubclassCodes(np.zeros(n + 1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
                          np.zeros(n, np.bool_), shared.dictionary if shared else {})
    if not include or n == 0 or SUBCLASSES not in side.frame.columns:
        return empty
    col = side.column(SUBCLASSES)
    has = col.list.len().fill_null(0).to_numpy() > 0
    flat = (pl.DataFrame({"_a": np.arange(n, dtype=np.int64), "_s": col})
            .explode("_s").drop_nulls("_s").unnest("_s"))
    if flat.height == 0:
        return empty._replace(has=has)
    entries = _entries(flat)
    dictionary = dict(shared.dictionary) if shared else {}
    for name in entries["_k"].unique().to_list() + [v for v in entries["_v"].unique().to_list()
                                                    if v is not None]:
        dictionary.setdefault(name, len(dictionary) + 1)
    keyed = entries.with_columns(
        pl.col("_k").replace_strict(dictionary, return_dtype=pl.Int64),
        pl.col("_v").replace_strict(dictionary, default=0, return_dtype=pl.Int64)
        .fill_null(0)).sort("_a", "_k")
    return SubclassCodes(_arrays.offsets(keyed["_a"].to_numpy(), n), _arrays.i64(keyed["_k"]),
                         _arrays.i64(keyed["_v"]), has, dictionary)


def _entries(flat: pl.DataFrame) -> pl.DataFrame:
    """(annotation ``_a``, key string ``_k``, text value ``_v``) of the unnested subclasses."""
    missing = {s.QUESTION: pl.String, s.ANSWER: pl.String, s.ANSWERS: pl.List(pl.String),
               s.KIND: pl.String}
    flat = flat.with_columns(pl.lit(None, dtype).alias(c) for c, dtype in missing.items()
                             if c not in flat.columns)
    q = pl.col(s.QUESTION).fill_null("")
    kind = pl.col(s.KIND).fill_null(  # a struct without "kind": radio, or checklist by answers
        pl.when(pl.col(s.ANSWERS).is_not_null()).then(pl.lit("checklist")).otherwise(pl.lit("radio")))
    no_value = pl.lit(None, pl.String).alias("_v")
    radio = flat.filter(kind == "radio").select(
        "_a", pl.concat_str(pl.lit("r\x1f"), q, pl.lit("\x1f"), pl.col(s.ANSWER).fill_null(""))
        .alias("_k"), no_value)
    check = (flat.filter(kind == "checklist").select("_a", q.alias(s.QUESTION), s.ANSWERS)
             .explode(s.ANSWERS).drop_nulls(s.ANSWERS)
             .select("_a", pl.concat_str(pl.lit("c\x1f"), pl.col(s.QUESTION), pl.lit("\x1f"),
                                         pl.col(s.ANSWERS)).alias("_k"), no_value))
    text = flat.filter(kind == "text").select(
        "_a", pl.concat_str(pl.lit("t\x1f"), q).alias("_k"), pl.col(s.ANSWER).alias("_v"))
    return pl.concat([radio, check, text]).unique(subset=["_a", "_k"], keep="first",
                                                  maintain_order=True)
