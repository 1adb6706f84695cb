"""The summary of one evaluation at one (confidence, IoU) cell: printed, or as JSON (``--json``).

:func:`summary_tables` computes it once; :func:`format_summary` prints it and
:func:`summary_json` gives the same content as plain JSON values.
"""
from __future__ import annotations

import dataclasses
import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics.result import Evaluation

WIDTH = 100  # the printed summary fits a 100-column terminal


def _config() -> pl.Config:
    return pl.Config(
        tbl_width_chars=WIDTH, tbl_rows=40, tbl_cols=12, fmt_str_lengths=40, float_precision=3,
        tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True,
        tbl_formatting="ASCII_MARKDOWN", tbl_cell_numeric_alignment="RIGHT",
        thousands_separator=False,
    )


def nearest(grid: np.ndarray, value: float) -> float:
    return float(grid[int(np.argmin(np.abs(np.asarray(grid) - value)))])


def _metric_columns(frame: pl.DataFrame) -> list[str]:
    """tp, fp, (tn when it is defined anywhere), fn, precision, recall, f1, iou."""
    return [c for c in s.METRIC_COLUMNS if c != s.TN or frame[s.TN].null_count() < frame.height]


def _cell(frame: pl.DataFrame, c: float, t: float) -> pl.DataFrame:
    return frame.filter((pl.col(s.CONFIDENCE_THRESHOLD) == c) & (pl.col(s.IOU_THRESHOLD) == t))


def count(n: int) -> str:
    return f"{n:,}"


def wrap(text: str) -> str:
    return textwrap.fill(text, WIDTH, subsequent_indent="  ", break_long_words=False,
                         break_on_hyphens=False)


def wrap_items(head: str, items: Sequence[str], sep: str = ", ") -> str:
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


def summary_tables(ev: Evaluation, *, confidence: float = 0.5, iou: float = 0.5,
                   worst_rows: int = 5) -> dict[str, Any]:
    """Everything the summary shows, at the grid cell nearest (confidence, iou)."""
    c = nearest(ev.confidence_thresholds, confidence)
    t = nearest(ev.iou_thresholds, iou)
    by, keys = list(ev.by), list(ev.keys)
    n_cells = max(1, len(ev.confidence_thresholds) * len(ev.iou_thresholds))
    cube = _cell(ev.cube, c, t)
    cols = _metric_columns(cube) if cube.height else list(s.METRIC_COLUMNS)
    features = cube.sort([*by, s.F1, s.FEATURE], nulls_last=True).select(*by, s.FEATURE, *cols)
    overall = _cell(ev.overall, c, t).select(*by, s.AVERAGE, *cols)
    rows = _cell(ev.data_rows, c, t).with_columns((pl.col(s.FP) + pl.col(s.FN)).alias("_errors"))
    worst = (rows.sort([s.F1, "_errors", *keys], descending=[False, True] + [False] * len(keys),
                       nulls_last=True).head(worst_rows).select(*keys, *by, *cols))
    conf = (_cell(ev.confusion, c, t).group_by(s.GT_FEATURE, s.PD_FEATURE)
            .agg(pl.col(s.COUNT).sum()))
    mixed = (conf.filter(pl.col(s.GT_FEATURE).is_not_null() & pl.col(s.PD_FEATURE).is_not_null()
                         & (pl.col(s.GT_FEATURE) != pl.col(s.PD_FEATURE)))
             .sort([s.COUNT, s.GT_FEATURE, s.PD_FEATURE], descending=[True, False, False]))
    best = ev.best_thresholds(iou=t).filter(pl.col(s.FEATURE).is_null())
    reasons = ev.excluded.group_by(s.REASON).len().sort(["len", s.REASON],
                                                         descending=[True, False])
    rejected = (ev.rejects.group_by(s.REASON).len().sort(["len", s.REASON],
                                                          descending=[True, False])
                if ev.rejects.height else pl.DataFrame({s.REASON: [], "len": []}))
    return {
        "confidence": c, "iou": t, "requested": (confidence, iou),
        "evaluated": ev.data_rows.height // n_cells, "excluded": reasons,
        "rejected": rejected, "features": features, "overall": overall, "worst_rows": worst,
        "confusions": mixed,
        "missed": int(conf.filter(pl.col(s.PD_FEATURE).is_null())[s.COUNT].sum()),
        "spurious": int(conf.filter(pl.col(s.GT_FEATURE).is_null())[s.COUNT].sum()),
        "best": best.select(*by, s.CONFIDENCE_THRESHOLD, s.PRECISION, s.RECALL, s.F1),
    }


