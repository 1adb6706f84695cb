"""Columns to kernel arrays: one dtype and one writeability per argument, so numba compiles a
single specialization (read-only views from polars would otherwise compile a second one)."""
from __future__ import annotations

import numpy as np
import polars as pl


def writeable(arr: np.ndarray, dtype) -> np.ndarray:
    """``arr`` as a C-contiguous, writeable array of ``dtype`` (copied only when needed).

    >>> a = np.arange(3)
    >>> a.flags.writeable = False
    >>> writeable(a, np.int64).flags.writeable
    True
    """
    arr = np.ascontiguousarray(arr, dtype=dtype)
    return arr if arr.flags.writeable else arr.copy()


def i64(values) -> np.ndarray:
    if isinstance(values, pl.Series):
        values = values.to_numpy()
    return writeable(values, np.int64)


def i32(values) -> np.ndarray:
    if isinstance(values, pl.Series):
        values = values.to_numpy()
    return writeable(values, np.int32)


def f64(values) -> np.ndarray:
    if isinstance(values, pl.Series):
        values = values.to_numpy()
    return writeable(values, np.float64)


def f64_matrix(series: pl.Series, width: int) -> np.ndarray:
    """A fixed-width Array column as a (n, width) float64 matrix (no nulls allowed here)."""
    if series.len() == 0:
        return np.empty((0, width), dtype=np.float64)
    return writeable(series.to_numpy().reshape(-1, width), np.float64)


def f64_rows(series: pl.Series, width: int) -> np.ndarray:
    """A fixed-width Array column as a C-contiguous (n, width) float64 matrix, possibly read-only.

    One chunk is viewed without a copy. Several chunks (Parquet files are read in several) are
    joined by numpy rather than by polars: polars' allocator keeps freed pages for its own
    reuse, numpy's large blocks go back to the OS when the evaluation drops them.
    """
    chunks = [c.to_numpy().reshape(-1, width) for c in series.get_chunks()]
    if not chunks:
        return np.empty((0, width), dtype=np.float64)
    arr = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
    return np.ascontiguousarray(arr, dtype=np.float64)


def count_above(hist: np.ndarray) -> np.ndarray:
    """From a histogram of a per-item count n over its last axis (bins 0..K), the number of
    items with n > k for k = 0..K-1: a cumulative sum from the top, without its first bin.
    (Threshold counts: an item passes threshold k iff k < n.)"""
    return np.cumsum(hist[..., ::-1], axis=-1)[..., ::-1][..., 1:]


def offsets(sorted_codes: np.ndarray, n_groups: int) -> np.ndarray:
    """CSR offsets (length n_groups + 1) of a sorted array of group codes 0..n_groups-1."""
    return np.searchsorted(sorted_codes, np.arange(n_groups + 1)).astype(np.int64)


def f64_matrix_np(arr: np.ndarray) -> np.ndarray:
    return writeable(arr, np.float64)


