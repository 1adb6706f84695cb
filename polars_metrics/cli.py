"""The ``polars-metrics`` command: ``demo`` and ``evaluate``.

``polars-metrics demo`` generates seeded synthetic detections (:mod:`polars_metrics.synthetic`),
writes them as Parquet, evaluates them and prints a summary; ``polars-metrics evaluate`` does the
same for your own Parquet files. Both write every output frame of the evaluation as Parquet.
Errors in the input (missing columns, x1 < x0, ...) are printed without a traceback and exit
with status 2.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics import synthetic
from polars_metrics.errors import PolarsMetricsError
from polars_metrics.evaluate import evaluate
from polars_metrics.profiles import PROFILES
from polars_metrics.result import Evaluation
from polars_metrics.views.report import report

PROG = "polars-metrics"
EXIT_USAGE = 2
WIDTH = 100  # the printed summary fits a 100-column terminal
# Profiles whose results come as the Evaluation frames (COCO's score-ordered AP/AR differ).
IOU_ORDERED_PROFILES = sorted(name for name, p in PROFILES.items() if p.greedy_order == "iou")


class CliError(Exception):
    """A problem with the command line or the input files (printed without a traceback)."""


# --- progress --------------------------------------------------------------------------------

class Progress:
    """One stderr line per stage: ``label ... 1.23 s``; the times are kept for the summary."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.times: dict[str, float] = {}

    @contextmanager
    def stage(self, label: str, detail: str = "") -> Iterator[None]:
        if self.stream is not None:
            self.stream.write(f"{PROG}: {label}{' ' + detail if detail else ''} ...")
            self.stream.flush()
        t0 = time.perf_counter()
        try:
            yield
        except BaseException:
            if self.stream is not None:
                self.stream.write(" failed\n")
            raise
        dt = time.perf_counter() - t0
        self.times[label] = dt
        if self.stream is not None:
            self.stream.write(f" {dt:.2f} s\n")
            self.stream.flush()


# --- the printed summary -----------------------------------------------------------------------

def _config() -> pl.Config:
    return pl.Config(
        tbl_width_chars=WIDTH, tbl_rows=40, tbl_cols=12, fmt_str_lengths=40, float_precision=3,
        tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True,
        tbl_formatting="ASCII_MARKDOWN", tbl_cell_numeric_alignment="RIGHT",
        thousands_separator=False,
    )


def _nearest(grid: np.ndarray, value: float) -> float:
    return float(grid[int(np.argmin(np.abs(grid - value)))])


def _metric_columns(frame: pl.DataFrame) -> list[str]:
    """tp, fp, (tn when it is defined anywhere), fn, precision, recall, f1, iou."""
    return [c for c in s.METRIC_COLUMNS if c != s.TN or frame[s.TN].null_count() < frame.height]


def _cell(frame: pl.DataFrame, c: float, t: float) -> pl.DataFrame:
    return frame.filter((pl.col(s.CONFIDENCE_THRESHOLD) == c) & (pl.col(s.IOU_THRESHOLD) == t))


def _count(n: int) -> str:
    return f"{n:,}"


def _wrap(text: str) -> str:
    return textwrap.fill(text, WIDTH, subsequent_indent="  ", break_long_words=False,
                         break_on_hyphens=False)


def _wrap_items(head: str, items: Sequence[str], sep: str = ", ") -> str:
    """``head`` then the items, wrapped at WIDTH without breaking an item."""
    lines, line = [], head
    for i, item in enumerate(items):
        piece = item + (sep.rstrip() if i < len(items) - 1 else "")
        if len(line) + 1 + len(piece) > WIDTH and line.strip():
            lines.append(line)
            line = "  " + piece
        else:
            line = f"{line} {piece}" if line else piece
    lines.append(line)
    return "\n".join(lines)


