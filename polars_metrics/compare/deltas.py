"""Deltas of every metric at every cell: the exact point deltas (from the evaluations' own
frames) and their paired-bootstrap intervals (from :mod:`~polars_metrics.compare.bootstrap`).

Units: each (by..., feature) group, and per slice the ``micro`` (ratios of summed counts) and
``macro`` (mean of the per-feature ratios defined in the resample — the cube's own rule) rows.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics.compare import bootstrap as bs
from polars_metrics.compare.counts import RowCounts

METRIC = "metric"
BASELINE_VALUE, VALUE, DELTA = "baseline_value", "value", "delta"
RUN = "run"
STAT_COLUMNS = ("ci_low", "ci_high", "p_value", "resamples")
METRIC_DTYPE = pl.Enum(list(bs.METRICS))


def _stack(values: dict[str, np.ndarray]) -> np.ndarray:
    """(B, M * C * T) from the per-metric (B, C, T) arrays, in METRICS order."""
    arr = np.stack([np.asarray(values[m], dtype=np.float64) for m in bs.METRICS], axis=1)
    return arr.reshape(arr.shape[0], -1)


def bootstrap_frame(universe: pl.DataFrame, groups: pl.DataFrame, counts: list[RowCounts],
                    names: list[str], baseline: int, by: list[str], *, weights: np.ndarray,
                    level: float, conf_thr: np.ndarray, iou_thr: np.ndarray) -> pl.DataFrame:
    """(run, *by, average, feature, confidence_threshold, iou_threshold, metric, ci_low,
    ci_high, p_value, resamples) for every run but the baseline."""
    C, T, G = conf_thr.shape[0], iou_thr.shape[0], groups.height
    slices = groups["_slice"].to_numpy()
    n_slices = int(universe["_slice"].max()) + 1 if universe.height else 1
    w = bs.Weights(weights)  # (rows, B)
    n_resamples = weights.shape[1]
    micro: list[list] = [[None] * n_slices for _ in counts]
    macro_sum = [np.zeros((n_slices, n_resamples, len(bs.RATIO_METRICS), C, T)) for _ in counts]
    macro_n = [np.zeros((n_slices, n_resamples, len(bs.RATIO_METRICS), C, T)) for _ in counts]
    blocks: dict[tuple[int, str, int], dict] = {}  # (run, kind, unit) -> summary
    for g in range(G):
        vals = []
        for r, rc in enumerate(counts):
            tot = bs.group_totals(w, rc, g)
            sl = int(slices[g])
            micro[r][sl] = bs.add_totals(micro[r][sl], tot)
            v = bs.metric_values(tot, T)
            ratios = np.stack([v[m] for m in bs.RATIO_METRICS], axis=1)
            macro_sum[r][sl] += np.nan_to_num(ratios, nan=0.0)
            macro_n[r][sl] += ~np.isnan(ratios)
            vals.append(_stack(v))
        for r in range(len(counts)):
            if r != baseline:
                blocks[(r, "feature", g)] = bs.summarize(vals[r] - vals[baseline], level)
    for sl in range(n_slices):
        mic = [bs.metric_values(micro[r][sl], T) if micro[r][sl] is not None else None
               for r in range(len(counts))]
        if any(m is None for m in mic):
            continue
        mac = []
        for r in range(len(counts)):
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(macro_n[r][sl] > 0, macro_sum[r][sl] / macro_n[r][sl], np.nan)
            mac.append({**{m: mic[r][m] for m in bs.COUNT_METRICS},
                        **{m: mean[:, i] for i, m in enumerate(bs.RATIO_METRICS)}})
        for r in range(len(counts)):
            if r != baseline:
                blocks[(r, "micro", sl)] = bs.summarize(_stack(mic[r]) - _stack(mic[baseline]), level)
                blocks[(r, "macro", sl)] = bs.summarize(_stack(mac[r]) - _stack(mac[baseline]), level)
    return _blocks_frame(blocks, groups, universe, names, by, conf_thr, iou_thr)


def _blocks_frame(blocks, groups, universe, names, by, conf_thr, iou_thr) -> pl.DataFrame:
    C, T, M = conf_thr.shape[0], iou_thr.shape[0], len(bs.METRICS)
    group_by = groups.select(*by, s.FEATURE).rows()
    slice_by = ({k: tuple(v) for k, *v in groups.select("_slice", *by).rows()} if by else {})
    rows = []
    for (r, kind, unit) in blocks:
        if kind == "feature":
            *values, feature = group_by[unit]
            rows.append((names[r], *values, None, feature))
        else:
            rows.append((names[r], *slice_by.get(unit, (None,) * len(by)), kind, None))
    if not rows:
        return pl.DataFrame()
    schema = {RUN: pl.String, **{b: groups.schema[b] for b in by}, s.AVERAGE: pl.String,
              s.FEATURE: pl.String}
    head = pl.DataFrame(rows, schema=schema, orient="row")
    k = M * C * T
    out = head[np.repeat(np.arange(head.height), k)]
    n = len(blocks)
    body = pl.DataFrame({
        s.CONFIDENCE_THRESHOLD: np.tile(np.repeat(conf_thr, T), n * M),
        s.IOU_THRESHOLD: np.tile(iou_thr, n * M * C),
        METRIC: pl.Series(np.tile(np.repeat(np.array(bs.METRICS), C * T), n)).cast(METRIC_DTYPE),
        **{c: np.concatenate([b[c] for b in blocks.values()]) for c in STAT_COLUMNS},
    }).with_columns(pl.col("ci_low", "ci_high", "p_value").fill_nan(None))
    return pl.concat([out, body], how="horizontal")


def _long(ev, by: list[str]) -> pl.DataFrame:
    """(*by, average, feature, c, t, metric, value) of one evaluation's cube and overall rows."""
    keys = [*by, s.AVERAGE, s.FEATURE, s.CONFIDENCE_THRESHOLD, s.IOU_THRESHOLD]
    cube = ev.cube.with_columns(pl.lit(None, dtype=pl.String).alias(s.AVERAGE))
    overall = ev.overall.with_columns(pl.lit(None, dtype=pl.String).alias(s.FEATURE))
    frames = [f.select(*keys, *[pl.col(m).cast(pl.Float64) for m in bs.METRICS])
              for f in (cube, overall)]
    return (pl.concat(frames).unpivot(index=keys, on=list(bs.METRICS), variable_name=METRIC,
                                      value_name=VALUE)
            .with_columns(pl.col(METRIC).cast(METRIC_DTYPE)))


