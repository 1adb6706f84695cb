"""Batches from an input already laid out by data row: disjoint key ranges, no bucketing pass.

A data lake is often written in files that each hold a range of data rows (the benchmark's
50,000 images per file; daily exports; anything written in key order). Then hashing both tables
into buckets (reading and rewriting every row) is wasted work: :func:`key_ranges` reads each
file's key minimum, maximum and row count (from the Parquet metadata) and joins the files of
both tables whose key intervals overlap into *components*. Components hold disjoint sets of
data rows, so each is data-row complete: a data row split across files is in one component
whatever file it is in. A component larger than the batch size is cut at key values into
sub-ranges ``[lo, hi)`` of about ``batch_size`` annotations (a data row has one key value, so it
stays whole); a batch reads its files with that filter, which Parquet row-group statistics
turn into skipped row groups when the files are sorted by key.

When the layout is not by data row (a component would need more than ``MAX_SPLIT`` batches:
files overlapping in key, each batch would read them all), :func:`key_ranges` returns None
and the run buckets by a hash of the key (:func:`polars_metrics.stream.batches.hash_buckets`).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import polars as pl

from polars_metrics import schema as s
from polars_metrics.stream import sources
from polars_metrics.stream.sources import ROW

MAX_SPLIT = 4  # sub-ranges per component beyond which the hash pass is cheaper


@dataclass(frozen=True)
class KeyRange:
    """What a ranged batch reads: its files' rows with ``lo <= key < hi`` (None: open), numbered
    from each file's offset in its whole table (``gt_offsets`` / ``pd_offsets``)."""

    key: str
    lo: object
    hi: object
    gt_offsets: tuple[int, ...]
    pd_offsets: tuple[int, ...]


def read(files, offsets, rng: KeyRange, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """The rows of one side of a ranged batch, with the global row number (and ``id`` when
    the table has none), as :func:`polars_metrics.stream.sources.numbered` gives them."""
    if not files:
        return pl.DataFrame(schema=schema)
    lf = pl.concat([pl.scan_parquet(f).with_row_index(ROW, offset=o)
                    for f, o in zip(files, offsets, strict=True)], how="vertical_relaxed")
    key = pl.col(rng.key)
    if rng.lo is not None:
        lf = lf.filter(key >= rng.lo)
    if rng.hi is not None:
        lf = lf.filter(key < rng.hi)
    if s.ID not in lf.collect_schema().names():
        lf = lf.with_columns(pl.col(ROW).cast(pl.Int64).alias(s.ID))
    return lf.collect().select(list(schema)).cast(schema)


def _file_stats(files: list[str], key: str) -> list[dict] | None:
    out = []
    for f in files:
        st = pl.scan_parquet(f).select(
            lo=pl.col(key).min(), hi=pl.col(key).max(), nulls=pl.col(key).null_count(),
            n=pl.len()).collect().row(0, named=True)
        if st["nulls"]:
            return None  # the hash pass reads them, and validation names the null keys
        out.append(st)
    return out


def _local_files(table) -> list[str] | None:
    if not sources.is_path(table):
        return None
    files = sources.files_of(table)
    if not files or any("://" in f for f in files):
        return None
    root = os.path.commonpath([os.path.dirname(f) for f in files])
    if any("=" in part for f in files for part in os.path.relpath(f, root).split(os.sep)[:-1]):
        return None  # hive columns come from the directory names: bucket the dataset instead
    return files


def key_ranges(gt, pd, keys, batch_size: int):
    """The batches of a by-data-row layout (see the module docstring), or None."""
    from polars_metrics.stream.batches import Batch  # batches imports this module

    if len(keys) != 1:
        return None
    files = [_local_files(gt), _local_files(pd)]
    if files[0] is None or files[1] is None:
        return None
    key = keys[0]
    try:
        stats = [_file_stats(f, key) for f in files]
        if stats[0] is None or stats[1] is None:
            return None
        items = sorted((st["lo"], st["hi"], side, i) for side in (0, 1)
                       for i, st in enumerate(stats[side]) if st["n"])
    except (pl.exceptions.PolarsError, TypeError):
        return None  # a missing or unorderable key: the run's checks name it
    offsets = [[0, *[int(x) for x in _cumsum([st["n"] for st in side])]][:-1]
               for side in stats]
    comps: list[list] = []
    for lo, hi, side, i in items:
        if comps and lo <= comps[-1][1]:
            comps[-1][1] = max(comps[-1][1], hi)
            comps[-1][2].append((side, i))
        else:
            comps.append([lo, hi, [(side, i)]])
    batches = []
    for c, (_, _, members) in enumerate(comps):
        n = sum(stats[side][i]["n"] for side, i in members)
        m = math.ceil(n / max(1, batch_size))
        if m > MAX_SPLIT:
            return None
        chosen = [sorted(i for side, i in members if side == t) for t in (0, 1)]
        bounds = [None, *_cuts([files[t][i] for t in (0, 1) for i in chosen[t]], key, m), None]
        for j in range(len(bounds) - 1):
            rng = KeyRange(key, bounds[j], bounds[j + 1],
                           tuple(offsets[0][i] for i in chosen[0]),
                           tuple(offsets[1][i] for i in chosen[1]))
            gt_f = tuple(files[0][i] for i in chosen[0])
            pd_f = tuple(files[1][i] for i in chosen[1])
            batches.append(Batch(f"keys-{c:05d}-{j:02d}-of-{len(bounds) - 1:02d}", gt_f, pd_f,
                                 None, _stamp(gt_f + pd_f, rng), rng))
    return batches


def _cumsum(xs):
    total = 0
    for x in xs:
        total += x
        yield total


def _cuts(files: list[str], key: str, m: int) -> list:
    """``m - 1`` key values cutting the files' rows into about equal parts (distinct, sorted)."""
    if m <= 1:
        return []
    col = pl.concat([pl.read_parquet(f, columns=[key])[key] for f in files]).sort()
    cuts = [col[len(col) * j // m] for j in range(1, m)]
    return sorted({c for c in cuts if c != col[0]})


def _stamp(files, rng: KeyRange) -> str:
    """Paths, sizes and modification times of the files, and the range (what decides whether
    a checkpoint is still valid; a rewritten file is a new batch)."""
    st = [(f, os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files]
    return json.dumps({"files": st, "range": [repr(rng.lo), repr(rng.hi)]})
