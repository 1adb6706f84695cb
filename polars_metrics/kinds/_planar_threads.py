"""The polygon kernels (``_kernels.polygon``) called on threads.

Each kernel takes a range of independent units (geometries, rings, data rows, pairs) and
releases the GIL; ``_parallel.run_ranges`` splits the units by cumulative work (points, pairs)
over a few threads — the same whether the kernel is the ahead-of-time compiled one (which has no
parallel backend) or numba's JIT. Every unit writes its own outputs, so the results do not
depend on the split.
"""
from __future__ import annotations

import numpy as np

from polars_metrics._arrays import offsets_from_lengths
from polars_metrics._lazy import lazy
from polars_metrics._parallel import map_ranges, run_ranges

K = lazy("polars_metrics._kernels.polygon")
KB = lazy("polars_metrics._kernels.line_buffer")
KC = lazy("polars_metrics._kernels.convex_clip")
KL = lazy("polars_metrics._kernels.line_pairs")


def _points_per_geometry(ring_off, part_off, geom_off) -> np.ndarray:
    """Cumulative points of geometries 0..n (n + 1 entries): the work of a per-geometry kernel."""
    return np.ascontiguousarray(ring_off[part_off[geom_off]], np.int64)


def shape_measures(coords, ring_off, part_off, geom_off):
    """(bbox, area, convex, circle, vrange) per geometry (see ``K.shape_measures``).

    >>> sq = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]])
    >>> one = np.array([0, 1], np.int64)
    >>> bbox, area, convex, _, _ = shape_measures(sq, np.array([0, 4], np.int64), one, one)
    >>> bbox.tolist(), area.tolist(), convex.tolist()
    ([[0.0, 0.0, 2.0, 2.0]], [4.0], [1])
    """
    n = geom_off.shape[0] - 1
    bbox = np.empty((n, 4), np.float64)
    area = np.zeros(n, np.float64)
    convex = np.zeros(n, np.int8)
    circle = np.zeros((n, 3), np.float64)
    vrange = np.zeros((n, 2), np.int64)
    run_ranges(K.shape_measures, (coords, ring_off, part_off, geom_off, bbox, area, convex, circle,
                                  vrange), _points_per_geometry(ring_off, part_off, geom_off))
    return bbox, area, convex, circle, vrange


def rings_with_three_points(coords, ring_off) -> np.ndarray:
    """Per ring: True when it has at least 3 distinct points."""
    out = np.zeros(ring_off.shape[0] - 1, np.bool_)
    run_ranges(K.rings_with_three_points, (coords, ring_off, out), ring_off)
    return out


def certainly_valid(coords, ring_off, part_off, geom_off, max_vertices: int) -> np.ndarray:
    """Per geometry: True when certainly valid (see ``K.certainly_valid``)."""
    out = np.zeros(geom_off.shape[0] - 1, np.bool_)
    run_ranges(K.certainly_valid, (coords, ring_off, part_off, geom_off, int(max_vertices), out),
               _points_per_geometry(ring_off, part_off, geom_off))
    return out


def edge_crossings(coords, ring_off, part_off, geom_off, limit: int, budget: int) -> np.ndarray:
    """Per geometry: crossings of its edges, capped (see ``K.edge_crossings``)."""
    out = np.zeros(geom_off.shape[0] - 1, np.int64)
    run_ranges(K.edge_crossings, (coords, ring_off, part_off, geom_off, int(limit), int(budget),
                                  out), _points_per_geometry(ring_off, part_off, geom_off))
    return out


def count_candidates(gt_bbox, gt_off, pd_bbox, pd_off) -> np.ndarray:
    """Candidate pairs per data row (see ``K.count_candidates``), rows split by their grids."""
    counts = np.zeros(gt_off.shape[0] - 1, np.int64)
    run_ranges(K.count_candidates, (gt_bbox, gt_off, pd_bbox, pd_off, counts),
               offsets_from_lengths(np.diff(gt_off) * np.diff(pd_off)))
    return counts


