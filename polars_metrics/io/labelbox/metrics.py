"""Evaluation → Labelbox custom-metric NDJSON (``ev.to_labelbox_metrics(path)``).

One line per (data row [, feature], metric), in the import format the platform takes for model
run custom metrics (``labelbox.data.serialization.ndjson.metric``)::

    {"dataRow": {"id": "dr1"}, "featureName": "car", "metricName": "pm_50pct_iou",
     "aggregation": "CONFUSION_MATRIX", "metricValue": {"0.0": [3, 1, 0, 2], "0.5": [2, 0, 0, 3]}}
    {"dataRow": {"id": "dr1"}, "metricName": "pm_iou", "aggregation": "ARITHMETIC_MEAN",
     "metricValue": {"0.0": 0.61, "0.5": 0.58}}

- ``ConfusionMatrixMetric`` lines carry ``[TP, FP, TN, FN]`` per confidence threshold, one
  metric per IoU threshold named like the SDK's own (``"50pct_iou"``), prefixed.
- ``ScalarMetric`` lines carry the IoU metric (and optionally precision / recall / f1) per
  confidence threshold, ``ARITHMETIC_MEAN``. Names the SDK reserves for scalars
  (``iou``, ``precision``, ``recall``, ``f1``, ``*_count``) are never written: a reserved name
  becomes ``custom_<name>`` (the SDK's own ``miou_metric`` is called ``custom_iou``).
- Confidence-keyed values need 2 to 15 keys (the SDK's limit); with a single confidence
  threshold plain values are written. Undefined values (0/0) are left out of a dict; a line with
  fewer than 2 defined keys is not written (counted in a warning).
- Data-row level lines have no ``featureName``; feature level lines have one.
- TN is written as 0 where the evaluation leaves it undefined (object kinds).
"""
from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics.errors import PolarsMetricsWarning

RESERVED_SCALAR_NAMES = ("true_positive_count", "false_positive_count", "true_negative_count",
                         "false_negative_count", "precision", "recall", "f1", "iou")
MIN_KEYS, MAX_KEYS = 2, 15
LEVELS = ("data_row", "feature")
SCALARS = (s.IOU, s.PRECISION, s.RECALL, s.F1)
KEY_TYPES = {"id": "id", "global_key": "globalKey", "globalKey": "globalKey"}

__all__ = ["metric_name", "write_labelbox_metrics"]


def metric_name(base: str, prefix: str = "pm_", scalar: bool = True) -> str:
    """``prefix + base``, never a name the SDK reserves for scalar metrics.

    >>> metric_name("iou"), metric_name("iou", prefix=""), metric_name("50pct_iou", "")
    ('pm_iou', 'custom_iou', '50pct_iou')
    """
    name = f"{prefix}{base}"
    if scalar and name.lower().strip() in RESERVED_SCALAR_NAMES:
        name = f"custom_{name.strip()}"
    return name


def _iou_name(t: float, prefix: str) -> str:
    pct = round(t * 100, 6)
    text = f"{int(pct)}" if float(pct).is_integer() else f"{pct:g}"
    return metric_name(f"{text}pct_iou", prefix, scalar=False)


def _key_text(c: float) -> str:
    return repr(float(round(c, 9)))


