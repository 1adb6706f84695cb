"""Masks: ``mask`` = COCO RLE Struct{height, width, counts: List(UInt32)} (uncompressed,
column-major runs starting with a run of 0s). Compressed COCO strings and ``{size, counts}``
structs are decoded at load; :func:`mask_from_array` and :func:`mask_from_png` build masks
from dense arrays and PNG files or bytes (binary masks, or the pixels of one RGB colour of a
composite mask).

IoU = intersection pixels / union pixels, the same double as ``pycocotools.mask.iou``; two
empty masks → 0 (as any pair with an empty mask). Masks of different sizes in one data row
raise an error naming both ids. Checks: null mask, missing or negative size, RLE counts that
do not sum to height × width. Masks are pixels: ``crs`` does not apply.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics._lazy import lazy
from polars_metrics._threads import serial_if_small
from polars_metrics.errors import InvalidAnnotationError, SchemaError
from polars_metrics.kinds._base import Kind
from polars_metrics.kinds._planar import compact
from polars_metrics.kinds._rle import (
    counts_list,
    decode_strings,
    dense_from_runs,
    mask_csr,
    runs_from_dense,
)
from polars_metrics.validation import POS, Check

numba = lazy("numba")
R = lazy("polars_metrics._kernels.rle")
K = lazy("polars_metrics._kernels.rle_pairs")

NAME = "mask"
GEOMETRY = (s.MASK,)


# --- constructors ---------------------------------------------------------------------------------
def mask_from_array(array) -> dict:
    """One mask from a dense 2-D array (nonzero = foreground) as a ``mask`` value.

    >>> import numpy as np, polars as pl, polars_metrics as pm
    >>> m = pm.mask_from_array(np.array([[0, 1], [1, 1]]))
    >>> m
    {'height': 2, 'width': 2, 'counts': [1, 3]}
    >>> pl.Series("mask", [m], dtype=pm.MASK_DTYPE).dtype == pm.MASK_DTYPE
    True
    """
    a = np.asarray(array)
    if a.ndim != 2:
        raise ValueError(f"mask_from_array expects a 2-D array (height, width); got shape {a.shape}. "
                         "Use masks_from_arrays for a stack.")
    return {"height": int(a.shape[0]), "width": int(a.shape[1]), "counts": runs_from_dense(a != 0).tolist()}


def masks_from_arrays(arrays, name: str = s.MASK) -> pl.Series:
    """A ``mask`` column from dense 2-D arrays (a list, or an (n, height, width) stack).

    >>> import numpy as np, polars_metrics as pm
    >>> pm.masks_from_arrays(np.eye(2, dtype=bool)[None].repeat(2, axis=0)).to_list()
    [{'height': 2, 'width': 2, 'counts': [0, 1, 2, 1]}, {'height': 2, 'width': 2, 'counts': [0, 1, 2, 1]}]
    """
    values = [mask_from_array(a) for a in arrays]
    return pl.Series(name, values, dtype=s.MASK_DTYPE)


def mask_to_array(value) -> np.ndarray:
    """The dense boolean (height, width) array of one ``mask`` value (dict).

    >>> import polars_metrics as pm
    >>> pm.mask_to_array({"height": 2, "width": 2, "counts": [1, 3]}).astype(int).tolist()
    [[0, 1], [1, 1]]
    """
    return dense_from_runs(int(value["height"]), int(value["width"]), value["counts"])


def mask_from_png(source, color=None) -> dict:
    """One mask from a PNG: a path, ``file://`` URL, or the PNG bytes.

    ``color=None``: a binary mask, foreground = any nonzero pixel (0/1 or 0/255 single-channel
    masks, as the labeling platform writes them; any nonzero RGB for colour images).
    ``color=(r, g, b)``: a composite mask, foreground = pixels of exactly that RGB colour.

    >>> import tempfile, numpy as np, polars_metrics as pm
    >>> from PIL import Image
    >>> rgb = np.zeros((2, 3, 3), np.uint8)
    >>> rgb[0, 1] = (255, 0, 0)
    >>> rgb[1, 2] = (0, 255, 0)
    >>> path = tempfile.mkdtemp() + "/mask.png"
    >>> Image.fromarray(rgb).save(path)
    >>> pm.mask_from_png(path)
    {'height': 2, 'width': 3, 'counts': [2, 1, 2, 1]}
    >>> pm.mask_from_png("file://" + path, color=(255, 0, 0))
    {'height': 2, 'width': 3, 'counts': [2, 1, 3]}
    """
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover
        raise ImportError("mask_from_png needs Pillow: pip install pillow") from exc
    if isinstance(source, bytes | bytearray | memoryview):
        handle = io.BytesIO(bytes(source))
    else:
        text = str(source)
        if text.startswith("file://"):
            text = text[len("file://"):]
        handle = Path(text)
    with Image.open(handle) as img:
        img.load()
        if color is not None:
            rgb = np.asarray(img.convert("RGB"))
            c = np.asarray(color, dtype=np.int64).ravel()
            if c.size != 3:
                raise ValueError(f"color must be (r, g, b); got {color!r}.")
            fg = (rgb == c[None, None, :]).all(axis=2)
        else:
            if img.mode in ("P", "PA"):
                img = img.convert("RGBA" if img.mode == "PA" else "RGB")
            arr = np.asarray(img)
            fg = (arr[..., :3] != 0).any(axis=2) if arr.ndim == 3 else arr != 0
    return mask_from_array(fg)


# --- normalize and checks -------------------------------------------------------------------------
def normalize(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """Cast ``mask`` to ``MASK_DTYPE``; accept {height, width, counts} with integer list counts,
    and COCO's {size: [h, w], counts} with list or compressed-string counts."""
    dtype = frame.schema[s.MASK]
    if dtype == s.MASK_DTYPE:
        return frame
    if dtype == pl.Null:
        return frame.with_columns(pl.col(s.MASK).cast(s.MASK_DTYPE))
    if not isinstance(dtype, pl.Struct):
        raise SchemaError(f"{table}.{s.MASK} has dtype {dtype}; expected {s.MASK_DTYPE} (COCO RLE; "
                          "build it with pm.mask_from_array or pm.mask_from_png).")
    fields = {f.name: f.dtype for f in dtype.fields}
    col = frame[s.MASK]
    st = col.struct
    if "height" in fields and "width" in fields:
        h, w = st.field("height"), st.field("width")
    elif "size" in fields:
        size = st.field("size")
        h, w = size.list.get(0, null_on_oob=True) if isinstance(fields["size"], pl.List) else size.arr.get(0), \
            size.list.get(1, null_on_oob=True) if isinstance(fields["size"], pl.List) else size.arr.get(1)
    else:
        raise SchemaError(f"{table}.{s.MASK} has fields {list(fields)}; expected height, width and "
                          "counts (or COCO's size and counts).")
    if "counts" not in fields:
        raise SchemaError(f"{table}.{s.MASK} has no 'counts' field (the RLE run lengths).")
    counts = st.field("counts")
    if fields["counts"] == pl.String:
        c, o, bad = decode_strings(counts)
        if bad.any():
            raise SchemaError("mask.counts: a compressed RLE string has characters outside COCO's "
                              "alphabet (ASCII 48..111).")
        counts = counts_list(c, o, counts.is_null().to_numpy())
    elif isinstance(fields["counts"], pl.List) and fields["counts"].inner.is_integer():
        if (counts.explode() < 0).any():
            raise SchemaError(f"{table}.{s.MASK}.counts has negative run lengths.")
        counts = counts.cast(pl.List(pl.UInt32))
    else:
        raise SchemaError(f"{table}.{s.MASK}.counts has dtype {fields['counts']}; expected a list "
                          "of run lengths or a compressed COCO string.")
    mask = pl.DataFrame({"height": h.cast(pl.Int64), "width": w.cast(pl.Int64), "counts": counts}
                        ).select(pl.struct("height", "width", "counts").alias(s.MASK))[s.MASK]
    mask = pl.select(pl.when(col.is_not_null()).then(mask)).to_series().alias(s.MASK)
    return frame.with_columns(mask.cast(s.MASK_DTYPE))


