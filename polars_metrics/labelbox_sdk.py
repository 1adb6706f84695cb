"""The Labelbox SDK's metric functions, as frames: ``pm.labelbox_sdk``.

Reproduces ``labelbox.data.metrics`` (``labelbox[data]==7.17.0``) to 1e-9, on every data row
at once: :func:`feature_confusion_matrix` ↔ ``feature_confusion_matrix_metric``,
:func:`confusion_matrix` ↔ ``confusion_matrix_metric``, :func:`feature_miou` ↔
``feature_miou_metric``, :func:`miou` ↔ ``miou_metric`` — called by the SDK once per data row
with that row's ground truths and predictions.

The rules, read from the SDK's source (``metrics/group.py``, ``confusion_matrix/calculation.py``,
``iou/calculation.py``):

- Annotations are grouped per data row by feature: objects by name; radio classifications by
  their **answer**; checklists exploded into one unit per selected option; free text by the
  question. Confidence is ignored. A feature present on neither side gives no metric; a data
  row with no annotation gives no metric.
- One side empty → confusion ``[0, n_pred, 0, n_gt]`` and IoU 0.
- Confusion (objects): pairs of the feature by IoU descending, ties in ground-truth-major input
  order; a pair matches iff ``iou > t`` (strict) and both members are free; TP = matches,
  FP = n_pred − TP, FN = n_gt − TP, TN = 0. A pair rejected by the threshold (or, with
  ``include_subclasses``, by its nested classifications) does not consume its members.
- Radio: the same answer on both sides → ``[1, 0, 0, 0]``; otherwise each answer is one-sided.
  Checklist options likewise. IoU of a shared answer/option is 1.
- IoU (objects): every (prediction, ground truth) pair by IoU descending, ties in
  **prediction-major** order (the SDK builds these pairs from ``product(predictions,
  ground_truths)``), matched greedily without threshold, zero-IoU pairs included; value =
  Σ matched IoU / max(n_gt, n_pred). (Greedy matching of a class of equal IoUs picks the same
  pairs in gt-major and prediction-major order, so this equals the engine's IoU metric.)
- Masks: instance IoU in the confusion matrix; in the IoU metric (``include_subclasses=False``)
  the IoU of the *union* of the feature's ground-truth masks with the union of its predicted
  masks (semantic); with subclasses, instance pairs as for other objects.
- Points and lines are buffered by 70 (shapely's ``buffer``) before polygon IoU.
- Coordinates of boxes, polygons, points and lines are rounded to 6 decimals first: the SDK
  builds its shapely geometry through ``geojson``, whose default precision is 6 (Python's
  ``round(x, 6)``, reproduced here exactly).
- NER spans: the SDK computes on the raw ``(start, end)`` numbers of the file
  (``(ie − is) / (ue − us)``, 1 for two equal empty spans). Frames read by
  :func:`polars_metrics.read_labelbox_ndjson` / ``read_labelbox_export`` with
  ``span_end="inclusive"`` (their default) added 1 to ``end`` and say so in their ``span_end``
  column; these functions subtract it again. Frames without that column are used as given.
- ``include_subclasses=True`` (objects only; one level of nested classifications from the
  ``subclasses`` column): agreement of two annotations = the mean, over the nested answers
  present on either side, of 1 when both sides have it (text: with equal strings) else 0.
  Confusion: a pair whose agreement is < 1 is skipped. IoU: a matched pair contributes
  ``(iou + agreement) / 2`` (``agreement`` := ``iou`` when neither has nested
  classifications), and zero-IoU pairs matched last contribute ``agreement / 2``.
- Per data row: confusion = sum over features; mIoU = mean over features.

Differences from the SDK — each one where the SDK is defective or raises:

1. Free-text classifications in the confusion matrix: the SDK raises ``ValueError``
   ("Unsupported subclass"); here equal strings are ``[1, 0, 0, 0]``, different strings
   ``[0, 1, 0, 1]`` (its IoU metric already scores text this way).
2. Two empty masks (or empty unions): the SDK's IoU is NaN (0/0), which also poisons the
   feature and data-row means; here it is 0.
3. Answer names shared by several questions (or with an object name): the SDK groups them into
   one feature (e.g. "yes" of two questions); the engine keeps them apart as
   ``"question/answer"`` (with a warning). Nested classifications are keyed by question and
   answer for the same reason. Identical results whenever answer names are unique.
4. Spans in different messages (``message_id``) never overlap here; the SDK ignores the message.
5. The SDK's ``confusion_matrix_metric`` refuses ``iou`` outside (0, 1); here any value in
   [0, 1] is accepted (``iou=1`` matches no object pair, classification pairs still match).
6. Invalid (self-intersecting) polygons are repaired once with ``make_valid`` (reported with
   a warning); the SDK uses ``buffer(0)``, which can keep a different part of the shape.
7. In subclass mode, a pair whose nested classifications hold no answer at all on either side
   (e.g. only a checklist with no option selected) makes the SDK raise ``TypeError``
   (``None < 1.0``); here such a pair agrees.
8. Objects of different kinds under one feature name pair only where the engine pairs kinds
   (box ↔ polygon); the SDK dispatches on the first prediction's type.
9. ``feature_miou_metric`` defaults to ``include_subclasses=True`` in the SDK; every function
   here defaults to ``False`` — pass it explicitly to compare.

Examples
--------
>>> import polars as pl, polars_metrics as pm
>>> box = pl.Array(pl.Float64, 4)
>>> gt = pl.DataFrame({"data_row": ["a", "a"], "feature": ["car", "car"],
...                    "bbox": [[0.0, 0, 10, 10], [20.0, 0, 30, 10]]}, schema_overrides={"bbox": box})
>>> pd = pl.DataFrame({"data_row": ["a"], "feature": ["car"], "bbox": [[0.0, 0, 10, 5]]},
...                   schema_overrides={"bbox": box})
>>> pm.labelbox_sdk.feature_confusion_matrix(gt, pd, iou=0.4).rows()
[('a', 'car', 1, 0, 0, 1)]
>>> pm.labelbox_sdk.miou(gt, pd).rows()
[('a', 0.25)]
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics._kernels.labelbox_sdk import (
    round_decimals,
    sdk_feature_metrics,
    semantic_mask_iou,
)
from polars_metrics.errors import PolarsMetricsWarning
from polars_metrics.matching import row_features
from polars_metrics.pairs import build_pairs
from polars_metrics.prepare import Prepared, prepare, to_frame
from polars_metrics.profiles import get_profile

SUBCLASSES = "subclasses"
SPAN_END = "span_end"
CLASSIFICATION_KINDS = ("radio", "checklist", "text")

__all__ = ["SdkMetrics", "confusion_matrix", "feature_confusion_matrix", "feature_miou", "metrics",
           "miou"]


class SdkMetrics(NamedTuple):
    """All four SDK metrics from one pass (see :func:`metrics`), and the input rows rejected
    with ``on_invalid="drop"`` (empty otherwise)."""

    feature_confusion_matrix: pl.DataFrame
    confusion_matrix: pl.DataFrame
    feature_miou: pl.DataFrame
    miou: pl.DataFrame
    rejects: pl.DataFrame


def feature_confusion_matrix(gt, pd, iou: float = 0.5, include_subclasses: bool = False, *,
                             data_row: str | Sequence[str] = s.DATA_ROW,
                             on_invalid: str = "raise") -> pl.DataFrame:
    """Per (data row, feature): ``tp, fp, tn, fn`` as ``feature_confusion_matrix_metric``.

    Returns (*data_row keys, ``feature``, ``tp``, ``fp``, ``tn``, ``fn``), one row per feature
    present on either side of a data row; ``tn`` is always 0. See the module docstring.
    """
    return metrics(gt, pd, iou, include_subclasses, data_row=data_row,
                   on_invalid=on_invalid).feature_confusion_matrix


def confusion_matrix(gt, pd, iou: float = 0.5, include_subclasses: bool = False, *,
                     data_row: str | Sequence[str] = s.DATA_ROW,
                     on_invalid: str = "raise") -> pl.DataFrame:
    """Per data row: the feature matrices summed, as ``confusion_matrix_metric``.

    Returns (*data_row keys, ``tp``, ``fp``, ``tn``, ``fn``) for data rows with annotations.
    """
    return metrics(gt, pd, iou, include_subclasses, data_row=data_row,
                   on_invalid=on_invalid).confusion_matrix


def feature_miou(gt, pd, include_subclasses: bool = False, *,
                 data_row: str | Sequence[str] = s.DATA_ROW,
                 on_invalid: str = "raise") -> pl.DataFrame:
    """Per (data row, feature): the IoU metric of ``feature_miou_metric``.

    Returns (*data_row keys, ``feature``, ``iou``). Note the SDK's default there is
    ``include_subclasses=True``; here it is False.
    """
    return metrics(gt, pd, 0.5, include_subclasses, data_row=data_row,
                   on_invalid=on_invalid).feature_miou


def miou(gt, pd, include_subclasses: bool = False, *,
         data_row: str | Sequence[str] = s.DATA_ROW, on_invalid: str = "raise") -> pl.DataFrame:
    """Per data row: the mean of the feature IoUs, as ``miou_metric``.

    Returns (*data_row keys, ``iou``) for data rows with annotations.
    """
    return metrics(gt, pd, 0.5, include_subclasses, data_row=data_row,
                   on_invalid=on_invalid).miou


def metrics(gt, pd, iou: float = 0.5, include_subclasses: bool = False, *,
            data_row: str | Sequence[str] = s.DATA_ROW, on_invalid: str = "raise") -> SdkMetrics:
    """All four frames in one pass over the data (pairs and matching computed once).

    ``on_invalid="drop"`` moves invalid input rows (SPEC §7) to ``.rejects`` instead of
    raising, with a :class:`~polars_metrics.errors.PolarsMetricsWarning` counting them.
    """
    iou = float(iou)
    if not 0.0 <= iou <= 1.0:
        raise ValueError(f"iou must be in [0, 1], got {iou}.")
    keys = [data_row] if isinstance(data_row, str) else list(data_row)
    gt = _sdk_coordinates(_raw_spans(_slim(to_frame(gt, s.GROUND_TRUTH), keys, include_subclasses)))
    pd = _sdk_coordinates(_raw_spans(_slim(to_frame(pd, s.PREDICTIONS), keys, include_subclasses)))
    gt, pd = _placeholder_kinds(gt, pd)
    prep = prepare(gt, pd, keys=keys, by=(), data_rows=None, profile=get_profile("labelbox-sdk"),
                   conf_thr=np.zeros(1), iou_thr=np.array([iou]), on_invalid=on_invalid)
    pairs = build_pairs(prep)
    rf_off, rf_feat = row_features(prep, prep.gt.feat, prep.pd.feat)
    n_rf = rf_feat.shape[0]
    gsc = _subclass_codes(prep.gt, include_subclasses)
    psc = _subclass_codes(prep.pd, include_subclasses, shared=gsc)
    tp, ngt, npd = (np.zeros(n_rf, np.int64) for _ in range(3))
    fiou = np.zeros(n_rf, np.float64)
    sdk_feature_metrics(
        prep.gt.off, prep.pd.off, prep.gt.feat, prep.pd.feat,
        pairs.off, pairs.gt, pairs.pd, pairs.iou, pairs.always,
        rf_off, rf_feat, _object_features(prep),
        iou, bool(include_subclasses),
        gsc.off, gsc.key, gsc.val, gsc.has, psc.off, psc.key, psc.val, psc.has,
        tp, ngt, npd, fiou, _chunks(prep.n_rows),
    )
    if not include_subclasses:
        _semantic_masks(prep, rf_off, rf_feat, ngt, npd, fiou)
    if prep.rejects.height:
        warnings.warn(f"{prep.rejects.height} input row(s) rejected (on_invalid='drop') and left "
                      "out of the SDK metrics; see pm.labelbox_sdk.metrics(...).rejects.",
                      PolarsMetricsWarning, stacklevel=3)
    return SdkMetrics(*_frames(prep, keys, rf_off, rf_feat, tp, ngt, npd, fiou), prep.rejects)


# --- inputs ---------------------------------------------------------------------------------------
USED_COLUMNS = (s.FEATURE, s.KIND, s.BBOX, s.POLYGON, s.POINT, s.LINE, s.MASK, s.START, s.END,
                s.MESSAGE_ID, s.QUESTION, s.ANSWER, s.ANSWERS, SPAN_END)


def _slim(frame: pl.DataFrame, keys, include_subclasses: bool) -> pl.DataFrame:
    """Only the columns the SDK's rules read: ids and confidences play no part in them."""
    used = set(USED_COLUMNS) | set(keys) | ({SUBCLASSES} if include_subclasses else set())
    return frame.select([c for c in frame.columns if c in used])


