"""The convex clip's floats, pinned against a plain-Python Sutherland–Hodgman written here.

``_kernels.polygon.clip_area`` and ``_kernels.convex_clip.clip_area_fast`` share their steps
(the clip-edge tests, the crossing point, the shoelace fan); tests/test_geom_fast_paths.py
checks that the two agree bit for bit, which a change to a shared step would not catch. Here
both, and the exported pair kernels built on them, must equal a transcription of the
algorithm in Python floats (IEEE doubles, the same operations in the same order) exactly.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from test_geom_fast_paths import _convex  # random convex polygons and segment buffers

from polars_metrics._kernels import convex_clip as KC
from polars_metrics._kernels import disc as KD
from polars_metrics._kernels import polygon as KP
from polars_metrics.kinds import _planar as P
from polars_metrics.kinds import point as point_kind


def py_clip_area(s: list, q: list, orient: int, ccx: float, ccy: float, cr: float) -> float:
    """Area of convex ``s`` ∩ convex ``q`` (vertex lists, ``q`` oriented ``orient``)."""
    pts = list(s)
    m = len(q)
    for j in range(m):
        px, py = q[j]
        ex, ey = q[(j + 1) % m][0] - px, q[(j + 1) % m][1] - py
        if ex == 0.0 and ey == 0.0:
            continue
        length = math.sqrt(ex * ex + ey * ey)
        d = orient * (ex * (ccy - py) - ey * (ccx - px))
        if d >= cr * length:
            continue  # the subject's circle is inside this edge's line
        if d <= -cr * length:
            return 0.0  # ... or outside it
        out = []
        prx, pry = pts[-1]
        sp = orient * (ex * (pry - py) - ey * (prx - px))
        for cx, cy in pts:
            sc = orient * (ex * (cy - py) - ey * (cx - px))
            if (sc >= 0.0) != (sp >= 0.0):  # the edge crosses the line
                t = sp / (sp - sc)
                out.append((prx + t * (cx - prx), pry + t * (cy - pry)))
            if sc >= 0.0:
                out.append((cx, cy))
            prx, pry, sp = cx, cy, sc
        if len(out) < 3:
            return 0.0
        pts = out
    x0, y0 = pts[0]
    total = 0.0
    for (ax, ay), (bx, by) in zip(pts[1:-1], pts[2:], strict=True):
        ax, ay, bx, by = ax - x0, ay - y0, bx - x0, by - y0
        total += ax * by - bx * ay
    return abs(total) * 0.5


def _circle(s: np.ndarray) -> tuple[float, float, float]:
    c = s.mean(0)
    return float(c[0]), float(c[1]), float(np.sqrt(((s - c) ** 2).sum(1)).max()) * (1 + 1e-9)


def _ccw(q: np.ndarray) -> int:
    return 1 if shapely.Polygon(q).exterior.is_ccw else -1


def test_clip_area_and_fast_clip_equal_python_bit_for_bit():
    rng = np.random.default_rng(11)
    nonzero = 0
    for _ in range(400):
        s, q = _convex(rng), _convex(rng)
        q = q - q.mean(0) + s.mean(0) + rng.normal(0, 40, 2)
        ccx, ccy, cr = _circle(s)
        orient = _ccw(q)
        want = py_clip_area([tuple(v) for v in s.tolist()], [tuple(v) for v in q.tolist()], orient,
                            ccx, ccy, cr)
        n, m = len(s), len(q)
        cap = 2 * (n + m) + 8
        sx, sy = np.ascontiguousarray(s[:, 0]), np.ascontiguousarray(s[:, 1])
        qx, qy = np.ascontiguousarray(q[:, 0]), np.ascontiguousarray(q[:, 1])
        got = KP.clip_area(sx, sy, n, qx, qy, m, orient, ccx, ccy, cr, np.empty((4, cap)))
        fast = KC.clip_area_fast(sx, sy, n, qx, qy, m, orient, ccx, ccy, cr, np.empty((4, cap)),
                                 np.empty(cap), np.empty(cap), np.empty(cap, np.int64),
                                 np.empty(cap, np.int64))
        assert got == want and fast == want, (s, q, want, got, fast)
        nonzero += want > 0
    assert nonzero > 200


def _py_iou(inter: float, area_a: float, area_b: float) -> float:
    if inter <= 1e-12 * (area_a + area_b):
        return 0.0
    union = area_a + area_b - inter
    return 0.0 if union <= 0.0 else min(inter / union, 1.0)


@pytest.mark.parametrize("kernel", ["fill_candidates", "indexed_iou"])
def test_polygon_pair_kernels_equal_python_bit_for_bit(kernel):
    """The exported kernels (convex_clip.fill_candidates, polygon.indexed_iou): IoU of convex
    pairs from the Python clip and the kernels' own areas."""
    rng = np.random.default_rng(5)
    geoms_a, geoms_b = [], []
    for _ in range(150):
        a = _convex(rng)
        b = _convex(rng)
        b = b - b.mean(0) + a.mean(0) + rng.normal(0, 30, 2)
        geoms_a.append(shapely.Polygon(a))
        geoms_b.append(shapely.Polygon(b))
    A = P.from_shapely(np.array(geoms_a, dtype=object))
    B = P.from_shapely(np.array(geoms_b, dtype=object))
    ma, mb = A.measures, B.measures
    n = len(geoms_a)
    ia = np.arange(n, dtype=np.int64)
    cap = 2 * (A.max_ring + B.max_ring) + 8
    if kernel == "indexed_iou":
        iou = np.empty(n)
        KP.indexed_iou(A.coords, ma.bbox, ma.area, ma.convex, ma.circle, ma.vrange, B.coords,
                       mb.bbox, mb.area, mb.convex, mb.vrange, ia, ia, cap, iou, 0, n)
    else:  # one pair per data row, when the bounding boxes overlap
        counts = np.zeros(n, np.int64)
        KP.count_candidates(ma.bbox, np.arange(n + 1), mb.bbox, np.arange(n + 1), counts, 0, n)
        pair_off = np.concatenate([[0], np.cumsum(counts)])
        k = int(pair_off[-1])
        out_a, out_b, vals = np.empty(k, np.int64), np.empty(k, np.int64), np.empty(k)
        KC.fill_candidates(A.coords, ma.bbox, ma.area, ma.convex, ma.circle, ma.vrange,
                           np.arange(n + 1), B.coords, mb.bbox, mb.area, mb.convex, mb.vrange,
                           np.arange(n + 1), pair_off, cap, out_a, out_b, vals, 0, n)
        iou = np.zeros(n)
        iou[out_a] = vals
    checked = 0
    for g in range(n):
        ba, bb = ma.bbox[g].tolist(), mb.bbox[g].tolist()
        if not (min(ba[2], bb[2]) - max(ba[0], bb[0]) > 0.0 and min(ba[3], bb[3]) - max(ba[1], bb[1]) > 0.0):
            assert iou[g] == 0.0  # bounding boxes apart: no candidate
            continue
        if not (ma.convex[g] and mb.convex[g]):
            continue
        a0, a1 = ma.vrange[g]
        b0, b1 = mb.vrange[g]
        s = [tuple(v) for v in A.coords[a0:a1].tolist()]
        q = [tuple(v) for v in B.coords[b0:b1].tolist()]
        cx, cy, cr = ma.circle[g].tolist()
        inter = py_clip_area(s, q, int(mb.convex[g]), cx, cy, cr)
        want = _py_iou(inter, float(ma.area[g]), float(mb.area[g]))
        assert iou[g] == want, (g, iou[g], want)
        checked += want > 0
    assert checked > 100


