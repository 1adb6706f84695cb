"""``evaluate(ground_truth, predictions) -> Evaluation``: dispatch to the engine a profile runs.

The COCO profile runs the COCO engine (``coco/``); every other profile runs the pipeline
(``pipeline.partial``) and finalizes its partial result.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from polars_metrics import schema as s
from polars_metrics._memory import release_free_heap
from polars_metrics.pipeline import partial
from polars_metrics.prepare import use_confidence_column
from polars_metrics.profiles import Profile, engine_of, get_profile
from polars_metrics.result import Evaluation
from polars_metrics.result.coco import CocoEvaluation


def evaluate(ground_truth, predictions, *, profile: str | Profile = "labelbox",
             confidence_thresholds: Sequence[float] | None = None,
             iou_thresholds: Sequence[float] | None = None,
             by: str | Sequence[str] | None = None,
             data_row: str | Sequence[str] = s.DATA_ROW,
             data_rows=None, on_invalid: str = "raise", confidence: str | None = None,
             **switches: Any) -> Evaluation:
    """Evaluate predictions against ground truth at every (confidence, IoU) threshold cell.

    Parameters
    ----------
    ground_truth, predictions : Polars DataFrame / LazyFrame or Arrow table, one row per
        annotation: the data-row key, ``feature`` (String), the geometry (``bbox`` as
        Array(Float64, 4) = x0, y0, x1, y1), optional ``id`` and, on predictions, optional
        ``confidence`` (null = 1.0).
    profile : "labelbox" (default; SPEC §5), "labelbox-sdk", "coco", or a :class:`Profile`.
    confidence_thresholds, iou_thresholds : defaults 0.0, 0.1, ..., 1.0 (COCO: IoU .50:.05:.95).
    by : columns to slice by (constant per data row, from either table or ``data_rows``).
    data_row : the data-row key column, or several for a composite key.
    data_rows : optional frame of per-data-row metadata (the key plus ``by`` columns).
    on_invalid : "raise" (default) or "drop" (bad rows go to ``ev.rejects`` with the reason).
    confidence : the predictions' score column when it is not called "confidence" (e.g.
        ``confidence="score"``). Predictions without ``confidence`` but with a numeric column
        named like a score (score, scores, conf, prob, probability) are refused, not scored 1.0.
    **switches : single fields of the profile (e.g. ``class_aware=True``), or of its engine's
        nested options (``profile="coco"``: ``iou_type``, ``max_dets``, ``area_ranges``,
        ``rec_thresholds``, ``use_cats``). A switch no engine of the profile reads is refused.

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
    prof = get_profile(profile, **switches)
    predictions = use_confidence_column(predictions, confidence)
    if engine_of(prof) == "coco":
        # the COCO engine needs numba's JIT, which the box path never loads
        from polars_metrics.coco import run

        out = run(ground_truth, predictions, prof, confidence_thresholds=confidence_thresholds,
                  iou_thresholds=iou_thresholds, by=by, data_row=data_row, data_rows=data_rows,
                  on_invalid=on_invalid)
        return CocoEvaluation.from_run(out)
    part = partial(ground_truth, predictions, profile=prof,
                   confidence_thresholds=confidence_thresholds, iou_thresholds=iou_thresholds,
                   by=by, data_row=data_row, data_rows=data_rows, on_invalid=on_invalid)
    ev = Evaluation.from_partial(part)
    release_free_heap()  # the stage temporaries are freed by now
    return ev
