""":class:`Comparison`: the frames of ``pm.compare`` and its per-cell views (flips, data rows)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics.compare.deltas import (
    BASELINE_VALUE,
    DELTA,
    METRIC,
    RUN,
    VALUE,
)
from polars_metrics.errors import PolarsMetricsError

CATEGORY = "category"
BOTH, NEITHER = "both", "neither"


@dataclass(frozen=True, eq=False)
class Comparison:
    """Runs compared with a baseline on the same ground truth (``pm.compare``).

    Attributes
    ----------
    runs : run names, in the order given; ``baseline`` : the run every other is compared with.
    evaluations : each run's :class:`~polars_metrics.Evaluation` (evaluated once).
    deltas : (run, *by, average, feature, confidence_threshold, iou_threshold, metric,
        baseline_value, value, delta, ci_low, ci_high, p_value, resamples) — every metric
        (tp, fp, fn, precision, recall, f1, iou) at every cell, per feature (``average`` null)
        and for all features (``average`` = "micro" | "macro", ``feature`` null). ``delta`` =
        value - baseline_value, exactly the difference of the two evaluations' frames;
        ``ci_low`` / ``ci_high`` the paired-bootstrap percentile interval at ``level``,
        ``p_value`` two-sided (see :mod:`polars_metrics.compare.bootstrap`), ``resamples`` the
        resamples in which the delta is defined.
    coco : under ``profile="coco"``: (run, metric, iou, area, max_dets, baseline_value, value,
        delta, ci_low, ci_high, p_value, resamples) for the 12 COCO stats (-1 = undefined, so
        no delta: null), else None. AP, AP50, AP75 and AR at the largest maxDet get intervals
        from the same image resamples (:mod:`polars_metrics.compare.coco_ap`); the area and
        small-maxDet stats are point estimates.
    level, n_resamples, seed : the bootstrap's settings.

    Examples
    --------
    >>> import polars as pl, polars_metrics as pm
    >>> gt = pl.DataFrame({"data_row": ["a", "b"], "feature": ["cat"] * 2,
    ...                    "bbox": [[0.0, 0, 10, 10]] * 2}, schema_overrides={"bbox": pm.BBOX_DTYPE})
    >>> pd = gt.with_columns(confidence=pl.lit(0.9))
    >>> cmp = pm.compare(gt, {"A": pd, "B": pd.head(1)}, rows="ground_truth", n_resamples=50,
    ...                  confidence_thresholds=[0.5], iou_thresholds=[0.5])
    >>> isinstance(cmp, pm.Comparison), cmp.flips()["category"].cast(pl.String).to_list()
    (True, ['both', 'A only'])
    """

    runs: tuple[str, ...]
    baseline: str
    evaluations: dict = field(repr=False)
    deltas: pl.DataFrame = field(repr=False)
    coco: pl.DataFrame | None = field(default=None, repr=False)
    level: float = 0.95
    n_resamples: int = 1000
    seed: object = 0

    # --- lookups -----------------------------------------------------------------------------
    @property
    def micro(self) -> pl.DataFrame:
        """The ``average == "micro"`` rows of :attr:`deltas`."""
        return self.deltas.filter(pl.col(s.AVERAGE) == "micro")

    @property
    def per_feature(self) -> pl.DataFrame:
        """The per-feature rows of :attr:`deltas`."""
        return self.deltas.filter(pl.col(s.AVERAGE).is_null())

    def _run(self, run: str | None) -> str:
        others = [r for r in self.runs if r != self.baseline]
        if run is None:
            return others[0]
        if run not in others:
            raise PolarsMetricsError(f"run {run!r} is not compared here; runs are {others} "
                                     f"(baseline {self.baseline!r}).")
        return run

    def _default_cell(self) -> tuple[float, float]:
        ev = self.evaluations[self.baseline]
        pick = [float(g[np.argmin(np.abs(g - 0.5))]) for g in
                (ev.confidence_thresholds, ev.iou_thresholds)]
        return pick[0], pick[1]

    def at(self, confidence: float = 0.5, iou: float = 0.5, *, average: str | None = "micro",
           run: str | None = None) -> pl.DataFrame:
        """The deltas of one cell: micro (default), "macro", or per feature (``average=None``)."""
        ev = self.evaluations[self.baseline]
        c = ev._threshold(confidence, s.CONFIDENCE_THRESHOLD)
        t = ev._threshold(iou, s.IOU_THRESHOLD)
        avg = pl.col(s.AVERAGE).is_null() if average is None else pl.col(s.AVERAGE) == average
        return self.deltas.filter((pl.col(RUN) == self._run(run)) & avg
                                  & (pl.col(s.CONFIDENCE_THRESHOLD) == c)
                                  & (pl.col(s.IOU_THRESHOLD) == t))

    # --- per ground truth ----------------------------------------------------------------------
    def flips(self, confidence: float = 0.5, iou: float = 0.5, *,
              run: str | None = None) -> pl.DataFrame:
        """Per counted ground truth at one cell: found (a true positive) by the baseline, by
        the run, and the ``category``: "both", "<baseline> only", "<run> only", "neither".

        Columns: *keys, gt_id, feature, found_<baseline>, found_<run>, category.
        """
        run = self._run(run)
        a, b = (_found(self.evaluations[n], confidence, iou) for n in (self.baseline, run))
        ev = self.evaluations[self.baseline]
        keys = [*ev.keys, s.GT_ID, s.FEATURE]
        fa, fb = f"found_{self.baseline}", f"found_{run}"
        j = a.rename({"found": fa}).join(b.rename({"found": fb}), on=keys, how="full",
                                         coalesce=True, nulls_equal=True)
        j = j.with_columns(pl.col(fa, fb).fill_null(False))
        cat = (pl.when(pl.col(fa) & pl.col(fb)).then(pl.lit(BOTH))
               .when(pl.col(fa)).then(pl.lit(f"{self.baseline} only"))
               .when(pl.col(fb)).then(pl.lit(f"{run} only")).otherwise(pl.lit(NEITHER)))
        labels = [BOTH, f"{self.baseline} only", f"{run} only", NEITHER]
        return (j.with_columns(cat.cast(pl.Enum(labels)).alias(CATEGORY))
                .sort(keys, nulls_last=True).select(*keys, fa, fb, CATEGORY))

    def flip_counts(self, confidence: float = 0.5, iou: float = 0.5, *,
                    run: str | None = None) -> pl.DataFrame:
        """Per feature and in all (``feature`` null): the number of ground truths per flip
        category (columns both, <baseline> only, <run> only, neither, total)."""
        f = self.flips(confidence, iou, run=run)
        labels = f[CATEGORY].dtype.categories.to_list()
        agg = [(pl.col(CATEGORY) == lab).sum().cast(pl.Int64).alias(lab) for lab in labels]
        per = f.group_by(s.FEATURE).agg(*agg, pl.len().cast(pl.Int64).alias("total")).sort(s.FEATURE)
        tot = f.select(pl.lit(None, dtype=pl.String).alias(s.FEATURE), *agg,
                       pl.len().cast(pl.Int64).alias("total"))
        return pl.concat([per, tot])

    # --- per data row ----------------------------------------------------------------------------
    def data_rows(self, confidence: float = 0.5, iou: float = 0.5, *,
                  run: str | None = None) -> pl.DataFrame:
        """Per data row at one cell: each run's tp / fp / fn (suffix ``_<name>``), and the
        delta (run - baseline) of f1, recall and precision as ``ev.data_rows`` defines them,
        sorted by the largest absolute change of f1, then recall, then precision (nulls last)."""
        run = self._run(run)
        ev = self.evaluations[self.baseline]
        c = ev._threshold(confidence, s.CONFIDENCE_THRESHOLD)
        t = ev._threshold(iou, s.IOU_THRESHOLD)
        keys = list(ev.keys)
        cols = [s.TP, s.FP, s.FN, s.PRECISION, s.RECALL, s.F1]

        def side(name: str) -> pl.DataFrame:
            e = self.evaluations[name]
            f = e.data_rows.filter((pl.col(s.CONFIDENCE_THRESHOLD) == c)
                                   & (pl.col(s.IOU_THRESHOLD) == t))
            return f.select(*keys, *e.by, *[pl.col(x).alias(f"{x}_{name}") for x in cols])

        a, b = side(self.baseline), side(run)
        on = [*keys, *ev.by]
        j = a.join(b, on=on, how="full", coalesce=True, nulls_equal=True)
        counts = [f"{x}_{n}" for n in (self.baseline, run) for x in (s.TP, s.FP, s.FN)]
        j = j.with_columns(pl.col(counts).fill_null(0))
        deltas = [(pl.col(f"{x}_{run}") - pl.col(f"{x}_{self.baseline}")).alias(f"delta_{x}")
                  for x in (s.F1, s.RECALL, s.PRECISION)]
        j = j.with_columns(deltas)
        order = [pl.col(f"delta_{x}").abs() for x in (s.F1, s.RECALL, s.PRECISION)]
        return (j.sort(order, descending=True, nulls_last=True, maintain_order=True)
                .select(*on, *counts, *[f"delta_{x}" for x in (s.F1, s.RECALL, s.PRECISION)],
                        *[f"{x}_{n}" for n in (self.baseline, run)
                          for x in (s.PRECISION, s.RECALL, s.F1)]))

    # --- printing ----------------------------------------------------------------------------
    def __repr__(self) -> str:
        c, t = self._default_cell()
        pct = f"{100 * self.level:g}%"
        lines = [f"<Comparison baseline={self.baseline!r} runs={list(self.runs)} "
                 f"resamples={self.n_resamples} seed={self.seed!r}>",
                 f"micro deltas at confidence {c:g}, IoU {t:g} (run - baseline, {pct} paired "
                 "bootstrap percentile interval over data rows, two-sided p):"]
        for run in (r for r in self.runs if r != self.baseline):
            lines.append(f"  {run} vs {self.baseline}:")
            for row in self.at(c, t, run=run).iter_rows(named=True):
                lines.append("    " + _fmt_row(row))
        if self.coco is not None:
            lines.append("COCO stats (run - baseline; intervals where bootstrapped):")
            for row in self.coco.iter_rows(named=True):
                iou = "0.50:0.95" if row[s.IOU] is None else f"{row[s.IOU]:.2f}"
                d = "undefined" if row[DELTA] is None else f"{row[DELTA]:+.4f}"
                ci = ("" if row.get("ci_low") is None else
                      f" [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}] p={row['p_value']:.3f}")
                lines.append(f"    {row[RUN]}: {row[METRIC]} IoU={iou} area={row['area']} "
                             f"maxDets={row['max_dets']}: {row[BASELINE_VALUE]:.4f} -> "
                             f"{row[VALUE]:.4f} ({d}){ci}")
        return "\n".join(lines)


def _num(x, count: bool) -> str:
    if x is None:
        return "—"
    return f"{x:.0f}" if count else f"{x:.4f}"


def _fmt_row(row: dict) -> str:
    count = row[METRIC] in (s.TP, s.FP, s.FN)
    d = row[DELTA]
    delta = "—" if d is None else (f"{d:+.0f}" if count else f"{d:+.4f}")
    ci = ("" if row["ci_low"] is None else
          f" [{_num(row['ci_low'], count)}, {_num(row['ci_high'], count)}]")
    p = "" if row["p_value"] is None else f" p={row['p_value']:.3f}"
    return (f"{row[METRIC]:<9} {_num(row[BASELINE_VALUE], count):>8} -> "
            f"{_num(row[VALUE], count):>8}  Δ {delta}{ci}{p}")


def _found(ev, confidence: float, iou: float) -> pl.DataFrame:
    """(*keys, gt_id, feature, found) per counted ground truth at one cell."""
    c = ev._threshold(confidence, s.CONFIDENCE_THRESHOLD)
    t = ev._threshold(iou, s.IOU_THRESHOLD)
    keys = list(ev.keys)
    if getattr(ev, "tables", None) is not None:  # COCO: TPs at t by detections >= c
        tp = ev.tables.matches.filter((pl.col(s.IOU_THRESHOLD) == t) & (pl.col(s.CONFIDENCE) >= c))
        gts = ev.tables.gt_counted.select(*keys, s.GT_ID, pl.col(s.FEATURE).cast(pl.String))
        hit = tp.select(*keys, s.GT_ID).unique().with_columns(pl.lit(True).alias("found"))
        return (gts.join(hit, on=[*keys, s.GT_ID], how="left", maintain_order="left")
                .with_columns(pl.col("found").fill_null(False)))
    out = ev.outcomes(c, t).filter(pl.col("side") == "gt")
    return out.select(*keys, pl.col(s.ID).alias(s.GT_ID), s.FEATURE,
                      (pl.col("outcome").cast(pl.String) == "tp").alias("found"))