def offsets_from_lengths(lengths) -> np.ndarray:
    """CSR offsets (int64, ``len(lengths) + 1`` entries) of segments of the given lengths.

    >>> offsets_from_lengths([2, 0, 3]).tolist()
    [0, 2, 2, 5]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    out = np.zeros(lengths.size + 1, np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


# --- compact forms of what a result keeps ------------------------------------------------------

def narrowed(**arrays: np.ndarray) -> dict[str, np.ndarray]:
    """Each integer array in the narrowest dtype holding its values: uint8 or uint16 when it
    is non-negative, else int32 when its values fit (an int64 array kept by a result), else
    as it is; :func:`widened` reads it back as int32, ``astype(np.int64)`` as int64.

    >>> {k: v.dtype.name for k, v in narrowed(a=np.array([0, 255], np.int32),
    ...                                       b=np.array([256], np.int32),
    ...                                       c=np.array([70000], np.int32),
    ...                                       d=np.array([-1], np.int32),
    ...                                       e=np.array([-1, 70000]),
    ...                                       f=np.array([2**31])).items()}
    {'a': 'uint8', 'b': 'uint16', 'c': 'int32', 'd': 'int32', 'e': 'int32', 'f': 'int64'}
    """
    out = {}
    for name, a in arrays.items():
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        if lo >= 0 and hi <= 0xFFFF:
            dtype = np.uint8 if hi <= 0xFF else np.uint16
        else:
            dtype = np.int32 if -(2**31) <= lo and hi < 2**31 else a.dtype
        out[name] = a.astype(dtype, copy=False)
    return out


def widened(a: np.ndarray) -> np.ndarray:
    """A :func:`narrowed` array as int32 (no copy when it is int32 already)."""
    return a.astype(np.int32, copy=False)


def row_local(positions: np.ndarray, row_off: np.ndarray, row_start: np.ndarray) -> np.ndarray:
    """Positions grouped by row (CSR ``row_off`` over them) made relative to their row's first
    annotation ``row_start[row]``, in the narrowest dtype the widest row allows (uint8 up to
    256 annotations, uint16 up to 65,536, else int32): most rows hold few annotations, so 1 or
    2 bytes a position instead of 4. :func:`from_row_local` reads them back.

    >>> local = row_local(np.array([3, 4, 9], np.int32), np.array([0, 2, 3]), np.array([3, 9, 9]))
    >>> local.tolist(), local.dtype.name
    ([0, 1, 0], 'uint8')
    """
    width = int(np.diff(row_start).max()) if row_start.shape[0] > 1 else 0  # local < width
    dtype = np.uint8 if width <= 0x100 else np.uint16 if width <= 0x10000 else np.int32
    start = np.repeat(row_start[:-1].astype(np.int32), np.diff(row_off))
    out = np.empty(positions.shape[0], dtype)
    np.subtract(positions, start, out=out, casting="unsafe")  # in int32, stored narrowed
    return out


def from_row_local(local: np.ndarray, row_off: np.ndarray, row_start: np.ndarray) -> np.ndarray:
    """The int32 positions :func:`row_local` kept (a new array on each call).

    >>> from_row_local(np.array([0, 1, 0], np.uint8), np.array([0, 2, 3]), np.array([3, 9, 9])).tolist()
    [3, 4, 9]
    """
    out = np.repeat(row_start[:-1].astype(np.int32), np.diff(row_off))
    out += local
    return out


class Runs:
    """Ascending positions kept as their runs of consecutive values: run i is ``start[i]``,
    ``start[i] + 1``, ... (``off[i + 1] - off[i]`` values). A table already in data-row order
    except for dropped data rows gives one run per kept stretch, a few bytes per data row
    instead of 4 per annotation.

    >>> r = Runs.of(np.array([2, 3, 4, 8, 9], np.int32), min_ratio=1)
    >>> r.start.tolist(), r.off.tolist(), r.expand().tolist()
    ([2, 8], [0, 3, 5], [2, 3, 4, 8, 9])
    """

    __slots__ = ("start", "off", "dtype")

    def __init__(self, start: np.ndarray, off: np.ndarray, dtype) -> None:
        self.start, self.off, self.dtype = start, off, np.dtype(dtype)

    @classmethod
    def of(cls, positions: np.ndarray, min_ratio: int = 8) -> Runs | None:
        """The runs of ``positions`` when it ascends strictly and has at least ``min_ratio``
        values per run (else None: keep the array)."""
        if positions.size == 0:
            return None
        step = np.diff(positions)
        if step.size and int(step.min()) <= 0:
            return None
        breaks = np.flatnonzero(step != 1) + 1
        if (breaks.size + 1) * min_ratio > positions.size:
            return None
        off = np.concatenate(([0], breaks, [positions.size])).astype(np.int64)
        return cls(positions[off[:-1]].astype(np.int64), off, positions.dtype)

    def __len__(self) -> int:
        return int(self.off[-1])

    def expand(self) -> np.ndarray:
        """The positions (a new array on each call)."""
        out = np.arange(len(self), dtype=self.dtype)
        out += np.repeat((self.start - self.off[:-1]).astype(self.dtype), np.diff(self.off))
        return out


# --- ragged (CSR) inputs: checked before any kernel or GEOS call sees them -----------------------
COORD_LIMIT = 1e150
"""Largest accepted |coordinate|. Areas are products of two coordinate differences: with
|x| <= 1e150 every difference is <= 2e150 and every area, and a sum of two, stays below 1e301,
far from float64's 1.8e308 (at ~1.3e154 a square's area overflows to inf and the IoU becomes
NaN). No coordinate system in use comes near 1e150; a value that large is a unit or parsing bug."""


def check_offsets(off: np.ndarray, n_child: int, what: str) -> None:
    """Raise ValueError unless ``off`` is CSR offsets over ``n_child`` items: 1-D int, starting
    at 0, non-decreasing, ending at ``n_child``. (An internal invariant: Arrow guarantees it for
    columns; it is checked because compiled kernels index with these offsets unchecked.)

    >>> check_offsets(np.array([0, 2, 2, 5]), 5, "rings")
    >>> check_offsets(np.array([0, 3, 2]), 3, "rings")
    Traceback (most recent call last):
    ...
    ValueError: malformed rings offsets: they must start at 0, never decrease and end at 3 (the number of items); got [0 3 2]
    """
    off = np.asarray(off)
    ok = (off.ndim == 1 and off.size >= 1 and off.dtype.kind in "iu" and int(off[0]) == 0
          and int(off[-1]) == n_child and not (np.diff(off) < 0).any())
    if not ok:
        raise ValueError(f"malformed {what} offsets: they must start at 0, never decrease and end "
                         f"at {n_child} (the number of items); got {off[:10]}")


def ragged_problems(coords: np.ndarray, levels: list[np.ndarray], *, min_leaf: int = 0,
                    min_inner: int = 1, limit: float = COORD_LIMIT) -> dict[str, np.ndarray]:
    """Per top-level row of a ragged array, what makes it unusable.

    ``levels`` are CSR offsets from the rows down to the points, outermost first (e.g.
    ``[geom_off, part_off, ring_off]`` for multipolygons, ``[ring_off]`` for polylines);
    ``coords`` is (n_points, d). The offsets are checked first (:func:`check_offsets`). Returns
    boolean arrays, one entry per row:

    - ``non_finite``: a NaN or infinite coordinate;
    - ``too_large``: a finite coordinate with ``|c| > limit`` (see :data:`COORD_LIMIT`);
    - ``empty_inner``: an item of an inner level with fewer than ``min_inner`` children
      (a multipolygon part with no ring);
    - ``short_leaf``: a leaf (ring, line) with fewer than ``min_leaf`` points.

    Examples
    --------
    >>> xy = np.array([[0, 0], [1, 0], [1, 1], [0, 0], [np.nan, 1], [2, 2], [1e200, 0]], float)
    >>> geoms, parts, rings = np.array([0, 2, 3, 4]), np.array([0, 1, 1, 2, 3]), np.array([0, 3, 6, 7])
    >>> p = ragged_problems(xy, [geoms, parts, rings], min_leaf=3)
    >>> {k: v.tolist() for k, v in p.items()}
    {'non_finite': [False, True, False], 'too_large': [False, False, True], 'empty_inner': [True, False, False], 'short_leaf': [False, False, True]}
    """
    coords = np.asarray(coords, np.float64)
    sizes = [np.asarray(lv).size - 1 for lv in levels] + [coords.shape[0]]
    for k, lv in enumerate(levels):
        check_offsets(lv, sizes[k + 1], f"level-{k}")
    # the row of every item of every level but the points, from the top down
    owner = [np.arange(sizes[0], dtype=np.int64)]
    for lv in levels[:-1]:
        owner.append(np.repeat(owner[-1], np.diff(lv)))
    n = sizes[0]
    out = {name: np.zeros(n, bool) for name in ("non_finite", "too_large", "empty_inner", "short_leaf")}
    # fast path: one pass over all coordinates (the max of |c| is NaN when any c is NaN); the
    # points' rows are worked out only when some point is bad
    if coords.size and not np.abs(coords).max() <= limit:
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(coords).all(axis=1)
            big = finite & (np.abs(coords) > limit).any(axis=1)
        point_owner = np.repeat(owner[-1], np.diff(levels[-1])) if levels else owner[0]
        out["non_finite"][point_owner[~finite]] = True
        out["too_large"][point_owner[big]] = True
    for k in range(1, len(levels) - 1):  # items of inner levels: not rows, not leaves
        small = np.diff(levels[k]) < min_inner
        out["empty_inner"][owner[k][small]] = True
    if levels:  # leaves: the items whose children are points
        short = np.diff(levels[-1]) < min_leaf
        out["short_leaf"][owner[len(levels) - 1][short]] = True
    return out
