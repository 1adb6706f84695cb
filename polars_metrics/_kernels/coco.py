"""Numba kernels reproducing pycocotools ``COCOeval`` (``computeIoU``, ``evaluateImg``,
``accumulate``) over flat arrays.

Layout shared by the kernels
----------------------------
* A *group* is one (image, category) pair of ``evaluateImg`` (one image when ``useCats=0``).
  ``grp_dt_ptr`` / ``grp_dt_idx``: the detections of group ``g`` are the detection rows
  ``grp_dt_idx[grp_dt_ptr[g]:grp_dt_ptr[g+1]]`` in score order (descending, ties in input
  order, i.e. ``np.argsort(-score, kind="mergesort")``). ``grp_gt_ptr`` / ``grp_gt_idx``: its
  ground truths in input order.
* Only the first ``max_det`` detections of a group are evaluated (``maxDets[-1]``). The IoU
  block of group ``g`` is ``iou[iou_ptr[g]:iou_ptr[g+1]]``, row-major ``D x G`` with
  ``D = min(n_dt, max_det)`` rows in score order and ``G`` columns in ground-truth input order.
* Detections are also laid out in *accumulate order*: by category, then score descending, then
  image, then within-image rank — the order pycocotools' ``accumulate`` obtains by
  concatenating the images' score-sorted detections and sorting with a stable mergesort.
  ``dt_pos[row]`` is a detection row's position in that order; ``code[pos, a, t]`` holds the
  result of evaluating it at area range ``a`` and IoU threshold ``t``: bit 0 = ``dtMatches != 0``
  (matched to a ground truth whose id is not 0), bit 1 = ``dtIgnore``.

Thresholds and ranges always come in as arrays; nothing here reads a global.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

MATCHED = np.uint8(1)
IGNORED = np.uint8(2)


@njit(cache=True, parallel=True)
def box_iou_groups(
    dt_xywh: np.ndarray,
    gt_xywh: np.ndarray,
    gt_crowd: np.ndarray,
    grp_dt_ptr: np.ndarray,
    grp_dt_idx: np.ndarray,
    grp_gt_ptr: np.ndarray,
    grp_gt_idx: np.ndarray,
    max_det: int,
    iou_ptr: np.ndarray,
) -> np.ndarray:
    """``maskUtils.iou`` of boxes for every group's ``D x G`` block (``bbIou`` arithmetic).

    Boxes are COCO ``x, y, w, h``; the operations are ordered exactly as in ``maskApi.c``
    (``x + w`` for the far edge, ``w * h`` for the area, ``da + ga - i`` for the union) so
    the result is bit-identical. A crowd ground truth uses the detection area as the union.
    """
    n_grp = grp_dt_ptr.size - 1
    out = np.zeros(iou_ptr[n_grp], np.float64)
    for g in prange(n_grp):
        d0 = grp_dt_ptr[g]
        nd = min(grp_dt_ptr[g + 1] - d0, max_det)
        g0 = grp_gt_ptr[g]
        ng = grp_gt_ptr[g + 1] - g0
        base = iou_ptr[g]
        for jj in range(ng):
            j = grp_gt_idx[g0 + jj]
            gx = gt_xywh[j, 0]
            gy = gt_xywh[j, 1]
            gw = gt_xywh[j, 2]
            gh = gt_xywh[j, 3]
            ga = gw * gh
            gxe = gw + gx
            gye = gh + gy
            crowd = gt_crowd[j]
            for dd in range(nd):
                d = grp_dt_idx[d0 + dd]
                dx = dt_xywh[d, 0]
                dy = dt_xywh[d, 1]
                dw = dt_xywh[d, 2]
                dh = dt_xywh[d, 3]
                w = min(dw + dx, gxe) - max(dx, gx)
                if w <= 0:
                    continue
                h = min(dh + dy, gye) - max(dy, gy)
                if h <= 0:
                    continue
                inter = w * h
                da = dw * dh
                u = da if crowd else da + ga - inter
                out[base + dd * ng + jj] = inter / u
    return out


@njit(cache=True, parallel=True)
def coco_match(
    iou: np.ndarray,
    iou_ptr: np.ndarray,
    grp_dt_ptr: np.ndarray,
    grp_dt_idx: np.ndarray,
    grp_gt_ptr: np.ndarray,
    grp_gt_idx: np.ndarray,
    max_det: int,
    gt_area: np.ndarray,
    gt_ignore: np.ndarray,
    gt_crowd: np.ndarray,
    gt_id_zero: np.ndarray,
    dt_area: np.ndarray,
    dt_pos: np.ndarray,
    area_lo: np.ndarray,
    area_hi: np.ndarray,
    iou_thrs: np.ndarray,
    keep_area: int,
    code: np.ndarray,
    match_gt: np.ndarray,
    match_ignore: np.ndarray,
) -> None:
    """``evaluateImg`` for every group, every area range and every IoU threshold.

    For each detection in score order, the best still-free ground truth with
    ``iou >= min(t, 1 - 1e-10)`` is taken (ties: the later one in the ignore-last order);
    crowd ground truths stay free; once a regular ground truth is matched, ignored ones are
    not considered. ``gt_ignore`` is pycocotools' ``ignore`` flag (its ``iscrowd``); ground
    truths whose ``area`` is outside ``[area_lo[a], area_hi[a]]`` are ignored too. Unmatched
    detections (or those matched to a ground truth with id 0, which pycocotools cannot tell
    from "unmatched") whose area is outside the range are ignored.

    Writes ``code[dt_pos[row], a, t]`` (see module doc) and, at area index ``keep_area``,
    ``match_gt[t, row]`` (matched ground-truth row or -1) and ``match_ignore[t, row]``.
    """
    n_grp = grp_dt_ptr.size - 1
    n_area = area_lo.size
    n_thr = iou_thrs.size
    for g in prange(n_grp):
        d0 = grp_dt_ptr[g]
        nd = min(grp_dt_ptr[g + 1] - d0, max_det)
        if nd == 0:
            continue
        g0 = grp_gt_ptr[g]
        ng = grp_gt_ptr[g + 1] - g0
        base = iou_ptr[g]
        gord = np.empty(ng, np.int64)  # column (input position) of each ignore-last slot
        gig = np.empty(ng, np.bool_)  # ignore flag per ignore-last slot
        taken = np.empty(ng, np.bool_)
        for a in range(n_area):
            lo = area_lo[a]
            hi = area_hi[a]
            # stable partition: regular ground truths first, ignored ones last
            s = 0
            for jj in range(ng):
                j = grp_gt_idx[g0 + jj]
                if not (gt_ignore[j] or gt_area[j] < lo or gt_area[j] > hi):
                    gord[s] = jj
                    gig[s] = False
                    s += 1
            for jj in range(ng):
                j = grp_gt_idx[g0 + jj]
                if gt_ignore[j] or gt_area[j] < lo or gt_area[j] > hi:
                    gord[s] = jj
                    gig[s] = True
                    s += 1
            for t in range(n_thr):
                thr = min(iou_thrs[t], 1 - 1e-10)
                taken[:] = False
                for dd in range(nd):
                    row = grp_dt_idx[d0 + dd]
                    best = thr
                    m = -1
                    rbase = base + dd * ng
                    for q in range(ng):
                        jj = gord[q]
                        if taken[q] and not gt_crowd[grp_gt_idx[g0 + jj]]:
                            continue
                        if m > -1 and not gig[m] and gig[q]:
                            break
                        v = iou[rbase + jj]
                        if v < best:
                            continue
                        best = v
                        m = q
                    out_of_range = dt_area[row] < lo or dt_area[row] > hi
                    c = np.uint8(0)
                    mrow = -1
                    if m == -1:
                        if out_of_range:
                            c = IGNORED
                    else:
                        taken[m] = True
                        mrow = grp_gt_idx[g0 + gord[m]]
                        ign = gig[m]
                        if gt_id_zero[mrow]:
                            ign = ign or out_of_range  # dtMatches == 0: looks unmatched
                        else:
                            c = MATCHED
                        if ign:
                            c |= IGNORED
                    code[dt_pos[row], a, t] = c
                    if a == keep_area:
                        match_gt[t, row] = mrow
                        match_ignore[t, row] = (c & IGNORED) != 0


@njit(cache=True)
def _search_left(rc: np.ndarray, n: int, v: float) -> int:
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if rc[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, parallel=True)
def coco_accumulate(
    code: np.ndarray,
    score_acc: np.ndarray,
    rank_acc: np.ndarray,
    cat_ptr: np.ndarray,
    npig: np.ndarray,
    max_dets: np.ndarray,
    rec_thrs: np.ndarray,
    precision: np.ndarray,
    recall: np.ndarray,
    scores: np.ndarray,
) -> None:
    """``accumulate``: precision / recall / score curves per (category, area, maxDet, IoU).

    Detections of category ``k`` are positions ``cat_ptr[k]:cat_ptr[k+1]`` of the accumulate
    order; only those with within-image rank ``< max_dets[m]`` take part. ``npig[k, a]`` is the
    number of non-ignored ground truths. Cumulative TP / FP counts give recall ``tp / npig``
    and precision ``tp / (fp + tp + eps)``; precision is made monotone from the right, then
    read at the first detection whose recall reaches each recall threshold (left
    ``searchsorted``); thresholds past the last detection keep 0. Cells with ``npig == 0`` are
    not written (the caller fills -1).
    """
    n_cat = cat_ptr.size - 1
    n_area = code.shape[1]
    n_thr = code.shape[2]
    n_md = max_dets.size
    n_rec = rec_thrs.size
    eps = np.spacing(1.0)
    for k in prange(n_cat):
        p0 = cat_ptr[k]
        n_k = cat_ptr[k + 1] - p0
        sel = np.empty(n_k, np.int64)
        rc = np.empty(n_k, np.float64)
        pr = np.empty(n_k, np.float64)
        for m in range(n_md):
            md = max_dets[m]
            nd = 0
            for i in range(n_k):
                if rank_acc[p0 + i] < md:
                    sel[nd] = p0 + i
                    nd += 1
            for a in range(n_area):
                ng = npig[k, a]
                if ng == 0:
                    continue
                fng = np.float64(ng)
                for t in range(n_thr):
                    tp = 0.0
                    fp = 0.0
                    for i in range(nd):
                        c = code[sel[i], a, t]
                        if (c & IGNORED) == 0:
                            if c & MATCHED:
                                tp += 1.0
                            else:
                                fp += 1.0
                        rc[i] = tp / fng
                        pr[i] = tp / (fp + tp + eps)
                    recall[t, k, a, m] = rc[nd - 1] if nd > 0 else 0.0
                    for i in range(nd - 1, 0, -1):
                        if pr[i] > pr[i - 1]:
                            pr[i - 1] = pr[i]
                    for r in range(n_rec):
                        precision[t, r, k, a, m] = 0.0
                        scores[t, r, k, a, m] = 0.0
                    for r in range(n_rec):
                        pi = _search_left(rc, nd, rec_thrs[r])
                        if pi >= nd:
                            break  # pycocotools' bare except: later thresholds keep 0
                        precision[t, r, k, a, m] = pr[pi]
                        scores[t, r, k, a, m] = score_acc[sel[pi]]


@njit(cache=True)
def stable_counting_order(keys: np.ndarray, n_keys: int, order: np.ndarray) -> np.ndarray:
    """Stable sort of ``order`` by ``keys[order]`` (integer keys in ``[0, n_keys)``), O(n + k)."""
    cnt = np.zeros(n_keys + 1, np.int64)
    for i in range(order.size):
        cnt[keys[order[i]] + 1] += 1
    for k in range(n_keys):
        cnt[k + 1] += cnt[k]
    out = np.empty(order.size, np.int64)
    for i in range(order.size):
        k = keys[order[i]]
        out[cnt[k]] = order[i]
        cnt[k] += 1
    return out


@njit(cache=True)
def group_layout(
    dt_grp_sorted: np.ndarray, gt_grp_sorted: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Union of the (sorted) group keys of detections and ground truths.

    Returns ``keys`` and CSR pointers ``dt_ptr``, ``gt_ptr`` into the sorted arrays, plus the
    within-group rank of every sorted detection.
    """
    nd = dt_grp_sorted.size
    ng = gt_grp_sorted.size
    keys = np.empty(nd + ng, np.int64)
    dt_ptr = np.empty(nd + ng + 1, np.int64)
    gt_ptr = np.empty(nd + ng + 1, np.int64)
    rank = np.empty(nd, np.int64)
    i = 0
    j = 0
    n = 0
    while i < nd or j < ng:
        if j >= ng or (i < nd and dt_grp_sorted[i] <= gt_grp_sorted[j]):
            key = dt_grp_sorted[i]
        else:
            key = gt_grp_sorted[j]
        keys[n] = key
        dt_ptr[n] = i
        gt_ptr[n] = j
        r = 0
        while i < nd and dt_grp_sorted[i] == key:
            rank[i] = r
            r += 1
            i += 1
        while j < ng and gt_grp_sorted[j] == key:
            j += 1
        n += 1
    dt_ptr[n] = nd
    gt_ptr[n] = ng
    return keys[:n].copy(), dt_ptr[: n + 1].copy(), gt_ptr[: n + 1].copy(), rank


@njit(cache=True, parallel=True)
def block_sizes(dt_ptr: np.ndarray, gt_ptr: np.ndarray, max_det: int) -> np.ndarray:
    """CSR offsets of the groups' ``min(D, max_det) x G`` IoU blocks."""
    n = dt_ptr.size - 1
    sz = np.zeros(n + 1, np.int64)
    for g in prange(n):
        sz[g + 1] = min(dt_ptr[g + 1] - dt_ptr[g], max_det) * (gt_ptr[g + 1] - gt_ptr[g])
    return np.cumsum(sz)
