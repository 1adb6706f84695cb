"""The COCO engine's detection numbering and sort orders, category by category (see
``coco.py`` for the layout).

pycocotools' accumulate order is (category, score descending, then the order the detections
arrived in); its ``evaluateImg`` groups are (category, image) with detections in score order.
Both orders are stable sorts *inside* a category. :func:`evaluation_rows` numbers the
detections by (category, image, row) in one counting pass, so each category's detections are
one contiguous range; :func:`category_orders` then sorts each category on its own: its few
thousand keys and every read and write stay in cache (a global radix sort scatters over the
whole array at every pass), and categories are independent units that ``_parallel.run_ranges``
spreads over threads.
"""
from __future__ import annotations

import numpy as np

from polars_metrics._kernels._jit import njit

_DIGIT_BITS = 11  # 2,048 counters per digit: six passes cover 64 bits, the counts stay in L1
_N_DIGITS = 6
_SMALL_SEGMENT = 256  # below this many keys a merge sort beats six counting passes
_SMALL_RUN = 32  # up to this many rows of one group an insertion sort beats a merge sort


@njit(cache=True, nogil=True)
def descending_keys(score_bits: np.ndarray) -> np.ndarray:
    """Unsigned keys whose ascending order is the scores' descending order (equal scores,
    equal keys). ``score_bits`` is the float64 scores viewed as uint64, without NaN and with
    -0.0 folded into 0.0 (the caller adds 0.0). The kernels compute each key on the fly
    (:func:`_descending_key`); this array form is what the tests check the order with."""
    keys = np.empty(score_bits.size, np.uint64)
    for i in range(score_bits.size):
        keys[i] = _descending_key(score_bits[i])
    return keys


@njit(cache=True, nogil=True, inline="always")
def _descending_key(b: np.uint64) -> np.uint64:
    """The key of one score's bits (see :func:`descending_keys`)."""
    sign = np.uint64(1) << np.uint64(63)
    return ~(~b if (b & sign) else (b | sign))  # total order of floats, reversed


@njit(cache=True, nogil=True, _nrt=False)
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
def category_orders(cat_ptr: np.ndarray, score: np.ndarray, img: np.ndarray,
                    acc: np.ndarray, grp: np.ndarray, rank: np.ndarray, pos: np.ndarray,
                    score_acc: np.ndarray, rank_acc: np.ndarray, lo: int, hi: int) -> None:
    """For categories ``lo..hi``, whose rows ``cat_ptr[c]:cat_ptr[c+1]`` are already in
    (image, input) order: ``acc[p0:p1]`` = those rows stably sorted by score, descending
    (``score`` without NaN, -0.0 folded into 0.0: the caller adds 0.0), and ``grp[p0:p1]`` =
    each run of one image sorted the same way
    (the (category, image) groups, score order inside). Per row: ``pos[row]`` its position in
    ``acc``, ``rank[row]`` its position in its group; per position ``p`` of ``acc``:
    ``score_acc[p]`` / ``rank_acc[p]`` the score / rank of ``acc[p]``.

    ``grp``, ``rank`` and ``rank_acc`` are not written when ``img`` is empty, ``pos`` and
    ``score_acc`` when they are empty. A category's rows are contiguous, so every read and
    write stays inside its range: a few thousand rows that stay in cache."""
    longest = 0
    for c in range(lo, hi):
        longest = max(longest, cat_ptr[c + 1] - cat_ptr[c])
    k = np.empty(longest, np.uint64)
    tk = np.empty(longest, np.uint64)
    o = np.empty(longest, np.int64)
    to = np.empty(longest, np.int64)
    cnt = np.empty((_N_DIGITS, 1 << _DIGIT_BITS), np.int64)
    groups = img.size > 0
    bits = score.view(np.uint64)
    for c in range(lo, hi):
        p0 = cat_ptr[c]
        p1 = cat_ptr[c + 1]
        n = p1 - p0
        if n == 0:
            continue
        for i in range(n):
            o[i] = p0 + i
            k[i] = _descending_key(bits[p0 + i])
        if n < _SMALL_SEGMENT:
            idx = np.argsort(k[:n], kind="mergesort")
            for i in range(n):
                acc[p0 + i] = o[idx[i]]
        else:
            src = to if _radix_segment(k, o, tk, to, cnt, n) else o
            for i in range(n):
                acc[p0 + i] = src[i]
        if pos.size:
            for p in range(p0, p1):
                pos[acc[p]] = p
        if score_acc.size:
            for p in range(p0, p1):
                score_acc[p] = score[acc[p]]
        if groups:
            q = p0
            while q < p1:
                e = q + 1
                while e < p1 and img[e] == img[q]:
                    e += 1
                _sort_run(bits, q, e, grp)
                for r in range(e - q):
                    rank[grp[q + r]] = r
                q = e
            for p in range(p0, p1):
                rank_acc[p] = rank[acc[p]]


