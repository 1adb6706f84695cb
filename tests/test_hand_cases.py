"""Hand-computed cases: every expected number is worked out in a comment next to it.

Each case is checked against the engine, and most also against the naive reference, so a
disagreement says which of the two is wrong.
"""
from __future__ import annotations

import naive
import numpy as np
import polars as pl
import pytest

import polars_metrics as pm

BBOX = pl.Array(pl.Float64, 4)


def gt_frame(*rows, key_schema=None) -> pl.DataFrame:
    """rows: (data_row, feature, (x0, y0, x1, y1)) or (*composite key, feature, box)."""
    key_schema = key_schema or {"data_row": pl.Int64}
    schema = {**key_schema, "feature": pl.String, "bbox": BBOX}
    return pl.DataFrame([(*r[:-1], list(map(float, r[-1]))) for r in rows], schema=schema,
                        orient="row")


def pd_frame(*rows, key_schema=None) -> pl.DataFrame:
    """rows: (data_row, feature, box, confidence)."""
    key_schema = key_schema or {"data_row": pl.Int64}
    schema = {**key_schema, "feature": pl.String, "bbox": BBOX, "confidence": pl.Float64}
    return pl.DataFrame([(*r[:-2], list(map(float, r[-2])), r[-1]) for r in rows],
                        schema=schema, orient="row")


def one(frame: pl.DataFrame, **where) -> dict:
    """The single row of ``frame`` matching ``where`` (None matches null)."""
    mask = pl.lit(True)
    for col, value in where.items():
        mask = mask & (pl.col(col).is_null() if value is None else pl.col(col) == value)
    hit = frame.filter(mask)
    assert hit.height == 1, f"{where}: {hit.height} rows\n{frame}"
    return hit.row(0, named=True)


def cells(ev, c: float, t: float) -> dict:
    """{(gt_feature, pd_feature): count} of the sparse confusion at (c, t)."""
    conf = ev.confusion.filter(
        (pl.col("confidence_threshold") == c) & (pl.col("iou_threshold") == t))
    return {(g, p): n for g, p, n in conf.select("gt_feature", "pd_feature", "count").rows()}


def both(gt, pd, **kwargs):
    """Engine and naive evaluations of the same input."""
    return pm.evaluate(gt, pd, **kwargs), naive.evaluate(gt, pd, **kwargs)


def counts(row: dict) -> tuple:
    return (row["tp"], row["fp"], row["fn"])


# --------------------------------------------------------------------------------------------
# IoU exactly at the threshold: the test is strict
# --------------------------------------------------------------------------------------------


def test_iou_exactly_at_threshold_is_not_a_match() -> None:
    # gt (0,0,10,10) area 100, pred (0,0,10,5) area 50, intersection 50, union 100:
    # IoU = 50 / 100 = 0.5 exactly.
    gt = gt_frame((1, "cat", (0, 0, 10, 10)))
    pd = pd_frame((1, "cat", (0, 0, 10, 5), 0.9))
    for ev in both(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.4, 0.5]):
        # t = 0.4: 0.5 > 0.4 -> matched: TP 1, precision = recall = f1 = 1
        row = one(ev.cube, feature="cat", iou_threshold=0.4)
        assert counts(row) == (1, 0, 0)
        assert (row["precision"], row["recall"], row["f1"]) == (1.0, 1.0, 1.0)
        # t = 0.5: 0.5 > 0.5 is false -> no match: FP 1 (pred), FN 1 (gt); ratios 0 (not null)
        row = one(ev.cube, feature="cat", iou_threshold=0.5)
        assert counts(row) == (0, 1, 1)
        assert (row["precision"], row["recall"], row["f1"]) == (0.0, 0.0, 0.0)
        assert row["tn"] is None  # no true negatives for boxes
        # the IoU metric ignores t: 0.5 / max(1, 1) = 0.5 at both thresholds
        assert row["iou"] == 0.5
        assert one(ev.cube, feature="cat", iou_threshold=0.4)["iou"] == 0.5
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.4, 0.5])
    assert cells(ev, 0.0, 0.4) == {("cat", "cat"): 1}
    assert cells(ev, 0.0, 0.5) == {("cat", None): 1, (None, "cat"): 1}


