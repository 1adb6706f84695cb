"""The command's inputs: which format a file is (from its content, or ``--format``), and reading it.

Formats: ``parquet`` (a file, a directory of files or a glob), ``coco`` (a COCO instances JSON
as ground truth; a COCO results JSON as predictions; read together by ``pm.read_coco``),
``labelbox-ndjson`` (the import NDJSON, ``pm.read_labelbox_ndjson``) and ``labelbox-export``
(``pm.read_labelbox_export``: ground truth, data rows and, for a model-run export, predictions).
"""
from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from polars_metrics.cli.errors import CliError
from polars_metrics.cli.progress import Progress, Stage, TrackedFile
from polars_metrics.errors import PolarsMetricsError, did_you_mean

FORMATS = ("parquet", "coco", "labelbox-ndjson", "labelbox-export")
COCO_RESULTS = "coco-results"  # detected only: the predictions side of "coco"
_SNIFF_BYTES = 1 << 20  # the first record must start within the first MiB
_CHUNK = 8 << 20


@dataclass
class Inputs:
    """The frames the command evaluates, and what the readers set aside."""

    ground_truth: pl.DataFrame
    predictions: pl.DataFrame
    data_rows: pl.DataFrame | None = None
    formats: dict[str, str] = field(default_factory=dict)  # table -> format read
    files: dict[str, str] = field(default_factory=dict)  # table -> file name
    rejects: list[pl.DataFrame] = field(default_factory=list)  # the readers' (--on-invalid drop)
    excluded: pl.DataFrame | None = None  # data rows of an export that are not labeled
    notes: list[str] = field(default_factory=list)

    def reader_rejects(self) -> pl.DataFrame | None:
        frames = [f for f in self.rejects if f.height]
        return pl.concat(frames, how="diagonal_relaxed") if frames else None


# --- detection ----------------------------------------------------------------------------------

def check_format(name: str, flag: str = "--format") -> str:
    if name not in FORMATS:
        raise CliError(f"{flag} {name}: not a format; formats are {', '.join(FORMATS)}."
                       + did_you_mean(name, FORMATS))
    return name


def _files(path: str, flag: str) -> list[Path]:
    """The files a path names: itself, a directory's files, or a glob's matches."""
    if glob.has_magic(path):
        found = sorted(Path(p) for p in glob.glob(path, recursive=True) if Path(p).is_file())
        if not found:
            raise CliError(f"{flag} {path}: the pattern matches no file.")
        return found
    p = Path(path)
    if p.is_dir():
        found = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        if not found:
            raise CliError(f"{flag} {path}: the directory holds no file.")
        return found
    if not p.exists():
        raise CliError(f"{flag} {path}: no such file or directory.")
    return [p]


def _first_value(head: str, start: int) -> Any:
    """The JSON value starting at ``head[start]``, or None when it does not end within ``head``."""
    try:
        return json.JSONDecoder().raw_decode(head, start)[0]
    except json.JSONDecodeError:
        return None


def _record_format(rec: Any) -> str | None:
    if not isinstance(rec, dict):
        return None
    if "images" in rec or "annotations" in rec or "categories" in rec:
        return "coco"
    if "data_row" in rec and ("projects" in rec or "experiments" in rec
                              or "media_attributes" in rec):
        return "labelbox-export"
    if "dataRow" in rec or "uuid" in rec:
        return "labelbox-ndjson"
    if "image_id" in rec:
        return COCO_RESULTS
    return None


def _keys_format(head: str) -> str | None:
    """Detection from the key names when the first record is too long to parse here."""
    keys = set(re.findall(r'"(\w+)"\s*:', head))
    for fmt, wanted in (("coco", {"images", "annotations", "categories"}),
                        ("labelbox-export", {"projects", "experiments"}),
                        ("labelbox-ndjson", {"dataRow"}), (COCO_RESULTS, {"image_id"})):
        if keys & wanted:
            return fmt
    return None


