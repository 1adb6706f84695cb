"""The ``polars-metrics`` command: ``demo``, ``evaluate`` and ``report``.

``demo`` generates seeded synthetic detections, evaluates them and prints a summary;
``evaluate`` does the same for your files — Parquet, COCO JSON, Labelbox NDJSON or a Labelbox
export, detected from the content — and writes every output frame as Parquet (``--json``: the
summary as JSON on stdout); ``report`` writes the self-contained HTML report. Every error is
one line on stderr, in flags and file names, with exit status 2.

Modules: ``options`` (the evaluate / report options), ``inputs`` (format detection, reading),
``summary`` (printed and JSON summary), ``progress`` (rich progress on a terminal), ``errors``
(one-line errors and their translation into flags).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import polars as pl

from polars_metrics import synthetic
from polars_metrics.cli import options as opt
from polars_metrics.cli import stream as cli_stream
from polars_metrics.cli.errors import (
    EXIT_ERROR,
    PROG,
    ArgumentParser,
    CliError,
    one_line,
    translate,
)
from polars_metrics.cli.inputs import Inputs, comparable_coco, read_inputs
from polars_metrics.cli.progress import Progress
from polars_metrics.cli.summary import (
    WIDTH,
    count,
    format_summary,
    format_timings,
    summary_json,
    wrap,
    wrap_items,
)
from polars_metrics.errors import PolarsMetricsError
from polars_metrics.evaluate import evaluate
from polars_metrics.result import Evaluation
from polars_metrics.views.report import report

EXIT_USAGE = EXIT_ERROR  # kept for callers of the single-module CLI
__all__ = ["EXIT_ERROR", "PROG", "WIDTH", "CliError", "build_parser", "format_summary",
           "format_timings", "main"]


# --- outputs -------------------------------------------------------------------------------------

def check_out_dir(path: str, flag: str = "--out") -> Path:
    """Create the output directory now and prove it writable: fail before the work, not after."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise CliError(f"{flag} {path}: is a file, not a directory.")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise CliError(f"{flag} {path}: cannot write there ({exc.strerror or exc}).") from None
    return out


def check_out_file(path: str, flag: str) -> Path:
    target = Path(path)
    if target.is_dir():
        raise CliError(f"{flag} {path}: is a directory; name the file, e.g. {path}/report.html.")
    parent = target.parent
    if not parent.is_dir():
        raise CliError(f"{flag} {path}: the directory {parent} does not exist.")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise CliError(f"{flag} {path}: cannot write there (permission denied).")
    return target


def _write_outputs(ev: Evaluation, inputs: Inputs | None, out: Path,
                   progress: Progress) -> dict[str, Path]:
    with progress.stage("write outputs", f"to {out}/"):
        paths = ev.write(out)
        if inputs is not None:
            extra = {"input_rejects": inputs.reader_rejects(), "input_excluded": inputs.excluded}
            for name, frame in extra.items():
                if frame is not None and frame.height:
                    paths[name] = out / f"{name}.parquet"
                    frame.write_parquet(paths[name])
    return paths


def _print_outputs(paths: dict[str, Path], stream: TextIO, out_dir: Path) -> None:
    """Each output file (relative to ``out_dir``; a glob for a streamed run's per-batch
    files) and its number of rows."""
    names = [f"{Path(p).relative_to(out_dir)} "
             f"({count(pl.scan_parquet(str(p)).select(pl.len()).collect().item())} rows)"
             for p in paths.values()]
    print(wrap_items(f"Outputs in {out_dir}/:", names), file=stream)


