"""The one home of COCO run-length encoding (RLE) above the kernels.

A ``mask`` value is ``{height, width, counts}``: column-major run lengths starting with a run
of 0s (uncompressed COCO RLE). A batch of masks is handled as CSR arrays: ``counts`` (uint32,
all masks back to back), ``offsets`` (int64, ``n + 1``), ``heights`` / ``widths`` (int64).
This module converts between those arrays, dense arrays, ``mask`` columns and COCO's
compressed strings; the pixel work is done by ``polars_metrics._kernels.rle``.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics._arrays import offsets_from_lengths, writeable
from polars_metrics._lazy import lazy
from polars_metrics._parallel import run_ranges

pa = lazy("pyarrow")
R = lazy("polars_metrics._kernels.rle")

FIRST_CHAR, LAST_CHAR = 48, 111  # COCO's compressed alphabet: ASCII '0'..'o'


# --- one mask <-> dense ---------------------------------------------------------------------------
def runs_from_dense(dense: np.ndarray) -> np.ndarray:
    """Column-major runs (uint32) of a 2-D boolean array, starting with a run of 0s.

    Examples
    --------
    >>> import numpy as np
    >>> runs_from_dense(np.array([[0, 1], [1, 1]], bool)).tolist()
    [1, 3]
    >>> runs_from_dense(np.ones((1, 2), bool)).tolist()
    [0, 2]
    """
    flat = np.asarray(dense, bool).ravel(order="F")
    if flat.size == 0:
        return np.zeros(1, np.uint32)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate([[0], change, [flat.size]]))
    if flat[0]:
        runs = np.concatenate([[0], runs])
    return runs.astype(np.uint32)


def dense_from_runs(height: int, width: int, counts) -> np.ndarray:
    """The dense boolean (height, width) array of one mask's runs.

    Examples
    --------
    >>> dense_from_runs(2, 2, [1, 3]).astype(int).tolist()
    [[0, 1], [1, 1]]
    """
    counts = np.asarray(counts, np.int64)
    flat = np.repeat(np.arange(counts.size) % 2 == 1, counts)
    if flat.size != height * width:
        raise ValueError(f"RLE counts sum to {flat.size}, expected height × width = {height * width}.")
    return flat.reshape((height, width), order="F")


# --- validity ------------------------------------------------------------------------------------
MAX_MASK_SIDE = 2**31 - 1  # height and width each (pycocotools stores them as 32-bit)
MAX_MASK_PIXELS = 2**40  # height × width: a 1,048,576² image; larger is never a real mask
RLE_OK, RLE_BAD_SIZE, RLE_TOO_LARGE, RLE_BAD_COUNTS, RLE_BAD_SUM = range(5)
RLE_REASONS = {
    RLE_BAD_SIZE: "mask height or width is missing or negative",
    RLE_TOO_LARGE: f"mask is larger than {MAX_MASK_SIDE:,} pixels a side or {MAX_MASK_PIXELS:,} "
                   "pixels in all",
    RLE_BAD_COUNTS: "mask counts are missing, negative, above 2**32 - 1, or not a valid "
                    "compressed COCO RLE string",
    RLE_BAD_SUM: "mask RLE counts do not sum to height × width",
}


def rle_problems(counts: np.ndarray, offsets: np.ndarray, heights, widths, counts_null) -> np.ndarray:
    """One code per mask (``RLE_*``; 0 = valid), every comparison exact and overflow-free:
    sizes are bounded before ``height * width`` is formed, and run sums saturate.

    ``heights`` / ``widths`` may hold NaN or negative values for missing sizes (float64 or
    int64 arrays); ``counts_null`` marks masks whose counts are missing or failed to decode.

    Examples
    --------
    >>> c = np.array([0, 4, 0, 1], np.uint32)
    >>> rle_problems(c, np.array([0, 2, 3, 4, 4]), np.array([2, 2**32, -1, 0]),
    ...              np.array([2, 2**32, 1, 0]), np.array([False, False, False, True])).tolist()
    [0, 2, 1, 3]
    """
    h = np.asarray(heights, np.float64)
    w = np.asarray(widths, np.float64)
    out = np.zeros(h.shape[0], np.int8)
    bad_size = ~(np.isfinite(h) & np.isfinite(w) & (h >= 0) & (w >= 0))
    too_large = ~bad_size & ((h > MAX_MASK_SIDE) | (w > MAX_MASK_SIDE) | (h * w > MAX_MASK_PIXELS))
    sized = ~bad_size & ~too_large
    hh = np.where(sized, h, 0).astype(np.int64)
    ww = np.where(sized, w, 0).astype(np.int64)
    total = R.rle_total(writeable(counts, np.uint32), writeable(offsets, np.int64))
    counts_null = np.asarray(counts_null, bool)
    out[sized & ~counts_null & (total != hh * ww)] = RLE_BAD_SUM
    out[sized & counts_null] = RLE_BAD_COUNTS
    out[too_large] = RLE_TOO_LARGE
    out[bad_size] = RLE_BAD_SIZE
    return out


# --- mask column <-> CSR arrays ------------------------------------------------------------------
def mask_csr(series: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A ``mask`` Struct column as CSR arrays ``(counts, offsets, heights, widths, is_null)``.

    The arrays are writeable and of one dtype each, so every numba kernel compiles once.

    Examples
    --------
    >>> import polars as pl
    >>> from polars_metrics import schema as s
    >>> col = pl.Series([{"height": 2, "width": 2, "counts": [1, 3]}, None], dtype=s.MASK_DTYPE)
    >>> [a.tolist() for a in mask_csr(col)]
    [[1, 3], [0, 2, 2], [2, 0], [2, 0], [False, True]]
    """
    n = series.len()
    if n == 0:
        z = np.zeros(0, np.int64)
        return np.zeros(0, np.uint32), np.zeros(1, np.int64), z, z.copy(), np.zeros(0, bool)
    st = series.struct
    counts_s = st.field("counts")
    null = (series.is_null() | counts_s.is_null()).to_numpy()
    h = st.field("height").fill_null(0).cast(pl.Int64).to_numpy()
    w = st.field("width").fill_null(0).cast(pl.Int64).to_numpy()
    arr = counts_s.cast(pl.List(pl.UInt32)).rechunk().to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    lengths = arr.value_lengths().fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    values = np.asarray(arr.flatten().to_numpy(zero_copy_only=False), dtype=np.uint32)
    offsets = offsets_from_lengths(lengths)
    return writeable(values, np.uint32), offsets, writeable(h, np.int64), writeable(w, np.int64), null


