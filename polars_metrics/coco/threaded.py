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


def box_iou_groups(dt_xywh, gt_xywh, gt_crowd, grp_dt_ptr, grp_dt_idx, grp_gt_ptr, grp_gt_idx,
                   max_det: int, iou_ptr: np.ndarray) -> np.ndarray:
    """``K.box_iou_groups`` over every group: the IoU blocks (``iou_ptr`` offsets).

    >>> box = np.array([[0.0, 0.0, 2.0, 2.0]])
    >>> ptr = np.array([0, 1], np.int64)
    >>> box_iou_groups(box, box, np.zeros(1, bool), ptr, np.zeros(1, np.int64), ptr,
    ...                np.zeros(1, np.int64), 100, ptr).tolist()
    [1.0]
    """
    out = np.zeros(int(iou_ptr[-1]), np.float64)
    run_ranges(K.box_iou_groups, (dt_xywh, gt_xywh, gt_crowd, grp_dt_ptr, grp_dt_idx, grp_gt_ptr,
                                  grp_gt_idx, int(max_det), iou_ptr, out), iou_ptr)
    return out


def rle_iou_groups(dc, do, dh, dw, d_bb, d_ar, gc, go, gh, gw, g_bb, g_crowd, grp_dt_ptr,
                   grp_dt_idx, grp_gt_ptr, grp_gt_idx, out_ptr: np.ndarray) -> np.ndarray:
    """``R.rle_iou_groups`` over every group: the mask IoU blocks (``out_ptr`` offsets)."""
    out = np.zeros(int(out_ptr[-1]), np.float64)
    run_ranges(R.rle_iou_groups, (dc, do, dh, dw, d_bb, d_ar, gc, go, gh, gw, g_bb, g_crowd,
                                  grp_dt_ptr, grp_dt_idx, grp_gt_ptr, grp_gt_idx, out_ptr, out),
               out_ptr)
    return out


def coco_match(iou, iou_ptr, grp_dt_ptr, *rest) -> None:
    """``K.coco_match`` over every group, with the kernel's arguments minus ``(lo, hi)``; a
    group's work is its IoU block and its detections."""
    run_ranges(K.coco_match, (iou, iou_ptr, grp_dt_ptr, *rest), iou_ptr + grp_dt_ptr)


def coco_accumulate(code, score_acc, rank_acc, cat_ptr, npig, max_dets, rec_thrs, precision,
                    recall, scores) -> None:
    """``K.coco_accumulate`` over every (category, area) task; a task's work is its category's
    detections."""
    n_area = code.shape[1]
    per_task = np.repeat(np.diff(cat_ptr), n_area) + 1
    cum = np.concatenate([[0], np.cumsum(per_task)]).astype(np.int64)
    run_ranges(K.coco_accumulate, (code, score_acc, rank_acc, cat_ptr, npig, max_dets, rec_thrs,
                                   precision, recall, scores), cum)