def sniff(path: Path) -> str | None:
    """The format of one file from its first bytes / first record; None when unknown.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.json"
    >>> _ = p.write_text('[{"image_id": 1, "category_id": 2, "bbox": [0, 0, 1, 1], "score": 1}]')
    >>> sniff(p)
    'coco-results'
    >>> _ = p.write_text('{"dataRow": {"id": "a"}, "name": "car", "bbox": {}}\\n')
    >>> sniff(p)
    'labelbox-ndjson'
    """
    with open(path, "rb") as fh:
        raw = fh.read(_SNIFF_BYTES)
    if raw[:4] == b"PAR1":
        return "parquet"
    head = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
    start = len(head) - len(head.lstrip())
    if start >= len(head) or head[start] not in "[{":
        return None
    if head[start] == "[":
        inner = start + 1 + len(head[start + 1:]) - len(head[start + 1:].lstrip())
        if inner < len(head) and head[inner] == "]":
            return COCO_RESULTS  # an empty results list
        value = _first_value(head, inner) if inner < len(head) else None
    else:
        value = _first_value(head, start)
    found = _record_format(value) if value is not None else None
    return found or _keys_format(head)


def detect(path: str, flag: str, forced: str | None) -> tuple[str, list[Path]]:
    """(format, files) of one input; ``forced`` is the --format value for it."""
    files = _files(path, flag)
    if forced is not None:
        if forced != "parquet" and len(files) > 1:
            raise CliError(f"{flag} {path}: {forced} input is one file; directories and globs "
                           "are read as Parquet.")
        return forced, files
    formats = {sniff(f) for f in files[:1]} if len(files) == 1 else {"parquet"}
    if len(files) > 1:
        not_parquet = [f for f in files if sniff(f) != "parquet"]
        if not_parquet:
            raise CliError(f"{flag} {path}: directories and globs are read as Parquet, and "
                           f"{not_parquet[0]} is not a Parquet file.")
    fmt = formats.pop()
    if fmt is None:
        raise CliError(f"{flag} {path}: cannot tell its format from its content (Parquet, COCO "
                       "JSON, Labelbox NDJSON or export); name it with --format.")
    return fmt, files


# --- reading ------------------------------------------------------------------------------------

def _guard(flag: str, path: str, fmt: str):
    """Raw exceptions of a reader become one CliError naming the flag, file and format."""
    class _Guard:
        def __enter__(self):
            return self

        def __exit__(self, exc_type, exc, tb):
            if exc is None or isinstance(exc, CliError | KeyboardInterrupt):
                return False
            if isinstance(exc, PolarsMetricsError):
                raise CliError(f"{flag} {path}: {exc}") from None
            if isinstance(exc, OSError) and exc.strerror:
                raise CliError(f"{flag} {path}: {exc.strerror}.") from None
            raise CliError(f"{flag} {path}: cannot read it as {fmt}: "
                           f"{type(exc).__name__}: {exc}") from None
    return _Guard()


def _load_json(path: Path, stage: Stage, flag: str) -> Any:
    size = path.stat().st_size
    stage.total(size)
    chunks = []
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            chunks.append(chunk)
            stage.advance(len(chunk))
    try:
        return json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CliError(f"{flag} {path}: not valid JSON ({exc}).") from None


