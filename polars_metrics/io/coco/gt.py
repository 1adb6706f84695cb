"""COCO ground truth: ``images``, ``categories`` and ``annotations`` to the ``gt`` frame.

Stages: the images table (ids and sizes), the categories (ids and the feature Enum), the
annotation columns with their checks, then the frame (annotations in file order, then one
placeholder row per image without annotations).
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
    repeats,
    take_mask,
    xyxy,
)
from polars_metrics.io.coco._gt_scan import (
    AnnotationCols,
    CategoryCols,
    ImageCols,
    ScannedGT,
    scan_gt,
)
from polars_metrics.io.coco.segmentation import Segmentations
from polars_metrics.io.frames import BBOX_XYWH, CATEGORY_ID, COCO_GT, HEIGHT, WIDTH, check_frame
from polars_metrics.kinds._rle import mask_csr

R = lazy("polars_metrics._kernels.rle")
T = "annotations"


@dataclass(frozen=True)
class Meta:
    """What the results reader needs from the ground truth: images (sorted ids, sizes with -1 =
    unknown) and categories (sorted ids, their feature names, the Enum)."""

    image_ids: np.ndarray
    heights: np.ndarray
    widths: np.ndarray
    cat_ids: np.ndarray
    names: list[str]
    enum: pl.Enum


def read_gt(ground_truth: Any, rej: Rejects, iou_type: str = "bbox") -> tuple[pl.DataFrame, Meta]:
    """The ``gt`` frame and the :class:`Meta` the results reader needs: a file through the
    typed scanner when it takes it, else (and for a parsed dict) through the generic path.
    Each table is checked before the next one is read (the first error is the same)."""
    src: ScannedGT | _Parsed | None = None
    if isinstance(ground_truth, (str, os.PathLike)):
        src = scan_gt(ground_truth)
    if src is None:
        src = _Parsed(load_json(ground_truth, "ground truth"))
    ids, heights, widths = _images(src.image_cols(), rej)
    cat_ids, names = _categories(src.category_cols(), rej)
    meta = Meta(ids, heights, widths, cat_ids, names, pl.Enum(names))
    return _frame(_annotations(src.annotation_cols(), meta, rej), meta, iou_type), meta


class _Parsed:
    """A parsed document (dict) with the scanner's interface: each table as columns."""

    def __init__(self, data: Any) -> None:
        if not isinstance(data, Mapping):
            raise fail(f"ground truth: expected a JSON object with images/annotations/categories, got {type(data).__name__}.")
        for key in ("images", "categories"):
            if key not in data or not isinstance(data[key], list):
                raise fail(f'ground truth: missing the "{key}" list.')
        self.anns = data.get("annotations", [])
        if not isinstance(self.anns, list):
            raise fail('ground truth: "annotations" must be a list.')
        self.data = data

    def image_cols(self) -> ImageCols:
        images = _objects("images", self.data["images"])
        img_id, bad_id = int_column([im.get("id") for im in images])
        hh = [im.get("height") for im in images]
        ww = [im.get("width") for im in images]
        hgt, bad_h = int_column(hh)
        wid, bad_w = int_column(ww)
        return ImageCols(img_id, bad_id, hgt, bad_h, np.array([v is None for v in hh], bool),
                         wid, bad_w, np.array([v is None for v in ww], bool))

    def category_cols(self) -> CategoryCols:
        cats = _objects("categories", self.data["categories"])
        cid, bad_c = int_column([c.get("id") for c in cats])
        return CategoryCols(cid, bad_c, [c.get("name") for c in cats])

    def annotation_cols(self) -> AnnotationCols:
        anns = _objects(T, self.anns)
        n = len(anns)
        aid, bad_aid = int_column([a.get("id") for a in anns])
        a_img, bad_img = int_column([a.get("image_id") for a in anns])
        a_cat, bad_cat = int_column([a.get("category_id") for a in anns])
        box, box_missing, box_bad = bbox_column([a.get("bbox") for a in anns])
        seg = Segmentations(n)
        segs = [a.get("segmentation") for a in anns]
        for i in (i for i, v in enumerate(segs) if v is not None):
            seg.parse(i, segs[i])
        area_raw = [a.get("area") for a in anns]
        area, area_bad = float_column(area_raw)
        area_missing = np.array([v is None for v in area_raw], bool)
        crowd = np.array([bool(a.get("iscrowd", 0)) for a in anns], bool)
        ign = np.array([bool(a.get("ignore", 0)) for a in anns], bool)
        return AnnotationCols(n, aid, bad_aid, a_img, bad_img, a_cat, bad_cat, box, box_missing,
                              box_bad, area, area_bad, area_missing, crowd, ign, seg)


def _objects(key: str, rows: list) -> list:
    if set(map(type, rows)) <= {dict}:  # the usual file: no per-row check in Python
        return rows
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise fail(f"ground truth: {key}[{i}] is not an object.")
    return rows


