"""``Evaluation``: the frames of one evaluation, and the views a person reads over them.

It holds frames with fixed schemas (and the per-annotation :class:`~polars_metrics.state.Detail`
behind ``examples()``), never the input tables, and never evaluates again: a finer grid is a new
``pm.evaluate`` the user asks for.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import polars as pl

from polars_metrics import metrics
from polars_metrics import schema as s
from polars_metrics._lazy import lazy
from polars_metrics.analysis import BACKGROUND_IOU
from polars_metrics.errors import PolarsMetricsError, ThresholdError, did_you_mean
from polars_metrics.io.parquet import write_frames
from polars_metrics.kinds.polygon import REPAIRS_SCHEMA
from polars_metrics.matching import matched_at
from polars_metrics.profiles import Profile
from polars_metrics.result import outcomes as _outcomes
from polars_metrics.state import Detail, LazyField, PartialResult

_queues = lazy("polars_metrics.result.queues")  # calibration, suspects: on first use
_errors = lazy("polars_metrics.analysis.errors")

NONE_LABEL = "None"  # the None class in the dense confusion matrix's labels
FINE_CONFIDENCE_THRESHOLDS = tuple(np.round(np.linspace(0, 1, 101), 2))
# Views of a higher layer (polars_metrics.views: report, plot), registered there on import.
_VIEWS: dict[str, Callable] = {}
FRAME_NAMES = ("cube", "overall", "confusion", "data_rows", "excluded", "rejects", "repairs",
               "matches")


@dataclass(frozen=True, eq=False)
class Evaluation:
    """The result of :func:`polars_metrics.evaluate`: frames with fixed schemas, and views.

    Attributes
    ----------
    cube : (*by, feature, confidence_threshold, iou_threshold, tp, fp, tn, fn, precision,
        recall, f1, iou) for every feature present in a slice, at every cell.
    overall : the all-feature rows, ``average`` = "micro" | "macro".
    confusion : (*by, confidence_threshold, iou_threshold, gt_feature, pd_feature, count),
        nonzero cells, None class = null.
    data_rows : per (data row, *by, confidence_threshold, iou_threshold): counts summed over
        features, per-feature ratios averaged over the features defined on the row. Built
        from the match arrays on first read and kept while the caller holds it; a read after
        it was dropped builds an equal frame (the result keeps the arrays, not the frame).
    excluded : data rows left out of the metrics and why; rejects : input rows rejected
        (``on_invalid="drop"``) and why; repairs : geometry repaired at load.
    timings : seconds per stage (prepare, pairs, match, cube, finalize).

    Examples
    --------
    >>> import polars as pl, polars_metrics as pm
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"data_row": ["a", "a"], "feature": ["cat", "dog"],
    ...                    "bbox": [[0.0, 0, 10, 10], [20.0, 20, 30, 30]]}, schema_overrides={"bbox": box})
    >>> pd = gt.with_columns(feature=pl.Series(["cat", "cat"]), confidence=pl.Series([0.9, 0.8]))
    >>> ev = pm.evaluate(gt, pd)
    >>> ev.confusion_matrix(0.5, 0.5).rows()
    [('cat', 1, 0, 0), ('dog', 1, 0, 0), ('None', 0, 0, 0)]
    >>> ev.examples("dog", "cat").select("gt_id", "pd_id", "iou").rows()
    [(1, 1, 1.0)]
    """

    profile: Profile
    keys: tuple[str, ...]
    by: tuple[str, ...]
    confidence_thresholds: np.ndarray
    iou_thresholds: np.ndarray
    cube: pl.DataFrame
    overall: pl.DataFrame
    confusion: pl.DataFrame
    data_rows: pl.DataFrame
    excluded: pl.DataFrame
    rejects: pl.DataFrame
    repairs_frame: pl.DataFrame | None = None
    timings: dict[str, float] = field(default_factory=dict)
    detail: Detail = field(default_factory=Detail, repr=False)

    @classmethod
    def from_partial(cls, part: PartialResult) -> Evaluation:
        """Finalize a (merged) partial result: ratios, micro and macro rows."""
        t0 = time.perf_counter()
        zero_tn = part.profile.zero_tn
        cube, overall = metrics.cube_and_overall(part.counts, part.by, zero_tn)
        return cls(
            profile=part.profile, keys=part.keys, by=part.by, confidence_thresholds=part.conf_thr,
            iou_thresholds=part.iou_thr, cube=cube, overall=overall,
            # partial() emits it in (*by, c, t, gt, pd) order, None last; merge() sorts
            confusion=part.confusion, data_rows=PartialResult.data_rows.raw(part),
            excluded=part.excluded,
            rejects=part.rejects, repairs_frame=part.repairs,
            timings=dict(part.timings, finalize=time.perf_counter() - t0),
            detail=_finished(part.detail),
        )

    def __repr__(self) -> str:
        cells = len(self.confidence_thresholds) * len(self.iou_thresholds)
        n_rows = self.data_rows.height // max(1, cells)
        return (f"<{type(self).__name__} profile={self.profile.name!r} data_rows={n_rows} "
                f"excluded={self.excluded.height} features={self.features} "
                f"cells={len(self.confidence_thresholds)}x{len(self.iou_thresholds)}>")

    @property
    def repairs(self) -> pl.DataFrame:
        """Geometry repaired at load (invalid polygons through ``make_valid``): table, row, id,
        reason, parts and area after the repair. Empty when nothing needed repair."""
        if self.repairs_frame is None:
            return pl.DataFrame(schema=REPAIRS_SCHEMA)
        return self.repairs_frame

    @cached_property
    def features(self) -> list[str]:
        """The features of the cube in natural order (:func:`~polars_metrics.schema.natural_order`:
        "class_2" before "class_10"): the order of ``confusion_matrix``'s labels, the plots and
        the report (the frames' rows stay sorted as strings)."""
        return s.natural_order(self.cube[s.FEATURE].unique().drop_nulls().to_list())

    # --- lookups -----------------------------------------------------------------------------
    def _threshold(self, value: float, axis: str) -> float:
        grid = self.confidence_thresholds if axis == s.CONFIDENCE_THRESHOLD else self.iou_thresholds
        distance = np.abs(grid - value)
        # the nearest grid value within the rounding tolerance (thresholds are rounded to 1e-9,
        # so two grid values can both lie within it: take the closest, not the first)
        hit = np.flatnonzero(distance <= 1e-9)
        hit = hit[np.argsort(distance[hit], kind="stable")]
        if hit.size == 0:
            arg = "confidence_thresholds" if axis == s.CONFIDENCE_THRESHOLD else "iou_thresholds"
            raise ThresholdError(
                f"{axis} {value} is not in this evaluation's grid {grid.tolist()}; evaluate with "
                f"it included (e.g. {arg}=[..., {value}]).")
        return float(grid[hit[0]])

    def _check_feature(self, name: str | None, role: str) -> None:
        if name is not None and name not in self.features:
            raise PolarsMetricsError(
                f"{role} {name!r} is not a feature of this evaluation; features are "
                f"{self.features[:20]}{' ...' if len(self.features) > 20 else ''}."
                + did_you_mean(name, self.features))

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
            dense[index[NONE_LABEL if g is None else g], index[NONE_LABEL if p is None else p]] = n
        return pl.DataFrame({s.GT_FEATURE: labels,
                             **{lab: dense[:, j] for j, lab in enumerate(labels)}})

    def examples(self, gt_feature: str | None, pd_feature: str | None, *,
                 confidence: float = 0.5, iou: float = 0.5) -> pl.DataFrame:
        """The annotations behind one confusion cell (None = the None class), one row per
        matched pair, unmatched ground truth (``pd_feature=None``) or unmatched prediction
        (``gt_feature=None``).

        Returns (*keys, *by, outcome, gt_feature, pd_feature, confidence, gt_id, pd_id, iou):
        ``confidence`` of the prediction, ``iou`` of the matched pair, ``outcome`` as in
        :meth:`outcomes` ("tp", "misclassified", "fn" or "fp"); the missing side, ``iou`` and
        (for ground truth alone) ``confidence`` are null on the None row / column.
        """
        if gt_feature is None and pd_feature is None:
            raise ValueError("The [None, None] cell is empty by definition; name a feature.")
        self._check_feature(gt_feature, "gt_feature")
        self._check_feature(pd_feature, "pd_feature")
        c = self._threshold(confidence, s.CONFIDENCE_THRESHOLD)
        t = self._threshold(iou, s.IOU_THRESHOLD)
        keys = list(self.keys)
        out = self._cell_examples(keys, gt_feature, pd_feature, c, t)
        # an annotation is (data row, id, feature): a checklist's options share their id
        conf = (self.detail.annotations[1].filter(pl.col(s.FEATURE).eq_missing(pd_feature))
                .select(*keys, pl.col(s.ID).alias(s.PD_ID), s.CONFIDENCE))
        if conf.schema[s.PD_ID] != out.schema[s.PD_ID]:
            conf = conf.with_columns(pl.col(s.PD_ID).cast(out.schema[s.PD_ID]))
        outcome = (_outcomes.FN if pd_feature is None else _outcomes.FP if gt_feature is None
                   else _outcomes.TP if gt_feature == pd_feature else _outcomes.MISCLASSIFIED)
        out = out.join(conf, on=[*keys, s.PD_ID], how="left", maintain_order="left").select(
            *keys, pl.lit(outcome, dtype=_outcomes.OUTCOME_DTYPE).alias(_outcomes.OUTCOME),
            pl.lit(gt_feature, dtype=pl.String).alias(s.GT_FEATURE),
            pl.lit(pd_feature, dtype=pl.String).alias(s.PD_FEATURE),
            pl.col(s.CONFIDENCE).cast(pl.Float64), s.GT_ID, s.PD_ID, pl.col(s.IOU).cast(pl.Float64))
        if not self.by:
            return out
        by_values = self.data_rows.select(*keys, *self.by).unique(subset=keys, maintain_order=True)
        return by_values.join(out, on=keys, how="inner", maintain_order="right").select(
            *keys, *self.by, *out.columns[len(keys):])

    def _cell_examples(self, keys, gt_feature, pd_feature, c, t) -> pl.DataFrame:
        matched = matched_at(self.detail.matches, c, t, self.profile.iou_strict)
        gt_ann, pd_ann = self.detail.annotations
        if gt_feature is not None and pd_feature is not None:
            out = matched.filter((pl.col(s.GT_FEATURE) == gt_feature)
                                 & (pl.col(s.PD_FEATURE) == pd_feature))
            return out.select(*keys, s.GT_ID, s.PD_ID, s.IOU).sort(keys, maintain_order=True)
        null_iou = pl.lit(None, dtype=pl.Float64).alias(s.IOU)
        if pd_feature is None:
            side = gt_ann.filter(pl.col(s.FEATURE) == gt_feature)
            taken = matched.filter(pl.col(s.GT_FEATURE) == gt_feature).select(
                *keys, pl.col(s.GT_ID).alias(s.ID))
            out = side.join(taken, on=[*keys, s.ID], how="anti", maintain_order="left")
            return out.select(*keys, pl.col(s.ID).alias(s.GT_ID),
                              pl.lit(None, dtype=pd_ann.schema[s.ID]).alias(s.PD_ID), null_iou)
        side = pd_ann.filter((pl.col(s.FEATURE) == pd_feature) & (pl.col(s.CONFIDENCE) >= c))
        taken = matched.filter(pl.col(s.PD_FEATURE) == pd_feature).select(
            *keys, pl.col(s.PD_ID).alias(s.ID))
        out = side.join(taken, on=[*keys, s.ID], how="anti", maintain_order="left")
        return out.select(*keys, pl.lit(None, dtype=gt_ann.schema[s.ID]).alias(s.GT_ID),
                          pl.col(s.ID).alias(s.PD_ID), null_iou)

    @property
    def matches(self) -> pl.DataFrame:
        """Match events of the IoU-threshold-0 walk at each confidence threshold: (*keys,
        confidence_threshold, gt_id, pd_id, iou, threshold_free, gt_feature, pd_feature)."""
        return self.detail.matches

    @property
    def data_row_features(self) -> pl.DataFrame:
        """Per (data row, feature on it, confidence_threshold, iou_threshold): that feature's
        counts, precision, recall, f1 and IoU metric — the values the data-row means average.

        Built on first access (rows × features × cells rows); ``tn`` is null for all kinds.
        """
        return self.detail.data_row_features(self.profile.zero_tn)

    def pr_curve(self, iou: float = 0.5, *, fine: bool = False) -> pl.DataFrame:
        """Precision–recall curve per feature and micro (feature = null) at one IoU threshold,
        one point per confidence threshold of the evaluation.

        ``fine=True`` is refused: an evaluation keeps no inputs to re-evaluate. Evaluate on the
        101-point grid instead (``confidence_thresholds=pm.FINE_CONFIDENCE_THRESHOLDS``).
        """
        if fine:
            raise PolarsMetricsError(
                "An Evaluation keeps no input tables, so it cannot re-evaluate on a finer grid. "
                "Evaluate on it: pm.evaluate(gt, pd, confidence_thresholds="
                f"pm.FINE_CONFIDENCE_THRESHOLDS, iou_thresholds=[{iou}]).pr_curve({iou}).")
        t = self._threshold(iou, s.IOU_THRESHOLD)
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
        label = pl.concat_str(pl.lit("all ("), pl.col(s.AVERAGE), pl.lit(")")).alias(s.FEATURE)
        allf = self.overall.filter(cell).select(*self.by, label, *s.METRIC_COLUMNS)
        return pl.concat([per, allf])

    # --- writers (in io/) --------------------------------------------------------------------
    def frames(self) -> dict[str, pl.DataFrame]:
        """Every output frame by name (the files :meth:`write` makes)."""
        return {name: getattr(self, name) for name in FRAME_NAMES}

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write every frame as ``<name>.parquet`` into ``directory``; returns the paths."""
        return write_frames(self.frames(), directory)

    def to_labelbox_metrics(self, path=None, **kwargs):
        """Labelbox custom-metric NDJSON; see
        :func:`polars_metrics.io.labelbox.metrics.write_labelbox_metrics`."""
        # imported on use: the Labelbox readers beside it load pyarrow, which box
        # evaluation never needs
        from polars_metrics.io.labelbox.metrics import write_labelbox_metrics

        return write_labelbox_metrics(self, path, **kwargs)

    # --- per-annotation outcomes, and the views of polars_metrics.views ----------------------
    def outcomes(self, confidence: float = 0.5, iou: float = 0.5) -> pl.DataFrame:
        """Per ground truth and prediction at one cell; see :func:`~polars_metrics.result.outcomes.outcomes`."""
        return _outcomes.outcomes(self, confidence, iou)

    def report(self, path: str | Path, **kwargs) -> Path:
        """One self-contained HTML report; see :func:`polars_metrics.views.report.report`."""
        return _VIEWS["report"](self, path, **kwargs)

    @property
    def plot(self):
        """Altair charts of this evaluation; see :class:`polars_metrics.views.plot.PlotAccessor`."""
        return _VIEWS["plot"](self)

    # --- error decomposition (issue 14, item 1: polars_metrics.analysis.errors) ---------------
    def errors(self, confidence: float = 0.5, iou: float = 0.5, *,
               background_iou: float = BACKGROUND_IOU,
               per: str = "feature") -> pl.DataFrame:
        """Why each false positive and false negative of one cell is one (TIDE's error types:
        classification, localization, both, duplicate, background, missed); the rules are in
        :mod:`polars_metrics.analysis.errors`. ``iou`` is the foreground threshold.

        ``per="feature"``: (*by, feature, error_type, count), one row per feature × type (zeros
        included) and the totals (feature = null). The prediction-side types sum to the cell's
        FP per feature; ``missed`` counts the FNs no classification or localization error
        explains. ``per="annotation"``: one row per FP (side "prediction") and FN (side
        "ground_truth") with its type, ids, features, confidence and deciding IoU.

        Examples
        --------
        >>> import polars as pl, polars_metrics as pm
        >>> box = pl.Array(pl.Float64, 4)
        >>> gt = pl.DataFrame({"data_row": ["a", "a"], "feature": ["cat", "dog"],
        ...                    "bbox": [[0.0, 0, 10, 10], [20.0, 0, 30, 10]]},
        ...                   schema_overrides={"bbox": box})
        >>> pd = pl.DataFrame({"data_row": ["a", "a"], "feature": ["cat", "cat"],
        ...                    "bbox": [[0.0, 0, 10, 4], [20.0, 0, 30, 10]],
        ...                    "confidence": [0.9, 0.8]}, schema_overrides={"bbox": box})
        >>> ev = pm.evaluate(gt, pd, profile="labelbox", class_aware=True)
        >>> ev.errors(0.5, 0.5, per="annotation").select("side", "error_type", "iou").rows()
        [('prediction', 'localization', 0.4), ('prediction', 'classification', 1.0), ('ground_truth', 'localization', 0.4), ('ground_truth', 'classification', 1.0)]
        >>> ev.errors(0.5, 0.5).filter(pl.col("feature").is_null(), pl.col("count") > 0).rows()
        [(None, 'classification', 1), (None, 'localization', 1)]
        """
        if per not in ("feature", "annotation"):
            raise ValueError(f"per={per!r}; use 'feature' (counts) or 'annotation' (one row "
                             "per false positive and false negative).")
        c = self._threshold(confidence, s.CONFIDENCE_THRESHOLD)
        t = self._threshold(iou, s.IOU_THRESHOLD)
        ci = int(np.flatnonzero(self.confidence_thresholds == c)[0])
        ti = int(np.flatnonzero(self.iou_thresholds == t)[0])
        counts, ann = _errors.error_frames(
            self.detail, self.cube.select(*self.by, s.FEATURE), by=self.by, c=ci, t=ti, fg=t,
            background_iou=background_iou, strict=self.profile.iou_strict,
            use_confidence=self.profile.use_confidence)
        return counts if per == "feature" else ann

    # --- calibration and label-error queues (issue 14, h-calib; in result/queues.py) ---------
    def calibration(self, iou: float = 0.5, bins: int = 10, *,
                    strategy: str = "uniform") -> pl.DataFrame:
        """The reliability-diagram table at one IoU threshold: per feature, micro (``feature``
        null) and ``by=`` slice, every confidence bin with its ``lower`` / ``upper`` edge,
        ``count``, mean ``confidence``, ``accuracy`` (share of true positives) and ``gap`` =
        accuracy − confidence. See :mod:`polars_metrics.analysis.calibration`.

        Examples
        --------
        >>> import polars as pl, polars_metrics as pm
        >>> box = pl.Array(pl.Float64, 4)
        >>> gt = pl.DataFrame({"data_row": ["a", "a"], "feature": ["cat", "cat"],
        ...                    "bbox": [[0.0, 0, 10, 10], [20.0, 20, 30, 30]]}, schema_overrides={"bbox": box})
        >>> pd = gt.with_columns(confidence=pl.Series([0.9, 0.7]), bbox=pl.Series(
        ...     [[0.0, 0, 10, 10], [50.0, 50, 60, 60]], dtype=box))
        >>> t = pm.evaluate(gt, pd).calibration(0.5, bins=2)
        >>> t.filter(pl.col("feature") == "cat").select("bin", "count", "confidence", "accuracy").rows()
        [(0, 0, None, None), (1, 2, 0.8, 0.5)]
        """
        return _queues.calibration(self, iou, bins, strategy)

    def calibration_error(self, iou: float = 0.5, bins: int = 10, *,
                          strategy: str = "uniform") -> pl.DataFrame:
        """Expected and maximum calibration error (``ece``, ``mce``) and the prediction
        ``count`` per feature, micro (``feature`` null) and ``by=`` slice, from
        :meth:`calibration`'s bins.

        Examples
        --------
        >>> import polars as pl, polars_metrics as pm
        >>> box = pl.Array(pl.Float64, 4)
        >>> gt = pl.DataFrame({"data_row": ["a"], "feature": ["cat"], "bbox": [[0.0, 0, 10, 10]]},
        ...                   schema_overrides={"bbox": box})
        >>> pm.evaluate(gt, gt.with_columns(confidence=pl.lit(0.75))).calibration_error().rows()
        [('cat', 1, 0.25, 0.25), (None, 1, 0.25, 0.25)]
        """
        return _queues.calibration_error(self, iou, bins, strategy)

    def suspects(self, confidence: float = 0.5, iou: float = 0.5, *, background: float = 0.1,
                 k: int | None = None, reasons=None) -> pl.DataFrame:
        """Likely labeling mistakes, ranked: (*keys, *by, reason, score, gt_id, pd_id,
        gt_feature, pd_feature, confidence, iou). ``confidence``: what counts as a confident
        prediction; ``iou`` / ``background``: the foreground / background IoU thresholds;
        ``k``: the top k; ``reasons``: keep these. Reasons and scores:
        :mod:`polars_metrics.analysis.suspects`.

        Examples
        --------
        >>> import polars as pl, polars_metrics as pm
        >>> box = pl.Array(pl.Float64, 4)
        >>> gt = pl.DataFrame({"data_row": ["a"], "feature": ["dog"], "bbox": [[0.0, 0, 10, 10]]},
        ...                   schema_overrides={"bbox": box})
        >>> pd = pl.DataFrame({"data_row": ["a", "a"], "feature": ["cat", "cat"], "confidence": [0.9, 0.8],
        ...                    "bbox": [[0.0, 0, 10, 10], [50.0, 50, 60, 60]]}, schema_overrides={"bbox": box})
        >>> pm.evaluate(gt, pd).suspects().select("reason", "score", "gt_id", "pd_id").rows()
        [('wrong_class', 0.9, 0, 0), ('missing_label', 0.8, None, 1)]
        """
        return _queues.suspects(self, confidence, iou, background=background, k=k,
                                reasons=reasons)

    def uncertain(self, confidence: float = 0.5, iou: float = 0.5, *,
                  k: int | None = None) -> pl.DataFrame:
        """Predictions nearest the decision at one cell, for active learning: (*keys, *by,
        pd_id, pd_feature, confidence, gt_id, iou, kept, tp, margin), ``margin`` =
        min(|confidence − threshold|, |IoU of its best same-feature overlap − IoU threshold|)
        ascending. Several runs: :func:`polars_metrics.uncertain_across`.

        Examples
        --------
        >>> import polars as pl, polars_metrics as pm
        >>> box = pl.Array(pl.Float64, 4)
        >>> gt = pl.DataFrame({"data_row": ["a"], "feature": ["cat"], "bbox": [[0.0, 0, 10, 10]]},
        ...                   schema_overrides={"bbox": box})
        >>> pd = gt.with_columns(confidence=pl.lit(0.55))
        >>> pm.evaluate(gt, pd).uncertain().select("pd_id", "tp", "margin").rows()
        [(0, True, 0.050000000000000044)]
        """
        return _queues.uncertain(self, confidence, iou, k=k)


def _finished(detail: Detail) -> Detail:
    """The detail a finished result keeps: the walk's sparse IoU-metric values, which only
    the cube (already built) reads in a call, are dropped and walked again on first read
    (``iou_values``, ``data_row_features``); see :meth:`~polars_metrics.events.Matches.drop_values`
    (in place: the partial result, if kept, walks again too)."""
    if detail.matches_arrays is not None:
        detail.matches_arrays.drop_values()
    return detail


# frames a result may build on first read (state.LazyField): data_rows the RowTable of one run
# (cached weakly), and under profile="coco" every table of the cube (coco.run)
for _name in ("cube", "overall", "confusion", "data_rows"):
    setattr(Evaluation, _name, LazyField(_name))
del _name


def finalize(part: PartialResult) -> Evaluation:
    """Turn a (merged) partial result into an :class:`Evaluation` (``pm.finalize``).

    Examples
    --------
    >>> import polars as pl, polars_metrics as pm
    >>> gt = pl.DataFrame({"data_row": ["a"], "feature": ["cat"], "bbox": [[0.0, 0, 10, 10]]},
    ...                   schema_overrides={"bbox": pl.Array(pl.Float64, 4)})
    >>> ev = pm.finalize(pm.partial(gt, gt, confidence_thresholds=[0.5], iou_thresholds=[0.5]))
    >>> ev.summary(0.5, 0.5).select("feature", "tp", "precision").rows()
    [('cat', 1, 1.0), ('all (macro)', 1, 1.0), ('all (micro)', 1, 1.0)]
    """
    return Evaluation.from_partial(part)
