"""Planar polygon sets shared by the polygon, box-as-polygon, point and line kinds.

A :class:`Shapes` is a batch of (multi)polygons as CSR arrays — the layout the numba kernels in
``polars_metrics._kernels.polygon`` read — built vectorized from a Polars column, from boxes or
from shapely geometries, never per row in Python. IoU of a pair is exact from the kernels when
both geometries are convex (one ring each), and from vectorized shapely otherwise
(``intersection`` area; union = area_a + area_b - intersection), chunked over threads since
GEOS releases the GIL. Shapely geometries are built once per batch, only for the geometries
that need them (and reused when the batch came from shapely, as line buffers do).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import polars as pl

from polars_metrics._arrays import ragged_problems
from polars_metrics._lazy import lazy
from polars_metrics.kinds import _planar_threads as T

numba = lazy("polars_metrics._kernels._jit")  # get/set_num_threads without importing numba
pa = lazy("pyarrow")
shapely = lazy("shapely")

SHAPELY_CHUNK = 2048  # pairs per shapely call when spread over threads
MIN_EXTENT_AREA = 1e-290  # a bbox area below this (but > 0) underflows the shoelace products
MAX_REPAIR_CROSSINGS = 200  # edge crossings of an invalid geometry that make_valid is run on
CROSSING_TESTS = 20_000_000  # edge pairs tested per geometry before it counts as too complex

# Why the crossing bound: GEOS's make_valid grows much faster than its input — measured on
# random rings, 100 crossings take 0.03 s, 340 take 0.2 s, 1,100 take 1.4 s, 4,300 take 8 s
# and 600 random vertices (~40,000 crossings) take minutes. Real outlines that need repair
# cross themselves a handful of times. Counting crossings is a sweep over x (fast, bounded by
# CROSSING_TESTS), so a geometry is rejected as too complex before GEOS is asked.

PROBLEMS = {  # shape_problems key: (reason, fix)
    "non_finite": ("has a NaN or infinite coordinate", "replace or remove non-finite coordinates"),
    "too_large": ("has a coordinate beyond ±1e150: its area would overflow float64",
                  "check the units; scale the coordinates down"),
    "empty_part": ("has a part with no ring", "drop the empty parts of multipolygons"),
    "short": ("has a ring with fewer than 3 distinct points",
              "drop degenerate rings (a polygon ring needs at least 3 distinct vertices)"),
    "underflow": (f"is so small (bounding-box area below {MIN_EXTENT_AREA:.0e}) that its area "
                  "underflows float64", "scale the coordinates up"),
    "too_complex": (f"is invalid with more than {MAX_REPAIR_CROSSINGS} edge crossings: too "
                    "complex to repair", "simplify it or repair it before evaluating "
                    "(shapely.make_valid)"),
}


@dataclass(frozen=True)
class Measures:
    bbox: np.ndarray    # (n, 4); inverted when the area is 0
    area: np.ndarray    # (n,)
    convex: np.ndarray  # (n,) int8 orientation of a convex single-ring geometry, else 0
    circle: np.ndarray  # (n, 3)
    vrange: np.ndarray  # (n, 2) points of the first ring


@dataclass(eq=False)
class Shapes:
    """A batch of (multi)polygons: ``coords`` (n_points, 2) with open rings, ``ring_off``
    (points per ring), ``part_off`` (rings per part, shell first), ``geom_off`` (parts per
    geometry; 0 parts = empty). ``geoms`` optionally holds the same geometries as shapely
    objects (then they are not rebuilt)."""

    coords: np.ndarray
    ring_off: np.ndarray
    part_off: np.ndarray
    geom_off: np.ndarray
    geoms: np.ndarray | None = None

    def __len__(self) -> int:
        return self.geom_off.shape[0] - 1

    @cached_property
    def measures(self) -> Measures:
        return Measures(*T.shape_measures(self.coords, self.ring_off, self.part_off, self.geom_off))

    @property
    def max_ring(self) -> int:
        vr = self.measures.vrange
        return int((vr[:, 1] - vr[:, 0]).max()) if vr.shape[0] else 0

    def with_coords(self, coords: np.ndarray) -> Shapes:
        """The same rings on new coordinates (e.g. projected); shapely objects are dropped."""
        return Shapes(np.ascontiguousarray(coords, np.float64), self.ring_off, self.part_off,
                      self.geom_off)

    def point_geometry(self) -> np.ndarray:
        """The geometry index of every point."""
        rings_of_geom = self.part_off[self.geom_off]
        pts_of_geom = self.ring_off[rings_of_geom]
        return np.repeat(np.arange(len(self), dtype=np.int64), np.diff(pts_of_geom))


# --- validity -----------------------------------------------------------------------------------
def levels(shapes: Shapes) -> list[np.ndarray]:
    return [shapes.geom_off, shapes.part_off, shapes.ring_off]


def shape_problems(shapes: Shapes, *, complexity: bool = True) -> dict[str, np.ndarray]:
    """Per geometry, one boolean array per :data:`PROBLEMS` key (the first that applies; a
    geometry is flagged once). Offsets are checked before any kernel reads them.

    ``too_complex`` is computed for geometries that the conservative validity kernel cannot
    clear (``complexity=False`` skips it).

    >>> sh = from_series(pl.Series([[[[0, 0], [1, 0], [1, 1]]], [[[0, 0], [1, 1]]]],
    ...                             dtype=pl.List(pl.List(pl.Array(pl.Float64, 2)))))
    >>> {k: v.tolist() for k, v in shape_problems(sh).items() if v.any()}
    {'short': [False, True]}
    """
    raw = ragged_problems(shapes.coords, levels(shapes), min_leaf=0, min_inner=1)
    out = {"non_finite": raw["non_finite"], "too_large": raw["too_large"] & ~raw["non_finite"],
           "empty_part": raw["empty_inner"]}
    seen = out["non_finite"] | out["too_large"] | out["empty_part"]
    ring_geom = np.repeat(np.repeat(np.arange(len(shapes)), np.diff(shapes.geom_off)),
                          np.diff(shapes.part_off))
    short = np.zeros(len(shapes), bool)
    short[ring_geom[~T.rings_with_three_points(shapes.coords, shapes.ring_off)]] = True
    out["short"] = short & ~seen
    seen |= short
    out["underflow"] = _underflow(shapes) & ~seen
    seen |= out["underflow"]
    out["too_complex"] = np.zeros(len(shapes), bool)
    if complexity and (~seen).any():
        todo = np.flatnonzero(~seen)
        sub = shapes if todo.size == len(shapes) else take(shapes, todo)
        sure = T.certainly_valid(sub.coords, sub.ring_off, sub.part_off, sub.geom_off, 256)
        ask = todo[~sure]
        if ask.size:
            s2 = take(shapes, ask)
            crossings = T.edge_crossings(s2.coords, s2.ring_off, s2.part_off, s2.geom_off,
                                         MAX_REPAIR_CROSSINGS, CROSSING_TESTS)
            out["too_complex"][ask[crossings > MAX_REPAIR_CROSSINGS]] = True
    return out


def _underflow(shapes: Shapes) -> np.ndarray:
    """Geometries whose bounding box has a positive area below MIN_EXTENT_AREA."""
    n = len(shapes)
    out = np.zeros(n, bool)
    start = shapes.ring_off[shapes.part_off[shapes.geom_off]]  # each geometry's first point
    has = np.flatnonzero(np.diff(start) > 0)
    if has.size == 0:
        return out
    with np.errstate(invalid="ignore", over="ignore"):
        lo = np.minimum.reduceat(shapes.coords, start[has], axis=0)
        hi = np.maximum.reduceat(shapes.coords, start[has], axis=0)
        ext = hi - lo
        area = ext[:, 0] * ext[:, 1]
    out[has] = (ext[:, 0] > 0) & (ext[:, 1] > 0) & (area < MIN_EXTENT_AREA)
    return out


def usable(problems: dict[str, np.ndarray]) -> np.ndarray:
    """Geometries with none of the problems."""
    return ~np.logical_or.reduce(list(problems.values()))


# --- construction -------------------------------------------------------------------------------
def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(starts[i], starts[i] + lengths[i])`` for every i, vectorized."""
    lengths = np.asarray(lengths, np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(lengths)
    base = np.repeat(np.asarray(starts, np.int64) - (ends - lengths), lengths)
    return base + np.arange(total, dtype=np.int64)


def _offsets(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(lengths.shape[0] + 1, np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def _arrow(series: pl.Series):
    arr = series.rechunk().to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr


def _points(pts) -> np.ndarray:
    """A FixedSizeList(2) arrow array as (n, 2) float64; null points become NaN."""
    n = len(pts)
    vals = pts.values.slice(pts.offset * 2, n * 2)
    xy = np.asarray(vals.to_numpy(zero_copy_only=False), dtype=np.float64).reshape(n, 2).copy()
    if pts.null_count:
        xy[np.asarray(pts.is_null().to_numpy(zero_copy_only=False), bool)] = np.nan
    return xy


def list_depth(dtype) -> int:
    """Number of List levels above the (x, y) points of a geometry column dtype."""
    depth = 0
    while isinstance(dtype, pl.List):
        depth += 1
        dtype = dtype.inner
    return depth


def strip_closing(coords: np.ndarray, ring_off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop a repeated closing vertex (last == first) from every ring."""
    lens = np.diff(ring_off)
    if lens.size == 0:
        return coords, ring_off
    first = ring_off[:-1]
    last = ring_off[1:] - 1
    closed = np.zeros(lens.size, bool)
    has2 = np.flatnonzero(lens >= 2)  # empty rings index nothing (one at the end would be out of range)
    closed[has2] = (coords[first[has2]] == coords[last[has2]]).all(axis=1)
    if not closed.any():
        return coords, ring_off
    keep = np.ones(coords.shape[0], bool)
    keep[last[closed]] = False
    return np.ascontiguousarray(coords[keep]), _offsets(lens - closed)


def from_series(series: pl.Series) -> Shapes:
    """A ``polygon`` column — rings (List(List(Array(Float64, 2)))) or multipolygon parts
    (List(List(List(Array(Float64, 2)))) — as Shapes; null rows are empty geometries."""
    depth = list_depth(series.dtype)
    n = series.len()
    arr = _arrow(series)
    if depth == 3:
        go = np.asarray(arr.offsets, np.int64)
        parts = arr.values
    elif depth == 2:
        go = None
        parts = arr
    else:
        raise ValueError(f"not a polygon column: {series.dtype}")
    po = np.asarray(parts.offsets, np.int64)
    rings = parts.values
    ro = np.asarray(rings.offsets, np.int64)
    pts = rings.values
    if depth == 3:
        part_lo, part_hi = go[0], go[-1]
        geom_off = go - go[0]
    else:
        part_lo, part_hi = 0, n
        has = np.diff(po) > 0  # a polygon with no ring is an empty geometry
        geom_off = _offsets(has.astype(np.int64))
        keep_parts = np.flatnonzero(has)
        po = np.concatenate([po[keep_parts], po[-1:]]) if n else po
        part_lo, part_hi = 0, keep_parts.size
    ring_lo, ring_hi = po[part_lo], po[part_hi]
    part_off = po[part_lo:part_hi + 1] - ring_lo
    pt_lo, pt_hi = ro[ring_lo], ro[ring_hi]
    ring_off = ro[ring_lo:ring_hi + 1] - pt_lo
    coords = _points(pts.slice(pt_lo, pt_hi - pt_lo)) if pt_hi > pt_lo else np.zeros((0, 2))
    coords, ring_off = strip_closing(coords, ring_off)
    return Shapes(np.ascontiguousarray(coords, np.float64), ring_off.astype(np.int64),
                  part_off.astype(np.int64), geom_off.astype(np.int64))


def from_boxes(xyxy: np.ndarray) -> Shapes:
    """Boxes (x0, y0, x1, y1) as counter-clockwise rectangles."""
    b = np.asarray(xyxy, np.float64).reshape(-1, 4)
    n = b.shape[0]
    coords = np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [2, 3]], b[:, [0, 3]]], axis=1).reshape(-1, 2)
    one = np.arange(n + 1, dtype=np.int64)
    return Shapes(np.ascontiguousarray(coords), one * 4, one.copy(), one.copy())


def from_shapely(geoms: np.ndarray, *, keep: bool = True) -> Shapes:
    """Polygonal shapely geometries (Polygon / MultiPolygon / empty; other parts are ignored)."""
    geoms = np.asarray(geoms, dtype=object)
    n = geoms.shape[0]
    parts, idx = shapely.get_parts(geoms, return_index=True)
    while True:  # collections (make_valid's output) may hold multipolygons: flatten fully
        G = shapely.GeometryType
        collections = [G.MULTIPOINT, G.MULTILINESTRING, G.MULTIPOLYGON, G.GEOMETRYCOLLECTION]
        nested = np.isin(shapely.get_type_id(parts), collections)
        if not nested.any():
            break
        sub, where = shapely.get_parts(parts[nested], return_index=True)
        parts = np.concatenate([parts[~nested], sub])
        idx = np.concatenate([idx[~nested], idx[nested][where]])
        order = np.argsort(idx, kind="stable")
        parts, idx = parts[order], idx[order]
    ok = (shapely.get_type_id(parts) == shapely.GeometryType.POLYGON) & ~shapely.is_empty(parts)
    parts, idx = parts[ok], idx[ok]
    if parts.size:
        _, coords, (ring_off, part_off) = shapely.to_ragged_array(parts)
        coords = np.asarray(coords, np.float64)[:, :2]
    else:
        coords, ring_off, part_off = np.zeros((0, 2)), np.zeros(1, np.int64), np.zeros(1, np.int64)
    geom_off = _offsets(np.bincount(idx, minlength=n).astype(np.int64))
    coords, ring_off = strip_closing(np.ascontiguousarray(coords), np.asarray(ring_off, np.int64))
    return Shapes(coords, ring_off, np.asarray(part_off, np.int64), geom_off, geoms if keep else None)


def take(shapes: Shapes, idx: np.ndarray) -> Shapes:
    """The geometries at ``idx`` (any order, repeats allowed)."""
    idx = np.asarray(idx, np.int64)
    go, po, ro = shapes.geom_off, shapes.part_off, shapes.ring_off
    parts = ranges(go[idx], go[idx + 1] - go[idx])
    rings = ranges(po[parts], po[parts + 1] - po[parts])
    pts = ranges(ro[rings], ro[rings + 1] - ro[rings])
    return Shapes(
        np.ascontiguousarray(shapes.coords[pts]),
        _offsets(ro[rings + 1] - ro[rings]),
        _offsets(po[parts + 1] - po[parts]),
        _offsets(go[idx + 1] - go[idx]),
        None if shapes.geoms is None else shapes.geoms[idx],
    )


def concat(batches: list[Shapes]) -> Shapes:
    """Batches one after the other."""
    if len(batches) == 1:
        return batches[0]
    coords = np.concatenate([b.coords for b in batches])
    def cat(name):
        offs = [getattr(b, name) for b in batches]
        lens = np.concatenate([np.diff(o) for o in offs])
        return _offsets(lens)
    geoms = None
    if all(b.geoms is not None for b in batches):
        geoms = np.concatenate([b.geoms for b in batches])
    return Shapes(np.ascontiguousarray(coords), cat("ring_off"), cat("part_off"), cat("geom_off"), geoms)


def in_order(batches: list[Shapes], positions: list[np.ndarray], n: int) -> Shapes:
    """Interleave batches: geometry i of batch k goes to position ``positions[k][i]`` of n."""
    order = np.empty(n, np.int64)
    start = 0
    for b, pos in zip(batches, positions, strict=True):
        order[pos] = np.arange(start, start + len(b))
        start += len(b)
    return take(concat(batches), order)


def to_shapely(shapes: Shapes) -> np.ndarray:
    """Shapely (Multi)Polygons of the batch, built in one vectorized call.

    GEOS trusts its ragged input (a part with no ring crashes the process): every part must
    have a ring and every ring 3 points, or ValueError is raised before GEOS is called.
    """
    if shapes.geoms is not None:
        return shapes.geoms
    raw = ragged_problems(shapes.coords, levels(shapes), min_leaf=3, min_inner=1)
    if raw["empty_inner"].any() or raw["short_leaf"].any():
        raise ValueError("to_shapely: a part without a ring or a ring of fewer than 3 points "
                         "reached the geometry engine; validate with shape_problems first")
    ro = shapes.ring_off
    lens = np.diff(ro)
    closed_lens = lens + 1
    flat = ranges(ro[:-1], closed_lens)
    if flat.size:
        flat[np.cumsum(closed_lens) - 1] = ro[:-1]  # repeat the first vertex to close
    coords = shapes.coords[flat] if flat.size else np.zeros((0, 2))
    return shapely.from_ragged_array(
        shapely.GeometryType.MULTIPOLYGON, np.ascontiguousarray(coords),
        (_offsets(closed_lens), shapes.part_off, shapes.geom_off))


# --- IoU ----------------------------------------------------------------------------------------
def _cap(a: Shapes, b: Shapes) -> int:
    return 2 * (a.max_ring + b.max_ring) + 8


def intersection_area(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``area(intersection(x[k], y[k]))`` for every k, chunked over threads (GEOS drops the GIL)."""
    n = x.shape[0]
    threads = max(1, numba.get_num_threads())
    if n < 2 * SHAPELY_CHUNK or threads == 1:
        return shapely.area(shapely.intersection(x, y))
    bounds = list(range(0, n, SHAPELY_CHUNK)) + [n]
    out = np.empty(n, np.float64)

    def work(k: int) -> None:
        lo, hi = bounds[k], bounds[k + 1]
        out[lo:hi] = shapely.area(shapely.intersection(x[lo:hi], y[lo:hi]))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(work, range(len(bounds) - 1)))
    return out


def _resolve_with_shapely(a: Shapes, b: Shapes, ia: np.ndarray, ib: np.ndarray, iou: np.ndarray) -> None:
    """Fill the NaN entries of ``iou`` (pairs ia[k], ib[k]) with shapely, in place."""
    todo = np.flatnonzero(np.isnan(iou))
    if todo.size == 0:
        return
    ga_idx, ga_inv = np.unique(ia[todo], return_inverse=True)
    gb_idx, gb_inv = np.unique(ib[todo], return_inverse=True)
    ga = a.geoms[ga_idx] if a.geoms is not None else to_shapely(take(a, ga_idx))
    gb = b.geoms[gb_idx] if b.geoms is not None else to_shapely(take(b, gb_idx))
    inter = intersection_area(ga[ga_inv], gb[gb_inv])
    union = a.measures.area[ia[todo]] + b.measures.area[ib[todo]] - inter
    noise = 1e-12 * (a.measures.area[ia[todo]] + b.measures.area[ib[todo]])  # as the kernels
    with np.errstate(invalid="ignore", divide="ignore"):
        val = np.where((inter > noise) & (union > 0), inter / union, 0.0)
    iou[todo] = np.minimum(val, 1.0)


def pair_iou(a: Shapes, b: Shapes, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """IoU of the pairs (a[ia[k]], b[ib[k]])."""
    ia = np.ascontiguousarray(ia, np.int64)
    ib = np.ascontiguousarray(ib, np.int64)
    ma, mb = a.measures, b.measures
    iou = T.indexed_iou(a.coords, ma.bbox, ma.area, ma.convex, ma.circle, ma.vrange,
                        b.coords, mb.bbox, mb.area, mb.convex, mb.vrange, ia, ib, _cap(a, b))
    _resolve_with_shapely(a, b, ia, ib, iou)
    return iou


def row_pairs(a: Shapes, a_off: np.ndarray, b: Shapes, b_off: np.ndarray):
    """Every (a, b) pair with IoU > 0 inside each data row (CSR ``a_off`` / ``b_off``),
    gt-major: returns (pair_off, pair_a, pair_b, pair_iou) like the box kernel."""
    ma, mb = a.measures, b.measures
    counts = T.count_candidates(ma.bbox, a_off, mb.bbox, b_off)
    pair_off = _offsets(counts)
    n = int(pair_off[-1])
    out_a = np.empty(n, np.int64)
    out_b = np.empty(n, np.int64)
    iou = np.empty(n, np.float64)
    T.fill_candidates(a.coords, ma.bbox, ma.area, ma.convex, ma.circle, ma.vrange, a_off,
                      b.coords, mb.bbox, mb.area, mb.convex, mb.vrange, b_off,
                      pair_off, _cap(a, b), out_a, out_b, iou)
    _resolve_with_shapely(a, b, out_a, out_b, iou)
    return compact(pair_off, out_a, out_b, iou)


def compact(pair_off, out_a, out_b, iou):
    """Drop the candidate pairs whose IoU is 0, keeping the CSR offsets consistent."""
    keep = iou > 0.0
    if keep.all():
        return pair_off, out_a, out_b, iou
    n_rows = pair_off.shape[0] - 1
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(pair_off))
    counts = np.bincount(rows[keep], minlength=n_rows).astype(np.int64)
    return _offsets(counts), out_a[keep], out_b[keep], iou[keep]


# --- polylines ----------------------------------------------------------------------------------
def lines_from_series(series: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """A ``line`` column (List(Array(Float64, 2))) as (coords (n_points, 2), offsets (n + 1));
    null rows have no points, null points are NaN. Read with polars alone (no pyarrow: its
    import costs a first call more than the rest of the read).

    >>> c, off = lines_from_series(pl.Series([[[0.0, 1.0], None], None, [[2.0, 3.0]]],
    ...                                      dtype=pl.List(pl.Array(pl.Float64, 2))))
    >>> c.tolist(), off.tolist()
    ([[0.0, 1.0], [nan, nan], [2.0, 3.0]], [0, 2, 2, 3])
    """
    lens = series.list.len().fill_null(0).to_numpy().astype(np.int64, copy=False)
    off = _offsets(lens)
    if off[-1] == 0:
        return np.zeros((0, 2)), off
    if (lens == 0).any():  # empty and null lists would explode to null rows
        series = series.filter(pl.Series(lens > 0))
    flat = series.explode()
    xy = np.stack([flat.arr.get(0).to_numpy(), flat.arr.get(1).to_numpy()], axis=1)
    if xy.shape[0] != off[-1]:
        raise ValueError(f"lines_from_series: {xy.shape[0]} points read, {off[-1]} expected")
    return np.ascontiguousarray(xy, np.float64), off


def buffered_lines(coords: np.ndarray, off: np.ndarray, radius: float) -> Shapes:
    """Polylines buffered like shapely's ``LineString.buffer(radius)`` (round caps and joins,
    16 segments per quadrant), built and buffered in vectorized calls."""
    n = off.shape[0] - 1
    if n == 0:
        return from_shapely(np.empty(0, dtype=object))
    raw = ragged_problems(coords, [off], min_leaf=2)
    if raw["short_leaf"].any() or raw["non_finite"].any():
        raise ValueError("buffered_lines: a line of fewer than 2 points or with a non-finite "
                         "coordinate reached the geometry engine; validate it first")
    lines = shapely.from_ragged_array(shapely.GeometryType.LINESTRING, coords, (off,))
    return from_shapely(shapely.buffer(lines, radius, quad_segs=16))
