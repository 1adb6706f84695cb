"""ev.data_row_features: per (data row, feature) values; the data-row means average them."""
from __future__ import annotations

import naive  # noqa: F401  (tests/ on sys.path)
import numpy as np
import polars as pl

import polars_metrics as pm


def test_row_means_are_means_of_row_features_and_sums_match_the_cube():
    gt, pd = pm.synthetic.detections(n_images=60, n_classes=6, seed=3)
    ev = pm.evaluate(gt, pd)
    rf = ev.data_row_features
    keys = ["data_row", "confidence_threshold", "iou_threshold"]
    means = rf.group_by(keys).agg(
        pl.col("tp", "fp", "fn").sum(), pl.col("precision", "recall", "f1", "iou").mean())
    rows = ev.data_rows.select(*keys, "tp", "fp", "fn", "precision", "recall", "f1", "iou")
    joined = rows.join(means, on=keys, how="full", coalesce=True, suffix="_rf")
    assert joined.height == rows.height == means.height
    for c in ("tp", "fp", "fn"):
        assert (joined[c] == joined[f"{c}_rf"]).all()
    for c in ("precision", "recall", "f1", "iou"):
        a, b = joined[c].to_numpy().astype(float), joined[f"{c}_rf"].to_numpy().astype(float)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, equal_nan=True)
    # summed over data rows: the cube's counts
    per_feature = rf.group_by("feature", "confidence_threshold", "iou_threshold").agg(
        pl.col("tp", "fp", "fn").sum())
    cube = ev.cube.select("feature", "confidence_threshold", "iou_threshold", "tp", "fp", "fn")
    both = cube.join(per_feature, on=["feature", "confidence_threshold", "iou_threshold"],
                     how="left", suffix="_rf").fill_null(0)
    for c in ("tp", "fp", "fn"):
        assert (both[c] == both[f"{c}_rf"]).all()


def test_row_features_by_hand():
    box = pl.Array(pl.Float64, 4)
    # one row: cat gt (0,0,10,10); cat pred (0,0,10,5) IoU .5 conf .9; dog pred far away
    gt = pl.DataFrame({"data_row": ["a"], "feature": ["cat"], "bbox": [[0.0, 0, 10, 10]]},
                      schema_overrides={"bbox": box})
    pd = pl.DataFrame({"data_row": ["a", "a"], "feature": ["cat", "dog"],
                       "bbox": [[0.0, 0, 10, 5], [50.0, 50, 60, 60]], "confidence": [0.9, 0.4]},
                      schema_overrides={"bbox": box})
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0, 0.5], iou_thresholds=[0.4])
    got = {(r["feature"], r["confidence_threshold"]): (r["tp"], r["fp"], r["fn"], r["iou"])
           for r in ev.data_row_features.iter_rows(named=True)}
    assert got == {("cat", 0.0): (1, 0, 0, 0.5), ("cat", 0.5): (1, 0, 0, 0.5),
                   ("dog", 0.0): (0, 1, 0, 0.0), ("dog", 0.5): (0, 0, 0, None)}
