"""``pm.report`` / ``ev.report``: one self-contained HTML file, no server, works offline.

The page is plain HTML, CSS and JavaScript written for it (``_report.js``, inlined) over one
JSON payload (``_payload.py``) whose large arrays are typed arrays in one gzip'd block
(``_pack.py``, inflated by the browser's ``DecompressionStream``): every number shown is looked
up from the evaluation's frames at the sliders' cell, so a slider move is array lookups and DOM
updates. Nothing is fetched: no script, style, font or image has a URL; thumbnails are
``data:`` URIs. Plain JavaScript rather than Vega-Lite: the views are tables and a few small SVG
charts whose every number must carry its exact frame value (``data-value``) for the tests, and
the page carries ~30 kB of code instead of ~900 kB of inlined Vega; ``ev.plot`` gives the Altair
charts.
"""
from __future__ import annotations

import html
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import polars as pl

from polars_metrics import schema as s
from polars_metrics.compare.comparison import Comparison
from polars_metrics.result.coco import CocoEvaluation
from polars_metrics.result.evaluation import Evaluation
from polars_metrics.views import _analysis, _compare, _media, _pack, _payload


def _read(name: str) -> str:
    return resources.files("polars_metrics.views").joinpath(name).read_text(encoding="utf-8")


def _runs(ev_or_runs) -> dict[str, Evaluation]:
    if isinstance(ev_or_runs, Comparison):  # the baseline first: every delta is run - baseline
        order = [ev_or_runs.baseline] + [r for r in ev_or_runs.runs if r != ev_or_runs.baseline]
        return {r: ev_or_runs.evaluations[r] for r in order}
    if isinstance(ev_or_runs, Evaluation):
        return {"run": ev_or_runs}
    if isinstance(ev_or_runs, Mapping) and ev_or_runs and all(
            isinstance(v, Evaluation) for v in ev_or_runs.values()):
        return {str(k): v for k, v in ev_or_runs.items()}
    raise TypeError("report() takes an Evaluation, a non-empty dict {name: Evaluation} or a "
                    "Comparison (pm.compare).")


def _check_same_grid(runs: dict[str, Evaluation]) -> Evaluation:
    first = next(iter(runs.values()))
    for name, ev in runs.items():
        same = (ev.keys == first.keys and ev.by == first.by
                and ev.confidence_thresholds.tolist() == first.confidence_thresholds.tolist()
                and ev.iou_thresholds.tolist() == first.iou_thresholds.tolist())
        if not same:
            raise ValueError(f"Run {name!r} differs from the first run in its keys, by columns or "
                             "thresholds; runs compared in one report share all of them.")
    return first


def build_payload(runs: dict[str, Evaluation], *, title: str, max_examples_per_cell: int,
                  confidence: float, iou: float, media=None, ground_truth=None, predictions=None,
                  max_media_bytes: int = 3_000_000, class_distributions="auto", text=None,
                  analysis=True, calibration_bins: int = 10, queue_size: int = 50,
                  comparison: Comparison | None = None) -> dict:
    """The report's JSON data (see ``_payload``), its large arrays packed in ``bin``."""
    first = _check_same_grid(runs)
    features = s.natural_order(set().union(*(ev.features for ev in runs.values())))
    slices = sorted({tuple(r) for ev in runs.values()
                     for r in ev.data_rows.select(ev.by).unique().rows()},
                    key=lambda r: tuple("" if v is None else str(v) for v in r)) if first.by else []
    grid = _payload.Grid(first, features, slices)
    c0 = first._threshold(confidence, s.CONFIDENCE_THRESHOLD)
    t0 = first._threshold(iou, s.IOU_THRESHOLD)
    start = grid.c.index(c0) * len(grid.t) + grid.t.index(t0)
    rows = pl.concat([_payload.data_row_index(ev, grid).select(*grid.keys, *grid.by, "_slice")
                      for ev in runs.values()]).unique(subset=grid.keys, maintain_order=True)
    rows = rows.with_row_index("_row").with_columns(
        pl.col("_row").cast(pl.Int64), _payload.key_labels(rows, grid.keys).alias("_key"))
    pack, masks, out_runs, used = _pack.Packer(), {}, [], set()
    for name, ev in runs.items():
        per_class = not isinstance(ev, CocoEvaluation) and (class_distributions is True or (
            class_distributions == "auto"
            and _class_rows(ev, grid) <= _payload.CLASS_HIST_MAX_ROWS))
        examples = _payload.examples_table(pack, ev, grid, rows.select(*grid.keys, "_row", "_slice"),
                                           max_examples_per_cell, masks)
        used |= examples.pop("_used")
        out_runs.append({
            "name": name, "examples": examples, **_payload.cube_tables(pack, ev, grid),
            "confusion": _payload.confusion_table(pack, ev, grid),
            "gallery": _payload.gallery_table(pack, ev, grid, rows),
            "hist": _payload.histograms(pack, ev, grid, rows, per_class),
            "excluded": ev.excluded.height, "profile": ev.profile.name,
            "analysis": _analysis.build(pack, ev, grid, rows, start=start, mode=analysis,
                                        bins=calibration_bins, k=queue_size)
            if analysis else None})
    thumbs, note = {}, None
    if media is not None:
        paths = _media.resolve(media, rows, grid.keys, ground_truth)
        thumbs, note = _media.thumbnails(first, rows, paths, ground_truth=ground_truth,
                                         predictions=predictions, confidence=c0, iou=t0,
                                         max_bytes=max_media_bytes)
    cmp = None
    if comparison is not None:
        cmp = _compare.build(pack, comparison, grid, rows,
                             _analysis.cells(grid, start, analysis or True))
    return {"title": title, "grid": grid.as_json(), "cmp": cmp, "start": start, "cap": max_examples_per_cell,
            "runs": out_runs, "masks": [list(m) for m in masks],
            "keys": rows["_key"].to_list(), "slice": rows["_slice"].to_list(),
            "features": _payload.row_features(first, grid, rows),
            "thumbs": {str(k): v for k, v in thumbs.items()}, "media": note,
            "text": _media.texts(text, rows, grid.keys, used, ground_truth, predictions),
            "rows": rows.height, "bin": pack.finish()}


