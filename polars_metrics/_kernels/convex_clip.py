"""Sutherland–Hodgman clipping of convex polygons in time proportional to what each clip edge
cuts, with the same floating-point results as ``polygon.clip_area``.

``polygon.clip_area`` passes every vertex of the subject through every clip edge: O(n m) per
pair. Here the subject is a doubly linked ring: for each clip edge (after the same
bounding-circle tests) the vertices outside it are found by walking downhill on the signed
distance from the last cut, and replaced by the same two intersection points, computed by the
same expressions from the same operands, that ``clip_area`` emits; the ring's first vertex
moves as ``clip_area``'s output order moves it, and the area is summed in the same order. So
the areas are identical, not merely close (tests/test_geom_fast_paths.py compares them).

The walk relies on convexity: on a convex ring the signed distance to a line rises and falls
once. Vertices within a tolerance far above rounding (``TOL`` times the scale of the distances)
of the line are all looked at; a second run of outside vertices, a walk that does not end or a
minimum near zero makes the pair fall back to ``polygon.clip_area`` — exact by definition.
"""
from __future__ import annotations

import numpy as np

from polars_metrics._kernels._jit import njit
from polars_metrics._kernels.clip_steps import (
    _CLIP,
    _EMPTY,
    _clip_edge,
    _convex_ratio,
    _crossing,
    _fan_term,
    _gather_pair,
)
from polars_metrics._kernels.clip_steps import _side as _side_xy
from polars_metrics._kernels.disc import (
    CIRCLE,
    _centres_iou,
    _disc_ratio,
    _near,
    _place_discs,
    _polygon_area,
)
from polars_metrics._kernels.polygon import _overlap, clip_area

TOL = 1e-9


@njit(cache=True, nogil=True, inline="always")
def _side(X, Y, v, orient, ex, ey, px, py):
    return _side_xy(X[v], Y[v], orient, ex, ey, px, py)


@njit(cache=True, nogil=True)
def _find_outside(X, Y, NX, PV, cur, count, orient, ex, ey, px, py, tol):
    """(vertex, status): status 0, a vertex outside the clip line (signed distance < 0); 1, none
    outside (the minimum, the vertex returned, is above ``2 tol``); 2, unsure (the caller falls
    back). The walk starts at ``cur`` and goes downhill."""
    v = cur
    sv = _side(X, Y, v, orient, ex, ey, px, py)
    if sv < 0.0:
        return v, 0
    steps = 0
    direction = 0  # 1 forward, -1 backward
    while True:
        moved = False
        for d in (1, -1):
            if direction != 0 and d != direction:
                continue
            w = v
            while True:  # the next vertex in direction d whose distance differs by > tol
                w = NX[w] if d == 1 else PV[w]
                steps += 1
                if steps > 2 * count + 4 or w == v:
                    return v, 2
                sw = _side(X, Y, w, orient, ex, ey, px, py)
                if sw < 0.0:
                    return w, 0
                if abs(sw - sv) > tol:
                    break
            if sw < sv:
                v = w
                sv = sw
                direction = d
                moved = True
                break
        if not moved:
            break
    if sv > 2.0 * tol:
        return v, 1
    return v, 2


