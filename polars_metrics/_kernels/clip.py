"""Clipping COCO polygons to their image before ``rleFrPoly`` rasterizes them (see
:func:`clip_to_images`). No polars here."""
from __future__ import annotations

import numpy as np

from polars_metrics._kernels._jit import njit


def _writeable(a: np.ndarray, dtype) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=dtype)
    return a if a.flags.writeable else a.copy()


# --- clipping polygons to the image before rasterizing ------------------------------------------
@njit(cache=True)
def _clip_half(xs, ys, n, axis, bound, keep_below, ox, oy):
    """Sutherland–Hodgman against one axis-parallel half-plane; returns the new vertex count."""
    m = 0
    for i in range(n):
        j = i - 1 if i > 0 else n - 1
        ci = xs[i] if axis == 0 else ys[i]
        cj = xs[j] if axis == 0 else ys[j]
        in_i = ci <= bound if keep_below else ci >= bound
        in_j = cj <= bound if keep_below else cj >= bound
        if in_i != in_j:
            t = (bound - cj) / (ci - cj)
            if axis == 0:
                ox[m] = bound
                oy[m] = ys[j] + t * (ys[i] - ys[j])
            else:
                ox[m] = xs[j] + t * (xs[i] - xs[j])
                oy[m] = bound
            m += 1
        if in_i:
            ox[m] = xs[i]
            oy[m] = ys[i]
            m += 1
    return m


@njit(cache=True)
def _clip_polygons(coords, poly_ptr, x_lo, x_hi, y_lo, y_hi, need, out, out_ptr):
    """Write every polygon (x, y interleaved) to ``out``: clipped to its rectangle where
    ``need``, else copied; ``out_ptr`` receives the new offsets. ``out`` must hold
    ``sum(2 * (2 * k + 8))`` values for k-vertex polygons."""
    o = 0
    out_ptr[0] = 0
    for p in range(poly_ptr.size - 1):
        a = poly_ptr[p]
        k = (poly_ptr[p + 1] - a) // 2
        if not need[p] or k == 0:
            for i in range(2 * k):
                out[o + i] = coords[a + i]
            o += 2 * k
            out_ptr[p + 1] = o
            continue
        cap = 2 * k + 8
        xs = np.empty(cap, np.float64)
        ys = np.empty(cap, np.float64)
        tx = np.empty(cap, np.float64)
        ty = np.empty(cap, np.float64)
        for i in range(k):
            xs[i] = coords[a + 2 * i]
            ys[i] = coords[a + 2 * i + 1]
        n = k
        n = _clip_half(xs, ys, n, 0, x_lo[p], False, tx, ty)
        n = _clip_half(tx, ty, n, 0, x_hi[p], True, xs, ys)
        n = _clip_half(xs, ys, n, 1, y_lo[p], False, tx, ty)
        n = _clip_half(tx, ty, n, 1, y_hi[p], True, xs, ys)
        for i in range(n):
            out[o + 2 * i] = xs[i]
            out[o + 2 * i + 1] = ys[i]
        o += 2 * n
        out_ptr[p + 1] = o


def clip_to_images(coords, poly_ptr, obj_ptr, heights, widths):
    """Polygons reaching further than the image's size beyond its border, clipped to the image
    grown by that margin (``[-m, w + m] x [-m, h + m]``, ``m = max(h, w) + 8``).

    ``rleFrPoly`` sizes its buffers by the polygon's extent, not the image's: a 4-vertex
    polygon to x = 1e7 on a 10 × 10 image takes 3.3 GB in pycocotools. After clipping the work
    is bounded by the image. Polygons inside the margin — every real one — are untouched, so
    their masks stay identical to pycocotools'; a clipped one can differ from pycocotools by the
    rounding of its new edges' slopes (at most a pixel where a clipped edge crosses the image).
    An odd trailing value is dropped first, as ``frPyObjects`` does.
    """
    coords = _writeable(coords, np.float64)
    poly_ptr = _writeable(poly_ptr, np.int64)
    obj_of_poly = np.repeat(np.arange(obj_ptr.size - 1), np.diff(obj_ptr))
    h = np.asarray(heights, np.float64)[obj_of_poly]
    w = np.asarray(widths, np.float64)[obj_of_poly]
    margin = np.maximum(h, w) + 8.0
    lens = (np.diff(poly_ptr) // 2) * 2
    if coords.size == 0 or poly_ptr.size < 2:
        return coords, poly_ptr
    even = np.zeros(coords.size, bool)
    starts = poly_ptr[:-1]
    idx = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens) + np.arange(lens.sum())
    even[idx] = True
    xy = coords[even]
    ptr = np.zeros(poly_ptr.size, np.int64)
    np.cumsum(lens, out=ptr[1:])
    xs, ys = xy[0::2], xy[1::2]
    vp = np.repeat(np.arange(poly_ptr.size - 1), lens // 2)
    out_x = (xs < -margin[vp]) | (xs > w[vp] + margin[vp])
    out_y = (ys < -margin[vp]) | (ys > h[vp] + margin[vp])
    need = np.zeros(poly_ptr.size - 1, np.bool_)
    need[vp[out_x | out_y]] = True
    if not need.any():
        return xy, ptr
    out = np.empty(int((2 * (lens + 8)).sum()) + 2, np.float64)
    out_ptr = np.zeros(poly_ptr.size, np.int64)
    _clip_polygons(xy, ptr, -margin, w + margin, -margin, h + margin, need, out, out_ptr)
    return out[:out_ptr[-1]].copy(), out_ptr
