"""Buffers of single segments, vertex for vertex as GEOS makes them (shapely's
``LineString([p0, p1]).buffer(radius)``: round caps, 16 segments per quadrant).

GEOS builds a line's buffer from its raw offset curve (``OffsetCurveBuilder::
computeLineBufferCurve``): for a segment p0 -> p1 the left offset's end, the round cap around
p1 (``addDirectedFillet`` from angle + pi/2 clockwise to angle - pi/2, ``Angle::sinCosSnap``),
the right offset's end, the left offset of the reversed segment's end, the cap around p0 and
the last offset point; a point closer than ``1e-6 * radius`` to the previous one is dropped
(``OffsetSegmentString::isRedundant``). The polygon GEOS returns for a segment is that ring,
starting at its first point; ``kinds.line`` uses these kernels only where tests/
test_geom_fast_paths.py checks the coordinates against shapely bit for bit, and GEOS otherwise.
"""
from __future__ import annotations

import math

import numpy as np

from polars_metrics._kernels._jit import njit

STRIDE = 72  # points per segment buffer at most: 2 caps of 32 fillet points, 4 offset points
USUAL = 66   # points of nearly every segment buffer (the fillets' first points are dropped)
QUAD_SEGS = 16


@njit(cache=True, nogil=True, inline="always")
def _snap(v):
    return 0.0 if abs(v) < 5e-16 else v


@njit(cache=True, nogil=True, inline="always")
def _add(out, base, n, x, y, min_dist):
    """``OffsetSegmentString::addPt``: append (x, y) unless within ``min_dist`` of the last."""
    if n > 0:
        dx = x - out[base + n - 1, 0]
        dy = y - out[base + n - 1, 1]
        if math.sqrt(dx * dx + dy * dy) < min_dist:
            return n
    out[base + n, 0] = x
    out[base + n, 1] = y
    return n + 1


@njit(cache=True, nogil=True)
def _cap(out, base, n, x0, y0, x1, y1, radius, min_dist):
    """``addLineEndCap(p0, p1)`` (round): left offset end, the fillet around p1, right offset
    end."""
    dx = x1 - x0
    dy = y1 - y0
    ln = math.sqrt(dx * dx + dy * dy)
    ux = radius * dx / ln
    uy = radius * dy / ln
    n = _add(out, base, n, x1 - uy, y1 + ux, min_dist)            # offsetL.p1
    angle = math.atan2(dy, dx)
    start = angle + math.pi / 2.0
    end = angle - math.pi / 2.0
    total = abs(start - end)
    quantum = math.pi / 2.0 / QUAD_SEGS
    n_segs = int(total / quantum + 0.5)
    if n_segs >= 1:
        inc = total / n_segs
        for i in range(n_segs):
            a = start + (-i) * inc
            n = _add(out, base, n, x1 + radius * _snap(math.cos(a)),
                     y1 + radius * _snap(math.sin(a)), min_dist)
    rx = -radius * dx / ln                                           # sideSign * distance * dx / len
    ry = -radius * dy / ln
    return _add(out, base, n, x1 - ry, y1 + rx, min_dist)          # offsetR.p1


@njit(cache=True, nogil=True)
def segment_ring(coords, s, radius, ring, base):
    """The buffer ring (open, first point not repeated) of the segment ``coords[s], coords[s +
    1]`` into ``ring[base:]`` (room for ``STRIDE`` points); its point count, 0 for a point (GEOS
    buffers a point as a disc, not made here)."""
    min_dist = radius * 1e-6
    x0 = coords[s, 0]
    y0 = coords[s, 1]
    x1 = coords[s + 1, 0]
    y1 = coords[s + 1, 1]
    dx = x1 - x0
    dy = y1 - y0
    ln = math.sqrt(dx * dx + dy * dy)
    if not ln > 0.0:
        return 0
    # left side: initSideSegments(p0, p1, LEFT); addLastSegment adds offset1.p1
    n = _add(ring, base, 0, x1 - radius * dy / ln, y1 + radius * dx / ln, min_dist)
    n = _cap(ring, base, n, x0, y0, x1, y1, radius, min_dist)
    # right side: the reversed segment's left offset end, then the cap around p0
    n = _add(ring, base, n, x0 + radius * dy / ln, y0 - radius * dx / ln, min_dist)
    return _cap(ring, base, n, x1, y1, x0, y0, radius, min_dist)


@njit(cache=True, nogil=True)
def segment_buffers(coords, off, idx, radius, stride, out, counts, lo, hi):
    """For ``lo <= k < hi``: the buffer ring (:func:`segment_ring`) of the segment
    ``coords[off[idx[k]]], coords[off[idx[k]] + 1]``, its point count into ``counts[k]`` and,
    when it has at most ``stride`` points, the points into ``out[k * stride:]`` (segments are
    independent: callers run ranges on threads)."""
    ring = np.empty((STRIDE, 2), np.float64)
    for k in range(lo, hi):
        n = segment_ring(coords, off[idx[k]], radius, ring, 0)
        counts[k] = n
        if n <= stride:
            base = k * stride
            for i in range(n):
                out[base + i, 0] = ring[i, 0]
                out[base + i, 1] = ring[i, 1]
