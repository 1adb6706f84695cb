"""``COCOeval.summarize()`` over the accumulated arrays: the 12 stats, as numbers, as a frame,
per category, and as the 12 lines pycocotools prints."""
from __future__ import annotations

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics.coco.params import STAT_SPECS, CocoParams

CATEGORY_ID = "category_id"
METRIC, AREA, MAX_DETS, VALUE = "metric", "area", "max_dets", "value"
SUMMARY_SCHEMA = {METRIC: pl.String, s.IOU: pl.Float64, AREA: pl.String, MAX_DETS: pl.Int64,
                  VALUE: pl.Float64}


def stat_max_det(p: CocoParams, mi: int) -> int:
    """maxDets value a stat reads: a literal (coded negative) or a position of ``max_dets``
    (clamped to the last one when fewer than 3 are given; pycocotools would fail there)."""
    if mi < 0:
        return -mi
    return int(p.max_dets[min(mi, len(p.max_dets) - 1)])


def summarize(precision: np.ndarray, recall: np.ndarray, p: CocoParams) -> tuple[np.ndarray, list[int]]:
    """``COCOeval.summarize()._summarizeDets`` without printing: (stats, maxDets of each stat).

    Examples
    --------
    >>> from polars_metrics.coco.params import normalize_params
    >>> p = normalize_params()
    >>> precision = np.full((10, 101, 1, 4, 3), -1.0)   # no ground truth anywhere
    >>> stats, md = summarize(precision, np.full((10, 1, 4, 3), -1.0), p)
    >>> stats.tolist() == [-1.0] * 12, md[:3]
    (True, [100, 100, 100])
    """
    stats = np.zeros(len(STAT_SPECS))
    md_used = []
    for i, (ap, iou, area, mi) in enumerate(STAT_SPECS):
        md = stat_max_det(p, mi)
        md_used.append(int(md))
        stats[i] = _summarize_one(precision, recall, p, ap, iou, area, md)
    return stats, md_used


def _summarize_one(precision, recall, p: CocoParams, ap: bool, iou, area: str, md: int) -> float:
    aind = [i for i, lbl in enumerate(p.area_labels) if lbl == area]
    mind = [i for i, m in enumerate(p.max_dets) if m == md]
    sel = precision if ap else recall
    if iou is not None:
        sel = sel[np.where(iou == p.iou_thresholds)[0]]
    sel = sel[:, :, :, aind, mind] if ap else sel[:, :, aind, mind]
    sel = sel[sel > -1]
    return -1.0 if sel.size == 0 else float(np.mean(sel))


def summary_frame(stats: np.ndarray, max_dets_used: list[int]) -> pl.DataFrame:
    """The 12 stats as rows: ``metric`` ("AP"/"AR"), ``iou`` (null = the whole threshold range),
    ``area``, ``max_dets``, ``value`` (-1 where undefined).

    Examples
    --------
    >>> summary_frame(np.arange(12.0), [100, 100, 100, 100, 100, 100, 1, 10, 100, 100, 100, 100]
    ...               ).row(1)
    ('AP', 0.5, 'all', 100, 1.0)
    """
    return pl.DataFrame(
        {
            METRIC: ["AP" if ap else "AR" for ap, *_ in STAT_SPECS],
            s.IOU: [iou for _, iou, _, _ in STAT_SPECS],
            AREA: [area for _, _, area, _ in STAT_SPECS],
            MAX_DETS: max_dets_used,
            VALUE: stats,
        },
        schema=SUMMARY_SCHEMA,
    )


def per_category(precision, recall, p: CocoParams, names, cat_ids, n_gt) -> pl.DataFrame:
    """The 12 summary stats restricted to each category (null where undefined): columns
    ``category_id``, ``feature``, ``n_gt``, ``ap``, ``ap50``, ``ap75``, ``ap_small``, ...,
    ``ar1``, ``ar10``, ``ar100``, ``ar_small``, ... (names follow the maxDets used)."""
    cols: dict[str, np.ndarray] = {}
    n_k = len(names)
    for ap, iou, area, mi in STAT_SPECS:
        md = stat_max_det(p, mi)
        cols[_stat_name(ap, iou, area, md)] = _per_category_stat(precision, recall, p, ap, iou,
                                                                 area, md, n_k)
    frame = pl.DataFrame(
        {
            CATEGORY_ID: pl.Series(cat_ids, dtype=pl.Int64),
            s.FEATURE: list(names),
            s.N_GT: np.asarray(n_gt, dtype=np.int64),
            **cols,
        }
    )
    return frame.with_columns(
        pl.when(pl.col(CATEGORY_ID) >= 0).then(pl.col(CATEGORY_ID)),
        *(pl.col(c).fill_nan(None) for c in cols),
    )


def _stat_name(ap: bool, iou, area: str, md: int) -> str:
    if area != "all":
        return f"{'ap' if ap else 'ar'}_{area}"
    if ap:
        return "ap" + ("" if iou is None else str(int(round(iou * 100))))
    return f"ar{md}"


def _per_category_stat(precision, recall, p: CocoParams, ap, iou, area, md, n_k) -> np.ndarray:
    aind = [i for i, lbl in enumerate(p.area_labels) if lbl == area]
    mind = [i for i, m in enumerate(p.max_dets) if m == md]
    sel = precision if ap else recall
    if iou is not None:
        sel = sel[np.where(iou == p.iou_thresholds)[0]]
    # one matching label / maxDet (the usual case): a slice, a view instead of a copy
    sel = sel[..., aind[0]:aind[0] + 1, :] if len(aind) == 1 else sel[..., aind, :]
    sel = sel[..., mind[0]:mind[0] + 1] if len(mind) == 1 else sel[..., mind]
    v = np.moveaxis(sel, 2 if ap else 1, 0).reshape(n_k, -1)
    ok = v > -1
    cnt = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, v, 0.0).sum(axis=1) / cnt
    return np.where(cnt > 0, mean, np.nan)


def format_summary(p: CocoParams, summary: pl.DataFrame) -> str:
    """The 12 lines ``COCOeval.summarize()`` prints, character for character.

    Examples
    --------
    >>> from polars_metrics.coco.params import normalize_params
    >>> frame = summary_frame(np.full(12, -1.0), [100] * 6 + [1, 10, 100] + [100] * 3)
    >>> print(format_summary(normalize_params(), frame).splitlines()[0])
     Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = -1.000
    """
    lines = []
    for (ap, iou, area, _), md, value in zip(STAT_SPECS, summary[MAX_DETS], summary[VALUE],
                                             strict=True):
        title = "Average Precision" if ap else "Average Recall"
        kind = "(AP)" if ap else "(AR)"
        iou_str = (f"{p.iou_thresholds[0]:0.2f}:{p.iou_thresholds[-1]:0.2f}" if iou is None
                   else f"{iou:0.2f}")
        lines.append(f" {title:<18} {kind} @[ IoU={iou_str:<9} | area={area:>6s} | "
                     f"maxDets={md:>3d} ] = {value:0.3f}")
    return "\n".join(lines)
