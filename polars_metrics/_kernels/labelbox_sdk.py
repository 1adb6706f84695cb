"""The Labelbox SDK's per-feature matching rules (``labelbox.data.metrics``), per data row.

Arrays and offsets in, arrays out; no polars. For every (data row, feature) present:

- confusion walk (``object_pair_confusion_matrix``): the feature's pairs by IoU descending,
  ties in gt-major input order; a pair matches iff ``iou > t`` and both members are free; with
  subclasses, a pair whose nested classifications do not agree exactly is skipped *without*
  consuming its members. Classification pairs (``always``) match regardless of ``t``.
- IoU walk (``object_pair_miou``): every (pred, gt) pair of the feature by IoU descending,
  ties in **prediction-major** order (the SDK builds these pairs as ``product(predictions,
  ground_truths)``), no threshold, zero-IoU pairs matched last; a matched pair contributes its
  IoU, or with subclasses ``(iou + agreement) / 2`` (agreement falls back to the IoU when
  neither side has a nested classification). Value = Σ / max(n_gt, n_pd).
"""
from __future__ import annotations

import numpy as np

from polars_metrics._kernels._jit import njit
from polars_metrics._kernels.sorting import argsort_desc_stable_into, find_sorted


@njit(cache=True, nogil=True)
def subclass_agreement(a0, a1, a_key, a_val, b0, b1, b_key, b_val):
    """(agreement, defined): keys present on both sides with equal values / keys on either side.

    Keys are sorted and unique within each annotation. Undefined (no key at all) → (0, False).
    """
    i, j = a0, b0
    common = 0
    agree = 0
    while i < a1 and j < b1:
        if a_key[i] == b_key[j]:
            common += 1
            if a_val[i] == b_val[j]:
                agree += 1
            i += 1
            j += 1
        elif a_key[i] < b_key[j]:
            i += 1
        else:
            j += 1
    union = (a1 - a0) + (b1 - b0) - common
    if union == 0:
        return 0.0, False
    return agree / union, True


@njit(cache=True, nogil=True)
def _argsort_desc(values, n, idx, buf):
    """Write into ``idx[:n]`` the stable descending order of ``values[:n]`` (shared sort)."""
    res = argsort_desc_stable_into(values[:n], idx, buf)
    for i in range(n):  # the result sits in idx or buf; copying idx onto itself is harmless
        idx[i] = res[i]


@njit(cache=True, nogil=True)
def sdk_feature_metrics(
    gt_off, pd_off, gt_feat, pd_feat,
    pair_off, pair_gt, pair_pd, pair_iou, pair_always,
    rf_off, rf_feat, feat_is_object,
    iou_thr, include_subclasses,
    gt_sc_off, gt_sc_key, gt_sc_val, gt_has_sc,
    pd_sc_off, pd_sc_key, pd_sc_val, pd_has_sc,
    out_tp, out_ngt, out_npd, out_iou, lo, hi,
):
    """Fill, per (data row, feature) entry ``rf`` of data rows ``lo <= r < hi``: tp, n_gt,
    n_pd and the SDK feature mIoU.

    Rows are independent (callers run ranges of them on threads); a range allocates its
    scratch once, sized by its largest row.
    """
    max_g = 1
    max_p = 1
    max_f = 1
    max_k = 1
    for r in range(lo, hi):
        max_g = max(max_g, gt_off[r + 1] - gt_off[r])
        max_p = max(max_p, pd_off[r + 1] - pd_off[r])
        max_f = max(max_f, rf_off[r + 1] - rf_off[r])
        max_k = max(max_k, pair_off[r + 1] - pair_off[r])
    if hi > lo:
        gt_slot = np.empty(max_g, dtype=np.int64)
        pd_slot = np.empty(max_p, dtype=np.int64)
        gt_taken = np.empty(max_g, dtype=np.bool_)
        pd_taken = np.empty(max_p, dtype=np.bool_)
        ngt = np.empty(max_f, dtype=np.int64)
        npd = np.empty(max_f, dtype=np.int64)
        tp = np.empty(max_f, dtype=np.int64)
        total = np.empty(max_f, dtype=np.float64)
        ks = np.empty(max_k, dtype=np.int64)
        pm = np.empty(max_k, dtype=np.int64)
        ious = np.empty(max_k, dtype=np.float64)
        order = np.empty(max_k, dtype=np.int64)
        sort_buf = np.empty(max_k, dtype=np.int64)
        cnt = np.empty(max_p + 1, dtype=np.int64)
        for r in range(lo, hi):
            _row(r, gt_off, pd_off, gt_feat, pd_feat, pair_off, pair_gt, pair_pd, pair_iou,
                 pair_always, rf_off, rf_feat, feat_is_object, iou_thr, include_subclasses,
                 gt_sc_off, gt_sc_key, gt_sc_val, gt_has_sc,
                 pd_sc_off, pd_sc_key, pd_sc_val, pd_has_sc,
                 out_tp, out_ngt, out_npd, out_iou,
                 gt_slot, pd_slot, gt_taken, pd_taken, ngt, npd, tp, total, ks, pm, ious, order,
                 sort_buf, cnt)


