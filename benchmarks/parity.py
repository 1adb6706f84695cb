"""Parity checks: ours against each peer, exactly, wherever the semantics coincide.

A benchmark that times a wrong answer is worse than none, so the runner refuses to report a
ratio unless these pass. The peers do not implement SPEC §5 (profile ``labelbox``) exactly;
each check below is built on a quantity or a derived dataset where the difference cannot
matter, so the comparison can be *exact* (integer equality, no tolerance):

supervision ``ConfusionMatrix.from_detections`` (timed at one cell, c = 0.5, t = 0.5; checked
at (0, 0), (0.5, 0.5), (0.3, 0.7))
  differs from SPEC §5 in: same-class pairs are walked before cross-class ones (then IoU
  desc); IoU and confidence are float32; every image counts (ours: only rows with both sides).
  S1 ``agnostic``   all features relabeled to one class on the benchmark data (rows with both
                    sides): class-first ordering is then vacuous, so the 2x2 matrices must equal
                    ours — this checks the IoU-ordered greedy walk (ties included) on every
                    overlapping pair of the benchmark data.
  S2 ``marginals``  on the benchmark data as is: gt count per class (row sums) and kept
                    predictions per class (column sums) = ours (tp+fn, tp+fp) + the rows we
                    exclude (SPEC §5 "which data rows count").
  S3 ``isolated``   the one-to-one fixture (generate.ISOLATED): full 81x81 matrices, label
                    flips included.
valor-lite (ingest + ``compute_precision_recall`` + ``compute_confusion_matrix``, 11x11 grid)
  differs in: IoU test ``>=`` (ours ``>``); the confusion matrix comes from ONE class-agnostic
  greedy walk ordered by (score desc, IoU desc) with thresholds applied afterwards; tp/fp/fn
  come from a class-aware, score-ordered ranking where each prediction only keeps its best-IoU
  same-label ground truth; predictions with score <= 1e-9 and pairs with IoU < 1e-9 are
  dropped; every image counts.
  V1 ``isolated``   the one-to-one fixture: tp/fp/fn per class at every cell with t > 0
                    (valor-lite reports tp = 0 for everything at IoU threshold 0.0: its ranked
                    count tests ``iou_prev < t`` with ``iou_prev = 0``), and the full confusion
                    matrix at all 121 cells.
  V2 ``marginals``  on the benchmark data (the timed run's own output): per class and cell,
                    tp+fn = gt count and matched+unmatched predictions = kept predictions.

Float edge cases are removed, not tolerated: rows where any pair's IoU lies within 1e-6 of a
threshold t > 0 (``>`` vs ``>=``, float32 rounding of the threshold) or, for valor-lite, in
(0, 1e-6] (its epsilon), and — for the float32 peer — rows where two pairs above the threshold
have distinct float64 IoUs that round to the same float32 (supervision would order them by
index, we by value). How many rows were dropped is part of the report (a handful per 5,000).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from benchmarks import peers

EPS = 1e-6
SUPERVISION_CELL = (0.5, 0.5)  # the cell the benchmark times
# parity cells: every overlapping pair (c = 0, t = 0), the timed cell, a strict one
SUPERVISION_PARITY_CELLS = ((0.0, 0.0), (0.5, 0.5), (0.3, 0.7))

# ours(gt, pd, classes, confidences, ious) -> (counts[c,t,k,3], confusion[c,t,K+1,K+1])
OursFn = Callable[
    [pl.DataFrame, pl.DataFrame, Sequence[str], Sequence[float], Sequence[float]],
    tuple[np.ndarray, np.ndarray],
]


@dataclass
class Check:
    """One exact comparison; ``mismatches`` lists the first few differing cells."""

    peer: str
    name: str
    compared: int
    mismatched: int
    mismatches: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.mismatched == 0 and self.compared > 0

    def line(self) -> str:
        status = "PASS" if self.ok else "FAIL"
        extra = f" — {self.note}" if self.note else ""
        head = f"[{status}] {self.peer}/{self.name}: {self.compared - self.mismatched}/{self.compared} equal{extra}"
        return "\n    ".join([head, *self.mismatches])


def compare(
    peer: str,
    name: str,
    expected: np.ndarray,
    actual: np.ndarray,
    axes: Sequence[Sequence[str]] | None = None,
    note: str = "",
    limit: int = 5,
) -> Check:
    """Exact integer comparison of two arrays; ``axes`` names each axis's positions."""
    expected, actual = np.asarray(expected), np.asarray(actual)
    if expected.shape != actual.shape:
        return Check(
            peer,
            name,
            max(expected.size, 1),
            max(expected.size, 1),
            [f"shape {expected.shape} != {actual.shape}"],
            note,
        )
    bad = np.argwhere(expected != actual)
    msgs = []
    for idx in bad[:limit]:
        where = ", ".join(
            (axes[d][i] if axes is not None and d < len(axes) else str(i))
            for d, i in enumerate(idx)
        )
        msgs.append(f"[{where}] peer={expected[tuple(idx)]} ours={actual[tuple(idx)]}")
    return Check(peer, name, int(expected.size), int(len(bad)), msgs, note)


