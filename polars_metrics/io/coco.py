"""COCO JSON in and out: ``read_coco`` and ``write_coco_results``.

Frames produced (the library's shared layout)
---------------------------------------------
``gt`` — one row per annotation, in file order, then one placeholder row per image without
annotations (null ``feature``, ``id`` and geometry: "a data row that exists but has no
annotations"):

* ``data_row`` Int64 — image id; ``height``, ``width`` Int64 — from the images table;
* ``feature`` Enum — category names in ascending category-id order (every category of the
  file, so categories without annotations are still known); ``category_id`` Int64;
* ``id`` Int64 — annotation id; ``kind`` String — "mask" when the annotation has a
  segmentation, else "box";
* ``bbox`` Array(Float64, 4) — x0, y0, x1, y1 (from COCO's x, y, w, h); ``bbox_xywh``
  Array(Float64, 4) — COCO's numbers as read, kept so COCO IoUs are bit-exact;
* ``area`` Float64 — the json ``area`` (``w * h`` of the box when absent); ``is_crowd``,
  ``ignore`` Boolean (json ``iscrowd`` / ``ignore``, False when absent);
* ``mask`` Struct(height, width, counts: List(UInt32)) — uncompressed RLE, present when any
  annotation has a segmentation: polygons rasterized exactly like pycocotools
  (``frPyObjects`` + ``merge``), compressed strings decoded, uncompressed counts kept.

``pd`` — one row per result entry in file order, the same columns (no ``is_crowd`` /
``ignore``) plus ``confidence`` Float64 (COCO ``score``). Ids are 1..n in file order and
``area`` follows ``COCO.loadRes``: when the first entry has a non-empty ``bbox`` every area is
the box's ``w * h``, otherwise it is the mask's pixel area (and a missing box is the mask's
bounding box).
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from polars_metrics._kernels import rle as R
from polars_metrics.errors import FormatError, SchemaError

BBOX_DTYPE = pl.Array(pl.Float64, 4)
MASK_DTYPE = pl.Struct({"height": pl.Int64, "width": pl.Int64, "counts": pl.List(pl.UInt32)})
REJECTS_SCHEMA = {
    "table": pl.String,
    "row": pl.Int64,
    "data_row": pl.Int64,
    "id": pl.Int64,
    "column": pl.String,
    "reason": pl.String,
}
ON_INVALID = ("raise", "drop")

# schema of the fast path for result files (bbox and/or compressed-RLE segm results)
_RESULTS_FAST_SCHEMA = {
    "image_id": pl.Int64,
    "category_id": pl.Int64,
    "bbox": pl.List(pl.Float64),
    "score": pl.Float64,
    "segmentation": pl.Struct({"size": pl.List(pl.Int64), "counts": pl.String}),
}


# --- rejects ------------------------------------------------------------------------------------
class _Rejects:
    """Collects bad entries; raises on the first one unless ``on_invalid="drop"``."""

    def __init__(self, on_invalid: str) -> None:
        if on_invalid not in ON_INVALID:
            raise SchemaError(f'on_invalid must be "raise" or "drop", got {on_invalid!r}.')
        self.drop = on_invalid == "drop"
        self.parts: list[pl.DataFrame] = []

    def add(
        self,
        table: str,
        bad: np.ndarray,
        column: str,
        reason: str,
        data_row: np.ndarray | None = None,
        ids: np.ndarray | None = None,
        fix: str = "",
    ) -> None:
        rows = np.flatnonzero(bad)
        if rows.size == 0:
            return
        if not self.drop:
            r = int(rows[0])
            more = f" ({rows.size} entries in all)" if rows.size > 1 else ""
            raise FormatError(
                f'{table}[{r}]: "{column}" {reason}{more}. {fix}'
                f'Fix the file, or pass on_invalid="drop" to set such entries aside.'
            )

        def pick(a: np.ndarray | None) -> list:
            if a is None:
                return [None] * rows.size
            v = a[rows]
            return [None if x is None else int(x) for x in v.tolist()]

        self.parts.append(
            pl.DataFrame(
                {
                    "table": [table] * rows.size,
                    "row": rows.astype(np.int64),
                    "data_row": pick(data_row),
                    "id": pick(ids),
                    "column": [column] * rows.size,
                    "reason": [reason] * rows.size,
                },
                schema=REJECTS_SCHEMA,
            )
        )

    def frame(self) -> pl.DataFrame:
        if not self.parts:
            return pl.DataFrame(schema=REJECTS_SCHEMA)
        return pl.concat(self.parts).sort("table", "row", maintain_order=True)


def _fail(msg: str) -> FormatError:
    return FormatError(msg + " The file does not follow the COCO format.")


# --- small helpers ------------------------------------------------------------------------------
def _load_json(obj: Any, what: str) -> Any:
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        try:
            with open(path, "rb") as f:
                return json.load(f)
        except json.JSONDecodeError as e:
            raise FormatError(f"{what} {path}: not valid JSON ({e}).") from e
    return obj


def _int_column(values: list, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Values as int64 plus a 'bad' mask (missing, not an integer, bool)."""
    out = np.zeros(len(values), np.int64)
    bad = np.zeros(len(values), bool)
    for i, v in enumerate(values):
        if isinstance(v, bool) or v is None:
            bad[i] = True
        elif isinstance(v, int):
            out[i] = v
        elif isinstance(v, float) and v.is_integer():
            out[i] = int(v)
        else:
            bad[i] = True
    return out, bad


def _float_column(values: list) -> tuple[np.ndarray, np.ndarray]:
    out = np.full(len(values), np.nan)
    bad = np.zeros(len(values), bool)
    for i, v in enumerate(values):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[i] = v
        else:
            bad[i] = True
    return out, bad