@njit(cache=True, nogil=True)
def _row(r, gt_off, pd_off, gt_feat, pd_feat, pair_off, pair_gt, pair_pd, pair_iou,
         pair_always, rf_off, rf_feat, feat_is_object, iou_thr, include_subclasses,
         gt_sc_off, gt_sc_key, gt_sc_val, gt_has_sc,
         pd_sc_off, pd_sc_key, pd_sc_val, pd_has_sc,
         out_tp, out_ngt, out_npd, out_iou,
         gt_slot, pd_slot, gt_taken, pd_taken, ngt, npd, tp, total, ks, pm, ious, order,
         sort_buf, cnt):
    """One data row: slot every annotation in its feature, then the two walks."""
    g0, g1 = gt_off[r], gt_off[r + 1]
    p0, p1 = pd_off[r], pd_off[r + 1]
    f0, f1 = rf_off[r], rf_off[r + 1]
    n_g, n_p, n_f = g1 - g0, p1 - p0, f1 - f0
    feats = rf_feat[f0:f1]
    for f in range(n_f):
        ngt[f] = 0
        npd[f] = 0
        tp[f] = 0
        total[f] = 0.0
    for i in range(n_g):
        gt_slot[i] = find_sorted(feats, gt_feat[g0 + i])
        ngt[gt_slot[i]] += 1
    for j in range(n_p):
        pd_slot[j] = find_sorted(feats, pd_feat[p0 + j])
        npd[pd_slot[j]] += 1

    # same-feature pairs of the row, in the given (gt-major) order
    n_same = 0
    for k in range(pair_off[r], pair_off[r + 1]):
        if gt_feat[pair_gt[k]] == pd_feat[pair_pd[k]]:
            ks[n_same] = k
            ious[n_same] = pair_iou[k]
            n_same += 1

    _confusion_walk(g0, n_g, p0, n_p, n_same, ks, ious, order, sort_buf, pair_gt, pair_pd,
                    pair_iou, pair_always, iou_thr, include_subclasses,
                    gt_sc_off, gt_sc_key, gt_sc_val, gt_has_sc,
                    pd_sc_off, pd_sc_key, pd_sc_val, pd_has_sc,
                    gt_slot, gt_taken, pd_taken, tp)
    _iou_walk(g0, n_g, p0, n_p, n_same, ks, pm, ious, order, sort_buf, cnt, pair_gt, pair_pd,
              pair_iou, pair_always, include_subclasses,
              gt_sc_off, gt_sc_key, gt_sc_val, pd_sc_off, pd_sc_key, pd_sc_val,
              gt_slot, gt_taken, pd_taken, total)
    if include_subclasses:
        _zero_iou_pairs(g0, n_g, p0, n_p, feats, feat_is_object,
                        gt_sc_off, gt_sc_key, gt_sc_val, pd_sc_off, pd_sc_key, pd_sc_val,
                        gt_slot, pd_slot, gt_taken, pd_taken, total)

    for f in range(n_f):
        out_tp[f0 + f] = tp[f]
        out_ngt[f0 + f] = ngt[f]
        out_npd[f0 + f] = npd[f]
        if ngt[f] == 0 or npd[f] == 0:
            out_iou[f0 + f] = 0.0
        else:
            out_iou[f0 + f] = total[f] / max(ngt[f], npd[f])