# --- independent pair IoUs (for the float edge-case filter) ------------------------------------


def pair_ious(
    ground_truth: pl.DataFrame, predictions: pl.DataFrame, chunk_rows: int = 5_000
) -> pl.DataFrame:
    """Every (gt, pd) pair of a data row with IoU > 0: (data_row, gt_id, pd_id, confidence, iou).

    The textbook formula; with the generator's 1/64-pixel grid every area is exact, so the
    quotient is the correctly rounded IoU every implementation computes.
    """
    gt = ground_truth.select("data_row", gt_id="id", g=pl.col("bbox"))
    pd = predictions.select(
        "data_row", pd_id="id", p=pl.col("bbox"), confidence=pl.col("confidence").fill_null(1.0)
    )
    rows = np.unique(gt["data_row"].to_numpy())
    out = []
    for start in range(0, rows.size, chunk_rows):
        part = rows[start : start + chunk_rows]
        lo, hi = part[0], part[-1]
        g = gt.filter(pl.col("data_row").is_between(lo, hi))
        p = pd.filter(pl.col("data_row").is_between(lo, hi))
        ga, pa = pl.col("g").arr, pl.col("p").arr
        iw = (
            pl.min_horizontal(ga.get(2), pa.get(2)) - pl.max_horizontal(ga.get(0), pa.get(0))
        ).clip(0)
        ih = (
            pl.min_horizontal(ga.get(3), pa.get(3)) - pl.max_horizontal(ga.get(1), pa.get(1))
        ).clip(0)
        area_g = (ga.get(2) - ga.get(0)) * (ga.get(3) - ga.get(1))
        area_p = (pa.get(2) - pa.get(0)) * (pa.get(3) - pa.get(1))
        out.append(
            g.lazy()
            .join(p.lazy(), on="data_row")
            .with_columns(inter=iw * ih, area_g=area_g, area_p=area_p)
            .filter(pl.col("inter") > 0)
            .select(
                "data_row",
                "gt_id",
                "pd_id",
                "confidence",
                iou=pl.col("inter") / (pl.col("area_g") + pl.col("area_p") - pl.col("inter")),
            )
            .collect()
        )
    if not out:
        return pl.DataFrame(
            schema={
                "data_row": pl.Int64,
                "gt_id": pl.Int64,
                "pd_id": pl.Int64,
                "confidence": pl.Float64,
                "iou": pl.Float64,
            }
        )
    return pl.concat(out)


