"""Error decomposition under ``profile="coco"``, with each type's ΔAP (TIDE's "main errors").

The COCO engine computes IoU only within a category, so ``pm.evaluate(..., profile="coco",
errors=True)`` also runs the pairs stage on the same tables (:func:`coco_detail`). The cell's
true positives and counted detections are the COCO run's own (``ev.tables``: crowd-matched and
beyond-``maxDets`` detections are neither TP nor FP, so they get no type); the types follow
:mod:`polars_metrics.analysis.errors`.

ΔAP of a type (TIDE, ``TIDERun.fix_errors``): the AP at the IoU threshold after fixing every
error of that type, minus the AP, with every counted detection (AP integrates over
confidence). Fixes: a classification error becomes a true positive of its ground truth's
feature and a localization error a true positive of its own — only the highest-confidence
classification / localization error targeting a ground truth that no detection found; the
others are removed —, duplicate, both and background errors are removed, a missed ground truth
leaves the ground-truth count. AP per feature is COCO's 101-point interpolated AP over the
detections sorted by confidence (stable: data-row order on ties); the mean runs over the
features with ground truth or detections (TIDE's rule: a feature with detections but no
ground truth has AP 0), and a negative ΔAP is reported as 0, as tidecv does.

Deliberate differences from tidecv: scale 0-1 (tidecv: 0-100); ``maxDets`` applies per image
and category as in COCO (tidecv keeps the top 100 detections per image over all categories);
crowd ground truths are COCO's (their detections are ignored, tidecv still types them); ties
in confidence are broken in data-row order (tidecv: errors before true positives); and the
rules of :mod:`~polars_metrics.analysis.errors` at exact thresholds.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics.analysis import errors as E
from polars_metrics.errors import PolarsMetricsError
from polars_metrics.pairs import build_pairs
from polars_metrics.prepare import prepare
from polars_metrics.profiles import get_profile
from polars_metrics.state import Detail

REC_THRESHOLDS = np.linspace(0.0, 1.0, 101)  # COCO's recall thresholds
_GEOMETRY = {"bbox": (s.BBOX,), "segm": (s.MASK, s.POLYGON)}


def coco_detail(ground_truth: pl.DataFrame, predictions: pl.DataFrame, *, key: str,
                iou_type: str, on_invalid: str) -> Detail:
    """The pairs of every (ground truth, detection) with IoU > 0 across categories, for
    ``ev.errors()`` under ``profile="coco"``; crowd / ignored ground truths are left out."""
    gt, pd = ground_truth, predictions
    for flag in (s.IS_CROWD, s.IGNORE, "iscrowd"):
        if flag in gt.columns:
            gt = gt.filter(~pl.col(flag).cast(pl.Boolean).fill_null(False))
    geometry = [c for c in _GEOMETRY[iou_type] if c in gt.columns or c in pd.columns]

    def slim(frame: pl.DataFrame, extra: tuple[str, ...]) -> pl.DataFrame:
        cols = [key, s.ID, s.FEATURE, *geometry, *extra]
        if s.ID not in frame.columns:  # the COCO run's ids: the input row
            frame = frame.with_row_index(s.ID).with_columns(pl.col(s.ID).cast(pl.Int64))
        return frame.select([c for c in cols if c in frame.columns])

    prof = get_profile("labelbox", class_aware=True, rows="ground_truth")
    prep = prepare(slim(gt, ()), slim(pd, (s.CONFIDENCE,)), keys=(key,), by=(),
                   data_rows=None, profile=prof, conf_thr=np.zeros(1), iou_thr=np.full(1, 0.5),
                   on_invalid=on_invalid)
    return Detail.of_run(prep, None, build_pairs(prep))


def _positions(prep, side: str, ids: pl.DataFrame, id_col: str) -> np.ndarray:
    """Positions in the prepared table of the (image, id) rows of ``ids``."""
    key = prep.keys[0]
    table = prep.gt if side == "gt" else prep.pd
    own = table.column(s.ID)
    if own.dtype.is_integer() and ids[id_col].dtype.is_integer() and own.n_unique() == own.len():
        # unique integer ids (COCO's, or the input row): a sorted lookup, no join
        own_np, want = own.to_numpy(), ids[id_col].to_numpy()
        srt = np.argsort(own_np, kind="stable")
        at = np.minimum(np.searchsorted(own_np[srt], want), max(own_np.size - 1, 0))
        if own_np.size and np.array_equal(own_np[srt][at], want):
            return srt[at].astype(np.int64)
    pos = table.select(key, s.ID).with_row_index("_pos")
    ids = ids.select(key, pl.col(id_col).alias(s.ID))
    if ids.schema[s.ID] != pos.schema[s.ID]:
        ids = ids.with_columns(pl.col(s.ID).cast(pos.schema[s.ID]))
    got = ids.join(pos, on=[key, s.ID], how="left", maintain_order="left")["_pos"]
    if got.null_count():
        raise PolarsMetricsError(
            "errors(): the COCO run and the pairs stage disagree on some annotation ids "
            f"({got.null_count()} not found); give both tables a unique 'id' column.")
    return got.to_numpy().astype(np.int64)


def coco_cell(detail: Detail, tables, t: float) -> E.CellInputs:
    """The :class:`~polars_metrics.analysis.errors.CellInputs` of IoU threshold ``t`` from
    the COCO run's true positives and false positives, with every counted detection kept (as
    AP uses them); :func:`at_confidence` restricts it to a confidence threshold."""
    if detail.prep is None or detail.pairs_arrays is None:
        raise PolarsMetricsError(
            "errors() under profile='coco' needs the cross-category pairs, which the COCO "
            "engine does not compute: evaluate with pm.evaluate(..., profile='coco', "
            "errors=True).")
    prep, pairs = detail.prep, detail.pairs_arrays
    tp = tables.matches.filter(pl.col(s.IOU_THRESHOLD) == t)
    fp = tables.false_positives.filter(pl.col(s.IOU_THRESHOLD) == t)
    kept = np.zeros(len(prep.pd), dtype=bool)
    match_pd = _positions(prep, "pd", tp, s.PD_ID)
    kept[match_pd] = True
    kept[_positions(prep, "pd", fp, s.PD_ID)] = True
    return E.CellInputs(
        gt_feat=prep.gt.feat, pd_feat=prep.pd.feat, gt_per_row=np.diff(prep.gt.off),
        pd_row=prep.pd.row, pd_conf=prep.pd.column(s.CONFIDENCE).to_numpy(), kept=kept,
        pair_gt=pairs.gt, pair_pd=pairs.pd, pair_iou=pairs.iou, pair_always=pairs.always,
        match_gt=_positions(prep, "gt", tp, s.GT_ID), match_pd=match_pd,
        pair_order=E.pair_order(detail),
    )


def at_confidence(x: E.CellInputs, c: float) -> E.CellInputs:
    """``x`` at confidence threshold ``c``: score-ordered matching is a prefix walk, so the
    cell's matches are those of its kept detections."""
    on = x.pd_conf[x.match_pd] >= c
    return dataclasses.replace(x, kept=x.kept & (x.pd_conf >= c), match_gt=x.match_gt[on],
                               match_pd=x.match_pd[on])


