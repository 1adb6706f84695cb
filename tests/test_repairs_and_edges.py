"""Edges that cross modules: repaired geometry is reported in the result, placeholder rows with
no kind, per-option checklist confidence."""
from __future__ import annotations

import polars as pl
import pytest
import shapely

import polars_metrics as pm


def test_repaired_polygons_are_reported_and_used():
    bow = [[[0.0, 0.0], [10.0, 10.0], [10.0, 0.0], [0.0, 10.0]]]  # self-intersecting bow-tie
    square = [[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]]]
    gt = pl.DataFrame({"data_row": ["a"], "feature": ["x"], "polygon": [bow], "id": ["g1"]})
    pd = pl.DataFrame({"data_row": ["a"], "feature": ["x"], "polygon": [square]})
    with pytest.warns(pm.PolarsMetricsWarning, match="repaired with make_valid"):
        ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.0])
    rep = ev.repairs.row(0, named=True)
    assert (rep["table"], rep["row"], rep["id"], rep["parts"]) == ("ground_truth", 0, "g1", 2)
    # the repaired bow-tie is two triangles of area 25 each: IoU with the square = 50 / 100
    fixed = shapely.make_valid(shapely.Polygon(bow[0]))
    assert rep["area"] == pytest.approx(fixed.area) == 50.0
    expected = fixed.intersection(shapely.Polygon(square[0])).area / fixed.union(shapely.Polygon(square[0])).area
    assert ev.cube["iou"].item() == pytest.approx(expected, abs=1e-12)
    # nothing to repair -> an empty, typed frame
    clean = pm.evaluate(pd, pd)
    assert clean.repairs.height == 0 and clean.repairs.schema["area"] == pl.Float64


def test_placeholder_rows_without_kind_mark_a_labeled_empty_row():
    box = pl.Array(pl.Float64, 4)
    gt = pl.DataFrame({"data_row": ["a", "b"], "feature": ["cat", None], "kind": ["box", None],
                       "bbox": [[0.0, 0, 1, 1], None]}, schema_overrides={"bbox": box})
    pd = pl.DataFrame({"data_row": ["a", "b"], "feature": ["cat", "cat"],
                       "bbox": [[0.0, 0, 1, 1], [5.0, 5, 6, 6]]}, schema_overrides={"bbox": box})
    # under the default profile row b has no ground truth annotation: excluded, and says why
    ev = pm.evaluate(gt, pd)
    assert ev.excluded.select("data_row", "reason", "n_gt", "n_pd").rows() == [("b", "no ground truth", 0, 1)]
    # every row given counts under labelbox-sdk's switch: b's prediction is a false positive
    ev = pm.evaluate(gt, pd, rows="all", confidence_thresholds=[0.0], iou_thresholds=[0.5])
    assert ev.cube.select("tp", "fp", "fn").row(0) == (1, 1, 0)


def test_checklist_option_confidence_beats_the_row_confidence():
    gt = pl.DataFrame({"data_row": ["a"], "question": ["tags"], "answers": [["indoor", "night"]]})
    pd = pl.DataFrame({"data_row": ["a"], "question": ["tags"], "answers": [["indoor", "night"]],
                       "answer_confidences": [[0.9, 0.2]], "confidence": [0.6]})
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.5], iou_thresholds=[0.5])
    got = {r["feature"]: (r["tp"], r["fp"], r["fn"]) for r in ev.cube.iter_rows(named=True)}
    # indoor 0.9 >= 0.5 kept -> TP; night 0.2 < 0.5 dropped -> FN (the row's 0.6 is a fallback)
    assert got == {"indoor": (1, 0, 0), "night": (0, 0, 1)}