def _size_problems(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(missing or negative size, counts that do not sum to height × width)."""
    col = frame[s.MASK]
    st = col.struct
    h, w = st.field("height"), st.field("width")
    bad_size = (h.is_null() | w.is_null() | (h < 0) | (w < 0) | st.field("counts").is_null())
    bad_size = bad_size.fill_null(True).to_numpy() & col.is_not_null().to_numpy()
    counts, offsets, hh, ww, _ = mask_csr(col)
    total = R.rle_total(counts, offsets)
    bad_sum = (total != hh * ww) & ~bad_size & col.is_not_null().to_numpy()
    return bad_size, bad_sum


def checks(table: str, keys=None) -> list[Check]:
    cache: dict = {}

    def problems(frame):
        if cache.get("frame") is not frame:
            cache["frame"] = frame
            with serial_if_small(frame.height, small=1024):
                cache["value"] = _size_problems(frame)
        return cache["value"]

    return [
        Check(s.MASK, pl.col(s.MASK).is_null(), "mask is null",
              "give every mask its RLE (pm.mask_from_array / pm.mask_from_png build one)"),
        Check(s.MASK, lambda f: problems(f)[0], "mask height, width or counts is missing or negative",
              "give the image height and width and the RLE counts"),
        Check(s.MASK, lambda f: problems(f)[1], "mask RLE counts do not sum to height × width",
              "encode the whole image, column-major, starting with a run of 0s"),
    ]


# --- pairs ----------------------------------------------------------------------------------------
class _Batch:
    """A side's masks as CSR arrays with their run starts, boxes and areas."""

    def __init__(self, series: pl.Series):
        self.counts, self.offsets, self.h, self.w, _ = mask_csr(series)
        self.starts, self.col0, self.col1, self.area = K.mask_stats(self.counts, self.offsets, self.h)

    def arrays(self) -> tuple:
        return self.counts, self.starts, self.offsets, self.col0, self.col1, self.area, self.h


def _size_error(gt, pd, gi: int, pi: int, a: _Batch, b: _Batch, row: int | None) -> InvalidAnnotationError:
    gid = gt.column(s.ID)[gi]
    pid = pd.column(s.ID)[pi]
    where = " in one data row" if row is not None else ""
    pos = ""
    if POS in gt.frame.columns and POS in pd.frame.columns:
        pos = f" (input rows {gt.column(POS)[gi]} and {pd.column(POS)[pi]})"
    return InvalidAnnotationError(
        f"mask sizes differ{where}: ground truth id={gid!r} is {a.h[gi]}×{a.w[gi]} (height×width) but "
        f"prediction id={pid!r} is {b.h[pi]}×{b.w[pi]}{pos}. Masks compared with each other must "
        "cover the same image; re-encode one of them at the image size."
    )


def _check_sizes(gt, pd, a: _Batch, b: _Batch) -> None:
    n_rows = gt.off.shape[0] - 1
    if len(gt) == 0 or len(pd) == 0:
        return
    big = np.int64(1) << 31
    code_a = a.h * big + a.w
    code_b = b.h * big + b.w
    lo = np.full(n_rows, np.iinfo(np.int64).max)
    hi = np.full(n_rows, np.iinfo(np.int64).min)
    for code, row in ((code_a, gt.row), (code_b, pd.row)):
        np.minimum.at(lo, row, code)
        np.maximum.at(hi, row, code)
    both = (np.diff(gt.off) > 0) & (np.diff(pd.off) > 0)
    bad_rows = np.flatnonzero(both & (lo != hi))
    if bad_rows.size == 0:
        return
    r = int(bad_rows[0])
    gs, ps = range(gt.off[r], gt.off[r + 1]), range(pd.off[r], pd.off[r + 1])
    for g in gs:
        for p in ps:
            if code_a[g] != code_b[p]:
                raise _size_error(gt, pd, g, p, a, b, r)
    # sizes differ only within one side: every cross pair still has equal sizes except none
    g0, p0 = gs[0], ps[0]
    raise _size_error(gt, pd, g0, p0, a, b, r)  # pragma: no cover


def pairs(gt, pd, profile=None):
    """Candidate pairs with IoU > 0 per data row (see ``_kernels.rle_pairs``); masks are
    pixels: the profile (``crs``, buffer radius) is not read."""
    with serial_if_small(len(gt) + len(pd), small=256):
        a, b = _Batch(gt.column(s.MASK)), _Batch(pd.column(s.MASK))
        _check_sizes(gt, pd, a, b)
        sizes, iou = K.mask_pair_ious(*a.arrays(), gt.off, *b.arrays()[:-1], pd.off)
    n_g, n_p = np.diff(gt.off), np.diff(pd.off)
    rows = np.repeat(np.arange(n_g.shape[0]), n_g * n_p)
    local = np.arange(iou.shape[0], dtype=np.int64) - sizes[rows]
    width = n_p[rows]
    safe = np.maximum(width, 1)
    out_g = gt.off[rows] + local // safe
    out_p = pd.off[rows] + local % safe
    return compact(sizes, out_g, out_p, iou)


def aligned_iou(a: pl.Series, b: pl.Series) -> np.ndarray:
    """IoU of mask a[i] with b[i] for every i (no nulls; sizes must agree row by row)."""
    A, B = _Batch(a.cast(s.MASK_DTYPE)), _Batch(b.cast(s.MASK_DTYPE))
    for name, m in (("left", A), ("right", B)):
        bad = R.rle_total(m.counts, m.offsets) != m.h * m.w
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidAnnotationError(f"mask_iou: {name} mask at row {i} has RLE counts that do "
                                         f"not sum to height × width ({m.h[i]}×{m.w[i]}).")
    diff = (A.h != B.h) | (A.w != B.w)
    if diff.any():
        i = int(np.flatnonzero(diff)[0])
        raise InvalidAnnotationError(f"mask_iou: row {i} compares a {A.h[i]}×{A.w[i]} mask with a "
                                     f"{B.h[i]}×{B.w[i]} mask (height×width); sizes must agree.")
    idx = np.arange(a.len(), dtype=np.int64)
    chunks = max(1, min(a.len() // 64, 4 * max(1, numba.get_num_threads())))
    return K.mask_iou_indexed(*A.arrays(), *B.arrays()[:-1], idx, idx, chunks)


KIND = Kind(NAME, GEOMETRY, normalize, checks, pairs, aligned_iou=aligned_iou)