def _check_options(analysis, bins, queue_size) -> None:
    if not (analysis is True or analysis is False or (isinstance(analysis, str)
                                                      and analysis == "all")):
        raise ValueError(f"report(analysis={analysis!r}): use True (error types at the start "
                         "cell's row and column, queues at the start cell), 'all' (every cell) "
                         "or False (no analysis sections).")
    for name, v in (("calibration_bins", bins), ("queue_size", queue_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"report({name}={v!r}): give a positive integer.")


def _class_rows(ev: Evaluation, grid) -> int:
    """Rows of ev.data_row_features: (data row, feature on it) pairs x cells."""
    return _payload.annotation_features(ev, grid.keys).unique().height * grid.n_cells


def report(ev_or_runs, path: str | Path, *, title: str | None = None, media=None,
           ground_truth: pl.DataFrame | None = None, predictions: pl.DataFrame | None = None,
           max_examples_per_cell: int = 50, confidence: float = 0.5, iou: float = 0.5,
           max_media_bytes: int = 3_000_000, class_distributions="auto", text=None,
           analysis=True, calibration_bins: int = 10, queue_size: int = 50) -> Path:
    """Write one self-contained HTML report of an evaluation, or of several runs of one ground
    truth (``{"run A": ev_a, "run B": ev_b}``: side-by-side values, deltas, confusion
    difference, per-data-row deltas), and return its path. Given a
    :class:`~polars_metrics.Comparison` (``pm.report(pm.compare(gt, {"A": pd_a, "B": pd_b}),
    path)``) its runs are reported (baseline first) and every delta carries its paired-bootstrap
    interval and p-value (``cmp.deltas``), with the flip table per feature (``cmp.flips``; at
    the same cells as the label-error queues, see ``analysis``).

    Parameters
    ----------
    media : a dict {data-row key: image path}, a column of ``ground_truth`` holding paths, a
        directory of ``<key>.<png|jpg|jpeg|webp>`` or a pattern like ``"img/{data_row}.jpg"``.
        Thumbnails are embedded (at most ``max_media_bytes`` in total, stated in the page).
    ground_truth, predictions : the input tables, for drawing their geometry on the thumbnails
        and highlighting their spans in the text (the evaluation keeps none).
    text : the data rows' text for NER examples: a dict {data-row key: text} or a column of
        ``ground_truth``; by default its ``text`` column when it has one. Embedded for the data
        rows with examples (at most 2,000,000 characters); examples then show the text around
        the gold and predicted spans, highlighted and coloured by outcome.
    max_examples_per_cell : examples listed per confusion cell (the exact total is shown).
    confidence, iou : the sliders' initial cell.
    class_distributions : embed histograms of the per-class data-row metrics
        (``ev.data_row_features``) at every cell: ``True``, ``False`` or ``"auto"`` (when that
        frame has at most 5,000,000 rows; it is built for them). The per-slice distributions,
        the gallery (every data row at every cell) and the examples are always embedded.
    analysis : the sections "why the model fails" (``ev.errors`` per feature, ΔAP under
        ``profile="coco"`` with ``errors=True``), calibration (``ev.calibration`` /
        ``ev.calibration_error`` at every IoU threshold) and the label-error queues
        (``ev.suspects`` / ``ev.uncertain``, the top ``queue_size`` per cell and slice, with
        thumbnails when ``media`` is given). ``True``: error types at the cells one slider
        move from the start cell (``confidence`` row and ``iou`` column) and the queues at the
        start cell (all of it at every cell took 34 s at 5,000 images, the report without it
        4.6 s); ``"all"``: everything at every cell; ``False``: none of these sections. A section the
        evaluation cannot give (no confidences, COCO without ``errors=True``) states why.
    calibration_bins : confidence bins of the reliability diagram (uniform).
    queue_size : rows of the suspects and uncertain tables per cell and slice.

    Examples
    --------
    >>> import tempfile, polars_metrics as pm
    >>> gt, pd = pm.synthetic.detections(n_images=10, n_classes=3, seed=1)
    >>> path = pm.evaluate(gt, pd, by="split").report(tempfile.mkdtemp() + "/report.html")
    >>> text = path.read_text()
    >>> 'data-testid="confidence-threshold"' in text, "src=\\"http" in text
    (True, False)
    """
    runs = _runs(ev_or_runs)
    _check_options(analysis, calibration_bins, queue_size)
    comparison = ev_or_runs if isinstance(ev_or_runs, Comparison) else None
    title = title or ("polars_metrics report" if len(runs) == 1 else
                      "polars_metrics report: " + " vs ".join(runs))
    data = build_payload(runs, title=title, max_examples_per_cell=max_examples_per_cell,
                         confidence=confidence, iou=iou, media=media,
                         ground_truth=ground_truth, predictions=predictions,
                         max_media_bytes=max_media_bytes,
                         class_distributions=class_distributions, text=text,
                         analysis=analysis, calibration_bins=calibration_bins,
                         queue_size=queue_size, comparison=comparison)
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    page = (_read("_report.html")
            .replace("/*STYLE*/", _read("_report.css"))
            .replace("/*SCRIPT*/", _read("_report.js"))
            .replace("__TITLE__", html.escape(title))
            .replace("/*DATA*/null", payload))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
