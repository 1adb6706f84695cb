"""The report's data: an Evaluation's frames as dense, typed lookup tables.

Everything the page shows is looked up here (the browser never recomputes a metric). Cells are
indexed ``ci * nt + ti``. Dense arrays (packed by ``_pack``, null = NaN):

* cube / overall: ``[(slice * n_entries + entry) * n_cells + cell]`` per metric;
* confusion: the nonzero cells sorted by (slice, cell), with offsets per (slice, cell);
* examples: every example kept once — (g, p, data row, gt id, pd id, confidence, IoU) and the
  index of its cell mask (per confidence threshold, a bit set over the IoU thresholds);
* gallery: ``[row * n_cells + cell]`` per metric, for every data row at every cell;
* histograms: ``[((cell * n_groups + group) * 4 + ratio) * 10 + bin]``, groups = slices, then
  features.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics.events import ALMOST_ONE
from polars_metrics.matching import THRESHOLD_FREE, matched_at
from polars_metrics.result import outcomes as oc
from polars_metrics.result.coco import CocoEvaluation
from polars_metrics.views._pack import Packer

RATIOS = (s.PRECISION, s.RECALL, s.F1, s.IOU)
BINS = 10
ALL_SLICES = "all"
CLASS_HIST_MAX_ROWS = 5_000_000  # data-row x feature x cell rows built for per-class histograms
_CELL, _SLICE, _ROW, _G, _P = "_cell", "_slice", "_row", "_g", "_p"
_M, _PAIR, _TBITS, _CI, _POS = "_m", "_pair", "_tbits", "_ci", "_pos"


def key_labels(frame: pl.DataFrame, keys) -> pl.Series:
    """One string per data row: its key, composite keys joined by " / " (the ``data-key``)."""
    return frame.select(pl.concat_str([pl.col(k).cast(pl.String).fill_null("null") for k in keys],
                                      separator=" / ")).to_series()


def _floats(series: pl.Series) -> np.ndarray:
    return series.cast(pl.Float64).fill_null(np.nan).to_numpy()


class Grid:
    """Shared indices of one report: thresholds, features, slices and data rows."""

    def __init__(self, ev, features: list[str], slices: list[tuple]) -> None:
        self.c = ev.confidence_thresholds.tolist()
        self.t = ev.iou_thresholds.tolist()
        self.features = features
        self.by = list(ev.by)
        self.slices = slices
        self.keys = list(ev.keys)
        self.n_cells = len(self.c) * len(self.t)
        self.n_slices = max(1, len(slices))

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

    def feature_codes(self, column: str, alias: str) -> pl.Expr:
        """Feature name → index, None (null) → len(features)."""
        idx = {f: i for i, f in enumerate(self.features)}
        return pl.col(column).replace_strict(idx, default=len(self.features),
                                             return_dtype=pl.Int64).alias(alias)

    def as_json(self) -> dict:
        return {"c": self.c, "t": self.t, "features": self.features, "by": self.by,
                "slices": [" / ".join("null" if v is None else str(v) for v in sl)
                           for sl in self.slices] or [ALL_SLICES]}


def _dense(pack: Packer, frame: pl.DataFrame, entry: pl.Expr, n_entries: int, n_cells: int,
           columns) -> dict:
    """{column: packed [entry * n_cells + cell]} with NaN where the frame has no row."""
    flat = frame.select((entry * n_cells + pl.col(_CELL)).alias("_i"))["_i"].to_numpy()
    out = {}
    for col in columns:
        arr = np.full(n_entries * n_cells, np.nan)
        arr[flat] = _floats(frame[col])
        out[col] = pack.column(arr)
    return out


def cube_tables(pack: Packer, ev, grid: Grid) -> dict:
    nf, n = len(grid.features), grid.n_cells
    f_index = pl.DataFrame({s.FEATURE: grid.features, "_f": np.arange(nf, dtype=np.int64)})
    cube = grid.with_ids(ev.cube).join(f_index, on=s.FEATURE)
    overall = grid.with_ids(ev.overall).with_columns(
        (pl.col(s.AVERAGE) == "macro").cast(pl.Int64).alias("_a"))
    return {"cube": _dense(pack, cube, pl.col(_SLICE) * nf + pl.col("_f"), grid.n_slices * nf, n,
                           s.METRIC_COLUMNS),
            "overall": _dense(pack, overall, pl.col(_SLICE) * 2 + pl.col("_a"), grid.n_slices * 2,
                              n, s.METRIC_COLUMNS)}


def confusion_table(pack: Packer, ev, grid: Grid) -> dict:
    """Nonzero cells (g, p, count) sorted by slice * n_cells + cell; ``off`` the offsets."""
    conf = grid.with_ids(ev.confusion).with_columns(
        grid.feature_codes(s.GT_FEATURE, _G), grid.feature_codes(s.PD_FEATURE, _P),
        (pl.col(_SLICE) * grid.n_cells + pl.col(_CELL)).alias("_k")).sort("_k", _G, _P)
    off = np.searchsorted(conf["_k"].to_numpy(), np.arange(grid.n_slices * grid.n_cells + 1))
    return {"off": pack.column(off), "g": pack.column(conf[_G].to_numpy()),
            "p": pack.column(conf[_P].to_numpy()), "n": pack.column(conf[s.COUNT].to_numpy())}


# --- examples ---------------------------------------------------------------------------------
def _candidates(matched: pl.DataFrame, gt_ann, pd_ann, keys, c: float, score: bool) -> pl.DataFrame:
    """The examples of every confusion cell for one confidence threshold, each with ``_m``: the
    IoU that decides at which IoU thresholds it is shown (+inf: always matched)."""
    m = pl.when(pl.col(THRESHOLD_FREE) | pl.lit(score)).then(float("inf")).otherwise(pl.col(s.IOU))
    matched = matched.with_columns(m.alias(_M))
    conf = pd_ann.select(*keys, pl.col(s.ID).alias(s.PD_ID), s.CONFIDENCE)
    pairs = matched.join(conf, on=[*keys, s.PD_ID], how="left").select(
        *keys, pl.col(s.GT_FEATURE).alias(_G), pl.col(s.PD_FEATURE).alias(_P), s.GT_ID, s.PD_ID,
        s.CONFIDENCE, pl.col(s.IOU).cast(pl.Float64), _M, pl.lit(True).alias(_PAIR))
    gm = matched.select(*keys, pl.col(s.GT_ID).alias(s.ID), _M)
    fn = gt_ann.join(gm, on=[*keys, s.ID], how="left").select(
        *keys, pl.col(s.FEATURE).alias(_G), pl.lit(None, dtype=pl.String).alias(_P),
        pl.col(s.ID).alias(s.GT_ID), pl.lit(None, dtype=pd_ann.schema[s.ID]).alias(s.PD_ID),
        pl.lit(None, dtype=pl.Float64).alias(s.CONFIDENCE), pl.lit(None, dtype=pl.Float64).alias(s.IOU),
        pl.col(_M).fill_null(float("-inf")), pl.lit(False).alias(_PAIR))
    pm_ = matched.select(*keys, pl.col(s.PD_ID).alias(s.ID), _M)
    fp = pd_ann.filter(pl.col(s.CONFIDENCE) >= c).join(pm_, on=[*keys, s.ID], how="left").select(
        *keys, pl.lit(None, dtype=pl.String).alias(_G), pl.col(s.FEATURE).alias(_P),
        pl.lit(None, dtype=gt_ann.schema[s.ID]).alias(s.GT_ID), pl.col(s.ID).alias(s.PD_ID),
        s.CONFIDENCE, pl.lit(None, dtype=pl.Float64).alias(s.IOU),
        pl.col(_M).fill_null(float("-inf")), pl.lit(False).alias(_PAIR))
    return pl.concat([pairs, fn, fp], how="vertical_relaxed").filter(
        pl.col(_PAIR) | (pl.col(_M) < float("inf")))


def _capped(cand: pl.DataFrame, rows: pl.DataFrame, keys, cap: int, grid: Grid) -> pl.DataFrame:
    """The first ``cap`` per (slice, g, p): pairs by IoU descending, unmatched-side examples
    unmatched first then by IoU ascending (high confidence first). The examples shown at an IoU
    threshold are then the first ``cap`` of this order that pass it, for every threshold."""
    nf = len(grid.features) + 1
    cand = cand.join(rows, on=keys, how="inner").select(
        ((pl.col(_SLICE) * nf + grid.feature_codes(_G, _G)) * nf
         + grid.feature_codes(_P, _P)).alias("_grp"),
        pl.when(pl.col(_PAIR)).then(-pl.col(_M)).otherwise(pl.col(_M)).alias("_r1"),
        (-pl.col(s.CONFIDENCE).fill_null(0)).alias("_r2"),
        (pl.col(_ROW).hash(7) ^ pl.col(s.GT_ID).hash(11) ^ pl.col(s.PD_ID).hash(13)).alias("_r3"),
        _G, _P, _ROW, s.GT_ID, s.PD_ID, s.CONFIDENCE, s.IOU, _M, _PAIR)
    order = np.lexsort([cand[c].to_numpy() for c in ("_r3", "_r2", "_r1", "_grp")])
    cand = cand[order]
    grp = cand["_grp"].to_numpy()
    first = np.r_[0, np.flatnonzero(grp[1:] != grp[:-1]) + 1] if grp.size else np.array([], int)
    starts = np.repeat(first, np.diff(np.r_[first, grp.size]))
    pos = np.arange(grp.size) - starts
    keep = pos < cap
    return cand.filter(pl.Series(keep)).with_columns(pl.Series(_POS, pos[keep]))


def _tbits(grid: Grid, strict: bool, t_list) -> pl.Expr:
    """Bit ti set when the example is shown at (this c, t): pairs that pass t, others that fail."""
    bits = pl.lit(0, dtype=pl.Int64)
    for ti, t in t_list:
        passes = pl.col(_M) > t if strict else pl.col(_M) >= min(t, ALMOST_ONE)
        shown = pl.when(pl.col(_PAIR)).then(passes).otherwise(~passes)
        bits = bits + shown.cast(pl.Int64) * (1 << ti)
    return bits.alias(_TBITS)


def _coco_candidates(ev: CocoEvaluation, keys, c: float, t: float) -> pl.DataFrame:
    """The examples at one cell under COCO matching (ev.tables: no IoU kept, class-aware)."""
    tables = ev.tables
    tp = tables.matches.filter((pl.col(s.IOU_THRESHOLD) == t) & (pl.col(s.CONFIDENCE) >= c))
    inf, none = pl.lit(float("inf")), pl.lit(None, dtype=pl.Float64)
    pairs = tp.select(*keys, pl.col(s.GT_FEATURE).alias(_G), pl.col(s.PD_FEATURE).alias(_P),
                      s.GT_ID, s.PD_ID, s.CONFIDENCE, none.alias(s.IOU), inf.alias(_M),
                      pl.lit(True).alias(_PAIR))
    fn = tables.gt_counted.join(tp.select(*keys, s.GT_ID), on=[*keys, s.GT_ID], how="anti").select(
        *keys, pl.col(s.FEATURE).alias(_G), pl.lit(None, dtype=pl.String).alias(_P), s.GT_ID,
        pl.lit(None, dtype=tp.schema[s.PD_ID]).alias(s.PD_ID), none.alias(s.CONFIDENCE),
        none.alias(s.IOU), (-inf).alias(_M), pl.lit(False).alias(_PAIR))
    fp = tables.false_positives.filter((pl.col(s.IOU_THRESHOLD) == t) & (pl.col(s.CONFIDENCE) >= c))
    fp = fp.select(*keys, pl.lit(None, dtype=pl.String).alias(_G), pl.col(s.PD_FEATURE).alias(_P),
                   pl.lit(None, dtype=tp.schema[s.GT_ID]).alias(s.GT_ID), s.PD_ID, s.CONFIDENCE,
                   none.alias(s.IOU), (-inf).alias(_M), pl.lit(False).alias(_PAIR))
    return pl.concat([pairs, fn, fp], how="vertical_relaxed")


def _steps(ev, grid: Grid, c: float):
    """(IoU thresholds decided, candidates) for one confidence threshold: one step under IoU
    order (the c-walk's matches decide every IoU threshold), one per IoU threshold otherwise."""
    keys, all_t = grid.keys, list(enumerate(grid.t))
    if isinstance(ev, CocoEvaluation):
        for ti, t in all_t:
            yield [(ti, t)], _coco_candidates(ev, keys, c, t)
        return
    gt_ann, pd_ann = ev.detail.annotations
    matches = ev.detail.matches
    if s.IOU_THRESHOLD not in matches.columns:
        yield all_t, _candidates(matches.filter(pl.col(s.CONFIDENCE_THRESHOLD) == c),
                                 gt_ann, pd_ann, keys, c, False)
        return
    for ti, t in all_t:  # score order: each IoU threshold has its own walk
        matched = matched_at(matches, c, t, ev.profile.iou_strict)
        yield [(ti, t)], _candidates(matched, gt_ann, pd_ann, keys, c, True)


def annotation_features(ev, keys) -> pl.DataFrame:
    """(*keys, feature) of every counted ground truth and prediction."""
    if isinstance(ev, CocoEvaluation):
        t = ev.tables
        return pl.concat([t.gt_counted.select(*keys, s.FEATURE),
                          t.matches.select(*keys, pl.col(s.PD_FEATURE).alias(s.FEATURE)),
                          t.false_positives.select(*keys, pl.col(s.PD_FEATURE).alias(s.FEATURE))])
    gt_ann, pd_ann = ev.detail.annotations
    return pl.concat([gt_ann.select(*keys, s.FEATURE), pd_ann.select(*keys, s.FEATURE)])


def cell_outcomes(ev, keys, c: float, t: float) -> pl.DataFrame:
    """(side, *keys, id, outcome) at one cell, for drawing annotations by outcome."""
    if not isinstance(ev, CocoEvaluation):
        return oc.outcomes(ev, c, t).select(oc.SIDE, *keys, s.ID, oc.OUTCOME).with_columns(
            pl.col(oc.SIDE).cast(pl.String), pl.col(oc.OUTCOME).cast(pl.String))
    cand = _coco_candidates(ev, keys, c, t)
    gt = cand.filter(pl.col(s.GT_ID).is_not_null()).select(
        pl.lit(oc.GT_SIDE).alias(oc.SIDE), *keys, pl.col(s.GT_ID).alias(s.ID),
        pl.when(pl.col(_PAIR)).then(pl.lit(oc.TP)).otherwise(pl.lit(oc.FN)).alias(oc.OUTCOME))
    pd = cand.filter(pl.col(s.PD_ID).is_not_null()).select(
        pl.lit(oc.PD_SIDE).alias(oc.SIDE), *keys, pl.col(s.PD_ID).alias(s.ID),
        pl.when(pl.col(_PAIR)).then(pl.lit(oc.TP)).otherwise(pl.lit(oc.FP)).alias(oc.OUTCOME))
    return pl.concat([gt, pd], how="vertical_relaxed")


def examples_table(pack: Packer, ev, grid: Grid, rows: pl.DataFrame, cap: int,
                   masks: dict) -> dict:
    """Examples per (g, p) — ``index["g,p"] = [start, end)`` — with their cell-mask index into
    ``masks`` (shared by the runs: mask tuple → index)."""
    keys, strict = grid.keys, ev.profile.iou_strict
    parts = []
    for ci, c in enumerate(grid.c):
        for t_list, cand in _steps(ev, grid, c):
            capped = _capped(cand, rows, keys, cap, grid).with_columns(
                _tbits(grid, strict, t_list), pl.lit(ci, dtype=pl.Int64).alias(_CI))
            parts.append(capped.filter(pl.col(_TBITS) > 0))
    ex = pl.concat(parts, how="vertical_relaxed").with_columns(
        grid.feature_codes(_G, _G), grid.feature_codes(_P, _P))
    ex = ex.group_by(_G, _P, _ROW, s.GT_ID, s.PD_ID).agg(
        pl.col(s.CONFIDENCE).first(), pl.col(s.IOU).first(), pl.col(_CI), pl.col(_TBITS),
        pl.col(_POS).min()).sort(_G, _P, _POS, _ROW, s.GT_ID, s.PD_ID, nulls_last=True)
    nc = len(grid.c)
    mask_ids = []
    for cis, bits in zip(ex[_CI].to_list(), ex[_TBITS].to_list(), strict=True):
        mask = [0] * nc
        for ci, b in zip(cis, bits, strict=True):
            mask[ci] |= b
        mask_ids.append(masks.setdefault(tuple(mask), len(masks)))
    group = (ex[_G] * (len(grid.features) + 1) + ex[_P]).to_numpy()
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if group.size else np.array([], int)
    ends = np.r_[starts[1:], group.size].astype(int)
    index = {f"{ex[_G][int(a)]},{ex[_P][int(a)]}": [int(a), int(b)] for a, b in zip(starts, ends, strict=True)}
    return {"_used": set(ex[_ROW].unique().to_list()), "index": index,
            "row": pack.column(ex[_ROW].to_numpy()), "gt": _ids(pack, ex[s.GT_ID]),
            "pd": _ids(pack, ex[s.PD_ID]), "conf": pack.column(_floats(ex[s.CONFIDENCE])),
            "iou": pack.column(_floats(ex[s.IOU])), "mask": pack.column(np.array(mask_ids))}


def _ids(pack: Packer, ids: pl.Series):
    if ids.dtype.is_integer() and (ids.drop_nulls().abs().max() or 0) < 2**53:
        return pack.column(_floats(ids))
    return ids.cast(pl.String).to_list()


# --- data rows --------------------------------------------------------------------------------
def data_row_index(ev, grid: Grid) -> pl.DataFrame:
    """(*keys, _row, _slice, _key): the counted data rows, in ev.data_rows order."""
    rows = ev.data_rows.select(*grid.keys, *grid.by).unique(subset=grid.keys, maintain_order=True)
    rows = rows.with_row_index(_ROW).with_columns(pl.col(_ROW).cast(pl.Int64))
    si = grid.slice_index()
    rows = rows.join(si, on=grid.by, how="left", nulls_equal=True) if si is not None else \
        rows.with_columns(pl.lit(0, dtype=pl.Int64).alias(_SLICE))
    return rows.with_columns(key_labels(rows, grid.keys).alias("_key")).sort(_ROW)


def row_features(ev, grid: Grid, rows: pl.DataFrame) -> list[list[int]]:
    """Per data row: the indices of the features annotated or predicted on it."""
    idx = {f: i for i, f in enumerate(grid.features)}
    present = annotation_features(ev, grid.keys).unique().join(rows.select(*grid.keys, _ROW), on=grid.keys).group_by(_ROW).agg(
        pl.col(s.FEATURE).replace_strict(idx, default=None, return_dtype=pl.Int64).sort())
    feats = dict(zip(present[_ROW].to_list(), present[s.FEATURE].to_list(), strict=True))
    return [feats.get(i, []) for i in range(rows.height)]


def gallery_table(pack: Packer, ev, grid: Grid, rows: pl.DataFrame) -> dict:
    """Every data row's metrics at every cell: {metric: packed [row * n_cells + cell]}."""
    dr = grid.with_ids(ev.data_rows, False).join(rows.select(*grid.keys, _ROW), on=grid.keys)
    return _dense(pack, dr, pl.col(_ROW), rows.height, grid.n_cells, s.METRIC_COLUMNS)


def histograms(pack: Packer, ev, grid: Grid, rows: pl.DataFrame, per_class) -> dict:
    """Counts of data rows per ratio-metric bin ([0, 0.1), ..., [0.9, 1]) at every cell, per
    slice and (over ev.data_row_features, when ``per_class``) per feature."""
    edges = np.linspace(0, 1, BINS + 1)
    n_groups = grid.n_slices + len(grid.features)
    counts = np.zeros(grid.n_cells * n_groups * len(RATIOS) * BINS, dtype=np.int64)

    def add(frame: pl.DataFrame, group: np.ndarray) -> None:
        cell = frame[_CELL].to_numpy()
        for mi, m in enumerate(RATIOS):
            v = _floats(frame[m])
            ok = ~np.isnan(v) & (v >= 0) & (v <= 1)
            b = np.minimum(np.searchsorted(edges, v[ok], side="right") - 1, BINS - 1)
            flat = ((cell[ok] * n_groups + group[ok]) * len(RATIOS) + mi) * BINS + b
            counts[:] += np.bincount(flat, minlength=counts.size)

    dr = grid.with_ids(ev.data_rows, False).join(rows.select(*grid.keys, _SLICE), on=grid.keys)
    add(dr, dr[_SLICE].to_numpy())
    if per_class:
        f_index = pl.DataFrame({s.FEATURE: grid.features,
                                "_f": np.arange(len(grid.features), dtype=np.int64)})
        drf = grid.with_ids(ev.data_row_features, False).join(f_index, on=s.FEATURE)
        add(drf, drf["_f"].to_numpy() + grid.n_slices)
    return {"counts": pack.column(counts), "groups": n_groups, "per_class": bool(per_class)}
