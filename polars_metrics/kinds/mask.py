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
from polars_metrics._arrays import offsets_from_lengths
from polars_metrics._lazy import lazy
from polars_metrics._parallel import run_ranges
from polars_metrics._threads import serial_if_small
from polars_metrics.errors import FormatError, InvalidAnnotationError, SchemaError
from polars_metrics.kinds._base import Kind
from polars_metrics.kinds._planar import compact
from polars_metrics.kinds._rle import (
    RLE_BAD_COUNTS,
    RLE_BAD_SIZE,
    RLE_BAD_SUM,
    RLE_OK,
    RLE_REASONS,
    RLE_TOO_LARGE,
    counts_list,
    decode_strings,
    dense_from_runs,
    mask_csr,
    rle_problems,
    runs_from_dense,
)
from polars_metrics.validation import POS, Check

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

    The value is read and checked as ``pm.evaluate`` reads a mask: ``{height, width, counts}``
    or COCO's ``{size, counts}`` with list or compressed-string counts. An invalid value raises
    :class:`~polars_metrics.errors.InvalidAnnotationError` saying what is wrong.

    >>> import polars_metrics as pm
    >>> pm.mask_to_array({"height": 2, "width": 2, "counts": [1, 3]}).astype(int).tolist()
    [[0, 1], [1, 1]]
    >>> pm.mask_to_array({"height": 2, "width": 2, "counts": [1, 2]})
    Traceback (most recent call last):
    ...
    polars_metrics.errors.InvalidAnnotationError: mask_to_array: mask RLE counts do not sum to height × width (2×2).
    """
    if not isinstance(value, dict):
        raise InvalidAnnotationError(f"mask_to_array expects a mask dict {{height, width, counts}}; "
                                     f"got {type(value).__name__}.")
    try:
        col = normalize(pl.DataFrame({s.MASK: [value]}), "mask")[s.MASK]
    except (pl.exceptions.PolarsError, TypeError, OverflowError) as exc:
        raise InvalidAnnotationError(f"mask_to_array cannot read {str(value)[:80]}: expected "
                                     f"{{height, width, counts}} ({exc}).") from None
    code = int(mask_problems(col)[0]) if col.null_count() == 0 else RLE_BAD_COUNTS
    m = col[0]
    if code:
        size = f" ({m['height']}×{m['width']})" if m and code == RLE_BAD_SUM else ""
        raise InvalidAnnotationError(f"mask_to_array: {RLE_REASONS[code]}{size}.")
    try:
        return dense_from_runs(m["height"], m["width"], m["counts"])
    except MemoryError:
        raise InvalidAnnotationError(f"mask_to_array: a {m['height']}×{m['width']} dense array does "
                                     "not fit in memory; work on the RLE instead.") from None


def _foreground(img) -> np.ndarray:
    """Nonzero pixels of an image's colour bands; an alpha band is never foreground."""
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
    elif img.mode not in ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F", "RGB", "RGBA",
                          "RGBa", "RGBX"):
        img = img.convert("RGB")  # CMYK, YCbCr, LAB, HSV, ...: judged by their RGB
    bands = img.getbands()
    arr = np.asarray(img)
    if arr.ndim == 2:
        return arr != 0
    colour = [i for i, b in enumerate(bands) if b not in ("A", "a", "X")]
    return (arr[..., colour] != 0).any(axis=2)


