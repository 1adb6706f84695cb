"""One batch's partial result on disk, and the task that computes it.

``out/batches/<batch>/`` holds the batch's :class:`~polars_metrics.state.PartialResult` as
Parquet — the small tables (``counts``, ``confusion``, ``excluded``, ``rejects``, ``repairs``),
the large ones (``data_rows``, ``matches``, the annotations behind ``examples()``), and the IoU
values the merge re-sums (``iou/part-<k>.parquet``, split by a hash of the feature) — and a
``manifest.json`` written last. A batch directory is written under a temporary name and renamed
when complete, so a run killed mid-batch leaves no half checkpoint. A checkpoint is reused
when its manifest names the same run settings and the same batch content.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from polars_metrics import schema as s
from polars_metrics.pipeline import partial
from polars_metrics.profiles import Profile
from polars_metrics.stream.batches import Batch
from polars_metrics.stream.options import drop_options_row, with_absent_true_negatives
from polars_metrics.stream.sources import ROW

IOU_PARTS = 16  # files the IoU values of a batch are split into (by a hash of the feature)
SMALL = ("counts", "confusion", "excluded", "rejects", "repairs")
LARGE = ("data_rows", "matches", "gt_annotations", "pd_annotations")


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


def iou_part_expr(n_parts: int = IOU_PARTS) -> pl.Expr:
    """The IoU-value file of a feature (a seeded hash; stable for one Polars version)."""
    return (pl.col(s.FEATURE).hash(seed=0x10) % n_parts).cast(pl.Int32)


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


def run_batch(task: Task) -> dict[str, Any]:
    """Compute one batch's partial result, checkpoint it, return its small tables."""
    if task.compute is not None:
        return task.compute(task)
    t0 = time.perf_counter()
    gt = _read(task.batch.gt_files, task.gt_schema)
    pd = _read(task.batch.pd_files, task.pd_schema)
    if task.options is not None:
        pd = pl.concat([pd, task.options.select(pd.columns)], how="vertical_relaxed")
    part = partial(gt, pd, profile=task.profile, data_rows=task.data_rows, **task.kwargs)
    final = batch_dir(task.out, task.batch)
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "iou").mkdir(parents=True)
    small = {
        "counts": with_absent_true_negatives(part), "confusion": part.confusion, "excluded": drop_options_row(part.excluded, part.keys, task.options),
        "rejects": _global_rows(part.rejects, gt, pd),
        "repairs": _global_rows(part.repairs, gt, pd),
    }
    for name, frame in small.items():
        if frame is not None:
            frame.write_parquet(tmp / f"{name}.parquet")
    gt_ann, pd_ann = part.detail.annotations
    large = {"data_rows": part.data_rows, "matches": part.detail.matches,
             "gt_annotations": gt_ann, "pd_annotations": pd_ann}
    for name, frame in large.items():
        frame.write_parquet(tmp / f"{name}.parquet", compression="lz4")  # fast
    values = part.detail.iou_values
    for (k,), frame in values.with_columns(_part=iou_part_expr()).partition_by(
            "_part", as_dict=True, include_key=False).items():
        frame.write_parquet(tmp / "iou" / f"part-{k:03d}.parquet", compression="lz4")
    timings = dict(part.timings, read_write=time.perf_counter() - t0 - sum(part.timings.values()))
    (tmp / "manifest.json").write_text(json.dumps({
        "settings": task.settings, "fingerprint": task.batch.fingerprint, "timings": timings,
        "gt_files": list(task.batch.gt_files), "pd_files": list(task.batch.pd_files)}))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return dict(small, timings=timings)


def load_small(out: str | os.PathLike, batch: Batch) -> dict[str, Any]:
    """The small tables of a finished batch (as :func:`run_batch` returned them)."""
    d = batch_dir(out, batch)
    small: dict[str, Any] = {name: (pl.read_parquet(d / f"{name}.parquet")
                                    if (d / f"{name}.parquet").exists() else None)
                             for name in SMALL}
    small["timings"] = json.loads((d / "manifest.json").read_text())["timings"]
    return small
