"""Input tables → validated, encoded, data-row-sorted arrays (the boundary of the engine).

Everything the kernels trust is established here, once: columns and dtypes, row checks
(SPEC §7), the data-row index shared by both tables, feature codes, which data rows count under
the profile (the rest go to ``excluded`` with a reason), slices for ``by=``, and the sort by
data row that gives every later stage its CSR offsets.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from polars_metrics import _arrays
from polars_metrics import schema as s
from polars_metrics._kernels.aot import kernel
from polars_metrics._parallel import even_parts, map_ranges, run_pieces
from polars_metrics._rejects import check_on_invalid, empty_rejects
from polars_metrics.errors import (
    PolarsMetricsError,
    PolarsMetricsWarning,
    SchemaError,
    did_you_mean,
)
from polars_metrics.kinds import KIND_DTYPE, KIND_NAMES, derive_features, infer_kind, kind
from polars_metrics.kinds.classification import QuestionIndex, qualify_collisions
from polars_metrics.prepare import guards as G
from polars_metrics.prepare.guards import to_frame, use_confidence_column  # noqa: F401 (re-exported)
from polars_metrics.profiles import Profile
from polars_metrics.validation import POS, Check, OnInvalid, require_columns, run_checks

stable_group_order = kernel("groups", "stable_group_order")
kept_side = kernel("groups", "kept_side")
count_at_or_below = kernel("sorting", "count_at_or_below")
first_descent = kernel("sorting", "first_descent")

ROW = "_row"      # data-row index among the counted rows, 0..n_rows-1
SLICE = "_slice"  # slice index, index into Prepared.slices
GIVEN = s.CONFIDENCE_GIVEN  # predictions: False where the confidence was missing (read as 1.0)

EXCLUDED_REASONS = ("no ground truth", "no predictions", "no annotations", "not in ground truth")


@dataclass(frozen=True)
class Side:
    """One table after preparation, viewed in data-row order.

    ``frame`` holds the validated annotations of the counted data rows in input order; ``idx``
    lists its rows in (data row, input) order (None when it already is in that order), so only
    the columns a stage needs are gathered, never the whole table. ``feat`` and ``npass`` are
    in data-row order; ``off`` are the CSR offsets over data rows.

    A result keeps a compact form (:meth:`kept`): the order as runs of consecutive rows and the
    feature codes narrowed; ``idx`` and ``feat`` read them back the same either way.
    """

    frame: pl.DataFrame
    order: np.ndarray | _arrays.Runs | None  # ``idx`` as stored
    off: np.ndarray
    codes: np.ndarray           # ``feat`` as stored: int32, or narrowed in a kept side
    npass: np.ndarray | None    # int32, predictions: confidence thresholds passed (kept iff c < npass)

    def __len__(self) -> int:
        return self.codes.shape[0]

    @property
    def idx(self) -> np.ndarray | None:
        """Positions in ``frame`` of the annotations in data-row order (None: the same order)."""
        return self.order.expand() if isinstance(self.order, _arrays.Runs) else self.order

    @property
    def feat(self) -> np.ndarray:
        """int32 feature code of each annotation in data-row order."""
        return _arrays.widened(self.codes)

    @property
    def row(self) -> np.ndarray:
        """int64 data-row index of each annotation. Computed from ``off`` on each use, not
        stored: it would be the largest array an evaluation keeps per prediction."""
        return np.repeat(np.arange(self.off.shape[0] - 1, dtype=np.int64), np.diff(self.off))

    def kept(self, frame: pl.DataFrame, npass: np.ndarray | None) -> Side:
        """This side as a result keeps it, over ``frame`` (the same rows, fewer columns): the
        order as :class:`~polars_metrics._arrays.Runs` when the table was in data-row order
        apart from the rows dropped, the feature codes :func:`~polars_metrics._arrays.narrowed`.

        >>> idx = np.delete(np.arange(20, dtype=np.int32), 3)  # row 3 of the frame dropped
        >>> side = Side(pl.DataFrame({"a": range(20)}), idx, np.array([0, 19]),
        ...             np.zeros(19, np.int32), None)
        >>> k = side.kept(side.frame, None)
        >>> type(k.order).__name__, k.codes.dtype.name, np.array_equal(k.idx, idx), k.feat.dtype.name
        ('Runs', 'uint8', True, 'int32')
        """
        order = self.order
        if isinstance(order, np.ndarray):
            order = _arrays.Runs.of(order) or order
        return Side(frame, order, self.off, _arrays.narrowed(codes=self.codes)["codes"], npass)

    def column(self, name: str) -> pl.Series:
        """A column of ``frame`` in data-row order."""
        col, idx = self.frame[name], self.idx
        return col if idx is None else col.gather(idx)

    def select(self, *columns: str) -> pl.DataFrame:
        out, idx = self.frame.select(*columns), self.idx
        return out if idx is None else out[idx]

    def subset(self, positions: np.ndarray, n_rows: int) -> Side:
        """The annotations at ``positions`` (indices in data-row order, ascending)."""
        idx = self.idx
        base = positions if idx is None else idx[positions]
        row = self.row[positions]
        return Side(self.frame, base, _arrays.offsets(row, n_rows), self.feat[positions],
                    None if self.npass is None else self.npass[positions])


@dataclass(frozen=True)
class Prepared:
    keys: tuple[str, ...]
    by: tuple[str, ...]
    rows: pl.DataFrame       # counted data rows: keys, by columns, _slice; row i is data row i
    slices: pl.DataFrame     # _slice, by columns (one row when by is empty)
    features: tuple[str, ...]
    gt: Side
    pd: Side
    excluded: pl.DataFrame   # keys, by columns, reason, n_gt, n_pd
    rejects: pl.DataFrame
    conf_thr: np.ndarray
    iou_thr: np.ndarray
    questions: QuestionIndex  # classification questions, for true negatives
    repairs: pl.DataFrame | None = None  # geometry repaired at load (e.g. make_valid)
    profile: Profile | None = None  # read by kind modules' pairs (buffer radius, crs, ...)

    @property
    def n_rows(self) -> int:
        return self.rows.height


def _counted_rows(rows: str, in_gt: np.ndarray, n_gt: np.ndarray,
                  n_pd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which data rows count under the profile's ``rows`` rule (SPEC §5), and for the others
    the reason ``excluded`` gives."""
    if rows == "both":
        counted = (n_gt > 0) & (n_pd > 0)
    elif rows == "ground_truth":
        counted = in_gt
    else:
        counted = np.ones(in_gt.shape[0], dtype=bool)
    reason = np.where(
        ~in_gt & (n_pd == 0), "no annotations",
        np.where(~in_gt if rows == "ground_truth" else n_gt == 0,
                 "not in ground truth" if rows == "ground_truth" else "no ground truth",
                 "no predictions"),
    )
    return counted, reason