@njit(cache=True, nogil=True)
def _confusion_walk(g0, n_g, p0, n_p, n_same, ks, ious, order, sort_buf, pair_gt, pair_pd,
                    pair_iou, pair_always, iou_thr, include_subclasses,
                    gt_sc_off, gt_sc_key, gt_sc_val, gt_has_sc,
                    pd_sc_off, pd_sc_key, pd_sc_val, pd_has_sc,
                    gt_slot, gt_taken, pd_taken, tp):
    """IoU descending, gt-major ties: count the matches per feature slot into ``tp``."""
    for i in range(n_g):
        gt_taken[i] = False
    for j in range(n_p):
        pd_taken[j] = False
    _argsort_desc(ious, n_same, order, sort_buf)
    for i in range(n_same):
        k = ks[order[i]]
        g = pair_gt[k] - g0
        p = pair_pd[k] - p0
        if gt_taken[g] or pd_taken[p]:
            continue
        if not pair_always[k]:
            if not pair_iou[k] > iou_thr:
                continue
            if include_subclasses and (gt_has_sc[g0 + g] or pd_has_sc[p0 + p]):
                agr, defined = subclass_agreement(
                    gt_sc_off[g0 + g], gt_sc_off[g0 + g + 1], gt_sc_key, gt_sc_val,
                    pd_sc_off[p0 + p], pd_sc_off[p0 + p + 1], pd_sc_key, pd_sc_val)
                if defined and agr < 1.0:
                    continue  # rejected: its members stay free for later pairs
        gt_taken[g] = True
        pd_taken[p] = True
        tp[gt_slot[g]] += 1


@njit(cache=True, nogil=True)
def _iou_walk(g0, n_g, p0, n_p, n_same, ks, pm, ious, order, sort_buf, cnt, pair_gt, pair_pd,
              pair_iou, pair_always, include_subclasses,
              gt_sc_off, gt_sc_key, gt_sc_val, pd_sc_off, pd_sc_key, pd_sc_val,
              gt_slot, gt_taken, pd_taken, total):
    """IoU descending, prediction-major ties, no threshold: sum the matched values per slot.

    (The greedy matching of a tie class is the same in gt-major and prediction-major order,
    so the reordering only mirrors the SDK's construction.)
    """
    for j in range(n_p + 1):  # counting sort of the same-feature pairs by prediction
        cnt[j] = 0
    for i in range(n_same):
        cnt[pair_pd[ks[i]] - p0 + 1] += 1
    for j in range(n_p):
        cnt[j + 1] += cnt[j]
    for i in range(n_same):
        p = pair_pd[ks[i]] - p0
        pm[cnt[p]] = ks[i]
        cnt[p] += 1
    for i in range(n_same):
        ious[i] = pair_iou[pm[i]]
    _argsort_desc(ious, n_same, order, sort_buf)
    for i in range(n_g):
        gt_taken[i] = False
    for j in range(n_p):
        pd_taken[j] = False
    for i in range(n_same):
        k = pm[order[i]]
        g = pair_gt[k] - g0
        p = pair_pd[k] - p0
        if gt_taken[g] or pd_taken[p]:
            continue
        gt_taken[g] = True
        pd_taken[p] = True
        v = pair_iou[k]
        if include_subclasses and not pair_always[k]:
            agr, defined = subclass_agreement(
                gt_sc_off[g0 + g], gt_sc_off[g0 + g + 1], gt_sc_key, gt_sc_val,
                pd_sc_off[p0 + p], pd_sc_off[p0 + p + 1], pd_sc_key, pd_sc_val)
            v = (v + (agr if defined else v)) / 2.0
        total[gt_slot[g]] += v


@njit(cache=True, nogil=True)
def _zero_iou_pairs(g0, n_g, p0, n_p, feats, feat_is_object,
                    gt_sc_off, gt_sc_key, gt_sc_val, pd_sc_off, pd_sc_key, pd_sc_val,
                    gt_slot, pd_slot, gt_taken, pd_taken, total):
    """Subclass mode: the zero-IoU pairs of object features, matched last in product (pred, gt)
    order after the IoU walk; each adds half its agreement."""
    for p in range(n_p):
        if pd_taken[p]:
            continue
        f = pd_slot[p]
        if not feat_is_object[feats[f]]:
            continue
        for g in range(n_g):
            if gt_taken[g] or gt_slot[g] != f:
                continue
            gt_taken[g] = True
            pd_taken[p] = True
            agr, defined = subclass_agreement(
                gt_sc_off[g0 + g], gt_sc_off[g0 + g + 1], gt_sc_key, gt_sc_val,
                pd_sc_off[p0 + p], pd_sc_off[p0 + p + 1], pd_sc_key, pd_sc_val)
            total[f] += (agr if defined else 0.0) / 2.0
            break