def fragile_rows(
    pairs: pl.DataFrame,
    thresholds: Sequence[float],
    float32_above: float | None = None,
    peer_epsilon: bool = False,
) -> dict[str, np.ndarray]:
    """Data rows whose result could hinge on float details rather than on semantics.

    ``near_threshold``: a pair IoU within EPS of a threshold t > 0 (``>`` vs ``>=``, float32
    thresholds), or — with ``peer_epsilon`` (valor-lite drops IoU < 1e-9) — in (0, EPS].
    ``float32_ties`` (when ``float32_above`` is set): two pairs of the row above that IoU whose
    distinct float64 IoUs round to the same float32.
    """
    iou = pl.col("iou")
    near = pl.lit(False)
    for t in thresholds:
        if t > 0:  # at t = 0 `iou > 0` is exact for float32 too
            near = near | ((iou - t).abs() <= EPS)
    if peer_epsilon:
        near = near | (iou <= EPS)
    out = {"near_threshold": pairs.filter(near)["data_row"].unique().sort().to_numpy()}
    if float32_above is not None:
        above = pairs.filter(iou > float32_above).with_columns(iou32=iou.cast(pl.Float32))
        ties = (
            above.group_by("data_row", "iou32")
            .agg(pl.col("iou").n_unique().alias("n"))
            .filter(pl.col("n") > 1)
        )
        out["float32_ties"] = ties["data_row"].unique().sort().to_numpy()
    return out


# --- derived datasets --------------------------------------------------------------------------


def counted_rows(ground_truth: pl.DataFrame, predictions: pl.DataFrame) -> np.ndarray:
    """Rows with at least one gt and one prediction (SPEC §5, before confidence filtering)."""
    return np.intersect1d(ground_truth["data_row"].to_numpy(), predictions["data_row"].to_numpy())


def keep_rows(
    ground_truth: pl.DataFrame, predictions: pl.DataFrame, rows: np.ndarray
) -> tuple[pl.DataFrame, pl.DataFrame]:
    s = pl.Series(rows)
    return (
        ground_truth.filter(pl.col("data_row").is_in(s.implode())),
        predictions.filter(pl.col("data_row").is_in(s.implode())),
    )


def agnostic(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(feature=pl.lit("object"))


def excluded_marginals(
    ground_truth: pl.DataFrame,
    predictions: pl.DataFrame,
    classes: Sequence[str],
    confidences: Sequence[float],
) -> tuple[np.ndarray, np.ndarray]:
    """Gt per class and kept predictions per (confidence, class) in rows we leave out."""
    counted = pl.Series(counted_rows(ground_truth, predictions))
    g = ground_truth.filter(~pl.col("data_row").is_in(counted.implode()))
    p = predictions.filter(~pl.col("data_row").is_in(counted.implode()))
    k = len(classes)
    gt_n = np.bincount(peers.class_index(g, classes), minlength=k)
    conf = p["confidence"].fill_null(1.0).to_numpy()
    cls = peers.class_index(p, classes)
    pd_n = np.stack([np.bincount(cls[conf >= c], minlength=k) for c in confidences])
    return gt_n, pd_n


# --- the checks --------------------------------------------------------------------------------


def _row_note(total: int, dropped: dict[str, np.ndarray]) -> str:
    parts = [f"{len(v)} {k}" for k, v in dropped.items() if len(v)]
    return f"{total} rows" + (f", dropped {', '.join(parts)}" if parts else "")


def _cells_axes(cells: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]]:
    return sorted({c for c, _ in cells}), sorted({t for _, t in cells})


def supervision_agnostic_check(
    ground_truth: pl.DataFrame,
    predictions: pl.DataFrame,
    ours: OursFn,
    cells: Sequence[tuple[float, float]] = SUPERVISION_PARITY_CELLS,
) -> Check:
    """S1: every feature relabeled to one class, rows with both sides, float-fragile rows out;
    the 2x2 matrix at each (confidence, IoU) cell."""
    cs, ts = _cells_axes(cells)
    rows = counted_rows(ground_truth, predictions)
    g, p = keep_rows(ground_truth, predictions, rows)
    drop = fragile_rows(pair_ious(g, p), ts, float32_above=min(ts))
    bad = np.union1d(*drop.values())
    g, p = keep_rows(g, p, np.setdiff1d(rows, bad))
    g, p = agnostic(g), agnostic(p)
    targets, preds = peers.to_supervision(g, p, ["object"])
    peer = np.stack(
        [peers.supervision_confusion(targets, preds, ["object"], c, t) for c, t in cells]
    )
    _, conf = ours(g, p, ["object"], cs, ts)
    mine = np.stack([conf[cs.index(c), ts.index(t)] for c, t in cells])
    labels = [f"c={c:g},t={t:g}" for c, t in cells]
    return compare(
        "supervision",
        f"S1 agnostic 2x2 at {len(cells)} cells",
        peer,
        mine,
        [labels, ["object", "None"], ["object", "None"]],
        _row_note(len(rows) - len(bad), drop),
    )


