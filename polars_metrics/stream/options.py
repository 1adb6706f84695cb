"""The classification option universe, seen by every batch.

A radio answer / checklist option's true negatives count the data rows where its question was
answered and it was chosen on neither side; which options a question has, and which answer
names collide across questions, are read from the *whole* tables. A batch alone sees only its
own options, so its true negatives would be short. Every batch therefore gets the same extra
data row (``OPTIONS_ROW``) on the predictions side: one representative annotation of each
distinct (kind, feature, question, answer) of both tables, each on a data row of its own (a
radio question is answered once per data row). Those rows have no ground truth, so they are
left out of the metrics (and removed from ``excluded``); they only declare the options.
Profiles that count rows without ground truth (``rows="all"``) cannot use it, and evaluate
classifications whole (refused when streamed).
"""
from __future__ import annotations

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics.cube import pipeline_totals
from polars_metrics.errors import ProfileError
from polars_metrics.profiles import Profile
from polars_metrics.stream.sources import ROW

OPTIONS_ROW = {pl.String: lambda i: pl.format("\x00polars_metrics:options:{}", i),
               pl.Int64: lambda i: pl.lit(-(2**63)) + i}


def option_rows(gt: pl.LazyFrame, pd: pl.LazyFrame, keys, by, profile: Profile,
                pd_schema) -> pl.DataFrame | None:
    """The declaration rows (as predictions), or None when the tables have no questions."""
    frames = []
    for lf in (gt, pd):
        cols = lf.collect_schema().names()
        if s.QUESTION not in cols:
            continue
        subset = [c for c in (s.KIND, s.FEATURE, s.QUESTION, s.ANSWER, s.ANSWERS) if c in cols]
        frames.append(lf.filter(pl.col(s.QUESTION).is_not_null())
                      .unique(subset=subset, keep="first", maintain_order=True).collect())
    if not frames or not any(f.height for f in frames):
        return None
    if profile.rows == "all":
        raise ProfileError(
            f"profile {profile.name!r} counts data rows without ground truth (rows='all'), so "
            "classification true negatives cannot be streamed exactly; evaluate these tables "
            "in memory (pass DataFrames, no batching keywords).")
    rows = pl.concat(frames, how="diagonal_relaxed")
    fill = {}
    for k in keys:
        dtype = pd_schema[k]
        value = next((v for d, v in OPTIONS_ROW.items() if dtype == d), None)
        if value is None:
            raise ProfileError(
                f"data-row key {k!r} has dtype {dtype}: streamed classifications need a String "
                "or Int64 key. Cast the key, or evaluate in memory.")
        fill[k] = value(pl.int_range(pl.len(), dtype=pl.Int64)).cast(dtype)
    rows = rows.with_columns(
        **fill, **{b: pl.lit(None, dtype=pd_schema.get(b, pl.String)) for b in by if b in rows.columns},
        **{s.ID: -1 - pl.int_range(pl.len(), dtype=pl.Int64)},
        **({s.CONFIDENCE: pl.lit(1.0)} if s.CONFIDENCE in pd_schema else {}),
        **{ROW: pl.lit(None, dtype=pl.UInt32)})
    rows = rows.select([c for c in pd_schema if c in rows.columns])
    return rows.cast({c: pd_schema[c] for c in rows.columns}, strict=False)


def drop_options_row(excluded: pl.DataFrame, keys, options: pl.DataFrame | None) -> pl.DataFrame:
    if options is None:
        return excluded
    key = options.select(keys)
    return excluded.join(key, on=list(keys), how="anti", maintain_order="left")


PRESENT = "_pm_present"  # counts rows of a feature present in the batch's slice (else: tn only)


def with_absent_true_negatives(part) -> pl.DataFrame:
    """The batch's counts plus, for each (slice, option) with true negatives but no annotation
    in this batch, a row holding only those true negatives (``PRESENT`` false).

    The merge keeps such a row only where another batch has the option present in the slice,
    as the whole evaluation's grid does, and adds its true negatives there.
    """
    counts = part.counts.with_columns(pl.lit(True).alias(PRESENT))
    prep, m = part.detail.prep, part.detail.matches_arrays
    if prep is None or prep.questions.empty or prep.n_rows == 0:
        return counts
    _, totals = pipeline_totals(prep, m)
    present, tn, has_tn = totals["present"], totals["tn"], totals["has_tn"]
    ps, pf = np.nonzero(~present & has_tn[None, :])
    if ps.size == 0:
        return counts
    C, T = prep.conf_thr.shape[0], prep.iou_thr.shape[0]
    cc, tt = (a.ravel() for a in np.meshgrid(np.arange(C), np.arange(T), indexing="ij"))
    n = ps.size
    gs, gf = np.repeat(ps, C * T), np.repeat(pf, C * T)
    cc, tt = np.tile(cc, n), np.tile(tt, n)
    names = pl.Series(list(prep.features), dtype=pl.String)
    extra = pl.concat([
        prep.slices.select(prep.by)[gs] if prep.by else pl.DataFrame(),
        pl.DataFrame({
            s.FEATURE: names.gather(gf), s.CONFIDENCE_THRESHOLD: prep.conf_thr[cc],
            s.IOU_THRESHOLD: prep.iou_thr[tt], s.TP: 0, "gt_count": 0, "pd_count": 0,
            "iou_sum": 0.0, "iou_rows": 0, s.TN: tn[gs, cc, gf], PRESENT: False}),
    ], how="horizontal")
    return pl.concat([counts, extra.select(counts.columns).cast(counts.schema)])