def mask_from_png(source, color=None) -> dict:
    """One mask from a PNG: a path, ``file://`` URL, or the PNG bytes.

    ``color=None``: a binary mask, foreground = any nonzero pixel of the colour bands (0/1 or
    0/255 single-channel masks, as the labeling platform writes them; any nonzero RGB for colour
    images). An alpha band is ignored: a greyscale+alpha or RGBA picture gives the mask of its
    grey or RGB picture. ``color=(r, g, b)``: a composite mask, foreground = pixels of exactly
    that RGB colour. Unreadable input raises :class:`~polars_metrics.errors.FormatError`.

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
        handle, what = io.BytesIO(bytes(source)), f"{len(source)} bytes"
    elif isinstance(source, str | Path):
        text = str(source)
        if text.startswith("file://"):
            text = text[len("file://"):]
        handle, what = Path(text), repr(text)
    else:
        raise FormatError(f"mask_from_png reads a path, a file:// URL or PNG bytes; got "
                          f"{type(source).__name__}.")
    target = None
    if color is not None:
        try:
            target = np.asarray(color, dtype=np.int64).ravel()
        except (TypeError, ValueError, OverflowError):
            target = np.zeros(0)
        if target.size != 3 or (target < 0).any() or (target > 255).any():
            raise FormatError(f"mask_from_png: color must be (r, g, b) with values in 0..255; "
                              f"got {color!r}.")
    try:
        with Image.open(handle) as img:
            img.load()
            if target is not None:
                fg = (np.asarray(img.convert("RGB")) == target[None, None, :]).all(axis=2)
            else:
                fg = _foreground(img)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, MemoryError) as exc:
        raise FormatError(f"mask_from_png cannot read {what} as an image: "
                          f"{type(exc).__name__}: {exc}") from None
    return mask_from_array(fg)


# --- normalize and checks -------------------------------------------------------------------------
def _size_field(values: pl.Series) -> pl.Series:
    """A height or width as Int64: null where missing, not an integer, or out of Int64's range
    (the checks then name the row; nothing raises here)."""
    if values.dtype.is_float():
        values = pl.select(pl.when(values == values.floor()).then(values)).to_series()
    if not (values.dtype.is_numeric() or values.dtype == pl.Null):
        raise SchemaError(f"mask height / width has dtype {values.dtype}; expected integers.")
    return values.cast(pl.Int64, strict=False)


def _list_counts(counts: pl.Series) -> pl.Series:
    """Integer run-length lists as List(UInt32); a mask with a run < 0 or > 2**32 - 1 gets
    null counts (rejected by the checks with its row), never a cast error or a wrapped value."""
    out_of_range = ((counts.list.min() < 0) | (counts.list.max() > 0xFFFFFFFF)).fill_null(False)
    if out_of_range.any():
        counts = pl.select(pl.when(~out_of_range).then(counts)).to_series()
    return counts.cast(pl.List(pl.UInt32))


def normalize(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """Cast ``mask`` to ``MASK_DTYPE``; accept {height, width, counts} with integer list counts,
    and COCO's {size: [h, w], counts} with list or compressed-string counts.

    Values that cannot be read (a malformed compressed string, a run out of range, a size that
    is not an integer) keep their row with null counts or size: the checks report them with
    table, row, data row and id (or reject them under ``on_invalid="drop"``).

    Examples
    --------
    >>> f = pl.DataFrame({"mask": [{"size": [2, 2], "counts": "13"}, {"size": [2, 2], "counts": "1o"}]})
    >>> normalize(f, "gt")["mask"].to_list()
    [{'height': 2, 'width': 2, 'counts': [1, 3]}, {'height': 2, 'width': 2, 'counts': None}]
    """
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
    elif "size" in fields and isinstance(fields["size"], pl.List | pl.Array):
        size = st.field("size")
        if isinstance(fields["size"], pl.List):
            h, w = size.list.get(0, null_on_oob=True), size.list.get(1, null_on_oob=True)
            h = pl.select(pl.when(size.list.len() == 2).then(h)).to_series()
        else:
            h, w = size.arr.get(0, null_on_oob=True), size.arr.get(1, null_on_oob=True)
    else:
        raise SchemaError(f"{table}.{s.MASK} has fields {list(fields)}; expected height, width and "
                          "counts (or COCO's size [height, width] and counts).")
    if "counts" not in fields:
        raise SchemaError(f"{table}.{s.MASK} has no 'counts' field (the RLE run lengths).")
    counts = st.field("counts")
    if fields["counts"] == pl.String:
        c, o, bad = decode_strings(counts)
        counts = counts_list(c, o, counts.is_null().to_numpy() | bad)
    elif isinstance(fields["counts"], pl.List) and fields["counts"].inner.is_integer():
        counts = _list_counts(counts)
    elif fields["counts"] == pl.Null:
        counts = counts.cast(pl.List(pl.UInt32))
    else:
        raise SchemaError(f"{table}.{s.MASK}.counts has dtype {fields['counts']}; expected a list "
                          "of run lengths or a compressed COCO string.")
    mask = pl.DataFrame({"height": _size_field(h), "width": _size_field(w), "counts": counts}
                        ).select(pl.struct("height", "width", "counts").alias(s.MASK))[s.MASK]
    mask = pl.select(pl.when(col.is_not_null()).then(mask)).to_series().alias(s.MASK)
    return frame.with_columns(mask.cast(s.MASK_DTYPE))


def mask_problems(col: pl.Series) -> np.ndarray:
    """``rle_problems`` codes of a ``MASK_DTYPE`` column (0 for null masks: the null check's).

    >>> col = pl.Series([{"height": 2, "width": 2, "counts": [4]}, {"height": 2, "width": 2, "counts": [3]},
    ...                  {"height": 2**32, "width": 2**32, "counts": [0]}], dtype=s.MASK_DTYPE)
    >>> mask_problems(col).tolist()
    [0, 4, 2]
    """
    st = col.struct
    nan_h = st.field("height").cast(pl.Float64).fill_null(float("nan")).to_numpy()
    nan_w = st.field("width").cast(pl.Float64).fill_null(float("nan")).to_numpy()
    counts, offsets, _, _, counts_null = mask_csr(col)
    codes = rle_problems(counts, offsets, nan_h, nan_w, counts_null)
    codes[col.is_null().to_numpy()] = RLE_OK
    return codes


def checks(table: str, keys=None) -> list[Check]:
    """Null mask; then one check per :data:`RLE_REASONS` code (size missing, too large,
    counts unreadable, counts not summing to height × width).

    >>> [c.reason for c in checks("gt")][:2]
    ['mask is null', 'mask height or width is missing or negative']
    """
    cache: dict = {}

    def problems(frame):
        if cache.get("frame") is not frame:
            cache["frame"] = frame
            with serial_if_small(frame.height, small=1024):
                cache["value"] = mask_problems(frame[s.MASK])
        return cache["value"]

    fixes = {
        RLE_BAD_SIZE: "give the image height and width",
        RLE_TOO_LARGE: "check the height and width (a mask covers one image)",
        RLE_BAD_COUNTS: "give the RLE counts as run lengths in [0, 2**32) or as a compressed COCO "
                        "string (pycocotools.mask.encode writes them)",
        RLE_BAD_SUM: "encode the whole image, column-major, starting with a run of 0s",
    }
    out = [Check(s.MASK, pl.col(s.MASK).is_null(), "mask is null",
                 "give every mask its RLE (pm.mask_from_array / pm.mask_from_png build one)")]
    for code, reason in RLE_REASONS.items():
        out.append(Check(s.MASK, lambda f, code=code: problems(f) == code, reason, fixes[code]))
    return out


# --- pairs ----------------------------------------------------------------------------------------
class _Batch:
    """A side's masks as CSR arrays with their run starts, boxes and areas."""

    def __init__(self, series: pl.Series):
        self.counts, self.offsets, self.h, self.w, _ = mask_csr(series)
        n = self.offsets.shape[0] - 1
        self.starts = np.empty(self.counts.shape[0], np.int64)
        self.col0, self.col1, self.area = (np.zeros(n, np.int64) for _ in range(3))
        run_ranges(K.mask_stats, (self.counts, self.offsets, self.h, self.starts, self.col0,
                                  self.col1, self.area), self.offsets)

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
    """Every mask of a data row must have one (height, width): compared exactly, per
    dimension (no packed code that two sizes could share)."""
    n_rows = gt.off.shape[0] - 1
    if len(gt) == 0 or len(pd) == 0:
        return
    both = (np.diff(gt.off) > 0) & (np.diff(pd.off) > 0)
    differ = np.zeros(n_rows, bool)
    for dim_a, dim_b in ((a.h, b.h), (a.w, b.w)):
        lo = np.full(n_rows, np.iinfo(np.int64).max)
        hi = np.full(n_rows, np.iinfo(np.int64).min)
        for dim, row in ((dim_a, gt.row), (dim_b, pd.row)):
            np.minimum.at(lo, row, dim)
            np.maximum.at(hi, row, dim)
        differ |= lo != hi
    bad_rows = np.flatnonzero(both & differ)
    if bad_rows.size == 0:
        return
    r = int(bad_rows[0])
    gs, ps = range(gt.off[r], gt.off[r + 1]), range(pd.off[r], pd.off[r + 1])
    for g in gs:
        for p in ps:
            if a.h[g] != b.h[p] or a.w[g] != b.w[p]:
                raise _size_error(gt, pd, g, p, a, b, r)
    # sizes differ only within one side (two ground truths of different sizes)
    for side, batch, rng in ((gt, a, gs), (pd, b, ps)):
        for i in rng:
            if batch.h[i] != batch.h[rng[0]] or batch.w[i] != batch.w[rng[0]]:
                j = rng[0]
                raise InvalidAnnotationError(
                    f"mask sizes differ in one data row: ids {side.column(s.ID)[j]!r} and "
                    f"{side.column(s.ID)[i]!r} are {batch.h[j]}×{batch.w[j]} and "
                    f"{batch.h[i]}×{batch.w[i]} (height×width). Masks of one image must have its "
                    "size; re-encode them at the image size.")


def block_ious(a: _Batch, b: _Batch, gt_off: np.ndarray, pd_off: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Dense gt × pd IoU blocks per data row, gt-major: (block offsets, values). Rows run on
    threads (``_parallel.run_ranges``), split by their number of pairs."""
    sizes = offsets_from_lengths(np.diff(gt_off) * np.diff(pd_off))
    iou = np.zeros(int(sizes[-1]), np.float64)
    run_ranges(K.mask_pair_ious, (*a.arrays(), gt_off, *b.arrays()[:-1], pd_off, sizes, iou),
               sizes)
    return sizes, iou


def pairs(gt, pd, profile=None):
    """Candidate pairs with IoU > 0 per data row (see ``_kernels.rle_pairs``); masks are
    pixels: the profile (``crs``, buffer radius) is not read."""
    with serial_if_small(len(gt) + len(pd), small=256):
        a, b = _Batch(gt.column(s.MASK)), _Batch(pd.column(s.MASK))
        _check_sizes(gt, pd, a, b)
        sizes, iou = block_ious(a, b, gt.off, pd.off)
    n_g, n_p = np.diff(gt.off), np.diff(pd.off)
    rows = np.repeat(np.arange(n_g.shape[0]), n_g * n_p)
    local = np.arange(iou.shape[0], dtype=np.int64) - sizes[rows]
    width = n_p[rows]
    safe = np.maximum(width, 1)
    out_g = gt.off[rows] + local // safe
    out_p = pd.off[rows] + local % safe
    return compact(sizes, out_g, out_p, iou)


def aligned_iou(a: pl.Series, b: pl.Series) -> np.ndarray:
    """IoU of mask a[i] with b[i] for every i (no nulls; sizes must agree row by row). Masks are
    read and checked as :func:`normalize` and :func:`checks` do for ``pm.evaluate``."""
    a = normalize(pl.DataFrame({s.MASK: a}), "left")[s.MASK]
    b = normalize(pl.DataFrame({s.MASK: b}), "right")[s.MASK]
    for name, col in (("left", a), ("right", b)):
        codes = mask_problems(col)
        if codes.any():
            i = int(np.flatnonzero(codes)[0])
            raise InvalidAnnotationError(f"mask_iou: {name} mask at row {i}: "
                                         f"{RLE_REASONS[int(codes[i])]}.")
    A, B = _Batch(a), _Batch(b)
    diff = (A.h != B.h) | (A.w != B.w)
    if diff.any():
        i = int(np.flatnonzero(diff)[0])
        raise InvalidAnnotationError(f"mask_iou: row {i} compares a {A.h[i]}×{A.w[i]} mask with a "
                                     f"{B.h[i]}×{B.w[i]} mask (height×width); sizes must agree.")
    idx = np.arange(a.len(), dtype=np.int64)
    out = np.empty(a.len(), np.float64)
    run_ranges(K.mask_iou_indexed, (*A.arrays(), *B.arrays()[:-1], idx, idx, out),
               np.arange(a.len() + 1, dtype=np.int64))
    return out


KIND = Kind(NAME, GEOMETRY, normalize, checks, pairs, aligned_iou=aligned_iou)
