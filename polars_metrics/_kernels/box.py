"""Box IoU kernels. Boxes are float64 rows (x0, y0, x1, y1); continuous area, no +1 convention."""
from __future__ import annotations

import numpy as np

from polars_metrics._kernels._jit import njit


@njit(cache=True, nogil=True, inline="always")
def box_iou_one(ax0, ay0, ax1, ay1, bx0, by0, bx1, by1):
    """IoU of two boxes; 0 when they do not overlap or the union is empty (zero-area boxes)."""
    iw = min(ax1, bx1) - max(ax0, bx0)
    if iw <= 0.0:
        return 0.0
    ih = min(ay1, by1) - max(ay0, by0)
    if ih <= 0.0:
        return 0.0
    inter = iw * ih
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    if union <= 0.0:
        return 0.0
    return inter / union


@njit(cache=True, nogil=True)
def box_iou_aligned_range(a, b, out, lo, hi):
    """out[i] = IoU of a[i] with b[i] for lo <= i < hi (row-aligned pairs)."""
    for i in range(lo, hi):
        out[i] = box_iou_one(a[i, 0], a[i, 1], a[i, 2], a[i, 3], b[i, 0], b[i, 1], b[i, 2], b[i, 3])


@njit(cache=True, nogil=True)
def box_pairs_range(gt, gt_idx, gt_off, pd, pd_idx, pd_off, counts, r0, r1):
    """Pairs with IoU > 0 of data rows r0 <= r < r1, gt-major, in one pass: returns their gt,
    pd and IoU (each IoU computed once) and sets counts[r].

    The outputs are allocated once with room for every cell of the range's grids (up to
    ``PAIR_CAP`` cells; beyond, they grow between data rows, never inside the grid loops) and
    returned as views of their filled part: pages the grid loops never write are never touched,
    so the only memory the kernel faults in is the pairs' (no growth copies, no final copy).

    Annotation i (positions in data-row order, CSR ``*_off``) is box ``gt[gt_idx[i]]``, or
    ``gt[i]`` when ``gt_idx`` is empty (likewise for pd): the boxes are read in place, the
    boxes of one row copied to a small reused buffer, never the whole column."""
    mg = mp = 1
    cells = 0
    for r in range(r0, r1):
        mg = max(mg, gt_off[r + 1] - gt_off[r])
        mp = max(mp, pd_off[r + 1] - pd_off[r])
        cells += (gt_off[r + 1] - gt_off[r]) * (pd_off[r + 1] - pd_off[r])
    cap = max(1024, min(cells, PAIR_CAP))
    out_gt = np.empty(cap, dtype=np.int32)  # annotation positions fit int32 (prepare checks)
    out_pd = np.empty(cap, dtype=np.int32)
    out_iou = np.empty(cap, dtype=np.float64)
    g_box = np.empty((mg, 4), dtype=np.float64)
    p_box = np.empty((mp, 4), dtype=np.float64)
    k = 0
    for r in range(r0, r1):
        g0, g1, p0, p1 = gt_off[r], gt_off[r + 1], pd_off[r], pd_off[r + 1]
        need = k + (g1 - g0) * (p1 - p0)
        if need == k:
            counts[r] = 0
            continue
        if need > cap:
            cap = max(2 * cap, need)
            out_gt = _grown(out_gt, k, cap)
            out_pd = _grown(out_pd, k, cap)
            out_iou = _grown(out_iou, k, cap)
        _row_boxes(gt, gt_idx, g0, g1, g_box)
        _row_boxes(pd, pd_idx, p0, p1, p_box)
        first = k
        k = _row_box_pairs(g_box, g0, g1, p_box, p0, p1, out_gt, out_pd, out_iou, k)
        counts[r] = k - first
    return out_gt[:k], out_pd[:k], out_iou[:k]


PAIR_CAP = 1 << 26  # grid cells reserved up front (1.5 GB of address space, touched as filled)


@njit(cache=True, nogil=True)
def _row_boxes(boxes, idx, i0, i1, out):
    """out[j] = box of annotation i0 + j, for i0 <= i < i1."""
    if idx.shape[0] == 0:
        for j in range(i1 - i0):
            for c in range(4):
                out[j, c] = boxes[i0 + j, c]
    else:
        for j in range(i1 - i0):
            src = idx[i0 + j]
            for c in range(4):
                out[j, c] = boxes[src, c]


@njit(cache=True, nogil=True)
def _row_box_pairs(gt, g0, g1, pd, p0, p1, out_gt, out_pd, out_iou, k):
    """The pairs of one row; ``gt`` / ``pd`` hold the row's boxes from row 0."""
    n_p = p1 - p0
    for gi in range(g1 - g0):
        ax0, ay0, ax1, ay1 = gt[gi, 0], gt[gi, 1], gt[gi, 2], gt[gi, 3]
        for pj in range(n_p):
            v = box_iou_one(ax0, ay0, ax1, ay1, pd[pj, 0], pd[pj, 1], pd[pj, 2], pd[pj, 3])
            if v > 0.0:
                out_gt[k] = g0 + gi
                out_pd[k] = p0 + pj
                out_iou[k] = v
                k += 1
    return k


@njit(cache=True, nogil=True)
def _grown(a, used, cap):
    b = np.empty(cap, dtype=a.dtype)
    b[:used] = a[:used]
    return b


COORD_LIMIT = 1e150  # as polars_metrics._arrays.COORD_LIMIT (kernels import nothing above them)
MIN_AREA = 1e-290  # a positive area below this has underflowed, or nearly


@njit(cache=True, nogil=True)
def box_problems(boxes):
    """Per box: 1 if a coordinate is NaN or infinite, 2 if x1 < x0 or y1 < y0, 3 if a
    coordinate is beyond ±COORD_LIMIT (areas would overflow), 4 if both sides are positive but
    the area is below MIN_AREA (it underflows), else 0."""
    n = boxes.shape[0]
    out = np.zeros(n, dtype=np.int8)
    for i in range(n):
        x0, y0, x1, y1 = boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]
        if not (np.isfinite(x0) and np.isfinite(y0) and np.isfinite(x1) and np.isfinite(y1)):
            out[i] = 1
        elif x1 < x0 or y1 < y0:
            out[i] = 2
        elif max(max(abs(x0), abs(y0)), max(abs(x1), abs(y1))) > COORD_LIMIT:
            out[i] = 3
        elif x1 > x0 and y1 > y0 and (x1 - x0) * (y1 - y0) < MIN_AREA:
            out[i] = 4
    return out
