"""Classifications (SPEC §4) against scikit-learn, computed inside the tests, and by hand."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import (
    confusion_matrix,
    multilabel_confusion_matrix,
    precision_recall_fscore_support,
)

import polars_metrics as pm

ANSWERS = ["cloudy", "rain", "snow", "sunny"]


def radio_tables(y_true, y_pred, conf=None, question="weather"):
    n = len(y_true)
    rows = [f"r{i:04d}" for i in range(n)]
    gt = pl.DataFrame({"data_row": rows, "question": [question] * n, "answer": y_true})
    pd = pl.DataFrame({"data_row": rows, "question": [question] * n, "answer": y_pred,
                       "confidence": conf if conf is not None else [1.0] * n})
    return gt, pd


@pytest.mark.reference
@pytest.mark.parametrize("seed", range(5))
def test_radio_matches_sklearn_at_confidence_zero(seed):
    rng = np.random.default_rng(seed)
    n = 300
    y_true = rng.choice(ANSWERS, n).tolist()
    # a noisy classifier: right 60% of the time
    y_pred = [t if rng.random() < 0.6 else rng.choice(ANSWERS) for t in y_true]
    ev = pm.evaluate(*radio_tables(y_true, y_pred), confidence_thresholds=[0.0],
                     iou_thresholds=[0.0, 0.5, 1.0])
    labels = sorted(set(y_true) | set(y_pred))
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    for t in (0.0, 0.5, 1.0):  # IoU thresholds do not apply to classifications
        dense = ev.confusion_matrix(confidence=0.0, iou=t)
        assert dense["gt_feature"].to_list() == [*labels, "None"]
        ours = dense.select(labels).to_numpy()[: len(labels)]
        np.testing.assert_array_equal(ours, cm)
        # every row and column is answered on both sides: the None row and column are empty
        assert dense["None"].sum() == 0 and dense.select(labels).to_numpy()[-1].sum() == 0
    p, r, f, support = precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                       zero_division=np.nan)
    cube = ev.cube.filter(pl.col("iou_threshold") == 0.5).sort("feature")
    assert cube["feature"].to_list() == labels
    for ours, theirs in ((cube["precision"], p), (cube["recall"], r), (cube["f1"], f)):
        ours = ours.to_numpy().astype(float)  # null -> nan
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12, equal_nan=True)
    # one-vs-rest true negatives and the other cells from sklearn's per-class 2x2 matrices
    mcm = multilabel_confusion_matrix(y_true, y_pred, labels=labels)
    assert cube.select("tn", "fp", "fn", "tp").rows() == [tuple(m.ravel().tolist()) for m in mcm]


@pytest.mark.reference
@pytest.mark.parametrize("seed", range(5))
def test_checklist_matches_sklearn_multilabel(seed):
    rng = np.random.default_rng(seed)
    options = ["indoor", "night", "people", "vehicle", "water"]
    n = 200
    true = rng.random((n, len(options))) < 0.35
    flip = rng.random((n, len(options))) < 0.2
    pred = true ^ flip
    rows = [f"r{i:04d}" for i in range(n)]

    def table(mask):
        return [[o for o, on in zip(options, m, strict=True) if on] for m in mask]

    gt = pl.DataFrame({"data_row": rows, "question": ["tags"] * n, "answers": table(true)})
    pd = pl.DataFrame({"data_row": rows, "question": ["tags"] * n, "answers": table(pred)})
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.5])
    seen = [o for o in options if true[:, options.index(o)].any() or pred[:, options.index(o)].any()]
    cols = [options.index(o) for o in seen]
    # every row answers the question on both sides (some with no option): all rows count
    assert ev.data_rows["data_row"].n_unique() == n
    mcm = multilabel_confusion_matrix(true[:, cols], pred[:, cols])
    cube = ev.cube.sort("feature")
    assert cube["feature"].to_list() == sorted(seen)
    expected = {o: tuple(m.ravel().tolist()) for o, m in zip(seen, mcm, strict=True)}
    assert {r[0]: r[1:] for r in cube.select("feature", "tn", "fp", "fn", "tp").rows()} == expected
    # no misclassification cells for checklists: every matched pair is the same option
    conf = ev.confusion.drop_nulls()
    assert (conf["gt_feature"] == conf["pd_feature"]).all()


def test_radio_by_hand_with_confidence_and_one_sided_rows():
    # a: gt sunny, pred sunny 0.9 -> TP sunny
    # b: gt rain,  pred sunny 0.8 -> cell [rain, sunny]: FN rain, FP sunny
    # c: gt sunny, pred snow 0.3  -> c=0: [sunny, snow]; c=0.5: pred dropped -> [sunny, None]
    # d: gt only (no prediction row) -> excluded under the default profile
    gt = pl.DataFrame({"data_row": ["a", "b", "c", "d"], "question": ["weather"] * 4,
                       "answer": ["sunny", "rain", "sunny", "rain"]})
    pd = pl.DataFrame({"data_row": ["a", "b", "c"], "question": ["weather"] * 3,
                       "answer": ["sunny", "sunny", "snow"], "confidence": [0.9, 0.8, 0.3]})
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0, 0.5], iou_thresholds=[1.0])
    assert ev.excluded.select("data_row", "reason").rows() == [("d", "no predictions")]
    got = {(r["feature"], r["confidence_threshold"]): (r["tp"], r["fp"], r["tn"], r["fn"])
           for r in ev.cube.iter_rows(named=True)}
    # TN of x: rows (a, b, c) where the question was answered and neither side chose x
    assert got[("sunny", 0.0)] == (1, 1, 0, 1)  # a TP; b FP; c FN
    assert got[("rain", 0.0)] == (0, 0, 2, 1)   # b FN; a, c TN
    assert got[("snow", 0.0)] == (0, 1, 2, 0)   # c FP; a, b TN
    assert got[("snow", 0.5)] == (0, 0, 3, 0)   # c's snow is below 0.5: TN everywhere
    assert got[("sunny", 0.5)] == (1, 1, 0, 1)
    cells = {(g, p): n for c, t, g, p, n in ev.confusion.rows() if c == 0.5}
    assert cells == {("rain", "sunny"): 1, ("sunny", "sunny"): 1, ("sunny", None): 1}
    # per data row: option universe (3 answers) minus the answers chosen on either side
    rows = {(r["data_row"], r["confidence_threshold"]): r["tn"] for r in ev.data_rows.iter_rows(named=True)}
    assert rows == {("a", 0.0): 2, ("a", 0.5): 2, ("b", 0.0): 1, ("b", 0.5): 1,
                    ("c", 0.0): 1, ("c", 0.5): 2}
    ex = ev.examples("rain", "sunny", confidence=0.5, iou=1.0)
    assert ex.select("data_row", "gt_id", "pd_id").rows() == [("b", 1, 1)]


def test_text_is_exact_string_equality():
    gt = pl.DataFrame({"data_row": ["a", "b"], "kind": ["text", "text"],
                       "question": ["caption"] * 2, "answer": ["a red car", "a dog"]})
    pd = pl.DataFrame({"data_row": ["a", "b"], "kind": ["text", "text"],
                       "question": ["caption"] * 2, "answer": ["a red car", "a Dog"]})
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.5])
    row = ev.cube.row(0, named=True)
    # a: equal -> TP; b: different -> FP + FN; no true negatives for free text
    assert (row["feature"], row["tp"], row["fp"], row["tn"], row["fn"]) == ("caption", 1, 1, None, 1)


def test_boxes_and_classifications_in_one_call_do_not_interact():
    box = pl.Array(pl.Float64, 4)
    gt_boxes = pl.DataFrame({"data_row": ["a", "a"], "kind": ["box", "box"], "feature": ["cat", "dog"],
                             "bbox": [[0.0, 0, 10, 10], [20.0, 20, 30, 30]]}, schema_overrides={"bbox": box})
    pd_boxes = pl.DataFrame({"data_row": ["a", "a"], "kind": ["box", "box"], "feature": ["cat", "cat"],
                             "bbox": [[0.0, 0, 10, 9], [20.0, 20, 30, 30]], "confidence": [0.9, 0.6]},
                            schema_overrides={"bbox": box})
    gt_cls, pd_cls = radio_tables(["sunny"], ["rain"])
    gt_cls, pd_cls = (f.with_columns(pl.lit("a").alias("data_row"), pl.lit("radio").alias("kind"))
                      for f in (gt_cls, pd_cls))
    mixed = pm.evaluate(pl.concat([gt_boxes, gt_cls], how="diagonal_relaxed"),
                        pl.concat([pd_boxes, pd_cls], how="diagonal_relaxed"))
    boxes = pm.evaluate(gt_boxes, pd_boxes)
    for f in ("cat", "dog"):
        a = mixed.cube.filter(pl.col("feature") == f)
        assert a.equals(boxes.cube.filter(pl.col("feature") == f))
    radio = mixed.cube.filter((pl.col("feature") == "rain") & (pl.col("iou_threshold") == 1.0))
    assert radio.select("tp", "fp", "tn", "fn").rows()[0] == (0, 1, 0, 0)


def test_radio_answered_twice_is_an_error_and_ambiguous_answers_are_qualified():
    gt = pl.DataFrame({"data_row": ["a", "a"], "question": ["weather", "weather"],
                       "answer": ["sunny", "rain"]})
    pd = pl.DataFrame({"data_row": ["a"], "question": ["weather"], "answer": ["sunny"]})
    with pytest.raises(pm.InvalidAnnotationError, match="radio question is answered twice"):
        pm.evaluate(gt, pd)
    # "yes" answers two questions: features become "question/answer"
    gt = pl.DataFrame({"data_row": ["a", "a"], "question": ["is_day", "is_wet"], "answer": ["yes", "no"]})
    pd = pl.DataFrame({"data_row": ["a", "a"], "question": ["is_day", "is_wet"], "answer": ["yes", "yes"]})
    with pytest.warns(pm.PolarsMetricsWarning, match="question/answer"):
        ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.5])
    got = {r["feature"]: (r["tp"], r["fp"], r["tn"], r["fn"]) for r in ev.cube.iter_rows(named=True)}
    assert got == {"is_day/yes": (1, 0, 0, 0), "is_wet/yes": (0, 1, 0, 0), "no": (0, 0, 0, 1)}


# --- issue 10: items 9, 11 and the peers' empty one-sided tables -------------------------------
def _checklist(rows, answers, confs=None, question="tags"):
    data = {"data_row": rows, "kind": ["checklist"] * len(rows), "question": [question] * len(rows),
            "answers": answers}
    if confs is not None:
        data["answer_confidences"] = confs
    return pl.DataFrame(data, schema_overrides={"answers": pl.List(pl.String),
                                                "answer_confidences": pl.List(pl.Float64)})


@pytest.mark.parametrize(("confs", "reason"), [
    ([[float("nan"), 0.5]], "NaN or outside"),
    ([[2.0, 0.5]], "NaN or outside"),
    ([[-0.1, None]], "NaN or outside"),
    ([[0.5]], "one entry per option"),
])
def test_checklist_option_confidences_are_validated(confs, reason):
    gt = _checklist(["a"], [["x", "y"]])
    pd = _checklist(["a"], [["x", "y"]], confs)
    with pytest.raises(pm.InvalidAnnotationError, match=reason):
        pm.evaluate(gt, pd)
    ev = pm.evaluate(gt, pd, on_invalid="drop")
    assert ev.rejects.select("table", "row", "column").rows() == [("predictions", 0, "answers")]
    assert "answer_confidences" in ev.rejects["reason"][0]


def test_a_null_list_of_option_scores_means_the_row_score_for_every_option():
    """Row a lists per-option scores, row b gives none (a null list): b's options take the
    row's confidence, as a null entry inside the list does. Before, the null list failed with
    polars' "exploded columns must have matching element counts". By hand, at thresholds
    0.0 / 0.5: x is selected on both rows and y on b; b's row score 0.3 drops both of b's
    options at 0.5, a's x (0.9) stays."""
    gt = _checklist(["a", "b"], [["x"], ["x", "y"]])
    pd = _checklist(["a", "b"], [["x"], ["x", "y"]], [[0.9], None]).with_columns(
        confidence=pl.Series([1.0, 0.3]))
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0, 0.5])
    got = {(r["confidence_threshold"], r["feature"]): (r["tp"], r["fp"], r["fn"])
           for r in ev.cube.iter_rows(named=True)}
    assert got == {(0.0, "x"): (2, 0, 0), (0.0, "y"): (1, 0, 0),
                   (0.5, "x"): (1, 0, 1), (0.5, "y"): (0, 0, 1)}


