""":class:`CocoEvaluation`: the one result type of ``pm.evaluate(..., profile="coco")``.

It holds frames and the :class:`~polars_metrics.coco.arrays.CocoResult` arrays of one COCO
run, never the input tables. ``pm.evaluate_coco`` is the arrays-only entry to the same engine:
its result is this evaluation's ``coco`` attribute.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from polars_metrics import metrics
from polars_metrics import schema as s
from polars_metrics._lazy import lazy
from polars_metrics.analysis import BACKGROUND_IOU
from polars_metrics.errors import did_you_mean
from polars_metrics.result.evaluation import Evaluation
from polars_metrics.state import Deferred, LazyField

_tide = lazy("polars_metrics.analysis.tide")  # TIDE: on first use

if TYPE_CHECKING:  # the engine needs numba: imported by evaluate() only when it runs
    from polars_metrics.coco import CocoResult, CocoRun
    from polars_metrics.coco.cube import CubeTables


@dataclass(frozen=True, eq=False, kw_only=True)
class CocoEvaluation(Evaluation):
    """:class:`Evaluation` under ``profile="coco"``: pycocotools' numbers plus the cube.

    Attributes (beyond :class:`Evaluation`)
    ----------------------------------------
    coco : :class:`~polars_metrics.coco.arrays.CocoResult` of the whole evaluation
        (``precision`` / ``recall`` / ``scores`` arrays as ``COCOeval.eval``, ``stats``,
        per-detection matches).
    coco_summary : the 12 summary stats (``metric``, ``iou``, ``area``, ``max_dets``,
        ``value``); with ``by=``, 12 rows per slice led by the ``by`` columns, each slice's
        images evaluated on their own (AP is not additive over images).
    coco_per_category : per-category AP / AR (per slice likewise); without ``by``, built on
        first read.

    The cube, confusion and data-row frames count under COCO matching at area "all" and the
    largest maxDet (ignored detections are neither TP nor FP; ignored ground truths never FN);
    they are additive, so ``by=`` slices them from the same pass. ``iou`` (the IoU metric) is
    null, and the data-row ratios are per image, from its counts. They are built on first
    read, from the matcher's result the evaluation keeps: ``pm.evaluate`` pays for pycocotools'
    numbers only, and a result read for ``coco_summary`` alone never builds them. Until then
    the result holds the few input columns they read (image, category, confidence; never the
    geometry); the frames are the same whenever they are built.

    Examples
    --------
    >>> import polars as pl, polars_metrics as pm
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"data_row": [1], "feature": ["cat"], "bbox": [[0.0, 0, 10, 10]]},
    ...                   schema_overrides={"bbox": box})
    >>> pd = pl.DataFrame({"data_row": [1], "feature": ["cat"], "bbox": [[0.0, 0, 10, 6]],
    ...                    "confidence": [0.9]}, schema_overrides={"bbox": box})
    >>> ev = pm.evaluate(gt, pd, profile="coco", confidence_thresholds=[0.5])
    >>> type(ev).__name__, float(ev.coco.stats[1].round(3)), ev.coco_summary.height
    ('CocoEvaluation', 1.0, 12)
    >>> ev.cube.filter(pl.col("iou_threshold") == 0.6).select("tp", "fp", "fn").row(0)
    (1, 0, 0)
    """

    # COCO's own
    coco: CocoResult | None = None
    coco_summary: pl.DataFrame | None = None
    coco_per_category: pl.DataFrame | None = None
    tables: CubeTables | None = field(default=None, repr=False)

    @classmethod
    def from_run(cls, out: CocoRun) -> CocoEvaluation:
        """The evaluation of one COCO engine run (:func:`polars_metrics.coco.run`: its tables
        are built on first read, and so are this evaluation's frames of them)."""
        t0 = time.perf_counter()
        tables, by, zero_tn = out.tables, out.by, out.profile.zero_tn
        cube_overall = Deferred(lambda: metrics.cube_and_overall(tables.value().counts, by, zero_tn))
        timings = out.timings  # the tables' build adds its seconds ("cube") when it runs
        timings["finalize"] = time.perf_counter() - t0
        return cls(
            profile=out.profile, keys=out.keys, by=by, confidence_thresholds=out.conf_thr,
            iou_thresholds=out.iou_thr, cube=Deferred(lambda: cube_overall.value()[0]),
            overall=Deferred(lambda: cube_overall.value()[1]),
            confusion=Deferred(lambda: tables.value().confusion),
            data_rows=Deferred(lambda: tables.value().rows),
            excluded=out.excluded, rejects=out.rejects, coco=out.coco,
            coco_summary=out.summary, coco_per_category=out.per_category, tables=tables,
            timings=timings,
        )

    def __repr__(self) -> str:
        return (f"<CocoEvaluation iou_type={self.coco.params.iou_type!r} "
                f"images={self.coco.image_ids.size} excluded={self.excluded.height} "
                f"features={len(self.coco.features)} AP={self.coco.stats[0]:.3f}>")

    @property
    def coco_result(self) -> CocoResult:
        """Alias of :attr:`coco` (the type :func:`pm.evaluate_coco` returns)."""
        return self.coco

    def coco_arrays(self) -> dict[str, np.ndarray]:
        """``precision`` [T,R,K,A,M], ``recall`` [T,K,A,M], ``scores`` [T,R,K,A,M] as in
        ``COCOeval.eval`` (of the whole evaluation, also with ``by=``)."""
        return self.coco.arrays()

    def format_coco_summary(self) -> str:
        """The 12 lines pycocotools' ``summarize()`` prints (of the whole evaluation)."""
        return self.coco.format_summary()

    @property
    def matches(self) -> pl.DataFrame:
        """True positives: (data_row, iou_threshold, gt_id, pd_id, confidence, gt_feature,
        pd_feature); a TP at IoU threshold t counts at every confidence threshold <= confidence."""
        return self.tables.matches

    def examples(self, gt_feature: str | None, pd_feature: str | None, *, confidence: float = 0.5,
                 iou: float = 0.5) -> pl.DataFrame:
        """The images and ids behind one confusion cell under COCO matching.

        Returns (*keys, *by, gt_id, pd_id, iou). Matching is class-aware, so off-diagonal cells
        are empty. ``iou`` is null (COCO keeps only the matched pair, not its IoU).
        """
        if gt_feature is None and pd_feature is None:
            raise ValueError("The [None, None] cell is empty by definition; name a feature.")
        known = list(self.coco.features)
        for name in (gt_feature, pd_feature):
            if name is not None and name not in known:
                raise ValueError(f"feature {name!r} is not evaluated here; features are "
                                 f"{known[:20]}." + did_you_mean(name, known))
        c = self._threshold(confidence, s.CONFIDENCE_THRESHOLD)
        t = self._threshold(iou, s.IOU_THRESHOLD)
        keys = list(self.keys)
        tp_now = self.tables.matches.filter(
            (pl.col(s.IOU_THRESHOLD) == t) & (pl.col(s.CONFIDENCE) >= c))
        null_iou = pl.lit(None, dtype=pl.Float64).alias(s.IOU)
        if gt_feature is not None and pd_feature is not None:
            out = tp_now.filter((pl.col(s.GT_FEATURE) == gt_feature)
                                & (pl.col(s.PD_FEATURE) == pd_feature))
            out = out.select(*keys, s.GT_ID, s.PD_ID, null_iou)
        elif pd_feature is None:
            side = self.tables.gt_counted.filter(pl.col(s.FEATURE) == gt_feature)
            out = side.join(tp_now.select(*keys, s.GT_ID), on=[*keys, s.GT_ID], how="anti",
                            maintain_order="left")
            pd_dtype = self.tables.false_positives.schema[s.PD_ID]
            out = out.select(*keys, s.GT_ID, pl.lit(None, dtype=pd_dtype).alias(s.PD_ID), null_iou)
        else:
            side = self.tables.false_positives.filter(
                (pl.col(s.IOU_THRESHOLD) == t) & (pl.col(s.CONFIDENCE) >= c)
                & (pl.col(s.PD_FEATURE) == pd_feature))
            gt_dtype = self.tables.gt_counted.schema[s.GT_ID]
            out = side.select(*keys, pl.lit(None, dtype=gt_dtype).alias(s.GT_ID), s.PD_ID, null_iou)
        if not self.by:
            return out
        by_values = self.data_rows.select(*keys, *self.by).unique(subset=keys, maintain_order=True)
        return by_values.join(out, on=keys, how="inner", maintain_order="right").select(
            *keys, *self.by, s.GT_ID, s.PD_ID, s.IOU)

    def outcomes(self, confidence: float = 0.5, iou: float = 0.5) -> pl.DataFrame:
        """Not built under ``profile="coco"`` yet: :meth:`examples` gives each confusion
        cell's images and ids, and :attr:`matches` every true positive."""
        raise ValueError("outcomes() is not available under profile='coco'; use "
                         "ev.examples(gt_feature, pd_feature, ...) per confusion cell or "
                         "ev.matches (every true positive).")

    @property
    def data_row_features(self) -> pl.DataFrame:
        """Not kept under ``profile="coco"``: COCO counts per image (``ev.data_rows``) and per
        category (``ev.cube``); filter ``ev.matches`` for the per-feature rows of one image."""
        raise ValueError("data_row_features is not available under profile='coco'; use "
                         "ev.data_rows (per image), ev.cube (per category) or ev.matches.")

    def pr_curve(self, iou: float = 0.5, *, fine: bool = False) -> pl.DataFrame:
        """Precision–recall curve per feature and micro from the cube at one IoU threshold.

        ``fine=True`` is not re-evaluated under ``coco``: ``ev.coco.precision`` holds
        pycocotools' 101-point interpolated curves (axis 1 = recall thresholds).
        """
        if fine:
            raise ValueError("Under profile='coco' use ev.coco.precision for the 101-point "
                             "curve (COCOeval.eval['precision'], recall thresholds on axis 1).")
        return super().pr_curve(iou)

    # --- error decomposition (issue 14, item 1: polars_metrics.analysis.tide) ---------------
    def errors(self, confidence: float = 0.5, iou: float = 0.5, *,
               background_iou: float = BACKGROUND_IOU,
               per: str = "feature") -> pl.DataFrame:
        """TIDE's error types at one cell under COCO matching, and (``per="feature"``) each
        type's ΔAP: the AP at IoU threshold ``iou`` (every counted detection) gained by fixing
        that type, per feature and for the mean over features (feature = null). Needs
        ``pm.evaluate(..., profile="coco", errors=True)``; the rules and every difference from
        tidecv are in :mod:`polars_metrics.analysis.tide`.

        Examples
        --------
        >>> import polars as pl, polars_metrics as pm
        >>> box = pl.Array(pl.Float64, 4)
        >>> gt = pl.DataFrame({"image": [1, 1], "feature": ["cat", "dog"],
        ...                    "bbox": [[0.0, 0, 10, 10], [20.0, 0, 30, 10]]},
        ...                   schema_overrides={"bbox": box})
        >>> pd = pl.DataFrame({"image": [1, 1], "feature": ["cat", "cat"],
        ...                    "bbox": [[0.0, 0, 10, 10], [20.0, 0, 30, 10]],
        ...                    "confidence": [0.6, 0.9]}, schema_overrides={"bbox": box})
        >>> ev = pm.evaluate(gt, pd, profile="coco", data_row="image", errors=True)
        >>> out = ev.errors(0.0, 0.5).filter(pl.col("feature").is_null(), pl.col("count") > 0)
        >>> out.with_columns(pl.col("delta_ap").round(3)).rows()  # mAP 0.25 -> 1.0
        [(None, 'classification', 1, 0.75)]
        """
        if per not in ("feature", "annotation"):
            raise ValueError(f"per={per!r}; use 'feature' (counts and ΔAP) or 'annotation'.")
        if self.by:
            raise ValueError(
                "errors() under profile='coco' with by= is not supported: AP (and so ΔAP) is "
                "not additive over images. Evaluate each slice on its own (filter the tables) "
                "with errors=True, or use profile='labelbox' for per-slice counts.")
        c = self._threshold(confidence, s.CONFIDENCE_THRESHOLD)
        t = self._threshold(iou, s.IOU_THRESHOLD)
        counts, ann = _tide.coco_error_frames(self.detail, self.tables, self.cube.select(s.FEATURE),
                                              c=c, t=t, background_iou=background_iou)
        if per == "annotation":
            return ann
        return counts


# coco_per_category: a frame, or (without by=) built on first read from the run's CocoResult;
# tables: built on first read (coco.run), with the cube, overall, confusion and data-row frames
CocoEvaluation.coco_per_category = LazyField("coco_per_category")  # type: ignore[assignment]
CocoEvaluation.tables = LazyField("tables")  # type: ignore[assignment]