# --- commands ------------------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    progress = Progress(quiet=args.quiet)
    if args.images < 1:
        raise CliError(f"--images must be at least 1, got {args.images}.")
    out = check_out_dir(args.out)
    with progress.stage("generate", f"{count(args.images)} images, {args.classes} classes"):
        gt, pd = synthetic.detections(n_images=args.images, n_classes=args.classes, seed=args.seed)
    inputs = out / "input"
    with progress.stage("write input", f"to {inputs}/"):
        inputs.mkdir(parents=True, exist_ok=True)
        gt_path, pd_path = inputs / "ground_truth.parquet", inputs / "predictions.parquet"
        gt.write_parquet(gt_path)
        pd.write_parquet(pd_path)
    with progress.stage("evaluate", "(the first run also compiles the numba kernels)"):
        ev = evaluate(gt, pd)
    paths = _write_outputs(ev, None, out, progress)
    with progress.stage("summary"):
        text = format_summary(ev, confidence=0.5, iou=0.5)
    stdout = sys.stdout
    print(wrap(f"polars-metrics demo: {count(args.images)} synthetic images, {args.classes} "
               f"classes, seed {args.seed}: {count(gt.height)} ground truths, "
               f"{count(pd.height)} predictions ({gt.height / args.images:.1f} and "
               f"{pd.height / args.images:.1f} per image)."), file=stdout)
    print(f"Cube: {len(ev.confidence_thresholds)} confidence x {len(ev.iou_thresholds)} IoU "
          f"thresholds x {len(ev.features)} features.", file=stdout)
    print(text, file=stdout)
    print("", file=stdout)
    print(format_timings(progress.times, ev.timings), file=stdout)
    _print_outputs(paths, stdout, out)
    print(f"Input in {inputs}/. To slice the metrics by split:", file=stdout)
    print(f"  {PROG} evaluate --ground-truth {gt_path} \\\n"
          f"    --predictions {pd_path} --out {out / 'by_split'} --by split", file=stdout)
    return 0


def _evaluate_inputs(args: argparse.Namespace, progress: Progress) -> tuple[Evaluation, Inputs]:
    """Read the inputs and evaluate them: the part evaluate and report share."""
    opt.check_on_invalid(args.on_invalid)
    inputs = read_inputs(args.ground_truth, args.predictions, formats=args.format,
                         data_rows=args.data_rows, opts=opt.read_options(args), progress=progress)
    args.files.update(inputs.files)
    coco_input = inputs.formats["ground_truth"] == "coco"
    if coco_input and args.profile != "coco":
        note = comparable_coco(inputs, opt.switches(args).get("iou_type"))
        inputs.notes.append(note)
    kwargs = opt.evaluate_kwargs(args, coco_input=coco_input)
    with progress.stage("evaluate", "(the first run also compiles the numba kernels)"):
        ev = evaluate(inputs.ground_truth, inputs.predictions, data_rows=inputs.data_rows,
                      **kwargs)
    return ev, inputs


def _describe_inputs(inputs: Inputs) -> str:
    parts = []
    for table, frame in (("ground truths", inputs.ground_truth),
                         ("predictions", inputs.predictions)):
        key = "ground_truth" if table == "ground truths" else "predictions"
        parts.append(f"{count(frame.height)} {table} ({inputs.files[key]}, "
                     f"{inputs.formats[key]})")
    return wrap(f"polars-metrics evaluate: {', '.join(parts)}.")


def _inputs_json(inputs: Inputs) -> dict:
    out = {table: {"path": inputs.files[table], "format": inputs.formats[table],
                   "rows": getattr(inputs, table).height}
           for table in ("ground_truth", "predictions")}
    rej = inputs.reader_rejects()
    out["reader_rejects"] = 0 if rej is None else rej.height
    out["export_excluded"] = 0 if inputs.excluded is None else inputs.excluded.height
    out["notes"] = list(inputs.notes)
    return out


