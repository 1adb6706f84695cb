"""``evaluate(ground_truth, predictions) -> Evaluation``: dispatch to the engine a profile runs.

The COCO profile runs the COCO engine (``coco/``); every other profile runs the pipeline
(``pipeline.partial``) and finalizes its partial result. Parquet paths and LazyFrames (or any
streaming keyword) go to ``stream/`` (batches, checkpoints, exact merge), on Ray with
``engine="ray"`` (``distributed/``).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from polars_metrics import schema as s
from polars_metrics._memory import gives_back_free_heap
from polars_metrics.errors import ProfileError
from polars_metrics.pipeline import partial
from polars_metrics.prepare import to_frame, use_confidence_column
from polars_metrics.profiles import Profile, engine_of, get_profile
from polars_metrics.result import Evaluation
from polars_metrics.result.coco import CocoEvaluation
from polars_metrics.stream.sources import is_streamable, scan


@gives_back_free_heap
def evaluate(ground_truth, predictions, *, profile: str | Profile = "labelbox",
             confidence_thresholds: Sequence[float] | None = None,
             iou_thresholds: Sequence[float] | None = None,
             by: str | Sequence[str] | None = None,
             data_row: str | Sequence[str] = s.DATA_ROW,
             data_rows=None, on_invalid: str = "raise", confidence: str | None = None,
             engine: str = "local",
             out=None, memory_limit: int | str | None = None, batch_size: int | None = None,
             batches: int | None = None, assume_bucketed: bool = False, progress: bool = False,
             errors: bool = False, **switches: Any) -> Evaluation:
    """Evaluate predictions against ground truth at every (confidence, IoU) threshold cell.

    Parameters
    ----------
    ground_truth, predictions : Polars DataFrame / LazyFrame, Arrow table, or a Parquet path
        (file, glob, hive-partitioned directory, list of files), one row per annotation: the data-row key, ``feature`` (String), the geometry (``bbox`` as
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
    engine : "local" (default) or "ray": batch partials as Ray tasks (implies streaming).
    out : directory for checkpoints and the large frames of a streamed run (default: a new
        temporary directory). A run over the same ``out`` resumes: finished batches whose
        content did not change are reused.
    memory_limit, batch_size, batches : batch sizing of a streamed run — a memory budget
        ("2GB"), annotations per batch, or a number of batches.
    assume_bucketed : the input's own files (hive partitions) are data-row-complete batches.
    progress : a progress bar over batches.
    errors : ``profile="coco"``: also run the pairs stage (IoU across categories) that
        ``ev.errors()`` needs; the pipeline keeps its pairs anyway.

    Paths and LazyFrames, or any of ``engine="ray"`` / ``out`` / ``memory_limit`` /
    ``batch_size`` / ``batches`` / ``assume_bucketed``, evaluate out of core and return a
    :class:`~polars_metrics.stream.StreamedEvaluation` with the same frames.

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
    knobs = dict(out=out, batches=batches, batch_size=batch_size, memory_limit=memory_limit,
                 assume_bucketed=assume_bucketed or None)
    streamed = engine != "local" or any(v is not None for v in knobs.values()) or any(
        is_streamable(t) for t in (ground_truth, predictions))
    if engine not in ("local", "ray"):
        raise ProfileError(f"engine={engine!r}; use 'local' or 'ray'.")
    if streamed and engine_of(prof) == "coco":
        given = [k for k, v in knobs.items() if v is not None] + (["engine"] * (engine != "local"))
        if given and errors:
            raise ProfileError(
                "errors=True is not supported by a streamed profile='coco' run (the error "
                "decomposition needs the whole tables); drop the batching keywords "
                f"({', '.join(given)}) to evaluate in memory.")
        if not given:  # paths / LazyFrames without a batching keyword: read whole, in memory
            ground_truth, predictions = (scan(t, n).collect() for t, n in (
                (ground_truth, "ground_truth"), (predictions, "predictions")))
            streamed = False
    if streamed and confidence not in (None, s.CONFIDENCE):
        # a lazy rename: the streamed path never collects the predictions
        predictions = scan(predictions, "predictions").rename({confidence: s.CONFIDENCE})
    if streamed:
        return _stream(ground_truth, predictions, prof, data_row, data_rows, engine, progress,
                       dict(confidence_thresholds=confidence_thresholds,
                            iou_thresholds=iou_thresholds, by=by, data_row=data_row,
                            on_invalid=on_invalid), knobs)
    predictions = use_confidence_column(predictions, confidence)
    if engine_of(prof) == "coco":
        # the COCO engine needs numba's JIT, which the box path never loads
        from polars_metrics.coco import run

        out = run(ground_truth, predictions, prof, confidence_thresholds=confidence_thresholds,
                  iou_thresholds=iou_thresholds, by=by, data_row=data_row, data_rows=data_rows,
                  on_invalid=on_invalid)
        ev = CocoEvaluation.from_run(out)
        if errors:  # error decomposition: the cross-category pairs the COCO engine never makes
            from polars_metrics.analysis.tide import coco_detail

            ev = dataclasses.replace(ev, detail=coco_detail(
                to_frame(ground_truth, s.GROUND_TRUTH), to_frame(predictions, s.PREDICTIONS),
                key=data_row if isinstance(data_row, str) else data_row[0],
                iou_type=prof.coco.iou_type, on_invalid=on_invalid))
        return ev
    part = partial(ground_truth, predictions, profile=prof,
                   confidence_thresholds=confidence_thresholds, iou_thresholds=iou_thresholds,
                   by=by, data_row=data_row, data_rows=data_rows, on_invalid=on_invalid)
    return Evaluation.from_partial(part)


def _stream(gt, pd, prof: Profile, data_row, data_rows, engine: str, progress: bool,
            kwargs: dict, knobs: dict) -> Evaluation:
    from polars_metrics.stream.run import evaluate_stream

    runner = None
    if engine == "ray":
        from polars_metrics.distributed.ray import ray_runner  # Ray loads only when asked for

        runner = ray_runner()
    keys = [data_row] if isinstance(data_row, str) else list(data_row)
    return evaluate_stream(gt, pd, profile=prof, keys=keys, kwargs=kwargs, data_rows=data_rows,
                           runner=runner, progress=progress,
                           **{k: v for k, v in knobs.items() if k != "assume_bucketed"},
                           assume_bucketed=bool(knobs["assume_bucketed"]))
