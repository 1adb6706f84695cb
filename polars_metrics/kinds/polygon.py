"""Polygons: ``polygon`` holds rings of (x, y) — the shell first, then holes — or, for
multipolygons, a list of such polygons (see ``schema.POLYGON_DTYPE`` / ``MULTIPOLYGON_DTYPE``).

- A ring may repeat its first vertex at the end or not; both read the same.
- Invalid geometry (self-intersections, holes outside the shell, ...) is repaired once at load
  with shapely's ``make_valid``, keeping only the polygonal parts, and reported: a
  :class:`~polars_metrics.errors.PolarsMetricsWarning` with the count, and the rows in the
  frame returned by :func:`repair`. A polygon that collapses (zero area) becomes empty.
- An empty polygon (no ring) has zero area: IoU 0 with everything, like a zero-area box.
- Checks (SPEC §7): null polygon, NaN / infinite coordinates, |coordinate| > 1e150 (areas
  would overflow), a multipolygon part with no ring, a ring with fewer than 3 distinct points,
  a bounding-box area below 1e-290 (areas underflow), an invalid geometry with more than 200
  edge crossings (make_valid's time grows much faster than that: too complex to repair).
- Boxes pair with polygons as their rectangles: when a data row's tables mix the two kinds,
  :func:`pairs` receives both and reads box rows from ``bbox``.
- ``crs="EPSG:4326"``: coordinates are (lon, lat) and are projected per data row to a local
  equal-area plane (see ``kinds.geo``) before any area is computed.
"""
from __future__ import annotations

import sys
import warnings

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics._lazy import lazy
from polars_metrics._threads import serial_if_small
from polars_metrics.errors import InvalidAnnotationError, PolarsMetricsWarning, SchemaError
from polars_metrics.kinds import _planar as P
from polars_metrics.kinds import _planar_threads as T
from polars_metrics.kinds import box, geo
from polars_metrics.kinds._base import Kind
from polars_metrics.validation import POS, Check

pa = lazy("pyarrow")
shapely = lazy("shapely")

NAME = "polygon"
GEOMETRY = (s.POLYGON,)

VALID_RING_LIMIT = 256  # rings up to this size are checked for simplicity in numba, larger by GEOS

REPAIRS_SCHEMA = {
    s.TABLE: pl.String, s.ROW: pl.Int64, s.ID: pl.String, s.REASON: pl.String,
    "parts": pl.Int64, s.AREA: pl.Float64,
}


# --- dtypes -------------------------------------------------------------------------------------
def _leaf(dtype):
    while isinstance(dtype, pl.List):
        dtype = dtype.inner
    return dtype


def canonical_dtype(dtype, table: str, column: str = s.POLYGON):
    """The canonical dtype for an accepted polygon column dtype (raise SchemaError otherwise).

    >>> canonical_dtype(pl.List(pl.List(pl.List(pl.Int64))), "gt") == s.POLYGON_DTYPE
    True
    """
    if dtype == pl.Null:
        return s.POLYGON_DTYPE
    depth = P.list_depth(dtype)
    leaf = _leaf(dtype)
    if isinstance(leaf, pl.Array) and leaf.size == 2 and leaf.inner.is_numeric():
        levels = depth
    elif leaf.is_numeric() and depth >= 3:
        levels = depth - 1  # points given as 2-element lists
    else:
        levels = -1
    if levels == 2:
        return s.POLYGON_DTYPE
    if levels == 3:
        return s.MULTIPOLYGON_DTYPE
    raise SchemaError(
        f"{table}.{column} has dtype {dtype}; expected rings of (x, y) points, "
        f"{s.POLYGON_DTYPE} (shell first, then holes), or a list of such polygons, "
        f"{s.MULTIPOLYGON_DTYPE}, for multipolygons."
    )