def supervision_marginal_checks(
    ground_truth: pl.DataFrame,
    predictions: pl.DataFrame,
    classes: Sequence[str],
    peer_matrix: np.ndarray,
    ours_cell: np.ndarray,
) -> list[Check]:
    """S2: supervision's matrix on the benchmark data as is vs ours at the same cell
    (``ours_cell[k] = (tp, fp, fn)``) plus the rows we exclude."""
    k = len(classes)
    ex_gt, ex_pd = excluded_marginals(ground_truth, predictions, classes, [SUPERVISION_CELL[0]])
    ours_gt = ours_cell[:, 0] + ours_cell[:, 2] + ex_gt
    ours_pd = ours_cell[:, 0] + ours_cell[:, 1] + ex_pd[0]
    return [
        compare(
            "supervision", "S2 gt per class (row sums)", peer_matrix[:k].sum(1), ours_gt, [classes]
        ),
        compare(
            "supervision",
            "S2 kept predictions per class (column sums)",
            peer_matrix[:, :k].sum(0),
            ours_pd,
            [classes],
        ),
    ]


def supervision_isolated_check(
    iso_gt: pl.DataFrame,
    iso_pd: pl.DataFrame,
    classes: Sequence[str],
    ours: OursFn,
    cells: Sequence[tuple[float, float]] = SUPERVISION_PARITY_CELLS,
) -> Check:
    """S3: the full (K+1)^2 matrix on the one-to-one fixture at each cell."""
    cs, ts = _cells_axes(cells)
    rows = counted_rows(iso_gt, iso_pd)
    drop = fragile_rows(pair_ious(iso_gt, iso_pd), ts, float32_above=min(ts))
    bad = np.union1d(*drop.values())
    g, p = keep_rows(iso_gt, iso_pd, np.setdiff1d(rows, bad))
    targets, preds = peers.to_supervision(g, p, classes)
    peer = np.stack([peers.supervision_confusion(targets, preds, classes, c, t) for c, t in cells])
    _, conf = ours(g, p, classes, cs, ts)
    mine = np.stack([conf[cs.index(c), ts.index(t)] for c, t in cells])
    names = [*classes, "None"]
    labels = [f"c={c:g},t={t:g}" for c, t in cells]
    return compare(
        "supervision",
        f"S3 isolated {len(names)}x{len(names)} at {len(cells)} cells",
        peer,
        mine,
        [labels, names, names],
        _row_note(len(rows) - len(bad), drop),
    )


def supervision_checks(
    ground_truth: pl.DataFrame,
    predictions: pl.DataFrame,
    iso_gt: pl.DataFrame,
    iso_pd: pl.DataFrame,
    classes: Sequence[str],
    ours: OursFn,
) -> list[Check]:
    """S1, S2, S3, computing supervision's full-data matrix (S2, at (0.5, 0.5)) here."""
    c, t = SUPERVISION_CELL
    targets, preds = peers.to_supervision(ground_truth, predictions, classes)
    matrix = peers.supervision_confusion(targets, preds, classes, c, t)
    counts, _ = ours(ground_truth, predictions, classes, [c], [t])
    return [
        supervision_agnostic_check(ground_truth, predictions, ours),
        *supervision_marginal_checks(ground_truth, predictions, classes, matrix, counts[0, 0]),
        supervision_isolated_check(iso_gt, iso_pd, classes, ours),
    ]