def test_nothing_matches_at_iou_threshold_one() -> None:
    # identical boxes: IoU 1.0; 1.0 > 1.0 is false, so even a perfect box is FP + FN at t = 1
    gt = gt_frame((1, "cat", (0, 0, 4, 4)))
    pd = pd_frame((1, "cat", (0, 0, 4, 4), 1.0))
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.99, 1.0])
    assert counts(one(ev.cube, iou_threshold=0.99)) == (1, 0, 0)
    assert counts(one(ev.cube, iou_threshold=1.0)) == (0, 1, 1)
    assert one(ev.cube, iou_threshold=1.0)["iou"] == 1.0


# --------------------------------------------------------------------------------------------
# Misclassification: class-agnostic matching
# --------------------------------------------------------------------------------------------


def test_misclassification_fills_the_off_diagonal_cell() -> None:
    # gt cat and pred dog on the same box: IoU 1 > 0.5, matched class-agnostically.
    gt = gt_frame((1, "cat", (0, 0, 10, 10)))
    pd = pd_frame((1, "dog", (0, 0, 10, 10), 0.8))
    for ev in both(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.5]):
        cat, dog = one(ev.cube, feature="cat"), one(ev.cube, feature="dog")
        # cat: TP 0, FP 0, FN 1 -> precision 0/0 = null, recall 0/1 = 0, f1 0/(0+0+1) = 0
        assert counts(cat) == (0, 0, 1)
        assert (cat["precision"], cat["recall"], cat["f1"]) == (None, 0.0, 0.0)
        # dog: TP 0, FP 1, FN 0 -> precision 0, recall null, f1 0
        assert counts(dog) == (0, 1, 0)
        assert (dog["precision"], dog["recall"], dog["f1"]) == (0.0, None, 0.0)
        # IoU metric is per feature: cat has 1 gt and 0 cat preds -> 0 / max(1, 0) = 0; dog 0
        assert cat["iou"] == 0.0 and dog["iou"] == 0.0
        micro = one(ev.overall, average="micro")
        macro = one(ev.overall, average="macro")
        # micro: TP 0, FP 1, FN 1 -> 0, 0, 0
        assert counts(micro) == counts(macro) == (0, 1, 1)
        assert (micro["precision"], micro["recall"], micro["f1"]) == (0.0, 0.0, 0.0)
        # macro: mean of defined values: precision mean(dog 0) = 0; recall mean(cat 0) = 0
        assert (macro["precision"], macro["recall"], macro["f1"]) == (0.0, 0.0, 0.0)
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.5])
    assert cells(ev, 0.0, 0.5) == {("cat", "dog"): 1}
    ex = ev.examples(gt_feature="cat", pd_feature="dog", confidence=0.0, iou=0.5)
    # ids generated as the 0-based row position in each input table
    assert ex.select("data_row", "gt_id", "pd_id", "iou").rows() == [(1, 0, 0, 1.0)]


def test_class_agnostic_walk_consumes_the_better_overlap() -> None:
    # gt cat G1 (0,0,10,10), gt dog G2 (3,0,13,10); pred dog P (1,0,11,10).
    # IoU(G1, P): inter x 1..10 = 9 * 10 = 90, union 100 + 100 - 90 = 110 -> 0.8181...
    # IoU(G2, P): inter x 3..11 = 8 * 10 = 80, union 120 -> 0.6666...
    # -> P matches G1 (cat): misclassification [cat, dog]; G2 (dog) unmatched: [dog, None].
    # A class-aware matcher would have given dog a TP instead.
    gt = gt_frame((1, "cat", (0, 0, 10, 10)), (1, "dog", (3, 0, 13, 10)))
    pd = pd_frame((1, "dog", (1, 0, 11, 10), 0.7))
    for ev in both(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.5]):
        assert counts(one(ev.cube, feature="cat")) == (0, 0, 1)
        assert counts(one(ev.cube, feature="dog")) == (0, 1, 1)
        # IoU metric (class-aware, no threshold): dog G2-P = 80/120; cat 0 / max(1, 0) = 0
        assert one(ev.cube, feature="dog")["iou"] == pytest.approx(80 / 120, abs=1e-15)
        assert one(ev.cube, feature="cat")["iou"] == 0.0
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.5])
    assert cells(ev, 0.0, 0.5) == {("cat", "dog"): 1, ("dog", None): 1}


# --------------------------------------------------------------------------------------------
# Ties: gt-major input order, not confidence
# --------------------------------------------------------------------------------------------


