"""Guards of the boundary (issue 10): first-use traps and silent outcomes turned into clear
errors or warnings before the engine runs — score-like columns, the ``confidence=`` column,
input positions carried across ``pm.partial`` parts, by= columns that cannot slice, tables
mostly rejected, kinds that never pair."""
from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics.errors import (
    PolarsMetricsError,
    PolarsMetricsWarning,
    SchemaError,
    did_you_mean,
)
from polars_metrics.kinds import pair_groups
from polars_metrics.validation import POS


def to_frame(table, name: str) -> pl.DataFrame:
    """Accept a Polars DataFrame / LazyFrame or anything ``pl.DataFrame`` takes (Arrow, dict)."""
    if isinstance(table, pl.DataFrame):
        return table
    if isinstance(table, pl.LazyFrame):
        return table.collect()
    try:
        import pyarrow as pa

        if isinstance(table, pa.Table | pa.RecordBatch):
            return pl.from_arrow(table)
    except ImportError:  # pragma: no cover
        pass
    try:
        return pl.DataFrame(table)
    except Exception as exc:
        raise SchemaError(
            f"{name} must be a Polars DataFrame/LazyFrame or an Arrow table; got {type(table).__name__}."
        ) from exc


# by= slices make dense slice x cell x feature tables: refuse a column that is (nearly) one
# value per data row, which would cost far more memory than it tells
MAX_SLICES = 5000
MAX_SLICE_SHARE = 0.5   # ... or more than half as many slices as data rows, above
MIN_SLICES_CHECKED = 500
REJECT_WARN_SHARE = 0.05  # on_invalid="drop": warn when more of a table than this is rejected


def refuse_dense_slices(n_slices: int, n_rows: int, by, n_cells: int) -> None:
    if not by or n_slices <= MIN_SLICES_CHECKED:
        return
    if n_slices > MAX_SLICES or n_slices > MAX_SLICE_SHARE * n_rows:
        raise PolarsMetricsError(
            f"by={list(by)} makes {n_slices:,} slices of {n_rows:,} data rows: nearly one slice "
            f"per data row. Every slice gets dense tables of {n_cells} threshold cells x "
            "features (x features for the confusion matrix), which would take far more memory "
            "than the answer is worth. Slice by a coarser column (data_rows=frame with one "
            "value per data row for a few groups), use the per-data-row table ev.data_rows for "
            "per-data-row numbers, or evaluate each group separately with pm.partial(...) on "
            "its data rows.")


def warn_many_rejects(rejects: pl.DataFrame, heights: dict[str, int]) -> None:
    """on_invalid="drop" that sets aside much of a table gives metrics of what is left: say so."""
    if rejects.height == 0:
        return
    for table, n in heights.items():
        mine = rejects.filter(pl.col(s.TABLE) == table)
        n_bad = mine.select(pl.struct(s.ROW).n_unique()).item() if mine.height else 0
        if n and n_bad > REJECT_WARN_SHARE * n:
            top = mine.group_by(s.COLUMN, s.REASON).len().sort("len", descending=True).head(3)
            reasons = "; ".join(f"{r[s.COLUMN]}: {r[s.REASON]} ({r['len']})"
                                for r in top.iter_rows(named=True))
            warnings.warn(
                f"on_invalid='drop' set aside {n_bad:,} of {n:,} {table} rows "
                f"({100 * n_bad / n:.0f}%); the metrics describe only the rest. Top reasons: "
                f"{reasons}. See ev.rejects.", PolarsMetricsWarning, stacklevel=5)


def refuse_prediction_only_slices(gt, pd, keys, by, meta) -> None:
    """A by= column that only the predictions carry and that varies within a data row (two
    models' predictions in one table) cannot slice data rows: say how to evaluate it."""
    for col in by:
        if (meta is not None and col in meta.columns) or col in gt.columns or col not in pd.columns:
            continue
        varying = (pd.select(*keys, col).unique().group_by(list(keys)).len()
                   .filter(pl.col("len") > 1))
        if varying.height:
            raise SchemaError(
                f"by={col!r}: the predictions hold several {col!r} values within data row "
                f"{varying.select(keys).row(0, named=True)}. by= slices whole data rows, so it "
                f"cannot split one data row's predictions (e.g. two models). Evaluate each value "
                f"separately: {{v: pm.evaluate(gt, pd.filter(pl.col({col!r}) == v)) for v in "
                f"pd[{col!r}].unique()}}.")


