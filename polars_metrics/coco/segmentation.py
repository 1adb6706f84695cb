"""``iouType="segm"``: RLE masks of the evaluated rows and the groups' mask IoU blocks.

Mask columns are read into CSR arrays by :func:`polars_metrics.kinds.mask.mask_csr`, the one
home of RLE.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics._arrays import offsets_from_lengths
from polars_metrics._kernels import rle as R
from polars_metrics._lazy import lazy
from polars_metrics._parallel import run_ranges
from polars_metrics.coco import threaded
from polars_metrics.coco.inputs import HEIGHT, WIDTH, xywh
from polars_metrics.errors import InvalidAnnotationError, SchemaError
from polars_metrics.kinds._rle import RLE_REASONS, rle_problems
from polars_metrics.kinds.mask import mask_csr

pa = lazy("pyarrow")


def _seg_index(offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Flat indices of the CSR segments of ``rows``, concatenated in that order."""
    lens = offsets[rows + 1] - offsets[rows]
    starts = offsets[rows] - (np.cumsum(lens) - lens)
    return np.repeat(starts, lens) + np.arange(int(lens.sum()), dtype=np.int64)


def _take_csr(counts: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The CSR sub-batch of ``rows``."""
    if rows.size == offsets.size - 1 and np.array_equal(rows, np.arange(rows.size)):
        return counts, offsets
    new_off = offsets_from_lengths(offsets[rows + 1] - offsets[rows])
    return np.ascontiguousarray(counts[_seg_index(offsets, rows)]), new_off


def masks(frame: pl.DataFrame, rows: np.ndarray, table: str, img_hw: tuple[np.ndarray, np.ndarray] | None,
          img_idx: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """RLE masks of the given rows; predictions without a mask get their box rasterized the way
    ``loadRes`` does for bbox results (a 4-point polygon)."""
    if s.MASK not in frame.columns:
        if table == "pd" and img_hw is not None:
            null = np.ones(frame.height, bool)
            counts, offsets = np.zeros(0, np.uint32), np.zeros(frame.height + 1, np.int64)
            h = w = np.zeros(frame.height, np.int64)
        else:
            raise SchemaError(f'{table}: iou_type="segm" needs a "{s.MASK}" column.')
    else:
        counts, offsets, h, w, null = mask_csr(frame[s.MASK])
    counts, offsets = _take_csr(counts, offsets, rows)
    h, w, null = h[rows], w[rows], null[rows]
    if null.any():
        if table != "pd" or img_hw is None:
            bad = int(rows[np.flatnonzero(null)[0]])
            raise InvalidAnnotationError(
                f'{table}: row {bad} has no "{s.MASK}"; segm evaluation needs a mask (or polygon '
                f"rasterized at load) on every annotation ({int(null.sum())} rows)."
            )
        counts, offsets, h, w = _boxes_as_masks(frame, rows, table, counts, offsets, h, w, null,
                                                img_hw, img_idx)
    codes = rle_problems(counts, offsets, h, w, np.zeros(h.size, bool))  # exact, overflow-free
    bad = np.flatnonzero(codes)
    if bad.size:
        r = int(rows[bad[0]])
        raise InvalidAnnotationError(
            f"{table}: row {r}: {RLE_REASONS[int(codes[bad[0]])]} ({int(h[bad[0]])}×"
            f"{int(w[bad[0]])}; {bad.size} such rows)."
        )
    return counts, offsets, h, w


def _boxes_as_masks(frame, rows, table, counts, offsets, h, w, null, img_hw, img_idx):
    """loadRes: segmentation = [[x1, y1, x1, y2, x2, y2, x2, y1]] from the box, spliced in."""
    fill = np.flatnonzero(null)
    box = xywh(frame, rows[fill], table)
    x1, y1 = box[:, 0], box[:, 1]
    x2, y2 = x1 + box[:, 2], y1 + box[:, 3]
    coords = np.stack([x1, y1, x1, y2, x2, y2, x2, y1], axis=1).ravel()
    ih, iw = img_hw[0][img_idx[fill]], img_hw[1][img_idx[fill]]
    sized = rle_problems(np.zeros(0, np.uint32), np.zeros(fill.size + 1, np.int64), ih, iw,
                         np.ones(fill.size, bool))
    unusable = np.flatnonzero(np.isin(sized, (1, 2)))
    if unusable.size:
        k = int(unusable[0])
        raise InvalidAnnotationError(
            f"{table}: row {int(rows[fill[k]])}: its box is rasterized on the image's size, "
            f"{int(ih[k])}×{int(iw[k])}: {RLE_REASONS[int(sized[k])]}. Fix the image's height "
            "and width.")
    ptr = np.arange(fill.size + 1, dtype=np.int64)
    bc, bo = R.rle_from_polygons(coords, ptr * 8, ptr, ih, iw, run=run_ranges)
    lens = offsets[1:] - offsets[:-1]
    lens[fill] = bo[1:] - bo[:-1]
    h, w = h.copy(), w.copy()
    h[fill], w[fill] = ih, iw
    new_off = offsets_from_lengths(lens)
    new_counts = np.empty(new_off[-1], np.uint32)
    keep = np.flatnonzero(~null)
    new_counts[_seg_index(new_off, keep)] = counts[_seg_index(offsets, keep)]
    new_counts[_seg_index(new_off, fill)] = bc
    return new_counts, new_off, h, w


def image_sizes(gt: pl.DataFrame, image_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(height, width) of each evaluated image from the ground truth's image columns."""
    if HEIGHT not in gt.columns or WIDTH not in gt.columns:
        return None
    hw = (pl.DataFrame({"i": gt[s.DATA_ROW], "h": gt[HEIGHT], "w": gt[WIDTH]})
          .drop_nulls().unique("i", keep="first"))
    pos = np.searchsorted(image_ids, hw["i"].to_numpy())
    ih = np.zeros(image_ids.size, np.int64)
    iw = np.zeros(image_ids.size, np.int64)
    ih[pos], iw[pos] = hw["h"].to_numpy(), hw["w"].to_numpy()
    return ih, iw


def segm_iou(gt, pd, rows, lay, max_det: int, iou_ptr: np.ndarray) -> np.ndarray:
    """RLE IoU blocks of the groups, only for the first ``max_det`` detections of each.

    ``rows`` are the engine's per-annotation arrays, ``lay`` its group layout.
    """
    if iou_ptr[-1] == 0:  # no (detection, ground truth) pair anywhere: no mask is read
        return np.zeros(0, np.float64)
    gc, go, gh, gw = masks(gt, rows.gt_rows, "gt", None, None)
    dc, do, dh, dw = masks(pd, rows.pd_rows, "pd", image_sizes(gt, rows.image_ids), rows.d_img)
    g_bb = R.rle_to_bbox(gc, go, gh, gw)
    d_bb = R.rle_to_bbox(dc, do, dh, dw)
    d_ar = R.rle_area(dc, do)
    keep = lay.rank[lay.d_grp] < max_det
    cut_idx = np.ascontiguousarray(lay.d_grp[keep])
    cut_ptr = offsets_from_lengths(np.minimum(np.diff(lay.dt_ptr), max_det))
    iou = threaded.rle_iou_groups(dc, do, dh, dw, d_bb, d_ar, gc, go, gh, gw, g_bb, rows.g_crowd,
                                  cut_ptr, cut_idx, lay.gt_ptr, lay.g_grp, iou_ptr)
    if (iou < 0).any():
        # find the first offending pair for the message
        g = int(np.searchsorted(iou_ptr, np.flatnonzero(iou < 0)[0], side="right") - 1)
        j = int(lay.g_grp[lay.gt_ptr[g]])
        raise InvalidAnnotationError(
            f"masks of different sizes in one image: gt row {int(rows.gt_rows[j])} is "
            f"{int(gh[j])}x{int(gw[j])} but a prediction on image "
            f"{rows.image_ids[rows.g_img[j]]} is not; every mask of an image must have the "
            "image's height and width."
        )
    return iou
