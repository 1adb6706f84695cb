"""Greedy IoU-ordered matching per data row (SPEC §5), one walk per confidence threshold.

A walk at IoU threshold 0 gives every IoU threshold at once: pairs are visited by descending
IoU, so the matches at threshold ``t`` are exactly the ``t = 0`` matches with ``iou > t``
(prefix property). Each match is therefore emitted once, with its IoU, as a *match event*
``(confidence index, gt, pd, iou)``; counting events by IoU bin and summing the bins above
``t`` yields the whole IoU axis.

Tie rule: pairs with equal IoU are visited in the order they are given, which is gt-major
input order (ground truths in input order, then predictions in input order), because the sort
below is stable and pair builders emit pairs gt-major.
"""
from __future__ import annotations

import numpy as np

from polars_metrics._kernels._jit import njit
from polars_metrics._kernels.sorting import argsort_desc_stable_kv


@njit(cache=True, nogil=True)
def greedy_match_by_iou(
    gt_off, pd_off, gt_feat, pd_feat, pd_npass,
    pair_off, pair_gt, pair_pd, pair_iou,
    n_conf, class_aware,
    rf_off, rf_feat, ev_off,
    ev_n, ev_pair,
    rf_ngt, rf_until, iv_n, iv_rf, iv_val, row_iou,
    chunk_lo, chunk_hi,
):
    """Match the data rows of chunks ``[chunk_lo, chunk_hi)`` (``ROWS_PER_CHUNK`` rows each)
    at every confidence threshold; fill the preallocated outputs.

    Inputs (all arrays C-contiguous; rows are the CSR groups of ``*_off``):
    gt_feat, pd_feat : int32 feature codes.  pd_npass : int32, how many confidence thresholds a
    prediction passes (it is kept at threshold index ``c`` iff ``c < pd_npass``).
    pair_* : candidate pairs with IoU > 0, gt-major inside each row (global indices).
    class_aware : match only equal features.
    rf_off, rf_feat : per row, the sorted feature codes present on either side.
    ev_off : per row, event capacity offsets (n_conf * min(n_gt, n_pd) per row).

    Outputs:
    ev_n[r, c] events of row r at threshold c, stored from ``ev_off[r] + c * cap_r``;
    ev_pair : the pair index of each match event of the IoU-threshold-0 walk.
    rf_ngt[rf] ground truths.  The per-(data row, feature) IoU metric at c is the sum of IoUs
    of the class-aware, threshold-free walk over max(ground truths, kept predictions): defined
    for c < rf_until[rf], and stored sparsely where it is not 0 — iv_n[r, c] values of row r
    at c in the event layout (from ``ev_off[r] + c * cap_r``): iv_rf the (row, feature) index,
    iv_val the value.
    row_iou[r, c] : the mean of the IoU metric's per-feature values defined on row r (NaN when
    none). The per-row counts and means along the IoU axis are :func:`row_tables_range`'s, from
    the events (a result keeps the events, not those tables).
    """
    n_rows = gt_off.shape[0] - 1
    # Rows are processed in chunks that share scratch arrays sized for the chunk's largest
    # row: allocating per row would cost more than matching a typical row.
    for ch in range(chunk_lo, chunk_hi):
        r0 = ch * ROWS_PER_CHUNK
        r1 = min(r0 + ROWS_PER_CHUNK, n_rows)
        mg = mp = mk = mf = 1
        for r in range(r0, r1):
            mg = max(mg, gt_off[r + 1] - gt_off[r])
            mp = max(mp, pd_off[r + 1] - pd_off[r])
            mk = max(mk, pair_off[r + 1] - pair_off[r])
            mf = max(mf, rf_off[r + 1] - rf_off[r])
        gt_slot = np.empty(mg, dtype=np.int64)
        gt_stamp = np.empty(mg, dtype=np.int64)
        pd_stamp = np.empty(mp, dtype=np.int64)
        idx = np.empty(mk, dtype=np.int64)
        buf = np.empty(mk, dtype=np.int64)
        o_k = np.empty(mk, dtype=np.int64)
        live = np.empty(mk, dtype=np.int64)
        o_g = np.empty(mk, dtype=np.int64)
        o_p = np.empty(mk, dtype=np.int64)
        o_pass = np.empty(mk, dtype=np.int64)
        o_same = np.empty(mk, dtype=np.bool_)
        same = np.empty(mk, dtype=np.int64)
        ngt = np.empty(mf, dtype=np.int64)
        kept = np.empty((mf, n_conf + 1), dtype=np.int64)
        n_kept = np.empty(n_conf + 1, dtype=np.int64)
        iou_sum = np.zeros(mf, dtype=np.float64)
        is_summed = np.zeros(mf, dtype=np.bool_)
        summed = np.empty(mf, dtype=np.int64)
        val = np.empty(mk, dtype=np.float64)
        vbuf = np.empty(mk, dtype=np.float64)
        g_top = np.empty(mg, dtype=np.int64)
        h_def = np.empty(n_conf + 2, dtype=np.int64)
        h_g = np.empty(n_conf + 2, dtype=np.int64)
        h_pd = np.empty(n_conf + 2, dtype=np.int64)
        n_codes = 1
        for i in range(rf_off[r0], rf_off[r1]):
            n_codes = max(n_codes, rf_feat[i] + 1)
        slot_of = np.empty(n_codes, dtype=np.int64)
        for r in range(r0, r1):
            _match_row(
                r, gt_off, pd_off, gt_feat, pd_feat, pd_npass,
                pair_off, pair_gt, pair_pd, pair_iou,
                n_conf, class_aware, rf_off, rf_feat, ev_off,
                ev_n, ev_pair, rf_ngt, rf_until, iv_n, iv_rf, iv_val, row_iou,
                gt_slot, gt_stamp, pd_stamp, idx, buf, val, vbuf, o_k, live, o_g, o_p,
                o_pass, o_same, same, ngt, kept, n_kept, iou_sum,
                is_summed, summed, g_top, h_def, h_g, h_pd, slot_of,
            )


