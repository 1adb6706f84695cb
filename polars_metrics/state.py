"""Additive partial results and their merge: the contract streaming and distribution use.

Every count in the cube is a sum over data rows, so a :class:`PartialResult` computed on one set
of data rows merges with one computed on a disjoint set. Each field declares how it merges
(``merge=`` in its metadata, as torchmetrics' ``add_state`` does); :func:`merge` reads those
declarations and nothing else. ``pm.evaluate`` is ``pm.finalize(pm.partial(...))``, so evaluating
two halves and merging gives exactly the whole result.

>>> import polars as pl, polars_metrics as pm
>>> box = pl.Array(pl.Float64, 4)
>>> gt = pl.DataFrame({"data_row": ["a", "b"], "feature": ["cat", "cat"],
...                    "bbox": [[0.0, 0, 10, 10]] * 2}, schema_overrides={"bbox": box})
>>> pd = gt.with_columns(confidence=pl.Series([0.9, 0.2]))
>>> parts = [pm.partial(gt.filter(pl.col("data_row") == k), pd.filter(pl.col("data_row") == k),
...                      confidence_thresholds=[0.5], iou_thresholds=[0.5]) for k in "ab"]
>>> pm.finalize(pm.merge(parts)).cube.select("tp", "fp", "fn").row(0)
(1, 0, 1)
"""
from __future__ import annotations

import dataclasses
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics._kernels.aot import kernel
from polars_metrics.errors import PolarsMetricsError
from polars_metrics.events import Matches, narrowed
from polars_metrics.matching import matches_frame
from polars_metrics.metrics import data_row_feature_table
from polars_metrics.pairs import Pairs
from polars_metrics.prepare import GIVEN, Prepared
from polars_metrics.profiles import Profile
from polars_metrics.true_negatives import (
    QuestionState,
    merge_states,
    merged_names,
    merged_true_negatives,
    rename_features,
)

sequential_segment_sums = kernel("cube", "sequential_segment_sums")

COUNT_KEYS = (s.FEATURE, s.CONFIDENCE_THRESHOLD, s.IOU_THRESHOLD)
CONFUSION_KEYS = (s.CONFIDENCE_THRESHOLD, s.IOU_THRESHOLD, s.GT_FEATURE, s.PD_FEATURE)

# How a field merges (the ``merge`` metadata of each PartialResult field).
SAME = "same"          # equal in every part (checked), kept once
COUNTS = "counts"      # count table: summed per key, IoU sums re-added in data-row order
CELLS = "cells"        # sparse confusion cells: summed per key
ROWS = "rows"          # per-data-row frames: concatenated, sorted by the data-row key
APPEND = "append"      # concatenated in part order
OPTIONAL = "optional"  # concatenated where present
TIMES = "times"        # per-stage seconds: summed
DETAIL = "detail"      # per-annotation material: its frames concatenated
QUESTIONS = "questions"  # classification questions seen: unioned; true negatives resolved


def _merged(how: str, **kwargs: Any) -> Any:
    return field(metadata={"merge": how}, **kwargs)


class RowTable:
    """A per-data-row frame kept as the arrays it is built from (``build``), not as the frame
    (also a COCO run's per-category table, which nobody may read).

    The frame of one run (121 rows per data row at 11 × 11 thresholds, ~1 GB at 100,000 data
    rows) is built on first read and cached *weakly*: while anybody holds it, every read returns
    that same frame; once nobody does, its memory goes back and the next read builds an equal
    frame again. A result that is still referenced (a user re-running ``ev = pm.evaluate(...)``
    holds two until the assignment) thus keeps the arrays only. Pickling and copying store the
    frame itself.
    """

    __slots__ = ("_build", "_ref", "__weakref__")

    def __init__(self, build: Callable[[], pl.DataFrame]) -> None:
        self._build = build
        self._ref: weakref.ref | None = None

    def frame(self) -> pl.DataFrame:
        frame = self._ref() if self._ref is not None else None
        if frame is None:
            frame = self._build()
            self._ref = weakref.ref(frame)
        return frame

    def __reduce__(self):
        return (_frame_itself, (self.frame(),))