def cmd_evaluate(args: argparse.Namespace) -> int:
    progress = Progress(quiet=args.quiet)
    out = check_out_dir(args.out)
    if args.report:
        check_out_file(args.report, "--report")
    if cli_stream.requested(args):
        ev, inputs = cli_stream.evaluate_streamed(args, progress, out), None
        paths = cli_stream.write_outputs(ev, out, progress)
    else:
        ev, inputs = _evaluate_inputs(args, progress)
        paths = _write_outputs(ev, inputs, out, progress)
    html = None
    if args.report:
        with progress.stage("report"):
            html = report(ev, args.report, media=args.media,
                          ground_truth=None if inputs is None else inputs.ground_truth,
                          predictions=None if inputs is None else inputs.predictions)
    stdout = sys.stdout
    if args.json:
        described = cli_stream.inputs_json(args) if inputs is None else _inputs_json(inputs)
        data = summary_json(ev, confidence=args.summary_confidence, iou=args.summary_iou,
                            times=progress.times,
                            extra={"command": "evaluate", "inputs": described,
                                   "outputs": {k: str(v) for k, v in paths.items()},
                                   "report": None if html is None else str(html)})
        json.dump(data, stdout, indent=1, allow_nan=False, default=str)
        stdout.write("\n")
        return 0
    with progress.stage("summary"):
        text = format_summary(ev, confidence=args.summary_confidence, iou=args.summary_iou)
    if inputs is None:
        print(wrap(cli_stream.describe(args, out)), file=stdout)
    else:
        print(_describe_inputs(inputs), file=stdout)
        for note in inputs.notes:
            print(wrap(note), file=stdout)
    print(f"Cube: {len(ev.confidence_thresholds)} confidence x {len(ev.iou_thresholds)} IoU "
          f"thresholds x {len(ev.features)} features"
          + (f", by {', '.join(ev.by)}" if ev.by else "") + ".", file=stdout)
    _print_rejects(ev, inputs, stdout)
    print(text, file=stdout)
    print("", file=stdout)
    print(format_timings(progress.times, ev.timings), file=stdout)
    _print_outputs(paths, stdout, out)
    if html is not None:
        print(f"Report: {html}", file=stdout)
    return 0


def _print_rejects(ev: Evaluation, inputs: Inputs | None, stdout: TextIO) -> None:
    from polars_metrics.cli.summary import _config

    read = None if inputs is None else inputs.reader_rejects()
    with _config():
        if read is not None:
            print(f"Records the readers rejected ({count(read.height)}; all in "
                  "input_rejects.parquet):", file=stdout)
            print(read.head(5), file=stdout)
        if ev.rejects.height:
            print(f"Rejected input rows ({count(ev.rejects.height)}; all in rejects.parquet):",
                  file=stdout)
            print(ev.rejects.head(5), file=stdout)
    if inputs is not None and inputs.excluded is not None:
        print(wrap(f"{count(inputs.excluded.height)} data rows of the export are not labeled "
                   "(input_excluded.parquet)."), file=stdout)


