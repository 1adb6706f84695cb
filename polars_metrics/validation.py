"""Row checks run once at the boundary: raise a precise error, or move rows to the rejects table.

A check is a boolean expression that is True on bad rows. All checks of a table run in one
``select``; the first failing rows are named in the error with table, column, input row, data
row and annotation id, and the fix.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics._rejects import empty_rejects
from polars_metrics.errors import InvalidAnnotationError, SchemaError

OnInvalid = Literal["raise", "drop"]
POS = "_pos"  # the row's position in the table the user gave (0-based)
MAX_EXAMPLES = 5



@dataclass(frozen=True)
class Check:
    """``bad`` is True on failing rows: an expression, or a function of the frame returning a
    boolean numpy array (faster for fixed-width numeric columns). ``scope``, when given, limits
    the check to the rows where it is True."""

    column: str
    bad: pl.Expr | Callable[[pl.DataFrame], np.ndarray]
    reason: str
    fix: str
    scope: np.ndarray | None = None

    def mask(self, frame: pl.DataFrame) -> np.ndarray:
        if isinstance(self.bad, pl.Expr):
            return self._scoped(frame.select(self.bad.fill_null(False)).to_series().to_numpy())
        return self._scoped(np.asarray(self.bad(frame), dtype=bool))

    def _scoped(self, bad: np.ndarray) -> np.ndarray:
        return bad if self.scope is None else bad & self.scope

    def within(self, scope: np.ndarray) -> Check:
        """The same check restricted to the rows where ``scope`` is True."""
        return Check(self.column, self.bad, self.reason, self.fix,
                     scope if self.scope is None else self.scope & scope)


def masks(frame: pl.DataFrame, checks: Sequence[Check]) -> list[np.ndarray | None]:
    """Each check's bad-row mask, None where no row is bad (the common case: no array is made
    for it). The expression checks run in one ``select`` (Polars evaluates them in parallel)
    and are converted to numpy only when a row fails; the function checks run one by one.

    >>> f = pl.DataFrame({"x": [1, None, 3]})
    >>> [m if m is None else m.tolist() for m in masks(f, [
    ...     Check("x", pl.col("x").is_null(), "null", "fill it"),
    ...     Check("x", pl.col("x") > 5, "large", "shrink it")])]
    [[False, True, False], None]
    """
    exprs = {i: c.bad for i, c in enumerate(checks) if isinstance(c.bad, pl.Expr)}
    out: dict[int, np.ndarray | None] = {}
    if exprs:
        got = frame.select([e.fill_null(False).alias(f"_c{i}") for i, e in exprs.items()])
        for i in exprs:
            column = got[f"_c{i}"]
            if not column.any():  # on polars' bits: no bool array when nothing is bad
                out[i] = None
                continue
            bad = column.to_numpy()
            if bad.size != frame.height:  # only literals: one value for every row
                bad = np.full(frame.height, bool(bad[0]))
            out[i] = _none_if_clean(checks[i]._scoped(bad))
    return [out[i] if i in out else _none_if_clean(c.mask(frame))
            for i, c in enumerate(checks)]


def _none_if_clean(bad: np.ndarray) -> np.ndarray | None:
    return bad if bad.any() else None


def key_string(keys: Sequence[str]) -> pl.Expr:
    """The data-row key as one readable string (composite keys joined with '/')."""
    if len(keys) == 1:
        return pl.col(keys[0]).cast(pl.String)
    return pl.concat_str([pl.col(k).cast(pl.String) for k in keys], separator="/")


def run_checks(frame: pl.DataFrame, table: str, keys: Sequence[str], checks: Sequence[Check],
               on_invalid: OnInvalid) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Apply ``checks``; return (good rows, rejects). Raise on the first failing check when asked.

    ``frame`` must carry ``_pos`` and ``id``; ``keys=()`` names rows by position only (a
    column given to an expression has no data rows, ids or rejects).
    """
    if not checks or frame.height == 0:
        return frame, empty_rejects()
    failed = [(check, mask) for check, mask in zip(checks, masks(frame, checks), strict=True)
              if mask is not None]
    if not failed:
        return frame, empty_rejects()
    any_bad = np.logical_or.reduce([mask for _, mask in failed])
    rejects = []
    for check, mask in failed:
        bad = frame.filter(pl.Series(mask))
        if on_invalid == "raise":
            raise InvalidAnnotationError(_message(bad, table, keys, check))
        rejects.append(
            bad.select(
                pl.lit(table).alias(s.TABLE),
                pl.col(POS).cast(pl.Int64).alias(s.ROW),
                key_string(keys).alias(s.DATA_ROW),
                pl.col(s.ID).cast(pl.String).alias(s.ID),
                pl.lit(check.column).alias(s.COLUMN),
                pl.lit(check.reason).alias(s.REASON),
            )
        )
    # A row failing several checks is reported once per check but removed once.
    rejected = pl.concat(rejects).unique(subset=[s.ROW, s.COLUMN, s.REASON], maintain_order=True)
    return frame.filter(pl.Series(~any_bad)), rejected


def _message(bad: pl.DataFrame, table: str, keys: Sequence[str], check: Check) -> str:
    lines = [f"{table}.{check.column}: {bad.height} row(s) invalid: {check.reason}."]
    shown = bad.head(MAX_EXAMPLES)
    col_vals = shown[check.column].to_list() if check.column in shown.columns else [None] * shown.height
    if not keys:  # a column of an expression: rows by position
        for pos, val in zip(shown[POS].to_list(), col_vals, strict=True):
            lines.append(f"  row {pos}: {check.column}={_short(val)}")
    else:
        key_vals = shown.select(key_string(keys)).to_series().to_list()
        for pos, key, ident, val in zip(shown[POS].to_list(), key_vals, shown[s.ID].to_list(),
                                        col_vals, strict=True):
            lines.append(f"  row {pos} ({'/'.join(keys)}={key!r}, id={ident!r}): "
                         f"{check.column}={_short(val)}")
    if bad.height > MAX_EXAMPLES:
        lines.append(f"  ... and {bad.height - MAX_EXAMPLES} more")
    if keys:
        lines.append(f"Fix: {check.fix}, or pass on_invalid='drop' to move such rows to ev.rejects.")
    else:
        lines.append(f"Fix: {check.fix}.")
    return "\n".join(lines)


def _short(value, limit: int = 200) -> str:
    """``repr`` of a value, cut to ``limit`` characters (a polygon can have a million points)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"


def require_columns(frame: pl.DataFrame, table: str, columns: Sequence[str], hint: str = "") -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        from polars_metrics.errors import did_you_mean

        sugg = "".join(did_you_mean(m, frame.columns) for m in missing)
        raise SchemaError(
            f"{table} is missing column(s) {missing}; it has {frame.columns}.{sugg}"
            + (f" {hint}" if hint else "")
        )