ROWS_PER_CHUNK = 64


@njit(cache=True, nogil=True, _nrt=False)
def _match_row(
    r, gt_off, pd_off, gt_feat, pd_feat, pd_npass,
    pair_off, pair_gt, pair_pd, pair_iou,
    n_conf, class_aware, rf_off, rf_feat, ev_off,
    ev_n, ev_pair, rf_ngt, rf_until, iv_n, iv_rf, iv_val, row_iou,
    gt_slot, gt_stamp, pd_stamp, idx, buf, val, vbuf, o_k, live, o_g, o_p, o_pass, o_same,
    same, ngt, kept, n_kept, iou_sum, is_summed, summed, g_top, h_def, h_g, h_pd, slot_of,
):
    """One data row of :func:`greedy_match_by_iou`, on scratch arrays owned by the caller
    (``is_summed`` and ``iou_sum`` must be all zero / False on entry and are left so).
    Compiled without reference counts (``_nrt=False``: it allocates nothing and returns no
    array): a call with ~50 arrays cost ~100 atomic count updates per data row."""
    g0, g1 = gt_off[r], gt_off[r + 1]
    p0, p1 = pd_off[r], pd_off[r + 1]
    k0, k1 = pair_off[r], pair_off[r + 1]
    f0, f1 = rf_off[r], rf_off[r + 1]
    n_g, n_p, n_k, n_f = g1 - g0, p1 - p0, k1 - k0, f1 - f0
    feats = rf_feat[f0:f1]
    cap = min(n_g, n_p)

    # Slots: the position of each annotation's feature among the row's features (a lookup
    # table over feature codes, set for this row's features).
    for f in range(n_f):
        slot_of[feats[f]] = f
    ngt[:n_f] = 0
    for i in range(n_g):
        gt_slot[i] = slot_of[gt_feat[g0 + i]]
        ngt[gt_slot[i]] += 1
    for f in range(n_f):
        rf_ngt[f0 + f] = ngt[f]
    _row_kept(pd_feat, pd_npass, p0, n_p, slot_of, n_f, n_conf, kept, n_kept)
    # h_def[u]: slots whose IoU metric is defined at exactly u thresholds; its suffix sums
    # count the defined per-feature values at each c
    h_def[:] = 0
    for f in range(n_f):
        until = 0  # thresholds at which max(ngt, kept) > 0 (kept does not grow with c)
        for c in range(n_conf):
            if ngt[f] > 0 or kept[f, c + 1] > 0:
                until = c + 1
        rf_until[f0 + f] = until
        h_def[until] += 1
    for u in range(n_conf - 1, -1, -1):
        h_def[u] += h_def[u + 1]

    # The pairs in walk order (stable descending IoU keeps gt-major order among equal IoUs:
    # the tie rule), gathered once into contiguous arrays that every walk reads. Pairs whose
    # prediction passes no confidence threshold never match and are left out.
    order = buf if argsort_desc_stable_kv(pair_iou[k0:k1], idx, buf, val, vbuf) else idx
    n_live = 0  # the walk at c visits only pairs whose prediction passes c: these lists
    n_same = 0  # (all pairs / same-feature pairs, in walk order) shrink as c grows
    for i in range(n_k):
        k = order[i] + k0
        npass_k = pd_npass[pair_pd[k]]
        if npass_k <= 0:
            continue
        o_k[n_live] = k
        o_g[n_live] = pair_gt[k] - g0
        o_p[n_live] = pair_pd[k] - p0
        o_pass[n_live] = npass_k
        o_same[n_live] = gt_feat[pair_gt[k]] == pd_feat[pair_pd[k]]
        if o_same[n_live]:
            same[n_same] = n_live
            n_same += 1
        live[n_live] = n_live
        n_live += 1
    if class_aware:
        for w in range(n_same):
            live[w] = same[w]
        n_live = n_same
    # h_g[u] / h_pd[u]: ground truths / predictions whose walk pairs pass at most u thresholds;
    # suffix sums: how many can still match at c (the walk stops once that many did)
    g_top[:n_g] = 0
    pd_stamp[:n_p] = 0
    h_g[:] = 0
    h_pd[:] = 0
    for w in range(n_live):
        i = live[w]
        g_top[o_g[i]] = max(g_top[o_g[i]], o_pass[i])
        if pd_stamp[o_p[i]] == 0:
            pd_stamp[o_p[i]] = 1
            h_pd[o_pass[i]] += 1
    for g in range(n_g):
        h_g[g_top[g]] += 1
    for u in range(n_conf - 1, -1, -1):
        h_g[u] += h_g[u + 1]
        h_pd[u] += h_pd[u + 1]

    # A row index is taken in walk w when its stamp == w: no per-walk reset.
    gt_stamp[:n_g] = -1
    pd_stamp[:n_p] = -1
    for c in range(n_conf):
        # Once as many matches as ground truths (or kept predictions) that still have a
        # pair are made, no pair can match.
        most = min(h_g[c + 1], h_pd[c + 1], n_kept[c])

        # --- the matching walk (class-agnostic unless class_aware) ---
        # live lists the walk's pairs in walk order: every pair with o_pass > c, and possibly
        # stale ones (o_pass <= c) after a walk that ended early. The visited part keeps
        # those with o_pass > c + 1 for the next threshold; the rest is moved down as is.
        stamp = 2 * c
        e = ev_off[r] + c * cap
        n_ev = 0
        n_next = 0
        w = 0
        while w < n_live and n_ev < most:
            i = live[w]
            w += 1
            op = o_pass[i]
            if op <= c:
                continue
            if op > c + 1:
                live[n_next] = i
                n_next += 1
            g = o_g[i]
            p = o_p[i]
            if gt_stamp[g] == stamp or pd_stamp[p] == stamp:
                continue
            gt_stamp[g] = stamp
            pd_stamp[p] = stamp
            ev_pair[e + n_ev] = o_k[i]
            n_ev += 1
        rest = n_live - w
        for j in range(rest):
            live[n_next + j] = live[w + j]
        n_live = n_next + rest
        ev_n[r, c] = n_ev

        # --- the per-feature IoU metric: class-aware walk, no threshold ---
        stamp = 2 * c + 1
        n_summed = 0  # slots with a matched pair, sorted (sums run in feature order)
        n_next = 0
        for w in range(n_same):
            i = same[w]
            if o_pass[i] > c + 1:  # the same invariant as live (no early end here)
                same[n_next] = i
                n_next += 1
            g = o_g[i]
            p = o_p[i]
            if gt_stamp[g] == stamp or pd_stamp[p] == stamp:
                continue
            gt_stamp[g] = stamp
            pd_stamp[p] = stamp
            slot = gt_slot[g]
            n_summed = _insert_slot(is_summed, summed, n_summed, slot)
            iou_sum[slot] += pair_iou[o_k[i]]
        n_same = n_next

        # --- the data row's mean IoU metric: only slots with a match have a nonzero value ---
        s_iou = 0.0
        n_iv = 0
        for a in range(n_summed):
            f = summed[a]
            v = iou_sum[f] / max(kept[f, c + 1], ngt[f])  # ngt > 0: a matched ground truth
            if v != 0.0:  # at most one per matched feature: fits the event capacity
                iv_rf[e + n_iv] = f0 + f
                iv_val[e + n_iv] = v
                n_iv += 1
            s_iou += v
            iou_sum[f] = 0.0
            is_summed[f] = False
        n_iou_def = h_def[c + 1]
        row_iou[r, c] = s_iou / n_iou_def if n_iou_def > 0 else np.nan
        iv_n[r, c] = n_iv


