"""COCO results (detections) to the ``pd`` frame, as ``COCO.loadRes`` reads them.

Stages: the source (a JSON file read by the typed scanner of ``_scan`` when it has the usual
layout, else by msgspec; a list of dicts, a frame, pycocotools' ``N x 7`` array) to raw
columns; the checks against the ground truth's images and categories; the masks; the frame.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics._lazy import lazy
from polars_metrics._rejects import Rejects
from polars_metrics.io.coco._columns import (
    array_series,
    bbox_column,
    comparable_kind,
    enum_take,
    fail,
    find_sorted,
    float_column,
    int_column,
    kind_column,
    load_json,
    take_mask,
    xyxy,
)
from polars_metrics.io.coco._scan import Scanned, scan_results
from polars_metrics.io.coco.gt import Meta
from polars_metrics.io.coco.segmentation import Segmentations
from polars_metrics.io.frames import BBOX_XYWH, CATEGORY_ID, COCO_PD, check_frame
from polars_metrics.kinds._rle import (
    RLE_OK,
    RLE_REASONS,
    decode_strings,
    mask_csr,
    mask_series,
    rle_problems,
)

R = lazy("polars_metrics._kernels.rle")
T = "results"


# --- sources -------------------------------------------------------------------------------------
def _source(res: Any) -> pl.DataFrame | list:
    """The results as a frame or as a list of dicts (a file the scanner did not take: msgspec)."""
    if isinstance(res, (pl.DataFrame, pl.LazyFrame)):
        return res.collect() if isinstance(res, pl.LazyFrame) else res
    if isinstance(res, (str, os.PathLike)):
        res = load_json(res, "results")
    if isinstance(res, np.ndarray):
        res = [
            {"image_id": int(r[0]), "bbox": [float(v) for v in r[1:5]], "score": float(r[5]),
             "category_id": int(r[6])}
            for r in res
        ]
    if not isinstance(res, list):
        raise fail(f"results: expected a JSON array of result objects, got {type(res).__name__}.")
    for i, a in enumerate(res):
        if not isinstance(a, Mapping):
            raise fail(f"results[{i}] is not an object.")
    return res


# --- raw columns ---------------------------------------------------------------------------------
@dataclass
class _Raw:
    """Result columns as read, with a "bad" mask per field; ``seg`` = (how, values) or None."""

    n: int
    img: np.ndarray
    bad_img: np.ndarray
    cat: np.ndarray
    bad_cat: np.ndarray
    score: np.ndarray
    bad_score: np.ndarray
    box: np.ndarray
    box_missing: np.ndarray
    box_bad: np.ndarray
    seg: tuple[str, Any] | None = None
    given_area: np.ndarray | None = None


def _own_layout(df: pl.DataFrame, meta: Meta) -> tuple[pl.DataFrame, tuple | None, np.ndarray | None]:
    """The library's own layout (``data_row``, x0, y0, x1, y1 boxes, features by name, RLE
    masks) renamed to COCO's fields; also the mask column and an area already as loadRes'."""
    seg = given_area = None
    df = df.rename({s.DATA_ROW: "image_id"})
    if BBOX_XYWH in df.columns:
        df = df.with_columns(pl.col(BBOX_XYWH).alias(s.BBOX))
    elif s.BBOX in df.columns:
        b = pl.col(s.BBOX).cast(s.BBOX_DTYPE)
        df = df.with_columns(pl.concat_list(b.arr.get(0), b.arr.get(1), b.arr.get(2) - b.arr.get(0),
                                            b.arr.get(3) - b.arr.get(1)).alias(s.BBOX))
    if CATEGORY_ID not in df.columns and s.FEATURE in df.columns:
        lut = dict(zip(meta.names, meta.cat_ids.tolist(), strict=True))
        df = df.with_columns(pl.col(s.FEATURE).cast(pl.String)
                             .replace_strict(lut, default=None, return_dtype=pl.Int64).alias(CATEGORY_ID))
    if s.MASK in df.columns and "segmentation" not in df.columns:
        seg = (s.MASK, df[s.MASK].cast(s.MASK_DTYPE))
    if s.AREA in df.columns and df[s.AREA].null_count() == 0:
        given_area = df[s.AREA].cast(pl.Float64).to_numpy()
    return df, seg, given_area


def _frame_boxes(df: pl.DataFrame, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if s.BBOX not in df.columns:
        return np.full((n, 4), np.nan), np.ones(n, bool), np.zeros(n, bool)
    bs = df[s.BBOX]
    if isinstance(bs.dtype, pl.Array):
        bs = bs.arr.to_list()
    bs = bs.cast(pl.List(pl.Float64), strict=False)
    ln = bs.list.len().fill_null(0).to_numpy()
    missing = ln == 0
    bad = ~missing & (ln != 4)
    box = np.full((n, 4), np.nan)
    ok4 = ln == 4
    if ok4.any():
        box[ok4] = bs.filter(pl.Series(ok4)).list.to_array(4).to_numpy().reshape(-1, 4).astype(np.float64)
    return box, missing, bad | (~missing & ~np.isfinite(box).all(axis=1))


def _from_frame(df: pl.DataFrame, meta: Meta) -> _Raw:
    seg = given_area = None
    if s.DATA_ROW in df.columns and "image_id" not in df.columns:
        df, seg, given_area = _own_layout(df, meta)
    if s.CONFIDENCE in df.columns and "score" not in df.columns:
        df = df.rename({s.CONFIDENCE: "score"})
    n = df.height
    df = df.with_columns(pl.lit(None).alias(c) for c in ("image_id", CATEGORY_ID, "score")
                         if c not in df.columns)
    img = df["image_id"].cast(pl.Int64, strict=False)
    cat = df[CATEGORY_ID].cast(pl.Int64, strict=False)
    score = np.asarray(df["score"].cast(pl.Float64, strict=False).to_numpy(), dtype=np.float64)
    box, box_missing, box_bad = _frame_boxes(df, n)
    if seg is None and "segmentation" in df.columns and df["segmentation"].null_count() < n:
        sdt = df["segmentation"].dtype
        if (isinstance(sdt, pl.Struct) and {f.name for f in sdt.fields} >= {"size", "counts"}
                and sdt.to_schema()["counts"] in (pl.String, pl.Binary)):
            seg = ("compressed", df["segmentation"])
        else:
            seg = ("generic", df["segmentation"].to_list())
    return _Raw(n, img.fill_null(0).to_numpy(), img.is_null().to_numpy(), cat.fill_null(0).to_numpy(),
                cat.is_null().to_numpy(), score, ~np.isfinite(score), box, box_missing, box_bad,
                seg, given_area)


def _from_scan(sc: Scanned) -> _Raw:
    n = sc.img.size
    zeros = np.zeros(n, bool)
    missing = sc.box_missing
    seg = None if sc.seg is None else ("scanned", sc.seg)
    return _Raw(n, sc.img, zeros, sc.cat, zeros, sc.score, ~np.isfinite(sc.score), sc.box, missing,
                zeros, seg)


def _from_list(lst: list) -> _Raw:
    img, bad_img = int_column([a.get("image_id") for a in lst])
    cat, bad_cat = int_column([a.get("category_id") for a in lst])
    score, bad_score = float_column([a.get("score") for a in lst])
    box, box_missing, box_bad = bbox_column([a.get("bbox") for a in lst])
    seg = None
    if any("segmentation" in a for a in lst[:1]) or any(a.get("segmentation") is not None for a in lst):
        seg = ("generic", [a.get("segmentation") for a in lst])
    return _Raw(len(lst), img, bad_img, cat, bad_cat, score, bad_score, box, box_missing, box_bad, seg)


# --- checks --------------------------------------------------------------------------------------
def _check(raw: _Raw, meta: Meta, rows_for: np.ndarray, rej: Rejects, bbox_branch: bool
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reject entries whose image, category, score or box is unusable; returns (bad, image
    position, image known, category position)."""
    bad = np.zeros(raw.n, bool)

    def reject(where: np.ndarray, column: str, reason: str, fix: str = "") -> np.ndarray:
        rej.add_where(T, where, column, reason, data_row=rows_for, fix=fix)
        return where

    reject(raw.bad_img, "image_id", "is missing or not a 64-bit integer")
    pos, known = find_sorted(meta.image_ids, raw.img, ~raw.bad_img)
    reject(~raw.bad_img & ~known, "image_id", "is not the id of an image of the ground truth",
           "Results must only refer to images of the ground truth file. ")
    bad = ~known
    reject(~bad & raw.bad_cat, CATEGORY_ID, "is missing or not a 64-bit integer")
    cpos, ck = find_sorted(meta.cat_ids, raw.cat, ~raw.bad_cat)
    reject(~bad & ~raw.bad_cat & ~ck, CATEGORY_ID, "is not the id of a category of the ground truth",
           "Use the category ids of the ground truth file. ")
    bad |= ~ck
    bad |= reject(~bad & raw.bad_score, "score", "is missing or not a finite number",
                  "COCO results need a score per detection. ")
    bad |= reject(~bad & raw.box_bad, s.BBOX, "is not 4 finite numbers [x, y, width, height]")
    box = raw.box
    bad |= reject(~bad & ~raw.box_missing & ((box[:, 2] < 0) | (box[:, 3] < 0)), s.BBOX,
                  "has a negative width or height")
    if bbox_branch:
        bad |= reject(~bad & raw.box_missing, s.BBOX,
                      "is missing (the first result has a box, so all must)")
    return bad, pos, known, cpos