def test_tied_ground_truths_go_in_input_order() -> None:
    # two gts on the same box, one pred on it too: both pairs IoU 1.0, a tie.
    # The first gt in input order wins the pred.
    box = (0, 0, 10, 10)
    pd = pd_frame((1, "dog", box, 0.9))
    # cat first: [cat, dog] misclassification + [dog, None]
    ev = pm.evaluate(gt_frame((1, "cat", box), (1, "dog", box)), pd,
                     confidence_thresholds=[0.0], iou_thresholds=[0.5])
    assert cells(ev, 0.0, 0.5) == {("cat", "dog"): 1, ("dog", None): 1}
    # dog first: [dog, dog] TP + [cat, None]
    ev = pm.evaluate(gt_frame((1, "dog", box), (1, "cat", box)), pd,
                     confidence_thresholds=[0.0], iou_thresholds=[0.5])
    assert cells(ev, 0.0, 0.5) == {("dog", "dog"): 1, ("cat", None): 1}


def test_tied_predictions_go_in_input_order_not_confidence() -> None:
    # one gt cat, two preds on the same box (IoU 1.0 each): cat with confidence 0.5 first in
    # the table, dog with confidence 0.9 second. The tie rule is input order, so the cat pred
    # (lower confidence) wins: TP cat, and the dog pred is an unmatched FP [None, dog].
    box = (0, 0, 10, 10)
    gt = gt_frame((1, "cat", box))
    pd = pd_frame((1, "cat", box, 0.5), (1, "dog", box, 0.9))
    for ev in both(gt, pd, confidence_thresholds=[0.0, 0.6], iou_thresholds=[0.5]):
        assert counts(one(ev.cube, feature="cat", confidence_threshold=0.0)) == (1, 0, 0)
        assert counts(one(ev.cube, feature="dog", confidence_threshold=0.0)) == (0, 1, 0)
        # at c = 0.6 the cat pred is gone: the dog pred takes the gt -> [cat, dog]
        assert counts(one(ev.cube, feature="cat", confidence_threshold=0.6)) == (0, 0, 1)
        assert counts(one(ev.cube, feature="dog", confidence_threshold=0.6)) == (0, 1, 0)
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0, 0.6], iou_thresholds=[0.5])
    assert cells(ev, 0.0, 0.5) == {("cat", "cat"): 1, (None, "dog"): 1}
    assert cells(ev, 0.6, 0.5) == {("cat", "dog"): 1}
    # swapped input order: dog pred first -> it takes the gt: [cat, dog] + [None, cat]
    ev = pm.evaluate(gt, pd.reverse(), confidence_thresholds=[0.0], iou_thresholds=[0.5])
    assert cells(ev, 0.0, 0.5) == {("cat", "dog"): 1, (None, "cat"): 1}


def test_ties_follow_input_order_not_ids() -> None:
    # (For tied IoUs, gt-major and pred-major input order always pick the same pairs -- a
    # brute force over every 3x3 tie pattern finds no difference -- so what a test can pin
    # down is that *input position* decides, not ids, features or confidence.)
    # gts G0 (id 9, cat) and G1 (id 1, dog) on the same box, one dog pred on it: IoU 1 each.
    # Input order: G0 first -> [cat, dog] + [dog, None]. Sorting by id would give a dog TP.
    box = (0, 0, 2, 2)
    gt = gt_frame((1, "cat", box), (1, "dog", box)).with_columns(id=pl.Series([9, 1]))
    pd = pd_frame((1, "dog", box, 1.0)).with_columns(id=pl.Series([5]))
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.5])
    assert cells(ev, 0.0, 0.5) == {("cat", "dog"): 1, ("dog", None): 1}
    ex = ev.examples(gt_feature="cat", pd_feature="dog", confidence=0.0, iou=0.5)
    assert ex.select("gt_id", "pd_id").rows() == [(9, 5)]


# --------------------------------------------------------------------------------------------
# Greedy is not optimal
# --------------------------------------------------------------------------------------------