def _read_parquet(path: str, flag: str) -> pl.DataFrame:
    try:
        return pl.scan_parquet(path).collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise CliError(f"{flag} {path}: cannot read it as Parquet: "
                       f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def _split(result, drop: bool, inputs: Inputs) -> pl.DataFrame:
    """A reader's frame; with --on-invalid drop, its rejects go to ``inputs.rejects``."""
    if drop and isinstance(result, tuple):
        frame, *rest = result
        inputs.rejects.append(rest[-1])
        return frame
    return result


@dataclass
class ReadOptions:
    """The reader options of the command line."""

    on_invalid: str = "raise"
    project: str | None = None
    model_run: str | None = None
    label_selection: str = "first"
    mask_root: str | None = None


def _export(path: str, stage: Stage, opts: ReadOptions, role: str):
    from polars_metrics.io.labelbox import read_labelbox_export

    stage.total(os.path.getsize(path))
    with open(path, encoding="utf-8") as fh:
        return read_labelbox_export(TrackedFile(fh, stage), project=opts.project,
                                    model_run=opts.model_run, role=role,
                                    label_selection=opts.label_selection,
                                    mask_root=opts.mask_root, on_invalid=opts.on_invalid)


def _ndjson(path: str, stage: Stage, opts: ReadOptions, role: str, key_map, inputs: Inputs):
    from polars_metrics.io.labelbox import read_labelbox_ndjson

    stage.total(os.path.getsize(path))
    with open(path, encoding="utf-8") as fh:
        out = read_labelbox_ndjson(TrackedFile(fh, stage), role=role, global_key_map=key_map,
                                   mask_root=opts.mask_root, on_invalid=opts.on_invalid)
    return _split(out, opts.on_invalid == "drop", inputs)


def _take_export(exp, inputs: Inputs) -> pl.DataFrame | None:
    inputs.rejects.append(exp.rejects)
    if exp.excluded.height:
        inputs.excluded = exp.excluded
    rows = exp.data_rows
    if "labeled" in rows.columns:  # data rows without a label are exp.excluded, not evaluated
        rows = rows.filter(pl.col("labeled"))
    return rows


def _formats(forced: list[str] | None) -> tuple[str | None, str | None]:
    if not forced:
        return None, None
    if len(forced) > 2:
        raise CliError("--format takes one format (both inputs) or two (ground truth, then "
                       f"predictions); got {len(forced)}.")
    names = [check_format(f) for f in forced]
    return names[0], names[-1]


def _check_pairing(gt_fmt: str, pd_fmt: str | None, gt_path: str, pd_path: str | None) -> None:
    if gt_fmt == COCO_RESULTS:
        raise CliError(f"--ground-truth {gt_path} is a COCO results file (a list of detections): "
                       "pass it as --predictions, and the COCO instances JSON (images, "
                       "annotations, categories) as --ground-truth.")
    if pd_fmt == "coco":
        raise CliError(f"--predictions {pd_path} is a COCO instances file (images, annotations); "
                       "COCO predictions are a results file: a JSON list of {image_id, "
                       "category_id, bbox, score}.")
    if pd_fmt == COCO_RESULTS and gt_fmt != "coco":
        raise CliError(f"--predictions {pd_path} is a COCO results file: its category ids are "
                       "named by the COCO instances JSON, so --ground-truth must be one "
                       f"(it is {gt_fmt}).")
    if gt_fmt == "coco" and pd_fmt not in (COCO_RESULTS, "parquet", None):
        raise CliError(f"--ground-truth {gt_path} is COCO JSON: --predictions must be a COCO "
                       f"results JSON or Parquet, not {pd_fmt}.")


def _read_coco(gt_path: str, pd_path: str | None, pd_fmt: str | None, opts: ReadOptions,
               progress: Progress, inputs: Inputs) -> None:
    from polars_metrics.io.coco import read_coco

    with progress.stage("read ground truth", gt_path) as st, _guard("--ground-truth", gt_path,
                                                                     "COCO JSON"):
        gt_obj = _load_json(Path(gt_path), st, "--ground-truth")
    results = None
    if pd_path is not None:
        with progress.stage("read predictions", pd_path) as st, _guard("--predictions", pd_path,
                                                                       pd_fmt):
            results = (_load_json(Path(pd_path), st, "--predictions") if pd_fmt == COCO_RESULTS
                       else _read_parquet(pd_path, "--predictions"))
    with progress.stage("convert COCO"), _guard("--ground-truth", gt_path, "COCO JSON"):
        out = read_coco(gt_obj, results, on_invalid=opts.on_invalid)
    if opts.on_invalid == "drop":
        inputs.rejects.append(out[2])
    inputs.ground_truth, inputs.predictions = out[0], out[1]


def _read_side(table: str, path: str, fmt: str, opts: ReadOptions, progress: Progress,
               inputs: Inputs, key_map=None):
    """Read one side that is not COCO; returns the export when the file is one."""
    flag = "--" + table.replace("_", "-")
    role = table
    with progress.stage(f"read {table.replace('_', ' ')}", path) as st, _guard(flag, path, fmt):
        if fmt == "parquet":
            return _read_parquet(path, flag), None
        if fmt == "labelbox-ndjson":
            return _ndjson(path, st, opts, role, key_map, inputs), None
        exp = _export(path, st, opts, role)
    rows = _take_export(exp, inputs)
    if table == "ground_truth":
        inputs.data_rows = rows
    side = exp.ground_truth if role == "ground_truth" else exp.predictions
    return side, exp


def read_data_rows(path: str, opts: ReadOptions, progress: Progress,
                   inputs: Inputs) -> pl.DataFrame:
    fmt, _ = detect(path, "--data-rows", None)
    with progress.stage("read data rows", path) as st, _guard("--data-rows", path, fmt):
        if fmt == "parquet":
            return _read_parquet(path, "--data-rows")
        if fmt == "labelbox-export":
            exp = _export(path, st, ReadOptions(project=opts.project, model_run=opts.model_run,
                                                label_selection=opts.label_selection,
                                                on_invalid="drop"), "ground_truth")
            return exp.data_rows
    raise CliError(f"--data-rows {path}: is {fmt}; data rows are read from Parquet or from a "
                   "Labelbox export.")


def read_inputs(gt_path: str, pd_path: str | None, *, formats: list[str] | None = None,
                data_rows: str | None = None, opts: ReadOptions | None = None,
                progress: Progress | None = None) -> Inputs:
    """Detect (or take from ``formats``) each input's format and read the frames.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "gt.json").write_text(json.dumps({
    ...     "images": [{"id": 1, "height": 10, "width": 10}],
    ...     "categories": [{"id": 3, "name": "cat"}],
    ...     "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [0, 0, 2, 2]}]}))
    >>> _ = (d / "res.json").write_text(json.dumps(
    ...     [{"image_id": 1, "category_id": 3, "bbox": [0, 0, 2, 2], "score": 0.5}]))
    >>> got = read_inputs(str(d / "gt.json"), str(d / "res.json"))
    >>> got.formats, got.predictions.select("data_row", "feature", "confidence").rows()
    ({'ground_truth': 'coco', 'predictions': 'coco-results'}, [(1, 'cat', 0.5)])
    """
    opts = opts or ReadOptions()
    progress = progress or Progress(quiet=True)
    forced_gt, forced_pd = _formats(formats)
    gt_fmt, _ = detect(gt_path, "--ground-truth", forced_gt)
    pd_fmt = None
    if pd_path is not None:
        pd_fmt, _ = detect(pd_path, "--predictions", forced_pd)
        if forced_pd == "coco":
            pd_fmt = COCO_RESULTS
    _check_pairing(gt_fmt, pd_fmt, gt_path, pd_path)
    inputs = Inputs(pl.DataFrame(), pl.DataFrame(),
                    files={"ground_truth": gt_path, "predictions": pd_path or gt_path})
    inputs.formats = {"ground_truth": gt_fmt, "predictions": pd_fmt or gt_fmt}
    if gt_fmt == "coco":
        _read_coco(gt_path, pd_path, pd_fmt, opts, progress, inputs)
    else:
        inputs.ground_truth, exp = _read_side("ground_truth", gt_path, gt_fmt, opts, progress,
                                              inputs)
        if pd_path is None:
            if exp is None or exp.mode != "model_run":
                raise CliError("--predictions is required: only a Labelbox model-run export "
                               f"holds both sides, and --ground-truth {gt_path} is "
                               + ("a project export." if exp is not None else f"{gt_fmt}."))
            inputs.predictions = exp.predictions
        else:
            key_map = exp.data_rows if exp is not None else None
            inputs.predictions, _ = _read_side("predictions", pd_path, pd_fmt, opts, progress,
                                               inputs, key_map)
    if data_rows is not None:
        inputs.data_rows = read_data_rows(data_rows, opts, progress, inputs)
        inputs.files["data_rows"] = data_rows
    return inputs


def comparable_coco(inputs: Inputs, iou_type: str | None) -> str | None:
    """COCO input under a profile other than "coco": compare boxes (default) or masks.

    ``read_coco`` gives ground truths with a segmentation the ``mask`` kind and box-only
    detections the ``box`` kind, which never pair; the COCO engine picks the geometry by its
    ``iou_type``, the other profiles by the kind. Returns a note for the summary.
    """
    if inputs.formats.get("ground_truth") != "coco":
        return None
    geometry = iou_type or "bbox"
    kind = {"bbox": "box", "segm": "mask"}.get(geometry)
    if kind is None:
        raise CliError(f"--iou-type {geometry}: COCO input is compared by 'bbox' or 'segm'."
                       + did_you_mean(geometry, ("bbox", "segm")))
    frames = {}
    for table in ("ground_truth", "predictions"):
        frame = getattr(inputs, table)
        if kind == "mask" and "mask" not in frame.columns:
            raise CliError(f"--iou-type segm: the {table} ({inputs.files[table]}) has no "
                           "segmentation to compare; use --iou-type bbox.")
        frame = frame.with_columns(pl.lit(kind).alias("kind"))
        frames[table] = frame.drop("mask") if kind == "box" and "mask" in frame.columns else frame
    inputs.ground_truth, inputs.predictions = frames["ground_truth"], frames["predictions"]
    return (f"COCO input compared by {'box' if kind == 'box' else 'mask'} (--iou-type "
            f"{geometry}; --iou-type {'segm' if kind == 'box' else 'bbox'} compares "
            f"{'masks' if kind == 'box' else 'boxes'}).")
