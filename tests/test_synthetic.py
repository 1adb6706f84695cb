"""The synthetic detection generator behind the demo and the notebooks: schema and statistics."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import polars_metrics as pm
from polars_metrics.synthetic import CONFUSABLE, class_names, detections


@pytest.fixture(scope="module")
def data() -> tuple[pl.DataFrame, pl.DataFrame]:
    return detections(n_images=4000, seed=11)


def test_schema(data):
    gt, pd = data
    expected = {"data_row": pl.String, "split": pl.String, "id": pl.Int64, "feature": pl.String,
                "bbox": pl.Array(pl.Float64, 4)}
    assert dict(gt.schema) == expected
    assert dict(pd.schema) == {**expected, "confidence": pl.Float64}
    assert gt["data_row"][0] == "img_000001"
    for df in (gt, pd):
        assert df["id"].is_unique().all()
        assert df.null_count().sum_horizontal().item() == 0
        xy = np.stack(df["bbox"].to_numpy())
        assert (xy[:, 0] <= xy[:, 2]).all() and (xy[:, 1] <= xy[:, 3]).all()
        assert (xy[:, :2] >= 0).all() and (xy[:, 2] <= 640).all() and (xy[:, 3] <= 480).all()
        assert set(df["feature"].unique()) <= set(class_names(80))
    assert pd["confidence"].min() > 0 and pd["confidence"].max() <= 1


def test_counts_per_image(data):
    gt, pd = data
    n = 4000
    assert abs(gt.height / n - 7.0) < 0.15                 # Poisson(7): sd of the mean ~0.04
    assert 88 < pd.height / n < 98                         # ~94 predictions per image
    # about 0.5% of the images get no predictions (excluded under the default profile)
    no_pd = n - pd["data_row"].n_unique()
    assert 5 <= no_pd <= 45


def test_split_is_constant_per_data_row_on_both_tables(data):
    gt, pd = data
    both = pl.concat([gt.select("data_row", "split"), pd.select("data_row", "split")]).unique()
    assert both["data_row"].is_unique().all()
    share = both["split"].value_counts(normalize=True).sort("split")
    assert share["split"].to_list() == ["test", "train", "val"]
    assert np.allclose(share["proportion"].to_numpy(), [0.15, 0.7, 0.15], atol=0.03)
    # usable as a slice without a data_rows frame
    ev = pm.evaluate(*detections(n_images=200, n_classes=10, seed=2), by="split")
    assert set(ev.overall["split"]) == {"train", "val", "test"}


def test_seeded(data):
    again = detections(n_images=4000, seed=11)
    assert_frame_equal(data[0], again[0])
    assert_frame_equal(data[1], again[1])
    other = detections(n_images=4000, seed=12)
    assert not data[0].equals(other[0])


def test_realism_flips_go_to_confusable_classes_and_scores_follow_iou():
    gt, pd = detections(n_images=1500, seed=5)
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0, 0.5], iou_thresholds=[0.5])
    cell = ev.confusion.filter((pl.col("confidence_threshold") == 0.5)
                               & (pl.col("gt_feature") != pl.col("pd_feature")))
    to_partner = cell.filter(pl.col("pd_feature")
                             == pl.col("gt_feature").replace_strict(CONFUSABLE, default=None))
    assert to_partner["count"].sum() > 0.5 * cell["count"].sum()
    # a prediction's confidence grows with the IoU of its match
    matched = ev.matches.filter(pl.col("confidence_threshold") == 0.0).join(
        pd.select("data_row", pl.col("id").alias("pd_id"), "confidence"), on=["data_row", "pd_id"])
    assert matched.select(pl.corr("iou", "confidence")).item() > 0.4
    # at c = 0.5 the detector is useful: precision and recall both well above chance
    micro = ev.overall.filter((pl.col("average") == "micro") & (pl.col("confidence_threshold") == 0.5))
    assert micro["precision"].item() > 0.6 and micro["recall"].item() > 0.5


def test_edges():
    gt, pd = detections(n_images=0)
    assert gt.height == 0 and pd.height == 0 and "confidence" in pd.columns
    gt, pd = detections(n_images=30, n_classes=1, seed=1)
    assert set(gt["feature"]) == {"person"}
    assert class_names(100)[:2] == ("class_00", "class_01")
    gt, _ = detections(n_images=50, n_classes=100, seed=1)
    assert gt["feature"].str.starts_with("class_").all()
    with pytest.raises(ValueError, match="n_classes"):
        detections(n_images=5, n_classes=0)
    with pytest.raises(ValueError, match="splits"):
        detections(n_images=5, splits=())
