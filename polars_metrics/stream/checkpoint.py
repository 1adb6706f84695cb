"""One batch's partial result on disk, and the task that computes it.

``out/batches/<batch>/`` holds the batch's :class:`~polars_metrics.state.PartialResult` as
Parquet — the small tables (``counts``, ``confusion``, ``excluded``, ``rejects``, ``repairs``),
the per-data-row table ``data_rows``, and the IoU values the merge re-sums (``iou/``, see
:mod:`polars_metrics.stream.iou`) — and a ``manifest.json`` written last. The per-annotation
frames (``matches``, the annotations behind ``examples()``) are rebuilt from the batch's input
files when first read (:func:`per_annotation`). A batch directory is written under a temporary name and renamed
when complete, so a run killed mid-batch leaves no half checkpoint. A checkpoint is reused
when its manifest names the same run settings and the same batch content.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from polars_metrics import schema as s
from polars_metrics.errors import PolarsMetricsWarning
from polars_metrics.pipeline import partial
from polars_metrics.profiles import Profile
from polars_metrics.stream import iou, ranges
from polars_metrics.stream.batches import Batch
from polars_metrics.stream.options import drop_options_row, with_absent_true_negatives
from polars_metrics.stream.sources import ROW

SMALL = ("counts", "confusion", "excluded", "rejects", "repairs")
# rebuilt on first access (per_annotation), then kept next to the batch's data_rows.parquet
PER_ANNOTATION = ("matches", "gt_annotations", "pd_annotations")


@dataclass(frozen=True)
class Task:
    """Everything a worker needs to compute one batch (picklable; no open handles)."""

    batch: Batch
    out: str
    settings: str  # fingerprint of the run settings
    profile: Profile
    kwargs: dict[str, Any]  # confidence_thresholds, iou_thresholds, by, data_row, on_invalid
    gt_schema: dict[str, pl.DataType]
    pd_schema: dict[str, pl.DataType]
    data_rows: pl.DataFrame | None = None
    options: pl.DataFrame | None = None  # the option-declaring data row (see options.py)
    # the batch computation when not the pipeline's (stream.coco.coco_batch for profile="coco")
    compute: Callable[[Task], dict[str, Any]] | None = None


def batch_dir(out: str | os.PathLike, batch: Batch) -> Path:
    return Path(out) / "batches" / batch.name


def is_done(task: Task) -> bool:
    manifest = batch_dir(task.out, task.batch) / "manifest.json"
    if not manifest.exists():
        return False
    m = json.loads(manifest.read_text())
    return m.get("settings") == task.settings and m.get("fingerprint") == task.batch.fingerprint


def _read(files, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    if not files:
        return pl.DataFrame(schema=schema)
    frame = pl.read_parquet(list(files))
    if ROW not in frame.columns:  # an already-bucketed input: rows numbered within the batch
        frame = frame.with_row_index(ROW)
        if s.ID not in frame.columns:
            frame = frame.with_columns(pl.col(ROW).cast(pl.Int64).alias(s.ID))
    return frame


def read_side(batch: Batch, side: int, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """The ground-truth (``side`` 0) or prediction (1) rows of a batch."""
    files = batch.gt_files if side == 0 else batch.pd_files
    if batch.ranged is not None:
        rng = batch.ranged
        return ranges.read(files, rng.gt_offsets if side == 0 else rng.pd_offsets, rng, schema)
    return _read(files, schema)


def _global_rows(frame: pl.DataFrame | None, gt: pl.DataFrame, pd: pl.DataFrame):
    """Batch row positions of rejects / repairs -> row numbers of the whole input table."""
    if frame is None or frame.height == 0 or s.ROW not in frame.columns:
        return frame
    out = []
    for table, src in ((s.GROUND_TRUTH, gt), (s.PREDICTIONS, pd)):
        part = frame.filter(pl.col(s.TABLE) == table)
        if part.height:
            rows = src[ROW].cast(pl.Int64).gather(part[s.ROW])
            part = part.with_columns(rows.alias(s.ROW))
        out.append(part)
    rest = frame.filter(~pl.col(s.TABLE).is_in([s.GROUND_TRUTH, s.PREDICTIONS]))
    return pl.concat([*out, rest]).sort(s.TABLE, s.ROW, maintain_order=True)


def _partial(task: Task):
    """The batch's input rows and its pm.partial (the options row added, see options.py)."""
    gt = read_side(task.batch, 0, task.gt_schema)
    pd = read_side(task.batch, 1, task.pd_schema)
    if task.options is not None:
        pd = pl.concat([pd, task.options.select(pd.columns)], how="vertical_relaxed")
    return gt, pd, partial(gt, pd, profile=task.profile, data_rows=task.data_rows, **task.kwargs)