def test_greedy_by_iou_differs_from_the_optimal_assignment() -> None:
    # All boxes are 10 high, y from 0 to 10, so IoU = interval IoU along x.
    # gt A = [0,10], gt B = [6,12]; pred P = [1,10], pred Q = [0,6]; all "cat".
    # IoU(A,P) = 9/10 = 0.9; IoU(A,Q) = 6/10 = 0.6;
    # IoU(B,P) = inter [6,10] = 4 / union [1,12] = 11 -> 0.3636...; IoU(B,Q) = 0 (touching).
    # Greedy at t = 0.3: A-P (0.9) first; A-Q and B-P then find a side taken; B-Q is not a
    # candidate. -> TP 1, FP 1 (Q), FN 1 (B). The optimal assignment A-Q, B-P has 2 TPs.
    gt = gt_frame((1, "cat", (0, 0, 10, 10)), (1, "cat", (6, 0, 12, 10)))
    pd = pd_frame((1, "cat", (1, 0, 10, 10), 0.9), (1, "cat", (0, 0, 6, 10), 0.9))
    for ev in both(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.3]):
        row = one(ev.cube, feature="cat")
        assert counts(row) == (1, 1, 1)
        # precision 1/2, recall 1/2, f1 = 2*1 / (2*1 + 1 + 1) = 0.5
        assert (row["precision"], row["recall"], row["f1"]) == (0.5, 0.5, 0.5)
        # IoU metric (greedy, no threshold): A-P 0.9, then B-Q at IoU 0 -> (0.9 + 0) / 2 = 0.45
        # (an optimal assignment would give (0.6 + 4/11) / 2 = 0.4818...)
        assert row["iou"] == pytest.approx(0.45, abs=1e-15)
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.3])
    ex = ev.examples(gt_feature="cat", pd_feature="cat", confidence=0.0, iou=0.3)
    assert ex.select("gt_id", "pd_id").rows() == [(0, 0)]
    assert ex["iou"].to_list() == [pytest.approx(0.9, abs=1e-15)]
    assert ev.examples(gt_feature="cat", pd_feature=None, confidence=0.0,
                       iou=0.3)["gt_id"].to_list() == [1]
    assert ev.examples(gt_feature=None, pd_feature="cat", confidence=0.0,
                       iou=0.3)["pd_id"].to_list() == [1]


# --------------------------------------------------------------------------------------------
# Confidence
# --------------------------------------------------------------------------------------------


def test_prediction_below_the_confidence_threshold_is_dropped() -> None:
    # gt cat and pred cat on the same box, confidence 0.4.
    # c = 0.0 and c = 0.4 (0.4 >= 0.4): kept -> TP. c = 0.5: dropped -> FN only.
    gt = gt_frame((1, "cat", (0, 0, 10, 10)))
    pd = pd_frame((1, "cat", (0, 0, 10, 10), 0.4))
    for ev in both(gt, pd, confidence_thresholds=[0.0, 0.4, 0.5], iou_thresholds=[0.5]):
        assert counts(one(ev.cube, confidence_threshold=0.0)) == (1, 0, 0)
        assert counts(one(ev.cube, confidence_threshold=0.4)) == (1, 0, 0)
        row = one(ev.cube, confidence_threshold=0.5)
        # TP 0, FP 0, FN 1: precision 0/0 null; recall 0; f1 0/1 = 0
        assert counts(row) == (0, 0, 1)
        assert (row["precision"], row["recall"], row["f1"]) == (None, 0.0, 0.0)
        # IoU metric: 1 gt, 0 kept preds -> 0 / max(1, 0) = 0; the row still counts
        assert row["iou"] == 0.0
        assert ev.excluded.height == 0
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0, 0.4, 0.5], iou_thresholds=[0.5])
    assert cells(ev, 0.5, 0.5) == {("cat", None): 1}
    # the PR curve at t = 0.5 and the best threshold: F1 1, 1, 0 -> tie between 0.0 and 0.4,
    # broken towards the lowest threshold
    best = one(ev.best_thresholds(iou=0.5), feature="cat")
    assert (best["confidence_threshold"], best["f1"]) == (0.0, 1.0)
    best = one(ev.best_thresholds(iou=0.5), feature=None)  # micro
    assert (best["confidence_threshold"], best["f1"]) == (0.0, 1.0)
    curve = ev.pr_curve(iou=0.5).filter(pl.col("feature") == "cat").sort("confidence_threshold")
    assert curve["recall"].to_list() == [1.0, 1.0, 0.0]
    assert curve["precision"].to_list() == [1.0, 1.0, None]


def test_null_confidence_is_one_and_survives_threshold_one() -> None:
    # pred A (null confidence = 1.0) on gt A; pred B (0.99) on gt B; pred C (1.0) on gt C.
    # At c = 1.0: A kept (1.0 >= 1.0), B dropped, C kept -> TP 2, FN 1.
    gt = gt_frame((1, "cat", (0, 0, 1, 1)), (1, "cat", (5, 5, 6, 6)), (1, "cat", (9, 9, 10, 10)))
    pd = pd_frame((1, "cat", (0, 0, 1, 1), None), (1, "cat", (5, 5, 6, 6), 0.99),
                  (1, "cat", (9, 9, 10, 10), 1.0))
    for ev in both(gt, pd, confidence_thresholds=[1.0], iou_thresholds=[0.5]):
        row = one(ev.cube, feature="cat")
        assert counts(row) == (2, 0, 1)
        # IoU metric: matched IoUs 1 + 1 over max(3 gts, 2 kept preds) = 2/3
        assert row["iou"] == pytest.approx(2 / 3, abs=1e-15)


