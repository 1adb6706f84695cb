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
def _suffix_sum(h):
    """In place over axis 1: h[k, c, t] = sum of h[k, j, t] for j >= c."""
    K, C, T = h.shape
    for k in range(K):
        for c in range(C - 2, -1, -1):
            for t in range(T):
                h[k, c, t] += h[k, c + 1, t]


@njit(cache=True, nogil=True)
def coco_cell_counts(code, npass, d_key, d_img, n_keys, n_img, n_conf, n_iou):
    """True positives and counted detections per (key, c, t) and per (image, c, t).

    code : (n_rows, n_chunks) int64, the matcher's code of each prediction row at the matched
        area (rows not evaluated carry every ignore bit); npass : (n_rows,) confidence
        thresholds passed; d_key : (n_rows,) key in ``[0, n_keys)`` (slice * F + category) and
        d_img : (n_rows,) image in ``[0, n_img)`` of each evaluated row.
    Returns ``(key_tp, key_pd, img_tp, img_pd)``, each (keys or images, n_conf, n_iou) int64:
    a row counts at (c, t) when c < npass, it is not ignored at t (``*_pd``) and, for
    ``*_tp``, it is a true positive at t.
    """
    key_tp = np.zeros((n_keys, n_conf, n_iou), np.int64)
    key_pd = np.zeros((n_keys, n_conf, n_iou), np.int64)
    img_tp = np.zeros((n_img, n_conf, n_iou), np.int64)
    img_pd = np.zeros((n_img, n_conf, n_iou), np.int64)
    n_chunk = code.shape[1]
    full = (1 << CHUNK) - 1
    for i in range(code.shape[0]):
        n = npass[i]
        if n <= 0:
            continue
        c = n - 1
        k = -1
        im = -1
        for ch in range(n_chunk):
            w = code[i, ch]
            ign = (w >> IGN_SHIFT) & full
            if ign == full:
                continue  # ignored at every threshold of the chunk (or not evaluated)
            if k < 0:
                k = d_key[i]
                im = d_img[i]
            t0 = ch * CHUNK
            t1 = min(t0 + CHUNK, n_iou)
            for t in range(t0, t1):
                b = t - t0
                if (ign >> b) & 1:
                    continue
                key_pd[k, c, t] += 1
                img_pd[im, c, t] += 1
                if (w >> b) & 1:
                    key_tp[k, c, t] += 1
                    img_tp[im, c, t] += 1
    _suffix_sum(key_tp)
    _suffix_sum(key_pd)
    _suffix_sum(img_tp)
    _suffix_sum(img_pd)
    return key_tp, key_pd, img_tp, img_pd


@njit(cache=True, nogil=True)
def image_rows(tp, pd, n_gt):
    """The data-row table's counts and ratios in one pass over its (image, c, t) cells.

    tp, pd : (n_img, n_conf, n_iou) int64 true positives and counted detections; n_gt :
    (n_img,) counted ground truths. Returns flat ``fp``, ``fn`` (int64) and ``precision``,
    ``recall``, ``f1`` (float64, NaN where the denominator is 0: the caller turns NaN into
    null), each the IEEE division of the int64 counts as float64 that ``metrics`` makes.
    """
    n_img, n_conf, n_iou = tp.shape
    m = n_img * n_conf * n_iou
    fp = np.empty(m, np.int64)
    fn = np.empty(m, np.int64)
    precision = np.empty(m, np.float64)
    recall = np.empty(m, np.float64)
    f1 = np.empty(m, np.float64)
    q = 0
    for i in range(n_img):
        g = n_gt[i]
        for c in range(n_conf):
            for t in range(n_iou):
                a = tp[i, c, t]
                b = pd[i, c, t] - a
                d = g - a
                fp[q] = b
                fn[q] = d
                precision[q] = a / (a + b) if a + b > 0 else np.nan
                recall[q] = a / (a + d) if a + d > 0 else np.nan
                f1[q] = (2 * a) / (2 * a + b + d) if 2 * a + b + d > 0 else np.nan
                q += 1
    return fp, fn, precision, recall, f1
