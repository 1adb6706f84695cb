"""Pairs of single-segment lines in one pass per data row, no buffer kept.

``kinds.line`` used to buffer every line of both tables (66 points each: 150 MB at 5,000
images, whose first touch alone cost a fresh process about a second), measure the buffers, then
pair them. Here each data row's buffers are made (``line_buffer``) into a small reused scratch,
measured exactly as ``polygon.shape_measures`` measures them, and paired as
``polygon.count_candidates`` / ``fill_candidates`` and ``_planar.compact`` pair them (bounding
boxes overlapping with positive area, IoU by ``convex_clip``, pairs with IoU > 0 kept, gt-major)
— the same arithmetic on the same numbers, so the same pairs and IoUs.
"""
from __future__ import annotations

import math

import numpy as np

from polars_metrics._kernels._jit import njit
from polars_metrics._kernels.convex_clip import _convex_iou, convex_iou_scratch
from polars_metrics._kernels.line_buffer import STRIDE, segment_ring
from polars_metrics._kernels.polygon import _convex_sign, _overlap, _ring_area2


@njit(cache=True, nogil=True, inline="always")
def _to_segment2(px, py, x0, y0, x1, y1):
    """Squared distance from (px, py) to the segment (x0, y0)-(x1, y1) of positive length."""
    dx = x1 - x0
    dy = y1 - y0
    t = min(max(((px - x0) * dx + (py - y0) * dy) / (dx * dx + dy * dy), 0.0), 1.0)
    ex = x0 + t * dx - px
    ey = y0 + t * dy - py
    return ex * ex + ey * ey


@njit(cache=True, nogil=True)
def _apart(ca, sa, cb, sb, reach2):
    """True when the segments ``ca[sa], ca[sa + 1]`` and ``cb[sb], cb[sb + 1]`` are surely
    farther than ``sqrt(reach2)`` apart: their buffers of radius ``sqrt(reach2) / 2`` (inside
    the exact ones up to rounding, far below the margin the caller adds) are then disjoint and
    the pair has IoU 0. False when the segments may cross."""
    ax0 = ca[sa, 0]
    ay0 = ca[sa, 1]
    ax1 = ca[sa + 1, 0]
    ay1 = ca[sa + 1, 1]
    bx0 = cb[sb, 0]
    by0 = cb[sb, 1]
    bx1 = cb[sb + 1, 0]
    by1 = cb[sb + 1, 1]
    o1 = (ax1 - ax0) * (by0 - ay0) - (ay1 - ay0) * (bx0 - ax0)
    o2 = (ax1 - ax0) * (by1 - ay0) - (ay1 - ay0) * (bx1 - ax0)
    o3 = (bx1 - bx0) * (ay0 - by0) - (by1 - by0) * (ax0 - bx0)
    o4 = (bx1 - bx0) * (ay1 - by0) - (by1 - by0) * (ax1 - bx0)
    if not ((o1 > 0.0 and o2 > 0.0) or (o1 < 0.0 and o2 < 0.0)) and \
            not ((o3 > 0.0 and o4 > 0.0) or (o3 < 0.0 and o4 < 0.0)):
        return False  # the segments cross (or nearly)
    d2 = min(_to_segment2(ax0, ay0, bx0, by0, bx1, by1), _to_segment2(ax1, ay1, bx0, by0, bx1, by1))
    d2 = min(d2, _to_segment2(bx0, by0, ax0, ay0, ax1, ay1))
    return min(d2, _to_segment2(bx1, by1, ax0, ay0, ax1, ay1)) > reach2


@njit(cache=True, nogil=True)
def _measure(coords, va, vb, bbox, circle, i):
    """``polygon.shape_measures`` of the one-ring geometry ``coords[va:vb]``: bbox and circle
    into row ``i`` (no circle when ``circle`` has no rows: the clip polygons' are not used);
    returns (area, convex sign)."""
    x0 = np.inf
    y0 = np.inf
    x1 = -np.inf
    y1 = -np.inf
    a = 0.0
    r2 = abs(_ring_area2(coords, va, vb)) * 0.5
    a += r2
    for k in range(va, vb):
        x0 = min(x0, coords[k, 0])
        y0 = min(y0, coords[k, 1])
        x1 = max(x1, coords[k, 0])
        y1 = max(y1, coords[k, 1])
    area = max(a, 0.0)
    if not area > 0.0:
        x0 = np.inf
        y0 = np.inf
        x1 = -np.inf
        y1 = -np.inf
    bbox[i, 0] = x0
    bbox[i, 1] = y0
    bbox[i, 2] = x1
    bbox[i, 3] = y1
    convex = 0
    if area > 0.0:
        convex = _convex_sign(coords, va, vb)
    if circle.shape[0] == 0:
        return area, convex
    cx = 0.5 * (x0 + x1)
    cy = 0.5 * (y0 + y1)
    r = 0.0
    for k in range(va, vb):
        dx = coords[k, 0] - cx
        dy = coords[k, 1] - cy
        r = max(r, math.sqrt(dx * dx + dy * dy))
    circle[i, 0] = cx
    circle[i, 1] = cy
    circle[i, 2] = r * (1.0 + 1e-12) + 1e-300
    return area, convex


