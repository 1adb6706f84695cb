"""Additive partial results and their merge.

Every count in the cube is a sum over data rows, so a :class:`PartialResult` computed on one set
of data rows merges with one computed on a disjoint set by summation; the data-row table and the
lists of excluded and rejected rows concatenate. ``evaluate`` itself is
``finalize(partial(...))``, so evaluating two halves and merging gives exactly the whole result
(streaming, processes and Ray use the same contract).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from polars_metrics import _arrays, metrics
from polars_metrics import schema as s
from polars_metrics._kernels.aot import kernel
from polars_metrics.cube import (
    compress_keys,
    label_tables,
    score_ordered_tables,
    tables_from_matched,
)
from polars_metrics.errors import PolarsMetricsError
from polars_metrics.matching import Matches, match, match_by_score, matches_frame
from polars_metrics.pairs import build_pairs
from polars_metrics.prepare import SLICE, Prepared, prepare
from polars_metrics.profiles import Profile, get_profile
from polars_metrics.true_negatives import row_true_negatives, slice_true_negatives

slice_feature_sums = kernel("cube", "slice_feature_sums")
slice_histogram = kernel("cube", "slice_histogram")
until_histogram = kernel("cube", "until_histogram")
event_keys = kernel("cube", "event_keys")
accumulate_events = kernel("cube", "accumulate_events")
sequential_segment_sums = kernel("cube", "sequential_segment_sums")

COUNT_KEYS = (s.FEATURE, s.CONFIDENCE_THRESHOLD, s.IOU_THRESHOLD)
CONFUSION_KEYS = (s.CONFIDENCE_THRESHOLD, s.IOU_THRESHOLD, s.GT_FEATURE, s.PD_FEATURE)


@dataclass
class PartialResult:
    """Additive state of an evaluation over some data rows.

    counts : (*by, feature, confidence_threshold, iou_threshold, tp, gt_count, pd_count,
        iou_sum, iou_rows) — complete grid for the features present in each slice.
    confusion : (*by, confidence_threshold, iou_threshold, gt_feature, pd_feature, count),
        nonzero cells, None class = null.
    data_rows, excluded, rejects : per-row frames (concatenated on merge).
    """

    profile: Profile
    keys: tuple[str, ...]
    by: tuple[str, ...]
    conf_thr: np.ndarray
    iou_thr: np.ndarray
    counts: pl.DataFrame
    confusion: pl.DataFrame
    data_rows: pl.DataFrame
    excluded: pl.DataFrame
    rejects: pl.DataFrame
    repairs: pl.DataFrame | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # Material for examples(): built on first use from the arrays of this run, or merged frames.
    _matches: pl.DataFrame | None = None
    _annotations: tuple[pl.DataFrame, pl.DataFrame] | None = None
    _iou_values: pl.DataFrame | None = None
    _source: tuple[Prepared, Matches] | None = None

    @property
    def matches(self) -> pl.DataFrame:
        """Match events; see :func:`polars_metrics.matching.matches_frame` (score order adds
        an ``iou_threshold`` column) and :func:`~polars_metrics.matching.matched_at`."""
        if self._matches is None:
            self._matches = matches_frame(*self._source)
        return self._matches

    @property
    def iou_values(self) -> pl.DataFrame:
        """Per-(data row, feature, confidence threshold) IoU-metric values: (*keys, *by,
        feature, confidence_threshold, value). Merging re-sums them in data-row order, so the
        merged ``iou`` equals the whole evaluation's bit for bit."""
        if self._iou_values is None:
            prep, m = self._source
            rf_iou = m.rf_iou()
            rf, c = np.nonzero(~np.isnan(rf_iou))
            values = rf_iou[rf, c]
            names = pl.Series(list(prep.features), dtype=pl.String)
            self._iou_values = pl.concat([
                prep.rows.select(*prep.keys, *prep.by)[m.rf_row[rf]],
                pl.DataFrame({s.FEATURE: names.gather(m.rf_feat[rf]),
                              s.CONFIDENCE_THRESHOLD: prep.conf_thr[c], "value": values}),
            ], how="horizontal")
        return self._iou_values

    @property
    def annotations(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The counted ground truths (*keys, id, feature) and predictions (+ confidence)."""
        if self._annotations is None:
            prep, _ = self._source
            cols = [*prep.keys, s.ID, s.FEATURE]
            self._annotations = (prep.gt.select(*cols), prep.pd.select(*cols, s.CONFIDENCE))
        return self._annotations

    def merge(self, other: PartialResult) -> PartialResult:
        return merge(self, other)


def partial(ground_truth, predictions, *, profile: str | Profile = "labelbox",
            confidence_thresholds=None, iou_thresholds=None, by=None,
            data_row: str | list[str] = s.DATA_ROW, data_rows=None, on_invalid: str = "raise",
            **switches: Any) -> PartialResult:
    """Compute the additive partial result of an evaluation (see ``evaluate`` for arguments)."""
    prof = get_profile(profile, **switches)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    keys = [data_row] if isinstance(data_row, str) else list(data_row)
    by = [by] if isinstance(by, str) else list(by or [])
    prep = prepare(
        ground_truth, predictions, keys=keys, by=by, data_rows=data_rows, profile=prof,
        conf_thr=s.normalize_thresholds(confidence_thresholds, "confidence_thresholds"),
        iou_thr=s.normalize_thresholds(iou_thresholds, "iou_thresholds"),
        on_invalid=on_invalid,
    )
    t1 = time.perf_counter()
    pairs = build_pairs(prep)
    t2 = time.perf_counter()
    if prof.greedy_order == "score":
        m, tables = match_by_score(prep, pairs, prof), score_ordered_tables
    else:
        m, tables = match(prep, pairs, prof), _iou_ordered_tables
    del pairs  # the match events hold what they need: free the pairs before the big tables
    t3 = time.perf_counter()
    counts, confusion = tables(prep, m)
    data_rows_df = metrics.data_row_table(prep, m, row_true_negatives(prep, m), zero_tn=prof.zero_tn)
    t4 = time.perf_counter()
    timings.update(prepare=t1 - t0, pairs=t2 - t1, match=t3 - t2, cube=t4 - t3)
    return PartialResult(
        profile=prof, keys=prep.keys, by=prep.by, conf_thr=prep.conf_thr, iou_thr=prep.iou_thr,
        counts=counts, confusion=confusion, data_rows=data_rows_df, excluded=prep.excluded,
        rejects=prep.rejects, repairs=prep.repairs, timings=timings, _source=(prep, m),
    )


def _iou_ordered_tables(prep: Prepared, m: Matches) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The count tables of an IoU-ordered walk. Kernels read the per-annotation and per-event
    arrays in place: no gathered temporaries as long as the events."""
    S, F = prep.slices.height, len(prep.features)
    C, T = prep.conf_thr.shape[0], prep.iou_thr.shape[0]
    row_slice = np.ascontiguousarray(prep.rows[SLICE].to_numpy(), dtype=np.int64)
    none = np.zeros(0, dtype=np.int32)
    n_gt = slice_histogram(prep.gt.off, prep.gt.feat, none, row_slice, S, F, 1)[:, :, 0]
    # kept[s, c, f]: predictions passing threshold c (npass > c), summed from the top
    hist = slice_histogram(prep.pd.off, prep.pd.feat, m.npass, row_slice, S, F, C + 1)
    n_pd = hist.sum(axis=2)
    kept = _count_above(hist)
    iou_sum = slice_feature_sums(m.iv_off, m.iv_c, m.iv_rf, m.iv_val, m.rf_feat, row_slice,
                                 S, C, F)
    # iou_rows[s, c, f]: (row, feature) values defined at c, i.e. with c < rf_until
    iou_rows = _count_above(until_histogram(m.rf_off, m.rf_feat, m.rf_until, row_slice, S, F,
                                            C + 1))
    tn, has_tn = slice_true_negatives(prep, row_slice, S, iou_rows)

    W = F + 1
    key = event_keys(m.ev_gt, m.ev_pd, m.gt_row, row_slice, prep.gt.feat, prep.pd.feat, W)
    uniq, inv = compress_keys(key, S * W * W)
    del key
    matched = accumulate_events(inv, m.ev_c, m.ev_bin, uniq.shape[0], C, T)  # (K, C, T)
    del inv
    counts, confusion = tables_from_matched(
        uniq, matched, n_slices=S, n_features=F,
        gt_total=np.broadcast_to(n_gt[:, None, None, :], (S, C, T, F)),
        pd_total=np.broadcast_to(kept[:, :, None, :], (S, C, T, F)),
        present=(n_gt + n_pd) > 0, iou_sum=iou_sum, iou_rows=iou_rows, tn=tn, has_tn=has_tn,
    )
    return label_tables(counts, confusion, slices=prep.slices, by=prep.by, features=prep.features,
                        conf_thr=prep.conf_thr, iou_thr=prep.iou_thr)


def _count_above(hist: np.ndarray) -> np.ndarray:
    """(S, F, C + 1) histogram of a per-item threshold count n → (S, C, F) items with n > c."""
    return _arrays.count_above(hist).transpose(0, 2, 1)


def merge(*parts: PartialResult) -> PartialResult:
    """Merge partial results computed on disjoint sets of data rows."""
    if len(parts) == 1 and isinstance(parts[0], list | tuple):
        parts = tuple(parts[0])
    if not parts:
        raise ValueError("merge needs at least one partial result.")
    first = parts[0]
    if len(parts) == 1:
        return first
    for p in parts[1:]:
        same = (p.profile == first.profile and p.keys == first.keys and p.by == first.by
                and np.array_equal(p.conf_thr, first.conf_thr)
                and np.array_equal(p.iou_thr, first.iou_thr))
        if not same:
            raise PolarsMetricsError(
                "partial results differ in profile, data-row key, by= columns or thresholds; "
                "compute every part with the same arguments."
            )
    by = list(first.by)
    counts = (pl.concat([p.counts for p in parts])
              .group_by([*by, *COUNT_KEYS])
              .agg(pl.exclude([*by, *COUNT_KEYS, s.TN]).sum(),
                   # tn stays null for features without true negatives
                   pl.when(pl.col(s.TN).is_not_null().any()).then(pl.col(s.TN).sum()).alias(s.TN))
              .sort([*by, *COUNT_KEYS], nulls_last=True))
    # IoU-metric sums: re-added in data-row order (floating-point addition is not associative)
    iou_values = pl.concat([p.iou_values for p in parts])
    counts = _resum_iou(counts, iou_values, by, first.keys)
    confusion = (pl.concat([p.confusion for p in parts])
                 .group_by([*by, *CONFUSION_KEYS]).agg(pl.col(s.COUNT).sum())
                 .sort([*by, *CONFUSION_KEYS], nulls_last=True))
    data_rows = pl.concat([p.data_rows for p in parts]).sort(
        [*first.keys, s.CONFIDENCE_THRESHOLD, s.IOU_THRESHOLD], maintain_order=True)
    timings = {k: sum(p.timings.get(k, 0.0) for p in parts) for k in first.timings}
    return PartialResult(
        profile=first.profile, keys=first.keys, by=first.by, conf_thr=first.conf_thr,
        iou_thr=first.iou_thr, counts=counts, confusion=confusion, data_rows=data_rows,
        excluded=pl.concat([p.excluded for p in parts]).sort(list(first.keys)),
        rejects=pl.concat([p.rejects for p in parts]),
        repairs=(pl.concat([p.repairs for p in parts if p.repairs is not None])
                 if any(p.repairs is not None for p in parts) else None),
        timings=timings,
        _matches=pl.concat([p.matches for p in parts]),
        _annotations=(pl.concat([p.annotations[0] for p in parts]),
                      pl.concat([p.annotations[1] for p in parts])),
        _iou_values=iou_values,
    )


def _resum_iou(counts: pl.DataFrame, values: pl.DataFrame, by, keys) -> pl.DataFrame:
    group = [*by, s.FEATURE, s.CONFIDENCE_THRESHOLD]
    values = values.sort([*group, *keys], nulls_last=True)
    bounds = values.select(pl.struct(group).is_first_distinct()).to_series().to_numpy()
    starts = np.append(np.flatnonzero(bounds), values.height).astype(np.int64)
    sums = values.filter(pl.Series(bounds)).select(group).with_columns(
        pl.Series("iou_sum", sequential_segment_sums(values["value"].to_numpy(), starts)),
        pl.Series("iou_rows", np.diff(starts)),
    )
    return (counts.drop("iou_sum", "iou_rows")
            .join(sums, on=group, how="left", nulls_equal=True, maintain_order="left")
            .with_columns(pl.col("iou_sum").fill_null(0.0), pl.col("iou_rows").fill_null(0))
            .select(counts.columns))


def finalize(part: PartialResult):
    """Turn a (merged) partial result into an :class:`~polars_metrics.evaluate.Evaluation`."""
    from polars_metrics.evaluate import Evaluation

    return Evaluation._from_partial(part)