def format_summary(ev: Evaluation, *, confidence: float = 0.5, iou: float = 0.5,
                   worst_features: int = 10, worst_rows: int = 5, confusions: int = 10) -> str:
    """The readable summary the CLI prints: one (confidence, IoU) cell of the evaluation.

    ``confidence`` and ``iou`` snap to the nearest thresholds of the evaluation's grid.
    """
    c = _nearest(ev.confidence_thresholds, confidence)
    t = _nearest(ev.iou_thresholds, iou)
    by, keys = list(ev.by), list(ev.keys)
    out: list[str] = []
    with _config():
        # data rows
        n_cells = max(1, len(ev.confidence_thresholds) * len(ev.iou_thresholds))
        n_rows = ev.data_rows.height // n_cells
        reasons = ev.excluded.group_by(s.REASON).len().sort("len", descending=True)
        why = ", ".join(f"{r}: {_count(n)}" for r, n in reasons.iter_rows())
        out.append(_wrap(
            f"Data rows: {_count(n_rows)} evaluated, {_count(ev.excluded.height)} excluded"
            + (f" ({why}; listed in excluded.parquet)" if why else "")
            + (f"; {_count(ev.rejects.height)} input rows rejected (rejects.parquet)"
               if ev.rejects.height else "")))
        prof = ev.profile
        counts = (f"a prediction counts at confidence >= {c:g}" if prof.use_confidence
                  else "confidence is ignored (every prediction counts)")
        op = ">" if prof.iou_strict else ">="
        out.append(_wrap(f"Profile {prof.name!r}: {counts}; a pair matches at IoU {op} {t:g}"
                         + ("" if prof.class_aware else ", regardless of class (class-agnostic)")
                         + "."))
        snapped = [f"{name} {want:g} -> {got:g}" for name, want, got in
                   (("confidence", confidence, c), ("IoU", iou, t)) if abs(want - got) > 1e-9]
        if snapped:
            out.append(f"(nearest thresholds in the grid: {', '.join(snapped)})")

        # per feature and overall
        cube = _cell(ev.cube, c, t)
        cols = [*by, s.FEATURE, *_metric_columns(cube)]
        worst = cube.sort([s.F1, s.FEATURE], nulls_last=True).head(worst_features).select(cols)
        n_feat = cube[s.FEATURE].n_unique()
        title = (f"{min(worst_features, n_feat)} worst of {n_feat} features by F1"
                 if n_feat > worst_features else f"All {n_feat} features, by F1")
        out += ["", f"{title} (confidence {c:g}, IoU {t:g}):", str(worst)]
        overall = _cell(ev.overall, c, t).select(*by, s.AVERAGE, *_metric_columns(cube))
        out += ["", "All features (micro: from summed counts; macro: mean over features):",
                str(overall)]

        # worst data rows
        rows = _cell(ev.data_rows, c, t).with_columns(
            (pl.col(s.FP) + pl.col(s.FN)).alias("_errors"))
        worst_rows_df = rows.sort([s.F1, "_errors", *keys], descending=[False, True] + [False] * len(keys),
                                  nulls_last=True).head(worst_rows)
        out += ["", f"{worst_rows_df.height} worst data rows by F1 (mean over the row's features):",
                str(worst_rows_df.select(*keys, *by, *_metric_columns(rows)))]

        # confusions
        conf = (_cell(ev.confusion, c, t).group_by(s.GT_FEATURE, s.PD_FEATURE)
                .agg(pl.col(s.COUNT).sum()))
        mixed = (conf.filter(pl.col(s.GT_FEATURE).is_not_null() & pl.col(s.PD_FEATURE).is_not_null()
                             & (pl.col(s.GT_FEATURE) != pl.col(s.PD_FEATURE)))
                 .sort([s.COUNT, s.GT_FEATURE, s.PD_FEATURE], descending=[True, False, False]))
        missed = int(conf.filter(pl.col(s.PD_FEATURE).is_null())[s.COUNT].sum())
        spurious = int(conf.filter(pl.col(s.GT_FEATURE).is_null())[s.COUNT].sum())
        out += ["", f"Largest confusions (ground truth matched by a prediction of another class; "
                f"{_count(mixed[s.COUNT].sum())} in all):",
                str(mixed.head(confusions)) if mixed.height else "  none",
                f"Unmatched: {_count(missed)} ground truths [gt, None], "
                f"{_count(spurious)} predictions [None, pred]."]

        # best thresholds
        best = ev.best_thresholds(iou=t).filter(pl.col(s.FEATURE).is_null())
        out += ["", f"Best-F1 confidence threshold (micro, IoU {t:g}):",
                str(best.select(*by, s.CONFIDENCE_THRESHOLD, s.PRECISION, s.RECALL, s.F1))
                if best.height else "  undefined (no F1 is defined at this IoU threshold)"]
    return "\n".join(out)


