"""Slow, obviously-correct references for the non-box kinds (issue 3), one pair at a time.

Plain Python and per-geometry shapely calls, no vectorization, no kernels. The engine's pairs
stage is compared to :func:`pairs` on random inputs (``tests/test_kinds_*.py``).

- polygon: shapely ``Polygon(shell, holes)`` / ``MultiPolygon``; invalid geometry repaired with
  ``make_valid`` keeping the polygonal parts (``unary_union``); IoU = intersection area / union
  area, both from shapely; 0 when the union is empty. A box is its rectangle.
- point: ``Point.buffer(r)`` (shapely's default, 64-gon) or exact circles (lens formula).
- line: ``LineString.buffer(r)``.
- span: half-open, max(0, min end - max start) / (max end - min start); both empty at one offset
  → 1; different messages → 0.
- mask: decode both RLEs to dense pixels, count.
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry import box as shapely_box
from shapely.ops import unary_union


# --- geometry ------------------------------------------------------------------------------------
def _polygonal(geom):
    """Keep only the polygonal parts of a geometry (what remains of make_valid)."""
    if geom.is_empty:
        return Polygon()
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    if geom.geom_type == "GeometryCollection":
        parts = [_polygonal(g) for g in geom.geoms]
        parts = [p for p in parts if not p.is_empty]
        return unary_union(parts) if parts else Polygon()
    return Polygon()


def polygon_geometry(value):
    """Rings (shell, holes...) or a list of such polygons → a valid shapely geometry."""
    if not value:
        return Polygon()
    if isinstance(value[0][0][0], (int, float)):  # rings
        geom = Polygon(value[0], value[1:])
    else:
        geom = MultiPolygon([Polygon(p[0], p[1:]) for p in value if p])
    if not geom.is_valid:
        geom = _polygonal(shapely.make_valid(geom))
    return geom


def box_geometry(b):
    return shapely_box(*b) if (b[2] - b[0]) * (b[3] - b[1]) > 0 else Polygon()


def area_iou(a, b) -> float:
    if a.is_empty or b.is_empty:
        return 0.0
    union = a.union(b).area
    if union <= 0:
        return 0.0
    return a.intersection(b).area / union


def circle_iou(p, q, r) -> float:
    d = math.dist(p, q)
    if d >= 2 * r:
        return 0.0
    lens = 2 * r * r * math.acos(d / (2 * r)) - (d / 2) * math.sqrt(4 * r * r - d * d)
    return lens / (2 * math.pi * r * r - lens)


def span_iou(s0, e0, s1, e1, m0=None, m1=None) -> float:
    if m0 != m1:
        return 0.0
    if s0 == e0 and s1 == e1 and s0 == s1:
        return 1.0
    inter = max(0, min(e0, e1) - max(s0, s1))
    union = max(e0, e1) - min(s0, s1)
    return inter / union if inter > 0 else 0.0


def mask_dense(value) -> np.ndarray:
    h, w = value["height"], value["width"]
    pixels = []
    for i, c in enumerate(value["counts"]):
        pixels.extend([i % 2] * c)
    return np.array(pixels, dtype=bool).reshape((h, w), order="F")


def mask_iou(a, b) -> float:
    da, db = mask_dense(a), mask_dense(b)
    union = int((da | db).sum())
    return int((da & db).sum()) / union if union else 0.0


# --- one annotation, one pair --------------------------------------------------------------------
COMPATIBLE = {frozenset(["box", "polygon"])}


def compatible(k0: str, k1: str) -> bool:
    return k0 == k1 or frozenset([k0, k1]) in COMPATIBLE


def geometry(rec: dict, radius: float):
    kind = rec["kind"]
    if kind == "box":
        return box_geometry(rec["bbox"])
    if kind == "polygon":
        return polygon_geometry(rec["polygon"])
    if kind == "point":
        return Point(rec["point"]).buffer(radius)
    if kind == "line":
        return LineString(rec["line"]).buffer(radius)
    raise ValueError(kind)


def iou(g: dict, p: dict, *, radius: float = 70.0, point_iou: str = "buffer") -> float:
    """IoU of two annotation records (dicts of one input row each)."""
    if not compatible(g["kind"], p["kind"]):
        return 0.0
    kind = g["kind"]
    if kind == "span":
        return span_iou(g["start"], g["end"], p["start"], p["end"],
                        g.get("message_id"), p.get("message_id"))
    if kind == "mask":
        return mask_iou(g["mask"], p["mask"])
    if kind == "point" and point_iou == "circle":
        return circle_iou(g["point"], p["point"], radius)
    return area_iou(geometry(g, radius), geometry(p, radius))


def pairs(gt: list[dict], pd: list[dict], *, key: str = "data_row", **options) -> list[tuple]:
    """(data row, gt id, pd id, iou) of every pair with IoU > 0, data rows sorted, gt-major in
    input order. Records need ``id`` (else their position is used) and ``kind``."""
    by_row: dict = defaultdict(lambda: ([], []))
    for i, rec in enumerate(gt):
        by_row[rec[key]][0].append((rec.get("id", i), rec))
    for i, rec in enumerate(pd):
        by_row[rec[key]][1].append((rec.get("id", i), rec))
    out = []
    for row in sorted(by_row):
        gts, pds = by_row[row]
        for gid, g in gts:
            for pid, p in pds:
                v = iou(g, p, **options)
                if v > 0:
                    out.append((row, gid, pid, v))
    return out
