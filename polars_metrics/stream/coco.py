"""``profile="coco"`` streamed: batches of whole images, one exact accumulate at the end.

Each batch (:func:`coco_batch`, run by the same runners as the pipeline's batches, Ray
included) checks its rows, runs the COCO engine's stages up to the matcher
(:func:`polars_metrics.coco.partial.batch_records`) and writes under ``out/batches/<batch>/``:
``records.parquet`` (one row per evaluated detection: the accumulation state),
``categories.parquet`` (its category axis and non-ignored ground truths per area range),
``images.parquet``, and the additive tables of :mod:`polars_metrics.coco.cube` — ``counts``,
``confusion``, ``excluded``, ``rejects`` (small) and ``data_rows`` (large, read lazily). The
merge sums the counts, concatenates the rest, and
:func:`polars_metrics.coco.partial.accumulate` sorts the records of all batches into
pycocotools' accumulate order: arrays, stats and tables equal the in-memory evaluation's. The
per-annotation frames behind ``examples()`` (``matches``...) are rebuilt from the batches'
input files on first access (:func:`per_annotation`).
"""
from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from polars_metrics import metrics
from polars_metrics import schema as s
from polars_metrics.coco import CocoRun, _ids, _key_name, _renamed, check_switches
from polars_metrics.coco.checks import check_rows
from polars_metrics.coco.cube import CubeTables, category_index, cube_tables
from polars_metrics.coco.inputs import CATEGORY_ID
from polars_metrics.coco.params import params_from_options
from polars_metrics.coco.partial import (
    CAT,
    N_RECORDS,
    NPIG,
    accumulate_groups,
    batch_records,
    category_axis,
    global_codes,
)
from polars_metrics.coco.slices import image_slices
from polars_metrics.errors import PolarsMetricsError, PolarsMetricsWarning
from polars_metrics.result.coco import CocoEvaluation
from polars_metrics.state import Deferred, LazyField
from polars_metrics.stream.checkpoint import Task, _global_rows, batch_dir, read_side
from polars_metrics.stream.combine import scan_large
from polars_metrics.stream.result import _Lazy
from polars_metrics.stream.sources import ROW

SMALL = ("counts", "confusion", "excluded", "rejects", "categories")
LARGE = ("records", "images", "data_rows")


def check_supported(kwargs: dict[str, Any], data_rows) -> None:
    """What a streamed COCO run refuses (with the way out)."""
    if kwargs.get("by"):
        raise PolarsMetricsError(
            "by= is not supported by a streamed profile='coco' run: each slice's AP needs its "
            "own accumulate. Stream each slice on its own (filter the tables), or drop the "
            "batching keywords to evaluate in memory.")
    if data_rows is not None:
        raise PolarsMetricsError(
            "data_rows= is not supported by a streamed profile='coco' run (it only carries by= "
            "columns there); drop it, or evaluate in memory.")


def _compute(task: Task, drop_predictions: bool = False) -> dict[str, Any]:
    """One batch: read, check, match; its records, CocoResult, tables and rejects."""
    t0 = time.perf_counter()
    kw = task.kwargs
    key = _key_name(kw.get("data_row") or s.DATA_ROW)
    gt_in = read_side(task.batch, 0, task.gt_schema)
    pd_in = read_side(task.batch, 1, task.pd_schema)
    if drop_predictions:
        pd_in = pd_in.head(0)
    gt = _renamed(gt_in, key, s.GROUND_TRUTH)
    pd = _renamed(pd_in, key, s.PREDICTIONS)
    p = params_from_options(task.profile.coco, kw.get("iou_thresholds"),
                            iou_strict=task.profile.iou_strict)
    conf_thr = s.normalize_thresholds(kw.get("confidence_thresholds"), "confidence_thresholds")
    on_invalid = kw.get("on_invalid", "raise")
    gt, gt_rej = check_rows(gt, s.GROUND_TRUTH, iou_type=p.iou_type, is_pd=False,
                            on_invalid=on_invalid)
    pd, pd_rej = check_rows(pd, s.PREDICTIONS, iou_type=p.iou_type, is_pd=True,
                            on_invalid=on_invalid)
    t1 = time.perf_counter()
    with warnings.catch_warnings():  # the predictions left out are counted once, at the end
        warnings.simplefilter("ignore", PolarsMetricsWarning)
        res, rec = batch_records(gt, pd, p, ROW)
    t2 = time.perf_counter()
    images, slices, excluded = image_slices(gt, pd, res.image_ids, (), None)
    tables = cube_tables(gt, pd, res, conf_thr=conf_thr, images=images, slices=slices, by=(),
                         ids=(_ids(gt), _ids(pd)), zero_tn=task.profile.zero_tn)
    back = {s.DATA_ROW: key}
    return {"key": key, "res": res, "rec": rec, "gt": gt, "pd": pd,
            "tables": tables.renamed(back), "excluded": excluded.rename(back),
            "rejects": _global_rows(pl.concat([gt_rej, pd_rej]), gt_in, pd_in),
            "timings": {"prepare": t1 - t0, "coco": t2 - t1, "cube": time.perf_counter() - t2}}


