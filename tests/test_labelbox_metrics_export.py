"""``ev.to_labelbox_metrics``: custom-metric NDJSON that the SDK's own models accept, with the
values of the evaluation."""
from __future__ import annotations

import json

import labelbox.data.serialization  # noqa: E402, F401
import numpy as np
import polars as pl
import pytest
from labelbox.data.annotation_types.metrics import ConfusionMatrixMetric, ScalarMetric  # noqa: E402
from labelbox.data.serialization.ndjson.label import NDLabel  # noqa: E402
from labelbox.data.serialization.ndjson.metric import (  # noqa: E402
    NDConfusionMatrixMetric,
    NDScalarMetric,
)

import polars_metrics as pm
from polars_metrics.io.labelbox.metrics import metric_name, write_labelbox_metrics

BOX = pl.Array(pl.Float64, 4)
pytestmark = pytest.mark.filterwarnings("ignore::polars_metrics.PolarsMetricsWarning")


def tables(seed=0, n_rows=25):
    rng = np.random.default_rng(seed)
    g, p = [], []
    for r in range(n_rows):
        for _ in range(rng.integers(1, 5)):
            x, y = rng.integers(0, 50, 2).astype(float)
            f = str(rng.choice(["car", "bus", "van"]))
            g.append((f"dr{r}", f, [x, y, x + 10, y + 10]))
            if rng.random() < 0.8:
                p.append((f"dr{r}", f if rng.random() < 0.85 else "car", [x + 1, y, x + 11, y + 10],
                          float(rng.random())))
        p.append((f"dr{r}", "bus", [80.0, 80, 90, 90], float(rng.random())))
    gt = pl.DataFrame(g, schema={"data_row": pl.String, "feature": pl.String, "bbox": BOX}, orient="row")
    pd = pl.DataFrame(p, schema={"data_row": pl.String, "feature": pl.String, "bbox": BOX,
                                 "confidence": pl.Float64}, orient="row")
    return gt, pd


def parse(text: str):
    out = []
    for line in text.splitlines():
        d = json.loads(line)
        model = NDConfusionMatrixMetric if d["aggregation"] == "CONFUSION_MATRIX" else NDScalarMetric
        nd = model.model_validate(d)
        common = nd.to_common()
        assert isinstance(common, ConfusionMatrixMetric if model is NDConfusionMatrixMetric else ScalarMetric)
        NDLabel(annotations=d)  # the union the SDK's label model parses lines with
        out.append((d, common))
    return out


def test_every_line_parses_with_the_sdk_models_and_values_match(tmp_path):
    gt, pd = tables()
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0, 0.25, 0.5, 0.75], iou_thresholds=[0.3, 0.5])
    path = tmp_path / "metrics.ndjson"
    assert ev.to_labelbox_metrics(path) is None
    lines = parse(path.read_text())
    assert lines
    rows = ev.data_rows.filter(pl.col("iou_threshold") == 0.5)
    feats = ev.data_row_features.filter(pl.col("iou_threshold") == 0.5)
    n_cm = n_iou = 0
    for d, common in lines:
        dr = d["dataRow"]["id"]
        src = feats.filter((pl.col("data_row") == dr) & (pl.col("feature") == d["featureName"])) \
            if "featureName" in d else rows.filter(pl.col("data_row") == dr)
        by_c = {r["confidence_threshold"]: r for r in src.iter_rows(named=True)}
        assert 2 <= len(common.value) <= 15
        if d["metricName"] == "pm_50pct_iou":
            n_cm += 1
            for c, v in common.value.items():
                r = by_c[c]
                assert list(v) == [r["tp"], r["fp"], r["tn"] or 0, r["fn"]]
        else:
            assert d["metricName"] == "pm_iou" and d["aggregation"] == "ARITHMETIC_MEAN"
            n_iou += 1
            for c, v in common.value.items():
                assert v == pytest.approx(by_c[c]["iou"], abs=1e-15)
    assert n_cm == rows["data_row"].n_unique() + feats.select("data_row", "feature").unique().height
    assert n_iou > 0


def test_levels_ious_scalars_and_names():
    gt, pd = tables(1)
    ev = pm.evaluate(gt, pd)  # 11 confidence thresholds: within the SDK's 2..15
    text = ev.to_labelbox_metrics(None, level="data_row", ious=[0.5, 0.7],
                                  scalars=("iou", "precision", "recall", "f1"), name_prefix="")
    names = {d["metricName"] for d, _ in parse(text)}
    assert names == {"50pct_iou", "70pct_iou", "custom_iou", "custom_precision", "custom_recall", "custom_f1"}
    assert all("featureName" not in d for d, _ in parse(text))
    only_features = ev.to_labelbox_metrics(None, level="feature")
    assert all("featureName" in d for d, _ in parse(only_features))
    assert metric_name("F1 ", "") == "custom_F1"  # the SDK strips and lowercases before checking