@njit(cache=True, nogil=True, inline="always")
def pair_bin(k, pair_iou, pair_free, iou_cut):
    """The IoU bin of pair ``k``: the number of IoU thresholds it passes, i.e. of the ascending
    cuts at or below its IoU (``events.bin_cuts`` turns the thresholds and the profile's test
    into cuts); every threshold for a classification pair. ``pair_free`` has one entry per
    pair, or a single entry that holds for every pair."""
    if pair_free[k if pair_free.shape[0] > 1 else 0]:
        return iou_cut.shape[0]
    v = pair_iou[k]
    b = 0
    for q in range(iou_cut.shape[0]):  # no early exit: branch-free (see count_at_or_below)
        b += iou_cut[q] <= v
    return b


@njit(cache=True, nogil=True, inline="always")
def _insert_slot(is_in, slots, n, slot):
    """Add ``slot`` to the ascending list ``slots[:n]`` unless ``is_in[slot]``; the new
    length. A row has few features, so an insertion keeps sums in feature order cheaply."""
    if is_in[slot]:
        return n
    is_in[slot] = True
    a = n
    while a > 0 and slots[a - 1] > slot:
        slots[a] = slots[a - 1]
        a -= 1
    slots[a] = slot
    return n + 1


@njit(cache=True, nogil=True, inline="always")
def _row_kept(pd_feat, pd_npass, p0, n_p, slot_of, n_f, n_conf, kept, n_kept):
    """kept[f, c + 1]: predictions of the row's slot f passing confidence threshold c (a
    histogram of npass summed from the top); n_kept[c] over all slots."""
    kept[:n_f, :] = 0
    for j in range(n_p):
        kept[slot_of[pd_feat[p0 + j]], pd_npass[p0 + j]] += 1
    n_kept[:] = 0
    for f in range(n_f):
        for c in range(n_conf - 1, -1, -1):
            kept[f, c] += kept[f, c + 1]
        for c in range(n_conf):
            n_kept[c] += kept[f, c + 1]


