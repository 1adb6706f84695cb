"""``evaluate(ground_truth, predictions) -> Evaluation``: the whole cube in one pass."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from polars_metrics import metrics, profiles
from polars_metrics import schema as s
from polars_metrics._memory import release_free_heap
from polars_metrics.errors import ProfileError, ThresholdError
from polars_metrics.matching import matched_at
from polars_metrics.profiles import Profile, get_profile
from polars_metrics.state import PartialResult, finalize, partial

NONE_LABEL = "None"  # the None class in the dense confusion matrix's labels


def evaluate(ground_truth, predictions, *, profile: str | Profile = "labelbox",
             confidence_thresholds: Sequence[float] | None = None,
             iou_thresholds: Sequence[float] | None = None,
             by: str | Sequence[str] | None = None,
             data_row: str | Sequence[str] = s.DATA_ROW,
             data_rows=None, on_invalid: str = "raise", iou_type: str | None = None,
             max_dets: Sequence[int] | None = None, area_ranges=None, rec_thresholds=None,
             use_cats: bool | None = None, **switches: Any) -> Evaluation:
    """Evaluate predictions against ground truth at every (confidence, IoU) threshold cell.

    Parameters
    ----------
    ground_truth, predictions : Polars DataFrame / LazyFrame or Arrow table, one row per
        annotation: the data-row key, ``feature`` (String), the geometry (``bbox`` as
        Array(Float64, 4) = x0, y0, x1, y1), optional ``id`` and, on predictions, optional
        ``confidence`` (null = 1.0).
    profile : "labelbox" (default; SPEC §5) or a :class:`Profile`; keyword ``switches``
        (e.g. ``class_aware=True``) override single fields of it.
    confidence_thresholds, iou_thresholds : defaults 0.0, 0.1, ..., 1.0.
    by : columns to slice by (constant per data row, from either table or ``data_rows``).
    data_row : the data-row key column, or several for a composite key.
    data_rows : optional frame of per-data-row metadata (the key plus ``by`` columns).
    on_invalid : "raise" (default) or "drop" (bad rows go to ``ev.rejects`` with the reason).
    iou_type, max_dets, area_ranges, rec_thresholds, use_cats : ``profile="coco"`` only:
        pycocotools' ``iouType`` ("bbox" default, or "segm"), ``maxDets`` (1, 10, 100),
        ``areaRng`` (``{label: (low, high)}``), ``recThrs`` (101 points) and ``useCats``.
        Under ``coco`` the IoU thresholds default to .50:.05:.95.

    Examples
    --------
    >>> import polars as pl, polars_metrics as pm
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"data_row": ["a"], "feature": ["cat"], "bbox": [[0.0, 0, 10, 10]]},
    ...                   schema_overrides={"bbox": box})
    >>> pd = pl.DataFrame({"data_row": ["a"], "feature": ["cat"], "bbox": [[0.0, 0, 10, 5]],
    ...                    "confidence": [0.9]}, schema_overrides={"bbox": box})
    >>> ev = pm.evaluate(gt, pd, confidence_thresholds=[0.5], iou_thresholds=[0.4, 0.5])
    >>> ev.cube.select("iou_threshold", "tp", "fp", "fn", "iou").rows()
    [(0.4, 1, 0, 0, 0.5), (0.5, 0, 1, 1, 0.5)]
    """
    coco_options = {k: v for k, v in dict(iou_type=iou_type, max_dets=max_dets,
                                          area_ranges=area_ranges, rec_thresholds=rec_thresholds,
                                          use_cats=use_cats).items() if v is not None}
    prof = get_profile(profile, **switches)
    if profiles.engine_of(prof) == "coco":
        from polars_metrics.coco_profile import evaluate_coco_profile

        return evaluate_coco_profile(ground_truth, predictions, profile=prof,
                                     confidence_thresholds=confidence_thresholds,
                                     iou_thresholds=iou_thresholds, by=by, data_row=data_row,
                                     **coco_options)
    if coco_options:
        raise ProfileError(f"{sorted(coco_options)} only apply to profile='coco'.")
    part = partial(ground_truth, predictions, profile=profile,
                   confidence_thresholds=confidence_thresholds, iou_thresholds=iou_thresholds,
                   by=by, data_row=data_row, data_rows=data_rows, on_invalid=on_invalid,
                   **switches)
    ev = finalize(part)
    ev._inputs = (ground_truth, predictions, dict(
        profile=profile, confidence_thresholds=confidence_thresholds,
        iou_thresholds=iou_thresholds, by=by, data_row=data_row, data_rows=data_rows,
        on_invalid=on_invalid, **switches))
    release_free_heap()  # the stage temporaries are freed by now
    return ev


class Evaluation:
    """The result of :func:`evaluate`: frames with fixed schemas, and views over them.

    Attributes
    ----------
    cube : (*by, feature, confidence_threshold, iou_threshold, tp, fp, tn, fn, precision,
        recall, f1, iou) for every feature present in a slice, at every cell.
    overall : the all-feature rows, ``average`` = "micro" | "macro".
    confusion : (*by, confidence_threshold, iou_threshold, gt_feature, pd_feature, count),
        nonzero cells, None class = null.
    data_rows : per (data row, *by, confidence_threshold, iou_threshold): counts summed over
        features, per-feature ratios averaged over the features defined on the row.
    excluded : data rows left out of the metrics and why; rejects : input rows rejected
        (``on_invalid="drop"``) and why.
    timings : seconds per stage (prepare, pairs, match, cube, finalize).
    """

    def __init__(self) -> None:  # use evaluate() or state.finalize()
        raise TypeError("Create an Evaluation with pm.evaluate(...) or state.finalize(...).")

    @classmethod
    def _from_partial(cls, part: PartialResult) -> Evaluation:
        import time

        t0 = time.perf_counter()
        self = object.__new__(cls)
        self._part = part
        self.profile = part.profile
        self.keys = part.keys
        self.by = part.by
        self.confidence_thresholds = part.conf_thr
        self.iou_thresholds = part.iou_thr
        zero_tn = part.profile.zero_tn
        self.cube = metrics.cube_from_counts(part.counts, part.by, zero_tn)
        self.overall = metrics.overall_from_counts(part.counts, self.cube, part.by, zero_tn)
        # partial() emits it in (*by, c, t, gt, pd) order, None last; merge() sorts
        self.confusion = part.confusion
        self.data_rows = part.data_rows
        self.excluded = part.excluded
        self.rejects = part.rejects
        self._repairs = part.repairs
        self.timings = dict(part.timings, finalize=time.perf_counter() - t0)
        self._inputs = None
        return self

    def __repr__(self) -> str:
        n_rows = self.data_rows.height // max(1, len(self.confidence_thresholds) * len(self.iou_thresholds))
        return (f"<Evaluation profile={self.profile.name!r} data_rows={n_rows} "
                f"excluded={self.excluded.height} features={self.features} "
                f"cells={len(self.confidence_thresholds)}x{len(self.iou_thresholds)}>")

    @property
    def repairs(self) -> pl.DataFrame:
        """Geometry repaired at load (invalid polygons through ``make_valid``): table, row, id,
        reason, parts and area after the repair. Empty when nothing needed repair."""
        if getattr(self, "_repairs", None) is None:
            from polars_metrics.kinds.polygon import REPAIRS_SCHEMA

            return pl.DataFrame(schema=REPAIRS_SCHEMA)
        return self._repairs

    @property
    def features(self) -> list[str]:
        return self.cube[s.FEATURE].unique().sort().to_list()

    # --- threshold lookup -------------------------------------------------------------------
    def _threshold(self, value: float, axis: str) -> float:
        grid = self.confidence_thresholds if axis == s.CONFIDENCE_THRESHOLD else self.iou_thresholds
        hit = np.flatnonzero(np.abs(grid - value) <= 1e-9)
        if hit.size == 0:
            raise ThresholdError(
                f"{axis} {value} is not in this evaluation's grid {grid.tolist()}; evaluate with "
                f"it included (e.g. {'confidence_thresholds' if axis == s.CONFIDENCE_THRESHOLD else 'iou_thresholds'}=[..., {value}])."
            )
        return float(grid[hit[0]])

    # --- views -------------------------------------------------------------------------------
    def confusion_matrix(self, confidence: float = 0.5, iou: float = 0.5) -> pl.DataFrame:
        """Dense square confusion matrix at one cell: rows = ground truth, columns = prediction.

        The first column ``gt_feature`` holds the row labels (features, then "None").
        """
        c = self._threshold(confidence, s.CONFIDENCE_THRESHOLD)
        t = self._threshold(iou, s.IOU_THRESHOLD)
        labels = [*self.features, NONE_LABEL]
        cells = self.confusion.filter(
            (pl.col(s.CONFIDENCE_THRESHOLD) == c) & (pl.col(s.IOU_THRESHOLD) == t)
        ).group_by(s.GT_FEATURE, s.PD_FEATURE).agg(pl.col(s.COUNT).sum())
        index = {name: i for i, name in enumerate(labels)}
        dense = np.zeros((len(labels), len(labels)), dtype=np.int64)
        for g, p, n in cells.iter_rows():
            dense[index[g if g is not None else NONE_LABEL], index[p if p is not None else NONE_LABEL]] = n
        return pl.DataFrame({s.GT_FEATURE: labels, **{lab: dense[:, j] for j, lab in enumerate(labels)}})

    def examples(self, gt_feature: str | None, pd_feature: str | None, *, confidence: float = 0.5,
                 iou: float = 0.5) -> pl.DataFrame:
        """The data rows and annotation ids behind one confusion cell (None = the None class).

        Returns (*keys, *by, gt_id, pd_id, iou); ``iou`` and the missing side are null on the
        None row / column.
        """
        if gt_feature is None and pd_feature is None:
            raise ValueError("The [None, None] cell is empty by definition; name a feature.")
        c = self._threshold(confidence, s.CONFIDENCE_THRESHOLD)
        t = self._threshold(iou, s.IOU_THRESHOLD)
        keys = list(self.keys)
        out = self._examples(keys, gt_feature, pd_feature, c, t)
        if not self.by:
            return out
        by_values = self.data_rows.select(*keys, *self.by).unique(subset=keys, maintain_order=True)
        return by_values.join(out, on=keys, how="inner", maintain_order="right").select(
            *keys, *self.by, s.GT_ID, s.PD_ID, s.IOU)

    def _examples(self, keys, gt_feature, pd_feature, c, t) -> pl.DataFrame:
        matched = matched_at(self._part.matches, c, t, self.profile.iou_strict)
        gt_ann, pd_ann = self._part.annotations
        if gt_feature is not None and pd_feature is not None:
            out = matched.filter((pl.col(s.GT_FEATURE) == gt_feature) & (pl.col(s.PD_FEATURE) == pd_feature))
            return out.select(*keys, s.GT_ID, s.PD_ID, s.IOU).sort(keys, maintain_order=True)
        if pd_feature is None:
            side = gt_ann.filter(pl.col(s.FEATURE) == gt_feature)
            taken = matched.select(*keys, pl.col(s.GT_ID).alias(s.ID))
            out = side.join(taken, on=[*keys, s.ID], how="anti", maintain_order="left")
            return out.select(*keys, pl.col(s.ID).alias(s.GT_ID),
                              pl.lit(None, dtype=out.schema[s.ID]).alias(s.PD_ID),
                              pl.lit(None, dtype=pl.Float64).alias(s.IOU))
        side = pd_ann.filter((pl.col(s.FEATURE) == pd_feature) & (pl.col(s.CONFIDENCE) >= c))
        taken = matched.select(*keys, pl.col(s.PD_ID).alias(s.ID))
        out = side.join(taken, on=[*keys, s.ID], how="anti", maintain_order="left")
        return out.select(*keys, pl.lit(None, dtype=gt_ann.schema[s.ID]).alias(s.GT_ID),
                          pl.col(s.ID).alias(s.PD_ID), pl.lit(None, dtype=pl.Float64).alias(s.IOU))

    @property
    def matches(self) -> pl.DataFrame:
        """Match events of the IoU-threshold-0 walk at each confidence threshold (see state)."""
        return self._part.matches

    @property
    def data_row_features(self) -> pl.DataFrame:
        """Per (data row, feature on it, confidence_threshold, iou_threshold): that feature's
        counts, precision, recall, f1 and IoU metric — the values the data-row means average.

        Built on first access (rows × features × cells rows); ``tn`` is null for all kinds.
        """
        if getattr(self, "_row_features", None) is None:
            if self._part is None or self._part._source is None:
                raise ValueError("data_row_features needs the arrays of one evaluation; it is not "
                                 "kept through state.merge. Evaluate the rows you need directly.")
            prep, m = self._part._source
            self._row_features = metrics.data_row_feature_table(prep, m, zero_tn=self.profile.zero_tn)
        return self._row_features

    def pr_curve(self, iou: float = 0.5, *, fine: bool = False) -> pl.DataFrame:
        """Precision–recall curve per feature and micro (feature = null) at one IoU threshold.

        ``fine=True`` re-evaluates on a 101-point confidence grid (0.00, 0.01, …, 1.00).
        """
        t = self._threshold(iou, s.IOU_THRESHOLD) if not fine else iou
        if fine:
            fine_ev = self._reevaluate(confidence_thresholds=np.linspace(0, 1, 101), iou_thresholds=[t])
            return fine_ev.pr_curve(t)
        return metrics.pr_curve_from_cube(self.cube, self.overall, self.by, t)

    def best_thresholds(self, iou: float = 0.5, *, fine: bool = False) -> pl.DataFrame:
        """The max-F1 confidence threshold per feature and micro (feature = null)."""
        return metrics.best_from_curve(self.pr_curve(iou, fine=fine), self.by)

    def summary(self, confidence: float = 0.5, iou: float = 0.5) -> pl.DataFrame:
        """Per-feature rows and the micro/macro rows at one cell: the table a person reads first."""
        c = self._threshold(confidence, s.CONFIDENCE_THRESHOLD)
        t = self._threshold(iou, s.IOU_THRESHOLD)
        cell = (pl.col(s.CONFIDENCE_THRESHOLD) == c) & (pl.col(s.IOU_THRESHOLD) == t)
        cols = [*self.by, s.FEATURE, *s.METRIC_COLUMNS]
        per = self.cube.filter(cell).select(cols)
        allf = self.overall.filter(cell).select(
            *self.by, pl.concat_str(pl.lit("all ("), pl.col(s.AVERAGE), pl.lit(")")).alias(s.FEATURE),
            *s.METRIC_COLUMNS)
        return pl.concat([per, allf])

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write every frame as Parquet into ``directory``; returns the paths."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        frames = {"cube": self.cube, "overall": self.overall, "confusion": self.confusion,
                  "data_rows": self.data_rows, "excluded": self.excluded, "rejects": self.rejects,
                  "repairs": self.repairs, "matches": self.matches}
        paths = {}
        for name, frame in frames.items():
            paths[name] = out / f"{name}.parquet"
            frame.write_parquet(paths[name])
        return paths

    def to_labelbox_metrics(self, path=None, **kwargs):
        """Labelbox custom-metric NDJSON; see :func:`polars_metrics.io.labelbox_metrics.write_labelbox_metrics`."""
        from polars_metrics.io.labelbox_metrics import write_labelbox_metrics
        return write_labelbox_metrics(self, path, **kwargs)

    def _reevaluate(self, **overrides) -> Evaluation:
        if self._inputs is None:
            raise ValueError("This evaluation was merged from partial results and does not keep "
                             "its input tables; evaluate again with the thresholds you need.")
        gt, pd, kwargs = self._inputs
        return evaluate(gt, pd, **{**kwargs, **overrides})


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

    @classmethod
    def _from_coco(cls, res, profile, conf_thr, counts, confusion, data_rows, excluded, matches,
                   inputs):
        import time

        from polars_metrics.validation import empty_rejects

        t0 = time.perf_counter()
        self = object.__new__(cls)
        self._part = None
        self._inputs = None
        self.profile = profile
        self.keys = (s.DATA_ROW,)
        self.by = ()
        self.confidence_thresholds = conf_thr
        self.iou_thresholds = np.round(res.params.iou_thresholds, s.THRESHOLD_DECIMALS)
        self.cube = metrics.cube_from_counts(counts, (), zero_tn=False)
        self.overall = metrics.overall_from_counts(counts, self.cube, (), zero_tn=False)
        self.confusion = confusion
        self.data_rows = data_rows
        self.excluded = excluded
        self.rejects = empty_rejects()
        self.coco = res
        self.coco_summary = res.summary
        self.coco_per_category = res.per_category
        self._coco_matches = matches
        self._coco_inputs = inputs
        self.timings = {"finalize": time.perf_counter() - t0}
        return self

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
        return self._coco_matches

    def examples(self, gt_feature, pd_feature, *, confidence=0.5, iou=0.5) -> pl.DataFrame:
        """The images and ids behind one confusion cell under COCO matching.

        Matching is class-aware, so off-diagonal cells are empty. ``iou`` is null (COCO keeps
        only the matched pair, not its IoU).
        """
        if gt_feature is None and pd_feature is None:
            raise ValueError("The [None, None] cell is empty by definition; name a feature.")
        c = self._threshold(confidence, s.CONFIDENCE_THRESHOLD)
        t_idx = int(np.flatnonzero(self.iou_thresholds == self._threshold(iou, s.IOU_THRESHOLD))[0])
        gt, pd, res = self._coco_inputs
        tp_now = self._coco_matches.filter(
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