def _bbox_column(values: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, 4) xywh, ``missing`` (absent / empty list), ``bad`` (malformed) masks."""
    n = len(values)
    out = np.full((n, 4), np.nan)
    missing = np.zeros(n, bool)
    bad = np.zeros(n, bool)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
            missing[i] = True
            continue
        if not isinstance(v, (list, tuple)) or len(v) != 4:
            bad[i] = True
            continue
        try:
            out[i] = v
        except (TypeError, ValueError):
            bad[i] = True
    bad |= ~missing & ~np.isfinite(out).all(axis=1)
    return out, missing, bad


def _enum_take(names: list[str], enum: pl.Enum, codes: np.ndarray) -> pl.Series:
    """Enum column from category positions (-1 = null), without a Python string per row."""
    codes = np.asarray(codes, dtype=np.int64)
    idx = pl.Series(np.maximum(codes, 0).astype(np.uint32))
    if (codes < 0).any():
        idx = pl.select(pl.when(pl.lit(pl.Series(codes >= 0))).then(pl.lit(idx))).to_series()
    if not names:
        return pl.Series([None] * codes.size, dtype=enum)
    return pl.Series(names, dtype=enum).gather(idx)


def _kind_column(is_mask: np.ndarray) -> pl.Series:
    return pl.select(
        pl.when(pl.lit(pl.Series(is_mask, dtype=pl.Boolean)))
        .then(pl.lit("mask"))
        .otherwise(pl.lit("box"))
    ).to_series()


def _xyxy(xywh: np.ndarray) -> np.ndarray:
    return np.stack(
        [xywh[:, 0], xywh[:, 1], xywh[:, 0] + xywh[:, 2], xywh[:, 1] + xywh[:, 3]], axis=1
    )


def _array_series(name: str, arr: np.ndarray, null: np.ndarray) -> pl.Series:
    s = pl.Series(name, np.ascontiguousarray(arr, dtype=np.float64), dtype=BBOX_DTYPE)
    if null.any():
        s = pl.select(pl.when(pl.lit(pl.Series(~null))).then(pl.lit(s))).to_series().alias(name)
    return s


def _mask_series(
    counts: np.ndarray, offsets: np.ndarray, heights: np.ndarray, widths: np.ndarray,
    null: np.ndarray,
) -> pl.Series:
    """CSR masks as the ``mask`` Struct column (null where ``null``), built zero-copy in Arrow."""
    null_mask = pa.array(null) if null.any() else None
    lst = pa.LargeListArray.from_arrays(
        pa.array(offsets, type=pa.int64()), pa.array(counts, type=pa.uint32()), mask=null_mask
    )
    st = pa.StructArray.from_arrays(
        [pa.array(heights, type=pa.int64()), pa.array(widths, type=pa.int64()), lst],
        names=["height", "width", "counts"],
        mask=null_mask,
    )
    s = pl.from_arrow(st)
    assert isinstance(s, pl.Series)
    return s.alias("mask").cast(MASK_DTYPE)


def _strings_csr(strings: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Bytes of all strings back to back and their offsets (nulls are empty)."""
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    arr = strings.cast(pa.large_binary())
    n = len(arr)
    bufs = arr.buffers()
    offs = np.frombuffer(bufs[1], dtype=np.int64, count=arr.offset + n + 1)[arr.offset :]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    data = data[offs[0] : offs[-1]]
    ptr = (offs - offs[0]).astype(np.int64)
    if arr.null_count:
        nullm = arr.is_null().to_numpy(zero_copy_only=False)
        lens = np.diff(ptr)
        lens[nullm] = 0
        keep = np.repeat(~nullm, np.diff(ptr))
        data = data[keep]
        ptr = np.zeros(n + 1, np.int64)
        np.cumsum(lens, out=ptr[1:])
    return np.ascontiguousarray(data), ptr


