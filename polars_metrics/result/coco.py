"""``CocoEvaluation``: the result of ``profile="coco"``."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from polars_metrics import metrics
from polars_metrics import schema as s
from polars_metrics._rejects import empty_rejects
from polars_metrics.result.evaluation import Evaluation


@dataclass(frozen=True, eq=False)
class CocoEvaluation(Evaluation):
    """:class:`Evaluation` under ``profile="coco"``: pycocotools' numbers plus the cube.

    Attributes (beyond :class:`Evaluation`)
    ----------------------------------------
    coco : :class:`polars_metrics.coco.CocoResult` (precision / recall / scores arrays, stats).
    coco_summary : the 12 summary stats (``metric``, ``iou``, ``area``, ``max_dets``, ``value``).
    coco_per_category : per-category AP / AR.

    The cube, confusion and data-row frames count under COCO matching at area "all" and the
    largest maxDet (ignored detections are neither TP nor FP; ignored ground truths never FN);
    ``iou`` (the IoU metric) is null, and the data-row ratios are per image, from its counts.
    """

    coco: Any = None
    coco_summary: pl.DataFrame | None = None
    coco_per_category: pl.DataFrame | None = None
    coco_matches: pl.DataFrame | None = field(default=None, repr=False)
    coco_inputs: tuple | None = field(default=None, repr=False)

    @classmethod
    def from_coco(cls, res, profile, conf_thr, tables, inputs) -> CocoEvaluation:
        counts, confusion, data_rows, excluded, matches = tables
        t0 = time.perf_counter()
        cube = metrics.cube_from_counts(counts, (), zero_tn=False)
        return cls(
            profile=profile, keys=(s.DATA_ROW,), by=(), confidence_thresholds=conf_thr,
            iou_thresholds=np.round(res.params.iou_thresholds, s.THRESHOLD_DECIMALS),
            cube=cube, overall=metrics.overall_from_counts(counts, cube, (), zero_tn=False),
            confusion=confusion, data_rows=data_rows, excluded=excluded,
            rejects=empty_rejects(), timings={"finalize": time.perf_counter() - t0},
            coco=res, coco_summary=res.summary, coco_per_category=res.per_category,
            coco_matches=matches, coco_inputs=inputs)

    def coco_arrays(self) -> dict[str, np.ndarray]:
        """``precision`` [T,R,K,A,M], ``recall`` [T,K,A,M], ``scores`` [T,R,K,A,M] as in
        ``COCOeval.eval``."""
        return self.coco.arrays()

    def format_coco_summary(self) -> str:
        """The 12 lines pycocotools' ``summarize()`` prints."""
        return self.coco.format_summary()

    @property
    def matches(self) -> pl.DataFrame:
        """True positives: (data_row, iou_threshold, gt_id, pd_id, confidence, gt_feature,
        pd_feature); a TP at IoU threshold t counts at every confidence threshold <= confidence."""
        return self.coco_matches

    def examples(self, gt_feature, pd_feature, *, confidence=0.5, iou=0.5) -> pl.DataFrame:
        """The images and ids behind one confusion cell under COCO matching.

        Matching is class-aware, so off-diagonal cells are empty. ``iou`` is null (COCO keeps
        only the matched pair, not its IoU).
        """
        if gt_feature is None and pd_feature is None:
            raise ValueError("The [None, None] cell is empty by definition; name a feature.")
        c = self._threshold(confidence, s.CONFIDENCE_THRESHOLD)
        t_idx = int(np.flatnonzero(self.iou_thresholds == self._threshold(iou, s.IOU_THRESHOLD))[0])
        gt, pd, res = self.coco_inputs
        tp_now = self.coco_matches.filter(
            (pl.col(s.IOU_THRESHOLD) == self.iou_thresholds[t_idx]) & (pl.col(s.CONFIDENCE) >= c))
        null_iou = pl.lit(None, dtype=pl.Float64).alias(s.IOU)
        if gt_feature is not None and pd_feature is not None:
            out = tp_now.filter((pl.col(s.GT_FEATURE) == gt_feature) & (pl.col(s.PD_FEATURE) == pd_feature))
            return out.select(s.DATA_ROW, s.GT_ID, s.PD_ID, null_iou)
        if pd_feature is None:
            side = gt.filter(pl.Series(~res.gt_ignore) & (pl.col(s.FEATURE).cast(pl.String) == gt_feature))
            out = side.join(tp_now.select(s.DATA_ROW, pl.col(s.GT_ID).alias(s.ID)),
                            on=[s.DATA_ROW, s.ID], how="anti", maintain_order="left")
            return out.select(s.DATA_ROW, pl.col(s.ID).alias(s.GT_ID),
                              pl.lit(None, dtype=pd.schema[s.ID]).alias(s.PD_ID), null_iou)
        counted = ~res.dt_ignore[t_idx] & (res.dt_rank >= 0) & ~res.dt_tp[t_idx]
        side = pd.filter(pl.Series(counted) & (pl.col(s.CONFIDENCE) >= c)
                         & (pl.col(s.FEATURE).cast(pl.String) == pd_feature))
        return side.select(s.DATA_ROW, pl.lit(None, dtype=gt.schema[s.ID]).alias(s.GT_ID),
                           pl.col(s.ID).alias(s.PD_ID), null_iou)

    def pr_curve(self, iou: float = 0.5, *, fine: bool = False) -> pl.DataFrame:
        if fine:
            raise ValueError("Under profile='coco' use ev.coco.precision for the 101-point curve.")
        return super().pr_curve(iou)
