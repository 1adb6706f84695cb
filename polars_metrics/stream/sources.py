"""Inputs of a streamed evaluation: Parquet paths (file, glob, hive-partitioned directory),
LazyFrames or DataFrames, as LazyFrames that carry a global row number and an annotation id.

The row number (``_pm_row``) maps a reject back to its row in the whole table, and the id is the
row number when the table has no ``id`` column — the same id an in-memory evaluation generates —
so a batch's output names annotations exactly as ``pm.evaluate`` on the whole table does.
"""
from __future__ import annotations

import glob as _glob
import os
from pathlib import Path

import polars as pl

from polars_metrics import schema as s
from polars_metrics.errors import SchemaError

ROW = "_pm_row"        # global row number of an input row
BUCKET = "_pm_bucket"  # hash bucket of its data row


def is_path(table) -> bool:
    """A str / PathLike / list of them (a Parquet dataset), as opposed to a frame."""
    if isinstance(table, str | os.PathLike):
        return True
    return isinstance(table, list | tuple) and bool(table) and all(
        isinstance(t, str | os.PathLike) for t in table)


def is_streamable(table) -> bool:
    """Inputs ``pm.evaluate`` streams: paths and LazyFrames."""
    return is_path(table) or isinstance(table, pl.LazyFrame)


def _is_remote(path: str) -> bool:
    return "://" in path


def files_of(table) -> list[str]:
    """The Parquet files of a path, glob or directory (local paths; remote paths unchanged)."""
    paths = [table] if isinstance(table, str | os.PathLike) else list(table)
    out: list[str] = []
    for p in map(str, paths):
        if _is_remote(p):
            out.append(p)
        elif os.path.isdir(p):
            out.extend(sorted(str(f) for f in Path(p).rglob("*.parquet")))
        elif any(c in p for c in "*?["):
            out.extend(sorted(_glob.glob(p, recursive=True)))
        elif os.path.exists(p):
            out.append(p)
        else:
            raise SchemaError(f"no Parquet file at {p!r}; give a file, a glob ('gt/*.parquet') "
                              "or a directory of Parquet files.")
    return out


def scan(table, name: str) -> pl.LazyFrame:
    """A LazyFrame over ``table`` (path / glob / hive directory / frame)."""
    if isinstance(table, pl.LazyFrame):
        return table
    if isinstance(table, pl.DataFrame):
        return table.lazy()
    if is_path(table):
        paths = [str(p) for p in ([table] if isinstance(table, str | os.PathLike) else table)]
        files = [p for p in paths if _is_remote(p)] or files_of(table)
        if not files:
            raise SchemaError(f"{name}: no Parquet files match {paths}.")
        hive = any(os.path.isdir(p) for p in paths)
        return pl.scan_parquet(files, hive_partitioning=hive or None)
    raise SchemaError(f"{name} must be a Parquet path, a LazyFrame or a DataFrame; got "
                      f"{type(table).__name__}.")


def numbered(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Add the global row number, and ``id`` = that number when the table has none."""
    lf = lf.with_row_index(ROW)
    if s.ID not in lf.collect_schema().names():
        lf = lf.with_columns(pl.col(ROW).cast(pl.Int64).alias(s.ID))
    return lf


def bucket_expr(keys: list[str], n_buckets: int) -> pl.Expr:
    """The bucket of a data row: a seeded hash of its key, modulo ``n_buckets``."""
    key = pl.col(keys[0]) if len(keys) == 1 else pl.struct(keys)
    return (key.hash(seed=0x5EED) % n_buckets).cast(pl.Int32)


def row_count(lf: pl.LazyFrame) -> int:
    """Rows of a LazyFrame (read from Parquet metadata when it is a plain scan)."""
    return int(lf.select(pl.len()).collect().item())