def counts_list(counts: np.ndarray, offsets: np.ndarray, null: np.ndarray | None = None) -> pl.Series:
    """CSR counts as a ``List(UInt32)`` column (null where ``null``), built zero-copy in Arrow."""
    mask = pa.array(null) if null is not None and null.any() else None
    arr = pa.LargeListArray.from_arrays(pa.array(offsets, type=pa.int64()),
                                        pa.array(counts, type=pa.uint32()), mask=mask)
    return pl.Series("counts", pl.from_arrow(arr)).cast(pl.List(pl.UInt32))


def mask_series(counts: np.ndarray, offsets: np.ndarray, heights: np.ndarray, widths: np.ndarray,
                null: np.ndarray | None = None, name: str = s.MASK) -> pl.Series:
    """CSR arrays as a ``mask`` column (``MASK_DTYPE``; null where ``null``).

    Examples
    --------
    >>> import numpy as np
    >>> m = mask_series(np.array([1, 3, 4], np.uint32), np.array([0, 2, 3]), np.array([2, 2]),
    ...                 np.array([2, 2]), np.array([False, True]))
    >>> m.to_list()
    [{'height': 2, 'width': 2, 'counts': [1, 3]}, None]
    """
    n = offsets.size - 1
    null = np.zeros(n, bool) if null is None else np.asarray(null, bool)
    mask = pa.array(null) if null.any() else None
    lst = pa.LargeListArray.from_arrays(pa.array(offsets, type=pa.int64()),
                                        pa.array(counts, type=pa.uint32()), mask=mask)
    st = pa.StructArray.from_arrays(
        [pa.array(heights, type=pa.int64()), pa.array(widths, type=pa.int64()), lst],
        names=["height", "width", "counts"], mask=mask)
    return pl.Series(name, pl.from_arrow(st)).cast(s.MASK_DTYPE)


