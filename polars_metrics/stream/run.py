"""``evaluate_stream``: plan batches, compute the missing ones, merge, finalize.

Called by :func:`polars_metrics.evaluate` for Parquet paths and LazyFrames (or when a streaming
keyword is given). ``runner`` computes a list of :class:`~.checkpoint.Task` (default: one after
the other in this process; ``polars_metrics.distributed`` passes Ray's).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics._lazy import lazy
from polars_metrics.errors import PolarsMetricsError
from polars_metrics.profiles import Profile, engine_of
from polars_metrics.result import Evaluation
from polars_metrics.state import Detail, PartialResult
from polars_metrics.stream import batches as _b
from polars_metrics.stream import combine, iou, ranges, sources
from polars_metrics.stream._malloc import reusing_memory
from polars_metrics.stream.checkpoint import (
    Task,
    batch_dir,
    compute_batch,
    is_done,
    load_small,
    per_annotation,
    read_batch,
    run_batch,
    write_batch,
)
from polars_metrics.stream.options import option_rows
from polars_metrics.stream.result import LazyFrames, StreamedEvaluation, sorted_rows

# profile="coco" batches (stream.coco loads the COCO engine, hence numba: only when asked for)
_coco = lazy("polars_metrics.stream.coco")
FORMAT = 3  # checkpoint layout version: older checkpoints are recomputed
# A runner computes tasks and yields (index in the list, small tables) as each one finishes.
Runner = Callable[[list[Task], bool], Iterator[tuple[int, dict[str, Any]]]]


def local_runner(tasks: list[Task], progress: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    """Compute the tasks in this process; yields (task index, result) as each one finishes.

    Pipelined over three threads: while batch *i* is computed, batch *i + 1* is read and batch
    *i - 1* written (Polars and numpy release the GIL while they read, encode and write), so
    reading and writing overlap the computation. At most one batch is read ahead and one
    written behind (memory: about one batch's input and one batch's outputs more than
    computing alone). A batch is checkpointed when its write finishes; a batch yielded but
    not yet written is recomputed by a resumed run."""
    with reusing_memory(), ThreadPoolExecutor(2, thread_name_prefix="pm-stream-io") as io:
        ahead = io.submit(read_batch, tasks[0]) if tasks and tasks[0].compute is None else None
        behind = None
        for i, t in enumerate(_progress(tasks, progress, "batches")):
            if t.compute is not None:  # profile="coco": its own batch function
                yield i, run_batch(t)
                continue
            inputs = ahead.result()
            nxt = tasks[i + 1] if i + 1 < len(tasks) else None
            ahead = io.submit(read_batch, nxt) if nxt is not None and nxt.compute is None \
                else None
            small, written = compute_batch(t, inputs)
            del inputs
            if behind is not None:
                behind.result()  # one write in flight at a time
            behind = io.submit(write_batch, t, written)
            del written
            yield i, small
        if behind is not None:
            behind.result()


def _progress(items, enabled: bool, desc: str):
    if not enabled:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:  # a plain line per item
        return _print_progress(items, desc)
    return tqdm(items, desc=desc, unit="batch")


def _print_progress(items, desc):
    for i, item in enumerate(items):
        print(f"{desc}: {i + 1}/{len(items)}", file=sys.stderr)
        yield item


def _settings(profile: Profile, kwargs: dict, data_rows, n_buckets: int | None,
              options: pl.DataFrame | None) -> str:
    meta = None if data_rows is None else int(data_rows.hash_rows().sum())
    opts = None if options is None else int(options.hash_rows().sum())
    text = json.dumps({"profile": repr(profile), "kwargs": repr(sorted(kwargs.items())),
                       "meta": meta, "options": opts, "n": n_buckets, "polars": pl.__version__,
                       "format": FORMAT}, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _plan(gt, pd, keys, out: Path, *, assume_bucketed, batches, batch_size, memory_limit,
          detect: bool = True):
    if assume_bucketed:
        if any(v is not None for v in (batches, batch_size, memory_limit)):
            raise PolarsMetricsError(
                "assume_bucketed=True takes the input's own files as the batches; drop "
                "batches= / batch_size= / memory_limit= (or bucket with assume_bucketed=False).")
        plan = _b.pre_bucketed(gt, pd)
        schemas = [sources.scan(t, n).collect_schema() for t, n in ((gt, s.GROUND_TRUTH),
                                                                     (pd, s.PREDICTIONS))]
        scans = [sources.scan(t, n) for t, n in ((gt, s.GROUND_TRUTH), (pd, s.PREDICTIONS))]
        return plan, None, schemas, scans
    lgt = sources.numbered(sources.scan(gt, s.GROUND_TRUTH))
    lpd = sources.numbered(sources.scan(pd, s.PREDICTIONS))
    if detect and batches is None:  # files already by data row: no bucketing pass
        plan = ranges.key_ranges(gt, pd, list(keys), _b.batch_size_of(batch_size, memory_limit))
        if plan is not None:
            return plan, None, [lgt.collect_schema(), lpd.collect_schema()], [lgt, lpd]
    n = _b.n_buckets(sources.row_count(lgt) + sources.row_count(lpd), batches=batches,
                     batch_size=batch_size, memory_limit=memory_limit)
    plan = _b.hash_buckets(lgt, lpd, list(keys), out / "_buckets", n,
                           _b.source_stamp(gt, pd, list(keys), n))
    return plan, n, [lgt.collect_schema(), lpd.collect_schema()], [lgt, lpd]


def evaluate_stream(ground_truth, predictions, *, profile: Profile, keys: Sequence[str],
                    kwargs: dict[str, Any], data_rows=None, out=None, batches=None,
                    batch_size=None, memory_limit=None, assume_bucketed: bool = False,
                    runner: Runner | None = None, progress: bool = False,
                    batch_order: Sequence[int] | None = None) -> StreamedEvaluation:
    """Evaluate in data-row-complete batches; see :func:`polars_metrics.evaluate`.

    ``kwargs``: confidence_thresholds, iou_thresholds, by, data_row, on_invalid (as
    :func:`polars_metrics.partial` takes them). ``batch_order``: a permutation of the batches
    to compute them in (tests of order independence).

    Examples
    --------
    >>> import tempfile, polars as pl, polars_metrics as pm
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"data_row": ["a", "b", "c"], "feature": ["cat"] * 3,
    ...                    "bbox": [[0.0, 0, 10, 10]] * 3}, schema_overrides={"bbox": box})
    >>> pd = gt.with_columns(confidence=pl.Series([0.9, 0.2, 0.7]))
    >>> ev = evaluate_stream(gt, pd, profile=pm.get_profile("labelbox"), keys=["data_row"],
    ...                      kwargs={}, batches=2, out=tempfile.mkdtemp())
    >>> ev.summary().select("feature", "tp", "fp", "fn").row(0)
    ('cat', 2, 0, 1)
    >>> ev.cube.equals(pm.evaluate(gt, pd).cube)
    True
    """
    t0 = time.perf_counter()
    is_coco = engine_of(profile) == "coco"
    if is_coco:
        _coco.check_supported(kwargs, data_rows)
    by = kwargs.get("by")
    kwargs = dict(kwargs, by=[by] if isinstance(by, str) else list(by or []))
    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="polars_metrics-"))
    out.mkdir(parents=True, exist_ok=True)
    if data_rows is not None and assume_bucketed:
        raise PolarsMetricsError(
            "data_rows= with assume_bucketed=True: the batch of a data row listed only in "
            "data_rows is unknown. Put its metadata columns in the tables, or drop "
            "assume_bucketed to bucket by a hash of the data-row key.")
    meta = data_rows if data_rows is None else sources.scan(data_rows, "data_rows").collect()
    plan, n, (gt_schema, pd_schema), scans = _plan(
        ground_truth, predictions, keys, out, assume_bucketed=assume_bucketed, batches=batches,
        batch_size=batch_size, memory_limit=memory_limit, detect=meta is None)
    options = None if is_coco else option_rows(*scans, keys, kwargs.get("by") or (), profile,
                                                pd_schema)
    compute = _coco.coco_batch if is_coco else None
    settings = _settings(profile, kwargs, meta, n, options)
    tasks = []
    for b in plan:
        sub = None if meta is None else meta.filter(
            sources.bucket_expr(list(keys), n) == b.bucket)
        tasks.append(Task(b, str(out), settings, profile, kwargs, dict(gt_schema),
                          dict(pd_schema), sub, options, compute))
    if meta is not None:  # data rows listed only in data_rows= fall in buckets without files
        present = {b.bucket for b in plan}
        for k in sorted(set(range(n)) - present):
            sub = meta.filter(sources.bucket_expr(list(keys), n) == k)
            if sub.height:
                b = _b.Batch(f"bucket-{k:05d}-of-{n:05d}", (), (), k, "meta-only")
                tasks.append(Task(b, str(out), settings, profile, kwargs, dict(gt_schema),
                                  dict(pd_schema), sub, options))
    if not tasks:  # empty tables: one empty batch gives the empty, typed frames
        tasks.append(Task(_b.Batch("empty", (), (), None, "empty"), str(out), settings, profile,
                          kwargs, dict(gt_schema), dict(pd_schema), meta, options, compute))
    for stale in combine.stale_batches(out, {t.batch.name for t in tasks}):
        shutil.rmtree(stale)
    todo = [t for t in tasks if not is_done(t)]
    if batch_order is not None:
        todo = [todo[i] for i in batch_order if i < len(todo)]
    # merged as they arrive (a pile at a time; COCO: a tree reduce), finished batches first
    by = tuple(kwargs["by"])
    reducer = (combine.TreeReducer(_coco.merge_small) if is_coco
               else combine.BufferedMerge(by))
    pending = {t.batch.name for t in todo}
    for t in tasks:
        if t.batch.name not in pending:
            reducer.push((_coco.load_small if is_coco else load_small)(out, t.batch))
    seen = 0
    for _, small in (runner or local_runner)(todo, progress):
        reducer.push(small)
        seen += 1
    if seen != len(todo):
        raise PolarsMetricsError(f"the runner returned {seen} of {len(todo)} batches.")
    if is_coco:
        return _coco.finalize(reducer.result(), tasks, profile, keys[0], out,
                              time.perf_counter() - t0)
    return _finalize(reducer, tasks, profile, keys, kwargs, out, time.perf_counter() - t0,
                     check=assume_bucketed)


def _write_seconds(dirs: list[Path]) -> dict[str, float]:
    """Seconds the batches took to write (in the manifests: a write ends after the merge has
    the batch's small tables)."""
    total = [json.loads((d / "manifest.json").read_text())["timings"].get("write")
             for d in dirs if (d / "manifest.json").exists()]
    return {"write": sum(t for t in total if t is not None)} if any(
        t is not None for t in total) else {}


def _scan_per_annotation(tasks: list[Task], name: str) -> pl.LazyFrame:
    """The batches' per-annotation files of one kind (``matches``, ``gt_annotations``, ...)."""
    return pl.scan_parquet([str(per_annotation(t)[name]) for t in tasks])


def _sorted_matches(tasks: list[Task], keys: tuple[str, ...]) -> pl.DataFrame:
    return sorted_rows(_scan_per_annotation(tasks, "matches"), keys).collect()


def _annotations(tasks: list[Task]) -> tuple[pl.DataFrame, pl.DataFrame]:
    return (_scan_per_annotation(tasks, "gt_annotations").collect(),
            _scan_per_annotation(tasks, "pd_annotations").collect())


def _finalize(reducer, tasks: list[Task], profile: Profile, keys, kwargs, out: Path,
              seconds: float, check: bool) -> StreamedEvaluation:
    t0 = time.perf_counter()
    by = tuple(kwargs.get("by") or ())
    small = combine.finish_small(reducer.result(), by, keys, check)
    dirs = [batch_dir(out, t.batch) for t in tasks]
    t1 = time.perf_counter()
    counts = iou.resum(small["counts"], dirs, by, keys)
    t2 = time.perf_counter()
    thresholds = {"conf_thr": s.normalize_thresholds(kwargs.get("confidence_thresholds"),
                                                     "confidence_thresholds"),
                  "iou_thr": s.normalize_thresholds(kwargs.get("iou_thresholds"),
                                                    "iou_thresholds")}
    keys_t = tuple(keys)
    # partials of module functions, not closures: the result pickles
    loaders = {
        "matches": partial(_sorted_matches, tasks, keys_t),
        "_matches_lazy": partial(_scan_per_annotation, tasks, "matches"),
        "annotations": partial(_annotations, tasks),
    }
    part = PartialResult(
        profile=profile, keys=keys_t, by=by, conf_thr=np.asarray(thresholds["conf_thr"]),
        iou_thr=np.asarray(thresholds["iou_thr"]), counts=counts, confusion=small["confusion"],
        data_rows=sorted_rows(combine.scan_large(dirs, "data_rows"), keys_t),
        excluded=small["excluded"], rejects=small["rejects"], repairs=small["repairs"],
        timings=dict(small["timings"], **_write_seconds(dirs), stream=seconds,
                     merge=t1 - t0, resum=t2 - t1),
        detail=Detail(frames=LazyFrames(loaders)))
    ev = Evaluation.from_partial(part)
    streamed = StreamedEvaluation(**{f.name: getattr(ev, f.name) if f.name != "data_rows"
                                     else part.data_rows for f in dataclasses.fields(ev)})
    streamed.__dict__["_out"] = out
    for name in ("cube", "overall", "confusion", "excluded", "rejects"):
        getattr(streamed, name).write_parquet(out / f"{name}.parquet")
    return streamed

