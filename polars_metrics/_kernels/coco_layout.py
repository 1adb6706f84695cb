"""The COCO engine's sort orders, category by category (see ``coco.py`` for the layout).

pycocotools' accumulate order is (category, score descending, then the order the detections
arrived in); its ``evaluateImg`` groups are (category, image) with detections in score order.
Both orders are stable sorts *inside* a category, so after one counting pass by category each
category is sorted on its own: its few thousand keys stay in cache (a global radix sort
scatters over the whole array at every pass), and categories are independent units that
``_parallel.run_ranges`` spreads over threads.
"""
from __future__ import annotations

import numpy as np

from polars_metrics._kernels._jit import njit

_DIGIT_BITS = 11  # 2,048 counters per digit: six passes cover 64 bits, the counts stay in L1
_N_DIGITS = 6
_SMALL_SEGMENT = 256  # below this many keys a merge sort beats six counting passes


@njit(cache=True, nogil=True)
def descending_keys(score_bits: np.ndarray) -> np.ndarray:
    """Unsigned keys whose ascending order is the scores' descending order (equal scores,
    equal keys). ``score_bits`` is the float64 scores viewed as uint64, without NaN and with
    -0.0 folded into 0.0 (the caller adds 0.0)."""
    sign = np.uint64(1) << np.uint64(63)
    keys = np.empty(score_bits.size, np.uint64)
    for i in range(score_bits.size):
        b = score_bits[i]
        keys[i] = ~(~b if (b & sign) else (b | sign))  # total order of floats, reversed
    return keys


@njit(cache=True, nogil=True)
def _radix_segment(k: np.ndarray, o: np.ndarray, tk: np.ndarray, to: np.ndarray,
                   cnt: np.ndarray, n: int) -> bool:
    """Stable LSD radix sort of ``o[:n]`` by ``k[:n]`` (ascending); the sorted data ends in
    (k, o) when this returns False, in (tk, to) when it returns True."""
    mask = np.uint64((1 << _DIGIT_BITS) - 1)
    cnt[:, :] = 0
    for i in range(n):  # every digit's histogram in one pass
        v = k[i]
        for d in range(_N_DIGITS):
            cnt[d, np.int64((v >> np.uint64(d * _DIGIT_BITS)) & mask)] += 1
    swapped = False
    for d in range(_N_DIGITS):
        sh = np.uint64(d * _DIGIT_BITS)
        row = cnt[d]
        if row[np.int64((k[0] >> sh) & mask)] == n:
            continue  # every key has this digit: the pass would not move anything
        total = 0
        for j in range(row.size):
            c = row[j]
            row[j] = total
            total += c
        for i in range(n):
            dg = np.int64((k[i] >> sh) & mask)
            q = row[dg]
            tk[q] = k[i]
            to[q] = o[i]
            row[dg] = q + 1
        k, tk = tk, k
        o, to = to, o
        swapped = not swapped
    return swapped


@njit(cache=True, nogil=True)
def category_orders(cat_ptr: np.ndarray, by_cat: np.ndarray, keys: np.ndarray,
                    img: np.ndarray, n_img: int, acc: np.ndarray, grp: np.ndarray,
                    rank: np.ndarray, pos: np.ndarray, lo: int, hi: int) -> None:
    """For categories ``lo..hi``: ``acc[p0:p1]`` = the category's rows ``by_cat[p0:p1]``
    stably sorted by ``keys`` (ascending: score descending), and ``grp[p0:p1]`` = those
    stably sorted by ``img`` (the (category, image) groups, score order inside). Per row:
    ``pos[row]`` its position in ``acc``, ``rank[row]`` its position in its group. ``grp`` and
    ``rank`` are not written when ``n_img`` is 0, ``pos`` when it is empty."""
    longest = 0
    for c in range(lo, hi):
        longest = max(longest, cat_ptr[c + 1] - cat_ptr[c])
    k = np.empty(longest, np.uint64)
    tk = np.empty(longest, np.uint64)
    o = np.empty(longest, np.int64)
    to = np.empty(longest, np.int64)
    cnt = np.empty((_N_DIGITS, 1 << _DIGIT_BITS), np.int64)
    icnt = np.empty(n_img + 1, np.int64)
    for c in range(lo, hi):
        p0 = cat_ptr[c]
        n = cat_ptr[c + 1] - p0
        if n == 0:
            continue
        for i in range(n):
            o[i] = by_cat[p0 + i]
            k[i] = keys[o[i]]
        if n < _SMALL_SEGMENT:
            idx = np.argsort(k[:n], kind="mergesort")
            for i in range(n):
                acc[p0 + i] = o[idx[i]]
        else:
            swapped = _radix_segment(k, o, tk, to, cnt, n)
            src = to if swapped else o
            for i in range(n):
                acc[p0 + i] = src[i]
        if pos.size:
            for p in range(p0, p0 + n):
                pos[acc[p]] = p
        if n_img > 0:
            _by_image(acc, p0, n, img, n_img, icnt, grp)
            prev = -1
            r = 0
            for p in range(p0, p0 + n):
                m = img[grp[p]]
                if m != prev:
                    prev = m
                    r = 0
                rank[grp[p]] = r
                r += 1


@njit(cache=True, nogil=True)
def _by_image(order: np.ndarray, p0: int, n: int, img: np.ndarray, n_img: int,
              icnt: np.ndarray, out: np.ndarray) -> None:
    """``out[p0:p0+n]`` = ``order[p0:p0+n]`` stably sorted by ``img``."""
    if 8 * n < n_img:  # few rows over many images: a merge sort beats zeroing the counts
        seg = order[p0:p0 + n]
        idx = np.argsort(img[seg], kind="mergesort")
        for q in range(n):
            out[p0 + q] = seg[idx[q]]
        return
    icnt[:] = 0
    for p in range(p0, p0 + n):
        icnt[img[order[p]] + 1] += 1
    for j in range(n_img):
        icnt[j + 1] += icnt[j]
    for p in range(p0, p0 + n):
        m = img[order[p]]
        out[p0 + icnt[m]] = order[p]
        icnt[m] += 1
