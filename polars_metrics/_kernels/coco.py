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
  ``dt_pos[row]`` is a detection row's position in that order; ``code[pos, a]`` (uint32) packs
  the result of evaluating it at area range ``a`` for up to ``MAX_THR = 16`` IoU thresholds:
  bit ``t`` = ``dtMatches != 0`` (matched to a ground truth whose id is not 0), bit ``16 + t`` =
  ``dtIgnore``. Callers with more thresholds run the kernels on chunks of 16.

Thresholds and ranges always come in as arrays; nothing here reads a global. The helpers run
per group or per category (``_match_group`` and its parts, ``_undefined``) are compiled
without reference counts (``_nrt=False``: they allocate nothing and return no array): with
them, every array argument cost two atomic updates per call, 13% of a COCO evaluation.
"""
from __future__ import annotations

import numpy as np

from polars_metrics._kernels._jit import njit

MAX_THR = 16  # IoU thresholds per kernel call: code packs matched / ignored bits in a uint32
IGN_SHIFT = 16


@njit(cache=True, nogil=True)
def box_iou_groups(
    dt_xywh: np.ndarray,
    dt_box_row: np.ndarray,
    gt_xywh: np.ndarray,
    gt_box_row: np.ndarray,
    gt_crowd: np.ndarray,
    grp_dt_ptr: np.ndarray,
    grp_dt_idx: np.ndarray,
    grp_gt_ptr: np.ndarray,
    grp_gt_idx: np.ndarray,
    max_det: int,
    iou_ptr: np.ndarray,
    out: np.ndarray,
    lo: int,
    hi: int,
) -> None:
    """``maskUtils.iou`` of boxes for the ``D x G`` blocks of groups ``lo <= g < hi``
    (``bbIou`` arithmetic), written to ``out[iou_ptr[g]:iou_ptr[g+1]]`` (zero-filled by the
    caller: pairs that do not overlap are not written).

    Boxes are COCO ``x, y, w, h``: detection ``d``'s is ``dt_xywh[dt_box_row[d]]`` (the frame's
    column as it is: no copy of the boxes in the evaluation's order), ground truth ``j``'s
    ``gt_xywh[gt_box_row[j]]``. The operations are ordered exactly as in ``maskApi.c`` (``x + w``
    for the far edge, ``w * h`` for the area, ``da + ga - i`` for the union) so the result is
    bit-identical. A crowd ground truth uses the detection area as the union. Groups are
    independent: callers run ranges of them on threads (``_parallel.run_ranges``).
    """
    for g in range(lo, hi):
        d0 = grp_dt_ptr[g]
        nd = min(grp_dt_ptr[g + 1] - d0, max_det)
        g0 = grp_gt_ptr[g]
        ng = grp_gt_ptr[g + 1] - g0
        base = iou_ptr[g]
        for jj in range(ng):
            j = grp_gt_idx[g0 + jj]
            b = gt_box_row[j]
            gx = gt_xywh[b, 0]
            gy = gt_xywh[b, 1]
            gw = gt_xywh[b, 2]
            gh = gt_xywh[b, 3]
            ga = gw * gh
            gxe = gw + gx
            gye = gh + gy
            crowd = gt_crowd[j]
            for dd in range(nd):
                d = dt_box_row[grp_dt_idx[d0 + dd]]
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


@njit(cache=True, nogil=True)
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
    gt_row: np.ndarray,
    dt_area: np.ndarray,
    dt_pos: np.ndarray,
    dt_row: np.ndarray,
    area_lo: np.ndarray,
    area_hi: np.ndarray,
    iou_thrs: np.ndarray,
    keep_area: int,
    code: np.ndarray,
    match_gt: np.ndarray,
    match_ignore: np.ndarray,
    groups: np.ndarray,
    lo: int,
    hi: int,
) -> None:
    """``evaluateImg`` for the groups ``groups[lo:hi]``, every area range and every IoU
    threshold (groups are independent: callers run ranges of them on threads).

    Only the detections that reach some ground truth at the lowest threshold are written:
    the others can only end unmatched, which the caller settles for every detection at once
    (``coco.threaded.coco_match``), and ``groups`` lists only the groups holding such a
    detection — most groups of a real evaluation hold none, and visiting them (scattered
    reads and writes per detection) cost more than all the matching.

    For each detection in score order, the best still-free ground truth with
    ``iou >= iou_thrs[t]`` is taken (the caller passes pycocotools' ``min(t, 1 - 1e-10)``, or
    the float after ``t`` for a strict ``iou > t``) (ties: the later one in the ignore-last order);
    crowd ground truths stay free; once a regular ground truth is matched, ignored ones are
    not considered. ``gt_ignore`` is pycocotools' ``ignore`` flag (its ``iscrowd``); ground
    truths whose ``area`` is outside ``[area_lo[a], area_hi[a]]`` are ignored too. Unmatched
    detections (or those matched to a ground truth with id 0, which pycocotools cannot tell
    from "unmatched") whose area is outside the range are ignored.

    Writes ``code[dt_pos[d], a]`` (see module doc) and, at area index ``keep_area``, rows
    ``dt_row[d]`` of ``match_gt`` (``gt_row`` of the matched ground truth, or -1) and
    ``match_ignore`` (shape ``(n_rows, T)``).
    """
    n_thr = iou_thrs.size
    thr_min = np.inf
    for t in range(n_thr):
        thr_min = min(thr_min, iou_thrs[t])
    # scratch is allocated once per range of groups, not once per group
    max_nd = 0
    max_ng = 0
    for i in range(lo, hi):
        g = groups[i]
        max_nd = max(max_nd, min(grp_dt_ptr[g + 1] - grp_dt_ptr[g], max_det))
        max_ng = max(max_ng, grp_gt_ptr[g + 1] - grp_gt_ptr[g])
    reach = np.empty(max_nd, np.bool_)
    gord = np.empty(max_ng, np.int64)  # input position of each ignore-last slot
    gig = np.empty(max_ng, np.bool_)  # ignore flag per ignore-last slot
    taken = np.empty(max_ng, np.bool_)
    igj = np.empty(max_ng, np.bool_)  # ignore flag per input position
    gord_prev = np.empty(max_ng, np.int64)  # the partition mjj was matched under
    gig_prev = np.empty(max_ng, np.bool_)
    mjj = np.empty(max_nd * iou_thrs.size, np.int64)
    bits = np.empty((4, max_nd), np.uint32)  # per detection: see _code_parts
    for i in range(lo, hi):
        _match_group(
            groups[i], iou, iou_ptr, grp_dt_ptr, grp_dt_idx, grp_gt_ptr, grp_gt_idx, max_det,
            gt_area, gt_ignore, gt_crowd, gt_id_zero, gt_row, dt_area, dt_pos, dt_row,
            area_lo, area_hi, iou_thrs, thr_min, keep_area, code, match_gt, match_ignore,
            reach, gord, gig, taken, igj, gord_prev, gig_prev, mjj, bits[0], bits[1], bits[2],
            bits[3],
        )  # fmt: skip


@njit(cache=True, nogil=True)
def settle_unmatched(dt_area: np.ndarray, dt_pos: np.ndarray, area_lo: np.ndarray,
                     area_hi: np.ndarray, all_ignored: np.uint32, code: np.ndarray,
                     bounds: np.ndarray, lo: int, hi: int) -> None:
    """Every detection's code as if it matched nothing: 0 at area ranges holding its area, else
    ``all_ignored`` (``code[dt_pos[d], a]``); ``coco_match`` then rewrites those that match.
    For the detections ``bounds[lo]:bounds[hi]`` (parts of them run on threads)."""
    for d in range(bounds[lo], bounds[hi]):
        x = dt_area[d]
        pos = dt_pos[d]
        for a in range(area_lo.size):
            code[pos, a] = all_ignored if (x < area_lo[a] or x > area_hi[a]) else np.uint32(0)


@njit(cache=True, nogil=True, _nrt=False)
def _match_group(
    g, iou, iou_ptr, grp_dt_ptr, grp_dt_idx, grp_gt_ptr, grp_gt_idx, max_det, gt_area,
    gt_ignore, gt_crowd, gt_id_zero, gt_row, dt_area, dt_pos, dt_row, area_lo, area_hi,
    iou_thrs, thr_min, keep_area, code, match_gt, match_ignore, reach, gord, gig, taken, igj,
    gord_prev, gig_prev, mjj, tp_bits, zero_bits, matched_bits, ig_bits,
):  # fmt: skip
    n_area = area_lo.size
    n_thr = iou_thrs.size
    d0 = grp_dt_ptr[g]
    nd = min(grp_dt_ptr[g + 1] - d0, max_det)
    if nd == 0:
        return
    g0 = grp_gt_ptr[g]
    ng = grp_gt_ptr[g + 1] - g0
    base = iou_ptr[g]
    # detections that reach no ground truth at the lowest threshold never match (the caller
    # has settled them)
    n_reach = 0
    for dd in range(nd):
        reach[dd] = False
        for jj in range(ng):
            if iou[base + dd * ng + jj] >= thr_min:
                reach[dd] = True
                n_reach += 1
                break
    if n_reach == 0:
        return
    # Area ranges only change which ground truths are ignored. The matching depends on the
    # ignore-last order and flags alone, and is the same for every range where all or none of
    # the group's ground truths are ignored (the order is then the input order): it runs once
    # per distinct partition (usually once per group) into mjj, the matched ground truth
    # (input position, or -1) per (detection, threshold); each range then derives its codes.
    have = False
    prev_uniform = False
    for a in range(n_area):
        lo = area_lo[a]
        hi = area_hi[a]
        # stable partition: regular ground truths first, ignored ones last
        s = 0
        for jj in range(ng):
            j = grp_gt_idx[g0 + jj]
            igj[jj] = gt_ignore[j] or gt_area[j] < lo or gt_area[j] > hi
            if not igj[jj]:
                gord[s] = jj
                gig[s] = False
                s += 1
        n_regular = s
        for jj in range(ng):
            if igj[jj]:
                gord[s] = jj
                gig[s] = True
                s += 1
        uniform = n_regular == 0 or n_regular == ng
        same = have and uniform and prev_uniform
        if have and not uniform and not prev_uniform:
            same = True
            for q in range(ng):
                if gord[q] != gord_prev[q] or gig[q] != gig_prev[q]:
                    same = False
                    break
        if not same:
            _match_partition(nd, ng, g0, base, iou, grp_gt_idx, gt_crowd, iou_thrs, reach, gord,
                             gig, taken, mjj)
            _code_parts(nd, n_thr, g0, reach, mjj, grp_gt_idx, gt_id_zero, igj, tp_bits,
                        zero_bits, matched_bits, ig_bits)
            for q in range(ng):
                gord_prev[q] = gord[q]
                gig_prev[q] = gig[q]
            prev_uniform = uniform
            have = True
        write_rows = a == keep_area and match_gt.shape[0] > 0
        # a uniform partition's matching serves both uniform cases: all ground truths regular
        # (nothing matched is ignored) or all ignored (everything matched is)
        all_ignored = uniform and n_regular == 0
        for dd in range(nd):
            if not reach[dd]:
                continue
            d = grp_dt_idx[d0 + dd]
            out_of_range = dt_area[d] < lo or dt_area[d] > hi
            ign = (matched_bits[dd] if all_ignored else np.uint32(0) if uniform else ig_bits[dd])
            if out_of_range:
                ign |= zero_bits[dd]
            code[dt_pos[d], a] = tp_bits[dd] | (ign << np.uint32(IGN_SHIFT))
            if write_rows:
                r = dt_row[d]
                for t in range(n_thr):
                    jj = mjj[dd * n_thr + t]
                    match_gt[r, t] = -1 if jj < 0 else gt_row[grp_gt_idx[g0 + jj]]
                    match_ignore[r, t] = (ign >> np.uint32(t)) & np.uint32(1) != 0


@njit(cache=True, nogil=True, _nrt=False)
def _code_parts(nd, n_thr, g0, reach, mjj, grp_gt_idx, gt_id_zero, igj, tp_bits, zero_bits,
                matched_bits, ig_bits):
    """Per detection of one matching, the threshold bits its code words are made of: matched
    to a ground truth whose id is not 0 (``tp_bits``); unmatched or matched to one whose id is
    0, which looks unmatched and is ignored when the detection's area is out of range
    (``zero_bits``); matched at all (``matched_bits``); matched to a ground truth ``igj``
    ignores (``ig_bits``). An area range then costs a few ORs per detection, not a loop over
    the thresholds."""
    for dd in range(nd):
        tp = np.uint32(0)
        zero = np.uint32(0)
        matched = np.uint32(0)
        ig = np.uint32(0)
        if reach[dd]:
            for t in range(n_thr):
                bit = np.uint32(1) << np.uint32(t)
                jj = mjj[dd * n_thr + t]
                if jj < 0:
                    zero |= bit
                    continue
                matched |= bit
                if igj[jj]:
                    ig |= bit
                if gt_id_zero[grp_gt_idx[g0 + jj]]:
                    zero |= bit
                else:
                    tp |= bit
        tp_bits[dd] = tp
        zero_bits[dd] = zero
        matched_bits[dd] = matched
        ig_bits[dd] = ig


@njit(cache=True, nogil=True, _nrt=False)
def _match_partition(nd, ng, g0, base, iou, grp_gt_idx, gt_crowd, iou_thrs, reach, gord, gig,
                     taken, mjj):
    """``evaluateImg``'s greedy matching of one group under one ignore-last order, for every
    threshold: ``mjj[dd * n_thr + t]`` = input position of the matched ground truth, or -1.
    Each detection (score order) takes the best still-free ground truth with
    ``iou >= thr`` (ties: the later one in the order); crowd ground truths stay free; once a
    regular ground truth is matched, ignored ones are not considered."""
    n_thr = iou_thrs.size
    for t in range(n_thr):
        thr = iou_thrs[t]
        for q in range(ng):
            taken[q] = False
        for dd in range(nd):
            if not reach[dd]:
                continue
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
            if m == -1:
                mjj[dd * n_thr + t] = -1
            else:
                taken[m] = True
                mjj[dd * n_thr + t] = gord[m]


@njit(cache=True, nogil=True, _nrt=False)
def _undefined(precision, recall, scores, k, a0, a1):
    """-1 (pycocotools' "no ground truth") in every cell of category k, areas a0..a1."""
    for t in range(precision.shape[0]):
        for a in range(a0, a1):
            for m in range(precision.shape[4]):
                recall[t, k, a, m] = -1.0
            for r in range(precision.shape[1]):
                for m in range(precision.shape[4]):
                    precision[t, r, k, a, m] = -1.0
                    scores[t, r, k, a, m] = -1.0


@njit(cache=True, nogil=True)
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
    lo: int,
    hi: int,
) -> None:
    """``accumulate``: precision / recall / score curves per (category, area, maxDet, IoU),
    for the categories ``lo <= k < hi`` (categories write disjoint cells, so callers run
    ranges of them on threads).

    Detections of category ``k`` are positions ``cat_ptr[k]:cat_ptr[k+1]`` of the accumulate
    order; only those with within-image rank ``< max_dets[m]`` take part. ``npig[k, a]`` is the
    number of non-ignored ground truths. pycocotools computes, over the detections,
    recall ``tp / npig`` and precision ``tp / (fp + tp + eps)`` from cumulative TP / FP counts,
    makes precision monotone from the right, and reads it at the first detection whose recall
    reaches each recall threshold (left ``searchsorted``; thresholds past the end keep 0).
    Precision only rises at a true positive, so the right-to-left maximum is the maximum over
    the true positives from that detection on: this kernel evaluates the same floating-point
    expressions at the true positives only (one division per TP instead of two per
    detection), which gives bit-identical values. Cells with ``npig == 0`` are -1, as in
    pycocotools (every cell of the categories ``lo..hi`` is written: the caller need not fill).
    """
    n_area = code.shape[1]
    n_thr = precision.shape[0]
    n_md = max_dets.size
    n_rec = rec_thrs.size
    eps = np.spacing(1.0)
    full = np.uint32((1 << n_thr) - 1)
    ascending = True
    for r in range(1, n_rec):
        if rec_thrs[r] < rec_thrs[r - 1]:
            ascending = False
    for k in range(lo, hi):
        p0 = cat_ptr[k]
        p1 = cat_ptr[k + 1]
        # one pass over the category's detections serves every area range and maxDet:
        # max_dets is sorted, so a detection of rank r counts for every m from the first with
        # r < max_dets[m]. FPs are not counted one by one: before the j-th TP,
        # fp = seen - ignored - j. The j-th TP's position and FP count of area a, maxDet m,
        # threshold t sit at off[a] + (m * n_thr + t) * npig[k, a] + j.
        off = np.zeros(n_area + 1, np.int64)
        ng_max = 0
        for a in range(n_area):
            off[a + 1] = off[a] + n_md * n_thr * npig[k, a]
            ng_max = max(ng_max, npig[k, a])
        if ng_max == 0:
            _undefined(precision, recall, scores, k, 0, n_area)
            continue
        tp_pos = np.empty(off[n_area], np.int64)  # position of the j-th TP
        fp_at = np.empty(off[n_area], np.int64)  # FP count when the j-th TP arrives
        ntp = np.zeros((n_area, n_md, n_thr), np.int64)
        n_ign = np.zeros((n_area, n_md, n_thr), np.int64)  # ignored at some thresholds only
        n_ign_all = np.zeros((n_area, n_md), np.int64)  # ignored at every threshold
        nd = np.zeros(n_md, np.int64)
        first = np.zeros(n_md, np.int64)
        for p in range(p0, p1):
            rk = rank_acc[p]
            m_lo = n_md
            for m in range(n_md):
                if rk < max_dets[m]:
                    m_lo = m
                    break
            if m_lo == n_md:
                continue
            for m in range(m_lo, n_md):
                if nd[m] == 0:
                    first[m] = p
                nd[m] += 1
            for a in range(n_area):
                ng = npig[k, a]
                if ng == 0:
                    continue
                c = code[p, a]
                ib = (c >> IGN_SHIFT) & full
                if ib == full:
                    for m in range(m_lo, n_md):
                        n_ign_all[a, m] += 1
                    continue
                if ib:
                    for t in range(n_thr):
                        if (ib >> t) & 1:
                            for m in range(m_lo, n_md):
                                n_ign[a, m, t] += 1
                tb = c & full & ~ib
                if tb:
                    for t in range(n_thr):
                        if (tb >> t) & 1:
                            for m in range(m_lo, n_md):
                                j = ntp[a, m, t]
                                if j < ng:
                                    q = off[a] + (m * n_thr + t) * ng + j
                                    tp_pos[q] = p
                                    fp_at[q] = nd[m] - 1 - n_ign_all[a, m] - n_ign[a, m, t] - j
                                ntp[a, m, t] = j + 1
        smax = np.empty(ng_max, np.float64)
        for a in range(n_area):
            ng = npig[k, a]
            if ng == 0:
                _undefined(precision, recall, scores, k, a, a + 1)
                continue
            fng = np.float64(ng)
            for m in range(n_md):
                for t in range(n_thr):
                    nt = min(ntp[a, m, t], ng)
                    base = off[a] + (m * n_thr + t) * ng
                    recall[t, k, a, m] = (np.float64(ntp[a, m, t]) / fng) if nd[m] > 0 else 0.0
                    # precision at each TP, then its running maximum from the right
                    for j in range(nt):
                        tpf = np.float64(j + 1)
                        smax[j] = tpf / (np.float64(fp_at[base + j]) + tpf + eps)
                    for j in range(nt - 1, 0, -1):
                        if smax[j] > smax[j - 1]:
                            smax[j - 1] = smax[j]
                    # the first TP whose recall reaches each threshold: a pointer that only
                    # moves forward when the thresholds ascend (the usual case), else a search
                    r_end = 0 if nd[m] == 0 else n_rec
                    j = 0
                    for r in range(r_end):
                        v = rec_thrs[r]
                        if 0.0 >= v:  # rc[0] >= v: the first detection
                            pi = first[m]
                            qv = smax[0] if nt > 0 else 0.0
                        else:
                            if not ascending:
                                j = 0
                                b_hi = nt
                                while j < b_hi:  # first TP j with (j + 1) / npig >= v
                                    mid = (j + b_hi) >> 1
                                    if np.float64(mid + 1) / fng < v:
                                        j = mid + 1
                                    else:
                                        b_hi = mid
                            else:
                                while j < nt and np.float64(j + 1) / fng < v:
                                    j += 1
                            if j >= nt:
                                r_end = r  # pycocotools' bare except: later thresholds keep 0
                                break
                            pi = tp_pos[base + j]
                            qv = smax[j]
                        precision[t, r, k, a, m] = qv
                        scores[t, r, k, a, m] = score_acc[pi]
                    for r in range(r_end, n_rec):
                        precision[t, r, k, a, m] = 0.0
                        scores[t, r, k, a, m] = 0.0


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
def segment_counting_order(seg_ptr: np.ndarray, keys: np.ndarray, n_keys: int,
                           order: np.ndarray) -> np.ndarray:
    """``order`` stably re-sorted by ``keys[order]`` inside each segment
    ``seg_ptr[i]:seg_ptr[i + 1]`` (integer keys in ``[0, n_keys)``): one small count array
    reused per segment, so it stays in cache where one pass over ``segments × n_keys``
    buckets would not."""
    out = np.empty(order.size, np.int64)
    cnt = np.zeros(n_keys + 1, np.int64)
    for i in range(seg_ptr.size - 1):
        p0 = seg_ptr[i]
        p1 = seg_ptr[i + 1]
        if p1 - p0 <= 1:
            if p1 > p0:
                out[p0] = order[p0]
            continue
        if 8 * (p1 - p0) < n_keys:  # few items over many keys: a stable comparison sort
            seg = order[p0:p1]
            idx = np.argsort(keys[seg], kind="mergesort")
            for q in range(p1 - p0):
                out[p0 + q] = seg[idx[q]]
            continue
        for k in range(n_keys + 1):
            cnt[k] = 0
        for p in range(p0, p1):
            cnt[keys[order[p]] + 1] += 1
        for k in range(n_keys):
            cnt[k + 1] += cnt[k]
        for p in range(p0, p1):
            k = keys[order[p]]
            out[p0 + cnt[k]] = order[p]
            cnt[k] += 1
    return out


