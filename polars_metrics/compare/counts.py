"""Per (data row, feature) count arrays of one evaluation: what the paired bootstrap re-sums.

Every count of the cube is a sum over data rows of per-(data row, feature) counts, so a
bootstrap resample (data rows drawn with replacement) is a weighted sum of those counts — no
re-matching. This module turns one evaluation into :class:`RowCounts` on a data-row universe
shared by all runs (so that one resample draws the same data rows for every run: paired).

* default / ``labelbox-sdk`` profiles: the arrays of ``ev.data_row_features``
  (:func:`polars_metrics.metrics.data_row_feature_arrays`), from the run's match arrays;
* ``coco``: per (image, category) from the run's true positives (``tables.matches``), counted
  false positives (``tables.false_positives``) and counted ground truths (``tables.gt_counted``),
  each a rectangle ``[0, npass) x [t, t+1)`` of the (confidence x IoU) grid as in ``coco/cube.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import polars as pl

from polars_metrics import _arrays
from polars_metrics import schema as s
from polars_metrics.errors import PolarsMetricsError
from polars_metrics.metrics import data_row_feature_arrays

ROW = "_row"      # index into the shared data-row universe
GROUP = "_group"  # index into the (by..., feature) groups


@dataclass(frozen=True)
class RowCounts:
    """One run's counts per (data row, feature) entry.

    row, group : (n,) universe row and (by..., feature) group of each entry.
    tp_entry, tp : the entries with any true positive and their true positives (m, C, T)
    (the others have none); kept : (n, C, Tk) counted predictions (Tk = 1 when the count
    does not depend on the IoU threshold, else T); ngt : (n,) counted ground truths.
    iou : (n, C) the IoU metric per entry (NaN where undefined), or None (COCO: not defined).
    """

    row: np.ndarray
    group: np.ndarray
    tp_entry: np.ndarray
    tp: np.ndarray
    kept: np.ndarray
    ngt: np.ndarray
    iou: np.ndarray | None
    n_groups: int = 0  # groups over all runs (this run may lack some)

    @cached_property
    def _order(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(self.group, kind="stable")
        return order, np.searchsorted(self.group[order], np.arange(self.n_groups + 1))

    @property
    def group_bounds(self) -> np.ndarray:
        """Offsets of each group's entries in the group-sorted arrays."""
        return self._order[1]

    @cached_property
    def sorted_row(self) -> np.ndarray:
        return self.row[self._order[0]]

    @cached_property
    def matrix(self) -> np.ndarray:
        """(n, K) float32 in group order: the integer counts kept (C * Tk), ngt and [IoU defined
        (C)], then [the IoU metric (C), 0 where undefined] (see :attr:`n_int`)."""
        n = self.row.shape[0]
        order = self._order[0]
        parts = [self.kept[order].reshape(n, -1), self.ngt[order][:, None]]
        if self.iou is not None:
            parts.append(~np.isnan(self.iou[order]))
            parts.append(self.iou_values)
        return np.concatenate([np.asarray(p, dtype=np.float32) for p in parts], axis=1)

    @property
    def n_int(self) -> int:
        """The integer columns of :attr:`matrix` (the rest are IoU values)."""
        C = self.kept.shape[1]
        return C * self.kept.shape[2] + 1 + (C if self.iou is not None else 0)

    @cached_property
    def iou_values(self) -> np.ndarray:
        """(n, C) float64 in group order: the IoU metric, 0 where undefined."""
        return np.nan_to_num(self.iou[self._order[0]], nan=0.0)

    @cached_property
    def _tp_order(self) -> tuple[np.ndarray, np.ndarray]:
        tp_group = self.group[self.tp_entry]
        order = np.argsort(tp_group, kind="stable")
        return order, np.searchsorted(tp_group[order], np.arange(self.n_groups + 1))

    @property
    def tp_bounds(self) -> np.ndarray:
        return self._tp_order[1]

    @cached_property
    def tp_row(self) -> np.ndarray:
        return self.row[self.tp_entry[self._tp_order[0]]]

    @cached_property
    def tp_matrix(self) -> np.ndarray:
        m = self.tp_entry.shape[0]
        return self.tp[self._tp_order[0]].reshape(m, -1).astype(np.float32)


@dataclass(frozen=True)
class RawCounts:
    """:class:`RowCounts` before the shared universe exists: keys instead of indices."""

    rows: pl.DataFrame      # (*keys, *by) of each entry
    features: pl.Series     # feature name of each entry
    tp_entry: np.ndarray
    tp: np.ndarray
    kept: np.ndarray
    ngt: np.ndarray
    iou: np.ndarray | None


def raw_counts(ev) -> RawCounts:
    """The per-(data row, feature) counts of one evaluation (COCO or pipeline)."""
    if getattr(ev, "tables", None) is not None:
        return _coco_counts(ev)
    prep, m = ev.detail.prep, ev.detail.matches_arrays
    if prep is None or m is None:
        raise PolarsMetricsError(
            "pm.compare needs each run's match arrays, which a streamed or merged evaluation "
            "does not keep; pass in-memory DataFrames (no out=, batch_size=, memory_limit=, "
            "engine='ray').")
    rf_row, rf, tp, kept, ngt, iou = data_row_feature_arrays(prep, m)
    names = pl.Series(s.FEATURE, list(prep.features), dtype=pl.String)
    return RawCounts(rows=prep.rows.select(*prep.keys, *prep.by)[rf_row],
                     features=names.gather(m.rf_feat), tp_entry=np.asarray(rf, np.int64), tp=tp,
                     kept=kept[:, :, None], ngt=ngt, iou=iou)