@njit(cache=True, nogil=True)
def _sort_run(bits: np.ndarray, q: int, e: int, out: np.ndarray) -> None:
    """``out[q:e]`` = the rows ``q..e-1`` stably sorted by score, descending (``bits``: the
    scores as uint64): insertion sort for the short runs of a group (most hold a few
    detections), merge sort for long ones."""
    if e - q > _SMALL_RUN:
        keys = np.empty(e - q, np.uint64)
        for i in range(e - q):
            keys[i] = _descending_key(bits[q + i])
        idx = np.argsort(keys, kind="mergesort")
        for i in range(e - q):
            out[q + i] = q + idx[i]
        return
    for i in range(q, e):
        key = _descending_key(bits[i])
        j = i
        while j > q and _descending_key(bits[out[j - 1]]) > key:  # strict: ties keep order
            out[j] = out[j - 1]
            j -= 1
        out[j] = i


@njit(cache=True, nogil=True)
def evaluation_rows(image_key: np.ndarray, key_lo: int, image_of_key: np.ndarray, cat: np.ndarray,
                    n_img: int, n_cat: int, by_category: bool, score: np.ndarray,
                    area: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                               np.ndarray]:
    """The rows that take part in the engine's order, with their image, category, score and
    area: ``(rows, d_img, d_cat, d_score, d_area)``.

    Row ``r``'s image is ``image_of_key[image_key[r] - key_lo]`` (``n_img`` when the key is
    outside the table: an image absent from the ground truth), its category ``cat[r]`` (-1:
    none); rows with both take part. The order is (category, image, row) when
    ``by_category``, else (image, category, row): pycocotools' order inside a category, or
    inside a pooled image. Numbering the detections this way makes each category's rows
    contiguous, so the per-category sorts and everything after them read and write inside
    one small range. Results files usually list detections image by image: then one counting
    pass places every row, its score (+ 0.0: -0.0 becomes 0.0, as comparisons treat it) and
    its area (``area`` empty: ``d_area`` is empty) — values written to their place cost less
    than a gather of them afterwards."""
    n = image_key.size
    primary = n_cat if by_category else n_img
    cnt = np.zeros(primary + 1, np.int64)
    m = 0
    in_order = True  # the rows that take part already in secondary order
    last = -1
    for r in range(n):
        i = _image(image_key, key_lo, image_of_key, n_img, r)
        if i < n_img and cat[r] >= 0:
            a, b = (cat[r], i) if by_category else (i, cat[r])
            cnt[a + 1] += 1
            m += 1
            in_order = in_order and b >= last
            last = b
    for a in range(primary):
        cnt[a + 1] += cnt[a]
    src = (np.empty(0, np.int64) if in_order else
           _secondary_order(image_key, key_lo, image_of_key, cat, n_img, n_cat, by_category, m))
    rows = np.empty(m, np.int64)
    d_img = np.empty(m, np.int64)
    d_cat = np.empty(m, np.int64)
    d_score = np.empty(m, np.float64)
    with_area = area.size > 0
    d_area = np.empty(m if with_area else 0, np.float64)
    for j in range(n if in_order else m):
        r = j if in_order else src[j]
        i = _image(image_key, key_lo, image_of_key, n_img, r)
        c = cat[r]
        if i < n_img and c >= 0:
            a = c if by_category else i
            q = cnt[a]
            cnt[a] = q + 1
            rows[q] = r
            d_img[q] = i
            d_cat[q] = c
            d_score[q] = score[r] + 0.0
            if with_area:
                d_area[q] = area[r]
    return rows, d_img, d_cat, d_score, d_area


