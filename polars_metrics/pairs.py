"""Tables → the pairs: every (ground truth, prediction) candidate with IoU > 0 in a data row.

This is the only kind-specific stage. Pairs are global indices into the prepared, row-sorted
tables, grouped by data row (CSR ``off``) and gt-major inside a row, which the matching
kernels rely on for the tie rule.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from polars_metrics import _arrays
from polars_metrics import schema as s
from polars_metrics.kinds import kind_module
from polars_metrics.prepare import ROW, Prepared


@dataclass(frozen=True)
class Pairs:
    off: np.ndarray   # int64, n_rows + 1
    gt: np.ndarray    # int64 global gt index
    pd: np.ndarray    # int64 global pd index
    iou: np.ndarray   # float64 in (0, 1]

    def __len__(self) -> int:
        return self.gt.shape[0]

    def frame(self, prep: Prepared) -> pl.DataFrame:
        """(data-row keys, gt_id, pd_id, iou) for every pair."""
        rows = np.repeat(np.arange(prep.n_rows), np.diff(self.off))
        return pl.concat(
            [
                prep.rows.select(prep.keys)[rows],
                pl.DataFrame({
                    s.GT_ID: prep.gt.frame[s.ID].gather(self.gt),
                    s.PD_ID: prep.pd.frame[s.ID].gather(self.pd),
                    s.IOU: self.iou,
                }),
            ],
            how="horizontal",
        )


def build_pairs(prep: Prepared) -> Pairs:
    gt, pd = prep.gt, prep.pd
    kinds = sorted(set(gt.frame[s.KIND].unique().to_list()) | set(pd.frame[s.KIND].unique().to_list()))
    if len(kinds) <= 1:
        if not kinds:
            return _empty(prep.n_rows)
        off, g, p, v = kind_module(kinds[0]).pairs(gt.frame, pd.frame, gt.off, pd.off)
        return Pairs(off, g, p, v)
    # Mixed kinds: pairs per kind on the sub-tables, mapped back to global indices, merged.
    parts = []
    for kind in kinds:
        gi = np.flatnonzero((gt.frame[s.KIND] == kind).to_numpy())
        pi = np.flatnonzero((pd.frame[s.KIND] == kind).to_numpy())
        if gi.size == 0 or pi.size == 0:
            continue
        sub_gt, sub_pd = gt.frame[gi], pd.frame[pi]
        off, g, p, v = kind_module(kind).pairs(
            sub_gt, sub_pd,
            _arrays.offsets(sub_gt[ROW].to_numpy(), prep.n_rows),
            _arrays.offsets(sub_pd[ROW].to_numpy(), prep.n_rows),
        )
        parts.append((gi[g], pi[p], v))
    if not parts:
        return _empty(prep.n_rows)
    g = np.concatenate([x[0] for x in parts])
    p = np.concatenate([x[1] for x in parts])
    v = np.concatenate([x[2] for x in parts])
    order = np.lexsort((p, g))  # gt-major; gt indices are row-sorted so rows stay grouped
    g, p, v = g[order], p[order], v[order]
    rows = gt.frame[ROW].to_numpy()[g]
    return Pairs(_arrays.offsets(rows, prep.n_rows), g, p, v)


def _empty(n_rows: int) -> Pairs:
    return Pairs(np.zeros(n_rows + 1, dtype=np.int64), np.zeros(0, dtype=np.int64),
                 np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))