def point_frame(evs: list, names: list[str], baseline: int, by: list[str]) -> pl.DataFrame:
    """(run, *by, average, feature, c, t, metric, baseline_value, value, delta): run - baseline
    from the evaluations' frames; a row one run lacks (a feature it never saw) counts 0 there
    and its ratios are null."""
    keys = [*by, s.AVERAGE, s.FEATURE, s.CONFIDENCE_THRESHOLD, s.IOU_THRESHOLD, METRIC]
    base = _long(evs[baseline], by).rename({VALUE: BASELINE_VALUE})
    is_count = pl.col(METRIC).cast(pl.String).is_in(list(bs.COUNT_METRICS))
    out = []
    for r, ev in enumerate(evs):
        if r == baseline:
            continue
        j = base.join(_long(ev, by), on=keys, how="full", coalesce=True, nulls_equal=True)
        j = j.with_columns([pl.when(is_count).then(pl.col(c).fill_null(0.0)).otherwise(pl.col(c))
                            .alias(c) for c in (BASELINE_VALUE, VALUE)])
        out.append(j.select(pl.lit(names[r]).alias(RUN), *keys, BASELINE_VALUE, VALUE,
                            (pl.col(VALUE) - pl.col(BASELINE_VALUE)).alias(DELTA)))
    return pl.concat(out).sort([RUN, *by, s.AVERAGE, s.FEATURE, s.CONFIDENCE_THRESHOLD,
                                s.IOU_THRESHOLD, METRIC], nulls_last=True)