def class_ap(feat: np.ndarray, true: np.ndarray, n_gt: np.ndarray) -> np.ndarray:
    """COCO's 101-point interpolated AP per feature of data points already sorted by feature,
    then confidence descending; NaN where a feature has neither ground truth nor data points,
    0 where it has no ground truth (TIDE)."""
    K = n_gt.shape[0]
    out = np.full(K, np.nan)
    bounds = np.searchsorted(feat, np.arange(K + 1))
    for k in range(K):
        tk = true[bounds[k]:bounds[k + 1]]
        if n_gt[k] == 0:
            out[k] = 0.0 if tk.size else np.nan
            continue
        tp = np.cumsum(tk, dtype=np.float64)
        fp = np.cumsum(~tk, dtype=np.float64)
        rc = tp / n_gt[k]
        pr = tp / (fp + tp + np.spacing(1))
        pr = np.maximum.accumulate(pr[::-1])[::-1] if pr.size else pr
        idx = np.searchsorted(rc, REC_THRESHOLDS, side="left")
        q = np.zeros(REC_THRESHOLDS.size)
        ok = idx < pr.size
        q[ok] = pr[idx[ok]]
        out[k] = q.mean()
    return out


def delta_ap(x: E.CellInputs, d: E.Decomposition,
             K: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(per-feature AP, {type: per-feature AP after fixing that type}) with TIDE's fixes."""
    n_gt = np.bincount(x.gt_feat, minlength=K)
    tps, err = np.flatnonzero(d.pd_tp), np.flatnonzero(d.pd_type >= 0)
    pts = np.concatenate([tps, err])  # the data points: true positives, then errors
    n_tp = tps.size
    rank = np.empty(x.pd_conf.shape[0], dtype=np.int64)  # confidence rank, data-row order on ties
    rank[np.argsort(-x.pd_conf, kind="stable")] = np.arange(rank.shape[0])
    feat0, rank0 = x.pd_feat[pts], rank[pts]
    true0 = np.arange(pts.size) < n_tp
    order0 = np.lexsort((rank0, feat0))
    typ = np.concatenate([np.full(n_tp, -1, np.int8), d.pd_type[err]])
    target = np.append(x.pair_gt, -1)[np.append(d.pd_pair, -1)[np.where(typ >= 0, pts, -1)]]
    best = (target >= 0) & (np.append(d.gt_pd, -1)[target] == pts)

    def ap(feat, keep, true, gt_count, order=order0):
        order = order[keep[order]]
        return class_ap(feat[order], true[order], gt_count)

    base = ap(feat0, np.ones(pts.size, bool), true0, n_gt)
    fixed = {}
    for code, name in enumerate(E.ERROR_TYPES):
        if name == E.MISSED:
            gone = np.bincount(x.gt_feat[d.gt_type == E.MIS], minlength=K)
            fixed[name] = ap(feat0, np.ones(pts.size, bool), true0, n_gt - gone)
            continue
        mine = typ == code
        fix = mine & best & (code in (E.CLS, E.LOC))
        keep = ~mine | fix
        if code == E.CLS and fix.any():  # relabelled: the feature order changes
            feat = feat0.copy()
            feat[fix] = x.gt_feat[target[fix]]
            fixed[name] = ap(feat, keep, true0 | fix, n_gt, np.lexsort((rank0, feat)))
        else:
            fixed[name] = ap(feat0, keep, true0 | fix, n_gt)
    return base, fixed


def coco_error_frames(detail: Detail, tables, grid: pl.DataFrame, *, c: float, t: float,
                      background_iou: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(counts with ``delta_ap``, annotations) at the cell (c, t) of a COCO evaluation."""
    E.check_background_iou(background_iou, t)
    x_all = coco_cell(detail, tables, t)
    x = at_confidence(x_all, c)
    ann = E.annotation_frame(detail, x, E.classify(x, t, background_iou, strict=False))
    counts = E.count_frame(ann, grid, ())
    names = list(detail.prep.features)
    base, fixed = delta_ap(x_all, E.classify(x_all, t, background_iou, strict=False),
                           len(names))
    rows = []
    for name, per in fixed.items():
        gain = np.maximum(np.nan_to_num(per - base), 0.0)
        rows += [(f, name, float(gain[k])) for k, f in enumerate(names)]
        total = np.nanmean(per) - np.nanmean(base) if np.isfinite(base).any() else 0.0
        rows.append((None, name, max(float(total), 0.0)))
    gains = pl.DataFrame(rows, schema={s.FEATURE: pl.String, s.ERROR_TYPE: E.ERROR_DTYPE,
                                       s.DELTA_AP: pl.Float64}, orient="row")
    counts = counts.join(gains, on=[s.FEATURE, s.ERROR_TYPE], how="left", nulls_equal=True,
                         maintain_order="left")
    return counts.with_columns(pl.col(s.DELTA_AP).fill_null(0.0)), ann