def format_timings(times: dict[str, float], engine: dict[str, float]) -> str:
    inner = ", ".join(f"{k} {v:.2f}" for k, v in engine.items())
    parts = [f"{k} {v:.2f}" + (f" ({inner})" if k == "evaluate" and inner else "")
             for k, v in times.items()]
    return _wrap_items("Wall time (s):", [*parts, f"total {sum(times.values()):.2f}"], sep=" |")


# --- commands ----------------------------------------------------------------------------------

def _progress(args: argparse.Namespace) -> Progress:
    return Progress(None if args.quiet else sys.stderr)


def _write_outputs(ev: Evaluation, out: Path, progress: Progress) -> dict[str, Path]:
    with progress.stage("write outputs", f"to {out}/"):
        return ev.write(out)


def _print_outputs(paths: dict[str, Path], stream: TextIO) -> None:
    names = [f"{name}.parquet ({_count(pl.scan_parquet(p).select(pl.len()).collect().item())} rows)"
             for name, p in paths.items()]
    out_dir = next(iter(paths.values())).parent if paths else Path(".")
    print(_wrap_items(f"Outputs in {out_dir}/:", names), file=stream)


def cmd_demo(args: argparse.Namespace) -> int:
    progress = _progress(args)
    out = Path(args.out)
    stdout = sys.stdout
    if args.images < 1:
        raise CliError(f"--images must be at least 1, got {args.images}.")
    with progress.stage("generate", f"{_count(args.images)} images, {args.classes} classes, seed {args.seed}"):
        gt, pd = synthetic.detections(n_images=args.images, n_classes=args.classes, seed=args.seed)
    inputs = out / "input"
    with progress.stage("write input", f"to {inputs}/"):
        inputs.mkdir(parents=True, exist_ok=True)
        gt_path, pd_path = inputs / "ground_truth.parquet", inputs / "predictions.parquet"
        gt.write_parquet(gt_path)
        pd.write_parquet(pd_path)
    with progress.stage("evaluate", "(the first run also compiles the numba kernels)"):
        ev = evaluate(gt, pd)
    paths = _write_outputs(ev, out, progress)
    with progress.stage("summary"):
        text = format_summary(ev, confidence=0.5, iou=0.5)

    print(_wrap(f"polars-metrics demo: {_count(args.images)} synthetic images, {args.classes} "
                f"classes, seed {args.seed}: {_count(gt.height)} ground truths, "
                f"{_count(pd.height)} predictions ({gt.height / args.images:.1f} and "
                f"{pd.height / args.images:.1f} per image)."), file=stdout)
    print(f"Cube: {len(ev.confidence_thresholds)} confidence x {len(ev.iou_thresholds)} IoU "
          f"thresholds x {len(ev.features)} features.", file=stdout)
    print(text, file=stdout)
    print("", file=stdout)
    print(format_timings(progress.times, ev.timings), file=stdout)
    _print_outputs(paths, stdout)
    print(f"Input in {inputs}/. To slice the metrics by split:", file=stdout)
    print(f"  {PROG} evaluate --ground-truth {gt_path} \\\n"
          f"    --predictions {pd_path} --out {out / 'by_split'} --by split", file=stdout)
    return 0