def test_thresholds_are_rounded_before_any_decision() -> None:
    # confidence 0.3 vs threshold 0.1 * 3 = 0.30000000000000004: rounded to 0.3 -> kept.
    # IoU 0.3 (gt (0,0,10,10), pred (0,0,10,3): 30/100) vs threshold 0.7 - 0.4 =
    # 0.29999999999999993: rounded to 0.3 -> 0.3 > 0.3 is false -> not matched.
    # (Without the rounding: the pred would be dropped at c, and matched at t.)
    gt = gt_frame((1, "cat", (0, 0, 10, 10)))
    pd = pd_frame((1, "cat", (0, 0, 10, 3), 0.3))
    c, t = 0.1 * 3, 0.7 - 0.4
    assert c > 0.3 and t < 0.3
    for ev in both(gt, pd, confidence_thresholds=[c], iou_thresholds=[t, 0.2]):
        assert ev.cube["confidence_threshold"].unique().to_list() == [0.3]
        assert sorted(ev.cube["iou_threshold"].to_list()) == [0.2, 0.3]
        assert counts(one(ev.cube, iou_threshold=0.3)) == (0, 1, 1)  # kept, not matched
        assert counts(one(ev.cube, iou_threshold=0.2)) == (1, 0, 0)
    # np.linspace artefacts: these two calls give the same thresholds and numbers
    a = pm.evaluate(gt, pd, confidence_thresholds=np.linspace(0, 1, 11),
                    iou_thresholds=np.linspace(0, 1, 11))
    b = pm.evaluate(gt, pd)
    assert a.cube.equals(b.cube)
    assert a.cube["iou_threshold"].unique().sort().to_list() == [i / 10 for i in range(11)]
    # duplicates (after rounding) and unsorted input collapse to one sorted axis
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.5, 0.2, 0.5000000000004, 0.2],
                     iou_thresholds=[0.5])
    assert ev.cube["confidence_threshold"].to_list() == [0.2, 0.5]


# --------------------------------------------------------------------------------------------
# Zero-area boxes, one-sided features, excluded rows, keys
# --------------------------------------------------------------------------------------------


def test_zero_area_boxes_never_match() -> None:
    # two identical zero-area boxes: union 0 -> IoU 0 (not NaN); no match even at t = 0.
    gt = gt_frame((1, "cat", (5, 5, 5, 5)))
    pd = pd_frame((1, "cat", (5, 5, 5, 5), 1.0))
    for ev in both(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.0]):
        row = one(ev.cube, feature="cat")
        assert counts(row) == (0, 1, 1)
        # IoU metric: the pair is "matched" at IoU 0 -> 0 / max(1, 1) = 0
        assert row["iou"] == 0.0
    assert pm.pairwise_iou(gt, pd).height == 0  # only pairs with IoU > 0 are listed


def test_feature_on_one_side_only_still_counts() -> None:
    # row 1: gt cat matched by pred cat; pred dog (no dog gt anywhere) far away.
    # dog: TP 0, FP 1, FN 0 -> precision 0, recall null, f1 0, iou 0/max(0,1) = 0.
    # row 2: gt eel only (no preds) -> excluded, so eel never reaches the cube.
    gt = gt_frame((1, "cat", (0, 0, 10, 10)), (2, "eel", (0, 0, 1, 1)))
    pd = pd_frame((1, "cat", (0, 0, 10, 10), 0.9), (1, "dog", (50, 50, 60, 60), 0.9))
    for ev in both(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.5]):
        assert sorted(ev.cube["feature"].to_list()) == ["cat", "dog"]
        dog = one(ev.cube, feature="dog")
        assert counts(dog) == (0, 1, 0)
        assert (dog["precision"], dog["recall"], dog["f1"], dog["iou"]) == (0.0, None, 0.0, 0.0)


