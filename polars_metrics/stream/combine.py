"""Merge the checkpoints of a streamed run into one result, in bounded memory.

The small tables of every batch are merged with a tree reduce (integer sums: any grouping and
any order give the same numbers). The IoU metric sums are then re-added in data-row order by
:mod:`polars_metrics.stream.iou`. The large tables stay on disk and are read lazily by
:class:`StreamedEvaluation`.
"""
from __future__ import annotations

import glob
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from polars_metrics import schema as s
from polars_metrics.errors import PolarsMetricsError
from polars_metrics.state import CONFUSION_KEYS, COUNT_KEYS
from polars_metrics.stream.options import PRESENT


def tree_reduce(items: Sequence[Any], fn: Callable[[Any, Any], Any]) -> Any:
    """Pairwise reduction, ``log2(n)`` levels deep (so no part is re-merged n times).

    Examples
    --------
    >>> tree_reduce(["a", "b", "c", "d", "e"], lambda x, y: f"({x}{y})")
    '(((ab)(cd))e)'
    """
    items = list(items)
    if not items:
        raise ValueError("nothing to reduce")
    while len(items) > 1:
        items = [fn(items[i], items[i + 1]) if i + 1 < len(items) else items[i]
                 for i in range(0, len(items), 2)]
    return items[0]


class TreeReducer:
    """The same pairwise tree as :func:`tree_reduce`, fed one item at a time: at most
    ``log2(n)`` partial merges are held (a binary counter of merged levels).

    Examples
    --------
    >>> r = TreeReducer(lambda x, y: f"({x}{y})")
    >>> for x in "abcde":
    ...     r.push(x)
    >>> r.result()
    '(((ab)(cd))e)'
    """

    def __init__(self, fn: Callable[[Any, Any], Any]) -> None:
        self.fn = fn
        self.stack: list[tuple[int, Any]] = []

    def push(self, item: Any) -> None:
        level = 0
        while self.stack and self.stack[-1][0] == level:
            item = self.fn(self.stack.pop()[1], item)
            level += 1
        self.stack.append((level, item))

    def result(self) -> Any:
        if not self.stack:
            raise ValueError("nothing to reduce")
        item = self.stack.pop()[1]
        while self.stack:
            item = self.fn(self.stack.pop()[1], item)
        return item


def merge_small(a: dict[str, Any], b: dict[str, Any], by: Sequence[str]) -> dict[str, Any]:
    """Merge the small tables of two disjoint sets of data rows."""
    return merge_many([a, b], by)


def merge_many(items: Sequence[dict[str, Any]], by: Sequence[str]) -> dict[str, Any]:
    """Merge the small tables of disjoint sets of data rows: one concatenation and one
    group-by per table, whatever their number (integer sums: any grouping gives the same)."""
    first = items[0]
    ckeys = [*by, *COUNT_KEYS]
    counts = (pl.concat([x["counts"] for x in items]).group_by(ckeys)
              .agg(pl.exclude([*ckeys, s.TN, PRESENT]).sum(), pl.col(PRESENT).any(),
                   pl.when(pl.col(s.TN).is_not_null().any()).then(pl.col(s.TN).sum()).alias(s.TN))
              .select(first["counts"].columns))
    fkeys = [*by, *CONFUSION_KEYS]
    confusion = (pl.concat([x["confusion"] for x in items]).group_by(fkeys)
                 .agg(pl.col(s.COUNT).sum()).select(first["confusion"].columns))
    repairs = [x["repairs"] for x in items if x["repairs"] is not None]
    timings: dict[str, float] = {}
    for x in items:
        for k, v in x["timings"].items():
            timings[k] = timings.get(k, 0.0) + v
    return dict(counts=counts, confusion=confusion,
                excluded=pl.concat([x["excluded"] for x in items]),
                rejects=pl.concat([x["rejects"] for x in items]),
                repairs=pl.concat(repairs) if repairs else None, timings=timings)


