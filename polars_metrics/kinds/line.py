"""Polylines: ``line`` = list of (x, y), 2 or more points. Two lines are compared as their
buffers of radius ``profile.buffer_radius`` (default 70): the polygons shapely's
``LineString.buffer(radius)`` makes (round caps and joins, 16 segments per quadrant), built in
one vectorized shapely call per table, then polygon IoU (convex buffers — single segments —
in numba, the rest by shapely). With ``crs="EPSG:4326"`` the vertices are projected to each
data row's local equal-area plane first and the radius is in metres.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics._arrays import offsets_from_lengths, ragged_problems
from polars_metrics._threads import serial_if_small
from polars_metrics.errors import InvalidAnnotationError, SchemaError
from polars_metrics.kinds import _planar as P
from polars_metrics.kinds import geo
from polars_metrics.kinds._base import Kind
from polars_metrics.kinds.point import DEFAULT_RADIUS, buffer_options, options
from polars_metrics.validation import Check

NAME = "line"
GEOMETRY = (s.LINE,)
MIN_SEGMENT = 0.01   # segment length / radius from which the kernel makes a segment's buffer
MAX_EXTENT = 1e7     # |coordinate| / radius up to which it does


def normalize(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """Cast ``line`` to List(Array(Float64, 2)); accept points as numeric lists or arrays.

    >>> normalize(pl.DataFrame({"line": [[[0, 0], [1, 2]]]}), "gt").schema["line"] == s.LINE_DTYPE
    True
    """
    dtype = frame.schema[s.LINE]
    if dtype == s.LINE_DTYPE:
        return frame
    if dtype == pl.Null:
        return frame.with_columns(pl.col(s.LINE).cast(s.LINE_DTYPE))
    inner = getattr(dtype, "inner", None)
    leaf = getattr(inner, "inner", None)
    if isinstance(dtype, pl.List) and isinstance(inner, pl.List | pl.Array) and leaf is not None \
            and leaf.is_numeric():
        try:
            return frame.with_columns(pl.col(s.LINE).cast(s.LINE_DTYPE))
        except Exception as exc:
            raise SchemaError(f"{table}.{s.LINE}: cannot read {dtype} as {s.LINE_DTYPE}: every "
                              f"point must be exactly (x, y). ({exc})") from None
    raise SchemaError(f"{table}.{s.LINE} has dtype {dtype}; expected {s.LINE_DTYPE} "
                      "(the polyline's (x, y) points in order).")


def _problems(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(non-finite coordinate, |coordinate| > 1e150, fewer than 2 points) per row."""
    return _series_problems(frame[s.LINE])


def _series_problems(col: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    coords, off = P.lines_from_series(col)
    raw = ragged_problems(coords, [off], min_leaf=2)
    present = col.is_not_null().to_numpy()
    return raw["non_finite"], raw["too_large"] & ~raw["non_finite"], raw["short_leaf"] & present


def checks(table: str, keys=None) -> list[Check]:
    """Null lines, non-finite coordinates, lines of fewer than 2 points.

    >>> f = normalize(pl.DataFrame({"line": [[[0, 0], [1, 2]], [[0, 0]]]}), "gt")
    >>> [c.mask(f).tolist() for c in checks("gt")]
    [[False, False], [False, False], [False, False], [False, True]]
    """
    cache: dict = {}

    def problems(frame):
        if cache.get("frame") is not frame:
            cache["frame"] = frame
            cache["value"] = _problems(frame)
        return cache["value"]

    return [
        Check(s.LINE, pl.col(s.LINE).is_null(), "line is null", "give every line its points"),
        Check(s.LINE, lambda f: problems(f)[0], "line has a NaN or infinite coordinate",
              "replace or remove non-finite coordinates"),
        Check(s.LINE, lambda f: problems(f)[1], "line has a coordinate beyond ±1e150: "
              "areas would overflow float64", "check the units; scale the coordinates down"),
        Check(s.LINE, lambda f: problems(f)[2], "line has fewer than 2 points",
              "a polyline needs at least 2 points (use kind 'point' for one)"),
    ]


def pairs(gt, pd, profile=None):
    """Candidate pairs with IoU > 0 per data row between the buffered lines."""
    radius, _ = options(profile)
    ca, oa = P.lines_from_series(gt.column(s.LINE))
    cb, ob = P.lines_from_series(pd.column(s.LINE))
    if profile is not None and geo.is_geographic(profile.crs):
        ra = np.repeat(gt.row, np.diff(oa))
        rb = np.repeat(pd.row, np.diff(ob))
        ca, cb = geo.project_sides(ca, ra, cb, rb, gt.off.shape[0] - 1)
    with serial_if_small(len(gt) + len(pd)):
        if segment_kernel_lines(ca, oa, radius).size == oa.shape[0] - 1 and \
                segment_kernel_lines(cb, ob, radius).size == ob.shape[0] - 1:
            # single segments only: buffered and paired per data row, no buffer kept
            out = P.T.segment_pairs(ca, oa, gt.off, cb, ob, pd.off, radius)
            if out is not None:
                return out
        return P.row_pairs(buffer_lines(ca, oa, radius), gt.off, buffer_lines(cb, ob, radius),
                           pd.off)


def segment_kernel_lines(coords: np.ndarray, off: np.ndarray, radius: float) -> np.ndarray:
    """Indices of the lines whose buffer ``_kernels.line_buffer`` makes (the same points as
    GEOS): two distinct points at least ``MIN_SEGMENT * radius`` apart, coordinates within
    ``MAX_EXTENT * radius`` of the origin — where tests/test_geom_fast_paths.py checks the
    kernel against shapely bit for bit. GEOS buffers the others (its noding can move a vertex
    of a buffer whose sides are much shorter than its radius).

    >>> c = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 0.0], [0.1, 0.0]])
    >>> segment_kernel_lines(c, np.array([0, 2, 4]), 70.0).tolist()
    [0]
    """
    n = off.shape[0] - 1
    if off[-1] - off[0] == 2 * n and coords.shape[0] == 2 * n and (np.diff(off) == 2).all():
        two = np.arange(n, dtype=np.int64)  # every line one segment: strided views, no gather
        p0 = coords[0::2]
        p1 = coords[1::2]
    else:
        two = np.flatnonzero(np.diff(off) == 2)
        p0 = coords[off[two]]
        p1 = coords[off[two] + 1]
    d = p1 - p0
    length = np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])
    extent = np.maximum(np.abs(p0).max(axis=1), np.abs(p1).max(axis=1))
    ok = (length >= MIN_SEGMENT * radius) & (extent <= MAX_EXTENT * radius)
    return two[ok]