def _raw_spans(frame: pl.DataFrame) -> pl.DataFrame:
    """Give spans read with an inclusive end their raw numbers back (the SDK's arithmetic)."""
    if SPAN_END not in frame.columns or s.END not in frame.columns:
        return frame
    inclusive = pl.col(SPAN_END) == "inclusive"
    if s.KIND in frame.columns:
        inclusive = inclusive & (pl.col(s.KIND).cast(pl.String) == "span")
    return frame.with_columns(
        pl.when(inclusive.fill_null(False)).then(pl.col(s.END) - 1).otherwise(pl.col(s.END))
        .alias(s.END))


GEOJSON_DECIMALS = 6
ROUNDED_COLUMNS = (s.BBOX, s.POINT, s.POLYGON, s.LINE)


def round_like_python(x: np.ndarray, decimals: int = GEOJSON_DECIMALS) -> np.ndarray:
    """``round(v, decimals)`` of Python for every value, vectorized.

    ``rint(v * 10**d) / 10**d`` is Python's result whenever the product is not within rounding
    error of a half-integer (the division of two exact numbers is correctly rounded, as is
    Python's decimal-string conversion); the rare ambiguous values are rounded by Python.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty_like(x)
    ambiguous = np.empty(x.shape[0], dtype=np.bool_)
    if round_decimals(x, 10.0 ** decimals, out, ambiguous):
        for i in np.flatnonzero(ambiguous):
            out[i] = round(float(x[i]), decimals)
    return out


def _round_leaves(arr):
    """Round the float leaves of a (nested) Arrow list / fixed-size-list array."""
    import pyarrow as pa

    t = arr.type
    mask = arr.is_null() if arr.null_count else None
    if pa.types.is_floating(t):
        values = arr.to_numpy(zero_copy_only=False).astype(np.float64)
        null = None if mask is None else mask.to_numpy(zero_copy_only=False)
        return pa.array(round_like_python(values), pa.float64(), mask=null)
    if pa.types.is_fixed_size_list(t):
        size = t.list_size
        child = arr.values.slice(arr.offset * size, len(arr) * size)
        return pa.FixedSizeListArray.from_arrays(_round_leaves(child), size, mask=mask)
    offsets = arr.offsets.to_numpy().astype(np.int64)
    child = arr.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
    return pa.LargeListArray.from_arrays(pa.array(offsets - offsets[0], pa.int64()),
                                         _round_leaves(child), mask=mask)


def _sdk_coordinates(frame: pl.DataFrame) -> pl.DataFrame:
    """Round geometry coordinates to 6 decimals, as the SDK's geojson-built shapes are."""
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
        rounded = pl.from_arrow(_round_leaves(col.to_arrow()))
        cols.append(pl.Series(name, rounded).cast(col.dtype))
    return frame.with_columns(cols) if cols else frame


