"""``evaluate`` out of core: Parquet inputs in data-row-complete batches, on Ray if asked.

Any of ``--stream``, ``--engine``, ``--memory-limit``, ``--batch-size``, ``--batches`` or
``--assume-bucketed`` passes the Parquet paths (files, directories, globs) to
:func:`polars_metrics.evaluate` unread, with ``out=`` the output directory. The run keeps its
checkpoints there (``OUT/batches/``): the same command resumes an interrupted run, and a changed
input recomputes only its batches. The small frames (cube, overall, confusion, excluded,
rejects) are written as ``OUT/<name>.parquet``; the large ones (data rows, matches) stay one
file per batch, ``OUT/batches/*/<name>.parquet``, which ``pl.scan_parquet`` reads as one table.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from polars_metrics.cli import options as opt
from polars_metrics.cli.errors import CliError
from polars_metrics.cli.inputs import _formats, detect, read_data_rows
from polars_metrics.cli.progress import Progress
from polars_metrics.evaluate import evaluate

STREAM_FLAGS = {"stream": "--stream", "engine": "--engine", "memory_limit": "--memory-limit",
                "batch_size": "--batch-size", "batches": "--batches",
                "assume_bucketed": "--assume-bucketed"}
LARGE = ("data_rows", "matches")
# reader options of COCO / Labelbox inputs: a streamed run reads Parquet only
_READER_ONLY = {"project": "--project", "model_run": "--model-run", "mask_root": "--mask-root"}


def _positive(flag: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"takes a whole number >= 1; got {text!r}")
        return value
    parse.__name__ = flag
    return parse


def add_stream_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "out of core (Parquet inputs; checkpoints in OUT/batches/, the same command resumes)")
    g.add_argument("--stream", action="store_true",
                   help="evaluate in data-row-complete batches with bounded memory (implied by "
                        "every option of this group)")
    g.add_argument("--engine", metavar="local|ray",
                   help="run the batches in this process (local) or as Ray tasks on the "
                        "cluster ray.init() finds (RAY_ADDRESS), else a local one")
    g.add_argument("--memory-limit", metavar="SIZE",
                   help="memory budget that sizes the batches, e.g. 2GB or 500MB")
    g.add_argument("--batch-size", type=_positive("--batch-size"), metavar="N",
                   help="annotations per batch")
    g.add_argument("--batches", type=_positive("--batches"), metavar="N",
                   help="number of batches")
    g.add_argument("--assume-bucketed", action="store_true",
                   help="every input file (hive partition) holds whole data rows: use the files "
                        "as the batches instead of bucketing by a hash of the data-row key")


def requested(args: argparse.Namespace) -> bool:
    return any(getattr(args, name, None) not in (None, False) for name in STREAM_FLAGS)


def _given(args: argparse.Namespace) -> str:
    return ", ".join(flag for name, flag in STREAM_FLAGS.items()
                     if getattr(args, name, None) not in (None, False))


def check(args: argparse.Namespace) -> None:
    """Refuse what a streamed run cannot honour, before anything is read."""
    if args.engine is not None and args.engine not in ("local", "ray"):
        from polars_metrics.errors import did_you_mean

        raise CliError(f"--engine {args.engine}: must be local or ray."
                       + did_you_mean(args.engine, ("local", "ray")))
    if args.predictions is None:
        raise CliError(f"--predictions is required with {_given(args)}: a streamed run reads "
                       "two Parquet datasets.")
    for name, flag in _READER_ONLY.items():
        if getattr(args, name, None) is not None:
            raise CliError(f"{flag} reads Labelbox exports; {_given(args)} reads Parquet "
                           f"only. Drop {flag}, or drop {_given(args)} to read the export "
                           "whole.")
    if args.label_selection != "first":
        raise CliError(f"--label-selection reads Labelbox exports; {_given(args)} reads "
                       "Parquet only.")
    if args.report and args.media:
        raise CliError("--media with a streamed run: the report's thumbnails need the input "
                       "tables in memory. Write the report without --media, or evaluate "
                       "without the out-of-core options.")
    gt_forced, pd_forced = _formats(args.format)
    for flag, path, forced in (("--ground-truth", args.ground_truth, gt_forced),
                               ("--predictions", args.predictions, pd_forced)):
        fmt, _ = detect(path, flag, forced)
        if fmt != "parquet":
            raise CliError(
                f"{flag} {path}: is {fmt}; {_given(args)} streams Parquet inputs. Drop "
                f"{_given(args)} to read {fmt} whole, or convert it to Parquet first (e.g. "
                "with pm.read_coco / pm.read_labelbox_ndjson and write_parquet).")


def evaluate_streamed(args: argparse.Namespace, progress: Progress, out: Path):
    """The streamed Evaluation of the command's inputs (checkpoints and outputs under ``out``)."""
    check(args)
    opt.check_on_invalid(args.on_invalid)
    data_rows = None
    if args.data_rows:
        from polars_metrics.cli.inputs import Inputs

        holder = Inputs(ground_truth=None, predictions=None)  # read_data_rows only notes files
        data_rows = read_data_rows(args.data_rows, opt.read_options(args), progress, holder)
    args.files.update({"ground_truth": args.ground_truth, "predictions": args.predictions})
    knobs: dict[str, Any] = {"memory_limit": args.memory_limit, "batch_size": args.batch_size,
                             "batches": args.batches, "assume_bucketed": args.assume_bucketed}
    with progress.stage("evaluate", f"streamed, checkpoints in {out}/batches/"):
        return evaluate(args.ground_truth, args.predictions, data_rows=data_rows, out=out,
                        engine=args.engine or "local", progress=not args.quiet, **knobs,
                        **opt.evaluate_kwargs(args))


def write_outputs(ev, out: Path, progress: Progress) -> dict[str, Path]:
    """The output paths by frame name: the small frames the run wrote, the repairs, and the
    large frames as their per-batch files (a glob)."""
    with progress.stage("write outputs", f"to {out}/"):
        paths = {name: out / f"{name}.parquet"
                 for name in ("cube", "overall", "confusion", "excluded", "rejects")}
        if ev.repairs is not None and ev.repairs.height:
            ev.repairs.write_parquet(out / "repairs.parquet")
            paths["repairs"] = out / "repairs.parquet"
        if hasattr(ev, "lazy") and ev.profile.coco is None:
            ev.lazy("matches")  # rebuilt from the batches' inputs once, one file per batch
        for name in LARGE:
            if any((out / "batches").glob(f"*/{name}.parquet")):
                paths[name] = out / "batches" / "*" / f"{name}.parquet"
    return paths


def inputs_json(args: argparse.Namespace) -> dict:
    return {"ground_truth": {"path": args.ground_truth, "format": "parquet"},
            "predictions": {"path": args.predictions, "format": "parquet"},
            "streamed": {"engine": args.engine or "local", "options": _given(args)}}


def describe(args: argparse.Namespace, out: Path) -> str:
    n = len([p for p in (out / "batches").glob("*") if p.is_dir()])
    return (f"polars-metrics evaluate (streamed, {n} batches, engine "
            f"{args.engine or 'local'}): ground truth {args.ground_truth}, predictions "
            f"{args.predictions} (Parquet).")
