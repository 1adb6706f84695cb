"""The IoU-metric sums of a streamed run, re-added exactly in data-row order, in linear time.

``iou_sum`` of a (slice, feature, confidence threshold) group is, in one in-memory evaluation,
the left-to-right sum from 0.0 of its data rows' IoU values in data-row-key order
(:func:`polars_metrics.state.resum_iou_values`). Floating-point addition is not associative, so
the merge must add the same values in the same order. Each batch writes (:func:`write`):

* ``iou/keys.parquet`` — its distinct data-row keys that have a nonzero value (any order): a
  value's *local row* is its key's position here;
* ``iou/groups.parquet`` — its groups with a nonzero value, sorted, each with the range
  ``[start, stop)`` of its values (``iou_rows`` is an integer count: the summed counts hold it);
* ``iou/rows.npy`` (uint32 local rows) and ``iou/values.npy`` (float64): the **nonzero** values,
  by group then local row. A zero is left out: adding +0.0 or -0.0 to a sum that starts at +0.0
  leaves its bits unchanged, so the sum without the zeros is the same number.

The merge (:func:`resum`) sorts the keys of every batch once (one row per data row) into their
global ranks, then, a block of groups at a time, scatters every batch's values into a dense
(group x global rank) array of zeros and adds each group's row left to right (the same kernel
as the in-memory merge): no sort of the values, memory bounded by the block
(``CELLS`` float64 cells) plus one batch's slice of values.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics._kernels.aot import kernel
from polars_metrics.errors import PolarsMetricsError

_segment_sums = kernel("cube", "sequential_segment_sums")
CELLS = 32_000_000  # dense (group x data row) float64 cells per block of the merge (256 MB)
_RANK, _BATCH, _LOCAL = "_pm_rank", "_pm_batch", "_pm_local"


@dataclass(frozen=True)
class Compact:
    """One batch's IoU values in the compact form of the module docstring, ready to save."""

    keys: pl.DataFrame
    groups: pl.DataFrame
    rows: np.ndarray  # uint32 local rows
    values: np.ndarray  # float64

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.keys.write_parquet(directory / "keys.parquet")
        self.groups.write_parquet(directory / "groups.parquet")
        np.save(directory / "rows.npy", self.rows)
        np.save(directory / "values.npy", self.values)


def write(values: pl.DataFrame, group: list[str], keys: Sequence[str], directory: Path) -> None:
    """One batch's IoU values (*keys, *group, value) in the compact form above."""
    compact_values(values, group, keys).save(directory)


def compact_values(values: pl.DataFrame, group: list[str], keys: Sequence[str]) -> Compact:
    """:func:`write`'s compact form, in memory."""
    keys = list(keys)
    distinct = values.select(keys).unique().sort(keys, nulls_last=True)
    groups = values.select(group).unique().sort(group, nulls_last=True).with_row_index("_g")
    v = (values.join(groups, on=group, how="left", nulls_equal=True)
         .join(distinct.with_row_index(_LOCAL), on=keys, how="left", nulls_equal=True)
         .select("_g", _LOCAL, "value"))
    v = v.filter(pl.col("value") != 0.0).sort("_g", _LOCAL)
    stop = np.cumsum(np.bincount(v["_g"].to_numpy(), minlength=groups.height))
    start = stop - np.bincount(v["_g"].to_numpy(), minlength=groups.height)
    kept = groups.drop("_g").with_columns(
        pl.Series("start", start, dtype=pl.Int64), pl.Series("stop", stop, dtype=pl.Int64),
    ).filter(pl.col("stop") > pl.col("start"))
    return Compact(distinct, kept, v[_LOCAL].to_numpy().astype(np.uint32),
                   v["value"].to_numpy().astype(np.float64))


def write_part(part, directory: Path) -> None:
    """:func:`compact_part`, saved under ``directory``."""
    compact_part(part).save(directory)