def _chunks(n_rows: int) -> int:
    """Row chunks for the kernel: a few per thread (each allocates its scratch once)."""
    import numba

    return int(max(1, min(n_rows, 4 * numba.get_num_threads())))


def _placeholder_kinds(gt: pl.DataFrame, pd: pl.DataFrame):
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


def _object_features(prep: Prepared) -> np.ndarray:
    """Per feature code: is it an object feature (zero-IoU pairs matter in subclass mode)?"""
    out = np.zeros(max(len(prep.features), 1), dtype=np.bool_)
    code = {f: i for i, f in enumerate(prep.features)}
    for side in (prep.gt, prep.pd):
        pairs = side.frame.select(s.FEATURE, s.KIND).unique().drop_nulls().rows()
        out[[code[f] for f, k in pairs if f in code and str(k) not in CLASSIFICATION_KINDS]] = True
    return out


class _Codes(NamedTuple):
    off: np.ndarray   # CSR over the side's annotations
    key: np.ndarray   # int64, sorted and unique per annotation
    val: np.ndarray   # int64 (text answer code; 0 for radio / checklist)
    has: np.ndarray   # bool: the annotation's subclasses list is non-empty
    dictionary: dict | None


def _subclass_codes(side, include: bool, shared: _Codes | None = None) -> _Codes:
    """Nested classifications as integer (key, value) sets per annotation, in side order.

    Keys: radio ("r", question, answer), checklist option ("c", question, option), text
    ("t", question) with the answer string as value.
    """
    n = len(side)
    empty = _Codes(np.zeros(n + 1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
                   np.zeros(n, np.bool_), shared.dictionary if shared else {})
    if not include or n == 0 or SUBCLASSES not in side.frame.columns:
        return empty
    col = side.column(SUBCLASSES)
    has = col.list.len().fill_null(0).to_numpy() > 0
    flat = (pl.DataFrame({"_a": np.arange(n, dtype=np.int64), "_s": col})
            .explode("_s").drop_nulls("_s").unnest("_s"))
    if flat.height == 0:
        return empty._replace(has=has)
    missing = {"question": pl.String, "answer": pl.String, "answers": pl.List(pl.String),
               "kind": pl.String}
    flat = flat.with_columns(pl.lit(None, dtype).alias(c) for c, dtype in missing.items()
                             if c not in flat.columns)
    q = pl.col("question").fill_null("")
    kind = pl.col("kind").fill_null(  # a struct without "kind": radio, or checklist by answers
        pl.when(pl.col("answers").is_not_null()).then(pl.lit("checklist")).otherwise(pl.lit("radio")))
    radio = flat.filter(kind == "radio").select(
        "_a", pl.concat_str(pl.lit("r\x1f"), q, pl.lit("\x1f"), pl.col("answer").fill_null("")).alias("_k"),
        pl.lit(None, pl.String).alias("_v"))
    check = (flat.filter(kind == "checklist").select("_a", q.alias("question"), "answers")
             .explode("answers").drop_nulls("answers")
             .select("_a", pl.concat_str(pl.lit("c\x1f"), pl.col("question"), pl.lit("\x1f"),
                                         pl.col("answers")).alias("_k"),
                     pl.lit(None, pl.String).alias("_v")))
    text = flat.filter(kind == "text").select(
        "_a", pl.concat_str(pl.lit("t\x1f"), q).alias("_k"), pl.col("answer").alias("_v"))
    entries = pl.concat([radio, check, text]).unique(subset=["_a", "_k"], keep="first",
                                                     maintain_order=True)
    dictionary = dict(shared.dictionary) if shared else {}
    for name in entries["_k"].unique().to_list() + [v for v in entries["_v"].unique().to_list()
                                                    if v is not None]:
        dictionary.setdefault(name, len(dictionary) + 1)
    keyed = entries.with_columns(
        pl.col("_k").replace_strict(dictionary, return_dtype=pl.Int64),
        pl.col("_v").replace_strict(dictionary, default=0, return_dtype=pl.Int64)
        .fill_null(0)).sort("_a", "_k")
    a = keyed["_a"].to_numpy()
    off = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(a, minlength=n), out=off[1:])
    return _Codes(off, np.ascontiguousarray(keyed["_k"].to_numpy(), np.int64),
                  np.ascontiguousarray(keyed["_v"].to_numpy(), np.int64), has, dictionary)


