"""The report's data: an Evaluation's frames as compact, JSON-ready lookup tables.

Everything the page shows is looked up here (the browser never recomputes a metric): the cube
and the micro/macro rows per (slice, feature) as arrays over the cells (index ``ci * nt + ti``),
the confusion cells per slice and cell, capped examples per confusion cell with the cells they
are shown at, the data rows' metrics at the gallery cells, and histograms of the per-data-row
metrics per slice and per class.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics.result import outcomes as oc

RATIOS = (s.PRECISION, s.RECALL, s.F1, s.IOU)
BINS = 10
ALL_SLICES = "all"
_CELL, _SLICE, _ROW, _G, _P, _RANK = "_cell", "_slice", "_row", "_g", "_p", "_rank"


def key_labels(frame: pl.DataFrame, keys) -> pl.Series:
    """One string per data row: its key, composite keys joined by " / " (the ``data-key``)."""
    return frame.select(pl.concat_str([pl.col(k).cast(pl.String).fill_null("null") for k in keys],
                                      separator=" / ")).to_series()


def _values(series: pl.Series) -> list:
    return [None if v is None or (isinstance(v, float) and np.isnan(v)) else v
            for v in series.to_list()]


class Grid:
    """Shared indices of one report: thresholds, features, slices and data rows."""

    def __init__(self, ev, features: list[str], slices: list[tuple]) -> None:
        self.c = ev.confidence_thresholds.tolist()
        self.t = ev.iou_thresholds.tolist()
        self.features = features
        self.by = list(ev.by)
        self.slices = slices
        self.keys = list(ev.keys)

    def cell_index(self) -> pl.DataFrame:
        nc, nt = len(self.c), len(self.t)
        return pl.DataFrame({
            s.CONFIDENCE_THRESHOLD: np.repeat(self.c, nt), s.IOU_THRESHOLD: np.tile(self.t, nc),
            _CELL: np.arange(nc * nt, dtype=np.int64)})

    def slice_index(self) -> pl.DataFrame | None:
        if not self.by:
            return None
        return pl.DataFrame([list(v) for v in self.slices], schema=self.by, orient="row"
                            ).with_row_index(_SLICE).with_columns(pl.col(_SLICE).cast(pl.Int64))

    def with_ids(self, frame: pl.DataFrame, slices: bool = True) -> pl.DataFrame:
        """Add ``_cell`` and ``_slice`` (0 without ``by``) to a frame with the cell columns."""
        frame = frame.join(self.cell_index(), on=[s.CONFIDENCE_THRESHOLD, s.IOU_THRESHOLD])
        if not slices:
            return frame
        si = self.slice_index()
        if si is None:
            return frame.with_columns(pl.lit(0, dtype=pl.Int64).alias(_SLICE))
        return frame.join(si, on=self.by, how="left", nulls_equal=True)

    def as_json(self) -> dict:
        return {"c": self.c, "t": self.t, "features": self.features, "by": self.by,
                "slices": [" / ".join("null" if v is None else str(v) for v in sl)
                           for sl in self.slices] or [ALL_SLICES]}


def _series_table(frame: pl.DataFrame, label: str, columns, n_cells: int) -> dict:
    """{"<slice>,<label>": {metric: [value per cell]}} from rows carrying _slice and _cell."""
    out: dict = {}
    for (si, lab), part in frame.sort(_CELL).group_by(_SLICE, label, maintain_order=True):
        entry = {}
        for col in columns:
            arr = [None] * n_cells
            for cell, v in zip(part[_CELL].to_list(), _values(part[col]), strict=True):
                arr[cell] = v
            entry[col] = arr
        out[f"{si},{lab}"] = entry
    return out


def cube_tables(ev, grid: Grid) -> dict:
    n = len(grid.c) * len(grid.t)
    f_index = pl.DataFrame({s.FEATURE: grid.features, "_f": np.arange(len(grid.features))})
    cube = grid.with_ids(ev.cube).join(f_index, on=s.FEATURE)
    overall = grid.with_ids(ev.overall)
    return {"cube": _series_table(cube, "_f", s.METRIC_COLUMNS, n),
            "overall": _series_table(overall, s.AVERAGE, s.METRIC_COLUMNS, n)}


def confusion_table(ev, grid: Grid) -> dict:
    """{"<slice>,<cell>": [g, p, count, g, p, count, ...]} with None = len(features)."""
    none = len(grid.features)
    idx = {f: i for i, f in enumerate(grid.features)}
    conf = grid.with_ids(ev.confusion).with_columns(
        pl.col(s.GT_FEATURE).replace_strict(idx, default=none, return_dtype=pl.Int64).alias(_G),
        pl.col(s.PD_FEATURE).replace_strict(idx, default=none, return_dtype=pl.Int64).alias(_P))
    out: dict = {}
    for (si, cell), part in conf.group_by(_SLICE, _CELL, maintain_order=True):
        flat = np.column_stack([part[_G].to_numpy(), part[_P].to_numpy(),
                                part[s.COUNT].to_numpy()]).ravel()
        out[f"{si},{cell}"] = flat.tolist()
    return out


def _cell_examples(ev, grid: Grid, rows: pl.DataFrame, cap: int) -> pl.DataFrame:
    """The top ``cap`` examples of every (slice, cell, gt, pd) cell, by a stable rank."""
    none = len(grid.features)
    idx = {f: i for i, f in enumerate(grid.features)}
    keys = grid.keys
    parts = []
    for ci, c in enumerate(grid.c):
        for ti, t in enumerate(grid.t):
            o = oc.outcomes(ev, c, t)
            gt = o.filter(pl.col(oc.SIDE) == oc.GT_SIDE).select(
                *keys, pl.col(s.FEATURE).alias(_G), pl.col(oc.PARTNER_FEATURE).alias(_P),
                pl.col(s.ID).alias(s.GT_ID), pl.col(oc.PARTNER_ID).alias(s.PD_ID), s.IOU)
            fp = o.filter((pl.col(oc.SIDE) == oc.PD_SIDE) & (pl.col(oc.OUTCOME) == oc.FP)).select(
                *keys, pl.lit(None, dtype=pl.String).alias(_G), pl.col(s.FEATURE).alias(_P),
                pl.lit(None, dtype=o.schema[s.ID]).alias(s.GT_ID), pl.col(s.ID).alias(s.PD_ID),
                s.IOU)
            parts.append(pl.concat([gt, fp]).with_columns(
                pl.lit(ci * len(grid.t) + ti, dtype=pl.Int64).alias(_CELL)))
    ex = pl.concat(parts).join(rows, on=keys, how="inner")
    ex = ex.with_columns(
        pl.col(_G).replace_strict(idx, default=none, return_dtype=pl.Int64),
        pl.col(_P).replace_strict(idx, default=none, return_dtype=pl.Int64),
        pl.struct(_ROW, s.GT_ID, s.PD_ID).hash(7).alias(_RANK))
    ex = ex.sort(_RANK).group_by(_SLICE, _CELL, _G, _P, maintain_order=True).head(cap)
    return ex


def examples_table(ev, grid: Grid, rows: pl.DataFrame, cap: int) -> dict:
    """Per "<g>,<p>": rows [data row, gt id, pd id, confidence, iou, cells], ``cells`` the
    hex bitmask of the cell indices the example is listed at (one of the top ``cap`` there)."""
    ex = _cell_examples(ev, grid, rows, cap)
    _, pd_ann = ev.detail.annotations
    conf = pd_ann.select(*grid.keys, pl.col(s.ID).alias(s.PD_ID), s.CONFIDENCE)
    if conf.schema[s.PD_ID] != ex.schema[s.PD_ID]:
        conf = conf.with_columns(pl.col(s.PD_ID).cast(ex.schema[s.PD_ID]))
    ex = ex.join(conf, on=[*grid.keys, s.PD_ID], how="left")
    grouped = ex.group_by(_G, _P, _ROW, s.GT_ID, s.PD_ID, maintain_order=True).agg(
        pl.col(s.CONFIDENCE).first(), pl.col(s.IOU).first(), pl.col(_CELL), pl.col(_RANK).first()
    ).sort(_RANK)
    out: dict = {}
    for row in grouped.iter_rows(named=True):
        mask = 0
        for cell in row[_CELL]:
            mask |= 1 << cell
        iou = row[s.IOU]
        out.setdefault(f"{row[_G]},{row[_P]}", []).append([
            row[_ROW], row[s.GT_ID], row[s.PD_ID], row[s.CONFIDENCE],
            None if iou is None or np.isnan(iou) else iou, format(mask, "x")])
    return out


def data_row_index(ev, grid: Grid) -> pl.DataFrame:
    """(*keys, _row, _slice, _key): the counted data rows, in ev.data_rows order."""
    rows = ev.data_rows.select(*grid.keys, *grid.by).unique(subset=grid.keys, maintain_order=True)
    rows = rows.with_row_index(_ROW).with_columns(pl.col(_ROW).cast(pl.Int64))
    si = grid.slice_index()
    rows = rows.join(si, on=grid.by, how="left", nulls_equal=True) if si is not None else \
        rows.with_columns(pl.lit(0, dtype=pl.Int64).alias(_SLICE))
    return rows.with_columns(key_labels(rows, grid.keys).alias("_key")).sort(_ROW)


def gallery_table(ev, grid: Grid, rows: pl.DataFrame, cells: list[int]) -> dict:
    """Data rows (key, slice, features present) and their metrics at the gallery cells."""
    idx = {f: i for i, f in enumerate(grid.features)}
    gt_ann, pd_ann = ev.detail.annotations
    present = pl.concat([gt_ann.select(*grid.keys, s.FEATURE), pd_ann.select(*grid.keys, s.FEATURE)])
    present = present.unique().join(rows.select(*grid.keys, _ROW), on=grid.keys).group_by(_ROW).agg(
        pl.col(s.FEATURE).replace_strict(idx, default=None, return_dtype=pl.Int64).sort())
    feats = dict(zip(present[_ROW].to_list(), present[s.FEATURE].to_list(), strict=True))
    dr = grid.with_ids(ev.data_rows, False).join(rows.select(*grid.keys, _ROW), on=grid.keys)
    metrics: dict = {}
    for cell in cells:
        part = dr.filter(pl.col(_CELL) == cell).sort(_ROW)
        metrics[str(cell)] = {m: _values(part[m]) for m in s.METRIC_COLUMNS}
        metrics[str(cell)]["_row"] = part[_ROW].to_list()
    return {"keys": rows["_key"].to_list(), "slice": rows[_SLICE].to_list(),
            "features": [feats.get(i, []) for i in range(rows.height)], "cells": cells,
            "metrics": metrics}


def histograms(ev, grid: Grid, rows: pl.DataFrame, cells: list[int]) -> dict:
    """Per gallery cell: counts of data rows per ratio-metric bin ([0, 0.1), ..., [0.9, 1]),
    per slice ("s<i>") and per class ("f<i>", over ev.data_row_features)."""
    edges = np.linspace(0, 1, BINS + 1)

    def hist(values: pl.Series) -> list[int]:
        v = values.drop_nulls().drop_nans().to_numpy() if values.dtype.is_float() else \
            values.drop_nulls().to_numpy()
        return np.histogram(v, bins=edges)[0].tolist()

    dr = grid.with_ids(ev.data_rows, False).join(rows.select(*grid.keys, _SLICE), on=grid.keys)
    drf = grid.with_ids(ev.data_row_features, False)
    out: dict = {}
    for cell in cells:
        entry: dict = {}
        part = dr.filter(pl.col(_CELL) == cell)
        for (si,), g in part.group_by(_SLICE, maintain_order=True):
            entry[f"s{si}"] = {m: hist(g[m]) for m in RATIOS}
        fpart = drf.filter(pl.col(_CELL) == cell)
        for (f,), g in fpart.group_by(s.FEATURE, maintain_order=True):
            if f in grid.features:
                entry[f"f{grid.features.index(f)}"] = {m: hist(g[m]) for m in RATIOS}
        out[str(cell)] = entry
    return out