def buffer_lines(coords: np.ndarray, off: np.ndarray, radius: float) -> P.Shapes:
    """The buffers of the lines (``coords``, CSR ``off``) as shapely's
    ``LineString.buffer(radius)`` makes them: single segments by the kernel (identical points,
    see :func:`segment_kernel_lines`), the other lines by shapely.

    >>> c = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 0.0], [5.0, 5.0], [10.0, 0.0]])
    >>> sh = buffer_lines(c, np.array([0, 2, 5]), 7.0)
    >>> len(sh), sh.geoms is None
    (2, True)
    """
    n = off.shape[0] - 1
    fast = segment_kernel_lines(coords, off, radius) if n else np.zeros(0, np.int64)
    if fast.size == 0:
        return P.buffered_lines(coords, off, radius)
    pts, ring_off = P.T.segment_buffers(coords, off, fast, radius)
    one = np.arange(fast.size + 1, dtype=np.int64)
    kernel = P.Shapes(pts, ring_off, one, one.copy())
    if fast.size == n:
        return kernel
    rest = np.setdiff1d(np.arange(n, dtype=np.int64), fast, assume_unique=True)
    lens = np.diff(off)[rest]
    sub = P.buffered_lines(coords[P.ranges(off[rest], lens)], offsets_from_lengths(lens), radius)
    return P.in_order([kernel, sub], [fast, rest], n)


def aligned_iou(a: pl.Series, b: pl.Series, *, radius: float = DEFAULT_RADIUS) -> np.ndarray:
    """IoU of the buffered line a[i] with b[i] for every i (no nulls).

    Examples
    --------
    >>> a = pl.Series([[[0.0, 0.0], [100.0, 0.0]]])
    >>> aligned_iou(a, a, radius=5.0).tolist()
    [1.0]
    """
    radius, _ = buffer_options(radius, "buffer")
    a = a.cast(s.LINE_DTYPE)
    b = b.cast(s.LINE_DTYPE)
    for name, col in (("left", a), ("right", b)):
        for bad, what in zip(_series_problems(col), ("a NaN or infinite coordinate",
                             "a coordinate beyond ±1e150", "fewer than 2 points"),
                             strict=True):
            if bad.any():
                raise InvalidAnnotationError(f"line_iou: {name} line at row "
                                             f"{int(np.flatnonzero(bad)[0])} has {what}.")
    sa = buffer_lines(*P.lines_from_series(a), radius)
    sb = buffer_lines(*P.lines_from_series(b), radius)
    idx = np.arange(a.len(), dtype=np.int64)
    return P.pair_iou(sa, sb, idx, idx)


KIND = Kind(NAME, GEOMETRY, normalize, checks, pairs, aligned_iou=aligned_iou)
