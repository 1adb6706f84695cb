"""The COCO kernels called on threads: each takes a range of independent units (groups of
``evaluateImg``, (category, area) tasks of ``accumulate``) and releases the GIL, so
``_parallel.run_ranges`` splits the units by cumulative work over a few threads — the same
whether the kernel is the ahead-of-time compiled one (which has no parallel backend) or numba's
JIT. Every unit writes its own cells, so the results do not depend on the split.

Each function takes the kernel's arguments without ``(lo, hi)`` (and, where the kernel writes
into ``out``, returns it as the kernel used to): callers replace ``K.name(...)`` by
``threaded.name(...)``.
"""
from __future__ import annotations

import numpy as np

from polars_metrics._kernels import coco as K
from polars_metrics._kernels import coco_layout as L
from polars_metrics._kernels import rle as R
from polars_metrics._parallel import even_parts, run_ranges


def box_iou_groups(dt_xywh, dt_box_row, gt_xywh, gt_box_row, gt_crowd, grp_dt_ptr, grp_dt_idx,
                   grp_gt_ptr, grp_gt_idx, max_det: int, iou_ptr: np.ndarray) -> np.ndarray:
    """``K.box_iou_groups`` over every group: the IoU blocks (``iou_ptr`` offsets).

    >>> box = np.array([[0.0, 0.0, 2.0, 2.0]])
    >>> ptr = np.array([0, 1], np.int64)
    >>> row = np.zeros(1, np.int64)
    >>> box_iou_groups(box, row, box, row, np.zeros(1, bool), ptr, row, ptr, row, 100,
    ...                ptr).tolist()
    [1.0]
    """
    out = np.zeros(int(iou_ptr[-1]), np.float64)
    run_ranges(K.box_iou_groups, (dt_xywh, dt_box_row, gt_xywh, gt_box_row, gt_crowd, grp_dt_ptr,
                                  grp_dt_idx, grp_gt_ptr, grp_gt_idx, int(max_det), iou_ptr, out),
               iou_ptr)
    return out


def rle_iou_groups(dc, do, dh, dw, d_bb, d_ar, gc, go, gh, gw, g_bb, g_crowd, grp_dt_ptr,
                   grp_dt_idx, grp_gt_ptr, grp_gt_idx, out_ptr: np.ndarray) -> np.ndarray:
    """``R.rle_iou_groups`` over every group: the mask IoU blocks (``out_ptr`` offsets)."""
    out = np.zeros(int(out_ptr[-1]), np.float64)
    run_ranges(R.rle_iou_groups, (dc, do, dh, dw, d_bb, d_ar, gc, go, gh, gw, g_bb, g_crowd,
                                  grp_dt_ptr, grp_dt_idx, grp_gt_ptr, grp_gt_idx, out_ptr, out),
               out_ptr)
    return out


def coco_match(iou, iou_ptr, grp_dt_ptr, grp_dt_idx, grp_gt_ptr, grp_gt_idx, max_det, gt_area,
               gt_ignore, gt_crowd, gt_id_zero, gt_row, dt_area, dt_pos, dt_row, area_lo, area_hi,
               iou_thrs, keep_area, code, match_gt, match_ignore) -> None:
    """``K.coco_match`` over every group, with the kernel's arguments minus ``(groups, lo, hi)``.

    A detection whose IoU with every ground truth of its group is below the lowest threshold
    stays unmatched at every threshold: its code is 0, or "ignored everywhere" when its area
    is outside the range. That is settled first for every detection (``K.settle_unmatched``);
    the kernel then visits only the groups where some detection reaches a ground truth (a
    group's work: its IoU block and its detections)."""
    n_thr = iou_thrs.size
    all_ignored = np.uint32(((1 << n_thr) - 1) << K.IGN_SHIFT)
    parts = even_parts(dt_area.size)
    run_ranges(K.settle_unmatched, (dt_area, dt_pos, area_lo, area_hi, all_ignored, code, parts),
               parts)
    if 0 <= keep_area and match_gt.shape[0]:
        # the rows of evaluated detections (the first max_det of each group) start unmatched
        n_grp = grp_dt_ptr.size - 1
        within = np.arange(grp_dt_idx.size) - np.repeat(grp_dt_ptr[:-1], np.diff(grp_dt_ptr))
        d = grp_dt_idx[within < max_det] if n_grp else grp_dt_idx[:0]
        rows = dt_row[d]
        match_gt[rows] = -1
        match_ignore[rows] = ((dt_area[d] < area_lo[keep_area])
                              | (dt_area[d] > area_hi[keep_area]))[:, None]
    thr_min = float(iou_thrs.min()) if n_thr else np.inf
    reached = np.concatenate([[0], np.cumsum(iou >= thr_min)])
    groups = np.flatnonzero(reached[iou_ptr[1:]] > reached[iou_ptr[:-1]])
    work = np.diff(iou_ptr)[groups] + np.diff(grp_dt_ptr)[groups]
    run_ranges(K.coco_match, (iou, iou_ptr, grp_dt_ptr, grp_dt_idx, grp_gt_ptr, grp_gt_idx, max_det,
                              gt_area, gt_ignore, gt_crowd, gt_id_zero, gt_row, dt_area, dt_pos,
                              dt_row, area_lo, area_hi, iou_thrs, keep_area, code, match_gt,
                              match_ignore, groups),
               np.concatenate([[0], np.cumsum(work)]).astype(np.int64))


