"""A slow, obviously-correct reference of SPEC §5 (profile ``labelbox``) for boxes.

Everything here works straight from the input frames turned into lists of dicts, in plain
Python: no numpy, no vectorization, no prefix trick. The greedy walk is run from scratch at
every (confidence threshold, IoU threshold) cell. The engine is compared to this module by
``tests/test_engine_vs_naive.py``; keep it boring.

Contract followed (SPEC §2, §5 and the engine contract of issue 2):

- thresholds: rounded to 1e-9, de-duplicated, sorted; default 0.0, 0.1, ..., 1.0;
- a prediction takes part at ``c`` iff ``confidence >= c`` (null confidence = 1.0);
- box IoU = continuous intersection area / union area; a zero-area box has IoU 0;
- data rows lacking either side (before any confidence filter) are excluded;
- walk: candidate pairs with IoU > 0 sorted by IoU descending, ties in (ground-truth input
  order, prediction input order); a pair matches iff ``iou > t`` and neither side is matched;
  class-agnostic (a matched pair of different features is FP of the prediction's feature, FN
  of the ground truth's feature);
- per-feature IoU metric: same-feature greedy by IoU with no threshold,
  sum of matched IoU / max(n_gt_f, n_kept_pd_f); absent on both sides: no value.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import polars as pl

DEFAULT_THRESHOLDS = [i / 10 for i in range(11)]

# Wording chosen by the engine (polars_metrics.prepare.EXCLUDED_REASONS); the rule is SPEC §5.
REASON_NO_PREDICTIONS = "no predictions"
REASON_NO_GROUND_TRUTH = "no ground truth"
REASON_NO_ANNOTATIONS = "no annotations"  # listed in a data_rows= frame, in neither table


# --------------------------------------------------------------------------------------------
# Small pieces
# --------------------------------------------------------------------------------------------


def normalize_thresholds(values) -> list[float]:
    """Round to 9 decimals, de-duplicate, sort (SPEC §2)."""
    if values is None:
        values = DEFAULT_THRESHOLDS
    return sorted({round(float(v), 9) + 0.0 for v in values})


def box_area(box) -> float:
    x0, y0, x1, y1 = box
    return (x1 - x0) * (y1 - y0)


def box_iou(a, b) -> float:
    """Continuous intersection / union; 0 when either box has zero area or they are disjoint."""
    if box_area(a) <= 0 or box_area(b) <= 0:
        return 0.0
    inter_w = min(a[2], b[2]) - max(a[0], b[0])
    inter_h = min(a[3], b[3]) - max(a[1], b[1])
    if inter_w <= 0 or inter_h <= 0:
        return 0.0
    inter = inter_w * inter_h
    union = box_area(a) + box_area(b) - inter
    return inter / union


def ratio(num: int, den: int) -> float | None:
    """num / den, or None (undefined) when den == 0."""
    return None if den == 0 else num / den


def mean(values: list[float]) -> float | None:
    return None if not values else sum(values) / len(values)


@dataclass
class Ann:
    """One annotation or prediction, as read from its input table."""

    key: tuple  # data-row key values
    position: int  # row position in its input table
    id: Any  # the `id` column, or `position` when the table has no id column
    feature: str
    box: tuple
    confidence: float  # null already replaced by 1.0 (ground truth: 1.0)


# --------------------------------------------------------------------------------------------
# The walks
# --------------------------------------------------------------------------------------------


def passes(iou: float, t: float, strict: bool = True) -> bool:
    """The IoU test: ``iou > t`` (strict), else ``iou >= min(t, 1 - 1e-10)``; IoU 0 never."""
    return iou > 0 and (iou > t if strict else iou >= min(t, 1 - 1e-10))


def greedy_walk(gts: list[Ann], pds: list[Ann], t: float, *, strict: bool = True,
                class_aware: bool = False) -> list[tuple[int, int, float]]:
    """The §5 walk at IoU threshold ``t``: matched (gt index, pd index, iou) in walk order.

    ``gts`` and ``pds`` are in input order; the tie rule is (gt index, pd index).
    """
    pairs = []
    for i, g in enumerate(gts):
        for j, p in enumerate(pds):
            iou = box_iou(g.box, p.box)
            if iou > 0 and (not class_aware or g.feature == p.feature):
                pairs.append((iou, i, j))
    pairs.sort(key=lambda pair: (-pair[0], pair[1], pair[2]))
    matched_gt, matched_pd, matches = set(), set(), []
    for iou, i, j in pairs:
        if passes(iou, t, strict) and i not in matched_gt and j not in matched_pd:
            matched_gt.add(i)
            matched_pd.add(j)
            matches.append((i, j, iou))
    return matches


def score_walk(gts: list[Ann], pds: list[Ann], t: float, *, strict: bool = True,
               class_aware: bool = False) -> list[tuple[int, int, float]]:
    """The score-ordered walk at IoU threshold ``t`` (``greedy_order="score"``): predictions
    by confidence descending (ties: input order) each take the free ground truth of highest
    IoU passing the test (ties: ground-truth input order). Returns (gt, pd, iou) matches."""
    taken, matches = set(), []
    for j in sorted(range(len(pds)), key=lambda j: (-pds[j].confidence, j)):
        best = None
        for i, g in enumerate(gts):
            if i in taken or (class_aware and g.feature != pds[j].feature):
                continue
            iou = box_iou(g.box, pds[j].box)
            if passes(iou, t, strict) and (best is None or iou > best[1]):
                best = (i, iou)
        if best is not None:
            taken.add(best[0])
            matches.append((best[0], j, best[1]))
    return matches


def feature_iou_value(gts: list[Ann], pds: list[Ann]) -> float | None:
    """Per-feature IoU metric on one data row: greedy with no threshold, zero-IoU pairs included.

    ``gts`` and ``pds`` are already restricted to one feature (and ``pds`` to kept ones).
    """
    if not gts and not pds:
        return None
    pairs = [
        (box_iou(g.box, p.box), i, j) for i, g in enumerate(gts) for j, p in enumerate(pds)
    ]
    pairs.sort(key=lambda pair: (-pair[0], pair[1], pair[2]))
    matched_gt, matched_pd, total = set(), set(), 0.0
    for iou, i, j in pairs:
        if i not in matched_gt and j not in matched_pd:
            matched_gt.add(i)
            matched_pd.add(j)
            total += iou
    return total / max(len(gts), len(pds))


# --------------------------------------------------------------------------------------------
# Reading the input frames
# --------------------------------------------------------------------------------------------


def _read(table: pl.DataFrame, keys: list[str], is_pred: bool) -> list[Ann]:
    has_id = "id" in table.columns
    out = []
    for position, rec in enumerate(table.to_dicts()):
        conf = rec.get("confidence") if is_pred else None
        out.append(
            Ann(
                key=tuple(rec[k] for k in keys),
                position=position,
                id=rec["id"] if has_id else position,
                feature=rec["feature"],
                box=tuple(rec["bbox"]),
                confidence=1.0 if conf is None else conf,
            )
        )
    return out


def _by_values(gt: pl.DataFrame, pd: pl.DataFrame, keys, by, data_rows) -> dict[tuple, tuple]:
    """Data-row key -> tuple of the `by` values (from the data_rows frame, else the tables)."""
    values: dict[tuple, tuple] = {}
    if not by:
        return values
    if data_rows is not None and all(b in data_rows.columns for b in by):
        for rec in data_rows.to_dicts():
            values[tuple(rec[k] for k in keys)] = tuple(rec[b] for b in by)
        return values
    for table in (gt, pd):
        for rec in table.to_dicts():
            values.setdefault(tuple(rec[k] for k in keys), tuple(rec[b] for b in by))
    return values


# --------------------------------------------------------------------------------------------
# The whole evaluation
# --------------------------------------------------------------------------------------------


@dataclass
class RowResult:
    """Everything computed on one counted data row."""

    key: tuple
    by: tuple
    features: list[str]  # features present on either side, before the confidence filter
    # (c, t) -> Counter[(gt_feature | None, pd_feature | None)]
    confusion: dict = field(default_factory=dict)
    # (c, t) -> list of (gt_feature | None, pd_feature | None, gt_id | None, pd_id | None, iou | None)
    events: dict = field(default_factory=dict)
    # (c, t) -> {feature: (tp, fp, fn)}
    counts: dict = field(default_factory=dict)
    # c -> {feature: iou value}; a feature without a value is absent
    ious: dict = field(default_factory=dict)


@dataclass
class NaiveResult:
    keys: list[str]
    by: list[str]
    confidence_thresholds: list[float]
    iou_thresholds: list[float]
    rows: list[RowResult]
    excluded_rows: list[dict]
    key_schema: dict
    by_schema: dict

    # ---- frames -------------------------------------------------------------------------

    @property
    def excluded(self) -> pl.DataFrame:
        schema = {**self.key_schema, **self.by_schema, "reason": pl.String, "n_gt": pl.Int64,
                  "n_pd": pl.Int64}
        return pl.DataFrame(self.excluded_rows, schema=schema, orient="row")

    def slices(self) -> dict[tuple, list[RowResult]]:
        out: dict[tuple, list[RowResult]] = defaultdict(list)
        for row in self.rows:
            out[row.by].append(row)
        return dict(out)

    def _feature_cells(self):
        """Yield (slice, feature, c, t, tp, fp, fn, iou) for the complete grid of every slice."""
        for slice_by, rows in sorted(self.slices().items(), key=lambda kv: _sort_key(kv[0])):
            features = sorted({f for row in rows for f in row.features})
            for f in features:
                for c in self.confidence_thresholds:
                    values = [row.ious[c][f] for row in rows if f in row.ious[c]]
                    iou = mean(values)
                    for t in self.iou_thresholds:
                        tp = fp = fn = 0
                        for row in rows:
                            a, b, d = row.counts[(c, t)].get(f, (0, 0, 0))
                            tp, fp, fn = tp + a, fp + b, fn + d
                        yield slice_by, f, c, t, tp, fp, fn, iou

    @property
    def cube(self) -> pl.DataFrame:
        records = []
        for slice_by, f, c, t, tp, fp, fn, iou in self._feature_cells():
            records.append(
                (*slice_by, f, c, t, tp, fp, None, fn, ratio(tp, tp + fp), ratio(tp, tp + fn),
                 ratio(2 * tp, 2 * tp + fp + fn), iou)
            )
        schema = {**self.by_schema, "feature": pl.String, **_grid_schema(), **_metric_schema()}
        return pl.DataFrame(records, schema=schema, orient="row")

    @property
    def overall(self) -> pl.DataFrame:
        per_cell: dict[tuple, list] = defaultdict(list)
        for slice_by, _f, c, t, tp, fp, fn, iou in self._feature_cells():
            per_cell[(slice_by, c, t)].append((tp, fp, fn, iou))
        slices = self.slices()
        records = []
        for (slice_by, c, t), feats in per_cell.items():
            tp = sum(x[0] for x in feats)
            fp = sum(x[1] for x in feats)
            fn = sum(x[2] for x in feats)
            # micro iou: every (data row, feature) value at this c, pooled
            values = [v for row in slices[slice_by] for v in row.ious[c].values()]
            records.append(
                (*slice_by, "micro", c, t, tp, fp, None, fn, ratio(tp, tp + fp),
                 ratio(tp, tp + fn), ratio(2 * tp, 2 * tp + fp + fn), mean(values))
            )
            precisions = [ratio(a, a + b) for a, b, d, _ in feats]
            recalls = [ratio(a, a + d) for a, b, d, _ in feats]
            f1s = [ratio(2 * a, 2 * a + b + d) for a, b, d, _ in feats]
            ious = [x[3] for x in feats]
            records.append(
                (*slice_by, "macro", c, t, tp, fp, None, fn,
                 mean([v for v in precisions if v is not None]),
                 mean([v for v in recalls if v is not None]),
                 mean([v for v in f1s if v is not None]),
                 mean([v for v in ious if v is not None]))
            )
        schema = {**self.by_schema, "average": pl.String, **_grid_schema(), **_metric_schema()}
        return pl.DataFrame(records, schema=schema, orient="row")

    @property
    def confusion(self) -> pl.DataFrame:
        total: Counter = Counter()
        for row in self.rows:
            for (c, t), cells in row.confusion.items():
                for (g, p), n in cells.items():
                    total[(row.by, c, t, g, p)] += n
        records = [(*b, c, t, g, p, n) for (b, c, t, g, p), n in total.items() if n]
        schema = {**self.by_schema, **_grid_schema(), "gt_feature": pl.String,
                  "pd_feature": pl.String, "count": pl.Int64}
        return pl.DataFrame(records, schema=schema, orient="row")

    @property
    def data_rows(self) -> pl.DataFrame:
        records = []
        for row in self.rows:
            for c in self.confidence_thresholds:
                for t in self.iou_thresholds:
                    per_feature = row.counts[(c, t)]
                    tp = sum(v[0] for v in per_feature.values())
                    fp = sum(v[1] for v in per_feature.values())
                    fn = sum(v[2] for v in per_feature.values())
                    precisions, recalls, f1s = [], [], []
                    for f in row.features:
                        a, b, d = per_feature.get(f, (0, 0, 0))
                        if a + b > 0:
                            precisions.append(a / (a + b))
                        if a + d > 0:
                            recalls.append(a / (a + d))
                        if 2 * a + b + d > 0:
                            f1s.append(2 * a / (2 * a + b + d))
                    ious = [row.ious[c][f] for f in row.features if f in row.ious[c]]
                    records.append(
                        (*row.key, *row.by, c, t, tp, fp, None, fn, mean(precisions),
                         mean(recalls), mean(f1s), mean(ious))
                    )
        schema = {**self.key_schema, **self.by_schema, **_grid_schema(), **_metric_schema()}
        return pl.DataFrame(records, schema=schema, orient="row")

    # ---- views --------------------------------------------------------------------------

    def confusion_matrix(self, confidence: float, iou: float) -> pl.DataFrame:
        """Dense square view summed over slices: rows gt (features, then "None"), columns pd."""
        features = sorted({f for row in self.rows for f in row.features})
        names = [*features, "None"]
        cells: Counter = Counter()
        for row in self.rows:
            for (g, p), n in row.confusion[(confidence, iou)].items():
                cells[(g or "None", p or "None")] += n
        data = {"gt_feature": names}
        for p in names:
            data[p] = [cells[(g, p)] for g in names]
        return pl.DataFrame(data, schema={"gt_feature": pl.String, **{n: pl.Int64 for n in names}})

    def examples(self, gt_feature, pd_feature, confidence: float, iou: float) -> list[tuple]:
        """(*key, gt_id, pd_id, iou) behind one confusion cell, sorted."""
        out = []
        for row in self.rows:
            for g, p, gid, pid, v in row.events[(confidence, iou)]:
                if g == gt_feature and p == pd_feature:
                    out.append((*row.key, gid, pid, v))
        return sorted(out, key=_sort_key)

    def pr_curve(self, iou: float) -> pl.DataFrame:
        """Per feature (and feature null = micro) one point per confidence threshold."""
        cube = self.cube.filter(pl.col("iou_threshold") == iou)
        micro = self.overall.filter(
            (pl.col("iou_threshold") == iou) & (pl.col("average") == "micro")
        ).with_columns(pl.lit(None, dtype=pl.String).alias("feature"))
        cols = [*self.by, "feature", "confidence_threshold", "precision", "recall", "f1"]
        return pl.concat([cube.select(cols), micro.select(cols)])

    def best_thresholds(self, iou: float) -> pl.DataFrame:
        """Per (slice, feature|micro): the point of max F1, ties to the lowest threshold.

        Features whose F1 is undefined at every threshold are left out here (the engine's
        choice for them is checked separately).
        """
        curve = self.pr_curve(iou)
        best: dict[tuple, dict] = {}
        for rec in curve.to_dicts():
            if rec["f1"] is None:
                continue
            group = (*(rec[b] for b in self.by), rec["feature"])
            old = best.get(group)
            if (
                old is None
                or rec["f1"] > old["f1"]
                or (rec["f1"] == old["f1"] and rec["confidence_threshold"] < old["confidence_threshold"])
            ):
                best[group] = rec
        return pl.DataFrame(list(best.values()), schema=curve.schema)

    def matches(self, confidence: float, iou: float) -> list[tuple]:
        """(*key, gt_id, pd_id, iou) of every matched pair (TP or misclassification)."""
        out = []
        for row in self.rows:
            for g, p, gid, pid, v in row.events[(confidence, iou)]:
                if g is not None and p is not None:
                    out.append((*row.key, gid, pid, v))
        return sorted(out, key=_sort_key)


def evaluate(
    gt: pl.DataFrame,
    pd: pl.DataFrame,
    *,
    confidence_thresholds=None,
    iou_thresholds=None,
    by: list[str] | None = None,
    data_row: str | list[str] = "data_row",
    data_rows: pl.DataFrame | None = None,
    greedy_order: str = "iou",
    class_aware: bool = False,
    iou_strict: bool = True,
    rows: str = "both",
    walk=None,
) -> NaiveResult:
    """Evaluate boxes under profile ``labelbox`` (or its switches), one walk per (c, t) cell."""
    keys = [data_row] if isinstance(data_row, str) else list(data_row)
    by = list(by or [])
    cs = normalize_thresholds(confidence_thresholds)
    ts = normalize_thresholds(iou_thresholds)
    key_schema = {k: gt.schema[k] for k in keys}
    by_schema = {
        b: (data_rows.schema[b] if data_rows is not None and b in data_rows.columns else
            gt.schema[b] if b in gt.columns else pd.schema[b])
        for b in by
    }
    by_of = _by_values(gt, pd, keys, by, data_rows)

    gts_by_row: dict[tuple, list[Ann]] = defaultdict(list)
    pds_by_row: dict[tuple, list[Ann]] = defaultdict(list)
    for a in _read(gt, keys, is_pred=False):
        gts_by_row[a.key].append(a)
    for a in _read(pd, keys, is_pred=True):
        pds_by_row[a.key].append(a)

    universe = set(gts_by_row) | set(pds_by_row)
    if data_rows is not None:
        universe |= {tuple(rec[k] for k in keys) for rec in data_rows.to_dicts()}
    walk = walk or (score_walk if greedy_order == "score" else greedy_walk)
    counted_rows, excluded = [], []
    for key in sorted(universe, key=_sort_key):
        gts, pds = gts_by_row.get(key, []), pds_by_row.get(key, [])
        slice_by = by_of.get(key, (None,) * len(by))
        in_gt = key in gts_by_row
        counted = {"both": bool(gts and pds), "ground_truth": in_gt, "all": True}[rows]
        if not counted:
            if not in_gt and not pds:
                reason = REASON_NO_ANNOTATIONS
            elif rows == "ground_truth":
                reason = "not in ground truth"
            elif not gts:
                reason = REASON_NO_GROUND_TRUTH
            else:
                reason = REASON_NO_PREDICTIONS
            excluded.append((*key, *slice_by, reason, len(gts), len(pds)))
            continue
        counted_rows.append(_evaluate_row(
            key, slice_by, gts, pds, cs, ts,
            walk=lambda g, p, t: walk(g, p, t, strict=iou_strict, class_aware=class_aware)))

    return NaiveResult(keys, by, cs, ts, counted_rows, excluded, key_schema, by_schema)


def _evaluate_row(key, slice_by, gts: list[Ann], pds: list[Ann], cs, ts,
                  walk=greedy_walk) -> RowResult:
    features = sorted({a.feature for a in gts} | {a.feature for a in pds})
    row = RowResult(key=key, by=slice_by, features=features)
    for c in cs:
        kept = [p for p in pds if p.confidence >= c]
        row.ious[c] = {}
        for f in features:
            value = feature_iou_value(
                [g for g in gts if g.feature == f], [p for p in kept if p.feature == f]
            )
            if value is not None:
                row.ious[c][f] = value
        for t in ts:
            matches = walk(gts, kept, t)  # from scratch at every cell
            events = []
            for i, j, iou in matches:
                events.append((gts[i].feature, kept[j].feature, gts[i].id, kept[j].id, iou))
            matched_gt = {i for i, _, _ in matches}
            matched_pd = {j for _, j, _ in matches}
            for i, g in enumerate(gts):
                if i not in matched_gt:
                    events.append((g.feature, None, g.id, None, None))
            for j, p in enumerate(kept):
                if j not in matched_pd:
                    events.append((None, p.feature, None, p.id, None))
            counts = defaultdict(lambda: [0, 0, 0])  # tp, fp, fn
            for g, p, *_ in events:
                if g is not None and g == p:
                    counts[g][0] += 1
                else:
                    if p is not None:
                        counts[p][1] += 1
                    if g is not None:
                        counts[g][2] += 1
            row.events[(c, t)] = events
            row.confusion[(c, t)] = Counter((g, p) for g, p, *_ in events)
            row.counts[(c, t)] = {f: tuple(v) for f, v in counts.items()}
    return row


def _grid_schema() -> dict:
    return {"confidence_threshold": pl.Float64, "iou_threshold": pl.Float64}


def _metric_schema() -> dict:
    return {
        "tp": pl.Int64, "fp": pl.Int64, "tn": pl.Int64, "fn": pl.Int64,
        "precision": pl.Float64, "recall": pl.Float64, "f1": pl.Float64, "iou": pl.Float64,
    }


def _sort_key(values) -> tuple:
    """Sort tuples that may hold None and mixed types: None first, then by (type, value)."""
    return tuple((v is not None, type(v).__name__, v if v is not None else 0) for v in values)


# --------------------------------------------------------------------------------------------
# Comparing frames (used by the tests)
# --------------------------------------------------------------------------------------------

FLOAT_TOLERANCE = 1e-12


def assert_frames_match(
    got: pl.DataFrame,
    want: pl.DataFrame,
    *,
    sort_by: list[str],
    what: str = "",
    atol: float = FLOAT_TOLERANCE,
) -> None:
    """Same columns, same row count, integers/strings exactly, floats to ``atol``.

    Column *order* is not compared here (``test_hand_cases`` checks the layout of every
    frame); dtypes are. Both sides are sorted explicitly by ``sort_by`` first (nulls first).
    """
    assert sorted(got.columns) == sorted(want.columns), (
        f"{what}: columns {got.columns} != {want.columns}")
    got = got.select(want.columns)
    assert got.schema == want.schema, f"{what}: schema {got.schema} != {want.schema}"
    assert got.height == want.height, (
        f"{what}: {got.height} rows != expected {want.height}\n"
        f"got:\n{got}\nexpected:\n{want}"
    )
    got = got.sort(sort_by, nulls_last=False, maintain_order=True)
    want = want.sort(sort_by, nulls_last=False, maintain_order=True)
    for col in want.columns:
        g, w = got[col].to_list(), want[col].to_list()
        dtype = want.schema[col]
        for i, (a, b) in enumerate(zip(g, w, strict=True)):
            ok = (
                (a is None and b is None)
                or (a is not None and b is not None and dtype.is_float()
                    and math.isclose(a, b, rel_tol=0, abs_tol=atol))
                or a == b
            )
            if not ok:
                context = want.row(i, named=True)
                raise AssertionError(
                    f"{what}: column {col!r} row {i}: got {a!r}, expected {b!r}\n"
                    f"expected row: {context}\ngot row: {got.row(i, named=True)}"
                )