@njit(cache=True, nogil=True, _nrt=False)
def part_counts(image_key: np.ndarray, key_lo: int, image_of_key: np.ndarray, cat: np.ndarray,
                n_img: int, by_category: bool, bounds: np.ndarray, count: np.ndarray,
                order: np.ndarray, lo: int, hi: int) -> None:
    """:func:`evaluation_rows`' counting pass over the parts ``lo <= p < hi`` of the rows
    (``bounds[p]:bounds[p+1]``), on threads: ``count[p, a + 1]`` = the part's rows taking part
    with primary key ``a``; ``order[p]`` = (1 if they are in secondary order else 0, their first
    secondary key, their last; -1, -1 when none takes part)."""
    for part in range(lo, hi):
        in_order = True
        first = -1
        last = -1
        for r in range(bounds[part], bounds[part + 1]):
            i = _image(image_key, key_lo, image_of_key, n_img, r)
            if i < n_img and cat[r] >= 0:
                a, b = (cat[r], i) if by_category else (i, cat[r])
                count[part, a + 1] += 1
                if first < 0:
                    first = b
                in_order = in_order and b >= last
                last = b
        order[part, 0] = 1 if in_order else 0
        order[part, 1] = first
        order[part, 2] = last


@njit(cache=True, nogil=True, _nrt=False)
def part_place(image_key: np.ndarray, key_lo: int, image_of_key: np.ndarray, cat: np.ndarray,
               n_img: int, by_category: bool, score: np.ndarray, area: np.ndarray,
               bounds: np.ndarray, start: np.ndarray, rows: np.ndarray, d_img: np.ndarray,
               d_cat: np.ndarray, d_score: np.ndarray, d_area: np.ndarray, lo: int,
               hi: int) -> None:
    """:func:`evaluation_rows`' placing pass over parts of rows already in secondary order:
    part ``p``'s first row of primary key ``a`` goes to ``start[p, a]`` (the rows of the parts
    before it with that key come first, so the order is the serial pass's)."""
    with_area = area.size > 0
    for part in range(lo, hi):
        nxt = start[part]
        for r in range(bounds[part], bounds[part + 1]):
            i = _image(image_key, key_lo, image_of_key, n_img, r)
            c = cat[r]
            if i < n_img and c >= 0:
                a = c if by_category else i
                q = nxt[a]
                nxt[a] = q + 1
                rows[q] = r
                d_img[q] = i
                d_cat[q] = c
                d_score[q] = score[r] + 0.0
                if with_area:
                    d_area[q] = area[r]


@njit(cache=True, nogil=True, inline="always")
def _image(image_key, key_lo, image_of_key, n_img, r):
    v = image_key[r] - key_lo
    return image_of_key[v] if 0 <= v < image_of_key.size else n_img


@njit(cache=True, nogil=True)
def _secondary_order(image_key, key_lo, image_of_key, cat, n_img, n_cat, by_category, m):
    """The ``m`` rows that take part, stably sorted by the secondary key (image when
    ``by_category``, else category)."""
    secondary = n_img if by_category else n_cat
    c2 = np.zeros(secondary + 1, np.int64)
    for r in range(image_key.size):
        i = _image(image_key, key_lo, image_of_key, n_img, r)
        if i < n_img and cat[r] >= 0:
            c2[(i if by_category else cat[r]) + 1] += 1
    for b in range(secondary):
        c2[b + 1] += c2[b]
    out = np.empty(m, np.int64)
    for r in range(image_key.size):
        i = _image(image_key, key_lo, image_of_key, n_img, r)
        if i < n_img and cat[r] >= 0:
            b = i if by_category else cat[r]
            out[c2[b]] = r
            c2[b] += 1
    return out


@njit(cache=True, nogil=True)
def category_ids(k: np.ndarray, cid: np.ndarray, out: np.ndarray) -> None:
    """``out[k[r]] = cid[r]`` for the rows with both (``>= 0``), the last row winning, as
    numpy's ``out[k[ok]] = cid[ok]`` does, without its masks and copies."""
    for r in range(k.size):
        if k[r] >= 0 and cid[r] >= 0:
            out[k[r]] = cid[r]
