"""Points: ``point`` = (x, y). Two points are compared as discs of radius
``profile.buffer_radius`` (default 70):

- ``point_iou="buffer"`` (default): the 64-gon that shapely's ``Point.buffer(radius)`` makes
  (GEOS, 16 segments per quadrant), built here vertex for vertex — the same floating-point
  numbers as GEOS — and intersected exactly by convex clipping: agrees with shapely's
  ``intersection`` / ``union`` areas to 1e-12.
- ``point_iou="circle"``: exact IoU of true circles (the analytic lens area).

With ``crs="EPSG:4326"`` the points are projected to each data row's local equal-area plane
first, and the radius is in metres.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import polars as pl

from polars_metrics import _arrays
from polars_metrics import schema as s
from polars_metrics._lazy import lazy
from polars_metrics._parallel import run_ranges
from polars_metrics._threads import serial_if_small
from polars_metrics.errors import ProfileError, SchemaError
from polars_metrics.kinds import geo
from polars_metrics.kinds._base import Kind
from polars_metrics.kinds._planar import Shapes, compact
from polars_metrics.validation import Check

K = lazy("polars_metrics._kernels.disc")
KC = lazy("polars_metrics._kernels.convex_clip")  # fill_disc_pairs: same numbers, faster

NAME = "point"
GEOMETRY = (s.POINT,)
QUAD_SEGS = 16        # shapely's BaseGeometry.buffer default: 64 vertices per disc
DEFAULT_RADIUS = 70.0


@lru_cache(maxsize=64)
def _offsets_cached(radius: float) -> tuple[np.ndarray, np.ndarray]:
    # GEOS OffsetSegmentGenerator::createCircle: start at angle 0, clockwise, 4 * QUAD_SEGS
    # steps of 2 pi / (4 * QUAD_SEGS); Angle::sinCosSnap zeroes |sin|, |cos| < 5e-16.
    n = 4 * QUAD_SEGS
    inc = 2.0 * math.pi / n
    ox = np.empty(n)
    oy = np.empty(n)
    for i in range(n):
        ang = -i * inc
        sn, cs = math.sin(ang), math.cos(ang)
        sn = 0.0 if abs(sn) < 5e-16 else sn
        cs = 0.0 if abs(cs) < 5e-16 else cs
        ox[i] = radius * cs
        oy[i] = radius * sn
    return ox, oy  # shared: never written to


def disc_offsets(radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertex offsets (x, y) of the GEOS buffer of a point: ``centre + offsets`` is shapely's
    ``Point(centre).buffer(radius)`` exterior without the closing vertex, bit for bit.

    >>> ox, oy = disc_offsets(1.0)
    >>> ox.shape, ox[:2].round(4).tolist(), oy[:2].round(4).tolist()
    ((64,), [1.0, 0.9952], [0.0, -0.098])
    """
    ox, oy = _offsets_cached(float(radius))
    return ox.copy(), oy.copy()


def disc_polygons(centres: np.ndarray, radius: float):
    """The buffered discs as a :class:`~polars_metrics.kinds._planar.Shapes` batch.

    >>> sh = disc_polygons(np.array([[0.0, 0.0], [5.0, 5.0]]), 1.0)
    >>> len(sh), sh.coords.shape
    (2, (128, 2))
    """
    c = np.asarray(centres, np.float64).reshape(-1, 2)
    ox, oy = disc_offsets(radius)
    coords = np.stack([c[:, :1] + ox[None, :], c[:, 1:] + oy[None, :]], axis=2).reshape(-1, 2)
    one = np.arange(c.shape[0] + 1, dtype=np.int64)
    return Shapes(np.ascontiguousarray(coords), one * ox.shape[0], one.copy(), one.copy())


def options(profile) -> tuple[float, int]:
    """(radius, mode) from a profile (defaults when None), validated.

    Examples
    --------
    >>> options(None)[0]
    70.0
    """
    if profile is None:
        return buffer_options(DEFAULT_RADIUS, "buffer")
    return buffer_options(profile.buffer_radius, profile.point_iou)


