"""Kernels for the COCO profile's count tables (``polars_metrics.coco.cube``).

The COCO matcher (``_kernels/coco.py``) leaves one packed code per detection and chunk of up to
16 IoU thresholds: bit ``t`` = true positive at threshold ``t`` of the chunk, bit ``16 + t`` =
ignored there. A detection that passes ``n`` confidence thresholds counts in the cells
``c < n`` of its thresholds; instead of expanding every (threshold × detection) into cells, the
kernel adds each detection once to a histogram at ``n - 1`` and sums the histogram from the top
of the confidence axis.
"""
from __future__ import annotations

import numpy as np

from polars_metrics._kernels._jit import njit

IGN_SHIFT = 16  # as _kernels/coco.py: bits 0..15 true positive, 16..31 ignored
CHUNK = 16  # IoU thresholds per code word


@njit(cache=True, nogil=True)
def coco_cell_counts(code, conf, conf_thr, d_key, d_img, key_tp, key_pd, img_tp, img_pd, lo, hi):
    """True positives and counted detections per (t, key, c) and per (t, image, c), for the
    IoU thresholds ``lo <= t < hi`` (threads take disjoint ranges of t: disjoint cells).

    code : (n_rows, n_chunks) int64, the matcher's code of each prediction row at the matched
        area (rows not evaluated carry every ignore bit); conf : (n_rows,) scores and
        conf_thr : the ascending confidence thresholds (a row passes the first
        ``count(conf_thr <= conf)`` of them); d_key : (n_rows,) key in ``[0, n_keys)``
        (slice * F + category) and d_img : (n_rows,) image of each evaluated row.
    The outputs, zeroed by the caller: ``key_*`` (n_iou, n_keys, n_conf) int64, ``img_*``
    (n_iou, n_img, n_conf) int32 (an image's detections are far fewer than 2**31; a result
    keeps these until its data-row table is read). A row counts at (t, c) when c < its passed
    count, it is not ignored at t (``*_pd``) and, for ``*_tp``, it is a true positive at t.
    """
    n_conf = conf_thr.size
    full = (1 << CHUNK) - 1
    for i in range(code.shape[0]):
        n = 0
        v = conf[i]
        for q in range(n_conf):  # branch-free: the thresholds are few
            n += conf_thr[q] <= v
        if n == 0:
            continue
        c = n - 1
        for ch in range(lo // CHUNK, (hi - 1) // CHUNK + 1):
            w = code[i, ch]
            ign = (w >> IGN_SHIFT) & full
            if ign == full:
                continue  # ignored at every threshold of the chunk (or not evaluated)
            k = d_key[i]
            im = d_img[i]
            t0 = ch * CHUNK
            for t in range(max(t0, lo), min(t0 + CHUNK, hi)):
                b = t - t0
                if (ign >> b) & 1:
                    continue
                key_pd[t, k, c] += 1
                img_pd[t, im, c] += 1
                if (w >> b) & 1:
                    key_tp[t, k, c] += 1
                    img_tp[t, im, c] += 1
    # a row counts in every cell c' <= c: sum each histogram from the top of the c axis
    _sum_from_top(key_tp, lo, hi)
    _sum_from_top(key_pd, lo, hi)
    _sum_from_top(img_tp, lo, hi)
    _sum_from_top(img_pd, lo, hi)


@njit(cache=True, nogil=True)
def _sum_from_top(h, lo, hi):
    """``h[t, k, c] = sum of h[t, k, c:]`` for ``lo <= t < hi`` (int64 or int32 cells)."""
    for t in range(lo, hi):
        for k in range(h.shape[1]):
            for c in range(h.shape[2] - 2, -1, -1):
                h[t, k, c] += h[t, k, c + 1]


@njit(cache=True, nogil=True)
def image_rows(tp, pd, n_gt, tp_rows, fp, fn, precision, recall, f1, lo, hi):
    """The data-row table's counts and ratios for the images ``lo..hi``, rows in (image, c, t)
    order (threads take disjoint image ranges).

    tp, pd : (n_iou, n_img, n_conf) int32 true positives and counted detections; n_gt :
    (n_img,) counted ground truths. Writes flat ``tp_rows``, ``fp``, ``fn`` (int64) and ``precision``,
    ``recall``, ``f1`` (float64, NaN where the denominator is 0: the caller turns NaN into
    null), each the IEEE division of the int64 counts as float64 that ``metrics`` makes.
    """
    n_iou, _, n_conf = tp.shape
    for i in range(lo, hi):
        g = n_gt[i]
        q = i * n_conf * n_iou
        for c in range(n_conf):
            for t in range(n_iou):
                a = np.int64(tp[t, i, c])
                b = np.int64(pd[t, i, c]) - a
                d = g - a
                tp_rows[q] = a
                fp[q] = b
                fn[q] = d
                precision[q] = a / (a + b) if a + b > 0 else np.nan
                recall[q] = a / (a + d) if a + d > 0 else np.nan
                f1[q] = (2 * a) / (2 * a + b + d) if 2 * a + b + d > 0 else np.nan
                q += 1