def _images(im: ImageCols, rej: Rejects) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted image ids and their heights / widths (-1 = not given)."""
    img_id, bad_id = im.id, im.bad_id
    hgt, bad_h, h_missing = im.h, im.bad_h, im.h_missing
    wid, bad_w, w_missing = im.w, im.bad_w, im.w_missing
    rej.add_where("images", bad_id, "id", "is missing or not a 64-bit integer", fix="Every image needs an integer id. ")
    rej.add_where("images", bad_h & ~h_missing & ~bad_id, "height", "is not a 64-bit integer", data_row=img_id)
    rej.add_where("images", bad_w & ~w_missing & ~bad_id, "width", "is not a 64-bit integer", data_row=img_id)
    rej.add_where("images", ~bad_h & (hgt < 0) & ~bad_id, "height", "is negative", data_row=img_id)
    rej.add_where("images", ~bad_w & (wid < 0) & ~bad_id, "width", "is negative", data_row=img_id)
    ok = ~bad_id & ~(bad_h & ~h_missing) & ~(bad_w & ~w_missing) & (hgt >= 0) & (wid >= 0)
    dup = repeats(img_id, ok)
    rej.add_where("images", dup, "id", "repeats the id of an earlier image", data_row=img_id)
    ok &= ~dup
    ids = img_id[ok]
    order = np.argsort(ids)
    return ids[order], np.where(h_missing, -1, hgt)[ok][order], np.where(w_missing, -1, wid)[ok][order]


def _categories(cats: CategoryCols, rej: Rejects) -> tuple[np.ndarray, list[str]]:
    """Category ids in ascending order and their feature names (a repeated name gets its id)."""
    cid, bad_c, cname = cats.id, cats.bad_id, cats.names
    rej.add_where("categories", bad_c, "id", "is missing or not a 64-bit integer")
    name_bad = ~bad_c & np.array([not isinstance(v, str) for v in cname], bool)
    rej.add_where("categories", name_bad, "name", "is missing or not a string", data_row=cid)
    cok = ~bad_c & ~name_bad
    cdup = repeats(cid, cok)
    rej.add_where("categories", cdup, "id", "repeats the id of an earlier category", data_row=cid)
    cok &= ~cdup
    rows = np.flatnonzero(cok)
    rows = rows[np.argsort(cid[rows], kind="stable")]
    cat_ids = cid[rows]
    names = [cname[i] for i in rows]
    seen: dict[str, int] = {}
    for n in names:
        seen[n] = seen.get(n, 0) + 1
    return cat_ids, [n if seen[n] == 1 else f"{n} ({int(c)})" for n, c in zip(names, cat_ids, strict=True)]


@dataclass
class _Anns:
    """Annotation columns after the checks; ``keep`` = the rows that passed."""

    keep: np.ndarray
    ids: np.ndarray
    image: np.ndarray
    image_pos: np.ndarray
    cat: np.ndarray
    cat_pos: np.ndarray
    box: np.ndarray
    area: np.ndarray
    crowd: np.ndarray
    ignore: np.ndarray
    height: np.ndarray
    width: np.ndarray
    mask: pl.Series | None


def _annotations(a: AnnotationCols, meta: Meta, rej: Rejects) -> _Anns:
    n, aid, bad_aid, a_img, bad_img, a_cat, bad_cat = (a.n, a.id, a.bad_id, a.img, a.bad_img,
                                                       a.cat, a.bad_cat)
    box, box_missing, box_bad, seg = a.box, a.box_missing, a.box_bad, a.seg
    area, area_bad, area_missing, crowd, ign = a.area, a.area_bad, a.area_missing, a.crowd, a.ignore
    img_pos, img_known = find_sorted(meta.image_ids, a_img, ~bad_img)
    cat_pos, cat_known = find_sorted(meta.cat_ids, a_cat, ~bad_cat)

    ids_for = np.where(bad_aid, None, aid).astype(object) if bad_aid.any() else aid
    rows_for = np.where(bad_img, None, a_img).astype(object) if bad_img.any() else a_img

    def reject(where: np.ndarray, column: str, reason: str, fix: str = "") -> np.ndarray:
        rej.add_where(T, where, column, reason, data_row=rows_for, ids=ids_for, fix=fix)
        return where

    reject(bad_aid, "id", "is missing or not a 64-bit integer")
    reject(~bad_aid & bad_img, "image_id", "is missing or not a 64-bit integer")
    reject(~bad_aid & ~bad_img & ~img_known, "image_id", "is not the id of an image",
           "Add the image to the images list or remove the annotation. ")
    bad = bad_aid | bad_img | ~img_known
    reject(~bad & bad_cat, "category_id", "is missing or not a 64-bit integer")
    reject(~bad & ~bad_cat & ~cat_known, "category_id", "is not the id of a category",
           "Add the category to the categories list or remove the annotation. ")
    bad |= bad_cat | ~cat_known
    bad |= reject(~bad & box_bad, s.BBOX, "is not 4 finite numbers [x, y, width, height]")
    bad |= reject(~bad & ~box_missing & ((box[:, 2] < 0) | (box[:, 3] < 0)), s.BBOX,
                  "has a negative width or height")
    bad |= reject(~bad & area_bad & ~area_missing, s.AREA, "is not a finite number")
    bad |= reject(~bad & box_missing & (seg.kind == 0) & ~seg.bad, s.BBOX,
                  "is missing and there is no segmentation either")
    # duplicate ids: pycocotools keeps only the last one in its index
    bad |= reject(repeats(aid, ~bad), "id", "repeats the id of an earlier annotation")

    hw_known = np.zeros(n, bool)
    a_h = np.zeros(n, np.int64)
    a_w = np.zeros(n, np.int64)
    kn = np.flatnonzero(img_known)
    a_h[kn], a_w[kn] = meta.heights[img_pos[kn]], meta.widths[img_pos[kn]]
    hw_known[kn] = (a_h[kn] >= 0) & (a_w[kn] >= 0)
    mask, seg_bad, seg_reason = seg.build(np.maximum(a_h, 0), np.maximum(a_w, 0), hw_known)
    for reason in sorted({str(r) for r in seg_reason[seg_bad & ~bad]}):
        reject(seg_bad & ~bad & (seg_reason == reason), "segmentation", reason)
    bad |= seg_bad
    keep = np.flatnonzero(~bad)
    _fill_from_masks(box, area, box_missing, area_missing, mask, keep)
    area = np.where(area_missing & ~np.isnan(box[:, 2]), box[:, 2] * box[:, 3], area)
    return _Anns(keep, aid, a_img, img_pos, a_cat, cat_pos, box, area, crowd, ign, a_h, a_w, mask)


def _fill_from_masks(box, area, box_missing, area_missing, mask, keep) -> None:
    """Boxes (and then areas) missing from kept annotations with a mask come from the mask, as
    ``loadRes`` / ``toBbox`` would give them."""
    if mask is None:
        return
    has_mask = ~mask.is_null().to_numpy()
    mc, mo, mh, mw, _ = mask_csr(mask)
    if box_missing[keep].any():
        fill = keep[box_missing[keep] & has_mask[keep]]
        box[fill] = R.rle_to_bbox(mc, mo, mh, mw)[fill]
    if area_missing[keep].any():
        fill = keep[area_missing[keep] & box_missing[keep] & has_mask[keep]]
        area[fill] = R.rle_area(mc, mo)[fill]


def _frame(a: _Anns, meta: Meta, iou_type: str) -> pl.DataFrame:
    """Kept annotations in file order, then a placeholder row per image without annotations."""
    keep = a.keep
    has_mask = np.zeros(a.ids.size, bool) if a.mask is None else ~a.mask.is_null().to_numpy()
    used = np.zeros(meta.image_ids.size, bool)
    used[a.image_pos[keep]] = True
    empty = np.flatnonzero(~used)
    n_e = empty.size
    null_e = np.ones(n_e, bool)
    box_null = np.isnan(a.box).any(axis=1)
    frame = pl.DataFrame({
        s.DATA_ROW: np.concatenate([a.image[keep], meta.image_ids[empty]]),
        s.ID: pl.Series(np.concatenate([a.ids[keep], np.zeros(n_e, np.int64)]), dtype=pl.Int64),
        CATEGORY_ID: np.concatenate([a.cat[keep], np.zeros(n_e, np.int64)]),
        s.FEATURE: enum_take(meta.names, meta.enum, np.concatenate([a.cat_pos[keep], np.full(n_e, -1)])),
        s.AREA: np.concatenate([a.area[keep], np.full(n_e, np.nan)]),
        s.IS_CROWD: np.concatenate([a.crowd[keep], np.zeros(n_e, bool)]),
        s.IGNORE: np.concatenate([a.ignore[keep], np.zeros(n_e, bool)]),
        HEIGHT: np.concatenate([a.height[keep], meta.heights[empty]]),
        WIDTH: np.concatenate([a.width[keep], meta.widths[empty]]),
    })
    placeholder = np.concatenate([np.zeros(keep.size, bool), null_e])
    bnull = np.concatenate([box_null[keep], null_e])
    xywh = np.concatenate([a.box[keep], np.zeros((n_e, 4))])
    is_mask = comparable_kind(~bnull, np.concatenate([has_mask[keep], np.zeros(n_e, bool)]), iou_type)
    cols = [array_series(s.BBOX, xyxy(xywh), bnull), array_series(BBOX_XYWH, xywh, bnull),
            kind_column(is_mask, placeholder)]
    placeholder = pl.Series(placeholder)
    if a.mask is not None:
        cols.append(take_mask(a.mask, np.concatenate([keep, np.full(n_e, -1)])))
    frame = frame.with_columns(cols).with_columns(
        pl.when(placeholder).then(None).otherwise(pl.col(c)).alias(c)
        for c in (s.ID, CATEGORY_ID, s.AREA, s.IS_CROWD, s.IGNORE)
    ).with_columns(
        pl.when(pl.col(c) < 0).then(None).otherwise(pl.col(c)).alias(c) for c in (HEIGHT, WIDTH)
    )
    return check_frame(frame.select(COCO_GT.columns(frame.columns)), COCO_GT)