def coco_batch(task: Task) -> dict[str, Any]:
    """One batch of a streamed COCO run: check, match, write the checkpoint; its small tables.

    The per-annotation frames (``matches``, ``false_positives``, ``gt_counted``) are not
    written: they hold a row per (IoU threshold x detection) and only ``examples()`` and
    ``ev.matches`` read them, so they are rebuilt from the batch's input files on first
    access (:func:`per_annotation`), as the in-memory evaluation builds them on first access.
    """
    b = _compute(task)
    t3 = time.perf_counter()
    tables, rec = b["tables"], b["rec"]
    small = {"counts": tables.counts, "confusion": tables.confusion,
             "excluded": b["excluded"], "rejects": b["rejects"], "categories": rec.categories}
    large = {"records": rec.records, "images": rec.images.alias(b["key"]).to_frame(),
             "data_rows": tables.data_rows}
    final = batch_dir(task.out, task.batch)
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name, frame in {**small, **large}.items():
        frame.write_parquet(tmp / f"{name}.parquet", compression="lz4")
    timings = dict(b["timings"], read_write=time.perf_counter() - t3)
    (tmp / "manifest.json").write_text(json.dumps({
        "settings": task.settings, "fingerprint": task.batch.fingerprint, "timings": timings,
        "n_outside": rec.n_outside, "gt_files": list(task.batch.gt_files),
        "pd_files": list(task.batch.pd_files)}))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return dict(small, timings=timings, n_outside=rec.n_outside)


def per_annotation(tasks: list[Task], name: str) -> pl.DataFrame:
    """``matches``, ``false_positives`` or ``gt_counted`` of the whole run, rebuilt batch by
    batch from the input files, in the in-memory frame's order (IoU threshold, then input row)."""
    parts = []
    for task in tasks:
        b = _compute(task)
        res, gt, pd, tables = b["res"], b["gt"], b["pd"], b["tables"]
        if res.gt_id_zero.size == 0:  # no ground truth: no prediction evaluated, nothing here
            continue
        if name == "matches":
            rows = pd[ROW].gather(np.nonzero(res.dt_tp)[1])
        elif name == "false_positives":
            counted = ~res.dt_ignore & (res.dt_rank >= 0)[None, :]
            rows = pd[ROW].gather(np.nonzero(counted & ~res.dt_tp)[1])
        else:
            rows = gt[ROW].filter(~res.gt_ignore & (category_index(gt, res) >= 0))
        parts.append(getattr(tables, name).with_columns(rows))
    if not parts:  # the frame's columns, from a batch without its predictions
        b = _compute(tasks[0], drop_predictions=True)
        return getattr(b["tables"], name)
    order = [ROW] if name == "gt_counted" else [s.IOU_THRESHOLD, ROW]
    return pl.concat(parts).sort(order, maintain_order=True).drop(ROW)


def load_small(out, batch) -> dict[str, Any]:
    """The small tables of a finished batch (as :func:`coco_batch` returned them)."""
    d = batch_dir(out, batch)
    small: dict[str, Any] = {name: pl.read_parquet(d / f"{name}.parquet") for name in SMALL}
    m = json.loads((d / "manifest.json").read_text())
    return dict(small, timings=m["timings"], n_outside=m["n_outside"])


_COUNT_KEYS = (s.FEATURE, s.CONFIDENCE_THRESHOLD, s.IOU_THRESHOLD)
_CONFUSION_KEYS = (s.CONFIDENCE_THRESHOLD, s.IOU_THRESHOLD, s.GT_FEATURE, s.PD_FEATURE)


