"""Hypothesis strategies for the non-box kinds: small coordinates on a grid so that overlaps,
shared edges, collinear vertices, touching shapes and self-intersections are common."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

GRID = st.integers(0, 16).map(lambda v: v / 2)


@st.composite
def convex_ring(draw, max_vertices: int = 8) -> list[list[float]]:
    """Vertices on a circle at sorted angles: convex (maybe with collinear/duplicate points
    after rounding to the grid)."""
    cx, cy = draw(GRID), draw(GRID)
    r = draw(st.floats(0.5, 6))
    k = draw(st.integers(3, max_vertices))
    angles = sorted(draw(st.lists(st.floats(0, 2 * math.pi, exclude_max=True), min_size=k, max_size=k)))
    snap = draw(st.booleans())
    # rounded to 1e-9: no subnormal or near-subnormal coordinates (GEOS' overlay is not meant
    # for them, and annotation tools never produce them)
    pts = [[round(cx + r * math.cos(a), 9), round(cy + r * math.sin(a), 9)] for a in angles]
    if snap:
        pts = [[round(x * 2) / 2, round(y * 2) / 2] for x, y in pts]
    if draw(st.booleans()):
        pts = pts[::-1]
    return pts


@st.composite
def star_ring(draw, max_vertices: int = 10) -> list[list[float]]:
    """Star-shaped around a centre: simple, usually not convex."""
    cx, cy = draw(GRID), draw(GRID)
    k = draw(st.integers(3, max_vertices))
    angles = np.linspace(0, 2 * math.pi, k, endpoint=False)
    radii = draw(st.lists(st.floats(0.5, 6), min_size=k, max_size=k))
    return [[round(cx + r * math.cos(a), 9), round(cy + r * math.sin(a), 9)]
            for a, r in zip(angles, radii, strict=True)]


@st.composite
def any_ring(draw) -> list[list[float]]:
    """Grid vertices in arbitrary order: often self-intersecting (repaired by make_valid)."""
    k = draw(st.integers(3, 7))
    pts = draw(st.lists(st.tuples(GRID, GRID), min_size=k, max_size=k, unique=True))
    return [list(p) for p in pts]


def _has_three_distinct(ring) -> bool:
    return len({tuple(p) for p in ring}) >= 3


@st.composite
def polygon_value(draw, kinds=("convex", "star", "holed", "any", "box")):
    """Rings (shell, holes...) of one polygon."""
    which = draw(st.sampled_from(kinds))
    if which == "convex":
        ring = draw(convex_ring().filter(_has_three_distinct))
        return [ring]
    if which == "star":
        return [draw(star_ring())]
    if which == "any":
        return [draw(any_ring().filter(_has_three_distinct))]
    x0, y0 = draw(GRID), draw(GRID)
    w, h = draw(st.integers(1, 12)) / 2, draw(st.integers(1, 12)) / 2
    shell = [[x0, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0, y0 + h]]
    if which == "box":
        return [shell]
    hw, hh = round(w * draw(st.floats(0.1, 0.8)), 9), round(h * draw(st.floats(0.1, 0.8)), 9)
    hx = round(x0 + (w - hw) * draw(st.floats(0, 1)), 9)
    hy = round(y0 + (h - hh) * draw(st.floats(0, 1)), 9)
    hole = [[hx, hy], [hx, hy + hh], [hx + hw, hy + hh], [hx + hw, hy]]
    if draw(st.booleans()):
        shell = shell + [shell[0]]  # closed ring: the same polygon
    return [shell, hole]


@st.composite
def multipolygon_value(draw):
    n = draw(st.integers(1, 3))
    return [draw(polygon_value(kinds=("convex", "star", "box", "holed"))) for _ in range(n)]


@st.composite
def box_value(draw):
    x0, y0 = draw(GRID), draw(GRID)
    return [x0, y0, x0 + draw(st.integers(0, 12)) / 2, y0 + draw(st.integers(0, 12)) / 2]


@st.composite
def line_value(draw):
    k = draw(st.integers(2, 5))
    pts = draw(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 300)), min_size=k, max_size=k))
    return [[float(x), float(y)] for x, y in pts]


@st.composite
def point_value(draw):
    return [float(draw(st.integers(0, 300))), float(draw(st.integers(0, 300)))]


@st.composite
def span_value(draw):
    start = draw(st.integers(0, 30))
    return start, start + draw(st.integers(0, 10))


@st.composite
def dense_mask(draw, height: int = 9, width: int = 7):
    which = draw(st.sampled_from(["box", "random", "empty", "full"]))
    m = np.zeros((height, width), bool)
    if which == "box":
        y0, x0 = draw(st.integers(0, height - 1)), draw(st.integers(0, width - 1))
        m[y0:y0 + draw(st.integers(1, height)), x0:x0 + draw(st.integers(1, width))] = True
    elif which == "random":
        seed = draw(st.integers(0, 2**32 - 1))
        m = np.random.default_rng(seed).random((height, width)) < draw(st.floats(0.05, 0.9))
    elif which == "full":
        m[:] = True
    return m