def evaluation_rows(image_key, key_lo, image_of_key, cat, n_img: int, n_cat: int,
                    by_category: bool, score, area):
    """``L.evaluation_rows``: its counting and placing passes over parts of the rows on
    threads when the rows taking part come in secondary order (results files list detections
    image by image), else the serial kernel. The same arrays either way.

    >>> rows, img, cat, score, area = evaluation_rows(
    ...     np.array([7, 7, 9]), 7, np.array([0, 2, 1]), np.array([1, 0, 0]), 2, 2, True,
    ...     np.array([0.5, 0.6, 0.7]), np.empty(0))
    >>> rows.tolist(), img.tolist(), cat.tolist(), score.tolist()
    ([1, 2, 0], [0, 1, 0], [0, 0, 1], [0.6, 0.7, 0.5])
    """
    args = (image_key, key_lo, image_of_key, cat, n_img)
    parts = even_parts(image_key.size)
    n_parts = parts.size - 1
    primary = n_cat if by_category else n_img
    if n_parts > 1:
        count = np.zeros((n_parts, primary + 1), np.int64)
        order = np.empty((n_parts, 3), np.int64)
        run_ranges(L.part_counts, (*args, by_category, parts, count, order), parts)
        last, in_order = -1, True
        for ok, first, end in order.tolist():
            if first >= 0:
                in_order = in_order and bool(ok) and first >= last
                last = end
        if in_order:
            per_key = count[:, 1:]
            key_start = np.zeros(primary, np.int64)
            np.cumsum(per_key.sum(axis=0)[:-1], out=key_start[1:])
            start = np.ascontiguousarray(key_start + np.cumsum(per_key, axis=0) - per_key)
            m = int(per_key.sum())
            rows, d_img, d_cat = (np.empty(m, np.int64) for _ in range(3))
            d_score = np.empty(m, np.float64)
            d_area = np.empty(m if area.size else 0, np.float64)
            run_ranges(L.part_place, (*args, by_category, score, area, parts, start, rows, d_img,
                                      d_cat, d_score, d_area), parts)
            return rows, d_img, d_cat, d_score, d_area
    return L.evaluation_rows(*args, n_cat, by_category, score, area)


def group_pointers(d_cat_ptr, d_img, d_grp, g_cat_ptr, g_img, g_grp,
                   max_det: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The groups' CSR pointers ``dt_ptr`` / ``gt_ptr`` into ``d_grp`` / ``g_grp`` (both sorted
    by image inside each category's range) and ``iou_ptr`` into their ``min(D, max_det) x G``
    IoU blocks: counted per category on threads, then written.

    >>> ptr = np.array([0, 2], np.int64)  # one category: detections on images 0, 1; a gt on 1
    >>> [a.tolist() for a in group_pointers(ptr, np.array([0, 1]), np.arange(2), np.array([0, 1]),
    ...                                     np.array([1]), np.arange(1), 100)]
    [[0, 1, 2], [0, 0, 1], [0, 0, 1]]
    """
    n_k = d_cat_ptr.size - 1
    count = np.zeros((n_k, 2), np.int64)
    work = d_cat_ptr + g_cat_ptr
    args = (d_cat_ptr, d_img, d_grp, g_cat_ptr, g_img, g_grp, int(max_det))
    run_ranges(K.group_counts, (*args, count), work)
    first = np.zeros((n_k + 1, 2), np.int64)
    np.cumsum(count, axis=0, out=first[1:])
    dt_ptr, gt_ptr, iou_ptr = (np.empty(first[-1, 0] + 1, np.int64) for _ in range(3))
    dt_ptr[-1], gt_ptr[-1], iou_ptr[-1] = d_grp.size, g_grp.size, first[-1, 1]
    run_ranges(K.group_fill, (*args, first, dt_ptr, gt_ptr, iou_ptr), work)
    return dt_ptr, gt_ptr, iou_ptr


def coco_accumulate(code, score_acc, rank_acc, cat_ptr, npig, max_dets, rec_thrs, precision,
                    recall, scores) -> None:
    """``K.coco_accumulate`` over every category; a category's work is its detections."""
    cum = np.cumsum(np.diff(cat_ptr) + 1)
    run_ranges(K.coco_accumulate, (code, score_acc, rank_acc, cat_ptr, npig, max_dets, rec_thrs,
                                   precision, recall, scores),
               np.concatenate([[0], cum]).astype(np.int64))