def cmd_report(args: argparse.Namespace) -> int:
    """Evaluate the inputs and write only the self-contained HTML report."""
    progress = Progress(quiet=args.quiet)
    check_out_file(args.output, "--output")
    ev, inputs = _evaluate_inputs(args, progress)
    with progress.stage("report"):
        html = report(ev, args.output, title=args.title, media=args.media,
                      ground_truth=inputs.ground_truth, predictions=inputs.predictions)
    if args.json:
        json.dump({"command": "report", "report": str(html), "inputs": _inputs_json(inputs),
                   "timings": {"stages": progress.times}}, sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
    else:
        print(f"Report: {html}", file=sys.stdout)
    return 0


# --- argument parsing ----------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=PROG, description="Columnar evaluation of predictions against ground truth: the "
        "whole confidence x IoU cube, confusion matrices and data-row tables as Parquet.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=ArgumentParser)
    common = ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true",
                        help="no progress on stderr (there is none either when stderr is not a "
                             "terminal)")

    demo = sub.add_parser(
        "demo", parents=[common], help="evaluate seeded synthetic detections and print a summary",
        description="Generate seeded synthetic detections, write them as Parquet into OUT/input/, "
                    "evaluate, print a summary at confidence 0.5 / IoU 0.5 and write every "
                    "output frame as Parquet into OUT/.")
    demo.add_argument("--images", type=int, default=5000, metavar="N",
                      help="number of images (default: 5000)")
    demo.add_argument("--classes", type=int, default=80, metavar="K",
                      help="number of classes (default: 80, the COCO names)")
    demo.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default: 0)")
    demo.add_argument("--out", default="demo_output", metavar="DIR",
                      help="output directory (default: demo_output)")
    demo.set_defaults(func=cmd_demo)

    ev = sub.add_parser(
        "evaluate", parents=[common], help="evaluate and write every frame as Parquet",
        description="Evaluate predictions against ground truth (Parquet, COCO JSON, Labelbox "
                    "NDJSON or export), write cube, overall, confusion, data_rows, excluded, "
                    "rejects and matches as Parquet into OUT/ and print a summary.")
    opt.add_input_arguments(ev)
    opt.add_evaluate_arguments(ev)
    g = ev.add_argument_group("outputs")
    g.add_argument("--out", required=True, metavar="DIR", help="output directory")
    g.add_argument("--json", action="store_true",
                   help="print the summary as JSON on stdout instead of text")
    g.add_argument("--summary-confidence", type=float, default=0.5, metavar="C",
                   help="confidence threshold of the summary (default: 0.5)")
    g.add_argument("--summary-iou", type=float, default=0.5, metavar="T",
                   help="IoU threshold of the summary (default: 0.5)")
    g.add_argument("--report", metavar="REPORT.html",
                   help="also write the self-contained HTML report there")
    g.add_argument("--media", metavar="DIR|PATTERN",
                   help="images for the report: a directory of <key>.png|jpg or a pattern "
                        "like img/{data_row}.jpg")
    cli_stream.add_stream_arguments(ev)
    ev.set_defaults(func=cmd_evaluate)

    rep = sub.add_parser(
        "report", parents=[common], help="evaluate and write the self-contained HTML report",
        description="Evaluate and write one HTML file (no server, works offline): sliders, "
                    "tables, confusion matrix with examples, PR curves, distributions, gallery.")
    opt.add_input_arguments(rep)
    opt.add_evaluate_arguments(rep)
    g = rep.add_argument_group("outputs")
    g.add_argument("-o", "--output", default="report.html", metavar="REPORT.html",
                   help="the HTML file (default: report.html)")
    g.add_argument("--title", default=None)
    g.add_argument("--media", metavar="DIR|PATTERN", help="as for evaluate --media")
    g.add_argument("--json", action="store_true", help="print what was written as JSON")
    rep.set_defaults(func=cmd_report)
    return parser


@contextmanager
def _one_line_warnings(files: dict) -> Iterator[None]:
    """Warnings as one stderr line each, in flags and file names."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{PROG}: warning: {one_line(translate(str(message), files))}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield


def _fail(message: str, files: dict | None = None) -> int:
    print(f"{PROG}: error: {one_line(translate(message, files))}", file=sys.stderr)
    return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 any error, one line on stderr).

    Examples
    --------
    >>> import json, tempfile, pathlib, polars_metrics as pm
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> gt, pd = pm.synthetic.detections(n_images=5, n_classes=2, seed=0)
    >>> gt.write_parquet(d / "gt.parquet"); pd.write_parquet(d / "pd.parquet")
    >>> main(["evaluate", "--ground-truth", str(d / "gt.parquet"), "--predictions",
    ...       str(d / "pd.parquet"), "--out", str(d / "out"), "--json", "-q"])  # doctest: +ELLIPSIS
    {...}
    0
    >>> main(["evaluate", "--iou", "0.5"])  # no abbreviations: --iou is not --iou-thresholds
    2
    """
    try:
        args = build_parser().parse_args(argv)
    except CliError as exc:
        return _fail(str(exc))
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0)
    args.files = {}
    with _one_line_warnings(args.files):
        try:
            return args.func(args)
        except (PolarsMetricsError, CliError) as exc:
            return _fail(str(exc), args.files)
        except BrokenPipeError:  # e.g. `polars-metrics demo | head`: stop quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 1
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            return _fail(f"{where}{exc.strerror or exc}", args.files)
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:  # a bug or an unforeseen input: still one line
            if os.environ.get("POLARS_METRICS_TRACEBACK"):
                raise
            return _fail(f"{type(exc).__name__}: {exc} (unexpected; set "
                         "POLARS_METRICS_TRACEBACK=1 for the traceback and please report it)",
                         args.files)


if __name__ == "__main__":
    sys.exit(main())