def _decode_compressed(strings: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode compressed RLE strings; also return a mask of strings with invalid characters."""
    buf, ptr = _strings_csr(strings)
    bad_char = (buf < 48) | (buf > 111)
    bad = np.zeros(ptr.size - 1, bool)
    if bad_char.any():
        bad[np.searchsorted(ptr, np.flatnonzero(bad_char), side="right") - 1] = True
    counts, offsets = R.rle_decode_strings(buf, ptr)
    return counts, offsets, bad


class _Segm:
    """Parses COCO ``segmentation`` values into RLE masks, like ``COCO.annToRLE``."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.kind = np.zeros(n, np.int8)  # 0 none, 1 polygons, 2 uncompressed, 3 compressed
        self.bad = np.zeros(n, bool)
        self.reason: dict[int, str] = {}
        self.poly_rows: list[int] = []
        self.poly_coords: list[np.ndarray] = []
        self.poly_lens: list[int] = []
        self.poly_per_obj: list[int] = []
        self.unc_rows: list[int] = []
        self.unc_counts: list[np.ndarray] = []
        self.unc_size: list[tuple[int, int]] = []
        self.cmp_rows: list[int] = []
        self.cmp_strings: list[str | bytes] = []
        self.cmp_size: list[tuple[int, int]] = []

    def parse(self, i: int, seg: Any) -> None:
        if seg is None or (isinstance(seg, list) and len(seg) == 0):
            return
        if isinstance(seg, list):
            # frPyObjects: a first polygon of exactly 4 numbers makes the whole list boxes
            try:
                first = seg[0]
                as_box = isinstance(first, (list, tuple)) and len(first) == 4
                polys = []
                for p in seg:
                    a = np.asarray(p, dtype=np.float64).ravel()
                    if as_box:
                        if a.size != 4:
                            raise ValueError
                        x, y, w, h = a
                        a = np.array([x, y, x, y + h, x + w, y + h, x + w, y])
                    elif a.size % 2:
                        a = a[:-1]
                    if not np.isfinite(a).all():
                        raise ValueError
                    polys.append(a)
            except (TypeError, ValueError):
                self._bad(i, "is not a list of polygons (lists of x, y numbers)")
                return
            self.kind[i] = 1
            self.poly_rows.append(i)
            self.poly_per_obj.append(len(polys))
            for a in polys:
                self.poly_coords.append(a)
                self.poly_lens.append(a.size)
            return
        if isinstance(seg, Mapping) and "counts" in seg and "size" in seg:
            size = seg["size"]
            if (
                not isinstance(size, (list, tuple))
                or len(size) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in size)
            ):
                self._bad(i, "has an RLE size that is not [height, width] (non-negative ints)")
                return
            c = seg["counts"]
            if isinstance(c, (str, bytes)):
                self.kind[i] = 3
                self.cmp_rows.append(i)
                self.cmp_strings.append(c if isinstance(c, str) else c.decode("ascii", "replace"))
                self.cmp_size.append((size[0], size[1]))
                return
            if isinstance(c, list):
                try:
                    arr = np.asarray(c, dtype=np.int64)
                except (TypeError, ValueError, OverflowError):
                    arr = None
                if arr is None or arr.ndim != 1 or (arr < 0).any() or (arr > 0xFFFFFFFF).any():
                    self._bad(i, "has RLE counts that are not non-negative integers")
                    return
                self.kind[i] = 2
                self.unc_rows.append(i)
                self.unc_counts.append(arr.astype(np.uint32))
                self.unc_size.append((size[0], size[1]))
                return
        self._bad(i, "is neither polygons nor an RLE {size, counts}")

    def _bad(self, i: int, reason: str) -> None:
        self.bad[i] = True
        self.reason[i] = reason

    def build(self, heights: np.ndarray, widths: np.ndarray, hw_known: np.ndarray
              ) -> tuple[pl.Series | None, np.ndarray, np.ndarray]:
        """Rasterize / decode; returns the ``mask`` column (None when no row has one), the
        per-row ``bad`` mask (malformed values, polygons on images of unknown size, RLEs whose
        counts do not sum to height x width) and the reason per bad row."""
        n = self.n
        if not (self.kind > 0).any():
            return None, self.bad, np.array([self.reason.get(i, "") for i in range(n)], object)
        lens = np.zeros(n, np.int64)
        h = np.zeros(n, np.int64)
        w = np.zeros(n, np.int64)
        pieces: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        if self.poly_rows:
            rows = np.array(self.poly_rows, np.int64)
            unknown = ~hw_known[rows]
            for r in rows[unknown]:
                self._bad(int(r), "is a polygon but its image has no height/width to rasterize on")
            coords = np.concatenate(self.poly_coords) if self.poly_coords else np.zeros(0)
            pptr = np.zeros(len(self.poly_lens) + 1, np.int64)
            np.cumsum(self.poly_lens, out=pptr[1:])
            optr = np.zeros(rows.size + 1, np.int64)
            np.cumsum(self.poly_per_obj, out=optr[1:])
            ph, pw = heights[rows], widths[rows]
            c, o = R.rle_from_polygons(coords, pptr, optr, ph, pw)
            pieces[1] = (rows, c, o)
            h[rows], w[rows] = ph, pw
        if self.unc_rows:
            rows = np.array(self.unc_rows, np.int64)
            c = np.concatenate(self.unc_counts) if self.unc_counts else np.zeros(0, np.uint32)
            o = np.zeros(rows.size + 1, np.int64)
            np.cumsum([a.size for a in self.unc_counts], out=o[1:])
            sz = np.array(self.unc_size, np.int64).reshape(-1, 2)
            pieces[2] = (rows, c, o)
            h[rows], w[rows] = sz[:, 0], sz[:, 1]
        if self.cmp_rows:
            rows = np.array(self.cmp_rows, np.int64)
            c, o, badc = _decode_compressed(pa.array(self.cmp_strings, type=pa.large_string()))
            for r in rows[badc]:
                self._bad(int(r), "is a compressed RLE string with characters outside '0'..'o'")
            sz = np.array(self.cmp_size, np.int64).reshape(-1, 2)
            pieces[3] = (rows, c, o)
            h[rows], w[rows] = sz[:, 0], sz[:, 1]
        return self._assemble(pieces, h, w, lens)

    def _assemble(self, pieces, h, w, lens):
        n = self.n
        for rows, _c, o in pieces.values():
            lens[rows] = np.diff(o)
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(lens, out=offsets[1:])
        counts = np.empty(offsets[-1], np.uint32)
        for rows, c, o in pieces.values():
            dst = np.repeat(offsets[rows] - o[:-1], np.diff(o)) + np.arange(o[-1])
            counts[dst] = c
        has = self.kind > 0
        tot = R.rle_total(counts, offsets)
        wrong = has & ~self.bad & (tot != h * w)
        for r in np.flatnonzero(wrong):
            self._bad(int(r), f"has RLE counts summing to {int(tot[r])}, not height x width = {int(h[r] * w[r])}")
        null = ~has | self.bad
        reasons = np.array([self.reason.get(i, "") for i in range(n)], object)
        return _mask_series(counts, offsets, h, w, null), self.bad, reasons