@njit(cache=True, nogil=True)
def row_tables_range(gt_off, pd_off, gt_feat, pd_feat, pd_npass, rf_off, rf_feat, rf_ngt,
                     rf_until, ev_roff, ev_c, ev_k, pair_gt, pair_pd, pair_iou, pair_free,
                     iou_cut, row_counts, row_means, r0, r1):
    """The data-row table of an IoU-ordered walk for rows ``r0 <= r < r1``, from its match
    events: row_counts[(tp, fp, fn), r, c, t] summed over the row's features and
    row_means[(precision, recall, f1), r, c, t], the means of the per-feature values defined on
    the row (NaN when none) — summed in feature order, as the walk would.

    ev_roff : CSR offsets of the events over data rows (events of a row by confidence index);
    ev_k : each event's pair, whose ground truth, prediction and IoU bin (:func:`pair_bin`) are
    read in place; same-feature events count.
    rf_* : per row, the sorted features present, their ground truths and ``rf_until`` (the
    IoU metric of the feature is defined at c < rf_until).
    """
    n_conf, n_iou = row_counts.shape[2], row_counts.shape[3]
    mf = 1
    n_codes = 1
    for r in range(r0, r1):
        mf = max(mf, rf_off[r + 1] - rf_off[r])
    for i in range(rf_off[r0], rf_off[r1]):
        n_codes = max(n_codes, rf_feat[i] + 1)
    slot_of = np.empty(n_codes, dtype=np.int64)
    kept = np.empty((mf, n_conf + 1), dtype=np.int64)
    n_kept = np.empty(n_conf + 1, dtype=np.int64)
    tp_bins = np.zeros((mf, n_iou + 1), dtype=np.int64)
    is_active = np.zeros(mf, dtype=np.bool_)
    active = np.empty(mf, dtype=np.int64)
    sums = np.empty((3, n_iou), dtype=np.float64)
    tp_tot = np.empty(n_iou, dtype=np.int64)
    _row_tables_rows(gt_off, pd_off, gt_feat, pd_feat, pd_npass, rf_off, rf_feat, rf_ngt,
                     rf_until, ev_roff, ev_c, ev_k, pair_gt, pair_pd, pair_iou, pair_free,
                     iou_cut, row_counts, row_means, slot_of, kept, n_kept, tp_bins, is_active,
                     active, sums, tp_tot, r0, r1)