def normalize(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """Cast ``polygon`` to its canonical dtype (points as 2-element lists or arrays).

    Examples
    --------
    >>> f = pl.DataFrame({"polygon": [[[[0, 0], [1, 0], [1, 1]]]]})
    >>> normalize(f, "ground_truth").schema["polygon"] == s.POLYGON_DTYPE
    True
    """
    dtype = frame.schema[s.POLYGON]
    target = canonical_dtype(dtype, table)
    if dtype == target:
        return frame
    try:
        return frame.with_columns(pl.col(s.POLYGON).cast(target))
    except Exception as exc:  # polars raises when a point does not have exactly 2 values
        raise SchemaError(
            f"{table}.{s.POLYGON}: cannot read {dtype} as {target}: every point must be "
            f"exactly (x, y). ({exc})"
        ) from None


def repair_and_warn(frame: pl.DataFrame, table: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`repair`, and a warning that counts the repairs by reason.

    Returns the frame and the repairs, which the result reports as ``ev.repairs``.

    Examples
    --------
    >>> bowtie = [[[0.0, 0.0], [2.0, 2.0], [2.0, 0.0], [0.0, 2.0]]]
    >>> f = normalize(pl.DataFrame({"polygon": [bowtie]}), "gt")
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     fixed, repairs = repair_and_warn(f, "gt")
    >>> repairs.select("row", "reason", "parts", "area").rows()
    [(0, 'Self-intersection[1 1]', 2, 2.0)]
    >>> str(caught[0].message).split(":")[0]
    'gt.polygon'
    """
    frame, repairs = repair(frame, table)
    if repairs.height:
        reasons = repairs[s.REASON].str.replace(r"\[.*", "").value_counts(sort=True)
        summary = ", ".join(f"{r} ({n})" for r, n in reasons.iter_rows())
        warnings.warn(
            f"{table}.{s.POLYGON}: {repairs.height} invalid polygon(s) repaired with make_valid "
            f"({summary}); input rows {repairs[s.ROW].head(5).to_list()}"
            f"{' ...' if repairs.height > 5 else ''}. Polygon IoU uses the repaired geometry.",
            PolarsMetricsWarning, stacklevel=_caller_level())
    return frame, repairs


def _caller_level() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside polars_metrics."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("polars_metrics"):
        frame, level = frame.f_back, level + 1
    return level


# --- structure and checks -------------------------------------------------------------------------
def structure_problems(sh: P.Shapes) -> dict[str, np.ndarray]:
    """Per geometry, the problems of :data:`~polars_metrics.kinds._planar.PROBLEMS` (non-finite
    or too large coordinates, a part with no ring, a ring of < 3 distinct points, an area that
    underflows, too complex to repair).

    >>> col = pl.Series([[[[0, 0], [1, 0], [1, 1]]], [[[0, 0], [1, 1]]]], dtype=s.POLYGON_DTYPE)
    >>> structure_problems(P.from_series(col))["short"].tolist()
    [False, True]
    """
    return P.shape_problems(sh)


def checks(table: str, keys=None) -> list[Check]:
    """A null polygon, then one check per structural problem (see :func:`structure_problems`).

    >>> f = pl.DataFrame({"polygon": [[[[0, 0], [1, 0], [1, 1]]], None]}, schema={"polygon": s.POLYGON_DTYPE})
    >>> [c.mask(f).tolist() for c in checks("gt")][:3]
    [[False, True], [False, False], [False, False]]
    """
    cache: dict = {}

    def problems(frame: pl.DataFrame) -> dict[str, np.ndarray]:
        if cache.get("frame") is not frame:
            cache["frame"] = frame
            with serial_if_small(frame.height):
                cache["value"] = structure_problems(P.from_series(frame[s.POLYGON]))
        return cache["value"]

    out = [Check(s.POLYGON, pl.col(s.POLYGON).is_null(), "polygon is null",
                 "give every polygon its rings (shell first, then holes)")]
    for key, (reason, fix) in P.PROBLEMS.items():
        out.append(Check(s.POLYGON, lambda f, key=key: problems(f)[key], f"polygon {reason}", fix))
    return out


# --- repair ---------------------------------------------------------------------------------------
def repair(frame: pl.DataFrame, table: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Repair invalid polygons with ``shapely.make_valid`` (keeping polygonal parts only).

    Returns the frame with repaired ``polygon`` values and one row per repair: (table, row —
    the input position when the frame carries ``_pos``, id, reason — GEOS's
    ``is_valid_reason``, parts and area after the repair). Rows that fail the structural checks
    (see :func:`structure_problems`: null, non-finite or huge coordinates, empty parts, short
    rings, underflowing areas, too many crossings to repair) are left for the checks to report:
    nothing malformed reaches a kernel or GEOS, and make_valid's time is bounded.

    >>> bowtie = [[[0.0, 0.0], [2.0, 2.0], [2.0, 0.0], [0.0, 2.0]]]
    >>> fixed, repairs = repair(pl.DataFrame({"polygon": [bowtie]}, schema={"polygon": s.POLYGON_DTYPE}), "gt")
    >>> fixed.schema["polygon"] == s.MULTIPOLYGON_DTYPE, repairs["parts"].to_list()
    (True, [2])
    """
    col = frame[s.POLYGON]
    scope = col.is_not_null()
    if s.KIND in frame.columns:
        scope = scope & (frame[s.KIND].cast(pl.String) == NAME).fill_null(False)
    rows = np.flatnonzero(scope.to_numpy())
    if rows.size == 0:
        return frame, pl.DataFrame(schema=REPAIRS_SCHEMA)
    sh = P.from_series(col.gather(rows))
    with serial_if_small(rows.size):
        ok = P.usable(structure_problems(sh))
        good = sh if ok.all() else P.take(sh, np.flatnonzero(ok))  # nothing flagged reaches a kernel
        sure = np.zeros(len(sh), bool)
        sure[ok] = T.certainly_valid(good.coords, good.ring_off, good.part_off, good.geom_off,
                                     VALID_RING_LIMIT)
    ask = np.flatnonzero(ok & ~sure)
    if ask.size == 0:
        return frame, pl.DataFrame(schema=REPAIRS_SCHEMA)
    geoms = P.to_shapely(P.take(sh, ask))
    valid = shapely.is_valid(geoms)
    if valid.all():
        return frame, pl.DataFrame(schema=REPAIRS_SCHEMA)
    bad = ask[~valid]
    reasons = shapely.is_valid_reason(geoms[~valid])
    fixed = P.from_shapely(shapely.make_valid(geoms[~valid]), keep=False)
    n_parts = np.diff(fixed.geom_off)
    positions = rows[bad]
    new = _replace_rows(col, positions, fixed, multi=bool((n_parts > 1).any()))
    frame = frame.with_columns(new.alias(s.POLYGON))
    ids = frame[s.ID].gather(positions).cast(pl.String) if s.ID in frame.columns else None
    where = frame[POS].gather(positions).cast(pl.Int64) if POS in frame.columns else pl.Series(positions)
    repairs = pl.DataFrame({
        s.TABLE: [table] * positions.size,
        s.ROW: where.cast(pl.Int64),
        s.ID: ids if ids is not None else pl.Series([None] * positions.size, dtype=pl.String),
        s.REASON: list(reasons),
        "parts": n_parts.astype(np.int64),
        s.AREA: fixed.measures.area,
    }, schema=REPAIRS_SCHEMA)
    return frame, repairs


def to_series(sh: P.Shapes, multi: bool, name: str = s.POLYGON) -> pl.Series:
    """Shapes back to a ``polygon`` column (open rings); ``multi`` gives the multipolygon dtype,
    else every geometry must have at most one part (none = empty polygon).

    >>> to_series(P.from_boxes(np.array([[0.0, 0.0, 1.0, 2.0]])), multi=False).to_list()
    [[[[0.0, 0.0], [1.0, 0.0], [1.0, 2.0], [0.0, 2.0]]]]
    """
    pts = pa.FixedSizeListArray.from_arrays(pa.array(sh.coords.ravel(), pa.float64()), 2)
    rings = pa.LargeListArray.from_arrays(pa.array(sh.ring_off, pa.int64()), pts)
    if multi:
        parts = pa.LargeListArray.from_arrays(pa.array(sh.part_off, pa.int64()), rings)
        arr = pa.LargeListArray.from_arrays(pa.array(sh.geom_off, pa.int64()), parts)
        dtype = s.MULTIPOLYGON_DTYPE
    else:
        if (np.diff(sh.geom_off) > 1).any():
            raise ValueError("a geometry has several parts; use multi=True")
        arr = pa.LargeListArray.from_arrays(pa.array(sh.part_off[sh.geom_off], pa.int64()), rings)
        dtype = s.POLYGON_DTYPE
    return pl.Series(name, pl.from_arrow(arr)).cast(dtype)


def _promote(col: pl.Series) -> pl.Series:
    """Polygons (rings) → one-part multipolygons, nulls kept."""
    arr = P._arrow(col)
    n = len(arr)
    mask = pa.array(col.is_null().to_numpy()) if col.null_count() else None
    wrapped = pa.LargeListArray.from_arrays(pa.array(np.arange(n + 1), pa.int64()), arr, mask=mask)
    return pl.Series(col.name, pl.from_arrow(wrapped)).cast(s.MULTIPOLYGON_DTYPE)


def _replace_rows(col: pl.Series, positions: np.ndarray, fixed: P.Shapes, multi: bool) -> pl.Series:
    if multi and P.list_depth(col.dtype) == 2:
        col = _promote(col)
    values = to_series(fixed, multi=P.list_depth(col.dtype) == 3).cast(col.dtype)
    idx = np.full(col.len(), -1, np.int64)
    idx[positions] = np.arange(positions.size)
    aligned = values.gather(pl.Series(idx).replace(-1, None))
    mask = np.zeros(col.len(), bool)
    mask[positions] = True
    return pl.select(pl.when(pl.Series(mask)).then(aligned).otherwise(col)).to_series().alias(col.name)


# --- pairs ----------------------------------------------------------------------------------------
def shapes(side) -> P.Shapes:
    """The geometries of a prepared side in data-row order; box rows become rectangles."""
    kind = side.column(s.KIND).cast(pl.String)
    is_box = (kind == box.NAME).to_numpy()
    if not is_box.any():
        return P.from_series(side.column(s.POLYGON))
    boxes = side.column(s.BBOX)
    if is_box.all():
        return P.from_boxes(boxes.to_numpy().reshape(-1, 4))
    pos_box = np.flatnonzero(is_box)
    pos_poly = np.flatnonzero(~is_box)
    box_shapes = P.from_boxes(boxes.gather(pos_box).to_numpy().reshape(-1, 4))
    poly_shapes = P.from_series(side.column(s.POLYGON).gather(pos_poly))
    return P.in_order([box_shapes, poly_shapes], [pos_box, pos_poly], len(side))


def project(a: P.Shapes, row_a: np.ndarray, b: P.Shapes, row_b: np.ndarray, n_rows: int):
    """Both sides' (lon, lat) vertices on each data row's local equal-area plane."""
    xy_a, xy_b = geo.project_sides(a.coords, row_a[a.point_geometry()],
                                   b.coords, row_b[b.point_geometry()], n_rows)
    return a.with_coords(xy_a), b.with_coords(xy_b)


def pairs(gt, pd, profile=None):
    """Candidate pairs with IoU > 0 per data row (convex pairs in numba, the rest by shapely)."""
    with serial_if_small(len(gt) + len(pd)):
        a, b = shapes(gt), shapes(pd)
        if profile is not None and geo.is_geographic(profile.crs):
            a, b = project(a, gt.row, b, pd.row, gt.off.shape[0] - 1)
        return P.row_pairs(a, gt.off, b, pd.off)


def series_shapes(series: pl.Series) -> P.Shapes:
    """A polygon-like column (polygon, multipolygon, or bbox Array(Float64, 4)) as Shapes.

    >>> series_shapes(pl.Series([[0.0, 0.0, 2.0, 1.0]], dtype=s.BBOX_DTYPE)).measures.area.tolist()
    [2.0]
    """
    dtype = series.dtype
    if isinstance(dtype, pl.Array) and dtype.size == 4:
        return P.from_boxes(series.cast(s.BBOX_DTYPE).to_numpy().reshape(-1, 4))
    return P.from_series(series.cast(canonical_dtype(dtype, "expression")))


def aligned_iou(a: pl.Series, b: pl.Series) -> np.ndarray:
    """IoU of a[i] with b[i] for every i (no nulls; polygons, multipolygons or boxes).

    >>> tri = pl.Series([[[[0.0, 0.0], [2.0, 0.0], [2.0, 2.0]]]], dtype=s.POLYGON_DTYPE)
    >>> aligned_iou(tri, pl.Series([[0.0, 0.0, 2.0, 2.0]], dtype=s.BBOX_DTYPE)).tolist()
    [0.5]
    """
    sa, sb = series_shapes(a), series_shapes(b)
    n = a.len()
    for name, sh in (("left", sa), ("right", sb)):
        for key, bad in structure_problems(sh).items():
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InvalidAnnotationError(f"polygon_iou: {name} value at row {i} "
                                             f"{P.PROBLEMS[key][0]}; {P.PROBLEMS[key][1]}.")
    sa, sb = _valid(sa), _valid(sb)
    idx = np.arange(n, dtype=np.int64)
    return P.pair_iou(sa, sb, idx, idx)


def _valid(sh: P.Shapes) -> P.Shapes:
    """Repair invalid geometries of a batch (for the expression API, which has no load step)."""
    sure = T.certainly_valid(sh.coords, sh.ring_off, sh.part_off, sh.geom_off, VALID_RING_LIMIT)
    ask = np.flatnonzero(~sure & (np.diff(sh.geom_off) > 0))
    if ask.size == 0:
        return sh
    geoms = P.to_shapely(P.take(sh, ask))
    bad = ~shapely.is_valid(geoms)
    if not bad.any():
        return sh
    fixed = P.from_shapely(shapely.make_valid(geoms[bad]), keep=False)
    keep = np.setdiff1d(np.arange(len(sh)), ask[bad])
    return P.in_order([P.take(sh, keep), fixed], [keep, ask[bad]], len(sh))


def polygons_from_shapely(geoms, name: str = s.POLYGON) -> pl.Series:
    """A ``polygon`` column from shapely Polygons / MultiPolygons (one vectorized conversion).

    The column has the multipolygon dtype when any geometry has several parts; None → null.

    >>> import shapely, polars_metrics as pm
    >>> pm.polygons_from_shapely([shapely.box(0, 0, 2, 1)]).to_list()
    [[[[2.0, 0.0], [2.0, 1.0], [0.0, 1.0], [0.0, 0.0]]]]
    """
    arr = np.asarray(list(geoms), dtype=object)
    null = np.array([g is None for g in arr], bool)
    filled = np.where(null, shapely.Polygon(), arr)
    sh = P.from_shapely(filled, keep=False)
    multi = bool((np.diff(sh.geom_off) > 1).any())
    out = to_series(sh, multi, name)
    if null.any():
        out = pl.select(pl.when(pl.Series(~null)).then(out)).to_series().alias(name)
    return out


KIND = Kind(NAME, GEOMETRY, normalize, checks, pairs, aligned_iou=aligned_iou,
            repair=repair_and_warn, pairs_with=(box.NAME,))