def warn_unpairable_kinds(gt, pd, gt_row, pd_row, gt_ann, pd_ann, universe, keys,
                           profile) -> None:
    """Warn when a data row has ground truths and predictions of kinds that never pair (e.g.
    masks against boxes) and some kind occurs on one side of the whole evaluation only: every
    such prediction is a false positive, every ground truth a miss (pm.read_coco's masks
    against detection boxes gave all-zero metrics without a word)."""
    if gt_row.size == 0 or pd_row.size == 0:
        return
    # one kind in both tables, the usual case, needs nothing else
    if len(set(gt[s.KIND].unique().drop_nulls().to_list())
           | set(pd[s.KIND].unique().drop_nulls().to_list())) < 2:
        return
    # (annotation rows without a kind are rejected by the row checks, never reach here)
    g_kind = gt[s.KIND].cast(pl.String).filter(pl.Series(gt_ann)).drop_nulls()
    p_kind = pd[s.KIND].cast(pl.String).filter(pl.Series(pd_ann)).drop_nulls()
    names = sorted(set(g_kind.unique().to_list()) | set(p_kind.unique().to_list()))
    if len(names) < 2:
        return
    group_of = {k: i for i, members in enumerate(pair_groups(names, profile).values())
                for k in members}
    n_g = len(set(group_of.values()))
    if n_g < 2:
        return
    gk, pk = g_kind.to_numpy(), p_kind.to_numpy()
    gg = g_kind.replace_strict(group_of, return_dtype=pl.Int64).to_numpy()
    pg = p_kind.replace_strict(group_of, return_dtype=pl.Int64).to_numpy()
    if set(gg.tolist()) == set(pg.tolist()):
        return  # every kind has partners somewhere: a row without them is a model's miss
    both = np.intersect1d(gt_row, pd_row)
    paired = np.unique(np.intersect1d(gt_row * n_g + gg, pd_row * n_g + pg) // n_g)
    lonely = np.setdiff1d(both, paired)
    if lonely.size == 0:
        return
    first = int(lonely[0])
    gkinds = sorted(set(gk[gt_row == first].tolist()))
    pkinds = sorted(set(pk[pd_row == first].tolist()))
    where = universe.select(keys).row(first, named=True)  # row i is data row i
    warnings.warn(
        f"{lonely.size:,} data row(s) have ground truths and predictions of kinds that never "
        f"pair, e.g. data row {where}: ground truth {gkinds}, predictions {pkinds}. Every such "
        "prediction counts as a false positive and every ground truth as a miss. Give both "
        "tables comparable kinds (pm.read_coco(..., iou_type='bbox'), boxes from masks, or "
        "the same classification kind).", PolarsMetricsWarning, stacklevel=5)


SCORE_LIKE = ("score", "scores", "conf", "probability", "prob", "probabilities", "pred_score")


def refuse_score_like(frame: pl.DataFrame, table: str) -> None:
    """No ``confidence`` but a numeric column named like a score: every prediction would
    silently count as confidence 1.0 (a first-use trap), so say which column was meant."""
    found = [c for c in frame.columns if c.lower() in SCORE_LIKE and frame.schema[c].is_numeric()]
    if found:
        raise SchemaError(
            f"{table} has no '{s.CONFIDENCE}' column but a numeric {found[0]!r} column: without "
            f"'{s.CONFIDENCE}' every prediction counts as confidence 1.0. Did you mean "
            f"confidence={found[0]!r}? Pass pm.evaluate(..., confidence={found[0]!r}) (or rename "
            f"the column to '{s.CONFIDENCE}'); to score every prediction 1.0 on purpose, add "
            f"pl.lit(1.0).alias('{s.CONFIDENCE}').")


def use_confidence_column(predictions, name: str | None):
    """``predictions`` with the column ``name`` as ``confidence`` (``pm.evaluate(...,
    confidence="score")``); unchanged when ``name`` is None or already "confidence".

    >>> import polars as pl
    >>> use_confidence_column(pl.DataFrame({"score": [0.5]}), "score").columns
    ['confidence']
    """
    if name is None or name == s.CONFIDENCE:
        return predictions
    if not isinstance(name, str):
        raise TypeError(f"confidence= names a column of the predictions, got {name!r}.")
    frame = to_frame(predictions, s.PREDICTIONS)
    if name not in frame.columns:
        raise SchemaError(f"confidence={name!r}: predictions have no column {name!r}; they have "
                          f"{frame.columns}." + did_you_mean(name, frame.columns))
    if s.CONFIDENCE in frame.columns:
        raise SchemaError(f"confidence={name!r}: predictions also have a '{s.CONFIDENCE}' "
                          "column; drop one of the two so the score is unambiguous.")
    return frame.rename({name: s.CONFIDENCE})


def is_name(dtype) -> bool:
    """A column of names: String, Categorical or Enum (or all null)."""
    return dtype in (pl.String, pl.Null) or isinstance(dtype, pl.Categorical | pl.Enum)


def is_integer(dtype) -> bool:
    return dtype.is_integer() or dtype == pl.Null


def is_number(dtype) -> bool:
    return dtype.is_numeric() or dtype == pl.Null


def is_key(dtype) -> bool:
    """One identifying value a row: not a list, array or struct, not bytes or an object."""
    return not dtype.is_nested() and dtype not in (pl.Binary, pl.Object)


def is_flag(dtype) -> bool:
    """Boolean, or integers 0 / 1 as COCO writes ``iscrowd``."""
    return dtype == pl.Boolean or is_integer(dtype)


DtypeRules = dict[str, tuple[Callable[[Any], bool], str]]  # column: (accepts dtype, expected)

# the columns every profile reads one value a row from (the kinds check their geometry columns)
COLUMN_DTYPES: DtypeRules = {
    s.KIND: (is_name, "a kind name (String)"),
    s.ID: (lambda d: is_integer(d) or is_name(d), "an integer or String id"),
    s.MESSAGE_ID: (is_key, "one message id per row (an integer or a String)"),
    s.CONFIDENCE: (is_number, "Float64 in [0, 1]"),
}


def key_rules(keys) -> DtypeRules:
    """The rules of the data-row key columns (one per column of a composite key)."""
    return {k: (is_key, "one data-row key value per row (a String or an integer); for a "
                        "composite key, data_row=[column, ...]") for k in keys}


def refuse_dtypes(frame: pl.DataFrame, table: str, rules: DtypeRules = COLUMN_DTYPES) -> None:
    """Refuse a column of a dtype it cannot be read as (for ``id``: a list, an array, a
    struct), naming table, column and the dtype expected: polars' or numpy's own error from
    deeper down would name neither.

    >>> refuse_dtypes(pl.DataFrame({"id": [[1]]}), "ground_truth")
    Traceback (most recent call last):
    ...
    polars_metrics.errors.SchemaError: ground_truth.id has dtype List(Int64); expected an integer or String id.
    """
    for column, (accepts, expected) in rules.items():
        if column in frame.columns and not accepts(frame.schema[column]):
            raise SchemaError(f"{table}.{column} has dtype {frame.schema[column]}; expected {expected}.")


def positions(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """The ``_pos`` column: each row's position in the table given (rejects' ``row``, generated
    ids). A table may bring its own: split a table for ``pm.partial`` after
    ``table.with_row_index("_pos")`` and every part reports the whole table's positions, so
    the merged rejects and generated ids equal those of one evaluation."""
    if POS not in frame.columns:
        return frame.with_row_index(POS)
    col = frame[POS]
    if not col.dtype.is_integer() or col.null_count():
        raise SchemaError(f"{table}.{POS} (the input positions) must be non-null integers, got "
                          f"{col.dtype}; add it with table.with_row_index({POS!r}) before "
                          "splitting the table.")
    if col.len() and (col.min() < 0 or col.max() >= 2**32 or not (col.diff().drop_nulls() > 0).all()):
        raise SchemaError(f"{table}.{POS} must increase strictly from row to row (positions in "
                          f"the whole table, 0 <= {POS} < 2**32): keep the rows of each part in "
                          "the whole table's order.")
    return frame.with_columns(col.cast(pl.UInt32))
