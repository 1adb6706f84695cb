"""``partial(ground_truth, predictions)``: prepare → pairs → match → count tables.

The one pipeline every kind and every non-COCO profile runs; its result is the additive
:class:`~polars_metrics.state.PartialResult` (``pm.evaluate`` finalizes it, streaming and
distributed runs merge several first).

>>> import polars as pl, polars_metrics as pm
>>> box = pl.Array(pl.Float64, 4)
>>> gt = pl.DataFrame({"data_row": ["a"], "feature": ["cat"], "bbox": [[0.0, 0, 10, 10]]},
...                   schema_overrides={"bbox": box})
>>> part = pm.partial(gt, gt, confidence_thresholds=[0.5], iou_thresholds=[0.5])
>>> part.counts.select("feature", "tp", "gt_count", "pd_count").rows()
[('cat', 1, 1, 1)]
"""
from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from polars_metrics import metrics
from polars_metrics import schema as s
from polars_metrics.cube import iou_ordered_tables, score_ordered_tables
from polars_metrics.errors import ProfileError
from polars_metrics.matching import match, match_by_score
from polars_metrics.pairs import build_pairs
from polars_metrics.prepare import prepare, use_confidence_column
from polars_metrics.profiles import Profile, SdkOptions, engine_of, get_profile
from polars_metrics.state import Detail, PartialResult, RowTable
from polars_metrics.true_negatives import QuestionState, row_true_negatives


def partial(ground_truth, predictions, *, profile: str | Profile = "labelbox",
            confidence_thresholds: Sequence[float] | None = None,
            iou_thresholds: Sequence[float] | None = None,
            by: str | Sequence[str] | None = None,
            data_row: str | Sequence[str] = s.DATA_ROW, data_rows=None,
            on_invalid: str = "raise", confidence: str | None = None,
            **switches: Any) -> PartialResult:
    """The additive partial result of an evaluation; arguments as :func:`polars_metrics.evaluate`.

    Partial results of disjoint sets of data rows merge (:func:`polars_metrics.merge`) into
    exactly the result of one evaluation over all of them.
    """
    prof = get_profile(profile, **switches)
    if engine_of(prof) != "pipeline":
        raise ProfileError(
            f"profile {prof.name!r} runs the COCO engine, whose AP is not additive over data "
            "rows; use pm.evaluate(..., profile='coco') on the whole set.")
    _refuse_sdk_options(prof)
    jit_before = "numba" in sys.modules
    t0 = time.perf_counter()
    prep = prepare(
        ground_truth, use_confidence_column(predictions, confidence), keys=_names(data_row), by=_names(by), data_rows=data_rows,
        profile=prof,
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
        m, tables = match(prep, pairs, prof), iou_ordered_tables
    t3 = time.perf_counter()
    m.start_row_tables()  # the data-row table's arrays, on the core the next stages leave idle
    counts, confusion = tables(prep, m)
    row_tn = row_true_negatives(prep, m)
    detail = Detail.of_run(prep, m, pairs)  # pairs kept: ev.errors(), label-error queues
    t4 = time.perf_counter()
    _say_compiled(jit_before, t4 - t0)
    return PartialResult(
        profile=prof, keys=prep.keys, by=prep.by, conf_thr=prep.conf_thr, iou_thr=prep.iou_thr,
        counts=counts, confusion=confusion, data_rows=_row_table(detail.prep, m, row_tn, prof),
        excluded=prep.excluded, rejects=prep.rejects, repairs=prep.repairs,
        timings=dict(prepare=t1 - t0, pairs=t2 - t1, match=t3 - t2, cube=t4 - t3),
        detail=detail, questions=QuestionState.of_run(prep),
    )


def _row_table(slim, m, row_tn, prof: Profile) -> RowTable:
    """The data-row table, built from the match arrays on first read (see
    :class:`~polars_metrics.state.RowTable`); ``slim`` is the detail's prepared view (no
    geometry), so the builder keeps nothing the result does not keep already."""
    return RowTable(lambda: metrics.data_row_table(slim, m, row_tn, zero_tn=prof.zero_tn))


_log = logging.getLogger("polars_metrics")
_told_compile = False


def _say_compiled(jit_before: bool, seconds: float) -> None:
    """Say once per process that a call loaded numba and compiled kernels (the first call of a
    non-box kind takes seconds with no other sign). A logged warning: shown on stderr unless
    logging is configured otherwise, and never turned into an error by warning filters."""
    global _told_compile
    if _told_compile or jit_before or "numba" not in sys.modules:
        return
    _told_compile = True
    _log.warning("polars_metrics: this call loaded numba and compiled its kernels (%.1f s in "
                 "all); later calls in this process reuse them, and numba's disk cache "
                 "(NUMBA_CACHE_DIR) shortens the next process's first call.", seconds)


def _refuse_sdk_options(prof: Profile) -> None:
    """``Profile.sdk`` configures how ``pm.labelbox_sdk`` reads its input (rounding, span ends,
    mask unions, nested classifications); the pipeline runs the SDK's matching switches on the
    tables as given and reads none of those options, so a changed one is refused, not ignored."""
    if prof.sdk is not None and prof.sdk != SdkOptions():
        changed = {f: getattr(prof.sdk, f) for f in SdkOptions.__dataclass_fields__
                   if getattr(prof.sdk, f) != getattr(SdkOptions(), f)}
        raise ProfileError(
            f"{changed} are options of the Labelbox SDK functions (pm.labelbox_sdk.metrics and "
            "friends); pm.evaluate does not read them. Call pm.labelbox_sdk.metrics(gt, pd, "
            f"{', '.join(f'{k}={v!r}' for k, v in changed.items())}) instead.")


def _names(columns: str | Sequence[str] | None) -> list[str]:
    return [columns] if isinstance(columns, str) else list(columns or [])