# --- ground truth -------------------------------------------------------------------------------
def _read_gt(ground_truth: Any, rej: _Rejects) -> tuple[pl.DataFrame, dict]:
    data = _load_json(ground_truth, "ground truth")
    if not isinstance(data, Mapping):
        raise _fail(f"ground truth: expected a JSON object with images/annotations/categories, got {type(data).__name__}.")
    for key in ("images", "categories"):
        if key not in data or not isinstance(data[key], list):
            raise _fail(f'ground truth: missing the "{key}" list.')
    anns = data.get("annotations", [])
    if not isinstance(anns, list):
        raise _fail('ground truth: "annotations" must be a list.')

    # images
    images = data["images"]
    for i, im in enumerate(images):
        if not isinstance(im, Mapping):
            raise _fail(f"ground truth: images[{i}] is not an object.")
    img_id, bad_id = _int_column([im.get("id") for im in images], "id")
    rej.add("images", bad_id, "id", "is missing or not an integer", fix="Every image needs an integer id. ")
    hh = [im.get("height") for im in images]
    ww = [im.get("width") for im in images]
    hgt, bad_h = _int_column(hh, "height")
    wid, bad_w = _int_column(ww, "width")
    h_missing = np.array([v is None for v in hh])
    w_missing = np.array([v is None for v in ww])
    rej.add("images", bad_h & ~h_missing & ~bad_id, "height", "is not an integer", img_id)
    rej.add("images", bad_w & ~w_missing & ~bad_id, "width", "is not an integer", img_id)
    rej.add("images", ~bad_h & (hgt < 0) & ~bad_id, "height", "is negative", img_id)
    rej.add("images", ~bad_w & (wid < 0) & ~bad_id, "width", "is negative", img_id)
    ok = ~bad_id & ~(bad_h & ~h_missing) & ~(bad_w & ~w_missing) & (hgt >= 0) & (wid >= 0)
    dup = np.zeros(len(images), bool)
    if ok.any():
        _, first = np.unique(img_id[ok], return_index=True)
        okr = np.flatnonzero(ok)
        dup[okr] = True
        dup[okr[first]] = False
    rej.add("images", dup, "id", "repeats the id of an earlier image", img_id)
    ok &= ~dup
    im_ids = img_id[ok]
    im_h = np.where(h_missing, -1, hgt)[ok]
    im_w = np.where(w_missing, -1, wid)[ok]
    order = np.argsort(im_ids)
    im_ids, im_h, im_w = im_ids[order], im_h[order], im_w[order]

    # categories
    cats = data["categories"]
    for i, c in enumerate(cats):
        if not isinstance(c, Mapping):
            raise _fail(f"ground truth: categories[{i}] is not an object.")
    cid, bad_c = _int_column([c.get("id") for c in cats], "id")
    rej.add("categories", bad_c, "id", "is missing or not an integer")
    cname = [c.get("name") for c in cats]
    name_bad = ~bad_c & np.array([not isinstance(v, str) for v in cname], bool)
    rej.add("categories", name_bad, "name", "is missing or not a string", cid)
    cok = ~bad_c & ~name_bad
    cdup = np.zeros(len(cats), bool)
    if cok.any():
        _, first = np.unique(cid[cok], return_index=True)
        okr = np.flatnonzero(cok)
        cdup[okr] = True
        cdup[okr[first]] = False
    rej.add("categories", cdup, "id", "repeats the id of an earlier category", cid)
    cok &= ~cdup
    cat_rows = np.flatnonzero(cok)
    cat_rows = cat_rows[np.argsort(cid[cat_rows], kind="stable")]
    cat_ids = cid[cat_rows]
    names = [cname[i] for i in cat_rows]
    seen: dict[str, int] = {}
    for n in names:
        seen[n] = seen.get(n, 0) + 1
    names = [n if seen[n] == 1 else f"{n} ({int(c)})" for n, c in zip(names, cat_ids, strict=True)]
    enum = pl.Enum(names)

    # annotations
    for i, a in enumerate(anns):
        if not isinstance(a, Mapping):
            raise _fail(f"ground truth: annotations[{i}] is not an object.")
    n = len(anns)
    aid, bad_aid = _int_column([a.get("id") for a in anns], "id")
    a_img, bad_img = _int_column([a.get("image_id") for a in anns], "image_id")
    a_cat, bad_cat = _int_column([a.get("category_id") for a in anns], "category_id")
    box, box_missing, box_bad = _bbox_column([a.get("bbox") for a in anns])
    seg = _Segm(n)
    for i, a in enumerate(anns):
        seg.parse(i, a.get("segmentation"))
    area_raw = [a.get("area") for a in anns]
    area, area_bad = _float_column(area_raw)
    area_missing = np.array([v is None for v in area_raw], bool)
    crowd_raw = [a.get("iscrowd", 0) for a in anns]
    ign_raw = [a.get("ignore", 0) for a in anns]
    crowd = np.array([bool(v) for v in crowd_raw], bool)
    ign = np.array([bool(v) for v in ign_raw], bool)

    img_pos = np.searchsorted(im_ids, a_img)
    img_known = ~bad_img & (img_pos < im_ids.size)
    img_known[img_known] &= im_ids[img_pos[img_known]] == a_img[img_known]
    cat_pos = np.searchsorted(cat_ids, a_cat)
    cat_known = ~bad_cat & (cat_pos < cat_ids.size)
    cat_known[cat_known] &= cat_ids[cat_pos[cat_known]] == a_cat[cat_known]

    T = "annotations"
    ids_for = np.where(bad_aid, None, aid).astype(object)
    rows_for = np.where(bad_img, None, a_img).astype(object)
    rej.add(T, bad_aid, "id", "is missing or not an integer", rows_for, ids_for)
    rej.add(T, ~bad_aid & bad_img, "image_id", "is missing or not an integer", rows_for, ids_for)
    rej.add(T, ~bad_aid & ~bad_img & ~img_known, "image_id", "is not the id of an image", rows_for, ids_for,
            fix="Add the image to the images list or remove the annotation. ")
    bad = bad_aid | bad_img | ~img_known
    rej.add(T, ~bad & bad_cat, "category_id", "is missing or not an integer", rows_for, ids_for)
    rej.add(T, ~bad & ~bad_cat & ~cat_known, "category_id", "is not the id of a category", rows_for, ids_for,
            fix="Add the category to the categories list or remove the annotation. ")
    bad |= bad_cat | ~cat_known
    rej.add(T, ~bad & box_bad, "bbox", "is not 4 finite numbers [x, y, width, height]", rows_for, ids_for)
    bad |= box_bad
    negwh = ~bad & ~box_missing & ((box[:, 2] < 0) | (box[:, 3] < 0))
    rej.add(T, negwh, "bbox", "has a negative width or height", rows_for, ids_for)
    bad |= negwh
    rej.add(T, ~bad & area_bad & ~area_missing, "area", "is not a finite number", rows_for, ids_for)
    bad |= area_bad & ~area_missing
    no_geom = ~bad & box_missing & (seg.kind == 0) & ~seg.bad
    rej.add(T, no_geom, "bbox", "is missing and there is no segmentation either", rows_for, ids_for)
    bad |= no_geom
    # duplicate ids: pycocotools keeps only the last one in its index
    dup = np.zeros(n, bool)
    if (~bad).any():
        okr = np.flatnonzero(~bad)
        _, first = np.unique(aid[okr], return_index=True)
        dup[okr] = True
        dup[okr[first]] = False
    rej.add(T, dup, "id", "repeats the id of an earlier annotation", rows_for, ids_for)
    bad |= dup

    hw_known = np.zeros(n, bool)
    a_h = np.zeros(n, np.int64)
    a_w = np.zeros(n, np.int64)
    kn = np.flatnonzero(img_known)
    a_h[kn], a_w[kn] = im_h[img_pos[kn]], im_w[img_pos[kn]]
    hw_known[kn] = (a_h[kn] >= 0) & (a_w[kn] >= 0)
    mask, seg_bad, seg_reason = seg.build(np.maximum(a_h, 0), np.maximum(a_w, 0), hw_known)
    for reason in sorted({str(r) for r in seg_reason[seg_bad & ~bad]}):
        rej.add(T, seg_bad & ~bad & (seg_reason == reason), "segmentation", reason, rows_for, ids_for)
    bad |= seg_bad

    keep = np.flatnonzero(~bad)
    has_mask = np.zeros(n, bool)
    if mask is not None:
        has_mask = ~mask.is_null().to_numpy()
        mc, mo, mh, mw = _mask_arrays(mask)
        if box_missing[keep].any():  # a box from the mask, as loadRes / toBbox would give
            fill = keep[box_missing[keep] & has_mask[keep]]
            box[fill] = R.rle_to_bbox(mc, mo, mh, mw)[fill]
        if area_missing[keep].any():
            fill = keep[area_missing[keep] & box_missing[keep] & has_mask[keep]]
            area[fill] = R.rle_area(mc, mo)[fill]
    area = np.where(area_missing & ~np.isnan(box[:, 2]), box[:, 2] * box[:, 3], area)
    box_null = np.isnan(box).any(axis=1)

    used = np.zeros(im_ids.size, bool)
    used[img_pos[keep]] = True
    empty = np.flatnonzero(~used)
    n_k, n_e = keep.size, empty.size
    null_e = np.ones(n_e, bool)
    frame = pl.DataFrame(
        {
            "data_row": np.concatenate([a_img[keep], im_ids[empty]]),
            "id": pl.Series(np.concatenate([aid[keep], np.zeros(n_e, np.int64)]), dtype=pl.Int64),
            "category_id": np.concatenate([a_cat[keep], np.zeros(n_e, np.int64)]),
            "feature": _enum_take(names, enum, np.concatenate([cat_pos[keep], np.full(n_e, -1)])),
            "kind": _kind_column(np.concatenate([has_mask[keep], np.zeros(n_e, bool)])),
            "area": np.concatenate([area[keep], np.full(n_e, np.nan)]),
            "is_crowd": np.concatenate([crowd[keep], np.zeros(n_e, bool)]),
            "ignore": np.concatenate([ign[keep], np.zeros(n_e, bool)]),
            "height": np.concatenate([a_h[keep], im_h[empty]]),
            "width": np.concatenate([a_w[keep], im_w[empty]]),
        }
    )
    placeholder = np.concatenate([np.zeros(n_k, bool), null_e])
    bnull = np.concatenate([box_null[keep], null_e])
    xywh = np.concatenate([box[keep], np.zeros((n_e, 4))])
    cols = [
        _array_series("bbox", _xyxy(xywh), bnull),
        _array_series("bbox_xywh", xywh, bnull),
    ]
    if mask is not None:
        idx = np.concatenate([keep, np.full(n_e, -1)])
        cols.append(_take_mask(mask, idx))
    frame = frame.with_columns(cols)
    ph = pl.Series(placeholder)
    frame = frame.with_columns(
        pl.when(ph).then(None).otherwise(pl.col(c)).alias(c)
        for c in ("id", "category_id", "kind", "area", "is_crowd", "ignore")
    ).with_columns(
        pl.when(pl.col(c) < 0).then(None).otherwise(pl.col(c)).alias(c) for c in ("height", "width")
    )
    ordered = ["data_row", "id", "feature", "category_id", "kind", "bbox", "bbox_xywh", "area",
               "is_crowd", "ignore"] + (["mask"] if mask is not None else []) + ["height", "width"]
    meta = {"image_ids": im_ids, "heights": im_h, "widths": im_w, "cat_ids": cat_ids,
            "names": names, "enum": enum}
    return frame.select(ordered), meta