@njit(cache=True, nogil=True)
def clip_area_fast(sx, sy, n, qx, qy, m, orient, ccx, ccy, cr, buf, X, Y, NX, PV):
    """``polygon.clip_area`` (same arguments, same result); ``X``, ``Y``, ``NX``, ``PV``:
    scratch of at least ``n + 2 m + 4`` entries."""
    for i in range(n):
        X[i] = sx[i]
        Y[i] = sy[i]
        NX[i] = i + 1 if i + 1 < n else 0
        PV[i] = i - 1 if i > 0 else n - 1
    head = 0
    count = n
    top = n
    cur = 0
    for j in range(m):
        action, px, py, ex, ey, length = _clip_edge(qx, qy, m, j, orient, ccx, ccy, cr)
        if action == _EMPTY:
            return 0.0
        if action != _CLIP:
            continue
        scale = cr + abs(ccx - px) + abs(ccy - py) + abs(px) + abs(py) + abs(ccx) + abs(ccy)
        tol = TOL * length * scale
        v, status = _find_outside(X, Y, NX, PV, cur, count, orient, ex, ey, px, py, tol)
        if status == 2:
            return clip_area(sx, sy, n, qx, qy, m, orient, ccx, ccy, cr, buf)
        if status == 1:
            cur = v  # the extreme vertex: the next clip edge's is near it
            continue
        # the run of outside vertices a..b around v, the inside vertices p (before) and q (after)
        a = v
        k = 1
        while True:
            p = PV[a]
            if p == v:
                return 0.0  # every vertex outside: clip_area's output is empty
            if not _side(X, Y, p, orient, ex, ey, px, py) < 0.0:
                break
            a = p
            k += 1
        b = v
        while True:
            q = NX[b]
            if not _side(X, Y, q, orient, ex, ey, px, py) < 0.0:
                break
            b = q
            k += 1
        # no other outside vertex: beyond p (backward) and q (forward) every distance up to
        # > tol must be >= 0
        for d in (-1, 1):
            w = p if d == -1 else q
            stop = q if d == -1 else p
            steps = 0
            while _side(X, Y, w, orient, ex, ey, px, py) <= tol:
                w = PV[w] if d == -1 else NX[w]
                steps += 1
                if w == stop or steps > count:
                    break
                if _side(X, Y, w, orient, ex, ey, px, py) < 0.0:
                    return clip_area(sx, sy, n, qx, qy, m, orient, ccx, ccy, cr, buf)
        new_count = count - k + 2
        if new_count < 3:
            return 0.0
        # exit point between p and a, entry point between b and q: clip_area's expressions
        e = top
        X[e], Y[e] = _crossing(_side(X, Y, p, orient, ex, ey, px, py),
                               _side(X, Y, a, orient, ex, ey, px, py), X[p], Y[p], X[a], Y[a])
        en = top + 1
        X[en], Y[en] = _crossing(_side(X, Y, b, orient, ex, ey, px, py),
                                 _side(X, Y, q, orient, ex, ey, px, py), X[b], Y[b], X[q], Y[q])
        top += 2
        # the first vertex of clip_area's output
        if head == a:
            head = e
        elif head == q:
            head = en
        else:
            w = a
            inside_chain = False
            for _ in range(k):
                if w == head:
                    inside_chain = True
                    break
                w = NX[w]
            if inside_chain:
                head = en
        NX[p] = e
        PV[e] = p
        NX[e] = en
        PV[en] = e
        NX[en] = q
        PV[q] = en
        count = new_count
        cur = en
    x0 = X[head]
    y0 = Y[head]
    s = 0.0
    w = NX[head]
    for _ in range(count - 2):
        wn = NX[w]
        s += _fan_term(x0, y0, X[w], Y[w], X[wn], Y[wn])
        w = wn
    return abs(s) * 0.5


# --- the pair kernels of kinds.point and kinds.line on the fast clip -----------------------------
@njit(cache=True, nogil=True)
def _disc_iou(ax, ay, bx, by, ox, oy, area, radius, mode, ws, buf, X, Y, NX, PV):
    """``disc._disc_iou`` on :func:`clip_area_fast`."""
    if mode == CIRCLE:
        return _centres_iou(ax, ay, bx, by, radius)
    m = _place_discs(ax, ay, bx, by, ox, oy, ws)
    inter = clip_area_fast(ws[0], ws[1], m, ws[2], ws[3], m, -1, ax, ay, radius * (1.0 + 1e-12),
                           buf, X, Y, NX, PV)
    return _disc_ratio(inter, area)