def buffer_options(radius: float, how: str) -> tuple[float, int]:
    """(radius, kernel mode) of a buffer radius and ``how`` ("buffer" or "circle"), validated.

    >>> buffer_options(5, "circle")[0]
    5.0
    >>> buffer_options(-1, "buffer")
    Traceback (most recent call last):
    ...
    polars_metrics.errors.ProfileError: buffer_radius must be a positive number, got -1.
    """
    if not (isinstance(radius, int | float) and math.isfinite(radius) and radius > 0):
        raise ProfileError(f"buffer_radius must be a positive number, got {radius!r}.")
    if how not in ("buffer", "circle"):
        raise ProfileError(f"point_iou must be 'buffer' (shapely's 64-gon discs) or 'circle' "
                           f"(exact circles), got {how!r}.")
    return float(radius), K.POLYGON if how == "buffer" else K.CIRCLE


def normalize(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """Cast ``point`` to Array(Float64, 2); accept numeric List / Array or Struct{x, y}.

    >>> f = pl.DataFrame({"point": [{"x": 1, "y": 2}]})
    >>> normalize(f, "gt")["point"].to_list()
    [[1.0, 2.0]]
    """
    return frame.with_columns(point_column(frame, table, s.POINT))


def point_column(frame: pl.DataFrame, table: str, column: str) -> pl.Expr:
    """The expression casting ``column`` of ``frame`` to Array(Float64, 2).

    >>> f = pl.DataFrame({"p": [[3, 4]]})
    >>> f.select(point_column(f, "gt", "p")).schema["p"]
    Array(Float64, shape=(2,))
    """
    dtype = frame.schema[column]
    if dtype == s.POINT_DTYPE:
        return pl.col(column)
    if dtype == pl.Null:
        return pl.col(column).cast(s.POINT_DTYPE)
    if isinstance(dtype, pl.Struct) and {"x", "y"} <= {f.name for f in dtype.fields}:
        c = pl.col(column)
        return (pl.when(c.is_not_null())
                .then(pl.concat_arr(c.struct.field("x"), c.struct.field("y")).cast(s.POINT_DTYPE))
                .alias(column))
    inner = getattr(dtype, "inner", None)
    if isinstance(dtype, pl.List | pl.Array) and inner is not None and inner.is_numeric():
        if isinstance(dtype, pl.Array) and dtype.size != 2:
            raise SchemaError(f"{table}.{column} has {dtype.size} values per row; expected (x, y).")
        if isinstance(dtype, pl.List):
            lengths = frame[column].list.len()
            bad = lengths.is_not_null() & (lengths != 2)
            if bad.any():
                i = int(bad.arg_true()[0])
                raise SchemaError(f"{table}.{column}: row {i} has {lengths[i]} values; expected (x, y).")
        return pl.col(column).cast(s.POINT_DTYPE)
    raise SchemaError(f"{table}.{column} has dtype {dtype}; expected Array(Float64, 2) as (x, y) "
                      "or Struct{x, y}.")


def _non_finite(frame: pl.DataFrame) -> np.ndarray:
    xy = frame[s.POINT].to_numpy().reshape(-1, 2)
    return frame[s.POINT].is_not_null().to_numpy() & ~np.isfinite(xy).all(axis=1)


def _too_large(frame: pl.DataFrame) -> np.ndarray:
    xy = frame[s.POINT].to_numpy().reshape(-1, 2)
    with np.errstate(invalid="ignore"):
        big = (np.abs(xy) > _arrays.COORD_LIMIT).any(axis=1)
    return frame[s.POINT].is_not_null().to_numpy() & np.isfinite(xy).all(axis=1) & big


def checks(table: str, keys=None) -> list[Check]:
    """Null points and non-finite coordinates.

    >>> f = pl.DataFrame({"point": [[0.0, 1.0], [float("nan"), 0.0]]}, schema={"point": s.POINT_DTYPE})
    >>> [c.mask(f).tolist() for c in checks("gt")]
    [[False, False], [False, True], [False, False]]
    """
    return [
        Check(s.POINT, pl.col(s.POINT).is_null(), "point is null", "give every point (x, y)"),
        Check(s.POINT, _non_finite, "point has a NaN or infinite coordinate",
              "replace or remove non-finite coordinates"),
        Check(s.POINT, _too_large, "point has a coordinate beyond ±1e150: "
              "areas would overflow float64", "check the units; scale the coordinates down"),
    ]


def _coords(side) -> np.ndarray:
    return _arrays.f64_matrix(side.column(s.POINT), 2)


def pairs(gt, pd, profile=None):
    """Candidate pairs with IoU > 0 per data row (see ``_kernels.disc``)."""
    radius, mode = options(profile)
    a, b = _coords(gt), _coords(pd)
    if profile is not None and geo.is_geographic(profile.crs):
        a, b = geo.project_sides(a, gt.row, b, pd.row, gt.off.shape[0] - 1)
    with serial_if_small(len(gt) + len(pd)):
        return disc_pairs(a, gt.off, b, pd.off, radius, mode)


def disc_pairs(a: np.ndarray, a_off: np.ndarray, b: np.ndarray, b_off: np.ndarray,
               radius: float = DEFAULT_RADIUS, mode: int | None = None):
    """(pair_off, pair_a, pair_b, pair_iou) of point pairs with IoU > 0 inside each data row
    (``mode``: ``_kernels.disc.POLYGON``, the default, or ``CIRCLE``).

    >>> a, b = np.array([[0.0, 0.0]]), np.array([[0.0, 0.0], [500.0, 0.0]])
    >>> off, ia, ib, iou = disc_pairs(a, np.array([0, 1]), b, np.array([0, 2]), 10.0)
    >>> off.tolist(), ia.tolist(), ib.tolist(), iou.round(12).tolist()
    ([0, 1], [0], [0], [1.0])
    """
    mode = K.POLYGON if mode is None else mode
    grid = np.zeros(a_off.shape[0], np.int64)
    np.cumsum(np.diff(a_off) * np.diff(b_off), out=grid[1:])
    counts = np.zeros(a_off.shape[0] - 1, np.int64)
    run_ranges(K.count_disc_pairs, (a, a_off, b, b_off, float(radius), counts), grid)
    pair_off = np.zeros(counts.shape[0] + 1, np.int64)
    np.cumsum(counts, out=pair_off[1:])
    n = int(pair_off[-1])
    out_a = np.empty(n, np.int64)
    out_b = np.empty(n, np.int64)
    iou = np.empty(n, np.float64)
    ox, oy = _offsets_cached(radius)
    run_ranges(KC.fill_disc_pairs, (a, a_off, b, b_off, float(radius), ox, oy, int(mode), pair_off,
                                   out_a, out_b, iou), grid + pair_off)
    return compact(pair_off, out_a, out_b, iou)


def aligned_iou(a: pl.Series, b: pl.Series, *, radius: float = DEFAULT_RADIUS,
                how: str = "buffer") -> np.ndarray:
    """IoU of point a[i] with point b[i] for every i (no nulls; (x, y) Arrays, Lists or
    Struct{x, y}), as discs of ``radius`` (``how``: "buffer" 64-gons or exact "circle"s).

    Examples
    --------
    >>> a = pl.Series([[0.0, 0.0], [0.0, 0.0]])
    >>> b = pl.Series([[0.0, 0.0], [500.0, 0.0]])
    >>> aligned_iou(a, b).round(12).tolist()
    [1.0, 0.0]
    """
    xy = [_arrays.f64_matrix_np(_point_values(x).to_numpy().reshape(-1, 2)) for x in (a, b)]
    radius, mode = buffer_options(radius, how)
    ox, oy = _offsets_cached(radius)
    n = xy[0].shape[0]
    out = np.zeros(n, np.float64)
    run_ranges(K.disc_iou_aligned, (xy[0], xy[1], float(radius), ox, oy, int(mode), out),
               np.arange(n + 1, dtype=np.int64))
    return out


def _point_values(x: pl.Series) -> pl.Series:
    frame = pl.DataFrame({s.POINT: x})
    return frame.select(point_column(frame, "expression", s.POINT)).to_series()


KIND = Kind(NAME, GEOMETRY, normalize, checks, pairs, aligned_iou=aligned_iou)