@njit(cache=True, nogil=True)
def round_decimals(x, scale, out, ambiguous):
    """``rint(x * scale) / scale`` into ``out``; flags values whose product is within rounding
    error of a half-integer (the caller rounds those like Python); non-finite and huge values
    are copied."""
    n_amb = 0
    for i in range(x.shape[0]):
        v = x[i]
        y = v * scale
        if not np.isfinite(y) or abs(y) >= 4503599627370496.0:  # 2**52: no fraction left
            out[i] = v
            ambiguous[i] = False
            continue
        out[i] = np.rint(y) / scale
        frac = abs(y - np.floor(y) - 0.5)
        amb = frac <= max(abs(y) * 1e-15, 1e-9)
        ambiguous[i] = amb
        if amb:
            n_amb += 1
    return n_amb


@njit(cache=True, nogil=True)
def _fg_intervals(counts, offsets, idx, out_start, out_end):
    """Foreground runs (start, end) of the masks ``idx`` (column-major flat positions)."""
    n = 0
    for m in idx:
        pos = 0
        for i in range(offsets[m], offsets[m + 1]):
            c = counts[i]
            if (i - offsets[m]) % 2 == 1 and c > 0:
                out_start[n] = pos
                out_end[n] = pos + c
                n += 1
            pos += c
    return n


@njit(cache=True, nogil=True)
def _merge(starts, ends, n):
    """Sort intervals by start and merge overlaps in place; return the merged count."""
    order = np.argsort(starts[:n], kind="mergesort")
    s2 = starts[:n][order].copy()
    e2 = ends[:n][order].copy()
    m = 0
    for i in range(n):
        if m > 0 and s2[i] <= ends[m - 1]:
            if e2[i] > ends[m - 1]:
                ends[m - 1] = e2[i]
        else:
            starts[m] = s2[i]
            ends[m] = e2[i]
            m += 1
    return m


@njit(cache=True, nogil=True)
def semantic_mask_iou(counts, offsets, grp_gt_off, grp_gt_idx, grp_pd_off, grp_pd_idx,
                      out_inter, out_union, lo, hi):
    """Per group ``lo <= grp < hi``: pixels of (∪ gt masks) ∩ (∪ pd masks) and of their union
    (same-size masks). Groups are independent: callers run ranges of them on threads."""
    for grp in range(lo, hi):
        gi = grp_gt_idx[grp_gt_off[grp]:grp_gt_off[grp + 1]]
        pi = grp_pd_idx[grp_pd_off[grp]:grp_pd_off[grp + 1]]
        cap_g = 0
        for m in gi:
            cap_g += (offsets[m + 1] - offsets[m]) // 2 + 1
        cap_p = 0
        for m in pi:
            cap_p += (offsets[m + 1] - offsets[m]) // 2 + 1
        gs = np.empty(cap_g, dtype=np.int64)
        ge = np.empty(cap_g, dtype=np.int64)
        ps = np.empty(cap_p, dtype=np.int64)
        pe = np.empty(cap_p, dtype=np.int64)
        ng = _merge(gs, ge, _fg_intervals(counts, offsets, gi, gs, ge))
        np_ = _merge(ps, pe, _fg_intervals(counts, offsets, pi, ps, pe))
        area_g = 0
        for i in range(ng):
            area_g += ge[i] - gs[i]
        area_p = 0
        for i in range(np_):
            area_p += pe[i] - ps[i]
        inter = 0
        i, j = 0, 0
        while i < ng and j < np_:
            o_lo = max(gs[i], ps[j])
            o_hi = min(ge[i], pe[j])
            if o_hi > o_lo:
                inter += o_hi - o_lo
            if ge[i] < pe[j]:
                i += 1
            else:
                j += 1
        out_inter[grp] = inter
        out_union[grp] = area_g + area_p - inter