def _parse_thresholds(text: str | None, flag: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise CliError(f"{flag} takes comma-separated numbers in [0, 1], e.g. 0,0.25,0.5; "
                       f"got {text!r}.") from None


def _read_parquet(path: str, flag: str) -> pl.DataFrame:
    if not glob.has_magic(path) and not Path(path).exists():
        raise CliError(f"{flag} {path}: no such file or directory.")
    try:
        return pl.scan_parquet(path).collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise CliError(f"{flag} {path}: cannot read it as Parquet: {exc}") from None


def cmd_evaluate(args: argparse.Namespace) -> int:
    progress = _progress(args)
    out = Path(args.out)
    conf_thr = _parse_thresholds(args.confidence_thresholds, "--confidence-thresholds")
    iou_thr = _parse_thresholds(args.iou_thresholds, "--iou-thresholds")
    with progress.stage("read input"):
        gt = _read_parquet(args.ground_truth, "--ground-truth")
        pd = _read_parquet(args.predictions, "--predictions")
        meta = _read_parquet(args.data_rows, "--data-rows") if args.data_rows else None
    with progress.stage("evaluate"):
        ev = evaluate(gt, pd, profile=args.profile, confidence_thresholds=conf_thr,
                      iou_thresholds=iou_thr, by=args.by or None,
                      data_row=args.data_row[0] if len(args.data_row) == 1 else args.data_row,
                      data_rows=meta, on_invalid=args.on_invalid)
    paths = _write_outputs(ev, out, progress)
    with progress.stage("summary"):
        text = format_summary(ev, confidence=args.summary_confidence, iou=args.summary_iou)

    stdout = sys.stdout
    print(_wrap(f"polars-metrics evaluate: {_count(gt.height)} ground truths "
                f"({args.ground_truth}), {_count(pd.height)} predictions ({args.predictions})."),
          file=stdout)
    print(f"Cube: {len(ev.confidence_thresholds)} confidence x {len(ev.iou_thresholds)} IoU "
          f"thresholds x {len(ev.features)} features"
          + (f", by {', '.join(ev.by)}" if ev.by else "") + ".", file=stdout)
    if ev.rejects.height:
        with _config():
            print(f"Rejected input rows ({_count(ev.rejects.height)}; all in rejects.parquet):",
                  file=stdout)
            print(ev.rejects.head(5), file=stdout)
    print(text, file=stdout)
    print("", file=stdout)
    print(format_timings(progress.times, ev.timings), file=stdout)
    _print_outputs(paths, stdout)
    if args.report:
        with progress.stage("report"):
            html = report(ev, args.report, media=args.media, ground_truth=gt, predictions=pd)
        print(f"Report: {html}", file=stdout)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Evaluate Parquet inputs and write only the self-contained HTML report."""
    progress = _progress(args)
    with progress.stage("read input"):
        gt = _read_parquet(args.ground_truth, "--ground-truth")
        pd = _read_parquet(args.predictions, "--predictions")
    with progress.stage("evaluate"):
        ev = evaluate(gt, pd, profile=args.profile, by=args.by or None,
                      data_row=args.data_row[0] if len(args.data_row) == 1 else args.data_row)
    with progress.stage("report"):
        html = report(ev, args.output, title=args.title, media=args.media, ground_truth=gt,
                      predictions=pd)
    print(f"Report: {html}", file=sys.stdout)
    return 0


# --- argument parsing --------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Columnar evaluation of detections against ground truth: the whole "
                    "confidence x IoU cube, confusion matrices and data-row tables as Parquet.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")

    demo = sub.add_parser(
        "demo", parents=[common], help="evaluate seeded synthetic detections and print a summary",
        description="Generate seeded synthetic detections (Poisson ground truth, jittered "
                    "predictions with misses, false positives and label flips), write them as "
                    "Parquet into OUT/input/, evaluate, print a summary at confidence 0.5 / "
                    "IoU 0.5 and write every output frame as Parquet into OUT/.")
    demo.add_argument("--images", type=int, default=5000, metavar="N",
                      help="number of images (default: 5000)")
    demo.add_argument("--classes", type=int, default=80, metavar="K",
                      help="number of classes (default: 80, the COCO names)")
    demo.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default: 0)")
    demo.add_argument("--out", default="demo_output", metavar="DIR",
                      help="output directory (default: demo_output)")
    demo.set_defaults(func=cmd_demo)

    ev = sub.add_parser(
        "evaluate", parents=[common], help="evaluate Parquet files and write every frame as Parquet",
        description="Evaluate predictions against ground truth (both Parquet, one row per "
                    "annotation: data_row, feature, bbox as [x0, y0, x1, y1], optional id, and "
                    "confidence on predictions), write cube, overall, confusion, data_rows, "
                    "excluded, rejects and matches as Parquet into OUT/ and print a summary.")
    ev.add_argument("--ground-truth", required=True, metavar="GT.parquet",
                    help="ground-truth Parquet file, directory or glob")
    ev.add_argument("--predictions", required=True, metavar="PD.parquet",
                    help="predictions Parquet file, directory or glob")
    ev.add_argument("--out", required=True, metavar="DIR", help="output directory")
    ev.add_argument("--data-row", nargs="+", default=[s.DATA_ROW], metavar="COL",
                    help="data-row key column(s); several for a composite key (default: data_row)")
    ev.add_argument("--by", nargs="+", default=[], metavar="COL",
                    help="slice the metrics by these columns (constant per data row), e.g. split")
    ev.add_argument("--data-rows", metavar="META.parquet",
                    help="per-data-row metadata (the key and the --by columns)")
    ev.add_argument("--confidence-thresholds", metavar="C,C,...",
                    help="comma-separated, in [0, 1] (default: 0,0.1,...,1)")
    ev.add_argument("--iou-thresholds", metavar="T,T,...",
                    help="comma-separated, in [0, 1] (default: 0,0.1,...,1)")
    ev.add_argument("--profile", default="labelbox", choices=IOU_ORDERED_PROFILES,
                    help="semantic profile (default: labelbox)")
    ev.add_argument("--on-invalid", default="raise", choices=["raise", "drop"],
                    help="invalid input rows: fail (default) or move them to rejects.parquet")
    ev.add_argument("--summary-confidence", type=float, default=0.5, metavar="C",
                    help="confidence threshold of the printed summary (default: 0.5)")
    ev.add_argument("--summary-iou", type=float, default=0.5, metavar="T",
                    help="IoU threshold of the printed summary (default: 0.5)")
    ev.add_argument("--report", metavar="REPORT.html",
                    help="also write the self-contained HTML report there")
    ev.add_argument("--media", metavar="DIR|PATTERN",
                    help="images for the report: a directory of <key>.png|jpg or a pattern "
                         "like img/{data_row}.jpg")
    ev.set_defaults(func=cmd_evaluate)

    rep = sub.add_parser("report", parents=[common], help="evaluate Parquet files and write the "
                         "self-contained HTML report", description="Evaluate and write one HTML "
                         "file (no server, works offline): sliders, tables, confusion matrix "
                         "with examples, PR curves, distributions, data-row gallery.")
    rep.add_argument("--ground-truth", required=True, metavar="GT.parquet")
    rep.add_argument("--predictions", required=True, metavar="PD.parquet")
    rep.add_argument("-o", "--output", default="report.html", metavar="REPORT.html",
                     help="the HTML file (default: report.html)")
    rep.add_argument("--data-row", nargs="+", default=[s.DATA_ROW], metavar="COL")
    rep.add_argument("--by", nargs="+", default=[], metavar="COL")
    rep.add_argument("--profile", default="labelbox", choices=IOU_ORDERED_PROFILES)
    rep.add_argument("--title", default=None)
    rep.add_argument("--media", metavar="DIR|PATTERN", help="as for evaluate --media")
    rep.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input or usage)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (PolarsMetricsError, CliError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. `polars-metrics demo | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