def _coco_counts(ev) -> RawCounts:
    """Per (image, category): tp, counted predictions (C, T) and counted ground truths."""
    conf_thr, iou_thr = ev.confidence_thresholds, ev.iou_thresholds
    C, T = conf_thr.shape[0], iou_thr.shape[0]
    tab = ev.tables
    t_index = {float(v): i for i, v in enumerate(iou_thr)}

    def events(frame: pl.DataFrame, feature: str) -> pl.DataFrame:
        return frame.select(
            s.DATA_ROW, pl.col(feature).cast(pl.String).alias(s.FEATURE),
            pl.col(s.IOU_THRESHOLD).replace_strict(t_index, return_dtype=pl.Int64).alias("_t"),
            pl.Series("_npass", np.searchsorted(conf_thr, frame[s.CONFIDENCE].to_numpy(),
                                                side="right"), dtype=pl.Int64))

    tp_ev = events(tab.matches, s.GT_FEATURE)
    fp_ev = events(tab.false_positives, s.PD_FEATURE)
    gts = tab.gt_counted.select(s.DATA_ROW, pl.col(s.FEATURE).cast(pl.String))
    entries = (pl.concat([tp_ev.select(s.DATA_ROW, s.FEATURE), fp_ev.select(s.DATA_ROW, s.FEATURE),
                          gts]).unique().sort(s.DATA_ROW, s.FEATURE).with_row_index("_rf"))
    n = entries.height

    def rf_of(frame: pl.DataFrame) -> np.ndarray:
        return frame.join(entries, on=[s.DATA_ROW, s.FEATURE], how="left",
                          maintain_order="left")["_rf"].to_numpy().astype(np.int64)

    def rectangles(rf: np.ndarray, frame: pl.DataFrame, k: int) -> np.ndarray:
        """(k, C, T): per entry, the events with npass > c at each t."""
        code = (rf * T + frame["_t"].to_numpy()) * (C + 1) + frame["_npass"].to_numpy()
        hist = np.bincount(code, minlength=k * T * (C + 1)).reshape(k, T, C + 1)
        return _arrays.count_above(hist).transpose(0, 2, 1).astype(np.int64)

    tp_entry, tp_inv = np.unique(rf_of(tp_ev), return_inverse=True)
    tp = rectangles(tp_inv.astype(np.int64), tp_ev, tp_entry.shape[0])
    kept = rectangles(rf_of(fp_ev), fp_ev, n)
    kept[tp_entry] += tp
    ngt = np.bincount(rf_of(gts), minlength=n).astype(np.int64)
    if T > 1 and (kept == kept[:, :, :1]).all():
        kept = np.ascontiguousarray(kept[:, :, :1])
    by_values = ev.data_rows.select(s.DATA_ROW, *ev.by).unique(s.DATA_ROW)
    rows = entries.select(s.DATA_ROW).join(by_values, on=s.DATA_ROW, how="left",
                                           maintain_order="left")
    return RawCounts(rows=rows, features=entries[s.FEATURE], tp_entry=tp_entry.astype(np.int64),
                     tp=tp, kept=kept, ngt=ngt, iou=None)


def shared_index(raws: list[RawCounts], keys: list[str], by: list[str]
                 ) -> tuple[pl.DataFrame, pl.DataFrame, list[RowCounts]]:
    """The data-row universe (*keys, *by, _slice) and groups (*by, feature, _slice) over all runs,
    and each run's counts indexed into them."""
    universe = (pl.concat([r.rows.select(*keys, *by) for r in raws]).unique(subset=keys)
                .sort(keys, nulls_last=True).with_row_index(ROW))
    slices = universe.select(by).unique().sort(by, nulls_last=True).with_row_index("_slice") \
        if by else pl.DataFrame({"_slice": [0]}, schema={"_slice": pl.UInt32})
    if by:
        universe = universe.join(slices, on=by, how="left", nulls_equal=True, maintain_order="left")
    else:
        universe = universe.with_columns(pl.lit(0, dtype=pl.UInt32).alias("_slice"))
    entries = []
    for r in raws:
        e = r.rows.select(keys).join(universe.select(*keys, ROW, "_slice"), on=keys, how="left",
                                     nulls_equal=True, maintain_order="left")
        entries.append(e.with_columns(r.features.alias(s.FEATURE)))
    groups = (pl.concat([e.select("_slice", s.FEATURE) for e in entries]).unique()
              .sort("_slice", s.FEATURE).with_row_index(GROUP))
    groups = groups.join(slices, on="_slice", how="left", maintain_order="left")
    out = []
    for r, e in zip(raws, entries, strict=True):
        g = e.join(groups.select("_slice", s.FEATURE, GROUP), on=["_slice", s.FEATURE], how="left",
                   maintain_order="left")
        out.append(RowCounts(row=g[ROW].to_numpy().astype(np.int64),
                             group=g[GROUP].to_numpy().astype(np.int64),
                             tp_entry=r.tp_entry, tp=r.tp, kept=r.kept, ngt=r.ngt, iou=r.iou,
                             n_groups=groups.height))
    return universe, groups.select(GROUP, "_slice", *by, s.FEATURE), out
