"""Tables → the pairs: every (ground truth, prediction) candidate with IoU > 0 in a data row.

This is the only kind-specific stage. Pairs are global indices into the prepared, row-sorted
tables, grouped by data row (CSR ``off``) and gt-major inside a row, which the matching
kernels rely on for the tie rule. The indices are int32 (annotation positions are, see
``prepare.MAX_ANNOTATIONS``): a result keeps its pairs, 17 bytes a pair rather than 25.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import polars as pl

from polars_metrics import _arrays
from polars_metrics import schema as s
from polars_metrics.kinds import kind, pair_groups
from polars_metrics.prepare import Prepared

INDEX_LIMIT = 2**31 - 1  # the largest int32: positions up to it are stored as int32


def index_dtype(n: int) -> type:
    """The dtype of positions into an array of ``n`` entries: int32 while they fit (half the
    memory), int64 beyond.

    >>> index_dtype(10).__name__, index_dtype(2**31).__name__
    ('int32', 'int64')
    """
    return np.int32 if n <= INDEX_LIMIT else np.int64


def positions32(a: np.ndarray) -> np.ndarray:
    """Annotation positions as int32 (no copy when they are already); the prepared tables
    hold at most ``prepare.MAX_ANNOTATIONS`` (2**31 - 1) annotations, so every position fits.

    >>> positions32(np.array([0, 5], dtype=np.int64)).dtype
    dtype('int32')
    """
    if a.dtype != np.int32 and a.size and int(a.max()) > INDEX_LIMIT:
        raise OverflowError(f"annotation position {int(a.max())} does not fit int32")
    return a.astype(np.int32, copy=False)


@dataclass(frozen=True)
class Pairs:
    off: np.ndarray       # int64, n_rows + 1
    gt_codes: np.ndarray  # int32 global gt index (a position in data-row order); see gt_start
    pd_codes: np.ndarray  # int32 global pd index; see pd_start
    iou: np.ndarray       # float64 in (0, 1]
    always: np.ndarray    # bool: matches at every IoU threshold (classification pairs); read-only,
    #                       and a zero-byte broadcast view when one kind made every pair
    #                       (kernels take ``np.ascontiguousarray(pairs.always)``)
    # The pairs a result keeps (:meth:`kept`) hold their positions relative to their data row's
    # first annotation, narrowed (:func:`~polars_metrics._arrays.row_local`): these are the
    # sides' CSR offsets, and ``gt`` / ``pd`` add them back. None: the codes are the positions.
    gt_start: np.ndarray | None = None
    pd_start: np.ndarray | None = None

    def __len__(self) -> int:
        return self.iou.shape[0]

    @property
    def gt(self) -> np.ndarray:
        """int32 global gt index of each pair (made on each read from a kept result's codes)."""
        if self.gt_start is None:
            return self.gt_codes
        return _arrays.from_row_local(self.gt_codes, self.off, self.gt_start)

    @property
    def pd(self) -> np.ndarray:
        """int32 global pd index of each pair."""
        if self.pd_start is None:
            return self.pd_codes
        return _arrays.from_row_local(self.pd_codes, self.off, self.pd_start)

    def kept(self, gt_off: np.ndarray, pd_off: np.ndarray) -> Pairs:
        """These pairs as a result keeps them: positions relative to their data row (1 or 2
        bytes each instead of 4 while rows hold up to 256 or 65,536 annotations a side), read
        back through ``gt`` / ``pd``. Kernels of the call read the int32 positions before.

        >>> p = Pairs(np.array([0, 2, 3]), np.array([0, 1, 3], np.int32),
        ...           np.array([0, 0, 5], np.int32), np.ones(3), constant_flags(False, 3))
        >>> k = p.kept(np.array([0, 3, 4]), np.array([0, 4, 6]))
        >>> k.gt_codes.dtype.name, k.gt.tolist(), k.pd.tolist()
        ('uint8', [0, 1, 3], [0, 0, 5])
        """
        if self.gt_start is not None:
            return self
        return dataclasses.replace(
            self, gt_codes=_arrays.row_local(self.gt_codes, self.off, gt_off),
            pd_codes=_arrays.row_local(self.pd_codes, self.off, pd_off),
            gt_start=gt_off, pd_start=pd_off)

    def frame(self, prep: Prepared) -> pl.DataFrame:
        """(data-row keys, gt_id, pd_id, iou) for every pair."""
        rows = np.repeat(np.arange(prep.n_rows), np.diff(self.off))
        return pl.concat(
            [
                prep.rows.select(prep.keys)[rows],
                pl.DataFrame({
                    s.GT_ID: prep.gt.column(s.ID).gather(self.gt),
                    s.PD_ID: prep.pd.column(s.ID).gather(self.pd),
                    s.IOU: self.iou,
                }),
            ],
            how="horizontal",
        )


def constant_flags(value: bool, n: int) -> np.ndarray:
    """``n`` equal flags as a read-only view of one value (no memory per pair).

    >>> f = constant_flags(True, 3)
    >>> f.tolist(), f.strides, f.flags.writeable
    ([True, True, True], (0,), False)
    """
    return np.broadcast_to(np.bool_(value), (n,))


def build_pairs(prep: Prepared) -> Pairs:
    gt, pd = prep.gt, prep.pd
    if len(gt) == 0 or len(pd) == 0:
        return _empty(prep.n_rows)
    # one kind in both whole tables (the usual case) is the kind of every annotation kept:
    # the kind columns are gathered in data-row order only for mixed kinds
    kinds = set(gt.frame[s.KIND].unique().to_list()) | set(pd.frame[s.KIND].unique().to_list())
    if len(kinds) > 1:
        gt_kind, pd_kind = gt.column(s.KIND), pd.column(s.KIND)
        kinds = set(gt_kind.unique().to_list()) | set(pd_kind.unique().to_list())
    groups = pair_groups(sorted(kinds), prep.profile)  # compatible kinds pair (box with polygon)
    if len(groups) <= 1:
        if not groups:
            return _empty(prep.n_rows)
        handler = kind(next(iter(groups)))
        off, g, p, v = handler.pairs(gt, pd, prep.profile)
        g, p = positions32(g), positions32(p)  # no copy for boxes (their kernel's int32)
        return Pairs(off, g, p, v, constant_flags(handler.always_match, g.shape[0]))
    # Mixed kinds: pairs per group on the sub-tables, mapped back to global indices, merged.
    parts = []
    for name, members in groups.items():
        gi = np.flatnonzero(gt_kind.cast(pl.String).is_in(members).to_numpy())
        pi = np.flatnonzero(pd_kind.cast(pl.String).is_in(members).to_numpy())
        if gi.size == 0 or pi.size == 0:
            continue
        handler = kind(name)
        _, g, p, v = handler.pairs(gt.subset(gi, prep.n_rows), pd.subset(pi, prep.n_rows),
                                   prep.profile)
        always = np.full(g.shape[0], handler.always_match)
        parts.append((positions32(gi[g]), positions32(pi[p]), v, always))
    if not parts:
        return _empty(prep.n_rows)
    g = np.concatenate([x[0] for x in parts])
    p = np.concatenate([x[1] for x in parts])
    v = np.concatenate([x[2] for x in parts])
    a = np.concatenate([x[3] for x in parts])
    order = np.lexsort((p, g))  # gt-major; gt indices are row-sorted so rows stay grouped
    g, p, v, a = g[order], p[order], v[order], a[order]
    return Pairs(_arrays.offsets(gt.row[g], prep.n_rows), g, p, v, a)


def _empty(n_rows: int) -> Pairs:
    return Pairs(np.zeros(n_rows + 1, dtype=np.int64), np.zeros(0, dtype=np.int32),
                 np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float64),
                 constant_flags(False, 0))
