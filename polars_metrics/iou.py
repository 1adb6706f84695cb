"""Pairwise IoU as frames, for every kind: the pairs stage exposed on its own."""
from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from polars_metrics import schema as s
from polars_metrics.pairs import build_pairs
from polars_metrics.prepare import prepare
from polars_metrics.profiles import get_profile


def pairwise_iou(ground_truth, predictions, *, data_row: str | Sequence[str] = s.DATA_ROW,
                 on_invalid: str = "raise", **switches) -> pl.DataFrame:
    """All (ground truth, prediction) pairs with IoU > 0 in the same data row.

    Returns (*data-row keys, gt_id, pd_id, iou), in data-row order, gt-major within a row.
    Every kind works; ``switches`` set the geometric profile fields (``buffer_radius``,
    ``point_iou``, ``crs``).

    Examples
    --------
    >>> import polars as pl, polars_metrics as pm
    >>> gt = pl.DataFrame({"data_row": ["a", "a"], "feature": ["cat", "dog"],
    ...                    "bbox": [[0.0, 0.0, 2.0, 2.0], [10.0, 10.0, 12.0, 12.0]]})
    >>> pd = pl.DataFrame({"data_row": ["a"], "feature": ["cat"], "bbox": [[1.0, 0.0, 3.0, 2.0]]})
    >>> pm.pairwise_iou(gt, pd)
    shape: (1, 4)
    ┌──────────┬───────┬───────┬──────────┐
    │ data_row ┆ gt_id ┆ pd_id ┆ iou      │
    │ ---      ┆ ---   ┆ ---   ┆ ---      │
    │ str      ┆ i64   ┆ i64   ┆ f64      │
    ╞══════════╪═══════╪═══════╪══════════╡
    │ a        ┆ 0     ┆ 0     ┆ 0.333333 │
    └──────────┴───────┴───────┴──────────┘
    """
    keys = [data_row] if isinstance(data_row, str) else list(data_row)
    prep = prepare(ground_truth, predictions, keys=keys, by=[], data_rows=None,
                   profile=get_profile("labelbox", **{"rows": "all", **switches}),
                   conf_thr=s.normalize_thresholds(None, "confidence_thresholds"),
                   iou_thr=s.normalize_thresholds(None, "iou_thresholds"), on_invalid=on_invalid)
    return build_pairs(prep).frame(prep)
