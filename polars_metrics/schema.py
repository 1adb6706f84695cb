"""Canonical column names and dtypes of every frame, and threshold normalization.

Code elsewhere refers to these constants; it never retypes a column name.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
import polars as pl

from polars_metrics.errors import ThresholdError

# --- input tables -----------------------------------------------------------------------------
DATA_ROW = "data_row"
FEATURE = "feature"
KIND = "kind"
ID = "id"
CONFIDENCE = "confidence"
BBOX = "bbox"
POLYGON = "polygon"
MASK = "mask"
POINT = "point"
LINE = "line"
START = "start"
END = "end"
MESSAGE_ID = "message_id"
QUESTION = "question"
ANSWER = "answer"
ANSWERS = "answers"
ANSWER_CONFIDENCES = "answer_confidences"  # checklist: per-option confidence, aligned with answers
CONFIDENCE_GIVEN = "_confidence_given"  # prepared predictions: False where none was given (1.0 read)
IS_CROWD = "is_crowd"
AREA = "area"
IGNORE = "ignore"

GROUND_TRUTH = "ground_truth"
PREDICTIONS = "predictions"

BBOX_DTYPE = pl.Array(pl.Float64, 4)
POINT_DTYPE = pl.Array(pl.Float64, 2)
# polygon: rings of (x, y), shell first then holes; a ring may or may not repeat its first vertex
POLYGON_DTYPE = pl.List(pl.List(pl.Array(pl.Float64, 2)))
# multipolygons: the same ``polygon`` column one level deeper (a list of polygons). A table uses
# one of the two dtypes; a repair that splits a polygon promotes the column to this one.
MULTIPOLYGON_DTYPE = pl.List(POLYGON_DTYPE)
LINE_DTYPE = pl.List(pl.Array(pl.Float64, 2))
# COCO RLE, uncompressed: column-major run lengths starting with a run of 0s, summing to h * w
MASK_DTYPE = pl.Struct({"height": pl.Int64, "width": pl.Int64, "counts": pl.List(pl.UInt32)})
# span: character offsets, half-open [start, end), optional message_id (one scalar a row,
# e.g. an integer or a String; null = none)
SPAN_DTYPE = pl.Int64

# the kind names and the ``kind`` Enum are derived from the registry: ``kinds.KIND_NAMES``,
# ``kinds.KIND_DTYPE``

# --- output frames ----------------------------------------------------------------------------
CONFIDENCE_THRESHOLD = "confidence_threshold"
IOU_THRESHOLD = "iou_threshold"
TP, FP, TN, FN = "tp", "fp", "tn", "fn"
PRECISION, RECALL, F1, IOU = "precision", "recall", "f1", "iou"
AVERAGE = "average"
GT_FEATURE = "gt_feature"
PD_FEATURE = "pd_feature"
GT_ID = "gt_id"
PD_ID = "pd_id"
COUNT = "count"
REASON = "reason"
TABLE = "table"
COLUMN = "column"
ROW = "row"
N_GT = "n_gt"
N_PD = "n_pd"

COUNT_COLUMNS = (TP, FP, TN, FN)
RATIO_COLUMNS = (PRECISION, RECALL, F1, IOU)
METRIC_COLUMNS = COUNT_COLUMNS + RATIO_COLUMNS

# Thresholds are rounded to this many decimals so np.linspace artefacts never flip a decision.
THRESHOLD_DECIMALS = 9
DEFAULT_THRESHOLDS = tuple(round(i / 10, 1) for i in range(11))


def normalize_thresholds(values: Sequence[float] | np.ndarray | None, name: str) -> np.ndarray:
    """Validate a threshold list once: finite, in [0, 1], rounded to 1e-9, de-duplicated, sorted.

    >>> normalize_thresholds([0.5, np.linspace(0, 1, 11)[3], 0.5], "iou_thresholds").tolist()
    [0.3, 0.5]
    """
    if values is None:
        return np.asarray(DEFAULT_THRESHOLDS, dtype=np.float64)
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ThresholdError(f"{name} is empty: give at least one threshold in [0, 1].")
    bad = ~np.isfinite(arr) | (arr < 0) | (arr > 1)
    if bad.any():
        raise ThresholdError(
            f"{name} must be finite numbers in [0, 1]; found {arr[bad].tolist()} "
            f"(at positions {np.flatnonzero(bad).tolist()})."
        )
    return np.unique(np.round(arr, THRESHOLD_DECIMALS))

# error decomposition (polars_metrics.analysis.errors)
ERROR_TYPE = "error_type"
SIDE = "side"
DELTA_AP = "delta_ap"


def natural_order(names: Iterable[str]) -> list[str]:
    """Feature names in the order a reader expects: runs of digits compare as numbers
    ("class_2" before "class_10"), names without digits alphabetically; equal keys ("a01",
    "a1") fall back to string order, so the order is total and stable.

    >>> natural_order(["class_10", "class_2", "class_1", "car", "a01", "a1", "10", "9b"])
    ['9b', '10', 'a01', 'a1', 'car', 'class_1', 'class_2', 'class_10']
    """
    def key(name: str) -> tuple:
        parts = re.split(r"(\d+)", name)  # text, digits, text, ...: a str or an int per place
        return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), name

    return sorted(names, key=key)