def _semantic_masks(prep: Prepared, rf_off, rf_feat, ngt, npd, fiou) -> None:
    """Replace the IoU of mask features (both sides present) by the IoU of the mask unions."""
    from polars_metrics.kinds.mask import mask_csr

    n_feat = max(len(prep.features), 1)
    rf_code = np.repeat(np.arange(rf_off.shape[0] - 1), np.diff(rf_off)) * n_feat + rf_feat
    sides = []
    for side in (prep.gt, prep.pd):
        if len(side) == 0 or s.MASK not in side.frame.columns:
            return
        is_mask = (side.column(s.KIND).cast(pl.String) == "mask").to_numpy()
        idx = np.flatnonzero(is_mask)
        grp = np.searchsorted(rf_code, side.row[idx] * n_feat + side.feat[idx])
        sides.append((side, idx, grp))
    if sides[0][1].size == 0 or sides[1][1].size == 0:
        return
    groups = np.intersect1d(sides[0][2], sides[1][2])
    groups = groups[(ngt[groups] > 0) & (npd[groups] > 0)]
    if groups.size == 0:
        return
    batches, csr = [], []
    base = 0
    for side, idx, grp in sides:
        keep = np.isin(grp, groups)
        idx, grp = idx[keep], grp[keep]
        counts, offsets, _, _, _ = mask_csr(side.column(s.MASK).gather(idx))
        order = np.argsort(np.searchsorted(groups, grp), kind="stable")
        g_off = np.searchsorted(np.searchsorted(groups, grp)[order], np.arange(groups.size + 1))
        batches.append((counts, offsets))
        csr.append((g_off.astype(np.int64), (order + base).astype(np.int64)))
        base += idx.size
    counts = np.concatenate([batches[0][0], batches[1][0]])
    offsets = np.concatenate([batches[0][1][:-1], batches[1][1] + batches[0][1][-1]])
    inter = np.zeros(groups.size, np.int64)
    union = np.zeros(groups.size, np.int64)
    semantic_mask_iou(counts, offsets.astype(np.int64), csr[0][0], csr[0][1], csr[1][0],
                      csr[1][1], inter, union)
    with np.errstate(invalid="ignore", divide="ignore"):
        fiou[groups] = np.where(union > 0, inter / np.maximum(union, 1), 0.0)