def merge_small(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two batches' (or merged groups') small tables as one: counts summed (integers: any
    grouping gives the same numbers), the rest concatenated."""
    counts = pl.concat([a["counts"], b["counts"]]).group_by(_COUNT_KEYS, maintain_order=True).agg(
        pl.exclude(s.TN).sum(), pl.col(s.TN).first())
    confusion = pl.concat([a["confusion"], b["confusion"]]).group_by(
        _CONFUSION_KEYS, maintain_order=True).agg(pl.col(s.COUNT).sum())
    timings = {k: a["timings"].get(k, 0.0) + b["timings"].get(k, 0.0)
               for k in set(a["timings"]) | set(b["timings"])}
    return {"counts": counts, "confusion": confusion,
            "excluded": pl.concat([a["excluded"], b["excluded"]]),
            "rejects": pl.concat([a["rejects"], b["rejects"]]),
            "categories": pl.concat([a["categories"], b["categories"]]),
            "timings": timings, "n_outside": a["n_outside"] + b["n_outside"]}


class _StreamTables(CubeTables):
    """CubeTables whose per-image frames stay in the batch files until first read."""

    rows = _Lazy()  # the data-row frame: a scan of the batches until first read
    gt_counted = LazyField()  # a Deferred: read from the batch files on first read


class StreamedCocoEvaluation(CocoEvaluation):
    """A :class:`CocoEvaluation` computed batch by batch: the same frames and COCO numbers;
    ``data_rows`` and the per-annotation tables stay in Parquet under ``out`` until read, and
    the per-prediction-row arrays of ``ev.coco`` (``dt_match``...) are not kept."""

    data_rows = _Lazy()

    @property
    def out(self) -> Path:
        return self.__dict__["_out"]

    def lazy(self, name: str) -> pl.LazyFrame:
        """``"data_rows"`` as a LazyFrame over the batch files (sorted by image on collect).
        ``ev.matches`` is rebuilt from the batch inputs on first access (not a batch file)."""
        if name != "data_rows":
            raise ValueError(f"lazy({name!r}) under a streamed profile='coco' run: only "
                             "'data_rows' is a batch file; read ev.matches for the matches.")
        return self.__dict__["_lazy_frames"][name]


def _axis_mode(gt_schema: dict, pd_schema: dict, key: str) -> tuple[str, list[str] | None]:
    fdt = gt_schema.get(s.FEATURE)
    if isinstance(fdt, pl.Enum):
        return "enum", list(fdt.categories)
    if CATEGORY_ID in gt_schema and CATEGORY_ID in pd_schema:
        return "id", None
    return "name", None


def _sorted_by_axis(frame: pl.DataFrame, first, cols, names: list[str], then) -> pl.DataFrame:
    """Sorted as the in-memory tables are: features in axis order, null (none) last."""
    lut = {n: i for i, n in enumerate(names)}
    order = [pl.col(c).replace_strict(lut, default=len(names), return_dtype=pl.Int64)
             .fill_null(len(names)) for c in cols]
    return frame.sort([*first, *order, *then])


def finalize(small: dict[str, Any], tasks: list[Task], profile, key: str, out: Path,
             seconds: float) -> StreamedCocoEvaluation:
    """Merge the finished batches: the accumulate over every record, the tables."""
    t0 = time.perf_counter()
    task = tasks[0]
    p = params_from_options(profile.coco, task.kwargs.get("iou_thresholds"),
                            iou_strict=profile.iou_strict)
    conf_thr = s.normalize_thresholds(task.kwargs.get("confidence_thresholds"),
                                      "confidence_thresholds")
    mode, enum_names = _axis_mode(task.gt_schema, task.pd_schema, key)
    dirs = [batch_dir(out, t.batch) for t in tasks]
    cats_all = small["categories"]
    names, ids = category_axis(cats_all, mode, enum_names)
    A = len(p.area_ranges)
    image_ids = np.unique(scan_large(dirs, "images").collect()[key].to_numpy())
    npig, n_rec = np.zeros((len(names), A), np.int64), np.zeros(len(names), np.int64)
    codes = []  # per batch: its category axis -> the whole axis
    for d in dirs:
        cats = pl.read_parquet(d / "categories.parquet")
        g = global_codes(cats, mode, names, ids)
        codes.append(g)
        for a in range(A):
            np.add.at(npig[:, a], g, cats[f"{NPIG}{a}"].to_numpy())
        np.add.at(n_rec, g, cats[N_RECORDS].to_numpy())
    if small["n_outside"]:
        warnings.warn(
            f"{small['n_outside']} predictions are on images absent from gt or of unknown "
            "categories; they are left out (as pycocotools' imgIds/catIds filter does).",
            PolarsMetricsWarning, stacklevel=4)
    groups = _groups(dirs, codes, n_rec, p.use_cats)
    res = accumulate_groups(groups, npig, image_ids, p, names, ids, small["n_outside"])
    t1 = time.perf_counter()
    feats = names if p.use_cats else ["all"]
    ct = [s.CONFIDENCE_THRESHOLD, s.IOU_THRESHOLD]
    counts = _sorted_by_axis(small["counts"], [], [s.FEATURE], feats, ct)
    confusion = _sorted_by_axis(small["confusion"], ct, [s.GT_FEATURE, s.PD_FEATURE], feats, [])
    data_rows = scan_large(dirs, "data_rows").sort(key, maintain_order=True)
    tables = _StreamTables(
        counts=counts, confusion=confusion, rows=data_rows,
        gt_counted=Deferred(partial(per_annotation, tasks, "gt_counted")),
        _build_matches=partial(per_annotation, tasks, "matches"),
        _build_false_positives=partial(per_annotation, tasks, "false_positives"))
    run = CocoRun(
        profile=profile, keys=(key,), by=(), conf_thr=conf_thr,
        iou_thr=np.round(p.iou_thresholds, s.THRESHOLD_DECIMALS), coco=res,
        summary=res.summary, per_category=res.per_category, tables=tables,
        excluded=small["excluded"].sort(key, maintain_order=True),
        rejects=small["rejects"].sort(s.TABLE, s.ROW, maintain_order=True),
        timings=dict(small["timings"], stream=seconds, accumulate=t1 - t0))
    return _evaluation(run, data_rows, out)


GROUP_RECORDS = 8_000_000  # records per accumulate group (~100 bytes each while sorting)


def _groups(dirs: list[Path], codes: list[np.ndarray], n_rec: np.ndarray, use_cats: bool):
    """(category indices, their records from every batch) for :func:`accumulate_groups`:
    consecutive categories up to :data:`GROUP_RECORDS` records at a time (one group when
    categories are pooled); each batch file keeps a category's records contiguous."""
    if use_cats:
        bounds, total, start = [], 0, 0
        for k, n in enumerate(n_rec):
            if total and total + n > GROUP_RECORDS:
                bounds.append((start, k))
                start, total = k, 0
            total += n
        bounds.append((start, n_rec.size))
    else:
        bounds = [(0, n_rec.size)]
    for lo, hi in bounds:
        parts = []
        for d, g in zip(dirs, codes, strict=True):
            local = np.flatnonzero((g >= lo) & (g < hi)).tolist()
            rec = pl.scan_parquet(d / "records.parquet").filter(pl.col(CAT).is_in(local)).collect()
            parts.append(rec.with_columns(pl.Series(CAT, g[rec[CAT].to_numpy()] if rec.height
                                                    else np.empty(0, np.int64)).cast(pl.Int32)))
        yield (np.arange(lo, hi) if use_cats else None), pl.concat(parts)


def _evaluation(run: CocoRun, data_rows: pl.LazyFrame, out: Path) -> StreamedCocoEvaluation:
    """:meth:`CocoEvaluation.from_run` with the data-row frame left lazy."""
    cube, overall = metrics.cube_and_overall(run.tables.counts, run.by, run.profile.zero_tn)
    ev = StreamedCocoEvaluation(
        profile=run.profile, keys=run.keys, by=run.by, confidence_thresholds=run.conf_thr,
        iou_thresholds=run.iou_thr, cube=cube, overall=overall,
        confusion=run.tables.confusion, data_rows=data_rows, excluded=run.excluded,
        rejects=run.rejects, coco=run.coco, coco_summary=run.summary,
        coco_per_category=run.per_category, tables=run.tables, timings=run.timings)
    ev.__dict__["_out"] = out
    ev.__dict__["_lazy_frames"] = {"data_rows": data_rows}
    for name in ("cube", "overall", "confusion", "excluded", "rejects"):
        getattr(ev, name).write_parquet(out / f"{name}.parquet")
    return ev


__all__ = ["StreamedCocoEvaluation", "check_supported", "check_switches", "coco_batch",
           "finalize", "load_small", "merge_small"]
