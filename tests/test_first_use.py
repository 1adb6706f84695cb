"""First-use traps (issue 10): what a new user tries first must give a right number or a clear
error / warning, never all-zero metrics without a word."""
from __future__ import annotations

import subprocess
import sys
import warnings

import polars as pl
import pytest

import polars_metrics as pm

BOX = pl.Array(pl.Float64, 4)
COCO_GT = {"images": [{"id": 1, "height": 20, "width": 20}], "categories": [{"id": 1, "name": "c"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100,
                            "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]], "iscrowd": 0}]}
COCO_DT = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9}]


def boxes(rows, feats, bb, **cols):
    return pl.DataFrame({"data_row": rows, "feature": feats, "bbox": bb, **cols},
                        schema_overrides={"bbox": BOX})


def cell(ev, c=0.5, t=0.5):
    return ev.cube.filter(pl.col("confidence_threshold") == c, pl.col("iou_threshold") == t)


def test_read_coco_then_evaluate_pairs_ground_truth_segmentations_with_detection_boxes():
    gt, pd = pm.read_coco(COCO_GT, COCO_DT)  # default iou_type="bbox": both sides boxes
    assert gt["kind"].to_list() == pd["kind"].to_list() == ["box"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", pm.PolarsMetricsWarning)
        ev = pm.evaluate(gt, pd)
    assert cell(ev).select("tp", "fp", "fn").rows() == [(1, 0, 0)]  # identical boxes
    gt, pd = pm.read_coco(COCO_GT, COCO_DT, iou_type="segm")  # masks vs boxes: never pair ...
    assert (gt["kind"].to_list(), pd["kind"].to_list()) == (["mask"], ["box"])
    with pytest.warns(pm.PolarsMetricsWarning, match=r"never pair.*\['mask'\].*\['box'\]"):
        ev = pm.evaluate(gt, pd)  # ... and evaluate says so
    assert cell(ev).select("tp", "fp", "fn").rows() == [(0, 1, 1)]
    with pytest.raises(ValueError, match="iou_type"):
        pm.read_coco(COCO_GT, COCO_DT, iou_type="box")


@pytest.mark.parametrize("name", ["score", "scores", "conf", "probability", "prob"])
def test_a_score_column_is_not_silently_ignored(name):
    gt = boxes(["a", "a"], ["c", "c"], [[0.0, 0, 10, 10], [20.0, 20, 30, 30]])
    pd = boxes(["a", "a"], ["c", "c"], [[0.0, 0, 10, 10], [50.0, 50, 60, 60]], **{name: [0.9, 0.2]})
    with pytest.raises(pm.SchemaError, match=f"Did you mean confidence='{name}'"):
        pm.evaluate(gt, pd)
    ev = pm.evaluate(gt, pd, confidence=name)
    # hand count at confidence 0.5: the 0.9 box matches, the 0.2 box is below the threshold
    assert cell(ev).select("tp", "fp", "fn").rows() == [(1, 0, 1)]
    part = pm.partial(gt, pd, confidence=name)
    assert pm.finalize(part).cube.equals(ev.cube)
    with pytest.raises(pm.SchemaError, match="no column .*Did you mean"):
        pm.evaluate(gt, pd, confidence=name[:-1] + "x")


def test_two_models_in_one_table_say_how_to_evaluate_them():
    gt = boxes(["a"], ["c"], [[0.0, 0, 10, 10]])
    pd = boxes(["a", "a"], ["c", "c"], [[0.0, 0, 10, 10]] * 2, confidence=[0.9, 0.8], model=["m1", "m2"],
               id=[1, 1])
    with pytest.raises(pm.SchemaError, match=r"several 'model' values within data row.*pd.filter"):
        pm.evaluate(gt, pd, by="model")
    # the recipe the message gives works: one evaluation per model
    per_model = {m: pm.evaluate(gt, pd.filter(pl.col("model") == m)) for m in ("m1", "m2")}
    assert [cell(e)["tp"].item() for e in per_model.values()] == [1, 1]


def test_dropping_most_of_a_table_warns_with_the_top_reasons():
    gt = boxes(["a"] * 10, ["c"] * 10, [[float(i), 0, i + 1, 1] for i in range(10)])
    pd = gt.with_columns(pl.Series("confidence", [50.0] * 9 + [0.5]))  # 0-100 scores
    with pytest.warns(pm.PolarsMetricsWarning, match=r"set aside 9 of 10 predictions rows \(90%\).*"
                                                     r"confidence is NaN or outside \[0, 1\] \(9\)"):
        ev = pm.evaluate(gt, pd, on_invalid="drop")
    assert ev.rejects.height == 9
    with warnings.catch_warnings():  # one bad row in 100: no warning
        warnings.simplefilter("error", pm.PolarsMetricsWarning)
        big = boxes(["a"] * 100, ["c"] * 100, [[float(i), 0, i + 1, 1] for i in range(100)])
        pm.evaluate(big, big.with_columns(pl.Series("confidence", [2.0] + [0.5] * 99)), on_invalid="drop")


def test_null_annotation_ids_are_rejected_so_examples_never_contradict_matches():
    gt = boxes(["a", "a"], ["c", "c"], [[0.0, 0, 10, 10], [20.0, 20, 30, 30]], id=pl.Series([None, "g2"], dtype=pl.String))
    pd = boxes(["a"], ["c"], [[0.0, 0, 10, 10]], confidence=[0.9], id=["p1"])
    with pytest.raises(pm.InvalidAnnotationError, match="annotation id is null"):
        pm.evaluate(gt, pd)
    ev = pm.evaluate(gt, pd, on_invalid="drop")
    assert ev.rejects.select("table", "row", "column").rows() == [("ground_truth", 0, "id")]
    # what is left is consistent: g2 missed, p1 a false positive (its gt was rejected)
    assert cell(ev).select("tp", "fp", "fn").rows() == [(0, 1, 1)]


def test_by_with_one_value_per_data_row_is_refused_before_the_dense_tables():
    n = 2000
    rows = [f"r{i}" for i in range(n)]
    gt = boxes(rows, ["c"] * n, [[0.0, 0, 1, 1]] * n, image_name=rows)
    with pytest.raises(pm.PolarsMetricsError, match=r"makes 2,000 slices of 2,000 data rows.*ev.data_rows"):
        pm.evaluate(gt, gt, by="image_name")
    few = gt.with_columns(pl.Series("site", [f"s{i % 4}" for i in range(n)]))
    assert pm.evaluate(few, few, by="site").cube["site"].n_unique() == 4


def test_the_first_call_that_compiles_kernels_says_so_once():
    code = ("import polars as pl, polars_metrics as pm\n"
            "gt = pl.DataFrame({'data_row': ['a'], 'feature': ['f'], 'kind': ['point'], 'point': [[0.0, 0.0]]},"
            " schema_overrides={'point': pl.Array(pl.Float64, 2)})\n"
            "pm.evaluate(gt, gt); pm.evaluate(gt, gt)\n")
    import os

    # with the compiled kernels (make kernels / pip install) nothing compiles and nothing is
    # said; through numba's JIT (no build, or POLARS_METRICS_JIT=1) the first call says so once
    for jit, times in (("0", 0), ("1", 1)):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=300, env={**os.environ, "POLARS_METRICS_JIT": jit},
                             cwd=str(__import__("pathlib").Path(pm.__file__).parents[1]))
        assert out.returncode == 0, out.stderr
        assert out.stderr.count("compiled its kernels") == times, (jit, out.stderr)