class BufferedMerge:
    """Merges batches' small tables a pile at a time: batches are held until their rows
    (counts + confusion) exceed both ``rows`` and the merged pile's, then all merged in one
    group-by (:func:`merge_many`). Each row is grouped about twice, not ``log2(n)`` times as
    in a pairwise tree; memory: the merged pile plus at most ``max(rows, its size)`` rows.

    Examples
    --------
    >>> import polars as pl
    >>> def small(n):
    ...     c = pl.DataFrame({"feature": ["a"], "confidence_threshold": [0.5],
    ...                       "iou_threshold": [0.5], "tp": [n], "tn": [None], "_pm_present": [True]})
    ...     f = pl.DataFrame({"confidence_threshold": [0.5], "iou_threshold": [0.5],
    ...                       "gt_feature": ["a"], "pd_feature": ["a"], "count": [n]})
    ...     return dict(counts=c, confusion=f, excluded=pl.DataFrame(), rejects=pl.DataFrame(),
    ...                 repairs=None, timings={})
    >>> m = BufferedMerge((), rows=2)
    >>> for n in range(1, 6):
    ...     m.push(small(n))
    >>> m.result()["counts"]["tp"].to_list(), m.result()["confusion"]["count"].to_list()
    ([15], [15])
    """

    ROWS = 2_000_000

    def __init__(self, by: Sequence[str], rows: int | None = None) -> None:
        self.by, self.rows = tuple(by), self.ROWS if rows is None else rows
        self.merged: dict[str, Any] | None = None
        self.pending: list[dict[str, Any]] = []
        self.n_pending = 0

    @staticmethod
    def _size(item: dict[str, Any]) -> int:
        return item["counts"].height + item["confusion"].height

    def push(self, item: dict[str, Any]) -> None:
        self.pending.append(item)
        self.n_pending += self._size(item)
        held = 0 if self.merged is None else self._size(self.merged)
        if self.n_pending > max(self.rows, held):
            self._collapse()

    def _collapse(self) -> None:
        items = ([] if self.merged is None else [self.merged]) + self.pending
        self.merged = items[0] if len(items) == 1 else merge_many(items, self.by)
        self.pending, self.n_pending = [], 0

    def result(self) -> dict[str, Any]:
        if self.merged is None and not self.pending:
            raise ValueError("nothing to reduce")
        if self.pending:
            self._collapse()
        return self.merged


def finish_small(small: dict[str, Any], by: Sequence[str], keys: Sequence[str],
                 check: bool = False) -> dict[str, Any]:
    """Sort the merged small tables as :func:`polars_metrics.state.merge` does."""
    ckeys, fkeys = [*by, *COUNT_KEYS], [*by, *CONFUSION_KEYS]
    out = dict(small)
    out["counts"] = (small["counts"].filter(pl.col(PRESENT)).drop(PRESENT)
                     .sort(ckeys, nulls_last=True))
    out["confusion"] = small["confusion"].sort(fkeys, nulls_last=True)
    out["excluded"] = small["excluded"].sort(list(keys), maintain_order=True)
    if check:
        _no_duplicates(out["excluded"], keys, "excluded")
    out["rejects"] = small["rejects"].sort(s.TABLE, s.ROW, maintain_order=True)
    return out


def _no_duplicates(frame: pl.DataFrame, cols: Sequence[str], what: str) -> None:
    dup = frame.filter(pl.struct(list(cols)).is_duplicated())
    if dup.height:
        raise PolarsMetricsError(
            f"data row {dup.row(0)[:len(cols)]} is in more than one batch ({what}); the input is "
            "not bucketed by data row. Evaluate with assume_bucketed=False (the default) to "
            "bucket it by a hash of the data-row key.")


def scan_large(batch_dirs: Sequence[Path], name: str, schema: dict | None = None) -> pl.LazyFrame:
    """All batches' ``<name>.parquet`` as one LazyFrame (no rows read yet)."""
    files = [str(d / f"{name}.parquet") for d in batch_dirs]
    files = [f for f in files if os.path.exists(f)]
    if not files:
        return pl.LazyFrame(schema=schema or {})
    return pl.scan_parquet(files)


def stale_batches(out: Path, names: set[str]) -> list[str]:
    """Batch directories of earlier runs that the current plan no longer has."""
    return [p for p in glob.glob(str(out / "batches" / "*")) if os.path.basename(p) not in names]