def test_data_row_means_differ_from_micro() -> None:
    # one row: gt cat x2 matched exactly by pred cat x2; one pred dog with no gt.
    # per feature on the row: cat P 1, R 1, F1 1, IoU (1+1)/2 = 1; dog P 0, R null, F1 0, IoU 0
    # data-row: counts TP 2, FP 1, FN 0; precision mean(1, 0) = 0.5 (micro would be 2/3);
    # recall mean(1) = 1; f1 mean(1, 0) = 0.5; iou mean(1, 0) = 0.5.
    gt = gt_frame((1, "cat", (0, 0, 10, 10)), (1, "cat", (20, 0, 30, 10)))
    pd = pd_frame((1, "cat", (0, 0, 10, 10), 0.9), (1, "cat", (20, 0, 30, 10), 0.9),
                  (1, "dog", (50, 50, 60, 60), 0.9))
    for ev in both(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.5]):
        row = one(ev.data_rows, data_row=1)
        assert counts(row) == (2, 1, 0) and row["tn"] is None
        assert (row["precision"], row["recall"], row["f1"], row["iou"]) == (0.5, 1.0, 0.5, 0.5)
        micro, macro = one(ev.overall, average="micro"), one(ev.overall, average="macro")
        # micro: P 2/3, R 2/2 = 1, F1 4/(4+1) = 0.8; iou over (row, feature) values (1+0)/2
        assert micro["precision"] == pytest.approx(2 / 3, abs=1e-15)
        assert (micro["recall"], micro["f1"], micro["iou"]) == (1.0, 0.8, 0.5)
        # macro: P mean(1, 0) = 0.5, R mean(1) = 1, F1 mean(1, 0) = 0.5, iou mean(1, 0) = 0.5
        assert (macro["precision"], macro["recall"], macro["f1"], macro["iou"]) == (
            0.5, 1.0, 0.5, 0.5)


def test_micro_and_macro_iou_weigh_rows_differently() -> None:
    # row 1: cat exact match (IoU 1), stray dog pred (dog IoU 0/1 = 0).
    # row 2: cat gt (0,0,10,10) vs cat pred (0,0,10,5): IoU 0.5.
    # per feature: cat = mean over rows (1, 0.5) = 0.75; dog = 0 (row 1 only).
    # macro iou = mean(0.75, 0) = 0.375; micro iou = (1 + 0 + 0.5) / 3 = 0.5.
    gt = gt_frame((1, "cat", (0, 0, 10, 10)), (2, "cat", (0, 0, 10, 10)))
    pd = pd_frame((1, "cat", (0, 0, 10, 10), 1.0), (1, "dog", (50, 50, 60, 60), 1.0),
                  (2, "cat", (0, 0, 10, 5), 1.0))
    for ev in both(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.4]):
        assert one(ev.cube, feature="cat")["iou"] == 0.75
        assert one(ev.cube, feature="dog")["iou"] == 0.0
        assert one(ev.overall, average="macro")["iou"] == 0.375
        assert one(ev.overall, average="micro")["iou"] == 0.5
        # data rows: row 1 iou mean(1, 0) = 0.5; row 2 iou 0.5
        assert one(ev.data_rows, data_row=1)["iou"] == 0.5
        assert one(ev.data_rows, data_row=2)["iou"] == 0.5


def test_excluded_rows_are_listed_with_reason_and_counts() -> None:
    # row 10: 2 gts, no preds -> excluded "no predictions" (n_gt 2, n_pd 0)
    # row 20: no gts, 3 preds -> excluded "no ground truth" (n_gt 0, n_pd 3)
    # row 30: both -> counted (even though its only pred is below every c > 0.2)
    gt = gt_frame((10, "cat", (0, 0, 1, 1)), (10, "cat", (2, 2, 3, 3)), (30, "cat", (0, 0, 1, 1)))
    pd = pd_frame((20, "cat", (0, 0, 1, 1), 0.5), (20, "dog", (0, 0, 1, 1), 0.5),
                  (20, "cat", (2, 2, 3, 3), 0.5), (30, "cat", (0, 0, 1, 1), 0.2))
    for ev in both(gt, pd):
        assert sorted(ev.excluded.select("data_row", "reason", "n_gt", "n_pd").rows()) == [
            (10, naive.REASON_NO_PREDICTIONS, 2, 0),
            (20, naive.REASON_NO_GROUND_TRUTH, 0, 3),
        ]
        assert ev.data_rows["data_row"].unique().to_list() == [30]
        # dog only appears in an excluded row -> not in the cube
        assert ev.cube["feature"].unique().to_list() == ["cat"]
        # 11 x 11 grid for the one feature
        assert ev.cube.height == 121 and ev.data_rows.height == 121