@njit(cache=True, nogil=True, _nrt=False)
def _row_tables_rows(gt_off, pd_off, gt_feat, pd_feat, pd_npass, rf_off, rf_feat, rf_ngt,
                     rf_until, ev_roff, ev_c, ev_k, pair_gt, pair_pd, pair_iou, pair_free,
                     iou_cut, row_counts, row_means, slot_of, kept, n_kept, tp_bins, is_active,
                     active, sums, tp_tot, r0, r1):
    """The rows of :func:`row_tables_range` on its scratch, compiled without reference counts
    (the inlined helpers' array arguments cost two atomic updates per array and call)."""
    n_conf, n_iou = row_counts.shape[2], row_counts.shape[3]
    for r in range(r0, r1):
        f0, n_f = rf_off[r], rf_off[r + 1] - rf_off[r]
        n_g = gt_off[r + 1] - gt_off[r]
        for f in range(n_f):
            slot_of[rf_feat[f0 + f]] = f
        _row_kept(pd_feat, pd_npass, pd_off[r], pd_off[r + 1] - pd_off[r], slot_of, n_f,
                  n_conf, kept, n_kept)
        n_r_def = 0  # slots with a ground truth: recall defined at every threshold
        for f in range(n_f):
            if rf_ngt[f0 + f] > 0:
                n_r_def += 1
        e = ev_roff[r]
        for c in range(n_conf):
            n_active = 0  # slots with a same-feature match; only they vary along the IoU axis
            while e < ev_roff[r + 1] and ev_c[e] == c:
                k = ev_k[e]
                g, p = pair_gt[k], pair_pd[k]
                if gt_feat[g] == pd_feat[p]:
                    slot = slot_of[gt_feat[g]]
                    n_active = _insert_slot(is_active, active, n_active, slot)
                    tp_bins[slot, pair_bin(k, pair_iou, pair_free, iou_cut)] += 1
                e += 1
            n_p_def = 0  # slots keeping a prediction / whose IoU metric is defined at c
            n_iou_def = 0
            for f in range(n_f):
                if kept[f, c + 1] > 0:
                    n_p_def += 1
                if rf_until[f0 + f] > c:
                    n_iou_def += 1
            # tp at IoU index t counts the events whose bin is > t: reverse cumulative sum
            for a in range(n_active):
                f = active[a]
                acc = 0
                for b in range(n_iou, -1, -1):
                    acc += tp_bins[f, b]
                    tp_bins[f, b] = acc
            # sums over the active slots in slot order for every t at once (each t's sums see
            # the same additions in the same order as a loop over slots per t); a slot's tp
            # falls in few steps along t, so its three ratios are divided only when it changes
            sums[:, :] = 0.0
            tp_tot[:] = 0
            for a in range(n_active):
                f = active[a]
                kf = kept[f, c + 1]
                ng = np.int64(rf_ngt[f0 + f])
                last = -1
                q_p = q_r = q_f = 0.0
                for t in range(n_iou):
                    tp = tp_bins[f, t + 1]
                    if tp != last:
                        last = tp
                        q_p = tp / kf
                        q_r = tp / ng
                        q_f = 2.0 * tp / (kf + ng)
                    tp_tot[t] += tp
                    sums[0, t] += q_p
                    sums[1, t] += q_r
                    sums[2, t] += q_f
            for t in range(n_iou):
                row_counts[0, r, c, t] = tp_tot[t]
                row_counts[1, r, c, t] = n_kept[c] - tp_tot[t]
                row_counts[2, r, c, t] = n_g - tp_tot[t]
                row_means[0, r, c, t] = sums[0, t] / n_p_def if n_p_def > 0 else np.nan
                row_means[1, r, c, t] = sums[1, t] / n_r_def if n_r_def > 0 else np.nan
                row_means[2, r, c, t] = sums[2, t] / n_iou_def if n_iou_def > 0 else np.nan
            for a in range(n_active):
                f = active[a]
                tp_bins[f, :] = 0
                is_active[f] = False


