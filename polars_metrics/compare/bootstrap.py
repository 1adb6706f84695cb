"""Paired bootstrap over data rows, vectorised: one weight matrix, two products per feature.

A resample draws the ``n`` data rows with replacement: ``rng.integers(0, n, n)`` per resample
(numpy ``Generator``, ``seed``), and ``W[b, r]`` counts how often row ``r`` was drawn. The same
``W`` weights every run (paired). Each run's per-(data row, feature) counts become, per
feature, one matrix ``X`` (entries x [tp at each cell, kept predictions, ground truths, IoU
metric numerators and their number]) and every resample's totals are ``W[:, rows] @ X`` — the
counts the whole pipeline would give on the resampled data set, without re-matching. Counts
and weights are integers, so the product is exact (float32 while every sum stays below 2**24,
else float64); the IoU-metric numerators ride along in float32 (relative error ~1e-6).

Intervals are percentile intervals (the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles
of the bootstrap deltas, rounded to 12 decimals; numpy's default "linear" interpolation), over the resamples where the
delta is defined (a ratio with a zero denominator is undefined, as in the cube). The two-sided
p-value inverts the same percentile interval: ``p = min(1, 2 * min(#{d <= 0} + 1, #{d >= 0} + 1)
/ (n + 1))`` over the ``n`` defined bootstrap deltas ``d`` (Davison & Hinkley 1997, eq. 4.11;
the +1 keeps p above 0, which finitely many resamples cannot show). p < 1 - level exactly
when 0 lies outside the interval, up to the +1 and the interpolation.
"""
from __future__ import annotations

import numpy as np

from polars_metrics import schema as s
from polars_metrics.compare.counts import RowCounts

EXACT_FLOAT32 = float(2**24)
COUNT_METRICS = (s.TP, s.FP, s.FN)
RATIO_METRICS = (s.PRECISION, s.RECALL, s.F1, s.IOU)
METRICS = COUNT_METRICS + RATIO_METRICS


def resample_weights(n_rows: int, n_resamples: int, seed) -> np.ndarray:
    """(n_rows, n_resamples) float32 (integers: exact): how often each data row is drawn in
    each resample (transposed: a data row's weights are contiguous, so gathering rows copies
    rows).

    >>> resample_weights(3, 2, 0).T.tolist()
    [[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]]
    """
    rng = np.random.default_rng(seed)
    w = np.empty((n_rows, n_resamples), dtype=np.float32)
    for b in range(n_resamples):
        w[:, b] = np.bincount(rng.integers(0, n_rows, size=n_rows), minlength=n_rows)
    return w


class Weights:
    """The weights and reusable gather buffers (a fresh (k, B) array per feature would spend
    most of the time in page faults)."""

    def __init__(self, w: np.ndarray):
        self.w32 = w
        self.w64 = None  # made on first need (a count too large for float32)
        self.max = float(w.max(initial=0))
        self._buf: dict = {}

    def rows(self, rows: np.ndarray, dtype) -> np.ndarray:
        if dtype != np.float32 and self.w64 is None:
            self.w64 = self.w32.astype(np.float64)
        src = self.w32 if dtype == np.float32 else self.w64
        k = rows.shape[0]
        buf = self._buf.get(dtype)
        if buf is None or buf.shape[0] < k:
            buf = self._buf[dtype] = np.empty((max(k, 1024), src.shape[1]), dtype=dtype)
        return np.take(src, rows, axis=0, out=buf[:k])


def exact_product(w: Weights, rows: np.ndarray, x: np.ndarray, n_int: int | None = None,
                  extra: np.ndarray | None = None) -> np.ndarray:
    """(B, K) ``W[rows].T @ x``. The first ``n_int`` columns of ``x`` (default all) are integer
    counts, summed exactly: in float32 when every partial sum stays below 2**24 (``max(W) *
    column sum``), else everything in float64 with ``extra`` (float64) replacing the other
    columns. Non-integer columns in the float32 product carry float32 rounding (IoU values:
    relative error ~1e-6, far below the Monte-Carlo error of a bootstrap interval)."""
    n_int = x.shape[1] if n_int is None else n_int
    if x.shape[0] == 0:
        return np.zeros((w.w32.shape[1], x.shape[1]))
    if w.max * float(x[:, :n_int].sum(axis=0, dtype=np.float64).max(initial=0)) < EXACT_FLOAT32:
        return (w.rows(rows, np.float32).T @ x).astype(np.float64)
    x64 = x.astype(np.float64)
    if extra is not None:
        x64[:, n_int:] = extra
    return w.rows(rows, np.float64).T @ x64


