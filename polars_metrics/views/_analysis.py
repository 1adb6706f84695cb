"""The report's analysis sections (issue 14): error types, calibration and the label-error queues.

Each table is the frame of the public method at a cell — ``ev.errors(c, t)``,
``ev.calibration(t, bins)`` / ``ev.calibration_error(t, bins)``, ``ev.suspects(c, t)``,
``ev.uncertain(c, t)`` — turned into dense typed arrays (``_pack``), so the page looks every
number up. Cells are indexed ``ci * nt + ti`` as in ``_payload``; a frame the evaluation cannot
give (e.g. no confidences, ``profile="coco"`` without ``errors=True``) leaves its section empty
with the method's own message in ``note``.

Cost (5,000 images, 80 classes, 11 × 11 cells, 2 cores shared): ``ev.errors`` ~0.1–0.2 s per
cell, ``ev.suspects`` ~0.5 s, ``ev.uncertain`` ~0.25 s, ``ev.calibration`` ~0.4 s per IoU
threshold; every cell of everything took 34 s where the report without analysis takes 4.6 s.
So calibration is taken at every IoU threshold; with ``analysis="all"`` error types and the
queues at every cell, with ``analysis=True`` (the default) error types at the cells one slider
move from the start cell (its confidence row and IoU column) and the queues at the start cell
— the page says so elsewhere.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics.analysis import suspects as _sus
from polars_metrics.analysis.errors import BACKGROUND_IOU
from polars_metrics.errors import PolarsMetricsError
from polars_metrics.result.coco import CocoEvaluation
from polars_metrics.views._pack import Packer
from polars_metrics.views._payload import _CELL, _ROW, _SLICE, Grid, _floats

ERROR_TYPES = ("classification", "localization", "both", "duplicate", "background", "missed")
_FAIL = (PolarsMetricsError, ValueError, TypeError)
_F = "_f"
# ev.calibration / suspects / uncertain read every prediction's match, which the COCO engine
# does not keep (with errors=True ev.calibration fails with an AttributeError, not this message)
_COCO_NOTE = ("the COCO engine keeps only its true positives, not every prediction's match; "
              "evaluate with profile='labelbox' for calibration and the label-error queues")


def _feature_slice(frame: pl.DataFrame, grid: Grid, column: str = s.FEATURE) -> pl.DataFrame:
    """Add ``_f`` (feature index, null = len(features)) and ``_slice`` (0 without ``by``)."""
    frame = frame.with_columns(grid.feature_codes(column, _F))
    si = grid.slice_index()
    if si is None:
        return frame.with_columns(pl.lit(0, dtype=pl.Int64).alias(_SLICE))
    return frame.join(si, on=grid.by, how="left", nulls_equal=True)


def cells(grid: Grid, start: int, mode, *, cross: bool = True) -> list[int]:
    """The cells a section is taken at: every cell (``"all"``), else the start cell's row and
    column (``cross``) or the start cell alone."""
    nt = len(grid.t)
    if mode == "all":
        return list(range(grid.n_cells))
    if not cross:
        return [start]
    ci, ti = divmod(start, nt)
    return sorted({ci * nt + t for t in range(nt)} | {c * nt + ti for c in range(len(grid.c))})


def error_types(pack: Packer, ev, grid: Grid, at: list[int]) -> dict:
    """counts ``[((cell * n_slices + slice) * (nf + 1) + f) * 6 + type]`` (f = nf: all
    features; NaN: no such row), and ΔAP ``[(cell * (nf + 1) + f) * 6 + type]`` under coco,
    at the cells ``at`` (``computed``)."""
    nf1, nty = len(grid.features) + 1, len(ERROR_TYPES)
    counts = np.full(grid.n_cells * grid.n_slices * nf1 * nty, np.nan)
    computed = np.zeros(grid.n_cells)
    dap, note, below = None, None, False
    nt = len(grid.t)
    for k in at:
        ci, ti = divmod(k, nt)
        c, t = grid.c[ci], grid.t[ti]
        if t < BACKGROUND_IOU:
            below = True
            continue  # the foreground threshold must be >= the background one
        try:
            frame = ev.errors(c, t)
        except _FAIL as exc:
            return {"note": str(exc), "types": list(ERROR_TYPES)}
        frame = _feature_slice(frame, grid).with_columns(
            pl.col(s.ERROR_TYPE).cast(pl.String).replace_strict(
                {e: i for i, e in enumerate(ERROR_TYPES)}, return_dtype=pl.Int64).alias("_e"))
        flat = ((k * grid.n_slices + frame[_SLICE].to_numpy()) * nf1
                + frame[_F].to_numpy()) * nty + frame["_e"].to_numpy()
        counts[flat] = frame[s.COUNT].to_numpy()
        if s.DELTA_AP in frame.columns:
            if dap is None:
                dap = np.full(grid.n_cells * nf1 * nty, np.nan)
            dap[(k * nf1 + frame[_F].to_numpy()) * nty + frame["_e"].to_numpy()] = \
                _floats(frame[s.DELTA_AP])
        computed[k] = 1
    if below:
        note = (f"error types need the IoU threshold >= the background IoU {BACKGROUND_IOU} "
                "(TIDE's); not shown below it")
    return {"counts": pack.column(counts), "dap": None if dap is None else pack.column(dap),
            "computed": pack.column(computed), "types": list(ERROR_TYPES), "bg": BACKGROUND_IOU,
            "note": note}


def calibration(pack: Packer, ev, grid: Grid, bins: int) -> dict:
    """Per IoU threshold, slice and feature (nf = micro): the reliability bins
    ``[((ti * n_slices + slice) * (nf + 1) + f) * bins + bin]`` (count, confidence, accuracy,
    lower, upper) and ECE / MCE / count ``[(ti * n_slices + slice) * (nf + 1) + f]``."""
    nf1, nt = len(grid.features) + 1, len(grid.t)
    size = nt * grid.n_slices * nf1
    out = {c: np.full(size * bins, np.nan) for c in ("count", "confidence", "accuracy",
                                                      "lower", "upper")}
    err = {c: np.full(size, np.nan) for c in ("ece", "mce", "n")}
    if isinstance(ev, CocoEvaluation):
        return {"note": _COCO_NOTE}
    for ti, t in enumerate(grid.t):
        try:
            table = _feature_slice(ev.calibration(t, bins), grid)
            summary = _feature_slice(ev.calibration_error(t, bins), grid)
        except _FAIL as exc:
            return {"note": str(exc)}
        entry = (ti * grid.n_slices + table[_SLICE].to_numpy()) * nf1 + table[_F].to_numpy()
        for c in out:
            out[c][entry * bins + table["bin"].to_numpy()] = _floats(table[c])
        entry = (ti * grid.n_slices + summary[_SLICE].to_numpy()) * nf1 + summary[_F].to_numpy()
        for c, col in (("ece", "ece"), ("mce", "mce"), ("n", s.COUNT)):
            err[c][entry] = _floats(summary[col])
    return {"bins": bins, "note": None, **{c: pack.column(v) for c, v in out.items()},
            **{c: pack.column(v) for c, v in err.items()}}


def _queue(pack: Packer, grid: Grid, rows: pl.DataFrame, frames: dict, k: int,
           columns: dict, codes: dict) -> dict:
    """Top ``k`` rows per (cell, slice) of each cell's frame, in the frame's order, flattened
    with offsets ``off[cell * n_slices + slice]``; ``columns`` {name in page: frame column}
    (numbers), ``codes`` {name: (frame column, labels)} (categories → index)."""
    parts = []
    for cell, frame in frames.items():
        f = frame.with_row_index("_rank").join(
            rows.select(*grid.keys, _ROW, _SLICE), on=grid.keys, how="left")
        f = f.sort(_SLICE, "_rank").group_by(_SLICE, maintain_order=True).head(k)
        parts.append(f.with_columns(pl.lit(cell, dtype=pl.Int64).alias(_CELL)))
    if not parts:
        return {"off": pack.column(np.zeros(grid.n_cells * grid.n_slices + 1)), "n": 0}
    q = pl.concat(parts, how="vertical_relaxed")
    kk = (q[_CELL] * grid.n_slices + q[_SLICE]).to_numpy()
    out = {"off": pack.column(np.searchsorted(kk, np.arange(grid.n_cells * grid.n_slices + 1))),
           "row": pack.column(q[_ROW].to_numpy()), "n": q.height}
    for name, col in columns.items():
        out[name] = _ids(pack, q[col])
    for name, (col, labels) in codes.items():
        idx = {v: i for i, v in enumerate(labels)}
        out[name] = pack.column(q[col].cast(pl.String).replace_strict(
            idx, default=len(labels), return_dtype=pl.Int64).to_numpy())
    return out


def _ids(pack: Packer, col: pl.Series):
    if col.dtype == pl.Boolean:
        return pack.column(col.cast(pl.Float64).fill_null(np.nan).to_numpy())
    if col.dtype.is_numeric():
        if col.dtype.is_integer() and (col.drop_nulls().abs().max() or 0) >= 2**53:
            return col.cast(pl.String).to_list()
        return pack.column(_floats(col))
    return col.cast(pl.String).to_list()


def queues(pack: Packer, ev, grid: Grid, rows: pl.DataFrame, at: list[int], k: int) -> dict:
    """The suspects and uncertain queues (top ``k`` per cell and slice) at the cells ``at``."""
    nt, out = len(grid.t), {"k": k}
    feats = grid.features
    for name, method, columns, codes in (
            ("suspects", ev.suspects,
             {"score": "score", "gt": s.GT_ID, "pd": s.PD_ID, "conf": s.CONFIDENCE, "iou": s.IOU},
             {"reason": (s.REASON, list(_sus.REASONS)), "gf": (s.GT_FEATURE, feats),
              "pf": (s.PD_FEATURE, feats)}),
            ("uncertain", ev.uncertain,
             {"pd": s.PD_ID, "conf": s.CONFIDENCE, "gt": s.GT_ID, "iou": s.IOU, "tp": "tp",
              "margin": _sus.MARGIN}, {"pf": (s.PD_FEATURE, feats)})):
        frames = {}
        if isinstance(ev, CocoEvaluation):
            out[name] = {"note": _COCO_NOTE}
            continue
        try:
            for cell in at:
                if name == "suspects" and grid.t[cell % nt] < BACKGROUND_IOU:
                    continue  # the foreground threshold must be >= the background one
                frames[cell] = method(grid.c[cell // nt], grid.t[cell % nt])
        except _FAIL as exc:
            out[name] = {"note": str(exc)}
            continue
        computed = np.zeros(grid.n_cells)
        computed[list(frames)] = 1
        out[name] = {"note": None, "computed": pack.column(computed),
                     **_queue(pack, grid, rows, frames, k, columns, codes)}
    out["reasons"] = list(_sus.REASONS)
    return out


def build(pack: Packer, ev, grid: Grid, rows: pl.DataFrame, *, start: int, mode, bins: int,
          k: int) -> dict:
    """The ``analysis`` entry of one run of the payload."""
    return {"errors": error_types(pack, ev, grid, cells(grid, start, mode)),
            "calibration": calibration(pack, ev, grid, bins),
            "queues": queues(pack, ev, grid, rows, cells(grid, start, mode, cross=False), k),
            "mode": "all" if mode == "all" else "cross"}