# --- masks ---------------------------------------------------------------------------------------
def _mask_column(raw: _Raw, bad: np.ndarray, h: np.ndarray, w: np.ndarray, hw_known: np.ndarray,
                 rows_for: np.ndarray, rej: Rejects, bbox_branch: bool) -> pl.Series | None:
    """The ``mask`` column (null on bad rows); rejects bad segmentations, updating ``bad``."""
    how, values = raw.seg

    def reject(where: np.ndarray, column: str, reason: str) -> None:
        rej.add_where(T, where & ~bad, column, reason, data_row=rows_for)
        bad[:] |= where

    if how == s.MASK:
        c, o, mh, mw, null = mask_csr(values)
        problems = rle_problems(c, o, mh, mw, null)
        for code in np.unique(problems[~null & (problems != RLE_OK)]):
            reject(~null & (problems == code), s.MASK, RLE_REASONS[int(code)])
        return mask_series(c, o, mh, mw, null | bad)
    if how == "compressed":
        null = values.is_null().to_numpy()
        mh, mw, size_bad = _sizes(values.struct.field("size"), null)
        c, o, badc = decode_strings(values.struct.field("counts"))
        reject(size_bad, "segmentation", "has an RLE size that is not [height, width]")
        reject(badc & ~null, "segmentation", "is a compressed RLE string that does not decode "
               "(characters outside '0'..'o', a run left open at the end, or a count out of range)")
        problems = rle_problems(c, o, np.where(size_bad, -1, mh), np.where(size_bad, -1, mw),
                                null | badc)
        for code in np.unique(problems[~null & ~size_bad & ~badc & (problems != RLE_OK)]):
            reject(~null & ~size_bad & ~badc & (problems == code), "segmentation",
                   RLE_REASONS[int(code)])
        return mask_series(c, o, mh, mw, null | bad)
    sp = Segmentations(raw.n)
    if how == "scanned":  # compressed RLEs from the scanner: checked and worded as parse() does
        sp.add_compressed(*values)
    else:
        for i, v in enumerate(values):
            sp.parse(i, v)
    if not bbox_branch:  # loadRes' segm branch only takes compressed RLE
        reject((sp.kind == 1) | (sp.kind == 2), "segmentation",
               "must be a compressed RLE when results carry no bbox (pycocotools loadRes)")
    mask, sbad, sreason = sp.build(np.maximum(h, 0), np.maximum(w, 0), hw_known)
    for reason in sorted({str(r) for r in sreason[sbad & ~bad]}):
        rej.add_where(T, sbad & ~bad & (sreason == reason), "segmentation", reason, data_row=rows_for)
    bad |= sbad
    return mask


