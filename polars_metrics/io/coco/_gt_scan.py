"""COCO ground-truth files read by the typed scanner (``_kernels/json_gt.py``).

Why: msgspec builds a Python dict per image and annotation and the reader then walks them in
Python (a list comprehension per field); on the 5k-image benchmark file (4.8 MB, 35k
annotations) that was 0.15 s of the read. The scanner writes the fields straight into numpy
columns in one pass over the bytes (no Python object per value, exact floats), then the same
checks run on the columns whichever way they were read (``gt.py``), so frames, errors and
rejects are identical.

It reads only what it fully understands (see the kernel module); anything else returns None
and the caller reads the file with the generic path (msgspec, then ``json``).
"""
from __future__ import annotations

import json
import mmap
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polars_metrics._arrays import offsets_from_lengths
from polars_metrics._lazy import lazy
from polars_metrics.io.coco._scan import is_utf8, read_bytes
from polars_metrics.io.coco.segmentation import Segmentations

G = lazy("polars_metrics._kernels.json_gt")
J = lazy("polars_metrics._kernels.json_scan")


@dataclass
class ImageCols:
    """The images table as columns: ids, heights, widths, each with a "bad" mask (missing, not
    an integer) and, for the sizes, a "missing" mask (absent or null)."""

    id: np.ndarray
    bad_id: np.ndarray
    h: np.ndarray
    bad_h: np.ndarray
    h_missing: np.ndarray
    w: np.ndarray
    bad_w: np.ndarray
    w_missing: np.ndarray


@dataclass
class CategoryCols:
    id: np.ndarray
    bad_id: np.ndarray
    names: list  # the json values (a str when well-formed)


@dataclass
class AnnotationCols:
    """The annotations as columns (see ``gt._annotations`` for the checks)."""

    n: int
    id: np.ndarray
    bad_id: np.ndarray
    img: np.ndarray
    bad_img: np.ndarray
    cat: np.ndarray
    bad_cat: np.ndarray
    box: np.ndarray
    box_missing: np.ndarray
    box_bad: np.ndarray
    area: np.ndarray
    area_bad: np.ndarray
    area_missing: np.ndarray
    crowd: np.ndarray
    ignore: np.ndarray
    seg: Segmentations


def _capacities(n_bytes: int, exact: bool) -> tuple[int, int, int, int, int, int]:
    """Rows per column: a guess from typical object sizes, or (``exact``) room for every row
    the bytes can hold. ``np.empty`` leaves rows never written out of memory."""
    most = n_bytes // 2 + 2  # "1," / "{}," : at least two bytes per value or object
    if exact:
        return most, most, most, most, most, most
    rows = n_bytes // 40 + 16
    return rows, rows, rows, n_bytes // 16 + 16, most, most


def _run(buf: np.ndarray, exact: bool) -> tuple[np.ndarray, tuple] | None:
    n_im, n_cat, n_ann, n_poly, n_coord, n_count = _capacities(buf.size, exact)
    ims = np.empty((n_im, G.IM_COLS), np.int64)
    cats = np.empty((n_cat, G.CA_COLS), np.int64)
    anns = np.empty((n_ann, G.AN_COLS), np.int64)
    annf = np.empty((n_ann, G.AF_COLS), np.float64)
    polys = np.empty((n_poly, G.PO_COLS), np.int64)
    coords = np.empty(n_coord, np.float64)
    counts = np.empty(n_count, np.uint32)
    status = np.zeros(G.ST_SIZE, np.int64)
    G.scan_gt(buf, ims, cats, anns, annf, polys, coords, counts, status, *J.scratch(1))
    return status, (ims, cats, anns, annf, polys, coords, counts)


@dataclass
class ScannedGT:
    images: ImageCols
    categories: CategoryCols
    annotations: AnnotationCols

    def image_cols(self) -> ImageCols:
        return self.images

    def category_cols(self) -> CategoryCols:
        return self.categories

    def annotation_cols(self) -> AnnotationCols:
        return self.annotations