def write_labelbox_metrics(ev, path: str | os.PathLike | None = None, *,
                           level: str | Sequence[str] = ("data_row", "feature"),
                           confidences: Sequence[float] | None = None,
                           ious: Sequence[float] | None = None,
                           scalars: Sequence[str] = (s.IOU,),
                           name_prefix: str = "pm_", data_row_key: str = "id") -> str | None:
    """Write an :class:`~polars_metrics.Evaluation` as Labelbox custom-metric NDJSON.

    Parameters
    ----------
    ev : the evaluation (``pm.evaluate``); its data-row key must be one column.
    path : file to write; ``None`` returns the NDJSON text instead.
    level : "data_row" and / or "feature" (data-row lines average / sum over features as
        ``ev.data_rows``; feature lines come from ``ev.data_row_features``).
    confidences : the confidence thresholds to key values by (each in the evaluation's grid;
        2 to 15 of them). Default: the evaluation's own thresholds when there are at most 15;
        with exactly one threshold, plain (unkeyed) values are written.
    ious : IoU thresholds; one confusion-matrix metric each (default 0.5 when in the grid,
        else every IoU threshold of the grid).
    scalars : scalar metrics to write, among "iou", "precision", "recall", "f1".
    name_prefix : prefix of every metric name (default "pm_", e.g. "pm_50pct_iou", "pm_iou").
    data_row_key : "id" (default) or "global_key": what the ``data_row`` values are.

    Returns
    -------
    The NDJSON text when ``path`` is None, else None.

    Examples
    --------
    >>> import polars as pl, polars_metrics as pm
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"data_row": ["a"], "feature": ["cat"], "bbox": [[0.0, 0, 10, 10]]},
    ...                   schema_overrides={"bbox": box})
    >>> pd = gt.with_columns(pl.lit(0.9).alias("confidence"))
    >>> ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0, 0.5], iou_thresholds=[0.5])
    >>> print(ev.to_labelbox_metrics(None, level="data_row"))
    {"dataRow":{"id":"a"},"metricName":"pm_50pct_iou","aggregation":"CONFUSION_MATRIX","metricValue":{"0.0":[1,0,0,0],"0.5":[1,0,0,0]}}
    {"dataRow":{"id":"a"},"metricName":"pm_iou","aggregation":"ARITHMETIC_MEAN","metricValue":{"0.0":1.0,"0.5":1.0}}
    """
    levels = (level,) if isinstance(level, str) else tuple(level)
    for lv in levels:
        if lv not in LEVELS:
            raise ValueError(f"level must be 'data_row' and/or 'feature', got {lv!r}.")
    for sc in scalars:
        if sc not in SCALARS:
            raise ValueError(f"scalars must be among {SCALARS}, got {sc!r}.")
    if data_row_key not in KEY_TYPES:
        raise ValueError(f"data_row_key must be 'id' or 'global_key', got {data_row_key!r}.")
    if len(ev.keys) != 1:
        raise ValueError(f"custom metrics key on one data row; this evaluation's key is {ev.keys}.")
    conf = _confidences(ev, confidences)
    iou_thr = _ious(ev, ious)
    key = ev.keys[0]
    parts, skipped = [], 0
    for lv in levels:
        frame = ev.data_rows if lv == "data_row" else ev.data_row_features
        frame = frame.rename({key: "_dr"}) if key != "_dr" else frame
        feature = lv == "feature"
        cm = _confusion_lines(frame, conf, iou_thr, name_prefix, feature)
        sc, n_skip = _scalar_lines(frame, conf, iou_thr[0], scalars, name_prefix, feature)
        skipped += n_skip
        parts.append(pl.concat([cm, sc]))
    lines = pl.concat(parts) if parts else pl.DataFrame(schema={"_dr": pl.String, "_line": pl.String})
    text = _finish(lines, KEY_TYPES[data_row_key])
    if skipped:
        warnings.warn(f"{skipped} scalar metric line(s) not written: fewer than {MIN_KEYS} "
                      "confidence thresholds with a defined value.", PolarsMetricsWarning,
                      stacklevel=2)
    if path is None:
        return text
    Path(path).write_text(text + ("\n" if text else ""), encoding="utf-8")
    return None


def _confidences(ev, confidences) -> np.ndarray:
    grid = np.asarray(ev.confidence_thresholds, dtype=np.float64)
    if confidences is None:
        if grid.size > MAX_KEYS:
            raise ValueError(f"the evaluation has {grid.size} confidence thresholds; custom metrics "
                             f"take {MIN_KEYS} to {MAX_KEYS}: pass confidences=[...] (a subset).")
        return grid
    chosen = np.unique([ev._threshold(c, s.CONFIDENCE_THRESHOLD) for c in confidences])
    if not (chosen.size == 1 or MIN_KEYS <= chosen.size <= MAX_KEYS):
        raise ValueError(f"confidences: give 1 (plain values) or {MIN_KEYS} to {MAX_KEYS} "
                         f"thresholds, got {chosen.size}.")
    return chosen


def _ious(ev, ious) -> np.ndarray:
    grid = np.asarray(ev.iou_thresholds, dtype=np.float64)
    if ious is None:
        hit = np.flatnonzero(np.abs(grid - 0.5) <= 1e-9)
        return grid[hit] if hit.size else grid
    return np.unique([ev._threshold(t, s.IOU_THRESHOLD) for t in ious])


def _json_strings(col: pl.Expr, values: pl.Series) -> pl.Expr:
    uniques = values.cast(pl.String).unique().drop_nulls().to_list()
    mapping = {u: json.dumps(u, ensure_ascii=False) for u in uniques}
    return col.cast(pl.String).replace_strict(mapping, default=None, return_dtype=pl.String)


def _head(frame: pl.DataFrame, feature: bool, name: str, aggregation: str) -> list:
    parts = [pl.lit('{"dataRow":{"KEY":'), pl.col("_dr_json"), pl.lit("},")]
    if feature:
        parts += [pl.lit('"featureName":'), pl.col("_feature_json"), pl.lit(",")]
    parts += [pl.lit(f'"metricName":{json.dumps(name)},"aggregation":"{aggregation}","metricValue":')]
    return parts


