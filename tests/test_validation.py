"""Bad input (SPEC §7): a precise error naming table, column, row, data row and id — or, with
on_invalid="drop", a rejects row with the reason and a result computed without that row."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import polars as pl
import pytest

import polars_metrics as pm

BBOX = pl.Array(pl.Float64, 4)


def tables(gt_boxes, pd_boxes, *, pd_conf=None, gt_ids=None, pd_ids=None, rows=None):
    n_gt, n_pd = len(gt_boxes), len(pd_boxes)
    gt = pl.DataFrame({
        "data_row": pl.Series(rows[0] if rows else ["r1"] * n_gt, dtype=pl.String),
        "feature": pl.Series(["cat"] * n_gt, dtype=pl.String),
        "bbox": pl.Series(gt_boxes, dtype=BBOX),
    })
    pd = pl.DataFrame({
        "data_row": pl.Series(rows[1] if rows else ["r1"] * n_pd, dtype=pl.String),
        "feature": pl.Series(["cat"] * n_pd, dtype=pl.String),
        "bbox": pl.Series(pd_boxes, dtype=BBOX),
        "confidence": pl.Series(pd_conf if pd_conf is not None else [0.9] * n_pd, dtype=pl.Float64),
    })
    if gt_ids is not None:
        gt = gt.with_columns(pl.Series("id", gt_ids))
    if pd_ids is not None:
        pd = pd.with_columns(pl.Series("id", pd_ids))
    return gt, pd


GOOD = [0.0, 0.0, 10.0, 10.0]


@pytest.mark.parametrize(
    ("side", "box", "conf", "column", "reason"),
    [
        ("ground_truth", [0.0, math.nan, 10.0, 10.0], 0.9, "bbox", "NaN or infinite"),
        ("predictions", [0.0, 0.0, math.inf, 10.0], 0.9, "bbox", "NaN or infinite"),
        ("ground_truth", [10.0, 0.0, 5.0, 10.0], 0.9, "bbox", "x1 < x0"),
        ("predictions", [0.0, 10.0, 10.0, 5.0], 0.9, "bbox", "x1 < x0 or y1 < y0"),
        ("predictions", GOOD, 1.5, "confidence", "outside [0, 1]"),
        ("predictions", GOOD, -0.1, "confidence", "outside [0, 1]"),
        ("predictions", GOOD, math.nan, "confidence", "NaN"),
    ],
)
def test_bad_value_raises_naming_table_column_row_and_fix(side, box, conf, column, reason):
    gt_boxes = [GOOD, box if side == "ground_truth" else GOOD]
    pd_boxes = [GOOD, box if side == "predictions" else GOOD]
    gt, pd = tables(gt_boxes, pd_boxes, pd_conf=[0.9, conf], gt_ids=["g0", "g1"], pd_ids=["p0", "p1"],
                    rows=(["r1", "r2"], ["r1", "r2"]))
    with pytest.raises(pm.InvalidAnnotationError) as err:
        pm.evaluate(gt, pd)
    msg = str(err.value)
    assert f"{side}.{column}" in msg
    assert reason in msg
    # row 1 of that table, in data row r2, id g1 / p1
    assert "row 1 " in msg and "'r2'" in msg
    assert ("'g1'" if side == "ground_truth" else "'p1'") in msg
    assert "on_invalid='drop'" in msg  # the way out is named
    assert isinstance(err.value, ValueError)  # callers can catch the builtin


def test_drop_moves_bad_rows_to_rejects_and_counts_without_them():
    # r1: a good gt/pred pair (TP) plus a reversed pred box; r2: a pred with confidence 2.
    gt, pd = tables([GOOD, GOOD], [GOOD, [5.0, 5.0, 1.0, 1.0], GOOD], pd_conf=[0.9, 0.9, 2.0],
                    rows=(["r1", "r2"], ["r1", "r1", "r2"]))
    ev = pm.evaluate(gt, pd, on_invalid="drop", confidence_thresholds=[0.5], iou_thresholds=[0.5])
    rej = ev.rejects.sort("row")
    assert rej.select("table", "row", "data_row", "id", "column").rows() == [
        ("predictions", 1, "r1", "1", "bbox"), ("predictions", 2, "r2", "2", "confidence")]
    assert all(rej["reason"].str.len_chars() > 0)
    # r2 lost its only prediction -> excluded (no predictions); r1: 1 gt, 1 pred, IoU 1 -> TP.
    assert ev.excluded.select("data_row", "reason").rows() == [("r2", "no predictions")]
    cat = ev.cube.row(0, named=True)
    assert (cat["tp"], cat["fp"], cat["fn"]) == (1, 0, 0)
    # the same numbers as evaluating the clean tables directly
    clean = pm.evaluate(gt.head(1), pd.head(1), confidence_thresholds=[0.5], iou_thresholds=[0.5])
    assert ev.cube.equals(clean.cube)


def test_duplicate_ids_within_a_data_row():
    gt, pd = tables([GOOD, GOOD], [GOOD], gt_ids=[7, 7], rows=(["r1", "r1"], ["r1"]))
    with pytest.raises(pm.InvalidAnnotationError, match=r"ground_truth\.id: 2 row\(s\).*not unique"):
        pm.evaluate(gt, pd)
    # the same id in different data rows is fine
    gt2, pd2 = tables([GOOD, GOOD], [GOOD, GOOD], gt_ids=[7, 7], rows=(["r1", "r2"], ["r1", "r2"]))
    assert pm.evaluate(gt2, pd2).cube["tp"].max() == 2
    ev = pm.evaluate(gt, pd, on_invalid="drop")
    assert ev.rejects["row"].to_list() == [0, 1]  # every copy is reported and removed


def test_missing_and_mistyped_columns():
    gt, pd = tables([GOOD], [GOOD])
    with pytest.raises(pm.SchemaError, match=r"predictions is missing column\(s\) \['feature'\]"):
        pm.evaluate(gt, pd.drop("feature"))
    with pytest.raises(pm.SchemaError, match="missing column.*Did you mean \"data_rows\""):
        pm.evaluate(gt.rename({"data_row": "data_rows"}), pd.rename({"data_row": "data_rows"}),
                    data_row="data_row ")
    with pytest.raises(pm.SchemaError, match=r"ground_truth\.bbox has dtype String"):
        pm.evaluate(gt.with_columns(pl.lit("0,0,1,1").alias("bbox")), pd)
    with pytest.raises(pm.SchemaError, match=r"row 0 has 3 values; expected 4"):
        pm.evaluate(gt.with_columns(pl.Series("bbox", [[0.0, 0.0, 1.0]])), pd)
    with pytest.raises(pm.SchemaError, match="'data_row' is String in ground_truth but Int64"):
        pm.evaluate(gt, pd.with_columns(pl.lit(1, dtype=pl.Int64).alias("data_row")))
    with pytest.raises(pm.SchemaError, match=r"predictions\.confidence has dtype String"):
        pm.evaluate(gt, pd.with_columns(pl.lit("high").alias("confidence")))


def test_lists_and_integers_are_accepted_as_boxes():
    gt, pd = tables([GOOD], [[0.0, 0.0, 10.0, 5.0]])
    as_list = gt.with_columns(pl.Series("bbox", [[0, 0, 10, 10]], dtype=pl.List(pl.Int64)))
    ev = pm.evaluate(as_list, pd, confidence_thresholds=[0.0], iou_thresholds=[0.0])
    assert ev.cube["iou"].to_list() == [0.5]  # 50 / 100


def test_null_confidence_means_one():
    gt, pd = tables([GOOD], [GOOD], pd_conf=[None])
    ev = pm.evaluate(gt, pd, confidence_thresholds=[1.0], iou_thresholds=[0.5])
    assert ev.cube.select("tp", "fp", "fn").row(0) == (1, 0, 0)


def test_empty_tables_give_empty_typed_results():
    gt, pd = tables([], [])
    ev = pm.evaluate(gt, pd)
    for frame in (ev.cube, ev.overall, ev.confusion, ev.data_rows, ev.excluded, ev.rejects):
        assert frame.height == 0
    assert ev.cube.schema["tp"] == pl.Int64 and ev.cube.schema["precision"] == pl.Float64
    assert ev.data_rows.schema["data_row"] == pl.String
    # one side empty: every row is excluded, with its reason and counts
    gt, pd = tables([GOOD, GOOD], [], rows=(["a", "b"], []))
    ev = pm.evaluate(gt, pd)
    assert ev.excluded.rows() == [("a", "no predictions", 1, 0), ("b", "no predictions", 1, 0)]
    assert ev.cube.height == 0


def test_thresholds_are_validated_and_normalized():
    gt, pd = tables([GOOD], [[0.0, 0.0, 10.0, 7.0]])
    with pytest.raises(pm.ThresholdError, match=r"iou_thresholds must be finite numbers in \[0, 1\]"):
        pm.evaluate(gt, pd, iou_thresholds=[0.5, 1.5])
    with pytest.raises(pm.ThresholdError, match="confidence_thresholds is empty"):
        pm.evaluate(gt, pd, confidence_thresholds=[])
    # np.linspace artefacts (0.7000000000000001) are rounded: IoU 0.7 is not > 0.7
    ev = pm.evaluate(gt, pd, iou_thresholds=np.linspace(0, 1, 11), confidence_thresholds=[0.0])
    row = ev.cube.filter(pl.col("iou_threshold") == 0.7).row(0, named=True)
    assert row["iou_threshold"] == 0.7 and row["tp"] == 0
    assert ev.cube.filter(pl.col("iou_threshold") == 0.6)["tp"].item() == 1


def test_unknown_profile_and_switch_suggest_the_right_name():
    gt, pd = tables([GOOD], [GOOD])
    with pytest.raises(pm.ProfileError, match='Did you mean "labelbox"'):
        pm.evaluate(gt, pd, profile="labelbx")
    with pytest.raises(pm.ProfileError, match='Did you mean "class_aware"'):
        pm.evaluate(gt, pd, class_awre=True)


def test_unknown_kind_is_named():
    gt, pd = tables([GOOD], [GOOD])
    with pytest.raises(pm.SchemaError, match="Unknown or not yet supported kind 'cuboid'"):
        pm.evaluate(gt.with_columns(pl.lit("cuboid").alias("kind")), pd)


def test_by_column_must_be_constant_per_data_row():
    gt, pd = tables([GOOD, GOOD], [GOOD], rows=(["r1", "r1"], ["r1"]))
    gt = gt.with_columns(pl.Series("split", ["train", "val"]))
    with pytest.raises(pm.SchemaError, match="'split' takes several values within data row"):
        pm.evaluate(gt, pd, by="split")


@pytest.mark.parametrize("seed", range(4))
def test_duplicate_ids_packed_path_equals_a_window_per_data_row(seed):
    """Integer (data row, id) pairs are hashed as one packed Int64; the mask must equal the
    plain window per data row, nulls included (a null id is never a duplicate)."""
    from polars_metrics.prepare import duplicate_ids

    rng = np.random.default_rng(seed)
    n = 500
    ids = [None if drop else int(i) for i, drop in zip(rng.integers(-3, 40, n), rng.random(n) < 0.1,
                                                         strict=True)]
    frame = pl.DataFrame({"data_row": rng.integers(-5, 30, n), "id": pl.Series(ids, dtype=pl.Int64)})
    naive = np.zeros(n, bool)
    for (row, i), count in Counter(zip(frame["data_row"], frame["id"], strict=True)).items():
        if i is not None and count > 1:
            naive |= ((frame["data_row"] == row) & (frame["id"] == i)).fill_null(False).to_numpy()
    got = duplicate_ids(frame, ("data_row",))
    assert got.any() and not got.all()
    np.testing.assert_array_equal(got, naive)


def test_null_ids_are_never_duplicates_and_do_not_hide_one():
    """Ids unique but for nulls (a COCO ground truth's image placeholders) have no duplicate,
    however many nulls share a data row; a repeated id beside nulls is still found."""
    from polars_metrics.prepare import duplicate_ids

    rows = pl.Series([1, 1, 1, 2, 2, 2])
    for ids, expected in (([10, None, None, 11, None, 12], [False] * 6),
                          ([10, None, 10, None, 11, 12], [True, False, True, False, False, False])):
        frame = pl.DataFrame({"data_row": rows, "id": pl.Series(ids, dtype=pl.Int64)})
        assert duplicate_ids(frame, ("data_row",)).tolist() == expected


def test_an_annotation_without_a_kind_is_a_row_error():
    """A row with a feature and a box but a null ``kind`` beside rows of kind box: before, a raw
    TypeError (sorting the kinds with None among them); now a row error naming the row, and
    under drop a reject, the other box still counted."""
    box = pl.Array(pl.Float64, 4)
    gt = pl.DataFrame({"data_row": ["a", "a"], "feature": ["c", "c"], "id": [1, 2],
                       "kind": ["box", None], "bbox": [[0.0, 0, 1, 1], [0.0, 0, 2, 2]]},
                      schema_overrides={"bbox": box})
    with pytest.raises(pm.InvalidAnnotationError, match=r"(?s)kind is null.*row 1 .*id=2"):
        pm.evaluate(gt, gt)
    ev = pm.evaluate(gt, gt, on_invalid="drop", confidence_thresholds=[0.5], iou_thresholds=[0.5])
    assert sorted(ev.rejects.select("table", "row", "column").rows()) == [
        ("ground_truth", 1, "kind"), ("predictions", 1, "kind")]
    assert ev.cube.select("tp", "fp", "fn").rows() == [(1, 0, 0)]