def scan_gt(path: str | os.PathLike) -> ScannedGT | None:
    """The ground-truth file's columns, or None (read it the generic way)."""
    data = read_bytes(Path(path))
    if not is_utf8(data):
        return None
    buf = np.frombuffer(data, np.uint8)
    status, cols = _run(buf, exact=False)
    if status[G.ST_CODE] == G.NO_ROOM:
        status, cols = _run(buf, exact=True)
    if status[G.ST_CODE] != G.OK:
        return None
    ims, cats, anns, annf, polys, coords, counts = cols
    ims, cats = ims[:status[G.ST_IMAGES]], cats[:status[G.ST_CATS]]
    anns, annf = anns[:status[G.ST_ANNS]], annf[:status[G.ST_ANNS]]
    polys = polys[:status[G.ST_POLYS]]
    seg = _segmentations(buf, anns, polys, coords[:status[G.ST_COORDS]],
                         counts[:status[G.ST_COUNTS]])
    if seg is None:
        return None
    return ScannedGT(_images(ims), _categories(data, cats), _annotations(anns, annf, seg))


def _images(ims: np.ndarray) -> ImageCols:
    bits = ims[:, G.IM_BITS]
    h_missing = (bits & 2) == 0
    w_missing = (bits & 4) == 0
    return ImageCols(ims[:, G.IM_ID].copy(), (bits & 1) == 0, ims[:, G.IM_H].copy(), h_missing,
                     h_missing, ims[:, G.IM_W].copy(), w_missing, w_missing)


def _categories(data: mmap.mmap | bytearray, cats: np.ndarray) -> CategoryCols:
    names: list = []
    for lo, hi, esc, given in cats[:, [G.CA_LO, G.CA_HI, G.CA_ESC, G.CA_BITS]].tolist():
        if not given & 2:
            names.append(None)
        elif esc:  # the string token as json.loads reads it
            names.append(json.loads(bytes(data[lo - 1:hi + 1])))
        else:
            names.append(bytes(data[lo:hi]).decode("utf-8"))
    bits = cats[:, G.CA_BITS]
    return CategoryCols(cats[:, G.CA_ID].copy(), (bits & 1) == 0, names)


def _annotations(anns: np.ndarray, annf: np.ndarray, seg: Segmentations) -> AnnotationCols:
    n = anns.shape[0]
    bits = anns[:, G.AN_BITS]
    box_state = anns[:, G.AN_BOX]
    box = np.ascontiguousarray(annf[:, G.AF_X:G.AF_H + 1])
    area_missing = anns[:, G.AN_AREA] == 0
    area = annf[:, G.AF_AREA].copy()
    return AnnotationCols(
        n, anns[:, G.AN_ID].copy(), (bits & 1) == 0, anns[:, G.AN_IMG].copy(), (bits & 2) == 0,
        anns[:, G.AN_CAT].copy(), (bits & 4) == 0, box, box_state != G.BOX_FOUR,
        np.zeros(n, bool), area, area_missing, area_missing, anns[:, G.AN_CROWD] != 0,
        anns[:, G.AN_IGNORE] != 0, seg)


def _segmentations(buf: np.ndarray, anns: np.ndarray, polys: np.ndarray, coords: np.ndarray,
                   counts: np.ndarray) -> Segmentations | None:
    """The scanned segmentations in a :class:`Segmentations`, as ``parse`` would hold them."""
    seg = Segmentations(anns.shape[0])
    kind = anns[:, G.AN_SEG]
    rows = np.flatnonzero(kind == G.SEG_POLYGONS)
    if rows.size:
        first, count = anns[rows, G.AN_SA], anns[rows, G.AN_SB]
        seg.add_polygons(rows, count, polys[first[0]:, G.PO_LO][:int(count.sum())],
                         polys[first[0]:, G.PO_LEN][:int(count.sum())], coords)
    rows = np.flatnonzero(kind == G.SEG_UNCOMPRESSED)
    if rows.size:
        lo, length = anns[rows, G.AN_SA], anns[rows, G.AN_SB]
        ptr = offsets_from_lengths(length)
        idx = np.repeat(lo - ptr[:-1], length) + np.arange(ptr[-1])
        seg.add_uncompressed(rows, counts[idx], ptr, anns[rows, G.AN_SH], anns[rows, G.AN_SW])
    rows = np.flatnonzero(kind == G.SEG_COMPRESSED)
    if rows.size:
        ptr = offsets_from_lengths(anns[rows, G.AN_SLEN])
        out = np.empty(int(ptr[-1]), np.uint8)
        lo = np.ascontiguousarray(anns[rows, G.AN_SA])
        hi = np.ascontiguousarray(anns[rows, G.AN_SB])
        J.copy_strings(buf, lo, hi, ptr, out, 0, rows.size)
        seg.add_strings(rows, out, ptr, anns[rows, G.AN_SH], anns[rows, G.AN_SW])
    return seg
