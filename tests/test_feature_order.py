"""Features are shown in natural order ("class_2" before "class_10"): ``ev.features``, the
confusion matrix's labels, its plot and the report; the frames' rows stay sorted as strings."""
from __future__ import annotations

import polars as pl

import polars_metrics as pm
from polars_metrics.views.report import build_payload

NUMBERED = [f"class_{i}" for i in range(1, 13)]  # the order a reader expects, written out


def _numbered_evaluation():
    gt, pd = pm.synthetic.detections(n_images=30, n_classes=12, seed=1)
    names = sorted(set(gt["feature"].drop_nulls()) | set(pd["feature"].drop_nulls()))
    rename = dict(zip(names, NUMBERED, strict=True))
    gt, pd = (t.with_columns(pl.col("feature").replace_strict(rename, default=None)) for t in (gt, pd))
    return pm.evaluate(gt, pd)


def test_features_labels_plot_and_report_follow_the_numbers():
    ev = _numbered_evaluation()
    assert ev.features == NUMBERED
    assert ev.confusion_matrix(0.5, 0.5)["gt_feature"].to_list() == [*NUMBERED, "None"]
    chart = ev.plot.confusion_matrix(0.5, 0.5).to_dict()
    assert chart["encoding"]["y"]["sort"] == [*NUMBERED, "None"]
    payload = build_payload({"run": ev}, title="t", max_examples_per_cell=1, confidence=0.5, iou=0.5)
    assert payload["grid"]["features"] == NUMBERED


def test_the_frames_rows_stay_in_string_order():
    ev = _numbered_evaluation()
    assert ev.cube["feature"].unique(maintain_order=True).to_list() == sorted(NUMBERED)
    assert sorted(NUMBERED) != NUMBERED  # "class_10" sorts before "class_2" as a string