def _with_json_keys(frame: pl.DataFrame, feature: bool) -> pl.DataFrame:
    cols = [_json_strings(pl.col("_dr"), frame["_dr"]).alias("_dr_json")]
    if feature:
        cols.append(_json_strings(pl.col(s.FEATURE), frame[s.FEATURE]).alias("_feature_json"))
    return frame.with_columns(cols)


def _confusion_lines(frame, conf, iou_thr, prefix, feature) -> pl.DataFrame:
    keys = ["_dr"] + ([s.FEATURE] if feature else [])
    sel = frame.filter(pl.col(s.CONFIDENCE_THRESHOLD).is_in(conf.tolist())
                       & pl.col(s.IOU_THRESHOLD).is_in(iou_thr.tolist()))
    sel = _with_json_keys(sel, feature)
    value = pl.concat_str([pl.lit("["), pl.col(s.TP).cast(pl.String), pl.lit(","),
                           pl.col(s.FP).cast(pl.String), pl.lit(","),
                           pl.col(s.TN).fill_null(0).cast(pl.String), pl.lit(","),
                           pl.col(s.FN).cast(pl.String), pl.lit("]")])
    keyed = conf.size > 1
    piece = (pl.concat_str([pl.lit('"'), _conf_text(conf), pl.lit('":'), value]) if keyed else value)
    out = []
    for t in iou_thr:
        name = _iou_name(float(t), prefix)
        one = (sel.filter(pl.col(s.IOU_THRESHOLD) == t).sort([*keys, s.CONFIDENCE_THRESHOLD])
               .group_by([*keys, "_dr_json"] + (["_feature_json"] if feature else []),
                         maintain_order=True)
               .agg(piece.str.join(",").alias("_value")))
        body = pl.concat_str(pl.lit("{"), pl.col("_value"), pl.lit("}")) if keyed else pl.col("_value")
        out.append(one.select("_dr", pl.concat_str([*_head(one, feature, name, "CONFUSION_MATRIX"),
                                                    body, pl.lit("}")]).alias("_line")))
    return pl.concat(out) if out else pl.DataFrame(schema={"_dr": pl.String, "_line": pl.String})


def _conf_text(conf: np.ndarray) -> pl.Expr:
    mapping = {float(c): _key_text(float(c)) for c in conf}
    return pl.col(s.CONFIDENCE_THRESHOLD).replace_strict(mapping, return_dtype=pl.String)


def _scalar_lines(frame, conf, t, scalars, prefix, feature) -> tuple[pl.DataFrame, int]:
    keys = ["_dr"] + ([s.FEATURE] if feature else [])
    sel = frame.filter(pl.col(s.CONFIDENCE_THRESHOLD).is_in(conf.tolist())
                       & (pl.col(s.IOU_THRESHOLD) == t))
    sel = _with_json_keys(sel, feature).sort([*keys, s.CONFIDENCE_THRESHOLD])
    keyed = conf.size > 1
    out, skipped = [], 0
    for metric in scalars:
        v = pl.col(metric)
        text = v.cast(pl.String)
        piece = pl.concat_str([pl.lit('"'), _conf_text(conf), pl.lit('":'), text]) if keyed else text
        one = (sel.group_by([*keys, "_dr_json"] + (["_feature_json"] if feature else []),
                            maintain_order=True)
               .agg(piece.drop_nulls().str.join(",").alias("_value"),
                    v.is_not_null().sum().alias("_n")))
        need = MIN_KEYS if keyed else 1
        skipped += int(one.filter((pl.col("_n") < need) & (pl.col("_n") > 0)).height) if keyed else 0
        one = one.filter(pl.col("_n") >= need)
        body = pl.concat_str(pl.lit("{"), pl.col("_value"), pl.lit("}")) if keyed else pl.col("_value")
        name = metric_name(metric, prefix)
        out.append(one.select("_dr", pl.concat_str([*_head(one, feature, name, "ARITHMETIC_MEAN"),
                                                    body, pl.lit("}")]).alias("_line")))
    frame_out = pl.concat(out) if out else pl.DataFrame(schema={"_dr": pl.String, "_line": pl.String})
    return frame_out, skipped


def _finish(lines: pl.DataFrame, key_name: str) -> str:
    if lines.height == 0:
        return ""
    text = lines["_line"].str.replace('{"dataRow":{"KEY":', f'{{"dataRow":{{"{key_name}":',
                                      literal=True)
    return "\n".join(text.to_list())
