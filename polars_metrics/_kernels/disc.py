"""Point IoU kernels: two points buffered by a radius, as 64-gons (GEOS' buffer) or true circles.

The 64-gon of a point is ``centre + offsets`` where ``offsets`` are the GEOS buffer vertices of a
point at the origin (see ``kinds.point.disc_offsets``); a pair's intersection is clipped
exactly (Sutherland–Hodgman, both discs convex). ``mode`` 0 = 64-gons, 1 = circles.
"""
from __future__ import annotations

import math

import numpy as np

from polars_metrics._kernels._jit import njit
from polars_metrics._kernels.polygon import clip_area

POLYGON, CIRCLE = 0, 1


@njit(cache=True, nogil=True)
def _polygon_area(ox, oy):
    s = 0.0
    m = ox.shape[0]
    for i in range(m):
        j = i + 1 if i + 1 < m else 0
        s += ox[i] * oy[j] - ox[j] * oy[i]
    return abs(s) * 0.5


@njit(cache=True, nogil=True)
def circle_iou(d, radius):
    """IoU of two circles of one radius whose centres are ``d`` apart."""
    if d >= 2.0 * radius:
        return 0.0
    lens = 2.0 * radius * radius * math.acos(d / (2.0 * radius)) - 0.5 * d * math.sqrt(
        max(4.0 * radius * radius - d * d, 0.0))
    union = 2.0 * math.pi * radius * radius - lens
    if lens <= 0.0 or union <= 0.0:
        return 0.0
    return min(lens / union, 1.0)


# The steps of a pair's IoU shared with ``convex_clip._disc_iou`` (the same floats, clipped faster).
@njit(cache=True, nogil=True, inline="always")
def _centres_iou(ax, ay, bx, by, radius):
    """IoU of the true circles around two centres (``mode`` CIRCLE)."""
    dx = ax - bx
    dy = ay - by
    return circle_iou(math.sqrt(dx * dx + dy * dy), radius)


@njit(cache=True, nogil=True, inline="always")
def _place_discs(ax, ay, bx, by, ox, oy, ws):
    """The two 64-gons into the rows of ``ws`` (a x, a y, b x, b y); returns their vertex count.
    The offsets run clockwise (GEOS' buffer): clip with orientation -1."""
    m = ox.shape[0]
    for i in range(m):
        ws[0, i] = ax + ox[i]
        ws[1, i] = ay + oy[i]
        ws[2, i] = bx + ox[i]
        ws[3, i] = by + oy[i]
    return m


@njit(cache=True, nogil=True, inline="always")
def _disc_ratio(inter, area):
    """IoU of two 64-gons of area ``area`` from their intersection."""
    if inter <= 2e-12 * area:  # touching discs: rounding noise, not overlap
        return 0.0
    union = 2.0 * area - inter
    return min(inter / union, 1.0) if union > 0.0 else 0.0


@njit(cache=True, nogil=True)
def _disc_iou(ax, ay, bx, by, ox, oy, area, radius, mode, ws, buf):
    if mode == CIRCLE:
        return _centres_iou(ax, ay, bx, by, radius)
    m = _place_discs(ax, ay, bx, by, ox, oy, ws)
    inter = clip_area(ws[0], ws[1], m, ws[2], ws[3], m, -1, ax, ay, radius * (1.0 + 1e-12), buf)
    return _disc_ratio(inter, area)


@njit(cache=True, nogil=True, inline="always")
def _near(ax, ay, bx, by, reach):
    dx = ax - bx
    dy = ay - by
    return abs(dx) < reach and abs(dy) < reach and dx * dx + dy * dy < reach * reach


@njit(cache=True, nogil=True)
def count_disc_pairs(gt, gt_off, pd, pd_off, radius, counts, lo, hi):
    """``counts[r]``: candidate pairs (centres closer than two radii) of data rows
    ``lo <= r < hi`` (rows are independent: callers run ranges of them on threads)."""
    reach = 2.0 * radius
    for r in range(lo, hi):
        c = 0
        for g in range(gt_off[r], gt_off[r + 1]):
            for p in range(pd_off[r], pd_off[r + 1]):
                if _near(gt[g, 0], gt[g, 1], pd[p, 0], pd[p, 1], reach):
                    c += 1
        counts[r] = c


@njit(cache=True, nogil=True)
def fill_disc_pairs(gt, gt_off, pd, pd_off, radius, ox, oy, mode, pair_off, out_gt, out_pd, out_iou,
                    lo, hi):
    """Candidates of ``count_disc_pairs`` of data rows ``lo <= r < hi``, gt-major per row,
    with their IoU (may be 0 for 64-gons whose circles overlap only outside the polygons)."""
    area = _polygon_area(ox, oy)
    m = ox.shape[0]
    reach = 2.0 * radius
    for r in range(lo, hi):
        k = pair_off[r]
        if k == pair_off[r + 1]:
            continue
        ws = np.empty((4, m), np.float64)
        buf = np.empty((4, 3 * m + 4), np.float64)
        for g in range(gt_off[r], gt_off[r + 1]):
            for p in range(pd_off[r], pd_off[r + 1]):
                if not _near(gt[g, 0], gt[g, 1], pd[p, 0], pd[p, 1], reach):
                    continue
                out_gt[k] = g
                out_pd[k] = p
                out_iou[k] = _disc_iou(gt[g, 0], gt[g, 1], pd[p, 0], pd[p, 1], ox, oy, area,
                                       radius, mode, ws, buf)
                k += 1


@njit(cache=True, nogil=True)
def disc_iou_aligned(a, b, radius, ox, oy, mode, out, lo, hi):
    """``out[i]`` = IoU of a[i] with b[i] for ``lo <= i < hi`` (``out`` zero-filled by the
    caller: pairs too far apart are not written)."""
    area = _polygon_area(ox, oy)
    m = ox.shape[0]
    reach = 2.0 * radius
    ws = np.empty((4, m), np.float64)
    buf = np.empty((4, 3 * m + 4), np.float64)
    for i in range(lo, hi):
        if _near(a[i, 0], a[i, 1], b[i, 0], b[i, 1], reach):
            out[i] = _disc_iou(a[i, 0], a[i, 1], b[i, 0], b[i, 1], ox, oy, area, radius, mode,
                               ws, buf)
