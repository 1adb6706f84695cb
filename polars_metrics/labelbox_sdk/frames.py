"""The four output frames of ``pm.labelbox_sdk`` from the engine's per-feature counts.

Per (data row, feature): ``tp``, ``fp = n_pd − tp``, ``tn = 0``, ``fn = n_gt − tp`` and the
feature IoU; per data row: the counts summed and the IoUs averaged over its features. Data
rows without any feature give no row.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics.labelbox_sdk.engine import FeatureCounts


class SdkMetrics(NamedTuple):
    """All four SDK metrics from one pass (see :func:`polars_metrics.labelbox_sdk.metrics`),
    and the input rows rejected with ``on_invalid="drop"`` (empty otherwise).

    Examples
    --------
    >>> import polars_metrics as pm
    >>> gt = pl.DataFrame({"data_row": ["a"], "feature": ["car"], "bbox": [[0.0, 0, 10, 10]]},
    ...                   schema_overrides={"bbox": pl.Array(pl.Float64, 4)})
    >>> out = pm.labelbox_sdk.metrics(gt, gt)
    >>> out.confusion_matrix.rows(), out.miou.rows(), out.rejects.height
    ([('a', 1, 0, 0, 0)], [('a', 1.0)], 0)
    """

    feature_confusion_matrix: pl.DataFrame
    confusion_matrix: pl.DataFrame
    feature_miou: pl.DataFrame
    miou: pl.DataFrame
    rejects: pl.DataFrame


def sdk_metrics(counts: FeatureCounts, keys: list[str]) -> SdkMetrics:
    """The four frames (key columns first) and the rejects.

    Examples
    --------
    >>> from polars_metrics.labelbox_sdk.engine import run
    >>> from polars_metrics.labelbox_sdk.params import resolve
    >>> gt = pl.DataFrame({"data_row": ["a"], "kind": ["radio"], "question": ["q"],
    ...                    "answer": ["yes"]})
    >>> pd = gt.with_columns(pl.lit("no").alias("answer"))
    >>> c = run(gt, pd, iou=0.5, keys=["data_row"], on_invalid="raise", profile=resolve())
    >>> sdk_metrics(c, ["data_row"]).confusion_matrix.rows()
    [('a', 0, 1, 0, 1)]
    """
    prep, rf_off = counts.prep, counts.rf_off
    tp, fp, fn = counts.tp, counts.n_pd - counts.tp, counts.n_gt - counts.tp
    n_per_row = np.diff(rf_off)
    rf_row = np.repeat(np.arange(n_per_row.shape[0]), n_per_row)
    key_frame = prep.rows.select(keys)
    head = key_frame[rf_row]
    names = pl.Series(s.FEATURE, list(prep.features), dtype=pl.String).gather(counts.rf_feat)
    zeros = np.zeros(rf_row.shape[0], np.int64)
    fcm = pl.concat([head, pl.DataFrame([
        names, pl.Series(s.TP, tp), pl.Series(s.FP, fp), pl.Series(s.TN, zeros),
        pl.Series(s.FN, fn)])], how="horizontal")
    fmi = pl.concat([head, pl.DataFrame([names, pl.Series(s.IOU, counts.iou)])], how="horizontal")
    present = n_per_row > 0
    starts = rf_off[:-1][present]
    if rf_row.size:
        sums = np.add.reduceat(np.stack([tp, fp, zeros, fn], axis=1), starts, axis=0)
        iou_sum = np.add.reduceat(counts.iou, starts)
    else:
        sums, iou_sum = np.zeros((0, 4), np.int64), np.zeros(0)
    rows = key_frame.filter(pl.Series(present))
    cm = pl.concat([rows, pl.DataFrame([pl.Series(c, sums[:, i].astype(np.int64))
                                        for i, c in enumerate(s.COUNT_COLUMNS)])],
                   how="horizontal")
    mi = pl.concat([rows, pl.DataFrame([pl.Series(s.IOU, iou_sum / n_per_row[present])])],
                   how="horizontal")
    return SdkMetrics(fcm, cm, fmi, mi, prep.rejects)
