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