def _mask_arrays(mask: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from polars_metrics.coco import mask_csr

    c, o, h, w, _ = mask_csr(mask)
    return c, o, h, w


def _take_mask(mask: pl.Series, idx: np.ndarray) -> pl.Series:
    """Rows ``idx`` of a mask column, -1 = null."""
    s = mask.gather(np.maximum(idx, 0))
    if (idx < 0).any():
        s = pl.select(pl.when(pl.lit(pl.Series(idx >= 0))).then(pl.lit(s))).to_series()
    return s.alias("mask")


# --- results ------------------------------------------------------------------------------------
def _results_fast(path: Path) -> pl.DataFrame | None:
    """Arrow's multithreaded JSON reader for the usual result files (bbox and/or compressed-RLE
    segm). The top-level array is turned into newline-delimited objects by replacing the
    separator between objects; a separator inside a string or a nested value leaves an invalid
    line, so any surprise falls back to the generic path instead of mis-reading."""
    import pyarrow.json as pj

    with open(path, "rb") as f:
        data = f.read()
    body = data.strip()
    if not (body.startswith(b"[") and body.endswith(b"]")):
        return None
    body = body[1:-1].strip()
    if not body:
        return pl.DataFrame(schema=_RESULTS_FAST_SCHEMA)
    sample = body[:65536]
    sep = next((c for c in (b"}, {", b"},{", b"},\n{") if c in sample), None)
    if sep is not None:
        body = body.replace(sep, b"}\n{")
    elif body.count(b"{") > 1:  # unusual layout (indented?): let polars read the array
        try:
            return pl.read_json(path, schema=_RESULTS_FAST_SCHEMA)
        except Exception:
            return None
    schema = pa.schema(
        [
            ("image_id", pa.int64()),
            ("category_id", pa.int64()),
            ("bbox", pa.list_(pa.float64())),
            ("score", pa.float64()),
            ("segmentation", pa.struct([("size", pa.list_(pa.int64())), ("counts", pa.string())])),
        ]
    )
    try:
        table = pj.read_json(
            pa.BufferReader(body),
            parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    return df.cast(_RESULTS_FAST_SCHEMA)


def _results_columns(res: Any) -> dict[str, Any]:
    """Raw result columns from a path, a list of dicts or a frame."""
    if isinstance(res, (pl.DataFrame, pl.LazyFrame)):
        df = res.collect() if isinstance(res, pl.LazyFrame) else res
        return {"frame": df}
    if isinstance(res, (str, os.PathLike)):
        fast = _results_fast(Path(res))
        if fast is not None:
            return {"frame": fast}
        res = _load_json(res, "results")
    if isinstance(res, np.ndarray):
        res = [
            {"image_id": int(r[0]), "bbox": [float(v) for v in r[1:5]], "score": float(r[5]),
             "category_id": int(r[6])}
            for r in res
        ]
    if not isinstance(res, list):
        raise _fail(f"results: expected a JSON array of result objects, got {type(res).__name__}.")
    for i, a in enumerate(res):
        if not isinstance(a, Mapping):
            raise _fail(f"results[{i}] is not an object.")
    return {"list": res}


def _read_results(results: Any, meta: dict, rej: _Rejects) -> pl.DataFrame:
    src = _results_columns(results)
    seg = None
    given_area = None
    if "frame" in src:
        df: pl.DataFrame = src["frame"]
        if "data_row" in df.columns and "image_id" not in df.columns:
            # the library's own layout: x0, y0, x1, y1 boxes, features by name, RLE masks
            df = df.rename({"data_row": "image_id"})
            if "bbox_xywh" in df.columns:
                df = df.with_columns(pl.col("bbox_xywh").alias("bbox"))
            elif "bbox" in df.columns:
                b = pl.col("bbox").cast(BBOX_DTYPE)
                df = df.with_columns(
                    pl.concat_list(b.arr.get(0), b.arr.get(1), b.arr.get(2) - b.arr.get(0),
                                   b.arr.get(3) - b.arr.get(1)).alias("bbox")
                )
            if "category_id" not in df.columns and "feature" in df.columns:
                lut = dict(zip(meta["names"], meta["cat_ids"].tolist(), strict=True))
                df = df.with_columns(
                    pl.col("feature").cast(pl.String).replace_strict(lut, default=None,
                                                                     return_dtype=pl.Int64)
                    .alias("category_id")
                )
            if "mask" in df.columns and "segmentation" not in df.columns:
                seg = ("mask", df["mask"].cast(MASK_DTYPE))
            if "area" in df.columns and df["area"].null_count() == 0:
                given_area = df["area"].cast(pl.Float64).to_numpy()  # already loadRes' area
        if "confidence" in df.columns and "score" not in df.columns:
            df = df.rename({"confidence": "score"})
        n = df.height
        for c in ("image_id", "category_id", "score"):
            if c not in df.columns:
                df = df.with_columns(pl.lit(None).alias(c))
        img = df["image_id"].cast(pl.Int64, strict=False)
        bad_img = img.is_null().to_numpy()
        img = img.fill_null(0).to_numpy()
        cat = df["category_id"].cast(pl.Int64, strict=False)
        bad_cat = cat.is_null().to_numpy()
        cat = cat.fill_null(0).to_numpy()
        score = df["score"].cast(pl.Float64, strict=False).to_numpy()
        bad_score = ~np.isfinite(np.asarray(score, dtype=np.float64))
        if "bbox" in df.columns:
            bs = df["bbox"]
            if isinstance(bs.dtype, pl.Array):
                bs = bs.arr.to_list()
            bs = bs.cast(pl.List(pl.Float64), strict=False)
            ln = bs.list.len().fill_null(0).to_numpy()
            box_missing = ln == 0
            box_bad = ~box_missing & (ln != 4)
            box = np.full((n, 4), np.nan)
            ok4 = ln == 4
            if ok4.any():
                box[ok4] = (
                    bs.filter(pl.Series(ok4)).list.to_array(4).to_numpy().reshape(-1, 4).astype(np.float64)
                )
            box_bad |= ~box_missing & ~np.isfinite(box).all(axis=1)
        else:
            box = np.full((n, 4), np.nan)
            box_missing = np.ones(n, bool)
            box_bad = np.zeros(n, bool)
        if seg is None and "segmentation" in df.columns and df["segmentation"].null_count() < n:
            sdt = df["segmentation"].dtype
            if (
                isinstance(sdt, pl.Struct)
                and {f.name for f in sdt.fields} >= {"size", "counts"}
                and sdt.to_schema()["counts"] in (pl.String, pl.Binary)
            ):
                seg = ("compressed", df["segmentation"])
            else:
                seg_vals = df["segmentation"].to_list()
                seg = ("generic", seg_vals)
    else:
        lst: list = src["list"]
        n = len(lst)
        img, bad_img = _int_column([a.get("image_id") for a in lst], "image_id")
        cat, bad_cat = _int_column([a.get("category_id") for a in lst], "category_id")
        score, bad_score = _float_column([a.get("score") for a in lst])
        box, box_missing, box_bad = _bbox_column([a.get("bbox") for a in lst])
        if any("segmentation" in a for a in lst[:1]) or any(a.get("segmentation") is not None for a in lst):
            seg = ("generic", [a.get("segmentation") for a in lst])

    if n == 0:
        return _empty_results(meta)
    # loadRes picks its branch from the first entry
    bbox_branch = not box_missing[0]
    T = "results"
    rows_for = np.where(bad_img, None, img).astype(object)
    rej.add(T, bad_img, "image_id", "is missing or not an integer", rows_for)
    im_ids = meta["image_ids"]
    pos = np.searchsorted(im_ids, img)
    known = ~bad_img & (pos < im_ids.size)
    known[known] &= im_ids[pos[known]] == img[known]
    rej.add(T, ~bad_img & ~known, "image_id", "is not the id of an image of the ground truth",
            rows_for, fix="Results must only refer to images of the ground truth file. ")
    bad = ~known
    rej.add(T, ~bad & bad_cat, "category_id", "is missing or not an integer", rows_for)
    cat_ids = meta["cat_ids"]
    cpos = np.searchsorted(cat_ids, cat)
    ck = ~bad_cat & (cpos < cat_ids.size)
    ck[ck] &= cat_ids[cpos[ck]] == cat[ck]
    rej.add(T, ~bad & ~bad_cat & ~ck, "category_id", "is not the id of a category of the ground truth",
            rows_for, fix="Use the category ids of the ground truth file. ")
    bad |= ~ck
    rej.add(T, ~bad & bad_score, "score", "is missing or not a finite number", rows_for,
            fix="COCO results need a score per detection. ")
    bad |= bad_score
    rej.add(T, ~bad & box_bad, "bbox", "is not 4 finite numbers [x, y, width, height]", rows_for)
    bad |= box_bad
    negwh = ~bad & ~box_missing & ((box[:, 2] < 0) | (box[:, 3] < 0))
    rej.add(T, negwh, "bbox", "has a negative width or height", rows_for)
    bad |= negwh
    if bbox_branch:
        rej.add(T, ~bad & box_missing, "bbox", "is missing (the first result has a box, so all must)", rows_for)
        bad |= box_missing

    h = np.zeros(n, np.int64)
    w = np.zeros(n, np.int64)
    hw_known = np.zeros(n, bool)
    kn = np.flatnonzero(known)
    h[kn], w[kn] = meta["heights"][pos[kn]], meta["widths"][pos[kn]]
    hw_known[kn] = (h[kn] >= 0) & (w[kn] >= 0)

    mask = None
    if seg is not None:
        if seg[0] == "mask":
            from polars_metrics.coco import mask_csr

            mc0, mo0, mh0, mw0, null = mask_csr(seg[1])
            sum_bad = ~null & (R.rle_total(mc0, mo0) != mh0 * mw0)
            rej.add(T, ~bad & sum_bad, "mask", "has RLE counts that do not sum to height x width", rows_for)
            bad |= sum_bad
            mask = _mask_series(mc0, mo0, mh0, mw0, null | bad)
        elif seg[0] == "compressed":
            s = seg[1]
            null = s.is_null().to_numpy()
            sz = s.struct.field("size")
            szl = sz.list.len().fill_null(0).to_numpy()
            size_bad = ~null & (szl != 2)
            mh = np.zeros(n, np.int64)
            mw = np.zeros(n, np.int64)
            ok2 = szl == 2
            if ok2.any():
                arr = sz.filter(pl.Series(ok2)).list.to_array(2).to_numpy().reshape(-1, 2)
                mh[ok2], mw[ok2] = arr[:, 0], arr[:, 1]
            size_bad |= ~null & ((mh < 0) | (mw < 0))
            c, o, badc = _decode_compressed(s.struct.field("counts").cast(pl.String).to_arrow())
            tot = R.rle_total(c, o)
            sum_bad = ~null & ~size_bad & ~badc & (tot != mh * mw)
            for m, reason in (
                (size_bad, "has an RLE size that is not [height, width]"),
                (badc & ~null, "is a compressed RLE string with characters outside '0'..'o'"),
                (sum_bad, "has RLE counts that do not sum to height x width"),
            ):
                rej.add(T, ~bad & m, "segmentation", reason, rows_for)
                bad |= m
            mask = _mask_series(c, o, mh, mw, null | bad)
        else:
            sp = _Segm(n)
            for i, v in enumerate(seg[1]):
                sp.parse(i, v)
            if not bbox_branch:  # loadRes' segm branch only takes compressed RLE
                other = (sp.kind == 1) | (sp.kind == 2)
                rej.add(T, ~bad & other, "segmentation",
                        "must be a compressed RLE when results carry no bbox (pycocotools loadRes)", rows_for)
                bad |= other
            mask, sbad, sreason = sp.build(np.maximum(h, 0), np.maximum(w, 0), hw_known)
            for reason in sorted({str(r) for r in sreason[sbad & ~bad]}):
                rej.add(T, sbad & ~bad & (sreason == reason), "segmentation", reason, rows_for)
            bad |= sbad
        if mask is not None and not (~bad & ~mask.is_null().to_numpy()).any() and not bbox_branch:
            mask = mask  # keep the column: segm results without usable masks are all rejected

    has_mask = np.zeros(n, bool) if mask is None else ~mask.is_null().to_numpy()
    if not bbox_branch:
        missing = ~bad & ~has_mask
        rej.add(T, missing, "segmentation", "is missing (results need a bbox or a segmentation)", rows_for)
        bad |= missing
    keep = np.flatnonzero(~bad)
    if bbox_branch:
        area = box[:, 2] * box[:, 3]
    else:
        mc, mo, mh2, mw2 = _mask_arrays(mask)
        area = R.rle_area(mc, mo).astype(np.float64)
        fill = box_missing & has_mask
        if fill.any():
            box[fill] = R.rle_to_bbox(mc, mo, mh2, mw2)[fill]
    if given_area is not None:
        area = np.asarray(given_area, dtype=np.float64)
    enum = meta["enum"]
    names = meta["names"]
    box_null = np.isnan(box[keep]).any(axis=1)
    frame = pl.DataFrame(
        {
            "data_row": img[keep],
            "id": np.arange(1, n + 1, dtype=np.int64)[keep],
            "feature": _enum_take(names, enum, cpos[keep]),
            "category_id": cat[keep],
            "kind": _kind_column(has_mask[keep]),
            "area": area[keep],
            "confidence": np.asarray(score, dtype=np.float64)[keep],
            "height": h[keep],
            "width": w[keep],
        },
    )
    cols = [
        _array_series("bbox", _xyxy(box[keep]), box_null),
        _array_series("bbox_xywh", box[keep], box_null),
    ]
    if mask is not None:
        cols.append(mask.gather(keep).alias("mask"))
    frame = frame.with_columns(cols).with_columns(
        pl.when(pl.col(c) < 0).then(None).otherwise(pl.col(c)).alias(c) for c in ("height", "width")
    )
    ordered = ["data_row", "id", "feature", "category_id", "kind", "bbox", "bbox_xywh", "area",
               "confidence"] + (["mask"] if mask is not None else []) + ["height", "width"]
    return frame.select(ordered)


def _empty_results(meta: dict) -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "data_row": pl.Int64, "id": pl.Int64, "feature": meta["enum"], "category_id": pl.Int64,
            "kind": pl.String, "bbox": BBOX_DTYPE, "bbox_xywh": BBOX_DTYPE, "area": pl.Float64,
            "confidence": pl.Float64, "height": pl.Int64, "width": pl.Int64,
        }
    )  # fmt: skip


