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
from polars_metrics._kernels import rle as R
from polars_metrics._parallel import run_ranges


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
    K.settle_unmatched(dt_area, dt_pos, area_lo, area_hi, all_ignored, code)
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


def coco_accumulate(code, score_acc, rank_acc, cat_ptr, npig, max_dets, rec_thrs, precision,
                    recall, scores) -> None:
    """``K.coco_accumulate`` over every category; a category's work is its detections."""
    cum = np.cumsum(np.diff(cat_ptr) + 1)
    run_ranges(K.coco_accumulate, (code, score_acc, rank_acc, cat_ptr, npig, max_dets, rec_thrs,
                                   precision, recall, scores),
               np.concatenate([[0], cum]).astype(np.int64))