def test_composite_keys_do_not_mix_rows() -> None:
    # (v1, 0): gt only -> excluded; (v2, 0): pred only, same box and frame number -> excluded.
    # (v1, 1): gt + pred on the same box -> TP.
    ks = {"video": pl.String, "frame": pl.Int64}
    gt = gt_frame(("v1", 0, "cat", (0, 0, 4, 4)), ("v1", 1, "cat", (0, 0, 4, 4)), key_schema=ks)
    pd = pd_frame(("v2", 0, "cat", (0, 0, 4, 4), 0.9), ("v1", 1, "cat", (0, 0, 4, 4), 0.9),
                  key_schema=ks)
    kwargs = dict(data_row=["video", "frame"], confidence_thresholds=[0.0], iou_thresholds=[0.5])
    for ev in both(gt, pd, **kwargs):
        assert counts(one(ev.cube, feature="cat")) == (1, 0, 0)
        assert ev.data_rows.select("video", "frame").rows() == [("v1", 1)]
        assert sorted(ev.excluded.select("video", "frame", "reason").rows()) == [
            ("v1", 0, naive.REASON_NO_PREDICTIONS), ("v2", 0, naive.REASON_NO_GROUND_TRUTH)]
    ev = pm.evaluate(gt, pd, **kwargs)
    ex = ev.examples(gt_feature="cat", pd_feature="cat", confidence=0.0, iou=0.5)
    # generated ids are row positions in each table: gt row 1, pred row 1
    assert ex.select("video", "frame", "gt_id", "pd_id").rows() == [("v1", 1, 1, 1)]
    pairs = pm.pairwise_iou(gt, pd, data_row=["video", "frame"])
    assert pairs.rows() == [("v1", 1, 1, 1, 1.0)]


def test_by_slices_lead_every_frame() -> None:
    # row 1 (train): cat TP. row 2 (val): cat FP + FN (IoU 1/3 vs pred (1,0,3,1) on (0,0,2,1)).
    # IoU of row 2: inter 1*1 = 1, union 2 + 2 - 1 = 3 -> 1/3 < 0.5.
    gt = gt_frame((1, "cat", (0, 0, 2, 1)), (2, "cat", (0, 0, 2, 1)))
    pd = pd_frame((1, "cat", (0, 0, 2, 1), 0.9), (2, "cat", (1, 0, 3, 1), 0.9))
    meta = pl.DataFrame({"data_row": [1, 2], "split": ["train", "val"]})
    kwargs = dict(by=["split"], data_rows=meta, confidence_thresholds=[0.0],
                  iou_thresholds=[0.5])
    for ev in both(gt, pd, **kwargs):
        assert ev.cube.columns[0] == "split" and ev.overall.columns[0] == "split"
        assert counts(one(ev.cube, split="train")) == (1, 0, 0)
        val = one(ev.cube, split="val")
        assert counts(val) == (0, 1, 1)
        assert val["iou"] == pytest.approx(1 / 3, abs=1e-15)
        assert counts(one(ev.overall, split="val", average="micro")) == (0, 1, 1)
    ev = pm.evaluate(gt, pd, **kwargs)
    assert ev.confusion.columns[0] == "split"
    assert "split" in ev.data_rows.columns
    assert ev.pr_curve(iou=0.5).columns[0] == "split"


def test_confusion_matrix_dense_view() -> None:
    # row 1: gt cat & pred cat (same box) TP; gt dog & pred cat (same box) -> [dog, cat];
    # pred dog far away -> [None, dog]; gt eel far away -> [eel, None].
    gt = gt_frame((1, "cat", (0, 0, 2, 2)), (1, "dog", (10, 10, 12, 12)), (1, "eel", (40, 40, 41, 41)))
    pd = pd_frame((1, "cat", (0, 0, 2, 2), 0.9), (1, "cat", (10, 10, 12, 12), 0.9),
                  (1, "dog", (20, 20, 22, 22), 0.9))
    ev = pm.evaluate(gt, pd)
    m = ev.confusion_matrix(confidence=0.5, iou=0.5)
    assert m.columns == ["gt_feature", "cat", "dog", "eel", "None"]
    assert m.rows() == [
        ("cat", 1, 0, 0, 0),
        ("dog", 1, 0, 0, 0),
        ("eel", 0, 0, 0, 1),
        ("None", 0, 1, 0, 0),
    ]
    # row sums: gts per feature (1, 1, 1); column sums: kept preds per feature (2, 1, 0)
    assert naive.evaluate(gt, pd).confusion_matrix(0.5, 0.5).rows() == m.rows()


