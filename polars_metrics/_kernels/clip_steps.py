"""The steps of convex clipping shared by ``polygon.clip_area`` and ``convex_clip.clip_area_fast``
(and their pair IoUs), which must give the same floats: the same expressions on the same
operands, in the same order (tests/test_clip_float_order.py pins them against plain Python).
Helpers only, inlined into the kernels that call them. No polars, no globals.
"""
from __future__ import annotations

import math

from polars_metrics._kernels._jit import njit

_CLIP, _SKIP, _EMPTY = 0, 1, 2


@njit(cache=True, nogil=True, inline="always")
def _side(x, y, orient, ex, ey, px, py):
    """Signed distance of (x, y) from the clip line through (px, py) along (ex, ey), times the
    edge length; positive inside (``orient``: +1 for a CCW clip polygon, -1 for CW)."""
    return orient * (ex * (y - py) - ey * (x - px))


@njit(cache=True, nogil=True, inline="always")
def _clip_edge(qx, qy, m, j, orient, ccx, ccy, cr):
    """Edge ``j`` of the clip polygon ``q`` (``m`` vertices) against the subject's bounding
    circle ``(ccx, ccy, cr)``: (action, px, py, ex, ey, length). ``_SKIP`` a zero-length edge
    or one whose line keeps the whole circle inside, ``_EMPTY`` one that keeps it outside (the
    intersection is empty), else ``_CLIP``."""
    px = qx[j]
    py = qy[j]
    jn = j + 1 if j + 1 < m else 0
    ex = qx[jn] - px
    ey = qy[jn] - py
    if ex == 0.0 and ey == 0.0:
        return _SKIP, px, py, ex, ey, 0.0
    length = math.sqrt(ex * ex + ey * ey)
    d = _side(ccx, ccy, orient, ex, ey, px, py)
    if d >= cr * length:
        return _SKIP, px, py, ex, ey, length
    if d <= -cr * length:
        return _EMPTY, px, py, ex, ey, length
    return _CLIP, px, py, ex, ey, length


@njit(cache=True, nogil=True, inline="always")
def _crossing(sp, sc, prx, pry, cx, cy):
    """Where the edge from (prx, pry) (signed distance ``sp``) to (cx, cy) (``sc``, of the
    other sign) crosses the clip line."""
    t = sp / (sp - sc)
    return prx + t * (cx - prx), pry + t * (cy - pry)


@njit(cache=True, nogil=True, inline="always")
def _fan_term(x0, y0, ax, ay, bx, by):
    """(a - o) x (b - o) for o = (x0, y0): one term of the shoelace sum fanned out from o."""
    ax = ax - x0
    ay = ay - y0
    bx = bx - x0
    by = by - y0
    return ax * by - bx * ay


@njit(cache=True, nogil=True, inline="always")
def _convex_ratio(inter, area_a, area_b):
    """IoU from the intersection and the two areas (0 for touching shapes: rounding noise)."""
    if inter <= 1e-12 * (area_a + area_b):
        return 0.0
    union = area_a + area_b - inter
    if union <= 0.0:
        return 0.0
    return min(inter / union, 1.0)


@njit(cache=True, nogil=True, inline="always")
def _gather_pair(coords_a, va0, va1, coords_b, vb0, vb1, ws):
    """Copy the vertex ranges of a pair into the rows of ``ws`` (a x, a y, b x, b y); (n, m)."""
    n = va1 - va0
    m = vb1 - vb0
    for i in range(n):
        ws[0, i] = coords_a[va0 + i, 0]
        ws[1, i] = coords_a[va0 + i, 1]
    for j in range(m):
        ws[2, j] = coords_b[vb0 + j, 0]
        ws[3, j] = coords_b[vb0 + j, 1]
    return n, m