def test_confidence_keys_rules():
    gt, pd = tables(2)
    ev = pm.evaluate(gt, pd, confidence_thresholds=np.linspace(0, 1, 21), iou_thresholds=[0.5])
    with pytest.raises(ValueError, match="2 to 15"):
        ev.to_labelbox_metrics(None)
    text = ev.to_labelbox_metrics(None, confidences=[0.0, 0.5, 0.9])
    keys = [set(c.value) for _, c in parse(text)]
    assert all(k <= {0.0, 0.5, 0.9} and len(k) >= 2 for k in keys)
    assert all(set(c.value) == {0.0, 0.5, 0.9} for _, c in parse(text) if isinstance(c, ConfusionMatrixMetric))
    single = ev.to_labelbox_metrics(None, confidences=[0.5], level="data_row")
    for d, _ in parse(single):
        assert not isinstance(d["metricValue"], dict)
    with pytest.raises(pm.ThresholdError):
        ev.to_labelbox_metrics(None, confidences=[0.33])


def test_undefined_values_are_left_out():
    """At confidence 0.9 a data row whose predictions all score lower has no IoU value (no
    ground truth of that feature, no kept prediction): keys with null are not written, and a
    line with one defined key is dropped with a warning."""
    gt = pl.DataFrame({"data_row": ["a"], "feature": ["car"], "bbox": [[0.0, 0, 10, 10]]},
                      schema_overrides={"bbox": BOX})
    pd = pl.DataFrame({"data_row": ["a", "a"], "feature": ["car", "bus"],
                       "bbox": [[0.0, 0, 10, 10], [50.0, 50, 60, 60]], "confidence": [0.95, 0.3]},
                      schema_overrides={"bbox": BOX})
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0, 0.5, 0.9], iou_thresholds=[0.5])
    with pytest.warns(pm.PolarsMetricsWarning, match="2 scalar metric line"):
        text = ev.to_labelbox_metrics(None, level="feature", scalars=("iou", "precision"))
    lines = {(d["featureName"], d["metricName"]): d["metricValue"] for d, _ in parse(text)}
    # bus: no ground truth, its prediction is kept only at 0.0 → IoU and precision defined once
    assert ("bus", "pm_iou") not in lines and ("bus", "pm_precision") not in lines
    assert lines[("bus", "pm_50pct_iou")] == {"0.0": [0, 1, 0, 0], "0.5": [0, 0, 0, 0], "0.9": [0, 0, 0, 0]}
    assert lines[("car", "pm_iou")] == {"0.0": 1.0, "0.5": 1.0, "0.9": 1.0}


def test_global_keys_and_escaping():
    gt = pl.DataFrame({"data_row": ['img "1".jpg'], "feature": ['ca"t\\'], "bbox": [[0.0, 0, 10, 10]]},
                      schema_overrides={"bbox": BOX})
    ev = pm.evaluate(gt, gt.with_columns(pl.lit(0.9).alias("confidence")),
                     confidence_thresholds=[0.0, 0.5], iou_thresholds=[0.5])
    text = write_labelbox_metrics(ev, data_row_key="global_key")
    for d, _ in parse(text):
        assert d["dataRow"] == {"globalKey": 'img "1".jpg'}
        assert d.get("featureName", 'ca"t\\') == 'ca"t\\'
    with pytest.raises(ValueError, match="level"):
        write_labelbox_metrics(ev, level="image")


def test_round_trip_of_labelbox_files_to_metrics(tmp_path):
    """NDJSON in → evaluate → custom metrics out, end to end on the reader's frames."""
    lines = [json.dumps({"dataRow": {"id": f"d{i}"}, "uuid": f"u{i}", "name": "car", "confidence": 0.1 * i,
                         "bbox": {"top": 0, "left": i, "height": 10, "width": 10}}) for i in range(1, 8)]
    gt_lines = [json.dumps({"dataRow": {"id": f"d{i}"}, "uuid": f"g{i}", "name": "car",
                            "bbox": {"top": 0, "left": 0, "height": 10, "width": 10}}) for i in range(1, 8)]
    ev = pm.evaluate(pm.read_labelbox_ndjson(gt_lines, role="ground_truth"), pm.read_labelbox_ndjson(lines))
    out = tmp_path / "m.ndjson"
    ev.to_labelbox_metrics(out)
    parsed = parse(out.read_text())
    assert {d["dataRow"]["id"] for d, _ in parsed} == {f"d{i}" for i in range(1, 8)}
