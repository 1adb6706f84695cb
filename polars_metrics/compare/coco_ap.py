"""COCO AP / AR under image resampling, from one run's per-detection match records.

A resample weights each image by how often it was drawn; COCO's accumulation of the resampled
data set is then the accumulation of the original detections with those weights: per (IoU
threshold, category), detections in COCO's order (score descending, then image, then id), the
weighted cumulative true and false positives, recall = TP / (weighted non-ignored ground
truths), precision = TP / (TP + FP + eps), made monotone from the right and read at the recall
thresholds (pycocotools ``accumulate``). No re-matching: COCO matches per image, so a copy of
an image matches as the image did. Exact for the resampled data set when no two detections of
a category share a score (with ties, pycocotools orders the copies of tied detections by image
id, which a weight cannot express).

Only the precision at true-positive positions matters (a false positive never raises the
interpolated precision, and positions after the last true positive are never read), so each
(threshold, category) list is reduced to its true positives with the weighted false positives
before each. Bootstrapped: AP, AP50, AP75 and AR100 at area "all" (the stats read from the
run's match records at that area); the other stats of ``cmp.coco`` are point estimates.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from polars_metrics import schema as s

STATS = ("AP", "AP50", "AP75", "AR100")


def _records(ev) -> tuple[list, np.ndarray, np.ndarray]:
    """Per IoU threshold index: (category, image, is_tp) of the counted detections in COCO's
    order; the counted ground truths per (image, category) (n_img, K); and the images."""
    res = ev.coco
    images = np.asarray(res.image_ids)
    feats = {name: k for k, name in enumerate(res.features)}
    K = len(res.features)
    t_index = {float(v): i for i, v in enumerate(ev.iou_thresholds)}

    def frame(f: pl.DataFrame, feature: str, tp: bool) -> pl.DataFrame:
        return f.select(pl.col(s.IOU_THRESHOLD).replace_strict(t_index, return_dtype=pl.Int64)
                        .alias("t"),
                        pl.col(feature).cast(pl.String).replace_strict(feats, return_dtype=pl.Int64)
                        .alias("k"),
                        pl.Series("img", np.searchsorted(images, f[s.DATA_ROW].to_numpy())),
                        pl.col(s.CONFIDENCE).cast(pl.Float64), pl.col(s.PD_ID).cast(pl.Int64),
                        pl.lit(tp).alias("tp"))

    dets = pl.concat([frame(ev.tables.matches, s.GT_FEATURE, True),
                      frame(ev.tables.false_positives, s.PD_FEATURE, False)])
    dets = dets.sort(["t", "k", s.CONFIDENCE, "img", s.PD_ID],
                     descending=[False, False, True, False, False])
    per_t = [dets.filter(pl.col("t") == t) for t in range(len(ev.iou_thresholds))]
    gts = ev.tables.gt_counted
    g_img = np.searchsorted(images, gts[s.DATA_ROW].to_numpy())
    g_k = gts[s.FEATURE].cast(pl.String).replace_strict(feats, return_dtype=pl.Int64).to_numpy()
    npig = np.zeros((images.size, K))
    np.add.at(npig, (g_img, g_k), 1.0)
    return per_t, npig, images


def bootstrap_stats(ev, w: np.ndarray) -> np.ndarray:
    """(B, 4): AP, AP50, AP75, AR100 (area all, the largest maxDet) per image-weight row of
    ``w`` (B, n_images, in ``ev.coco.image_ids`` order); -1 where undefined, as COCO."""
    per_t, npig, _ = _records(ev)
    rec = np.asarray(ev.coco.params.rec_thresholds, dtype=np.float64)
    B, T, K, R = w.shape[0], len(per_t), npig.shape[1], rec.shape[0]
    npig_b = w @ npig                                       # (B, K)
    prec = np.full((B, T, R, K), -1.0)
    recall = np.full((B, T, K), -1.0)
    eps = np.spacing(1)
    for t, dets in enumerate(per_t):
        ks = dets["k"].to_numpy()
        bounds = np.searchsorted(ks, np.arange(K + 1))
        img, tp = dets["img"].to_numpy(), dets["tp"].to_numpy()
        for k in range(K):
            a, b = bounds[k], bounds[k + 1]
            valid = npig_b[:, k] > 0
            q = np.zeros((B, R))
            last = np.zeros(B)
            pos = np.flatnonzero(tp[a:b])
            if pos.size:
                wd = w[:, img[a:b][:pos[-1] + 1]]          # up to the last true positive
                tps = np.cumsum(wd[:, pos], axis=1)
                fps = np.cumsum(wd, axis=1)[:, pos] - tps
                rc = tps / np.where(valid, npig_b[:, k], 1.0)[:, None]
                rc = np.where(valid[:, None], rc, 0.0)
                pr = tps / (tps + fps + eps)
                pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
                q, last = _read_at(rc, pr, rec), rc[:, -1]
            prec[:, t, :, k] = np.where(valid[:, None], q, -1.0)
            recall[:, t, k] = np.where(valid, last, -1.0)
    thr = np.asarray(ev.iou_thresholds)
    out = np.empty((B, len(STATS)))
    out[:, 0] = _mean_valid(prec.reshape(B, -1))
    for j, v in ((1, 0.5), (2, 0.75)):
        hit = np.flatnonzero(np.abs(thr - v) < 1e-9)
        out[:, j] = _mean_valid(prec[:, hit[0]].reshape(B, -1)) if hit.size else -1.0
    out[:, 3] = _mean_valid(recall.reshape(B, -1))
    return out


def _read_at(rc: np.ndarray, pr: np.ndarray, rec: np.ndarray) -> np.ndarray:
    """Per row: pr at the first position with rc >= each recall threshold, else 0."""
    B, n = rc.shape
    off = 4.0 * np.arange(B)[:, None]                       # rc in [0, 1]: rows do not overlap
    idx = np.searchsorted((rc + off).ravel(),
                          (rec[None, :] + off).ravel(), side="left").reshape(B, -1)
    idx = idx - n * np.arange(B)[:, None]
    inside = idx < n
    return np.where(inside, np.take_along_axis(pr, np.minimum(idx, n - 1), axis=1), 0.0)


def _mean_valid(x: np.ndarray) -> np.ndarray:
    valid = x > -1
    n = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(valid, x, 0.0).sum(axis=1) / n, -1.0)