def format_summary(ev: Evaluation, *, confidence: float = 0.5, iou: float = 0.5,
                   worst_features: int = 10, worst_rows: int = 5, confusions: int = 10) -> str:
    """The readable summary the CLI prints: one (confidence, IoU) cell of the evaluation.

    ``confidence`` and ``iou`` snap to the nearest thresholds of the evaluation's grid.

    Examples
    --------
    >>> import polars_metrics as pm
    >>> ev = pm.evaluate(*pm.synthetic.detections(n_images=5, n_classes=2, seed=0))
    >>> print(format_summary(ev).splitlines()[0])
    Data rows: 5 evaluated, 0 excluded
    """
    tb = summary_tables(ev, confidence=confidence, iou=iou, worst_rows=worst_rows)
    c, t = tb["confidence"], tb["iou"]
    out: list[str] = []
    with _config():
        why = ", ".join(f"{r}: {count(n)}" for r, n in tb["excluded"].iter_rows())
        n_rej = int(tb["rejected"]["len"].sum()) if tb["rejected"].height else 0
        out.append(wrap(
            f"Data rows: {count(tb['evaluated'])} evaluated, {count(ev.excluded.height)} excluded"
            + (f" ({why}; listed in excluded.parquet)" if why else "")
            + (f"; {count(n_rej)} input rows rejected (rejects.parquet)" if n_rej else "")))
        prof = ev.profile
        counts = (f"a prediction counts at confidence >= {c:g}" if prof.use_confidence
                  else "confidence is ignored (every prediction counts)")
        op = ">" if prof.iou_strict else ">="
        out.append(wrap(f"Profile {prof.name!r}: {counts}; a pair matches at IoU {op} {t:g}"
                        + ("" if prof.class_aware else ", regardless of class (class-agnostic)")
                        + "."))
        snapped = [f"{name} {want:g} -> {got:g}" for name, want, got in
                   (("confidence", confidence, c), ("IoU", iou, t)) if abs(want - got) > 1e-9]
        if snapped:
            out.append(f"(nearest thresholds in the grid: {', '.join(snapped)})")

        feats = tb["features"]
        n_feat = feats[s.FEATURE].n_unique()
        title = (f"{min(worst_features, n_feat)} worst of {n_feat} features by F1"
                 if n_feat > worst_features else f"All {n_feat} features, by F1")
        worst = feats.sort([s.F1, s.FEATURE], nulls_last=True).head(worst_features)
        out += ["", f"{title} (confidence {c:g}, IoU {t:g}):", str(worst)]
        out += ["", "All features (micro: from summed counts; macro: mean over features):",
                str(tb["overall"])]
        out += ["", f"{tb['worst_rows'].height} worst data rows by F1 (mean over the row's "
                "features):", str(tb["worst_rows"])]
        mixed = tb["confusions"]
        out += ["", f"Largest confusions (ground truth matched by a prediction of another class; "
                f"{count(mixed[s.COUNT].sum())} in all):",
                str(mixed.head(confusions)) if mixed.height else "  none",
                f"Unmatched: {count(tb['missed'])} ground truths [gt, None], "
                f"{count(tb['spurious'])} predictions [None, pred]."]
        out += ["", f"Best-F1 confidence threshold (micro, IoU {t:g}):",
                str(tb["best"]) if tb["best"].height
                else "  undefined (no F1 is defined at this IoU threshold)"]
        coco = getattr(ev, "format_coco_summary", None)
        if coco is not None:
            out += ["", "COCO summary (pycocotools' 12 numbers):", coco()]
    return "\n".join(out)


def format_timings(times: Mapping[str, float], engine: Mapping[str, float]) -> str:
    inner = ", ".join(f"{k} {v:.2f}" for k, v in engine.items())
    parts = [f"{k} {v:.2f}" + (f" ({inner})" if k == "evaluate" and inner else "")
             for k, v in times.items()]
    return wrap_items("Wall time (s):", [*parts, f"total {sum(times.values()):.2f}"], sep=" |")


# --- JSON ----------------------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    """A JSON value: NaN / inf -> null, numpy scalars -> Python, tuples -> lists."""
    if isinstance(value, float | np.floating):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return _plain(frame.to_dicts())


def summary_json(ev: Evaluation, *, confidence: float = 0.5, iou: float = 0.5,
                 worst_rows: int = 5, times: Mapping[str, float] | None = None,
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The summary as JSON values: the printed summary's content, every feature included.

    Examples
    --------
    >>> import json, polars_metrics as pm
    >>> ev = pm.evaluate(*pm.synthetic.detections(n_images=5, n_classes=2, seed=0))
    >>> data = json.loads(json.dumps(summary_json(ev)))
    >>> [row["average"] for row in data["overall"]], data["data_rows"]["evaluated"]
    (['macro', 'micro'], 5)
    """
    tb = summary_tables(ev, confidence=confidence, iou=iou, worst_rows=worst_rows)
    profile = dataclasses.asdict(ev.profile)
    out: dict[str, Any] = {
        "profile": profile,
        "grid": {"confidence_thresholds": list(ev.confidence_thresholds),
                 "iou_thresholds": list(ev.iou_thresholds)},
        "cell": {"confidence": tb["confidence"], "iou": tb["iou"],
                 "requested": {"confidence": tb["requested"][0], "iou": tb["requested"][1]}},
        "keys": list(ev.keys), "by": list(ev.by), "features_evaluated": list(ev.features),
        "data_rows": {
            "evaluated": tb["evaluated"], "excluded": ev.excluded.height,
            "excluded_by_reason": dict(tb["excluded"].iter_rows()),
            "rejected_input_rows": ev.rejects.height,
            "rejected_by_reason": dict(tb["rejected"].iter_rows()),
        },
        "features": _records(tb["features"]),
        "overall": _records(tb["overall"]),
        "worst_data_rows": _records(tb["worst_rows"]),
        "confusions": _records(tb["confusions"]),
        "unmatched": {"ground_truths": tb["missed"], "predictions": tb["spurious"]},
        "best_f1_confidence": _records(tb["best"]),
        "timings": {"stages": dict(times or {}), "engine": dict(ev.timings),
                    "total": sum((times or {}).values())},
    }
    coco = getattr(ev, "coco_summary", None)
    if isinstance(coco, pl.DataFrame):
        out["coco_summary"] = _records(coco)
    out.update(extra or {})
    return _plain(out)
