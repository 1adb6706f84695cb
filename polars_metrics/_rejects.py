"""The rejects table and its one collector, shared by every reader (and by validation).

A reader meets bad entries one at a time (a line of NDJSON) or a column at a time (a mask
over the entries of a COCO table). Either way it hands them to :class:`Rejects`, which raises
at the first one (``on_invalid="raise"``) or keeps them as rows of the rejects table
(``on_invalid="drop"``): ``table``, ``row`` (the entry's position or line in its input),
``data_row``, ``id``, ``column``, ``reason``. ``data_row`` and ``id`` are strings whatever the
input's key type, so the rejects of every reader and of validation concatenate.

This module sits low in the layers (it needs only the schema and the errors), so validation
can use it as well as the readers in ``polars_metrics.io``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics.errors import FormatError

ON_INVALID = ("raise", "drop")

REJECTS_SCHEMA = {
    s.TABLE: pl.String, s.ROW: pl.Int64, s.DATA_ROW: pl.String, s.ID: pl.String,
    s.COLUMN: pl.String, s.REASON: pl.String,
}


class Reject(NamedTuple):
    """One rejected entry (a row of the rejects table)."""

    table: str
    row: int
    data_row: str | None
    id: str | None
    column: str
    reason: str


# message(first reject, number of entries rejected together, fix hint) -> error text
Message = Callable[[Reject, int, str], str]


def empty_rejects() -> pl.DataFrame:
    """The rejects table without rows.

    >>> empty_rejects().columns
    ['table', 'row', 'data_row', 'id', 'column', 'reason']
    """
    return pl.DataFrame(schema=REJECTS_SCHEMA)


def check_on_invalid(on_invalid: str) -> None:
    """Raise unless ``on_invalid`` is "raise" or "drop"."""
    if on_invalid not in ON_INVALID:
        raise ValueError(f"on_invalid must be 'raise' or 'drop', got {on_invalid!r}.")


def default_message(rej: Reject, count: int, fix: str) -> str:
    more = f" ({count} entries in all)" if count > 1 else ""
    return (f"{rej.table} row {rej.row}: {rej.column}: {rej.reason}{more}. {fix}"
            "Fix the input, or pass on_invalid='drop' to set such entries aside.")


def _text(value) -> str | None:
    return None if value is None else str(value)


class Rejects:
    """Collect a reader's bad entries; raise at the first unless ``on_invalid="drop"``.

    ``message`` formats the error raised with ``on_invalid="raise"`` (each reader words it in
    its input's terms: "line 3", "annotations[7]"); ``error`` is the exception type.

    Examples
    --------
    >>> import numpy as np
    >>> rej = Rejects("drop")
    >>> rej.add("predictions", 3, "bbox", "is not 4 numbers", data_row="img-1", id=7)
    >>> rej.add_where("images", np.array([False, True]), "width", "is negative",
    ...               data_row=np.array([10, 11]))
    >>> rej.frame().select("table", "row", "data_row", "id", "column").rows()
    [('predictions', 3, 'img-1', '7', 'bbox'), ('images', 1, '11', None, 'width')]
    >>> Rejects("raise").add("predictions", 3, "bbox", "is not 4 numbers")
    Traceback (most recent call last):
    ...
    polars_metrics.errors.FormatError: predictions row 3: bbox: is not 4 numbers. Fix the input, or pass on_invalid='drop' to set such entries aside.
    """

    def __init__(self, on_invalid: str, message: Message = default_message,
                 error: type[Exception] = FormatError) -> None:
        check_on_invalid(on_invalid)
        self.drop = on_invalid == "drop"
        self._message = message
        self._error = error
        self._rows: list[Reject] = []
        self._parts: list[pl.DataFrame] = []

    def add(self, table: str, row: int, column: str, reason: str, *, data_row=None, id=None,
            fix: str = "") -> None:
        """Reject one entry."""
        rej = Reject(table, int(row), _text(data_row), _text(id), column, reason)
        if not self.drop:
            raise self._error(self._message(rej, 1, fix))
        self._rows.append(rej)

    def add_where(self, table: str, bad: np.ndarray, column: str, reason: str, *,
                  data_row: np.ndarray | None = None, ids: np.ndarray | None = None,
                  fix: str = "") -> None:
        """Reject the entries where the boolean array ``bad`` is True (row = their position);
        ``data_row`` / ``ids`` are per-entry arrays (None entries stay null)."""
        rows = np.flatnonzero(bad)
        if rows.size == 0:
            return
        if not self.drop:
            r = int(rows[0])
            first = Reject(table, r, None if data_row is None else _text(data_row[r]),
                           None if ids is None else _text(ids[r]), column, reason)
            raise self._error(self._message(first, int(rows.size), fix))

        def pick(a: np.ndarray | None) -> list:
            return [None] * rows.size if a is None else [_text(v) for v in a[rows].tolist()]

        self._flush()
        self._parts.append(pl.DataFrame({
            s.TABLE: [table] * rows.size, s.ROW: rows.astype(np.int64), s.DATA_ROW: pick(data_row),
            s.ID: pick(ids), s.COLUMN: [column] * rows.size, s.REASON: [reason] * rows.size,
        }, schema=REJECTS_SCHEMA))

    def _flush(self) -> None:
        if self._rows:
            self._parts.append(pl.DataFrame(self._rows, schema=REJECTS_SCHEMA, orient="row"))
            self._rows = []

    def frame(self, *, sort: bool = False) -> pl.DataFrame:
        """The rejects table, in the order entries were rejected (``sort``: by table, row)."""
        self._flush()
        if not self._parts:
            return empty_rejects()
        out = pl.concat(self._parts)
        return out.sort(s.TABLE, s.ROW, maintain_order=True) if sort else out
