"""Calibration and label-error / active-learning queues of an evaluation (issue 14).

The glue between :class:`~polars_metrics.result.Evaluation` and
:mod:`polars_metrics.analysis.calibration` / :mod:`polars_metrics.analysis.suspects`: it picks
the cell, reads the per-annotation detail and adds the ``by`` columns. ``ev.calibration()``,
``ev.calibration_error()``, ``ev.suspects()`` and ``ev.uncertain()`` call these;
:func:`uncertain_across` is ``pm.uncertain_across``.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics.analysis import calibration as _cal
from polars_metrics.analysis import suspects as _sus
from polars_metrics.errors import PolarsMetricsError
from polars_metrics.matching import matched_at
from polars_metrics.prepare import GIVEN


def _need_detail(ev, what: str) -> None:
    d = ev.detail
    # the COCO engine's detail (errors=True) holds the pairs but no match arrays
    if (d.prep is None and not d.frames) or (d.prep is not None and d.matches_arrays is None):
        raise PolarsMetricsError(
            f"{what} reads every prediction's match, which this evaluation does not keep "
            f"(profile {ev.profile.name!r}"
            + (": the COCO engine keeps true positives only" if ev.profile.name == "coco" else "")
            + "). Evaluate with the pipeline (e.g. pm.evaluate(gt, pd, profile='labelbox')) to "
            "get it.")


def _need_confidence(ev, what: str) -> None:
    pd = ev.detail.annotations[1]
    if not ev.profile.use_confidence or s.CONFIDENCE not in pd.columns:
        raise PolarsMetricsError(
            f"{what} needs prediction confidences; profile {ev.profile.name!r} ignores them. "
            "Evaluate under a profile that uses them (e.g. 'labelbox').")
    if GIVEN in pd.columns and not pd[GIVEN].all():
        missing = pd.filter(~pl.col(GIVEN))
        row = missing.row(0, named=True)
        where = ", ".join(f"{k}={row[k]!r}" for k in ev.keys)
        raise PolarsMetricsError(
            f"{what} needs a confidence on every prediction; {missing.height} of {pd.height} "
            f"predictions have none (predictions.confidence missing or null, read as 1.0 by "
            f"the metrics), e.g. data row {where}, id {row[s.ID]!r}. Give every prediction its "
            "model score in predictions.confidence, or leave those predictions out.")


def _with_by(ev, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` (led by the data-row keys) with the ``by`` columns after the keys."""
    if not ev.by:
        return frame
    keys = list(ev.keys)
    by_values = ev.data_rows.select(*keys, *ev.by).unique(subset=keys, maintain_order=True)
    return frame.join(by_values, on=keys, how="left", maintain_order="left").select(
        *keys, *ev.by, *[c for c in frame.columns if c not in keys])


def _lowest(ev) -> float:
    return float(np.min(ev.confidence_thresholds))


def flags(ev, iou: float) -> pl.DataFrame:
    """Every counted prediction with its ``correct`` flag at IoU threshold ``iou``."""
    _need_detail(ev, "calibration")
    _need_confidence(ev, "calibration")
    t = ev._threshold(iou, s.IOU_THRESHOLD)
    c0 = _lowest(ev)
    matched = matched_at(ev.detail.matches, c0, t, ev.profile.iou_strict)
    preds = _with_by(ev, ev.detail.annotations[1])
    return _cal.prediction_flags(preds, matched, list(ev.keys), c0)


def calibration(ev, iou: float = 0.5, bins: int = 10, strategy: str = "uniform") -> pl.DataFrame:
    return _cal.reliability(flags(ev, iou), list(ev.by), bins, strategy)


def calibration_error(ev, iou: float = 0.5, bins: int = 10,
                      strategy: str = "uniform") -> pl.DataFrame:
    return _cal.calibration_error(calibration(ev, iou, bins, strategy), list(ev.by))