def prepare(gt, pd, *, keys: Sequence[str], by: Sequence[str], data_rows, profile: Profile,
            conf_thr: np.ndarray, iou_thr: np.ndarray, on_invalid: OnInvalid) -> Prepared:
    check_on_invalid(on_invalid)
    keys, by = tuple(keys), tuple(by)
    gt_generated_ids = s.ID not in to_frame(gt, s.GROUND_TRUTH).columns
    pd_generated_ids = s.ID not in to_frame(pd, s.PREDICTIONS).columns
    gt, gt_repairs = _normalize(to_frame(gt, s.GROUND_TRUTH), s.GROUND_TRUTH, keys, is_pd=False)
    pd, pd_repairs = _normalize(to_frame(pd, s.PREDICTIONS), s.PREDICTIONS, keys, is_pd=True)
    repairs = pl.concat([*gt_repairs, *pd_repairs]) if gt_repairs or pd_repairs else None
    _check_key_dtypes(gt, pd, keys)
    meta = data_rows_frame(data_rows, keys, by, gt) if data_rows is not None else None
    G.refuse_prediction_only_slices(gt, pd, keys, by, meta)
    heights = {s.GROUND_TRUTH: gt.height, s.PREDICTIONS: pd.height}

    gt, gt_rej = _validate(gt, s.GROUND_TRUTH, keys, on_invalid, is_pd=False,
                           generated_ids=gt_generated_ids)
    pd, pd_rej = _validate(pd, s.PREDICTIONS, keys, on_invalid, is_pd=True,
                           generated_ids=pd_generated_ids)
    rejects = pl.concat([gt_rej, pd_rej])
    G.warn_many_rejects(rejects, heights)
    gt, pd = _derive_features(gt), _derive_features(pd)
    gt, pd, renamed = qualify_collisions(gt, pd)
    if renamed:
        warnings.warn(
            f"answer names used by several questions (or by other features) are named "
            f"'question/answer' to keep them apart: {renamed[:10]}", PolarsMetricsWarning,
            stacklevel=4)

    # Placeholder rows (no feature, no geometry) only say that a data row exists; rows with
    # no feature after expansion (an empty checklist) say that a question was answered.
    gt_given = ~_placeholder_mask(gt)
    pd_given = ~_placeholder_mask(pd)
    gt_ann = gt_given & gt[s.FEATURE].is_not_null().to_numpy()
    pd_ann = pd_given & pd[s.FEATURE].is_not_null().to_numpy()

    # The universe of data rows, sorted by key so that every output is deterministic. Tables
    # usually list a data row's annotations together: work on runs of equal keys.
    gt_runs, pd_runs = _key_runs(gt, keys), _key_runs(pd, keys)
    parts = [gt_runs[0], pd_runs[0]]
    if meta is not None:
        parts.append(meta.select(keys))
    universe = pl.concat(parts).unique().sort(keys).with_row_index(ROW)
    n_all = universe.height
    gt_row = _row_codes(gt_runs, universe, keys)
    pd_row = _row_codes(pd_runs, universe, keys)
    n_gt = np.bincount(_where(gt_row, gt_given), minlength=n_all)
    n_pd = np.bincount(_where(pd_row, pd_given), minlength=n_all)
    in_gt = np.zeros(n_all, dtype=bool)
    in_gt[gt_row] = True
    G.warn_unpairable_kinds(gt, pd, _where(gt_row, gt_ann), _where(pd_row, pd_ann), gt_ann,
                           pd_ann, universe, keys, profile)

    counted, reason = _counted_rows(profile.rows, in_gt, n_gt, n_pd)
    universe = attach_by(universe, keys, by, meta, gt, pd)
    excluded = universe.filter(pl.Series(~counted, dtype=pl.Boolean)).select(
        *keys, *by,
        pl.Series(s.REASON, reason[~counted], dtype=pl.String),
        pl.Series(s.N_GT, n_gt[~counted], dtype=pl.Int64),
        pl.Series(s.N_PD, n_pd[~counted], dtype=pl.Int64),
    )

    # Renumber the counted rows 0..n-1; the sides reference their annotations by position.
    remap = np.cumsum(counted) - 1
    rows = universe.filter(pl.Series(counted, dtype=pl.Boolean)).drop(ROW)
    rows, slices = number_slices(rows, by)
    n_rows = rows.height
    G.refuse_dense_slices(slices.height, n_rows, by, conf_thr.shape[0] * iou_thr.shape[0])

    features, gt_feat, pd_feat = _feature_axis(gt[s.FEATURE], pd[s.FEATURE])
    npass = _thresholds_passed(pd[s.CONFIDENCE], conf_thr)
    # each annotation's counted data row (-1: its data row does not count), gathered once
    code = np.where(counted, remap, -1)
    # in place: each output reads only its own index first, and the row arrays are not
    # needed after (at 100,000 images a gathered copy is 75 MB of fresh pages)
    gt_code = np.take(code, gt_row, out=gt_row, mode="clip")
    pd_code = np.take(code, pd_row, out=pd_row, mode="clip")
    del gt_row, pd_row
    questions = QuestionIndex(features, gt, gt_code, pd, pd_code, npass, conf_thr.shape[0],
                              qualified=renamed)
    return Prepared(
        keys=keys, by=by, rows=rows, slices=slices, features=features,
        gt=_side(gt, gt_ann & (gt_code >= 0), gt_code, gt_feat, None, n_rows, given_up=True),
        pd=_side(pd, pd_ann & (pd_code >= 0), pd_code, pd_feat, npass, n_rows, given_up=True),
        excluded=excluded, rejects=rejects, conf_thr=conf_thr, iou_thr=iou_thr,
        questions=questions, profile=profile, repairs=repairs,
    )