@njit(cache=True, nogil=True)
def group_counts(d_cat_ptr: np.ndarray, d_img: np.ndarray, d_grp: np.ndarray,
                 g_cat_ptr: np.ndarray, g_img: np.ndarray, g_grp: np.ndarray, max_det: int,
                 count: np.ndarray, lo: int, hi: int) -> None:
    """Per category ``c`` (``lo <= c < hi``): ``count[c, 0]`` its groups — the union of the
    images of its detections ``d_grp[d_cat_ptr[c]:d_cat_ptr[c+1]]`` and of its ground truths
    ``g_grp[g_cat_ptr[c]:...]``, both in image order — and ``count[c, 1]`` the cells of their
    ``min(D, max_det) x G`` IoU blocks. Categories run on threads."""
    none = np.empty(0, np.int64)
    for c in range(lo, hi):
        count[c, 0], count[c, 1] = _category_groups(
            d_cat_ptr[c], d_cat_ptr[c + 1], d_img, d_grp, g_cat_ptr[c], g_cat_ptr[c + 1], g_img,
            g_grp, max_det, none, none, none, 0, 0)


@njit(cache=True, nogil=True)
def group_fill(d_cat_ptr: np.ndarray, d_img: np.ndarray, d_grp: np.ndarray,
               g_cat_ptr: np.ndarray, g_img: np.ndarray, g_grp: np.ndarray, max_det: int,
               first: np.ndarray, dt_ptr: np.ndarray, gt_ptr: np.ndarray, iou_ptr: np.ndarray,
               lo: int, hi: int) -> None:
    """The groups' starts in ``d_grp`` / ``g_grp`` (``dt_ptr`` / ``gt_ptr``) and in the IoU
    blocks (``iou_ptr``) for the categories ``lo <= c < hi``, whose groups and cells start at
    ``first[c, 0]`` / ``first[c, 1]`` (:func:`group_counts`, summed up; the caller writes the
    pointers' last entries, the totals)."""
    for c in range(lo, hi):
        _category_groups(d_cat_ptr[c], d_cat_ptr[c + 1], d_img, d_grp, g_cat_ptr[c],
                         g_cat_ptr[c + 1], g_img, g_grp, max_det, dt_ptr, gt_ptr, iou_ptr,
                         first[c, 0], first[c, 1])


@njit(cache=True, nogil=True)
def _category_groups(i, i_end, d_img, d_grp, j, j_end, g_img, g_grp, max_det, dt_ptr, gt_ptr,
                     iou_ptr, n, cells) -> tuple[int, int]:
    """Walk one category's detections and ground truths image by image; write each group's
    starts into ``dt_ptr[n]`` / ``gt_ptr[n]`` / ``iou_ptr[n]`` when they have room; return the
    number of groups and of IoU cells."""
    fill = dt_ptr.size > 0
    n0 = n
    c0 = cells
    while i < i_end or j < j_end:
        di = d_img[d_grp[i]] if i < i_end else -1
        gi = g_img[g_grp[j]] if j < j_end else -1
        m = di if (j >= j_end or (i < i_end and di <= gi)) else gi
        if fill:
            dt_ptr[n] = i
            gt_ptr[n] = j
            iou_ptr[n] = cells
        i0 = i
        j0 = j
        while i < i_end and d_img[d_grp[i]] == m:
            i += 1
        while j < j_end and g_img[g_grp[j]] == m:
            j += 1
        cells += min(i - i0, max_det) * (j - j0)
        n += 1
    return n - n0, cells - c0