def run_batch(task: Task) -> dict[str, Any]:
    """Compute one batch's partial result, checkpoint it, return its small tables.

    Written: the small tables, ``data_rows`` and the compact IoU values (:mod:`.iou`). The
    per-annotation frames (``matches``, the annotations behind ``examples()``) are not: they
    hold a row per match / annotation and only ``ev.matches`` / ``examples()`` read them, so
    :func:`per_annotation` rebuilds them from the batch's input files on first access.

    The three phases (:func:`read_batch`, :func:`compute_batch`, :func:`write_batch`) run one
    after the other here; the local runner overlaps them across batches (threads)."""
    if task.compute is not None:
        return task.compute(task)
    small, written = compute_batch(task, read_batch(task))
    write_batch(task, written)
    return small


def read_batch(task: Task) -> tuple[pl.DataFrame, pl.DataFrame, float]:
    """The batch's ground-truth and prediction rows, and the seconds it took to read them."""
    t0 = time.perf_counter()
    gt = read_side(task.batch, 0, task.gt_schema)
    pd = read_side(task.batch, 1, task.pd_schema)
    return gt, pd, time.perf_counter() - t0


@dataclass
class Written:
    """What :func:`write_batch` puts on disk for a batch (nothing else of the batch is held)."""

    small: dict[str, pl.DataFrame | None]
    data_rows: pl.DataFrame
    iou: iou.Compact
    timings: dict[str, float]


def compute_batch(task: Task, inputs) -> tuple[dict[str, Any], Written]:
    """The batch's pm.partial (the options row added, see options.py) from its input rows:
    its small tables (returned to the merge) and what is to be written."""
    gt, pd, read_seconds = inputs
    if task.options is not None:
        pd = pl.concat([pd, task.options.select(pd.columns)], how="vertical_relaxed")
    part = partial(gt, pd, profile=task.profile, data_rows=task.data_rows, **task.kwargs)
    t0 = time.perf_counter()
    small = {
        "counts": with_absent_true_negatives(part), "confusion": part.confusion,
        "excluded": drop_options_row(part.excluded, part.keys, task.options),
        "rejects": _global_rows(part.rejects, gt, pd),
        "repairs": _global_rows(part.repairs, gt, pd),
    }
    compact = iou.compact_part(part)
    timings = dict(part.timings, read=read_seconds, small=time.perf_counter() - t0)
    return dict(small, timings=timings), Written(small, part.data_rows, compact, timings)


def write_batch(task: Task, written: Written) -> None:
    """Checkpoint a computed batch: written under a temporary name, the manifest last, then
    renamed (a batch killed mid-write leaves no half checkpoint)."""
    t0 = time.perf_counter()
    final = batch_dir(task.out, task.batch)
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name, frame in written.small.items():
        if frame is not None:
            frame.write_parquet(tmp / f"{name}.parquet")
    written.data_rows.write_parquet(tmp / "data_rows.parquet", compression="lz4")  # fast
    written.iou.save(tmp / "iou")
    timings = dict(written.timings, write=time.perf_counter() - t0)
    (tmp / "manifest.json").write_text(json.dumps({
        "settings": task.settings, "fingerprint": task.batch.fingerprint, "timings": timings,
        "gt_files": list(task.batch.gt_files), "pd_files": list(task.batch.pd_files)}))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def per_annotation(task: Task) -> dict[str, Path]:
    """The batch's ``matches`` and annotation frames, rebuilt from its input files (the same
    partial as :func:`run_batch` computed) and written to its directory once; their paths."""
    d = batch_dir(task.out, task.batch)
    paths = {name: d / f"{name}.parquet" for name in PER_ANNOTATION}
    if all(p.exists() for p in paths.values()):
        return paths
    with warnings.catch_warnings():  # the run showed them already
        warnings.simplefilter("ignore", PolarsMetricsWarning)
        _, _, part = _partial(task)
    gt_ann, pd_ann = part.detail.annotations
    frames = {"matches": part.detail.matches, "gt_annotations": gt_ann, "pd_annotations": pd_ann}
    for name, frame in frames.items():
        tmp = paths[name].with_suffix(".tmp")
        frame.write_parquet(tmp, compression="lz4")
        os.replace(tmp, paths[name])
    return paths


def load_small(out: str | os.PathLike, batch: Batch) -> dict[str, Any]:
    """The small tables of a finished batch (as :func:`run_batch` returned them)."""
    d = batch_dir(out, batch)
    small: dict[str, Any] = {name: (pl.read_parquet(d / f"{name}.parquet")
                                    if (d / f"{name}.parquet").exists() else None)
                             for name in SMALL}
    small["timings"] = json.loads((d / "manifest.json").read_text())["timings"]
    return small
