"""Plumbing shared by the Labelbox readers: record sources, error collection, choices."""
from __future__ import annotations

import io
import json
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

import polars as pl

from polars_metrics import schema as s
from polars_metrics._rejects import Reject, Rejects
from polars_metrics.errors import PolarsMetricsWarning, did_you_mean

Role = Literal["predictions", "ground_truth"]
SPAN_ENDS = ("inclusive", "exclusive")
MASK_COLORS = ("exact", "any")
CHUNK_LINES = 50_000


# --- shared plumbing ------------------------------------------------------------------------------
def _message(rej: Reject, count: int, fix: str) -> str:
    return (f"{rej.table} line {rej.row}: {rej.column}: {rej.reason.rstrip('.')}. "
            "Fix the file, or pass on_invalid='drop' to skip such lines "
            "(they are listed in the returned rejects).")


class Problems:
    """One table's rejects (the shared collector, errors worded by line) and the counts of
    what the reader skipped on purpose (reported in one warning)."""

    def __init__(self, table: str, on_invalid: str):
        self.table = table
        self.rejects = Rejects(on_invalid, _message)
        self.drop = self.rejects.drop
        self.skipped: Counter = Counter()

    def bad(self, line: int, field: str, problem: str, data_row=None, ident=None) -> None:
        self.rejects.add(self.table, line, field, problem, data_row=data_row, id=ident)

    def frame(self) -> pl.DataFrame:
        return self.rejects.frame()

    def warn_skipped(self) -> None:
        if self.skipped:
            summary = ", ".join(f"{k} ({n})" for k, n in self.skipped.most_common())
            warnings.warn(f"{self.table}: skipped {sum(self.skipped.values())} line(s) or "
                          f"annotation(s) the metrics cannot use: {summary}.",
                          PolarsMetricsWarning, stacklevel=3)


def iter_records(source) -> Iterator[tuple[int, Any, str | None]]:
    """(line number, parsed object or None, error message or None) for every non-blank record:
    every line is accounted for (a record, or an error naming the line)."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fh:
            yield from _iter_handle(fh)
    elif isinstance(source, io.IOBase) or hasattr(source, "read"):
        yield from _iter_handle(source)
    elif isinstance(source, Mapping):
        yield 1, source, None
    elif isinstance(source, Iterable):
        for n, item in enumerate(source, start=1):
            if isinstance(item, str | bytes | bytearray):
                if not item.strip():
                    continue
                yield _parse_line(n, item)
            else:
                yield n, item, None
    else:
        raise TypeError(f"expected a path, a file object or an iterable of lines / dicts; got "
                        f"{type(source).__name__}.")


def _iter_handle(fh) -> Iterator[tuple[int, Any, str | None]]:
    n = 0
    first = None
    for raw in fh:
        n += 1
        if raw.strip():
            first = raw
            break
    if first is None:
        return
    if first.lstrip().startswith(b"[" if isinstance(first, bytes) else "["):
        # a JSON array of records (the SDK's own test assets)
        _, records, err = _parse_line(n, first + fh.read())
        if err is not None:
            yield n, None, err
            return
        if not isinstance(records, list):
            yield n, None, f"expected a JSON array of records, got {type(records).__name__}"
            return
        for i, rec in enumerate(records, start=1):
            yield i, rec, None
        return
    yield _parse_line(n, first)
    for raw in fh:
        n += 1
        if raw.strip():
            yield _parse_line(n, raw)


def _parse_line(n: int, line) -> tuple[int, Any, str | None]:
    try:
        if isinstance(line, bytes | bytearray):
            line = bytes(line).decode("utf-8")
        return n, json.loads(line), None
    except UnicodeDecodeError as exc:
        return n, None, f"not UTF-8 text: {exc}"
    except json.JSONDecodeError as exc:
        return n, None, f"not valid JSON: {exc}"
    except (RecursionError, ValueError) as exc:  # nesting too deep, numbers too long
        return n, None, f"not readable JSON: {type(exc).__name__}: {str(exc)[:200]}"


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}."
                         + (did_you_mean(value, choices) if isinstance(value, str) else ""))


def placeholder_kind(frame: pl.DataFrame) -> pl.DataFrame:
    """Placeholder rows (a labeled data row without annotations: null feature, id and geometry)
    take the frame's most common kind, so every row has the kind the engine's checks expect."""
    if frame.height == 0 or frame[s.KIND].null_count() == 0:
        return frame
    counts = frame[s.KIND].drop_nulls().value_counts(sort=True)
    fill = counts[s.KIND][0] if counts.height else "box"
    return frame.with_columns(pl.col(s.KIND).fill_null(fill))