def read_coco(
    ground_truth: str | os.PathLike | Mapping,
    results: str | os.PathLike | Sequence[Mapping] | pl.DataFrame | np.ndarray | None = None,
    *,
    on_invalid: str = "raise",
) -> tuple[pl.DataFrame, pl.DataFrame] | tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Read a COCO ground-truth file and (optionally) a results file into frames.

    Parameters
    ----------
    ground_truth : path or dict
        A COCO instances JSON (``images``, ``annotations``, ``categories``) or the parsed dict.
    results : path, list of dicts, DataFrame, ndarray, or None
        A COCO results JSON (array of ``image_id``, ``category_id``, ``bbox`` and/or
        ``segmentation``, ``score``), the parsed list, a frame with those columns (or with
        ``data_row`` / ``confidence``), or pycocotools' ``N x 7`` numpy layout. ``None`` gives
        an empty ``pd``.
    on_invalid : {"raise", "drop"}
        "raise" (default): the first bad entry raises :class:`~polars_metrics.errors.FormatError`
        naming the table, the entry index, the field and the fix. "drop": bad entries are left
        out and listed in a third returned frame ``rejects`` (``table``, ``row`` = entry index,
        ``data_row``, ``id``, ``column``, ``reason``). A malformed overall structure (not a JSON
        object / array, missing ``images`` or ``categories``) always raises.

    Returns
    -------
    (gt, pd) or, with ``on_invalid="drop"``, (gt, pd, rejects)
        See the module docstring for the columns.

    Examples
    --------
    >>> gt, pd = read_coco({"images": [{"id": 1, "height": 10, "width": 10}],
    ...                     "annotations": [], "categories": [{"id": 3, "name": "cat"}]},
    ...                    [{"image_id": 1, "category_id": 3, "bbox": [0, 0, 2, 2], "score": .5}])
    >>> gt.select("data_row", "feature", "id").rows(), pd["bbox"].to_list()
    ([(1, None, None)], [[0.0, 0.0, 2.0, 2.0]])
    """
    rej = _Rejects(on_invalid)
    gt, meta = _read_gt(ground_truth, rej)
    pd = _empty_results(meta) if results is None else _read_results(results, meta, rej)
    if rej.drop:
        return gt, pd, rej.frame()
    return gt, pd


# --- writing ------------------------------------------------------------------------------------
def write_coco_results(
    pd: pl.DataFrame, path: str | os.PathLike | None = None, *, bbox: bool | None = None
) -> str | None:
    """Write predictions as a COCO results JSON array: ``image_id``, ``category_id``, ``bbox``
    (x, y, w, h), ``score``, and ``segmentation`` as compressed RLE when a ``mask`` is present.

    ``bbox=None`` (default) writes boxes only for box results: with masks, the file is written
    like pycocotools' own segm results (no ``bbox``), because ``COCO.loadRes`` takes every
    area from the boxes as soon as the first entry has one. ``bbox=True`` / ``False`` forces it.
    Returns the JSON text when ``path`` is None.
    """
    for c in ("data_row", "confidence"):
        if c not in pd.columns:
            raise SchemaError(f'pd: missing the "{c}" column needed for COCO results.')
    if "category_id" not in pd.columns:
        raise SchemaError('pd: missing "category_id" (COCO results refer to categories by id).')
    has_mask = "mask" in pd.columns and pd["mask"].null_count() < pd.height
    if bbox is None:
        bbox = not has_mask
    cols: list[pl.Series | pl.Expr] = [
        pl.col("data_row").cast(pl.Int64).alias("image_id"),
        pl.col("category_id").cast(pl.Int64),
    ]
    if bbox and "bbox_xywh" in pd.columns:
        cols.append(pl.col("bbox_xywh").arr.to_list().alias("bbox"))
    elif bbox and "bbox" in pd.columns:
        b = pl.col("bbox")
        cols.append(
            pl.concat_list(
                b.arr.get(0), b.arr.get(1), b.arr.get(2) - b.arr.get(0), b.arr.get(3) - b.arr.get(1)
            ).alias("bbox")
        )
    elif bbox:
        raise SchemaError('pd: bbox=True but there is no "bbox" column.')
    cols.append(pl.col("confidence").cast(pl.Float64).alias("score"))
    out = pd.select(cols)
    if has_mask:
        from polars_metrics.coco import mask_csr

        c, o, h, w, null = mask_csr(pd["mask"])
        buf, ptr = R.rle_encode_strings(c, o)
        strings = pa.LargeStringArray.from_buffers(
            len(ptr) - 1, pa.py_buffer(ptr.astype(np.int64)), pa.py_buffer(buf)
        )
        st = pl.DataFrame(
            {
                "size": pl.Series(np.stack([h, w], axis=1).astype(np.int64)).cast(pl.List(pl.Int64)),
                "counts": pl.from_arrow(strings),
            }
        ).select(pl.struct("size", "counts").alias("segmentation"))["segmentation"]
        if null.any():
            st = pl.select(pl.when(pl.lit(pl.Series(~null))).then(pl.lit(st))).to_series()
        out = out.with_columns(st.alias("segmentation"))
    if "bbox" in out.columns and out["bbox"].null_count():
        raise SchemaError("pd: some rows have a null bbox; COCO results need one per entry.")
    text = out.write_json()
    if path is None:
        return text
    Path(path).write_text(text)
    return None