def _thresholds_passed(confidence: pl.Series, conf_thr: np.ndarray) -> np.ndarray:
    """How many confidence thresholds each prediction passes (int32): it is kept at threshold
    index c iff c < npass, i.e. confidence >= threshold. Read chunk by chunk in place (no
    joined copy of a column read in row groups), on threads.

    >>> _thresholds_passed(pl.Series([0.0, 0.5, 0.7, 1.0]), np.array([0.5, 0.7])).tolist()
    [0, 1, 2, 2]
    """
    thr = np.ascontiguousarray(conf_thr, dtype=np.float64)
    out = np.empty(confidence.len(), np.int32)

    def fill(values: np.ndarray, start: int) -> None:
        out[start:start + values.shape[0]] = count_at_or_below(thr, values)

    run_pieces(fill, [np.ascontiguousarray(c.to_numpy(), dtype=np.float64)
                      for c in confidence.cast(pl.Float64).get_chunks()])
    return out


def _where(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``values[keep]``, without the copy when every entry is kept (the usual case)."""
    return values if keep.all() else values[keep]


MAX_ANNOTATIONS = 2**31 - 1  # positions of annotations are int32 throughout (half the memory)


def _side(frame: pl.DataFrame, keep: np.ndarray, row: np.ndarray, feat: np.ndarray, npass,
          n_rows: int, *, given_up: bool = False) -> Side:
    """View the kept annotations of ``frame`` in (data row, input) order; ``feat`` holds each
    row's feature code (:func:`_feature_axis`). ``given_up``: the caller needs ``feat`` and
    ``npass`` no more, and they may be overwritten."""
    if frame.height > MAX_ANNOTATIONS:
        raise PolarsMetricsError(
            f"a table of {frame.height:,} annotations is more than one evaluation takes "
            f"({MAX_ANNOTATIONS:,}); evaluate it in parts of whole data rows with "
            "pm.partial(...) and combine them with pm.merge(...)."
        )
    given = (feat, npass)
    feat = np.ascontiguousarray(feat, np.int32)
    if npass is not None:
        npass = np.ascontiguousarray(npass, np.int32)
    if keep.all():  # every annotation kept: no index arrays gathered while in order
        return _in_row_order(frame, None, row, feat, npass, n_rows)
    # one pass keeps the annotations, counts them per data row and checks their order
    n_kept = int(np.count_nonzero(keep))
    idx = np.empty(n_kept, np.int32)
    # the kept codes are packed into the arrays themselves when most are kept and the arrays
    # are this call's (converted above, or given up): the kernel reads entry i before it writes
    # entry j <= i. Two new arrays fewer: 2 x 37 MB of new pages at 100,000 images
    in_place = [a is not None and (given_up or a is not g) and a.flags.writeable
                and 2 * n_kept >= a.shape[0] for a, g in zip((feat, npass), given, strict=True)]
    kept_feat = feat if in_place[0] else np.empty(n_kept, np.int32)
    kept_npass = npass if in_place[1] else np.empty(0 if npass is None else n_kept, np.int32)
    counts = np.zeros(n_rows, np.int64)
    in_order = kept_side(keep, np.ascontiguousarray(row, np.int64), feat,
                         _NO_NPASS if npass is None else npass, idx, kept_feat, kept_npass, counts)
    kept_feat = kept_feat[:n_kept]
    kept_npass = None if npass is None else kept_npass[:n_kept]
    if in_order:
        return Side(frame, idx, _arrays.offsets_from_lengths(counts), kept_feat, kept_npass)
    return _in_row_order(frame, idx, row[idx], kept_feat, kept_npass, n_rows)


_NO_NPASS = np.zeros(0, np.int32)


def _in_row_order(frame: pl.DataFrame, idx: np.ndarray | None, row: np.ndarray,
                  feat: np.ndarray, npass: np.ndarray | None, n_rows: int) -> Side:
    """The side of the annotations ``idx`` (None: all, in table order) whose data rows are
    ``row``, sorted stably by data row when they are not in order already."""
    if row.size and (row[1:] < row[:-1]).any():
        order = stable_group_order(row, n_rows)  # ties keep input order: the tie rule
        # positions are int32: see MAX_ANNOTATIONS
        idx = order.astype(np.int32) if idx is None else idx[order]
        row, feat = row[order], feat[order]
        npass = None if npass is None else npass[order]
    return Side(frame, idx, _arrays.offsets(row, n_rows), feat, npass)


STRING_PART_ROWS = 1 << 16  # rows from which a string column is hashed in parts on threads


def _in_parts(fn, column: pl.Series) -> list:
    """``fn`` of slices of ``column`` (no copies), one per thread, in order: hashing strings
    (casts, uniques) runs on one thread in polars, so a large column is split."""
    bounds = even_parts(column.len())
    return map_ranges(
        lambda lo, hi: fn(column.slice(int(bounds[lo]), int(bounds[hi] - bounds[lo]))),
        (), bounds, small=STRING_PART_ROWS)


def _distinct(column: pl.Series) -> set:
    """The distinct non-null values of a column.

    >>> sorted(_distinct(pl.Series(["b", None, "a", "b"])))
    ['a', 'b']
    """
    return set().union(*_in_parts(lambda c: set(c.drop_nulls().unique().to_list()), column))


def _feature_axis(gt: pl.Series, pd: pl.Series) -> tuple[tuple[str, ...], np.ndarray,
                                                         np.ndarray]:
    """The features named on either side, sorted, and each row's position among them (0 for a
    null feature) on each side.

    Predictions usually name only features the ground truth names, so their column (the long
    one) is hashed once: cast to the ground truth's features, a name outside them turning null.
    Only when some name did are those rows' names collected and the column cast again, with
    every feature (as many passes as before: a distinct pass and a cast).

    >>> features, g, p = _feature_axis(pl.Series(["dog", "cat"]), pl.Series(["cat", None]))
    >>> features, g.tolist(), p.tolist()
    (('cat', 'dog'), [1, 0], [0, 0])
    >>> features, g, p = _feature_axis(pl.Series(["dog"]), pl.Series(["eel", "ant", "dog"]))
    >>> features, g.tolist(), p.tolist()
    (('ant', 'dog', 'eel'), [1], [2, 0, 1])
    """
    features = tuple(sorted(_distinct(gt)))
    pd_codes, outside = _feature_codes(pd, features, strict=False)
    if outside is not None:
        features = tuple(sorted(set(features) | _distinct(pd.filter(pl.Series(outside)))))
        pd_codes, _ = _feature_codes(pd, features)
    return features, _feature_codes(gt, features)[0], pd_codes


def _feature_codes(column: pl.Series, features: tuple[str, ...], *, strict: bool = True
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """Each row's position in ``features`` (0 for a null feature) and, with ``strict=False``,
    the rows whose name is not among them (None when there is none; with ``strict`` such a
    name is an error).

    >>> codes, outside = _feature_codes(pl.Series(["dog", None, "cat"]), ("cat", "dog"))
    >>> codes.tolist(), outside
    ([1, 0, 0], None)
    >>> _feature_codes(pl.Series(["dog", "eel"]), ("cat", "dog"), strict=False)[1].tolist()
    [False, True]
    """
    enum = pl.Enum(features)

    def codes(part: pl.Series) -> tuple[np.ndarray, np.ndarray | None]:
        cast = part.cast(enum, strict=strict)
        outside = None
        if not strict and cast.null_count() > part.null_count():
            outside = (cast.is_null() & part.is_not_null()).to_numpy()
        return cast.to_physical().fill_null(0).to_numpy(), outside

    parts = _in_parts(codes, column)
    if len(parts) == 1:
        return parts[0]
    values = np.concatenate([c for c, _ in parts])
    if all(o is None for _, o in parts):
        return values, None
    return values, np.concatenate([np.zeros(c.shape[0], bool) if o is None else o
                                   for c, o in parts])


def _normalize(frame: pl.DataFrame, table: str, keys: Sequence[str], *,
               is_pd: bool) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """Canonical columns and dtypes; returns the frame and any geometry repairs made."""
    found_repairs: list[pl.DataFrame] = []
    require_columns(frame, table, list(keys),
                    hint="Name the data-row key with data_row=... if it is called differently.")
    if s.FEATURE not in frame.columns:
        kinds = (frame[s.KIND].cast(pl.String).unique().drop_nulls().to_list()
                 if s.KIND in frame.columns else [infer_kind(frame.columns)])
        if frame.height == 0 and not kinds:  # an empty table: no row needs a feature
            kinds = [infer_kind(frame.columns)]
        if not kinds or not all(k and kind(k).derives_feature for k in kinds):
            require_columns(frame, table, [s.FEATURE])
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(s.FEATURE))
    feat = frame.schema[s.FEATURE]
    if isinstance(feat, pl.Categorical | pl.Enum):
        frame = frame.with_columns(pl.col(s.FEATURE).cast(pl.String))
    elif feat not in (pl.String, pl.Null):
        raise SchemaError(f"{table}.{s.FEATURE} has dtype {feat}; expected String (the class name).")
    elif feat == pl.Null:
        frame = frame.with_columns(pl.col(s.FEATURE).cast(pl.String))
    # the data-row keys and the columns read a value a row from (a ground truth's confidence
    # is not read, but checked)
    G.refuse_dtypes(frame, table, {**G.COLUMN_DTYPES, **G.key_rules(keys)})
    frame = G.positions(frame, table)
    if s.ID not in frame.columns:
        frame = frame.with_columns(pl.col(POS).cast(pl.Int64).alias(s.ID))
    if s.KIND not in frame.columns:
        inferred = infer_kind(frame.columns)
        if inferred is None:
            raise SchemaError(
                f"{table} has no '{s.KIND}' column and no geometry column to infer it from; "
                f"add a '{s.BBOX}' column (x0, y0, x1, y1) or a '{s.KIND}' column."
            )
        frame = frame.with_columns(pl.lit(inferred, dtype=KIND_DTYPE).alias(s.KIND))
    elif frame.schema[s.KIND] != KIND_DTYPE:  # the readers' dtype holds known kinds only
        frame = frame.with_columns(_kind_enum(frame[s.KIND]))
    for name in _kinds(frame):
        k = kind(name)
        require_columns(frame, table, k.geometry, hint=f"(needed by kind {name!r})")
        frame = k.normalize(frame, table)
        if k.repair is not None:  # geometry repaired at load, reported with the result
            frame, repairs = k.repair(frame, table)
            if repairs.height:
                found_repairs.append(repairs)
    if is_pd:
        if s.CONFIDENCE not in frame.columns:
            G.refuse_score_like(frame, table)
            frame = frame.with_columns(pl.lit(1.0, dtype=pl.Float64).alias(s.CONFIDENCE),
                                       pl.lit(False).alias(GIVEN))
        else:
            frame = frame.with_columns(pl.col(s.CONFIDENCE).cast(pl.Float64),
                                       pl.col(s.CONFIDENCE).is_not_null().alias(GIVEN))
    return frame, found_repairs


def _check_key_dtypes(gt: pl.DataFrame, pd: pl.DataFrame, keys: Sequence[str]) -> None:
    for k in keys:
        a, b = gt.schema[k], pd.schema[k]
        if a != b:
            raise SchemaError(
                f"data-row key {k!r} is {a} in {s.GROUND_TRUTH} but {b} in {s.PREDICTIONS}; "
                f"cast one side, e.g. pl.col({k!r}).cast(pl.String)."
            )


def _derive_features(frame: pl.DataFrame) -> pl.DataFrame:
    """:func:`~polars_metrics.kinds.derive_features` when a kind present derives its feature
    (the kinds present are read from the Enum's physical codes: no string cast of the
    column); else the frame as it is."""
    if frame.height == 0 or not any(kind(k).expand is not None for k in _kinds(frame)):
        return frame
    return derive_features(frame)


def _placeholder(frame: pl.DataFrame) -> pl.Expr:
    """A row with no feature and no geometry only says 'this data row exists'."""
    expr = pl.col(s.FEATURE).is_null()
    for c in sorted({c for name in _kinds(frame) for c in kind(name).geometry}):
        expr = expr & pl.col(c).is_null()
    return expr


def _placeholder_mask(frame: pl.DataFrame) -> np.ndarray:
    return frame.select(_placeholder(frame)).to_series().to_numpy()


def _kind_enum(column: pl.Series) -> pl.Series:
    """A ``kind`` column as :data:`KIND_DTYPE`; an unknown kind fails with a suggestion. A
    String column is cast in one strict step (the usual input: 5 ms at 470k rows, against 12
    for listing its values first); other dtypes go through their string values.

    >>> _kind_enum(pl.Series("kind", ["box", None])).to_list()
    ['box', None]
    >>> _kind_enum(pl.Series("kind", ["box", "polygn"]))
    Traceback (most recent call last):
    ...
    polars_metrics.errors.SchemaError: Unknown or not yet supported kind 'polygn'; ... Did you mean "polygon"?
    """
    if column.dtype == pl.String:
        try:
            return column.cast(KIND_DTYPE)  # strict: any value that is not a kind raises
        except pl.exceptions.InvalidOperationError:
            pass  # named below, with a suggestion
    names = column.cast(pl.String)
    for name in names.unique().drop_nulls().to_list():
        kind(name)  # unknown kinds fail here, with a suggestion
    return names.cast(KIND_DTYPE)


def _kinds(frame: pl.DataFrame) -> list[str]:
    """The kinds present (read often in a call: one kind, the usual case, costs no hash pass).

    >>> from polars_metrics.kinds import KIND_DTYPE
    >>> _kinds(pl.DataFrame({"kind": pl.Series(["box", "box", None], dtype=KIND_DTYPE)}))
    ['box']
    >>> sorted(_kinds(pl.DataFrame({"kind": pl.Series(["point", "box"], dtype=KIND_DTYPE)})))
    ['box', 'point']
    """
    column = frame[s.KIND]
    lowest, highest = column.min(), column.max()
    if lowest == highest:  # one kind (or none: an empty or all-null column)
        return [] if lowest is None else [lowest]
    return column.unique().drop_nulls().to_list()


def _validate(frame: pl.DataFrame, table: str, keys: Sequence[str], on_invalid: OnInvalid,
              *, is_pd: bool, generated_ids: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    if frame.height == 0:
        return frame, empty_rejects()
    annotation = ~frame.select(_placeholder(frame)).to_series().to_numpy()
    deriving = [k for k in _kinds(frame) if kind(k).derives_feature]
    derived = (frame[s.KIND].is_in(deriving).fill_null(False).to_numpy() if deriving
               else np.zeros(frame.height, dtype=bool))
    checks = [
        Check(keys[0] if len(keys) == 1 else "/".join(keys),
              pl.any_horizontal([pl.col(k).is_null() for k in keys]),
              "data-row key is null", "give every annotation its data row"),
        Check(s.FEATURE, pl.col(s.FEATURE).is_null(), "feature is null",
              "give every annotation its class name").within(annotation & ~derived),
        Check(s.KIND, pl.col(s.KIND).is_null(), "kind is null",
              f"give every annotation its kind ({', '.join(KIND_NAMES)})").within(annotation),
    ]
    if is_pd:
        conf = pl.col(s.CONFIDENCE)
        checks.append(Check(s.CONFIDENCE, conf.is_nan() | (conf < 0) | (conf > 1),
                            "confidence is NaN or outside [0, 1]",
                            "give scores in [0, 1] (null means 1.0)"))
    if not generated_ids:
        # a null id cannot name the annotation in ev.examples() / outcomes (a matched ground
        # truth would also read as a miss), nor be checked for duplicates
        checks.append(Check(s.ID, pl.col(s.ID).is_null(), "annotation id is null",
                            "give every annotation an id, or drop the id column to have ids "
                            "generated (the row positions)").within(annotation))
        checks.append(Check(s.ID, lambda f: duplicate_ids(f, keys),
                            "annotation id is not unique within its data row",
                            "give each annotation of a data row its own id"))
    kinds = _kinds(frame)
    for name in kinds:
        scope = (annotation if len(kinds) == 1
                 else annotation & (frame[s.KIND] == name).fill_null(False).to_numpy())
        checks.extend(c.within(scope) for c in kind(name).checks(table, keys))
    frame, rejects = run_checks(frame, table, keys, checks, on_invalid)
    if is_pd and frame[s.CONFIDENCE].has_nulls():
        frame = frame.with_columns(pl.col(s.CONFIDENCE).fill_null(1.0))
    return frame, rejects


def duplicate_ids(frame: pl.DataFrame, keys: Sequence[str]) -> np.ndarray:
    """Rows whose (data row, id) occurs more than once. Ids are often unique across the whole
    table, which one hash of the id column shows; otherwise a window per data row decides.
    Null ids are never duplicates (the null check names them): a COCO ground truth's image
    placeholders have them, so the known ids alone are tested first."""
    ids = frame[s.ID]
    known_ids = ids.drop_nulls() if ids.has_nulls() else ids
    if _ascend_strictly(known_ids) or known_ids.n_unique() == known_ids.len():
        return np.zeros(frame.height, dtype=bool)
    if len(keys) == 1 and ids.dtype.is_integer() and frame[keys[0]].dtype.is_integer():
        # one hash of (key, id) packed into an Int64 instead of a window per data row
        known = ~ids.is_null().to_numpy()
        packed = _packed_pair(frame[keys[0]].filter(known), ids.filter(known))
        if packed is not None:
            out = np.zeros(frame.height, dtype=bool)
            out[known] = packed.is_duplicated().to_numpy()
            return out
    dup = pl.col(s.ID).is_duplicated().over(list(keys)) & pl.col(s.ID).is_not_null()
    return frame.select(dup).to_series().to_numpy()


def _chunk_values(column: pl.Series):
    """The non-empty chunks of a numeric column without nulls, as numpy views (no copies: a
    Parquet file is read in several chunks, and joining them would copy the column)."""
    for chunk in column.get_chunks():
        values = chunk.to_numpy()
        if values.size:
            yield values


def _ascend_strictly(ids: pl.Series) -> bool:
    """Int64 ids without nulls that increase from row to row (the usual export): distinct,
    known in one pass over the chunks in place, without hashing them.

    >>> _ascend_strictly(pl.Series([3, 5, 9])), _ascend_strictly(pl.Series([3, 3]))
    (True, False)
    """
    if ids.dtype != pl.Int64 or ids.has_nulls():
        return False
    last = None
    for values in _chunk_values(ids):
        if (last is not None and values[0] <= last) or first_descent(values) >= 0:
            return False
        last = values[-1]
    return True


def _packed_pair(key: pl.Series, ids: pl.Series) -> pl.Series | None:
    """(key, id) of integer columns without nulls packed into one Int64 (equal pairs, equal
    values); None when a column has nulls or the ranges do not fit.

    >>> _packed_pair(pl.Series([7, 7, 8]), pl.Series([1, 2, 1])).to_list()
    [0, 1, 2]
    """
    if key.has_nulls() or ids.has_nulls() or key.len() == 0:
        return None
    k_lo, k_hi, i_lo, i_hi = int(key.min()), int(key.max()), int(ids.min()), int(ids.max())
    width = i_hi - i_lo + 1
    if (k_hi - k_lo + 1) * width >= 2**63:
        return None
    k = key.cast(pl.Int64).to_numpy() - k_lo
    return pl.Series(k * width + (ids.cast(pl.Int64).to_numpy() - i_lo))


def _key_runs(frame: pl.DataFrame, keys: Sequence[str]) -> tuple[pl.DataFrame, np.ndarray]:
    """The keys of each run of equal consecutive keys, and the run lengths."""
    if frame.height == 0:
        return frame.select(keys), np.zeros(0, dtype=np.int64)
    col = frame[keys[0]]
    if len(keys) == 1 and col.dtype.is_integer() and not col.has_nulls():
        # one integer key (a common case): compared by numpy, chunk by chunk in place
        starts = np.empty(frame.height, dtype=bool)
        at, last = 0, None
        for values in _chunk_values(col):
            np.not_equal(values[1:], values[:-1], out=starts[at + 1:at + values.size])
            starts[at] = last is None or values[0] != last
            at, last = at + values.size, values[-1]
    else:
        new_run = pl.any_horizontal([pl.col(k).ne_missing(pl.col(k).shift()) for k in keys])
        starts = frame.select(new_run).to_series().to_numpy()
    starts[0] = True
    first = np.flatnonzero(starts)
    lengths = np.diff(np.append(first, frame.height))
    return frame.select(keys)[first], lengths


def _row_codes(runs: tuple[pl.DataFrame, np.ndarray], universe: pl.DataFrame,
               keys: Sequence[str]) -> np.ndarray:
    """Data-row index of every row of a table, from its key runs (see :func:`_key_runs`)."""
    run_keys, lengths = runs
    if run_keys.height == 0:
        return np.zeros(0, dtype=np.int64)
    codes = run_keys.join(universe, on=list(keys), how="left", maintain_order="left")
    return np.repeat(codes[ROW].to_numpy().astype(np.int64), lengths)


def data_rows_frame(data_rows, keys, by, gt) -> pl.DataFrame:
    meta = to_frame(data_rows, "data_rows")
    require_columns(meta, "data_rows", keys)
    for k in keys:
        if k in gt.columns and meta.schema[k] != gt.schema[k]:
            raise SchemaError(
                f"data_rows.{k} is {meta.schema[k]} but {s.GROUND_TRUTH}.{k} is {gt.schema[k]}; cast one side."
            )
    dup = meta.select(keys).is_duplicated()
    if dup.any():
        first = meta.filter(dup).row(0, named=True)
        raise SchemaError(f"data_rows has the data row {first} more than once; keep one row per data row.")
    return meta.select([*keys, *[b for b in by if b in meta.columns]])


def attach_by(universe: pl.DataFrame, keys, by, meta, gt, pd) -> pl.DataFrame:
    """Attach the by= columns (constant per data row) to every data row."""
    for col in by:
        if meta is not None and col in meta.columns:
            values = meta.select(*keys, col)
        else:
            sources = [f for f in (gt, pd) if col in f.columns]
            if not sources:
                known = [*gt.columns, *pd.columns, *(meta.columns if meta is not None else [])]
                raise SchemaError(
                    f"by column {col!r} is in neither table nor in data_rows; "
                    "pass data_rows=frame with the data-row key and that column."
                    + did_you_mean(col, [c for c in known if not c.startswith("_")])
                )
            values = pl.concat([f.select(*keys, col) for f in sources]).unique()
            varying = values.group_by(list(keys)).len().filter(pl.col("len") > 1)
            if varying.height:
                raise SchemaError(
                    f"by column {col!r} takes several values within data row "
                    f"{varying.row(0, named=True)}; slices are per data row, so it must be constant "
                    "per data row (or give it in data_rows=...)."
                )
        universe = universe.join(values, on=list(keys), how="left", maintain_order="left")
    return universe


def number_slices(rows: pl.DataFrame, by) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Number the distinct slices of the counted data rows."""
    if not by:
        rows = rows.with_columns(pl.lit(0, dtype=pl.Int64).alias(SLICE))
        return rows, pl.DataFrame({SLICE: [0]}, schema={SLICE: pl.Int64})
    slices = rows.select(by).unique().sort(list(by), nulls_last=True).with_row_index(SLICE)
    slices = slices.with_columns(pl.col(SLICE).cast(pl.Int64))
    rows = rows.join(slices, on=list(by), how="left", maintain_order="left", nulls_equal=True)
    return rows, slices