@njit(cache=True, nogil=True)
def greedy_match_by_score(gt_off, walk_off, walk_gt, walk_pd, walk_iou, walk_nt, n_iou,
                          ev_off, ev_n, ev_walk, r0, r1):
    """Score-ordered greedy matching of data rows ``[r0, r1)``, one walk per IoU threshold.

    walk_* : each row's candidate pairs (CSR ``walk_off``) in walk order — by the prediction's
    rank (confidence descending, ties in input order), then ground truths in input order;
    walk_gt / walk_pd global indices, walk_iou the IoU, and walk_nt the number of IoU thresholds
    the pair passes (it passes threshold index t iff t < walk_nt: the IoU test, strict or not,
    is applied by the caller).
    ev_off : per row, event capacity offsets (n_iou * min(n_gt, n_pd) per row).

    At threshold t each prediction, in walk order, takes the still-free ground truth of highest
    IoU among its pairs that pass t (ties: the first in ground-truth input order). A prediction
    cut by a confidence threshold comes after every prediction kept there, so truncating this
    walk gives the walk of every confidence threshold.
    Outputs: ev_n[r, t] matches of row r at threshold t, their walk indices stored in
    ``ev_walk`` from ``ev_off[r] + t * cap_r``.
    """
    mg = 1
    for r in range(r0, r1):
        mg = max(mg, gt_off[r + 1] - gt_off[r])
    stamp = np.empty(mg, dtype=np.int64)  # ground truth g is taken in walk t iff stamp == t
    for r in range(r0, r1):
        g0 = gt_off[r]
        n_g = gt_off[r + 1] - g0
        k0, k1 = walk_off[r], walk_off[r + 1]
        cap = (ev_off[r + 1] - ev_off[r]) // n_iou if n_iou > 0 else 0
        stamp[:n_g] = -1
        for t in range(n_iou):
            e = ev_off[r] + t * cap
            n = 0
            k = k0
            while k < k1 and n < cap:
                p = walk_pd[k]
                best = -1
                best_iou = -1.0
                while k < k1 and walk_pd[k] == p:
                    if t < walk_nt[k] and stamp[walk_gt[k] - g0] != t and walk_iou[k] > best_iou:
                        best = k
                        best_iou = walk_iou[k]
                    k += 1
                if best >= 0:
                    stamp[walk_gt[best] - g0] = t
                    ev_walk[e + n] = best
                    n += 1
            ev_n[r, t] = n