def fill_candidates(gt_coords, gt_bbox, gt_area, gt_convex, gt_circle, gt_vrange, gt_off,
                    pd_coords, pd_bbox, pd_area, pd_convex, pd_vrange, pd_off,
                    pair_off, cap: int, out_gt, out_pd, out_iou) -> None:
    """``K.fill_candidates`` over every data row, rows split by their candidates and grids (its
    twin in ``_kernels.convex_clip``: the same numbers, clipping only what each edge cuts)."""
    grid = offsets_from_lengths(np.diff(gt_off) * np.diff(pd_off))
    run_ranges(KC.fill_candidates, (gt_coords, gt_bbox, gt_area, gt_convex, gt_circle, gt_vrange,
                                   gt_off, pd_coords, pd_bbox, pd_area, pd_convex, pd_vrange,
                                   pd_off, pair_off, int(cap), out_gt, out_pd, out_iou),
               grid + pair_off)


def indexed_iou(a_coords, a_bbox, a_area, a_convex, a_circle, a_vrange,
                b_coords, b_bbox, b_area, b_convex, b_vrange, ia, ib, cap: int) -> np.ndarray:
    """IoU of the pairs (a[ia[k]], b[ib[k]]) (see ``K.indexed_iou``; NaN: left to the caller)."""
    out = np.empty(ia.shape[0], np.float64)
    run_ranges(K.indexed_iou, (a_coords, a_bbox, a_area, a_convex, a_circle, a_vrange, b_coords,
                               b_bbox, b_area, b_convex, b_vrange, ia, ib, int(cap), out),
               np.arange(ia.shape[0] + 1, dtype=np.int64))
    return out


def segment_buffers(coords, off, idx, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Buffer rings of the two-point lines ``idx`` (see ``_kernels.line_buffer``): (points
    (n, 2), ring offsets (n + 1)), rings open and in the order of ``idx``.

    >>> c = np.array([[0.0, 0.0], [10.0, 0.0]])
    >>> pts, ring_off = segment_buffers(c, np.array([0, 2]), np.array([0]), 1.0)
    >>> ring_off.tolist(), pts[0].tolist()
    ([0, 66], [10.0, 1.0])
    """
    idx = np.ascontiguousarray(idx, np.int64)
    coords = np.ascontiguousarray(coords, np.float64)
    off = np.ascontiguousarray(off, np.int64)
    n = idx.shape[0]
    work = np.arange(n + 1, dtype=np.int64)
    counts = np.zeros(n, np.int64)
    usual = KB.USUAL  # nearly every ring: written in place, no second copy
    out = np.empty((n * usual, 2), np.float64)
    run_ranges(KB.segment_buffers, (coords, off, idx, float(radius), usual, out, counts), work)
    if (counts == usual).all():
        return out, work * usual
    wide = np.empty((n * KB.STRIDE, 2), np.float64)
    run_ranges(KB.segment_buffers, (coords, off, idx, float(radius), KB.STRIDE, wide, counts), work)
    ring_off = offsets_from_lengths(counts)  # rare: some ring has another count
    keep = np.repeat(work[:-1] * KB.STRIDE - ring_off[:-1], counts) + np.arange(
        ring_off[-1], dtype=np.int64)
    return np.ascontiguousarray(wide[keep]), ring_off


def segment_pairs(ca, oa, gt_off, cb, ob, pd_off, radius: float):
    """(pair_off, pair_gt, pair_pd, pair_iou) with IoU > 0 between the buffers of two-point
    lines, per data row (see ``_kernels.line_pairs``), or None when a buffer is not convex.

    >>> c = np.array([[0.0, 0.0], [100.0, 0.0]])
    >>> one = np.array([0, 1])
    >>> off, g, p, iou = segment_pairs(c, np.array([0, 2]), one, c, np.array([0, 2]), one, 5.0)
    >>> off.tolist(), g.tolist(), p.tolist(), iou.tolist()
    ([0, 1], [0], [0], [1.0])
    """
    n_rows = gt_off.shape[0] - 1
    counts = np.zeros(n_rows, np.int64)
    ok = np.ones(1, np.bool_)
    args = tuple(np.ascontiguousarray(x, t) for x, t in ((ca, np.float64), (oa, np.int64),
                 (gt_off, np.int64), (cb, np.float64), (ob, np.int64), (pd_off, np.int64)))
    parts = map_ranges(KL.segment_pairs_range, (*args, float(radius), counts, ok),
                       offsets_from_lengths(np.diff(gt_off) * np.diff(pd_off)))
    if not ok[0]:
        return None
    pair_off = offsets_from_lengths(counts)
    if not parts:
        return pair_off, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
    return (pair_off, *(np.concatenate([part[i] for part in parts]) for i in range(3)))
