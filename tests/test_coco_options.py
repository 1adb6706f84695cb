"""Every option of pm.evaluate under profile="coco" is honoured or rejected, never ignored:
by= / data_rows= (per-slice COCO stats vs pycocotools on the slice's images, cube from one
pass), data_row=, on_invalid= with the SPEC §7 row checks, and each profile switch."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import polars as pl
import pycocotools.coco as pycoco
import pycocotools.cocoeval as cocoeval
import pytest

import polars_metrics as pm
from polars_metrics.io.coco import read_coco

pytestmark = [pytest.mark.reference,
              pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")]

FIXTURE = Path(__file__).resolve().parent / "data" / "cocoapi"
GT = FIXTURE / "instances_val2014_100.json"
RESULTS = FIXTURE / "instances_val2014_fakebbox100_results.json"
CONF = [0.0, 0.5, 1.0]
BOX = pl.Array(pl.Float64, 4)


def pycocotools_stats(gt_source, results, iou_type="bbox", img_ids=None):
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = pycoco.COCO(str(gt_source)) if isinstance(gt_source, Path) else _coco(gt_source)
        coco_dt = coco_gt.loadRes(str(results) if isinstance(results, Path) else results)
        ev = cocoeval.COCOeval(coco_gt, coco_dt, iou_type)
        if img_ids is not None:
            ev.params.imgIds = sorted(img_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def _coco(dataset: dict):
    c = pycoco.COCO()
    c.dataset = dataset
    c.createIndex()
    return c


@pytest.fixture(scope="module")
def fixture_frames():
    return read_coco(GT, RESULTS)


# --- by= / data_rows= -----------------------------------------------------------------------
def test_by_slices_equal_pycocotools_on_each_slice(fixture_frames):
    gt, pd = fixture_frames
    images = gt["data_row"].unique().sort()
    meta = pl.DataFrame({"data_row": images, "split": np.where(images.to_numpy() % 3 == 0, "a", "b")})
    ev = pm.evaluate(gt, pd, profile="coco", by="split", data_rows=meta, confidence_thresholds=CONF)
    whole = pm.evaluate(gt, pd, profile="coco", confidence_thresholds=CONF)
    assert ev.coco_summary.columns[0] == "split" and ev.coco_summary.height == 24
    for split in ("a", "b"):
        ids = meta.filter(pl.col("split") == split)["data_row"].to_list()
        ours = ev.coco_summary.filter(pl.col("split") == split)["value"].to_numpy()
        np.testing.assert_allclose(ours, pycocotools_stats(GT, RESULTS, img_ids=ids), atol=1e-10, rtol=0)
        assert set(ev.coco_per_category.filter(pl.col("split") == split)["feature"]) <= set(whole.coco.features)
    # the whole evaluation's arrays are unchanged by by=
    np.testing.assert_array_equal(ev.coco.stats, whole.coco.stats)
    # counts are additive: the slices of the cube sum to the whole cube
    keys = ["feature", "confidence_threshold", "iou_threshold"]
    summed = ev.cube.group_by(keys).agg(pl.col("tp", "fp", "fn").sum()).sort(keys)
    np.testing.assert_array_equal(summed.select("tp", "fp", "fn").to_numpy(),
                                  whole.cube.sort(keys).select("tp", "fp", "fn").to_numpy())
    assert ev.data_rows.columns[:2] == ["data_row", "split"]
    assert ev.confusion.columns[0] == "split"
    fn = ev.examples("person", None, confidence=0.5, iou=0.5)
    assert fn.columns == ["data_row", "split", "gt_id", "pd_id", "iou"] and fn.height > 0


def test_by_column_from_the_tables(fixture_frames):
    gt, pd = fixture_frames
    split = (pl.col("data_row") % 2).alias("half")
    ev = pm.evaluate(gt.with_columns(split), pd.with_columns(split), profile="coco", by="half")
    assert sorted(ev.coco_summary["half"].unique().to_list()) == [0, 1]
    with pytest.raises(pm.SchemaError, match="neither table"):
        pm.evaluate(gt, pd, profile="coco", by="nope")


def test_data_row_names_the_image_column(fixture_frames):
    gt, pd = fixture_frames
    ev = pm.evaluate(gt.rename({"data_row": "image"}), pd.rename({"data_row": "image"}),
                     profile="coco", data_row="image", confidence_thresholds=CONF)
    ref = pm.evaluate(gt, pd, profile="coco", confidence_thresholds=CONF)
    np.testing.assert_array_equal(ev.coco.stats, ref.coco.stats)
    assert ev.cube.equals(ref.cube)
    assert ev.keys == ("image",) and ev.data_rows.columns[0] == "image"
    assert ev.matches.columns[0] == "image"
    assert ev.examples("person", "person").columns[0] == "image"
    with pytest.raises(pm.SchemaError, match="composite"):
        pm.evaluate(gt, pd, profile="coco", data_row=["data_row", "id"])


# --- SPEC §7 rows ---------------------------------------------------------------------------
def small():
    gt = pl.DataFrame({"data_row": [1, 1, 2], "id": [1, 2, 3], "feature": ["a", "b", "a"],
                       "bbox": [[0.0, 0, 10, 10], [20.0, 20, 30, 30], [0.0, 0, 5, 5]]},
                      schema_overrides={"bbox": BOX})
    pd = pl.DataFrame({"data_row": [1, 1, 2], "id": [1, 2, 3], "feature": ["a", "b", "a"],
                       "bbox": [[0.0, 0, 10, 9], [20.0, 20, 30, 30], [0.0, 0, 5, 4]],
                       "confidence": [0.9, 0.8, 0.7]}, schema_overrides={"bbox": BOX})
    return gt, pd


def _set(frame, row, column, value):
    col = frame[column].to_list()
    col[row] = value
    return frame.with_columns(pl.Series(column, col, dtype=frame.schema[column]))


@pytest.mark.parametrize("table,column,value,reason", [
    ("ground_truth", "feature", None, "feature is null"),
    ("predictions", "feature", None, "feature is null"),
    ("ground_truth", "bbox", [10.0, 0, 0, 10], "x1 < x0"),
    ("predictions", "bbox", [0.0, float("nan"), 10, 10], "NaN or infinite"),
    ("predictions", "confidence", 1.5, "outside \\[0, 1\\]"),
    ("predictions", "confidence", float("nan"), "outside \\[0, 1\\]"),
    ("ground_truth", "id", 2, "not unique"),
    ("predictions", "id", None, "id is null"),
])
def test_row_checks_raise_or_reject(table, column, value, reason):
    gt, pd = small()
    frames = {"ground_truth": gt, "predictions": pd}
    frames[table] = _set(frames[table], 0, column, value)
    with pytest.raises(pm.InvalidAnnotationError, match=rf"{table}\.{column}.*{reason}(.|\n)*row 0 "
                                                        rf"\(data_row=.1., id=(.|\n)*Fix:"):
        pm.evaluate(frames["ground_truth"], frames["predictions"], profile="coco")
    ev = pm.evaluate(frames["ground_truth"], frames["predictions"], profile="coco",
                     on_invalid="drop")
    assert ev.rejects.filter(pl.col("table") == table)["row"].to_list()[:1] == [0]
    assert ev.rejects["reason"].str.contains(reason.replace("\\", ""), literal=True).any()
    # the result is that of the tables without the rejected rows
    bad = set(ev.rejects.filter(pl.col("table") == table)["row"].to_list())
    keep = pl.Series([i not in bad for i in range(frames[table].height)])
    frames[table] = frames[table].filter(keep)
    ref = pm.evaluate(frames["ground_truth"], frames["predictions"], profile="coco")
    np.testing.assert_array_equal(ev.coco.stats, ref.coco.stats)
    assert ev.cube.equals(ref.cube)


def test_placeholder_rows_only_declare_images():
    gt, pd = small()
    extra = pl.DataFrame({"data_row": [7], "id": [None], "feature": [None], "bbox": [None]},
                         schema=gt.schema)
    ev = pm.evaluate(pl.concat([gt, extra]), pd, profile="coco", on_invalid="drop")
    assert ev.rejects.height == 0 and 7 in ev.coco.image_ids


def test_predictions_outside_gt_are_excluded():
    gt, pd = small()
    pd = pd.with_columns(pl.when(pl.col("id") == 3).then(9).otherwise(pl.col("data_row")).alias("data_row"))
    with pytest.warns(pm.PolarsMetricsWarning):
        ev = pm.evaluate(gt, pd, profile="coco")
    assert ev.excluded.rows() == [(9, "not in ground truth", 0, 1)]


# --- switches -------------------------------------------------------------------------------
@pytest.mark.parametrize("switch,match", [
    ({"class_aware": False}, "use_cats=False"),
    ({"rows": "all"}, "images of the ground truth"),
    ({"rows": "both"}, "images of the ground truth"),
    ({"use_confidence": False}, "confidence_thresholds=\\[0.0\\]"),
    ({"greedy_order": "iou"}, "score order"),
    ({"buffer_radius": 5.0}, "points, lines"),
    ({"crs": "EPSG:4326"}, "points, lines"),
])
def test_switches_the_engine_cannot_honour_are_rejected(switch, match):
    gt, pd = small()
    with pytest.raises(pm.ProfileError, match=match):
        pm.evaluate(gt, pd, profile="coco", **switch)


def test_iou_strict_is_honoured():
    """An IoU of exactly 0.5 matches at threshold 0.5 under COCO's >=, not under strict >."""
    gt = pl.DataFrame({"data_row": [1], "feature": ["a"], "bbox": [[0.0, 0, 10, 10]]},
                      schema_overrides={"bbox": BOX})
    pd = pl.DataFrame({"data_row": [1], "feature": ["a"], "bbox": [[0.0, 0, 10, 5]],
                       "confidence": [0.9]}, schema_overrides={"bbox": BOX})
    cell = (pl.col("iou_threshold") == 0.5) & (pl.col("confidence_threshold") == 0.5)
    coco = pm.evaluate(gt, pd, profile="coco", confidence_thresholds=[0.5])
    strict = pm.evaluate(gt, pd, profile="coco", confidence_thresholds=[0.5], iou_strict=True)
    assert coco.cube.filter(cell)["tp"].item() == 1 and strict.cube.filter(cell)["tp"].item() == 0
    assert strict.profile.iou_strict and strict.coco.stats[1] == 0.0
    # identical boxes (IoU 1) match at threshold 1.0 under COCO's cap, never under iou > 1
    same = pd.with_columns(pl.lit([0.0, 0, 10, 10], dtype=BOX).alias("bbox"))
    at_one = pm.evaluate(gt, same, profile="coco", iou_thresholds=[1.0], confidence_thresholds=[0.5])
    strict_one = pm.evaluate(gt, same, profile="coco", iou_thresholds=[1.0],
                             confidence_thresholds=[0.5], iou_strict=True)
    assert at_one.cube["tp"].item() == 1 and strict_one.cube["tp"].item() == 0