def _frame_itself(value: Any) -> Any:
    return value


class Deferred:
    """A value built by ``build`` on its first read and kept from then on (strongly, unlike a
    :class:`RowTable`: what it builds is small, or read again). Concurrent first reads build
    it once; pickling and copying store the value itself.

    >>> calls = []
    >>> d = Deferred(lambda: calls.append(1) or "built")
    >>> d.value(), d.value(), len(calls)
    ('built', 'built', 1)
    """

    __slots__ = ("_build", "_value", "_lock")

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build: Callable[[], Any] | None = build
        self._value: Any = None
        self._lock = threading.Lock()

    def value(self) -> Any:
        if self._build is not None:
            with self._lock:
                if self._build is not None:
                    self._value = self._build()
                    self._build = None  # what the builder holds goes with it
        return self._value

    def __reduce__(self):
        return (_frame_itself, (self.value(),))


class LazyField:
    """A frozen-dataclass field whose value may be built on read: a :class:`Deferred` is
    built on the first read and stored in its place; a :class:`RowTable` (possibly what a
    Deferred built) is stored as it is and each read returns its frame. Other values read as
    they are. Set on the class after ``@dataclass`` (the dataclass sees a plain field);
    ``raw`` gives the stored value without building it."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name]
        if isinstance(value, Deferred):
            obj.__dict__[self.name] = value = value.value()
        return value.frame() if isinstance(value, RowTable) else value

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.name] = value

    def raw(self, obj) -> Any:
        return obj.__dict__[self.name]


@dataclass(frozen=True)
class Detail:
    """The per-annotation material behind ``matches``, ``examples()`` and
    ``data_row_features``: the match arrays of one run and a slim view of its prepared tables
    (keys, ids, features, confidence — no geometry), or, after a merge, the frames themselves.
    Frames are built on first use and cached."""

    prep: Prepared | None = None
    matches_arrays: Matches | None = None
    frames: dict[str, Any] = field(default_factory=dict)
    # every (gt, pd) pair with IoU > 0 of the run: ev.errors(), the label-error queues
    # (~14 MB at 5k images)
    pairs_arrays: Pairs | None = None

    @classmethod
    def of_run(cls, prep: Prepared, m: Matches | None, pairs: Pairs | None = None) -> Detail:
        """What a result keeps of a run: no geometry, the sides' order and feature codes and
        the pairs' positions in compact forms (:meth:`Side.kept`, :meth:`Pairs.kept`: 128 MB
        less at 100,000 images), shared with the walk ``m`` (:meth:`Matches.keep`, in place:
        call it once the run's stages are done)."""
        slim = [c for c in (*prep.keys, s.ID, s.FEATURE, s.CONFIDENCE, GIVEN)]
        gt = prep.gt.kept(prep.gt.frame.select([c for c in slim if c in prep.gt.frame.columns]),
                          prep.gt.npass)
        pd = prep.pd.kept(prep.pd.frame.select([c for c in slim if c in prep.pd.frame.columns]),
                          _kept_npass(prep, m))
        if pairs is not None:
            pairs = pairs.kept(prep.gt.off, prep.pd.off)
            if m is not None and m.pairs is not pairs:
                m.keep(pairs, gt.codes, pd.codes)
        return cls(dataclasses.replace(prep, gt=gt, pd=pd), m, pairs_arrays=pairs)

    def _cached(self, name: str, build) -> Any:
        if name not in self.frames:
            if self.prep is None:
                raise PolarsMetricsError(
                    f"{name} is not kept through pm.merge; evaluate the data rows you need "
                    "with pm.evaluate to get it.")
            self.frames[name] = build(self.prep, self.matches_arrays)
        return self.frames[name]

    @property
    def matches(self) -> pl.DataFrame:
        """Match events, see :func:`polars_metrics.matching.matches_frame`: under IoU order the
        pairs matched by the walk at IoU threshold 0 for each confidence threshold; score order
        adds an ``iou_threshold`` column. :func:`~polars_metrics.matching.matched_at` selects
        the matches of one cell."""
        return self._cached("matches", matches_frame)

    @property
    def annotations(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The counted ground truths (*keys, id, feature) and predictions (+ confidence, and
        ``_confidence_given``: False where the input had none and 1.0 was read)."""
        return self._cached("annotations", _annotation_frames)

    @property
    def iou_values(self) -> pl.DataFrame:
        """(*keys, *by, feature, confidence_threshold, value): the IoU metric per (data row,
        feature, confidence threshold), where defined."""
        return self._cached("iou_values", _iou_value_frame)

    @property
    def pairs(self) -> pl.DataFrame:
        """(*keys, gt_id, pd_id, iou, threshold_free, gt_feature, pd_feature, confidence):
        every (ground truth, prediction) pair with IoU > 0 in a data row, across features
        (``threshold_free``: classification), with the prediction's confidence."""
        if "pairs" not in self.frames:
            if self.prep is None or self.pairs_arrays is None:
                raise PolarsMetricsError(
                    "this evaluation kept no pairs (they are kept by pm.evaluate / pm.partial "
                    "and merged only when every part has them); evaluate with pm.evaluate.")
            self.frames["pairs"] = _pairs_frame(self.prep, self.pairs_arrays)
        return self.frames["pairs"]

    def data_row_features(self, zero_tn: bool) -> pl.DataFrame:
        return self._cached("data_row_features",
                            lambda p, m: data_row_feature_table(p, m, zero_tn=zero_tn))


def _kept_npass(prep: Prepared, m: Matches | None) -> np.ndarray | None:
    """The predictions' npass as the result keeps it: the walk's narrowed copy when it is
    the same values (one array, 1 byte a prediction at <= 255 thresholds), else narrowed
    here. Readers compare it (``npass > c``); kernels read ``Matches.npass`` (int32)."""
    npass = prep.pd.npass
    if npass is None:
        return None
    if m is not None and np.array_equal(m.narrow["npass"], npass):
        return m.narrow["npass"]
    return narrowed(npass=npass)["npass"]


def _annotation_frames(prep: Prepared, m: Matches) -> tuple[pl.DataFrame, pl.DataFrame]:
    cols = [*prep.keys, s.ID, s.FEATURE]
    given = [GIVEN] if GIVEN in prep.pd.frame.columns else []
    return prep.gt.select(*cols), prep.pd.select(*cols, s.CONFIDENCE, *given)


def _pairs_frame(prep: Prepared, pairs: Pairs) -> pl.DataFrame:
    names = pl.Series(list(prep.features), dtype=pl.String)
    return pairs.frame(prep).with_columns(
        pl.Series("threshold_free", pairs.always),
        names.gather(prep.gt.feat[pairs.gt]).alias(s.GT_FEATURE),
        names.gather(prep.pd.feat[pairs.pd]).alias(s.PD_FEATURE),
        prep.pd.column(s.CONFIDENCE).gather(pairs.pd).cast(pl.Float64).alias(s.CONFIDENCE))


def _iou_value_frame(prep: Prepared, m: Matches) -> pl.DataFrame:
    rf_iou = m.rf_iou()
    rf, c = np.nonzero(~np.isnan(rf_iou))
    names = pl.Series(list(prep.features), dtype=pl.String)
    return pl.concat([
        prep.rows.select(*prep.keys, *prep.by)[m.rf_row[rf]],
        pl.DataFrame({s.FEATURE: names.gather(m.rf_feat[rf]),
                      s.CONFIDENCE_THRESHOLD: prep.conf_thr[c], "value": rf_iou[rf, c]}),
    ], how="horizontal")


@dataclass(frozen=True)
class PartialResult:
    """Additive state of an evaluation over some data rows.

    counts : (*by, feature, confidence_threshold, iou_threshold, tp, gt_count, pd_count,
        iou_sum, iou_rows, tn) — complete grid for the features present in each slice.
    confusion : (*by, confidence_threshold, iou_threshold, gt_feature, pd_feature, count),
        nonzero cells, None class = null.
    data_rows, excluded, rejects : per-row frames (concatenated on merge).
    detail : per-annotation material for ``matches`` / ``examples()`` (see :class:`Detail`).
    """

    profile: Profile = _merged(SAME)
    keys: tuple[str, ...] = _merged(SAME)
    by: tuple[str, ...] = _merged(SAME)
    conf_thr: np.ndarray = _merged(SAME)
    iou_thr: np.ndarray = _merged(SAME)
    counts: pl.DataFrame = _merged(COUNTS)
    confusion: pl.DataFrame = _merged(CELLS)
    data_rows: pl.DataFrame = _merged(ROWS)
    excluded: pl.DataFrame = _merged(ROWS)
    rejects: pl.DataFrame = _merged(APPEND)
    repairs: pl.DataFrame | None = _merged(OPTIONAL, default=None)
    timings: dict[str, float] = _merged(TIMES, default_factory=dict)
    detail: Detail = _merged(DETAIL, default_factory=Detail)
    questions: QuestionState | None = _merged(QUESTIONS, default=None)

    # the frames examples() reads, under their historical names
    @property
    def matches(self) -> pl.DataFrame:
        return self.detail.matches

    @property
    def annotations(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        return self.detail.annotations

    @property
    def iou_values(self) -> pl.DataFrame:
        return self.detail.iou_values

    def merge(self, other: PartialResult) -> PartialResult:
        return merge(self, other)


# data_rows: a frame, or the RowTable of one run (pipeline.partial) built on first read
PartialResult.data_rows = LazyField("data_rows")  # type: ignore[assignment]


def merge(*parts: PartialResult) -> PartialResult:
    """Merge partial results computed on disjoint sets of data rows (any order, any grouping)."""
    if len(parts) == 1 and isinstance(parts[0], list | tuple):
        parts = tuple(parts[0])
    if not parts:
        raise ValueError("merge needs at least one partial result.")
    if len(parts) == 1:
        return parts[0]
    parts = _named_alike(parts)
    first = parts[0]
    merged: dict[str, Any] = {}
    for f in dataclasses.fields(PartialResult):
        values = [getattr(p, f.name) for p in parts]
        merged[f.name] = _MERGERS[f.metadata["merge"]](f.name, values, first)
    # IoU-metric sums: re-added in data-row order (floating-point addition is not associative)
    counts = _resum_iou(merged["counts"], merged["detail"].iou_values, first.by, first.keys)
    data_rows = merged["data_rows"]
    if all(p.questions is not None for p in parts):
        counts, data_rows = merged_true_negatives(
            [p.questions for p in parts], [p.counts for p in parts], counts, data_rows,
            first.by, first.keys, first.conf_thr)
    return dataclasses.replace(PartialResult(**merged), counts=counts, data_rows=data_rows)


def _named_alike(parts: tuple[PartialResult, ...]) -> list[PartialResult]:
    """The parts with their radio/checklist options named as one evaluation of all of them
    names them (an answer name shared by questions is written "question/answer")."""
    if not all(p.questions is not None for p in parts):
        return list(parts)
    out = []
    for p, mapping in zip(parts, merged_names([p.questions for p in parts]), strict=True):
        if mapping:
            detail = Detail(frames={
                "matches": rename_features(p.detail.matches, mapping),
                "annotations": tuple(rename_features(a, mapping) for a in p.detail.annotations),
                "iou_values": rename_features(p.detail.iou_values, mapping)})
            p = dataclasses.replace(
                p, counts=rename_features(p.counts, mapping),
                confusion=rename_features(p.confusion, mapping), detail=detail,
                questions=p.questions.renamed(mapping))
        out.append(p)
    return out


def _same(name: str, values: list, first: PartialResult) -> Any:
    equal = (np.array_equal if isinstance(values[0], np.ndarray) else (lambda a, b: a == b))
    if not all(equal(v, values[0]) for v in values[1:]):
        raise PolarsMetricsError(
            f"partial results differ in {name}; compute every part with the same profile, "
            "data-row key, by= columns and thresholds.")
    return values[0]


def _sum_counts(name: str, values: list, first: PartialResult) -> pl.DataFrame:
    keys = [*first.by, *COUNT_KEYS]
    return (pl.concat(values).group_by(keys)
            .agg(pl.exclude([*keys, s.TN]).sum(),
                 # tn stays null for features without true negatives
                 pl.when(pl.col(s.TN).is_not_null().any()).then(pl.col(s.TN).sum()).alias(s.TN))
            .sort(keys, nulls_last=True))


def _sum_cells(name: str, values: list, first: PartialResult) -> pl.DataFrame:
    keys = [*first.by, *CONFUSION_KEYS]
    return (pl.concat(values).group_by(keys).agg(pl.col(s.COUNT).sum())
            .sort(keys, nulls_last=True))


def _rows(name: str, values: list, first: PartialResult) -> pl.DataFrame:
    frame = pl.concat(values)
    order = [c for c in (*first.keys, s.CONFIDENCE_THRESHOLD, s.IOU_THRESHOLD) if c in frame.columns]
    return frame.sort(order, maintain_order=True)


def _details(name: str, values: list[Detail], first: PartialResult) -> Detail:
    frames = {
        "matches": pl.concat([d.matches for d in values]),
        "annotations": tuple(pl.concat([d.annotations[i] for d in values]) for i in (0, 1)),
        "iou_values": pl.concat([d.iou_values for d in values]),
    }
    if all(d.pairs_arrays is not None or "pairs" in d.frames for d in values):
        frames["pairs"] = pl.concat([d.pairs for d in values])
    return Detail(frames=frames)


_MERGERS = {
    SAME: _same,
    COUNTS: _sum_counts,
    CELLS: _sum_cells,
    ROWS: _rows,
    APPEND: lambda name, values, first: pl.concat(values),
    OPTIONAL: lambda name, values, first: (pl.concat([v for v in values if v is not None])
                                           if any(v is not None for v in values) else None),
    TIMES: lambda name, values, first: {k: sum(v.get(k, 0.0) for v in values) for k in values[0]},
    DETAIL: _details,
    QUESTIONS: lambda name, values, first: merge_states(values),
}


def _resum_iou(counts: pl.DataFrame, values: pl.DataFrame, by, keys) -> pl.DataFrame:
    return resum_iou_values(counts, values, [*by, s.FEATURE, s.CONFIDENCE_THRESHOLD], keys)


def resum_iou_values(counts: pl.DataFrame, values: pl.DataFrame, group: list[str],
                     keys) -> pl.DataFrame:
    """``counts`` with ``iou_sum`` / ``iou_rows`` re-added from the per-(data row, feature,
    confidence threshold) IoU values, per ``group`` in data-row-key order: floating-point
    addition is not associative, so every merge (in memory, streamed, on Ray) adds in this one
    order and gets the bits of one evaluation. The groups are ranked first (their sorted order,
    nulls last), then values sort by (rank, *keys)."""
    ranks = (values.select(group).unique().sort(group, nulls_last=True)
             .with_row_index("_rank"))
    values = values.join(ranks, on=group, how="left", nulls_equal=True)
    if all(values.schema[k].is_numeric() and values[k].null_count() == 0 for k in keys):
        # numpy's single-threaded lexsort: steady when the cores are busy
        order = np.lexsort([values[k].to_numpy() for k in reversed(list(keys))]
                           + [values["_rank"].to_numpy()])
        values = values[order]
    else:
        values = values.sort(["_rank", *keys], nulls_last=True)
    bounds = values["_rank"].is_first_distinct().to_numpy()
    starts = np.append(np.flatnonzero(bounds), values.height).astype(np.int64)
    sums = values.filter(pl.Series(bounds)).select(group).with_columns(
        pl.Series("iou_sum", sequential_segment_sums(values["value"].to_numpy(), starts)),
        pl.Series("iou_rows", np.diff(starts)),
    )
    return (counts.drop("iou_sum", "iou_rows")
            .join(sums, on=group, how="left", nulls_equal=True, maintain_order="left")
            .with_columns(pl.col("iou_sum").fill_null(0.0), pl.col("iou_rows").fill_null(0))
            .select(counts.columns))