def compact_part(part) -> Compact:
    """The compact IoU values of a batch's :class:`~polars_metrics.state.PartialResult`:
    straight from its match arrays when it has no ``by=`` slices (no per-value frame, no sort:
    values are grouped by a counting sort of the group code; their order within a group is
    free, the merge places each at its data row's rank), else through ``detail.iou_values``."""
    prep, m = part.detail.prep, part.detail.matches_arrays
    group = [*part.by, s.FEATURE, s.CONFIDENCE_THRESHOLD]
    feats = list(prep.features) if prep is not None else []
    if (part.by or m is None or feats != sorted(feats)
            or not np.all(np.diff(prep.conf_thr) > 0)):
        return compact_values(part.detail.iou_values, group, part.keys)
    # the nonzero cells of m.rf_iou() are its sparse values (the rest is 0.0 or NaN)
    keep = (m.iv_val != 0.0) & ~np.isnan(m.iv_val)
    rf, c = m.iv_rf[keep].astype(np.int64), m.iv_c[keep].astype(np.int64)
    n_conf = prep.conf_thr.shape[0]
    code = m.rf_feat[rf].astype(np.int64) * n_conf + c
    n_codes = len(feats) * n_conf
    order = np.argsort(code.astype(np.uint16) if n_codes < 2**16 else code, kind="stable")
    row_of_rf = np.repeat(np.arange(m.rf_off.shape[0] - 1, dtype=np.int64), np.diff(m.rf_off))
    row = row_of_rf[rf[order]]  # rf -> its data row
    has = np.zeros(m.rf_off.shape[0] - 1, dtype=bool)
    has[row] = True
    rows = np.flatnonzero(has)  # the data rows with a value (their keys, in prep order)
    local = np.cumsum(has, dtype=np.int64) - 1  # data row -> its position among ``rows``
    nz = np.bincount(code, minlength=n_codes)
    stop = np.cumsum(nz)
    groups = pl.DataFrame({
        s.FEATURE: pl.Series(feats, dtype=pl.String).gather(np.arange(n_codes) // n_conf),
        s.CONFIDENCE_THRESHOLD: prep.conf_thr[np.arange(n_codes) % n_conf],
        "start": stop - nz, "stop": stop,
    }).filter(pl.Series(nz > 0))
    return Compact(prep.rows.select(part.keys)[rows], groups,
                   local[row].astype(np.uint32),
                   m.iv_val[keep][order].astype(np.float64))


def _global_ranks(dirs: Sequence[Path], keys: list[str]) -> tuple[list[np.ndarray], int]:
    """Per batch: local row -> rank of its key among every batch's keys; and their number.
    A key in two batches is an error (the input was not bucketed by data row)."""
    frames = [pl.read_parquet(d / "keys.parquet").with_columns(
        pl.lit(i, dtype=pl.Int32).alias(_BATCH)).with_row_index(_LOCAL)
        for i, d in enumerate(dirs)]
    if not frames:
        return [], 0
    every = pl.concat(frames).sort(keys, nulls_last=True).with_row_index(_RANK)
    dup = every.filter(pl.struct(keys).is_duplicated())
    if dup.height:
        raise PolarsMetricsError(
            f"data row {dup.row(0, named=True)[keys[0]]!r} is in more than one batch (IoU "
            "values); the input is not bucketed by data row. Evaluate with "
            "assume_bucketed=False (the default) to bucket it by a hash of the data-row key.")
    rank = every.sort(_BATCH, _LOCAL)[_RANK].to_numpy().astype(np.int64)
    bounds = np.cumsum([0, *(f.height for f in frames)])
    return [rank[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)], every.height


class _Npy:
    """A ``.npy`` file read a slice at a time (``np.fromfile`` at an offset). Not a memory
    map: a mapped file's pages count in the process's resident memory once touched, and the
    merge touches every batch's values (gigabytes at 10M images)."""

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
            self.offset = f.tell()
        if fortran or len(shape) != 1:
            raise PolarsMetricsError(f"{path}: not a 1-d array written by this module.")
        self.path, self.dtype, self.size = str(path), np.dtype(dtype), int(shape[0])

    def read(self, lo: int, hi: int) -> np.ndarray:
        if not 0 <= lo <= hi <= self.size:
            raise PolarsMetricsError(f"{self.path}: slice [{lo}, {hi}) out of {self.size}.")
        return np.fromfile(self.path, dtype=self.dtype, count=hi - lo,
                           offset=self.offset + lo * self.dtype.itemsize)


def resum(counts: pl.DataFrame, dirs: Sequence[Path], by: Sequence[str],
          keys: Sequence[str]) -> pl.DataFrame:
    """``counts`` (summed over the batches) with ``iou_sum`` re-added in data-row order from the batches' ``iou/`` files (see the module docstring)."""
    group, keys = [*by, s.FEATURE, s.CONFIDENCE_THRESHOLD], list(keys)
    dirs = [d / "iou" for d in dirs if (d / "iou" / "groups.parquet").exists()]
    ranks, n_rows = _global_ranks(dirs, keys)
    every = counts.select(group).unique().sort(group, nulls_last=True).with_row_index("_gid")
    n_groups = every.height
    starts, stops, gids = [], [], []
    for d in dirs:
        g = pl.read_parquet(d / "groups.parquet").join(
            every, on=group, how="left", nulls_equal=True, maintain_order="left")
        if g["_gid"].null_count():
            raise PolarsMetricsError(f"{d}: IoU values of a group the counts do not have.")
        gid = g["_gid"].to_numpy().astype(np.int64)
        starts.append(g["start"].to_numpy())
        stops.append(g["stop"].to_numpy())
        gids.append(gid)
    rows = [_Npy(d / "rows.npy") for d in dirs]
    vals = [_Npy(d / "values.npy") for d in dirs]
    sums = np.zeros(n_groups, dtype=np.float64)
    block = max(1, CELLS // max(1, n_rows))
    buffer = np.empty(min(block, n_groups) * n_rows, dtype=np.float64)  # reused: no page faults
    for lo in range(0, n_groups if n_rows else 0, block):
        hi = min(n_groups, lo + block)
        dense = buffer[:(hi - lo) * n_rows]
        dense.fill(0.0)
        for b in range(len(dirs)):
            a, z = np.searchsorted(gids[b], [lo, hi])  # a batch's groups are in global order
            if a == z or stops[b][z - 1] == starts[b][a]:
                continue
            lens = stops[b][a:z] - starts[b][a:z]
            where = np.repeat((gids[b][a:z] - lo) * n_rows, lens)
            sl = (int(starts[b][a]), int(stops[b][z - 1]))
            dense[where + ranks[b][rows[b].read(*sl)]] = vals[b].read(*sl)
        sums[lo:hi] = _segment_sums(dense, np.arange(0, dense.size + 1, n_rows, dtype=np.int64))
    resummed = every.with_columns(pl.Series("iou_sum", sums)).drop("_gid")
    return (counts.drop("iou_sum")
            .join(resummed, on=group, how="left", nulls_equal=True, maintain_order="left")
            .with_columns(pl.col("iou_sum").fill_null(0.0))
            .select(counts.columns))