@pytest.mark.parametrize("mode", [KD.POLYGON, KD.CIRCLE])
def test_disc_kernels_equal_python_bit_for_bit(mode):
    """convex_clip.fill_disc_pairs and disc.disc_iou_aligned on aligned point pairs."""
    rng = np.random.default_rng(9)
    radius = 70.0
    n = 300
    a = rng.uniform(-1e4, 1e4, (n, 2))
    b = a + rng.normal(0, 60, (n, 2))
    b[::7] = np.round(b[::7])
    ox, oy = (np.ascontiguousarray(v, np.float64) for v in point_kind.disc_offsets(radius))
    aligned = np.zeros(n)
    KD.disc_iou_aligned(a, b, radius, ox, oy, mode, aligned, 0, n)
    off = np.arange(n + 1, dtype=np.int64)
    counts = np.zeros(n, np.int64)
    KD.count_disc_pairs(a, off, b, off, radius, counts, 0, n)
    pair_off = np.concatenate([[0], np.cumsum(counts)])
    k = int(pair_off[-1])
    out_a, out_b, vals = np.empty(k, np.int64), np.empty(k, np.int64), np.empty(k)
    KC.fill_disc_pairs(a, off, b, off, radius, ox, oy, mode, pair_off, out_a, out_b, vals, 0, n)
    pairs = np.zeros(n)
    pairs[out_a] = vals
    m = ox.shape[0]
    area = 0.0
    for i in range(m):  # disc._polygon_area
        j = i + 1 if i + 1 < m else 0
        area += ox[i] * oy[j] - ox[j] * oy[i]
    area = abs(area) * 0.5
    checked = 0
    for i in range(n):
        (ax, ay), (bx, by) = a[i].tolist(), b[i].tolist()
        dx, dy = ax - bx, ay - by
        if not (abs(dx) < 2 * radius and abs(dy) < 2 * radius and dx * dx + dy * dy < 4 * radius * radius):
            assert aligned[i] == 0.0 and pairs[i] == 0.0
            continue
        if mode == KD.CIRCLE:
            want = KD.circle_iou(math.sqrt(dx * dx + dy * dy), radius)
        else:
            s = [(ax + x, ay + y) for x, y in zip(ox.tolist(), oy.tolist(), strict=True)]
            q = [(bx + x, by + y) for x, y in zip(ox.tolist(), oy.tolist(), strict=True)]
            inter = py_clip_area(s, q, -1, ax, ay, radius * (1.0 + 1e-12))
            union = 2.0 * area - inter
            want = 0.0 if inter <= 2e-12 * area else (min(inter / union, 1.0) if union > 0.0 else 0.0)
        assert aligned[i] == want and pairs[i] == want, (i, aligned[i], pairs[i], want)
        checked += want > 0
    assert checked > 150