def test_zero_tn_is_honoured(fixture_frames):
    gt, pd = fixture_frames
    ev = pm.evaluate(gt, pd, profile="coco", zero_tn=True, confidence_thresholds=CONF)
    assert (ev.cube["tn"] == 0).all() and (ev.data_rows["tn"] == 0).all()
    assert pm.evaluate(gt, pd, profile="coco", confidence_thresholds=CONF).cube["tn"].is_null().all()


def test_coco_options_through_the_profile():
    gt, pd = small()
    ev = pm.evaluate(gt, pd, profile=pm.get_profile("coco", max_dets=(1, 5, 50)))
    assert ev.coco.params.max_dets == (1, 5, 50) and ev.profile.coco.max_dets == (1, 5, 50)
    ev = pm.evaluate(gt, pd, profile="coco", max_dets=(1, 2, 3), use_cats=False)
    assert ev.profile.coco.max_dets == (1, 2, 3) and not ev.profile.coco.use_cats
    assert ev.coco.features == ("all",)


# --- segm without ground truth, views -------------------------------------------------------
def test_segm_without_ground_truth_annotations_is_minus_one():
    dataset = {"images": [{"id": 1, "height": 20, "width": 20}],
               "categories": [{"id": 1, "name": "a"}], "annotations": []}
    results = [{"image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.5}]
    gt, pd = read_coco(dataset, results)
    ev = pm.evaluate(gt, pd, profile="coco", iou_type="segm")
    ref = pycocotools_stats(dataset, results, iou_type="segm")
    np.testing.assert_array_equal(ev.coco.stats, ref)
    assert (ev.coco.stats == -1).all()


def test_views_speak_coco(fixture_frames):
    gt, pd = fixture_frames
    ev = pm.evaluate(gt, pd, profile="coco", confidence_thresholds=CONF)
    with pytest.raises(ValueError, match="ev.coco.precision"):
        ev.pr_curve(0.5, fine=True)
    with pytest.raises(ValueError, match="profile='coco'"):
        _ = ev.data_row_features
    with pytest.raises(ValueError, match='Did you mean "person"'):
        ev.examples("persn", None)
    assert ev.best_thresholds(0.5).height > 0
    assert ev.rejects.height == 0 and "state.merge" not in repr(ev)


def test_outcomes_under_coco_say_what_to_use():
    import polars as pl

    gt = pl.DataFrame({"data_row": [1], "feature": ["cat"], "bbox": [[0.0, 0, 10, 10]]},
                      schema_overrides={"bbox": pl.Array(pl.Float64, 4)})
    ev = pm.evaluate(gt, gt.with_columns(confidence=pl.lit(0.9)), profile="coco")
    with pytest.raises(ValueError, match="not available under profile='coco'"):
        ev.outcomes()
    assert ev.examples("cat", "cat", confidence=0.5, iou=0.5).height == 1


def test_predictions_without_any_ground_truth_row_give_false_positives():
    """No ground-truth row at all (not even an image declaration): every prediction is outside
    the evaluated images; the per-detection arrays and matches are empty-handed, not an
    IndexError."""
    import polars as pl

    box = pl.Array(pl.Float64, 4)
    pd = pl.DataFrame({"data_row": [1, 1], "feature": ["cat", "dog"],
                       "bbox": [[0.0, 0, 5, 5], [1.0, 1, 4, 4]], "confidence": [0.9, 0.8]},
                      schema_overrides={"bbox": box})
    ev = pm.evaluate(pd.drop("confidence").clear(), pd, profile="coco")
    assert not ev.coco.dt_tp.any()
    assert ev.matches.height == 0
