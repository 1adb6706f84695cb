"""``pm.evaluate(..., profile="coco")``: pycocotools' numbers, plus the cube under COCO matching.

:func:`polars_metrics.coco.evaluate_coco` reproduces ``COCOeval`` exactly. Its per-detection
match arrays (area "all", the largest maxDet) then give what pycocotools never reports: TP /
FP / FN, precision, recall and F1 at every (confidence, IoU) cell, and the confusion cube.
COCO matching is score-ordered per (image, category), so the matches differ per IoU threshold
but not per confidence threshold: a detection that is a true positive at IoU index ``t`` and
passes ``n`` confidence thresholds is one rectangle ``[0, n) × [t, t+1)`` of the grid, which
the same accumulation as the default profile turns into counts (``cube.count_tables``).

Counted like pycocotools: ignored detections (matched to a crowd or ignored ground truth,
beyond maxDet) are neither TP nor FP; ignored ground truths are never FN.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from polars_metrics import metrics
from polars_metrics import schema as s
from polars_metrics._kernels.aot import kernel
from polars_metrics.coco import CocoResult, evaluate_coco
from polars_metrics.cube import count_tables, label_tables
from polars_metrics.errors import PolarsMetricsError
from polars_metrics.prepare import to_frame
from polars_metrics.profiles import Profile

accumulate_rectangles = kernel("cube", "accumulate_rectangles")


def evaluate_coco_profile(ground_truth, predictions, *, profile: Profile,
                          confidence_thresholds=None, iou_thresholds=None, by=None,
                          data_row: str = s.DATA_ROW, data_rows=None, on_invalid: str = "raise"):
    """Run COCOeval and the cube tables; returns (CocoResult, conf_thr, tables, inputs)."""
    if by:
        raise PolarsMetricsError(
            "by= is not supported with profile='coco': AP is not additive over data rows. "
            "Evaluate each slice separately (filter both tables by the slice)."
        )
    if data_row != s.DATA_ROW:
        raise PolarsMetricsError("profile='coco' keys data rows by image id in 'data_row'.")
    if data_rows is not None or on_invalid != "raise":
        raise PolarsMetricsError("data_rows= and on_invalid= are not supported with profile='coco'.")
    opts = profile.coco
    gt = to_frame(ground_truth, s.GROUND_TRUTH)
    pd = to_frame(predictions, s.PREDICTIONS)
    res = evaluate_coco(gt, pd, iou_type=opts.iou_type, iou_thresholds=iou_thresholds,
                        rec_thresholds=opts.rec_thresholds, max_dets=opts.max_dets,
                        area_ranges={k: (lo, hi) for k, lo, hi in opts.area_ranges},
                        use_cats=opts.use_cats)
    conf_thr = s.normalize_thresholds(confidence_thresholds, "confidence_thresholds")
    tables = _cube_tables(gt, pd, res, conf_thr)
    gt_ids = gt if s.ID in gt.columns else gt.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(s.ID))
    pd_ids = pd if s.ID in pd.columns else pd.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(s.ID))
    return res, conf_thr, tables, (gt_ids, pd_ids, res)


def _category_index(frame: pl.DataFrame, res: CocoResult) -> np.ndarray:
    if len(res.features) == 1 and res.category_ids[0] == -1 and res.features[0] == "all":
        return np.where(frame[s.FEATURE].is_null().to_numpy(), -1, 0) if s.FEATURE in frame.columns \
            else np.zeros(frame.height, np.int64)
    if s.FEATURE in frame.columns:
        lut = {name: i for i, name in enumerate(res.features)}
        return (frame[s.FEATURE].cast(pl.String)
                .replace_strict(lut, default=-1, return_dtype=pl.Int64).fill_null(-1).to_numpy())
    lut = {int(c): i for i, c in enumerate(res.category_ids)}
    return frame["category_id"].replace_strict(lut, default=-1, return_dtype=pl.Int64).fill_null(-1).to_numpy()


def _cube_tables(gt: pl.DataFrame, pd: pl.DataFrame, res: CocoResult, conf_thr: np.ndarray):
    iou_thr = np.asarray(res.params.iou_thresholds, dtype=np.float64)
    C, T, F = conf_thr.shape[0], iou_thr.shape[0], len(res.features)
    images = res.image_ids
    n_img = images.shape[0]
    g_cat = _category_index(gt, res)
    d_cat = _category_index(pd, res)
    g_img = np.searchsorted(images, gt[s.DATA_ROW].to_numpy())
    d_img = np.minimum(np.searchsorted(images, pd[s.DATA_ROW].to_numpy()), max(n_img - 1, 0))
    npass = np.searchsorted(conf_thr, pd[s.CONFIDENCE].to_numpy(), side="right").astype(np.int64)

    counted_gt = ~res.gt_ignore & (g_cat >= 0)
    evaluated = res.dt_rank >= 0
    tp = res.dt_tp                                    # (T, n_pd)
    counted_pd = ~res.dt_ignore & evaluated[None, :]  # (T, n_pd)

    # TP events and counted predictions as rectangles [0, npass) × [t, t+1)
    t_tp, i_tp = np.nonzero(tp)
    t_pd, i_pd = np.nonzero(counted_pd)
    # per (feature) and per (image) totals of counted predictions
    pd_total = _rect_totals(d_cat[i_pd], F, npass[i_pd], t_pd, C, T)          # (F, C, T)
    gt_total = np.bincount(g_cat[counted_gt], minlength=F)                     # (F,)

    S = 1
    zeros = np.zeros(t_tp.shape[0], np.int64)
    counts, confusion = count_tables(
        n_slices=S, n_features=F, conf_thr=conf_thr, iou_thr=iou_thr,
        ev_slice=zeros, ev_gt_feat=d_cat[i_tp], ev_pd_feat=d_cat[i_tp],
        c_lo=zeros, c_hi=npass[i_tp], t_lo=t_tp, t_hi=t_tp + 1,
        gt_total=np.broadcast_to(gt_total[None, None, None, :], (S, C, T, F)),
        pd_total=pd_total.transpose(1, 2, 0)[None],
        present=((gt_total + np.bincount(d_cat[evaluated], minlength=F)) > 0)[None],
        iou_sum=np.zeros((S, C, F)), iou_rows=np.zeros((S, C, F), np.int64),
        tn=np.zeros((S, C, F), np.int64), has_tn=np.zeros(F, bool),
    )
    labels = pl.DataFrame({"_slice": [0]})
    counts_df, confusion_df = label_tables(counts, confusion, slices=labels, by=(),
                                           features=res.features, conf_thr=conf_thr,
                                           iou_thr=np.round(iou_thr, s.THRESHOLD_DECIMALS))

    # per image: TP, counted predictions and counted ground truths
    img_tp = _rect_totals(d_img[i_tp], n_img, npass[i_tp], t_tp, C, T)        # (I, C, T)
    img_pd = _rect_totals(d_img[i_pd], n_img, npass[i_pd], t_pd, C, T)
    img_gt = np.bincount(g_img[counted_gt], minlength=n_img)
    data_rows = _image_table(images, gt.schema[s.DATA_ROW], conf_thr, iou_thr, img_tp, img_pd, img_gt)

    outside = pd.filter(~pl.col(s.DATA_ROW).is_in(pl.Series(images).implode()))
    excluded = (outside.group_by(s.DATA_ROW).len().sort(s.DATA_ROW)
                .select(s.DATA_ROW, pl.lit("not in ground truth").alias(s.REASON),
                        pl.lit(0, dtype=pl.Int64).alias(s.N_GT), pl.col("len").cast(pl.Int64).alias(s.N_PD)))
    matches = _matches(gt, pd, res, iou_thr, t_tp, i_tp)
    return counts_df, confusion_df, data_rows, excluded, matches


def _rect_totals(key, n_keys, npass, t, C, T) -> np.ndarray:
    """(n_keys, C, T): per key, the rectangles [0, npass) × [t, t+1) covering each cell."""
    key = np.ascontiguousarray(key, np.int64)
    z = np.zeros_like(key)
    return accumulate_rectangles(key, z, np.ascontiguousarray(npass, np.int64),
                                 np.ascontiguousarray(t, np.int64),
                                 np.ascontiguousarray(t + 1, np.int64), n_keys, C, T)


def _image_table(images, key_dtype, conf_thr, iou_thr, tp, kept, n_gt) -> pl.DataFrame:
    n, C, T = tp.shape
    tp = tp.ravel()
    fp = kept.ravel() - tp
    fn = np.repeat(n_gt, C * T) - tp
    frame = pl.DataFrame({
        s.DATA_ROW: pl.Series(np.repeat(images, C * T)).cast(key_dtype),
        s.CONFIDENCE_THRESHOLD: np.tile(np.repeat(conf_thr, T), n),
        s.IOU_THRESHOLD: np.tile(np.round(iou_thr, s.THRESHOLD_DECIMALS), n * C),
        s.TP: tp, s.FP: fp, s.TN: pl.repeat(None, n * C * T, dtype=pl.Int64, eager=True), s.FN: fn,
    })
    return frame.with_columns(*metrics.ratio_columns(), pl.lit(None, dtype=pl.Float64).alias(s.IOU))


def _matches(gt, pd, res: CocoResult, iou_thr, t_tp, i_tp) -> pl.DataFrame:
    """(data_row, iou_threshold, gt_id, pd_id, confidence, gt_feature, pd_feature) of every TP."""
    g_row = res.dt_match[t_tp, i_tp]
    feats = pl.Series(list(res.features), dtype=pl.String)
    cat = _category_index(pd, res)[i_tp]
    ids = pd[s.ID] if s.ID in pd.columns else pl.Series(np.arange(pd.height))
    gt_ids = gt[s.ID] if s.ID in gt.columns else pl.Series(np.arange(gt.height))
    return pl.DataFrame({
        s.DATA_ROW: pd[s.DATA_ROW].gather(i_tp),
        s.IOU_THRESHOLD: np.round(iou_thr[t_tp], s.THRESHOLD_DECIMALS),
        s.GT_ID: gt_ids.gather(g_row),
        s.PD_ID: ids.gather(i_tp),
        s.CONFIDENCE: pd[s.CONFIDENCE].gather(i_tp),
        s.GT_FEATURE: feats.gather(cat),
        s.PD_FEATURE: feats.gather(cat),
    })