def mask_series_from_values(values: list[dict | None], name: str = s.MASK) -> pl.Series:
    """A ``mask`` column from ``{height, width, counts}`` dicts (counts as arrays or lists)."""
    n = len(values)
    null = np.fromiter((m is None for m in values), bool, n)
    h = np.fromiter((0 if m is None else m["height"] for m in values), np.int64, n)
    w = np.fromiter((0 if m is None else m["width"] for m in values), np.int64, n)
    lens = np.fromiter((0 if m is None else len(m["counts"]) for m in values), np.int64, n)
    parts = [np.asarray(m["counts"], np.uint32) for m in values if m is not None]
    counts = np.concatenate(parts) if parts else np.zeros(0, np.uint32)
    return mask_series(counts, offsets_from_lengths(lens), h, w, null, name)


# --- compressed COCO strings -----------------------------------------------------------------------
def _strings_csr(strings) -> tuple[np.ndarray, np.ndarray]:
    """Bytes of all strings (an Arrow string array) back to back and their offsets (nulls empty)."""
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    arr = strings.cast(pa.large_binary())
    n = len(arr)
    bufs = arr.buffers()
    offs = np.frombuffer(bufs[1], dtype=np.int64, count=arr.offset + n + 1)[arr.offset:]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    data = data[offs[0]:offs[-1]]
    ptr = (offs - offs[0]).astype(np.int64)
    if arr.null_count:
        nullm = arr.is_null().to_numpy(zero_copy_only=False)
        lens = np.diff(ptr)
        keep = np.repeat(~nullm, lens)
        lens[nullm] = 0
        data = data[keep]
        ptr = offsets_from_lengths(lens)
    return np.ascontiguousarray(data), ptr


def decode_strings(strings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode compressed COCO RLE strings (``rleFrString``) to CSR ``(counts, offsets, bad)``.

    ``strings`` is a polars String/Binary Series, an Arrow string array or a list of str;
    nulls decode to empty masks. ``bad`` marks malformed strings — a character outside COCO's
    alphabet (``'0'..'o'``), a string ending inside a run, a run of more than 7 characters, a
    decoded count below 0 or above 2**32 - 1 — whose counts are meaningless; the caller
    decides whether that raises or rejects the row.

    Examples
    --------
    >>> counts, offsets, bad = decode_strings(["13", "0:"])
    >>> counts.tolist(), offsets.tolist(), bad.tolist()
    ([1, 3, 0, 10], [0, 2, 4], [False, False])
    >>> decode_strings(["1o", "0o"])[2].tolist()  # ends inside a run
    [True, True]
    """
    if isinstance(strings, pl.Series):
        strings = strings.cast(pl.String).to_arrow()
    elif isinstance(strings, list):
        strings = pa.array(strings, type=pa.large_string())
    buf, ptr = _strings_csr(strings)
    counts, offsets, bad = R.rle_decode_strings(buf, ptr, run=run_ranges)
    bad_char = (buf < FIRST_CHAR) | (buf > LAST_CHAR)
    if bad_char.any():
        bad[np.searchsorted(ptr, np.flatnonzero(bad_char), side="right") - 1] = True
    return counts, offsets, bad


def encode_strings(counts: np.ndarray, offsets: np.ndarray) -> pl.Series:
    """Encode CSR counts as compressed COCO RLE strings (``rleToString``), a String column.

    Examples
    --------
    >>> import numpy as np
    >>> encode_strings(np.array([1, 3, 0, 10], np.uint32), np.array([0, 2, 4])).to_list()
    ['13', '0:']
    """
    buf, ptr = R.rle_encode_strings(counts, offsets, run=run_ranges)
    arr = pa.LargeStringArray.from_buffers(len(ptr) - 1, pa.py_buffer(ptr.astype(np.int64)),
                                           pa.py_buffer(buf))
    return pl.Series("counts", pl.from_arrow(arr), dtype=pl.String)