def _sizes(size: pl.Series, null: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heights, widths and a "bad" mask from COCO ``size`` lists ([height, width])."""
    n = size.len()
    length = size.list.len().fill_null(0).to_numpy()
    mh = np.zeros(n, np.int64)
    mw = np.zeros(n, np.int64)
    ok2 = length == 2
    if ok2.any():
        arr = size.filter(pl.Series(ok2)).list.to_array(2).to_numpy().reshape(-1, 2)
        mh[ok2], mw[ok2] = arr[:, 0], arr[:, 1]
    return mh, mw, ~null & ((length != 2) | (mh < 0) | (mw < 0))


# --- the frame -----------------------------------------------------------------------------------
def _raw(results: Any, meta: Meta) -> _Raw:
    if isinstance(results, (str, os.PathLike)):
        scanned = scan_results(results)
        if isinstance(scanned, Scanned):
            return _from_scan(scanned)
        if isinstance(scanned, list):
            return _from_list(scanned)
    src = _source(results)
    return _from_frame(src, meta) if isinstance(src, pl.DataFrame) else _from_list(src)


def read_results(results: Any, meta: Meta, rej: Rejects, iou_type: str = "bbox") -> pl.DataFrame:
    raw = _raw(results, meta)
    if raw.n == 0:
        return empty_results(meta)
    bbox_branch = not raw.box_missing[0]  # loadRes picks its branch from the first entry
    rows_for = _ids_or_none(raw.img, raw.bad_img)
    bad, pos, known, cpos = _check(raw, meta, rows_for, rej, bbox_branch)
    mask = None
    if raw.seg is not None:  # polygons are rasterized at their image's size
        h = np.zeros(raw.n, np.int64)
        w = np.zeros(raw.n, np.int64)
        hw_known = np.zeros(raw.n, bool)
        kn = np.flatnonzero(known)
        h[kn], w[kn] = meta.heights[pos[kn]], meta.widths[pos[kn]]
        hw_known[kn] = (h[kn] >= 0) & (w[kn] >= 0)
        mask = _mask_column(raw, bad, h, w, hw_known, rows_for, rej, bbox_branch)
    has_mask = np.zeros(raw.n, bool) if mask is None else ~mask.is_null().to_numpy()
    if not bbox_branch:
        missing = ~bad & ~has_mask
        rej.add_where(T, missing, "segmentation", "is missing (results need a bbox or a segmentation)",
                      data_row=rows_for)
        bad |= missing
    area = _area(raw, mask, has_mask, bbox_branch)
    return _frame(raw, meta, np.flatnonzero(~bad), cpos, has_mask, area, mask, iou_type)


def _ids_or_none(ids: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """Per-entry ids for the rejects table (None where unreadable); the int array itself when
    all are readable (no Python object per entry)."""
    return np.where(bad, None, ids).astype(object) if bad.any() else ids


def _area(raw: _Raw, mask: pl.Series | None, has_mask: np.ndarray, bbox_branch: bool) -> np.ndarray:
    """loadRes' area: the box's ``w * h`` in the bbox branch, else the mask's pixel count (and a
    missing box becomes the mask's bounding box); an area given in our own layout wins."""
    box = raw.box
    if bbox_branch:
        area = box[:, 2] * box[:, 3]
    elif mask is None:  # no entry has a segmentation: every one was rejected
        area = np.full(raw.n, np.nan)
    else:
        mc, mo, mh, mw, _ = mask_csr(mask)
        area = R.rle_area(mc, mo).astype(np.float64)
        fill = raw.box_missing & has_mask
        if fill.any():
            box[fill] = R.rle_to_bbox(mc, mo, mh, mw)[fill]
    if raw.given_area is not None:
        area = np.asarray(raw.given_area, dtype=np.float64)
    return area


def _frame(raw: _Raw, meta: Meta, keep: np.ndarray, cpos: np.ndarray, has_mask: np.ndarray,
           area: np.ndarray, mask: pl.Series | None, iou_type: str) -> pl.DataFrame:
    """The kept rows; every column straight from its numpy array (polars takes them without a
    copy), and no gather when every row is kept (the usual file)."""
    everything = keep.size == raw.n

    def take(a: np.ndarray) -> np.ndarray:
        return a if everything else a[keep]

    box = np.ascontiguousarray(take(raw.box))
    box_null = np.isnan(box).any(axis=1)
    mask_rows = take(has_mask)
    frame = pl.DataFrame([
        pl.Series(s.DATA_ROW, take(raw.img), dtype=pl.Int64),
        pl.Series(s.ID, take(np.arange(1, raw.n + 1, dtype=np.int64))),
        enum_take(meta.names, meta.enum, take(cpos)).alias(s.FEATURE),
        pl.Series(CATEGORY_ID, take(raw.cat), dtype=pl.Int64),
        kind_column(comparable_kind(~box_null, mask_rows, iou_type)),
        pl.Series(s.AREA, take(area), dtype=pl.Float64),
        pl.Series(s.CONFIDENCE, take(np.asarray(raw.score, dtype=np.float64))),
        array_series(s.BBOX, xyxy(box), box_null),
        array_series(BBOX_XYWH, box, box_null),
        *([] if mask is None else [take_mask(mask, keep) if not everything else mask.alias(s.MASK)]),
    ])
    return check_frame(frame.select(COCO_PD.columns(frame.columns)), COCO_PD)


def empty_results(meta: Meta) -> pl.DataFrame:
    """The ``pd`` frame without rows (its feature Enum is the ground truth's)."""
    schema = {c: (meta.enum if c == s.FEATURE else d) for c, d in COCO_PD.required.items()}
    return check_frame(pl.DataFrame(schema=schema), COCO_PD)
