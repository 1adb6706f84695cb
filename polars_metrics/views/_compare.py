"""The report's comparison view: ``pm.report(pm.compare(...), path)``.

For every run compared with the baseline: the deltas of ``cmp.deltas`` (precision, recall, f1,
tp, fp, fn) with their paired-bootstrap interval and p-value at every cell, per feature, micro
and macro — ``[((slice * (nf + 2) + entry) * n_cells + cell]``, entry nf = micro, nf + 1 =
macro — and the flip table (``cmp.flips``: ground truths found by both / the baseline only /
the run only / neither) counted per (cell, slice, feature), ``[((cell * n_slices + slice) *
(nf + 1) + f) * 4 + category]`` with f = nf for all features, at the cells ``at`` (a flip table
costs two matchings' lookups per cell, so it follows the analysis cells).
"""
from __future__ import annotations

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics.compare.comparison import CATEGORY, Comparison
from polars_metrics.compare.deltas import DELTA, METRIC, RUN
from polars_metrics.views._pack import Packer
from polars_metrics.views._payload import _CELL, _SLICE, Grid, _floats

CI_METRICS = (s.PRECISION, s.RECALL, s.F1, s.TP, s.FP, s.FN)
CI_COLUMNS = {"delta": DELTA, "lo": "ci_low", "hi": "ci_high", "p": "p_value"}


def _intervals(pack: Packer, cmp: Comparison, run: str, grid: Grid) -> dict:
    nf2, n = len(grid.features) + 2, grid.n_cells
    d = grid.with_ids(cmp.deltas.filter(pl.col(RUN) == run)).with_columns(
        pl.when(pl.col(s.AVERAGE) == "micro").then(len(grid.features))
        .when(pl.col(s.AVERAGE) == "macro").then(len(grid.features) + 1)
        .otherwise(grid.feature_codes(s.FEATURE, "_e")).alias("_e"))
    out = {}
    for m in CI_METRICS:
        part = d.filter(pl.col(METRIC).cast(pl.String) == m)
        flat = ((part[_SLICE] * nf2 + part["_e"]) * n + part[_CELL]).to_numpy()
        out[m] = {}
        for name, col in CI_COLUMNS.items():
            arr = np.full(grid.n_slices * nf2 * n, np.nan)
            arr[flat] = _floats(part[col])
            out[m][name] = pack.column(arr)
    return out


def _flips(pack: Packer, cmp: Comparison, run: str, grid: Grid, rows: pl.DataFrame,
           at: list[int]) -> dict:
    nf1, nt = len(grid.features) + 1, len(grid.t)
    counts = np.full(grid.n_cells * grid.n_slices * nf1 * 4, np.nan)
    computed = np.zeros(grid.n_cells)
    labels = None
    for cell in at:
        f = cmp.flips(grid.c[cell // nt], grid.t[cell % nt], run=run)
        labels = f[CATEGORY].dtype.categories.to_list()
        f = f.join(rows.select(*grid.keys, _SLICE), on=grid.keys, how="inner").with_columns(
            grid.feature_codes(s.FEATURE, "_f"),
            pl.col(CATEGORY).to_physical().cast(pl.Int64).alias("_k"))
        base = (cell * grid.n_slices + np.arange(grid.n_slices))[:, None] * nf1 + np.arange(nf1)
        counts[(base[..., None] * 4 + np.arange(4)).ravel()] = 0
        sl, ff, kk = f[_SLICE].to_numpy(), f["_f"].to_numpy(), f["_k"].to_numpy()
        for fe in (ff, np.full_like(ff, nf1 - 1)):  # per feature, then all features
            flat = ((cell * grid.n_slices + sl) * nf1 + fe) * 4 + kk
            np.add.at(counts, flat, 1)
        computed[cell] = 1
    return {"counts": pack.column(counts), "computed": pack.column(computed),
            "labels": labels or []}


def build(pack: Packer, cmp: Comparison, grid: Grid, rows: pl.DataFrame, at: list[int]) -> dict:
    """{run name: {"ci": ..., "flips": ...}} for every run but the baseline."""
    return {"baseline": cmp.baseline, "level": cmp.level, "n_resamples": cmp.n_resamples,
            "runs": {run: {"ci": _intervals(pack, cmp, run, grid),
                           "flips": _flips(pack, cmp, run, grid, rows, at)}
                     for run in cmp.runs if run != cmp.baseline}}
