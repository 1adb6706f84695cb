"""Data-row-complete batches of a streamed evaluation.

Two ways to get them:

* **hash buckets** (default): one streaming pass per table writes it to
  ``out/_buckets/<table>/_pm_bucket=<k>/`` (Polars ``sink_parquet`` partitioned by a seeded hash
  of the data-row key); bucket ``k`` of both tables is one batch. Every annotation of a data row
  lands in the same bucket, whichever input file it came from. No sort.
* **already bucketed** (``assume_bucketed=True``): the input's own files are the batches —
  the files of one hive partition directory (``.../part=3/*.parquet``), else each file — paired
  across the two tables by their path relative to the dataset root. A data row found in two
  batches is an error at the merge.

The number of buckets comes from ``batches=``, else ``batch_size=`` (annotations per batch),
else ``memory_limit=`` (bytes, or "2GB") over the measured peak bytes per annotation.

Before either, a run without ``batches=`` checks whether the files are already laid out by
data row (disjoint key ranges, :mod:`polars_metrics.stream.ranges`) and then takes them as they
are, cut at key values into batches of about the batch size: no bucketing pass.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from polars_metrics.errors import PolarsMetricsError
from polars_metrics.stream import sources
from polars_metrics.stream.ranges import KeyRange
from polars_metrics.stream.sources import BUCKET

# Peak resident bytes per annotation (ground truth + prediction rows) of a streamed run under
# the default 11 x 11 grid, measured by benchmarks/stream.py (with headroom): one batch
# computed, the next one read ahead and the last one's outputs being written (about 710 bytes
# per annotation of a batch at 1M images, 2M annotations per batch).
BYTES_PER_ANNOTATION = 800
DEFAULT_BATCH_SIZE = 2_000_000  # annotations per batch when no knob is given
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


@dataclass(frozen=True)
class Batch:
    """One data-row-complete batch: the Parquet files of each table (either may be empty)."""

    name: str
    gt_files: tuple[str, ...]
    pd_files: tuple[str, ...]
    bucket: int | None = None
    fingerprint: str = field(default="", compare=False)
    ranged: KeyRange | None = None  # a key range of the files (stream.ranges), else every row


def parse_bytes(limit: int | str) -> int:
    """``2_000_000_000``, ``"2GB"``, ``"1.5 GiB"`` -> bytes.

    Examples
    --------
    >>> parse_bytes("2GB"), parse_bytes("512 MiB"), parse_bytes(10)
    (2000000000, 536870912, 10)
    """
    if isinstance(limit, int | float):
        return int(limit)
    m = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", str(limit))
    if m is None or m.group(2).upper() not in _UNITS:
        raise PolarsMetricsError(f"memory_limit={limit!r} is not a size; write e.g. '2GB' or "
                                 "'512MiB' or a number of bytes.")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def batch_size_of(batch_size: int | None, memory_limit: int | str | None) -> int:
    """Annotations per batch from the knobs (``DEFAULT_BATCH_SIZE`` without one)."""
    if batch_size is None:
        batch_size = (DEFAULT_BATCH_SIZE if memory_limit is None
                      else max(1, parse_bytes(memory_limit) // BYTES_PER_ANNOTATION))
    if int(batch_size) < 1:
        raise PolarsMetricsError(f"batch_size={batch_size}; give at least 1 annotation.")
    return int(batch_size)


def n_buckets(n_annotations: int, *, batches: int | None, batch_size: int | None,
              memory_limit: int | str | None) -> int:
    """How many hash buckets: ``batches`` as given, else from the batch size or memory budget.

    Examples
    --------
    >>> n_buckets(10_000_000, batches=None, batch_size=1_000_000, memory_limit=None)
    10
    >>> n_buckets(10_000_000, batches=None, batch_size=None, memory_limit="1.6GB")
    5
    """
    if batches is not None:
        if int(batches) < 1:
            raise PolarsMetricsError(f"batches={batches}; give at least 1.")
        return int(batches)
    return max(1, math.ceil(n_annotations / batch_size_of(batch_size, memory_limit)))


def _fingerprint(files) -> str:
    """Content hash of a batch's files (what decides whether its checkpoint is still valid)."""
    h = hashlib.blake2b(digest_size=16)
    for f in files:
        h.update(os.path.basename(os.path.dirname(f)).encode())
        if "://" in f:
            h.update(f.encode())
            continue
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


def _with_fingerprints(batches: list[Batch]) -> list[Batch]:
    return [Batch(b.name, b.gt_files, b.pd_files, b.bucket,
                  _fingerprint(b.gt_files) + _fingerprint(b.pd_files))
            for b in batches]


def source_stamp(gt, pd, keys, n: int) -> str | None:
    """Paths, sizes and modification times of local Parquet inputs (None for frames and
    remote paths): when unchanged, an earlier bucketing pass under ``out=`` is reused."""
    stamp = []
    for table in (gt, pd):
        if not sources.is_path(table):
            return None
        for f in sources.files_of(table):
            if "://" in f:
                return None
            st = os.stat(f)
            stamp.append((f, st.st_size, st.st_mtime_ns))
    return json.dumps({"files": stamp, "keys": keys, "n": n, "polars": pl.__version__})


def hash_buckets(gt: pl.LazyFrame, pd: pl.LazyFrame, keys: list[str], work: Path,
                 n: int, stamp: str | None = None) -> list[Batch]:
    """Write both tables into ``n`` hash buckets under ``work`` (one streaming pass each);
    reuse the buckets of an earlier run when its ``stamp`` is the same (not None)."""
    done = work / "done.json"
    if stamp is not None and done.exists() and json.loads(done.read_text()).get("stamp") == stamp:
        return _listed(work, n)
    if work.exists():
        shutil.rmtree(work)
    for name, lf in (("gt", gt), ("pd", pd)):
        target = work / name
        target.mkdir(parents=True)
        lf.with_columns(sources.bucket_expr(keys, n).alias(BUCKET)).sink_parquet(
            pl.PartitionBy(target, key=BUCKET, include_key=False), mkdir=True)
    done.write_text(json.dumps({"n": n, "stamp": stamp}))
    return _listed(work, n)


def _listed(work: Path, n: int) -> list[Batch]:
    out = []
    for k in range(n):
        files = [sorted(str(f) for f in (work / t / f"{BUCKET}={k}").glob("*.parquet"))
                 for t in ("gt", "pd")]
        if files[0] or files[1]:
            out.append(Batch(f"bucket-{k:05d}-of-{n:05d}", tuple(files[0]), tuple(files[1]), k))
    return _with_fingerprints(out)


def pre_bucketed(gt, pd) -> list[Batch]:
    """Batches from the input's own layout (``assume_bucketed=True``); see the module doc."""
    groups: dict[str, list[list[str]]] = {}
    for side, table in enumerate((gt, pd)):
        if not sources.is_path(table):
            raise PolarsMetricsError(
                "assume_bucketed=True reads the batches from the files of a Parquet dataset; "
                "give both tables as paths (a directory, glob or list of files).")
        files = sources.files_of(table)
        root = os.path.commonpath([os.path.dirname(f) for f in files]) if files else ""
        for f in files:
            rel = os.path.relpath(f, root)
            parts = Path(rel).parts
            hive = [p for p in parts[:-1] if "=" in p]
            key = "/".join(hive) if hive else rel
            groups.setdefault(key, [[], []])[side].append(f)
    batches = [Batch(re.sub(r"[^A-Za-z0-9_.=-]+", "_", k), tuple(v[0]), tuple(v[1]))
               for k, v in sorted(groups.items())]
    return _with_fingerprints(batches)