@njit(cache=True, nogil=True)
def fill_disc_pairs(gt, gt_off, pd, pd_off, radius, ox, oy, mode, pair_off, out_gt, out_pd, out_iou,
                    lo, hi):
    """``disc.fill_disc_pairs`` (same arguments, same results) on :func:`clip_area_fast`."""
    area = _polygon_area(ox, oy)
    m = ox.shape[0]
    reach = 2.0 * radius
    # scratch for every pair of the range (each IoU writes what it reads)
    ws = np.empty((4, m), np.float64)
    buf = np.empty((4, 3 * m + 4), np.float64)
    X = np.empty(3 * m + 8, np.float64)
    Y = np.empty(3 * m + 8, np.float64)
    NX = np.empty(3 * m + 8, np.int64)
    PV = np.empty(3 * m + 8, np.int64)
    for r in range(lo, hi):
        k = pair_off[r]
        if k == pair_off[r + 1]:
            continue
        for g in range(gt_off[r], gt_off[r + 1]):
            for p in range(pd_off[r], pd_off[r + 1]):
                if not _near(gt[g, 0], gt[g, 1], pd[p, 0], pd[p, 1], reach):
                    continue
                out_gt[k] = g
                out_pd[k] = p
                out_iou[k] = _disc_iou(gt[g, 0], gt[g, 1], pd[p, 0], pd[p, 1], ox, oy, area,
                                       radius, mode, ws, buf, X, Y, NX, PV)
                k += 1


@njit(cache=True, nogil=True)
def convex_iou_scratch(cap):
    """The scratch arrays of :func:`_convex_iou` (``buf, ws, X, Y, NX, PV``) for polygons of up
    to ``cap`` vertices; each call writes what it reads, so one set serves many pairs."""
    return (np.empty((4, cap), np.float64), np.empty((4, cap), np.float64),
            np.empty(2 * cap, np.float64), np.empty(2 * cap, np.float64),
            np.empty(2 * cap, np.int64), np.empty(2 * cap, np.int64))


@njit(cache=True, nogil=True)
def _convex_iou(coords_a, va0, va1, circ_a, area_a, coords_b, vb0, vb1, orient_b, area_b, buf, ws,
                X, Y, NX, PV):
    """``polygon._convex_iou`` on :func:`clip_area_fast`."""
    n, m = _gather_pair(coords_a, va0, va1, coords_b, vb0, vb1, ws)
    inter = clip_area_fast(ws[0], ws[1], n, ws[2], ws[3], m, orient_b, circ_a[0], circ_a[1],
                           circ_a[2], buf, X, Y, NX, PV)
    return _convex_ratio(inter, area_a, area_b)


@njit(cache=True, nogil=True)
def fill_candidates(gt_coords, gt_bbox, gt_area, gt_convex, gt_circle, gt_vrange, gt_off,
                    pd_coords, pd_bbox, pd_area, pd_convex, pd_vrange, pd_off,
                    pair_off, cap, out_gt, out_pd, out_iou, lo, hi):
    """``polygon.fill_candidates`` (same arguments, same results) on :func:`clip_area_fast`."""
    buf, ws, X, Y, NX, PV = convex_iou_scratch(cap)  # for every pair of the range
    for r in range(lo, hi):
        k = pair_off[r]
        if k == pair_off[r + 1]:
            continue
        for g in range(gt_off[r], gt_off[r + 1]):
            for p in range(pd_off[r], pd_off[r + 1]):
                if not _overlap(gt_bbox[g], pd_bbox[p]):
                    continue
                out_gt[k] = g
                out_pd[k] = p
                if gt_convex[g] != 0 and pd_convex[p] != 0:
                    out_iou[k] = _convex_iou(gt_coords, gt_vrange[g, 0], gt_vrange[g, 1],
                                             gt_circle[g], gt_area[g], pd_coords, pd_vrange[p, 0],
                                             pd_vrange[p, 1], pd_convex[p], pd_area[p], buf, ws,
                                             X, Y, NX, PV)
                else:
                    out_iou[k] = np.nan
                k += 1