def suspects(ev, confidence: float = 0.5, iou: float = 0.5, *, background: float = 0.1,
             k: int | None = None, reasons=None) -> pl.DataFrame:
    _need_detail(ev, "suspects()")
    _need_confidence(ev, "suspects()")
    gt, pd = ev.detail.annotations
    out = _sus.suspects(_sus._pairs_frame(ev.detail), gt, pd, list(ev.keys), confidence,
                        fg=iou, bg=background)
    if reasons is not None:
        wanted = [reasons] if isinstance(reasons, str) else list(reasons)
        unknown = sorted(set(wanted) - set(_sus.REASONS))
        if unknown:
            raise ValueError(f"unknown reason(s) {unknown}; choose from {list(_sus.REASONS)}.")
        out = out.filter(pl.col(s.REASON).cast(pl.String).is_in(wanted))
    return _with_by(ev, out if k is None else out.head(k))


def uncertain(ev, confidence: float = 0.5, iou: float = 0.5, *,
              k: int | None = None) -> pl.DataFrame:
    _need_detail(ev, "uncertain()")
    _need_confidence(ev, "uncertain()")
    c = ev._threshold(confidence, s.CONFIDENCE_THRESHOLD)
    t = ev._threshold(iou, s.IOU_THRESHOLD)
    gt, pd = ev.detail.annotations
    matched = matched_at(ev.detail.matches, c, t, ev.profile.iou_strict)
    out = _sus.uncertain(_sus._pairs_frame(ev.detail), gt, pd, matched, list(ev.keys), c, t)
    return _with_by(ev, out if k is None else out.head(k))


def uncertain_across(evaluations: dict, confidence: float = 0.5, iou: float = 0.5, *,
                     k: int | None = None) -> pl.DataFrame:
    """Ground truths on which several runs (evaluated on the same ground truth) disagree at
    one cell: found by some and missed by others, or matched to different answers. A data row
    a run leaves out (e.g. it has no predictions there) counts as missed by that run.

    Returns (*keys, gt_id, feature, n_found, found_by, missed_by, <one column per run: the
    feature of the prediction matched to the ground truth, null = none>), most split first.

    Examples
    --------
    >>> import polars as pl, polars_metrics as pm
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"data_row": ["a", "a"], "feature": ["cat", "cat"],
    ...                    "bbox": [[0.0, 0, 10, 10], [20.0, 20, 30, 30]]}, schema_overrides={"bbox": box})
    >>> a = gt.with_columns(confidence=pl.lit(0.9))
    >>> b = a.head(1)
    >>> runs = {"A": pm.evaluate(gt, a), "B": pm.evaluate(gt, b)}
    >>> pm.uncertain_across(runs).select("gt_id", "found_by", "missed_by").rows()
    [(1, ['A'], ['B'])]
    """
    if not isinstance(evaluations, dict) or len(evaluations) < 2:
        raise PolarsMetricsError("uncertain_across needs {run name: evaluation} for 2+ runs.")
    first = next(iter(evaluations.values()))
    keys = list(first.keys)
    found, gts = {}, {}
    for name, ev in evaluations.items():
        _need_detail(ev, "uncertain_across()")
        if list(ev.keys) != keys:
            raise PolarsMetricsError(f"run {name!r} has data-row key {list(ev.keys)}, not {keys}.")
        gts[name] = ev.detail.annotations[0].select(*keys, s.ID, s.FEATURE)
        c = ev._threshold(confidence, s.CONFIDENCE_THRESHOLD)
        t = ev._threshold(iou, s.IOU_THRESHOLD)
        found[str(name)] = matched_at(ev.detail.matches, c, t, ev.profile.iou_strict)
    names = list(gts)
    for name in names[1:]:  # the same ground truth on the data rows both runs count
        common = gts[names[0]].select(keys).unique().join(
            gts[name].select(keys).unique(), on=keys, how="semi")
        a, b = (gts[n].join(common, on=keys, how="semi").sort(pl.all()) for n in (names[0], name))
        if not a.equals(b):
            raise PolarsMetricsError(
                f"runs {names[0]!r} and {name!r} were evaluated on other ground truth (the "
                "annotations of data rows both count differ); compare runs on the same ground "
                "truth.")
    # a data row one run leaves out (e.g. no predictions there) counts as missed by it
    gt = pl.concat(list(gts.values())).unique(maintain_order=True)
    out = _with_by(first, _sus.disagreements(found, gt, keys))
    return out if k is None else out.head(k)