def group_totals(w: Weights, rc: RowCounts, g: int) -> dict:
    """Per resample, the totals of one run's entries of group ``g``: tp (B, C, T), kept
    (B, C, Tk), ngt (B, 1, 1), iou_sum / iou_n (B, C, 1) or None."""
    C, T, Tk, B = rc.kept.shape[1], rc.tp.shape[2], rc.kept.shape[2], w.w32.shape[1]
    a, b = rc.group_bounds[g], rc.group_bounds[g + 1]
    ta, tb = rc.tp_bounds[g], rc.tp_bounds[g + 1]
    extra = rc.iou_values[a:b] if rc.iou is not None else None
    tot = exact_product(w, rc.sorted_row[a:b], rc.matrix[a:b], rc.n_int, extra)
    tp = exact_product(w, rc.tp_row[ta:tb], rc.tp_matrix[ta:tb])
    out = {"tp": tp.reshape(B, C, T), "kept": tot[:, :C * Tk].reshape(B, C, Tk),
           "ngt": tot[:, C * Tk].reshape(B, 1, 1), "iou_sum": None, "iou_n": None}
    if rc.iou is not None:
        out["iou_n"] = tot[:, C * Tk + 1:C * Tk + 1 + C].reshape(B, C, 1)
        out["iou_sum"] = tot[:, C * Tk + 1 + C:].reshape(B, C, 1)
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def metric_values(t: dict, T: int) -> dict[str, np.ndarray]:
    """The cube's metrics (SPEC §5) from totals, each (B, C, T); NaN where undefined."""
    tp, kept, ngt = t["tp"], t["kept"], t["ngt"]
    kept = np.broadcast_to(kept, tp.shape)
    out = {s.TP: tp, s.FP: kept - tp, s.FN: ngt - tp,
           s.PRECISION: _ratio(tp, kept), s.RECALL: _ratio(tp, np.broadcast_to(ngt, tp.shape)),
           s.F1: _ratio(2 * tp, kept + ngt)}
    if t["iou_sum"] is None:
        out[s.IOU] = np.full(tp.shape, np.nan)
    else:
        out[s.IOU] = np.broadcast_to(_ratio(t["iou_sum"], t["iou_n"]), tp.shape)
    return out


def add_totals(acc: dict | None, t: dict) -> dict:
    """Micro totals: the per-feature totals summed (float64 sums of integers: exact)."""
    if acc is None:
        return {k: (None if v is None else v.copy()) for k, v in t.items()}
    for k, v in t.items():
        if v is not None:
            acc[k] = acc[k] + v
    return acc


def quantiles(d: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``d`` (B, K): numpy's ``nanquantile(d[:, k], q)`` (linear) and the number
    of non-NaN values, vectorised."""
    (out,), n = quantiles_many(d, (q,))
    return out, n


def _lerp(a: np.ndarray, b: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """numpy's ``_lerp`` (so the values equal ``np.quantile``'s bit for bit)."""
    diff = b - a
    return np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)


def quantiles_many(d: np.ndarray, qs) -> tuple[list[np.ndarray], np.ndarray]:
    """:func:`quantiles` at several ``qs`` at once: columns without NaN by one
    ``np.partition`` at the needed order statistics, the others by a sort (NaN last)."""
    B, K = d.shape
    n = (~np.isnan(d)).sum(axis=0)
    outs = [np.full(K, np.nan) for _ in qs]
    full = n == B
    if B and full.any():
        virtual = [(B - 1) * q for q in qs]
        prev = [int(np.floor(v)) for v in virtual]
        nxt = [min(p + 1, B - 1) for p in prev]
        part = np.partition(d[:, full], sorted(set(prev + nxt)), axis=0)
        for i, (v, p, x) in enumerate(zip(virtual, prev, nxt, strict=True)):
            outs[i][full] = _lerp(part[p], part[x], np.full(part.shape[1], v - p))
    rest = ~full & (n > 0)
    if rest.any():
        srt = np.sort(d[:, rest], axis=0)  # NaN sorts last
        m = n[rest]
        for i, q in enumerate(qs):
            virtual = (m - 1) * q
            prev = np.floor(virtual).astype(np.int64)
            nxt = np.minimum(prev + 1, m - 1)
            a = np.take_along_axis(srt, prev[None, :], axis=0)[0]
            b = np.take_along_axis(srt, nxt[None, :], axis=0)[0]
            outs[i][rest] = _lerp(a, b, virtual - prev)
    return outs, n


def summarize(d: np.ndarray, level: float) -> dict[str, np.ndarray]:
    """Interval, p-value and number of defined resamples per column of the deltas (B, K)."""
    # rounded so that level=0.9 reads the 0.05 quantile, not 0.04999999999999999
    (lo, hi), n = quantiles_many(d, (round((1 - level) / 2, 12), round((1 + level) / 2, 12)))
    with np.errstate(invalid="ignore"):
        below = (d <= 0).sum(axis=0)
        above = (d >= 0).sum(axis=0)
    p = np.minimum(1.0, 2 * (np.minimum(below, above) + 1) / (n + 1))
    return {"ci_low": lo, "ci_high": hi, "p_value": np.where(n > 0, p, np.nan), "resamples": n}