def valor_isolated_check(
    iso_gt: pl.DataFrame,
    iso_pd: pl.DataFrame,
    classes: Sequence[str],
    ours: OursFn,
    confidences: Sequence[float] = peers.DEFAULT_THRESHOLDS,
    ious: Sequence[float] = peers.DEFAULT_THRESHOLDS,
) -> list[Check]:
    """V1: counts and confusion at every cell on the one-to-one fixture."""
    rows = counted_rows(iso_gt, iso_pd)
    drop = fragile_rows(pair_ious(iso_gt, iso_pd), ious, peer_epsilon=True)
    bad = drop["near_threshold"]
    g, p = keep_rows(iso_gt, iso_pd, np.setdiff1d(rows, bad))
    ev = peers.valor_ingest(peers.to_valor(g, p))
    pr, cm = peers.valor_metrics(ev, confidences, ious)
    v_counts, v_conf = peers.valor_arrays(pr, cm, classes, confidences, ious)
    o_counts, o_conf = ours(g, p, classes, confidences, ious)
    note = _row_note(len(rows) - len(bad), drop)
    cs, ts = [f"c={x:g}" for x in confidences], [f"t={x:g}" for x in ious]
    names = [*classes, "None"]
    # valor-lite's ranked counts never give a TP at IoU threshold 0.0 (its test
    # `iou_prev < threshold` with iou_prev = 0 is false there), so that slice is left out
    t_ok = [i for i, t in enumerate(ious) if t > 0.0]
    return [
        compare(
            "valor-lite",
            f"V1 isolated tp/fp/fn, {len(confidences)}x{len(t_ok)}x{len(classes)} (t>0)",
            v_counts[:, t_ok],
            o_counts[:, t_ok],
            [cs, [ts[i] for i in t_ok], list(classes), ["tp", "fp", "fn"]],
            note,
        ),
        compare(
            "valor-lite",
            f"V1 isolated confusion, {len(confidences)}x{len(ious)}x{len(classes) + 1}x{len(classes) + 1}",
            v_conf,
            o_conf,
            [cs, ts, names, names],
            note,
        ),
    ]


def valor_marginal_checks(
    ground_truth: pl.DataFrame,
    predictions: pl.DataFrame,
    classes: Sequence[str],
    v_counts: np.ndarray,
    v_conf: np.ndarray,
    o_counts: np.ndarray,
    confidences: Sequence[float] = peers.DEFAULT_THRESHOLDS,
    ious: Sequence[float] = peers.DEFAULT_THRESHOLDS,
) -> list[Check]:
    """V2 on the benchmark data: valor's (tp+fn) and (matched + unmatched predictions) per
    class and cell = ours + the rows we exclude."""
    k = len(classes)
    ex_gt, ex_pd = excluded_marginals(ground_truth, predictions, classes, confidences)
    cs, ts = [f"c={x:g}" for x in confidences], [f"t={x:g}" for x in ious]
    ours_gt = o_counts[..., 0] + o_counts[..., 2] + ex_gt
    ours_pd = o_counts[..., 0] + o_counts[..., 1] + ex_pd[:, None, :]
    return [
        compare(
            "valor-lite",
            "V2 gt per class = tp+fn, all cells",
            v_counts[..., 0] + v_counts[..., 2],
            ours_gt,
            [cs, ts, list(classes)],
        ),
        compare(
            "valor-lite",
            "V2 kept predictions per class (confusion columns), all cells",
            v_conf[:, :, :, :k].sum(2),
            ours_pd,
            [cs, ts, list(classes)],
        ),
    ]


def engine(
    g: pl.DataFrame,
    p: pl.DataFrame,
    classes: Sequence[str],
    confidences: Sequence[float],
    ious: Sequence[float],
) -> tuple[np.ndarray, np.ndarray]:
    """The real engine (``pm.evaluate``) as an ``OursFn``."""
    ev = peers.ours_evaluate(g, p, confidences, ious)
    return (
        peers.ours_counts(ev.cube, classes, confidences, ious),
        peers.ours_confusion(ev.confusion, classes, confidences, ious),
    )