@njit(cache=True, nogil=True)
def _row_shapes(coords, off, i0, i1, radius, ring, vr, bbox, circle, area, convex):
    """Buffers and measures of lines ``i0 <= i < i1`` (rings at ``j * STRIDE``); False when a
    buffer is not a convex polygon of positive area (the caller then takes the general path)."""
    for j in range(i1 - i0):
        n = segment_ring(coords, off[i0 + j], radius, ring, j * STRIDE)
        vr[j, 0] = j * STRIDE
        vr[j, 1] = j * STRIDE + n
        area[j], convex[j] = _measure(ring, j * STRIDE, j * STRIDE + n, bbox, circle, j)
        if n < 3 or convex[j] == 0:
            return False
    return True


@njit(cache=True, nogil=True)
def _grown(a, used, cap):
    b = np.empty(cap, dtype=a.dtype)
    b[:used] = a[:used]
    return b


@njit(cache=True, nogil=True)
def segment_pairs_range(ca, oa, gt_off, cb, ob, pd_off, radius, counts, ok, r0, r1):
    """Pairs with IoU > 0 of data rows ``r0 <= r < r1`` between the buffers of two-point lines
    (gt line i: ``ca[oa[i]], ca[oa[i] + 1]``; likewise pd), gt-major per row: returns their gt,
    pd and IoU; sets ``counts[r]``, and ``ok[0] = False`` when a buffer was not convex (then
    nothing is valid: the caller takes the general path)."""
    mg = 1
    mp = 1
    for r in range(r0, r1):
        mg = max(mg, gt_off[r + 1] - gt_off[r])
        mp = max(mp, pd_off[r + 1] - pd_off[r])
    g_ring = np.empty((mg * STRIDE, 2), np.float64)
    p_ring = np.empty((mp * STRIDE, 2), np.float64)
    g_vr = np.empty((mg, 2), np.int64)
    p_vr = np.empty((mp, 2), np.int64)
    g_box = np.empty((mg, 4), np.float64)
    p_box = np.empty((mp, 4), np.float64)
    g_circ = np.empty((mg, 3), np.float64)
    p_circ = np.empty((0, 3), np.float64)  # _convex_iou uses the subject's (gt) only
    g_area = np.empty(mg, np.float64)
    p_area = np.empty(mp, np.float64)
    g_cvx = np.empty(mg, np.int64)
    p_cvx = np.empty(mp, np.int64)
    buf, ws, X, Y, NX, PV = convex_iou_scratch(4 * STRIDE + 8)
    size = 1024
    out_gt = np.empty(size, np.int64)
    out_pd = np.empty(size, np.int64)
    out_iou = np.empty(size, np.float64)
    reach2 = (2.0 * radius * (1.0 + 1e-6)) ** 2  # see _apart: margins far above rounding
    k = 0
    for r in range(r0, r1):
        g0, g1, p0, p1 = gt_off[r], gt_off[r + 1], pd_off[r], pd_off[r + 1]
        counts[r] = 0
        if g1 == g0 or p1 == p0:
            continue
        need = k + (g1 - g0) * (p1 - p0)
        if need > size:
            size = max(2 * size, need)
            out_gt = _grown(out_gt, k, size)
            out_pd = _grown(out_pd, k, size)
            out_iou = _grown(out_iou, k, size)
        good = _row_shapes(ca, oa, g0, g1, radius, g_ring, g_vr, g_box, g_circ, g_area, g_cvx)
        good = good and _row_shapes(cb, ob, p0, p1, radius, p_ring, p_vr, p_box, p_circ, p_area,
                                    p_cvx)
        if not good:
            ok[0] = False
            return out_gt[:0].copy(), out_pd[:0].copy(), out_iou[:0].copy()
        first = k
        for gi in range(g1 - g0):
            for pj in range(p1 - p0):
                if not _overlap(g_box[gi], p_box[pj]) or _apart(ca, oa[g0 + gi], cb,
                                                                 ob[p0 + pj], reach2):
                    continue
                v = _convex_iou(g_ring, g_vr[gi, 0], g_vr[gi, 1], g_circ[gi], g_area[gi], p_ring,
                                p_vr[pj, 0], p_vr[pj, 1], p_cvx[pj], p_area[pj], buf, ws, X, Y,
                                NX, PV)
                if v > 0.0:
                    out_gt[k] = g0 + gi
                    out_pd[k] = p0 + pj
                    out_iou[k] = v
                    k += 1
        counts[r] = k - first
    return out_gt[:k].copy(), out_pd[:k].copy(), out_iou[:k].copy()