def test_null_option_inside_answers_is_rejected_not_dropped():
    gt = _checklist(["a", "b"], [["x", None], ["x"]])
    with pytest.raises(pm.InvalidAnnotationError, match="an option in answers is null"):
        pm.evaluate(gt, gt)
    ev = pm.evaluate(gt, gt, on_invalid="drop")
    # the whole row goes to the rejects (both sides), data row b still counts its one option
    assert sorted(ev.rejects.select("table", "row").rows()) == [("ground_truth", 0), ("predictions", 0)]
    cube = ev.cube.filter(pl.col("confidence_threshold") == 0.5, pl.col("iou_threshold") == 0.5)
    assert cube.select("feature", "tp", "fp", "fn").rows() == [("x", 1, 0, 0)]


def test_empty_checklist_beside_another_classification_does_not_crash():
    # item 11: a question answered with [] (legal: nothing selected) and a radio on the row
    gt = pl.DataFrame({"data_row": ["a", "a"], "kind": ["checklist", "radio"], "question": ["tags", "w"],
                       "answers": [[], None], "answer": [None, "sun"]},
                      schema_overrides={"answers": pl.List(pl.String)})
    pd = gt.with_columns(pl.Series("answer", [None, "rain"]))
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.5], iou_thresholds=[0.5])
    # hand count: radio w: gt sun vs pd rain -> sun FN, rain FP; tags has no options: no row
    assert ev.cube.select("feature", "tp", "fp", "fn").sort("feature").rows() == [
        ("rain", 0, 1, 0), ("sun", 0, 0, 1)]


@pytest.mark.parametrize("empty_side", ["ground_truth", "predictions"])
@pytest.mark.parametrize("fn", ["evaluate", "sdk"])
def test_empty_one_sided_classification_table_with_a_kind_column(empty_side, fn):
    """Peers' suites: an empty table that has a kind column (but no feature) is legal."""
    full = pl.DataFrame({"data_row": ["a"], "kind": ["radio"], "question": ["w"], "answer": ["sun"]})
    empty = full.clear()
    gt, pd = (empty, full) if empty_side == "ground_truth" else (full, empty)
    if fn == "evaluate":
        ev = pm.evaluate(gt, pd, profile="labelbox", rows="all", confidence_thresholds=[0.5],
                         iou_thresholds=[0.5])
        want = ("sun", 0, 1, 0) if empty_side == "ground_truth" else ("sun", 0, 0, 1)
        assert ev.cube.select("feature", "tp", "fp", "fn").rows() == [want]
    else:
        # the SDK: a radio answered on one side only is one FN (gt) or one FP (prediction)
        want = ("a", 0, 1, 0, 0) if empty_side == "ground_truth" else ("a", 0, 0, 0, 1)
        assert pm.labelbox_sdk.confusion_matrix(gt, pd).rows() == [want]