# --- outputs --------------------------------------------------------------------------------------
def _frames(prep: Prepared, keys, rf_off, rf_feat, tp, ngt, npd, fiou) -> SdkMetrics:
    n_rows = rf_off.shape[0] - 1
    rf_row = np.repeat(np.arange(n_rows), np.diff(rf_off))
    key_frame = prep.rows.select(keys)
    names = pl.Series(s.FEATURE, list(prep.features), dtype=pl.String)
    head = key_frame[rf_row]
    zeros = np.zeros(rf_row.shape[0], np.int64)
    fcm = pl.concat([head, pl.DataFrame([
        names.gather(rf_feat) if len(prep.features) else pl.Series(s.FEATURE, [], pl.String),
        pl.Series(s.TP, tp), pl.Series(s.FP, npd - tp), pl.Series(s.TN, zeros),
        pl.Series(s.FN, ngt - tp)])], how="horizontal")
    fmi = pl.concat([head, pl.DataFrame([fcm[s.FEATURE], pl.Series(s.IOU, fiou)])],
                    how="horizontal")
    n_per_row = np.diff(rf_off)
    present = n_per_row > 0
    sums = np.add.reduceat(np.stack([tp, npd - tp, zeros, ngt - tp, ], axis=1), rf_off[:-1][present],
                           axis=0) if rf_row.size else np.zeros((0, 4), np.int64)
    iou_sum = np.add.reduceat(fiou, rf_off[:-1][present]) if rf_row.size else np.zeros(0)
    rows = key_frame.filter(pl.Series(present))
    cm = pl.concat([rows, pl.DataFrame([pl.Series(c, sums[:, i].astype(np.int64))
                                        for i, c in enumerate(s.COUNT_COLUMNS)])],
                   how="horizontal")
    mi = pl.concat([rows, pl.DataFrame([pl.Series(s.IOU, iou_sum / n_per_row[present])])],
                   how="horizontal")
    return fcm, cm, fmi, mi