def test_empty_tables_give_empty_typed_frames() -> None:
    gt, pd = gt_frame(), pd_frame()
    ev = pm.evaluate(gt, pd)
    nv = naive.evaluate(gt, pd)
    for name in ("cube", "overall", "confusion", "data_rows", "excluded"):
        got = getattr(ev, name)
        assert got.height == 0, name
    for name in ("cube", "overall", "confusion", "data_rows", "excluded"):
        assert dict(getattr(ev, name).schema) == dict(getattr(nv, name).schema), name


@pytest.mark.parametrize("by", [False, True])
def test_frame_layouts_follow_the_contract(by: bool) -> None:
    """Column order and dtypes of every frame, as the engine contract of issue 2 lists them."""
    gt = gt_frame((1, "cat", (0, 0, 2, 2)), (2, "cat", (0, 0, 2, 2)))
    pd = pd_frame((1, "cat", (0, 0, 2, 2), 0.9))
    lead = ["split"] if by else []
    kwargs = {}
    if by:
        kwargs = dict(by=["split"], data_rows=pl.DataFrame({"data_row": [1, 2],
                                                            "split": ["a", "b"]}))
    ev = pm.evaluate(gt, pd, **kwargs)
    metrics = ["tp", "fp", "tn", "fn", "precision", "recall", "f1", "iou"]
    grid = ["confidence_threshold", "iou_threshold"]
    expected = {
        "cube": [*lead, "feature", *grid, *metrics],
        "overall": [*lead, "average", *grid, *metrics],
        "confusion": [*lead, *grid, "gt_feature", "pd_feature", "count"],
        "data_rows": ["data_row", *lead, *grid, *metrics],
        "pr_curve": [*lead, "feature", "confidence_threshold", "precision", "recall", "f1"],
    }
    got = {name: getattr(ev, name).columns for name in ("cube", "overall", "confusion",
                                                        "data_rows")}
    got["pr_curve"] = ev.pr_curve(iou=0.5).columns
    wrong = {name: f"got {got[name]}, contract {cols}" for name, cols in expected.items()
             if got[name] != cols}
    assert not wrong, "\n".join(f"{k}: {v}" for k, v in wrong.items())
    assert ev.excluded.columns[:1] == ["data_row"]
    assert ev.excluded.columns[-3:] == ["reason", "n_gt", "n_pd"]
    assert ev.examples(gt_feature="cat", pd_feature="cat", confidence=0.5,
                       iou=0.5).columns[-3:] == ["gt_id", "pd_id", "iou"]
    for frame in (ev.cube, ev.overall, ev.data_rows):
        assert [frame.schema[c] for c in metrics] == [pl.Int64] * 4 + [pl.Float64] * 4


def test_only_ground_truth_is_all_excluded() -> None:
    gt = gt_frame((1, "cat", (0, 0, 1, 1)))
    ev = pm.evaluate(gt, pd_frame())
    assert ev.cube.height == 0 and ev.data_rows.height == 0 and ev.confusion.height == 0
    assert ev.excluded.select("data_row", "reason", "n_gt", "n_pd").rows() == [
        (1, naive.REASON_NO_PREDICTIONS, 1, 0)]


def test_explicit_ids_come_back_in_examples() -> None:
    gt = gt_frame((1, "cat", (0, 0, 2, 2))).with_columns(id=pl.lit("g-7"))
    pd = pd_frame((1, "cat", (0, 0, 2, 2), 0.9)).with_columns(id=pl.lit("p-3"))
    ev = pm.evaluate(gt, pd)
    ex = ev.examples(gt_feature="cat", pd_feature="cat", confidence=0.5, iou=0.5)
    assert ex.select("data_row", "gt_id", "pd_id", "iou").rows() == [(1, "g-7", "p-3", 1.0)]


def test_box_iou_expression_hand_values() -> None:
    frame = pl.DataFrame(
        {"a": [[0.0, 0, 10, 10], [0.0, 0, 10, 10], [5.0, 5, 5, 5]],
         "b": [[0.0, 0, 10, 5], [10.0, 0, 20, 10], [5.0, 5, 5, 5]]},
        schema={"a": BBOX, "b": BBOX},
    )
    got = frame.select(pl.col("a").pm.box_iou(pl.col("b")))
    # 0.5 (half box); 0 (touching edge); 0 (zero-area boxes, not NaN)
    assert got.to_series().to_list() == [0.5, 0.0, 0.0]
