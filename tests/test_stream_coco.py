"""profile="coco" streamed (issue 13 item 1): per-batch detection records merged into one
accumulate give the in-memory evaluation's arrays bit for bit (np.array_equal, not a
tolerance), pycocotools' published numbers on the real fixture, and the same cube, confusion,
data-row and per-annotation frames — for any number of batches and any batch order."""
from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import polars_metrics as pm
from polars_metrics.errors import PolarsMetricsError, ProfileError
from polars_metrics.io.coco import read_coco
from polars_metrics.result.coco import CocoEvaluation
from polars_metrics.state import RowTable
from polars_metrics.stream import evaluate_stream
from polars_metrics.synthetic import detections

FIXTURE = Path("/work/shared/data/cocoapi")
if not FIXTURE.exists():
    FIXTURE = Path(__file__).resolve().parent / "data" / "cocoapi"
GT = FIXTURE / "instances_val2014_100.json"
RESULTS = {"bbox": FIXTURE / "instances_val2014_fakebbox100_results.json",
           "segm": FIXTURE / "instances_val2014_fakesegm100_results.json"}

FRAMES = ("cube", "overall", "confusion", "data_rows", "excluded", "rejects", "coco_summary",
          "coco_per_category")


def assert_same(streamed, whole) -> None:
    for name in ("precision", "recall", "scores", "stats"):
        a, b = getattr(streamed.coco, name), getattr(whole.coco, name)
        assert a.shape == b.shape and np.array_equal(a, b), name
    assert streamed.coco.features == whole.coco.features
    assert np.array_equal(streamed.coco.category_ids, whole.coco.category_ids)
    assert np.array_equal(streamed.coco.image_ids, whole.coco.image_ids)
    assert streamed.coco.n_pd_outside == whole.coco.n_pd_outside
    assert streamed.coco.per_category.equals(whole.coco.per_category)
    for name in FRAMES:
        a, b = getattr(streamed, name), getattr(whole, name)
        assert a.equals(b), name
    assert streamed.matches.equals(whole.matches)
    assert streamed.tables.gt_counted.equals(whole.tables.gt_counted)
    assert streamed.tables.false_positives.equals(whole.tables.false_positives)


def _published(iou_type: str) -> list[str]:
    lines, current = [], None
    for line in (FIXTURE / "val2014_fake_eval_res.txt").read_text().splitlines():
        m = re.match(r"type=(\w+)", line)
        if m:
            current = m.group(1)
        elif current == iou_type and line.startswith(" Average"):
            lines.append(line)
    return lines


@pytest.fixture(scope="module", params=["bbox", "segm"])
def fixture_files(request, tmp_path_factory):
    gt, pd = read_coco(GT, RESULTS[request.param])
    d = tmp_path_factory.mktemp(request.param)
    gt.write_parquet(d / "gt.parquet")
    pd.write_parquet(d / "pd.parquet")
    whole = pm.evaluate(gt, pd, profile="coco", iou_type=request.param)
    return request.param, d, whole


@pytest.mark.parametrize("n", [1, 3, 7])
def test_fixture_streamed_equals_in_memory_and_published(fixture_files, tmp_path, n):
    iou_type, d, whole = fixture_files
    ev = pm.evaluate(d / "gt.parquet", d / "pd.parquet", profile="coco", iou_type=iou_type,
                     batches=n, out=tmp_path)
    assert type(ev).__name__ == "StreamedCocoEvaluation"
    assert len(list((tmp_path / "batches").glob("*/records.parquet"))) == n
    assert_same(ev, whole)
    # pycocotools' published output for these files (the file pads one title one space
    # narrower than today's pycocotools): the lines, and the 12 values to its 3 decimals
    published = _published(iou_type)
    squash = lambda text: re.sub(r" +", " ", text)  # noqa: E731
    assert [squash(x) for x in ev.coco.format_summary().splitlines()] == list(map(squash, published))
    assert np.array_equal(np.round(ev.coco.stats, 3),
                          [float(line.rsplit("=", 1)[1]) for line in published])


def test_a_coco_result_pickles_in_memory_and_streamed(fixture_files, tmp_path):
    """Every lazy table of a profile="coco" result is built by a module function, not a
    lambda: the result pickles (its data-row table as the frame) and comes back equal."""
    iou_type, d, whole = fixture_files
    assert_same(pickle.loads(pickle.dumps(whole)), whole)
    streamed = pm.evaluate(d / "gt.parquet", d / "pd.parquet", profile="coco",
                           iou_type=iou_type, batches=2, out=tmp_path)
    assert_same(pickle.loads(pickle.dumps(streamed)), whole)


def test_per_category_is_built_on_first_read():
    gt, pd = read_coco(GT, RESULTS["bbox"])
    ev = pm.evaluate(gt, pd, profile="coco")
    assert "per_category" not in vars(ev.coco)  # CocoResult caches it once built
    assert isinstance(CocoEvaluation.coco_per_category.raw(ev), RowTable)
    table = ev.coco_per_category
    assert "per_category" in vars(ev.coco) and table.equals(ev.coco.per_category)
    # with by=, each slice's stats are evaluated during the call: a frame
    sliced = pm.evaluate(gt, pd, profile="coco", data_rows=pl.DataFrame(
        {"data_row": gt["data_row"].unique().sort()}).with_columns(
        split=pl.when(pl.col("data_row") % 2 == 0).then(pl.lit("a")).otherwise(pl.lit("b"))),
        by="split")
    assert isinstance(CocoEvaluation.coco_per_category.raw(sliced), pl.DataFrame)
    assert set(sliced.coco_per_category["split"]) == {"a", "b"}


def test_fixture_any_batch_order(fixture_files, tmp_path):
    iou_type, d, whole = fixture_files
    prof = pm.get_profile("coco", iou_type=iou_type)
    ev = evaluate_stream(str(d / "gt.parquet"), str(d / "pd.parquet"), profile=prof,
                         keys=["data_row"], kwargs={}, batches=5, out=tmp_path,
                         batch_order=[3, 0, 4, 2, 1])
    assert_same(ev, whole)


def _random(seed: int, n_images: int = 120):
    """Synthetic images with crowd ground truths, tied (rounded) scores, a category only
    predicted and predictions on images the ground truth lacks."""
    gt, pd = detections(n_images, n_classes=7, seed=seed, fp_per_image=9.0)
    rng = np.random.default_rng(seed)
    gt = gt.with_columns(is_crowd=pl.Series(rng.random(gt.height) < 0.1))
    pd = pd.with_columns(pl.col("confidence").round(1))  # many exact ties across images
    extra = pd.head(5).with_columns(pl.lit("img_999999").alias("data_row"))
    return gt, pl.concat([pd, extra])


@pytest.mark.parametrize("options", [
    {},
    {"use_cats": False},
    {"area_ranges": {"all": (0, 1e10), "tiny": (0, 400), "rest": (400, 1e10)},
     "max_dets": (2, 5)},
    {"iou_thresholds": list(np.linspace(0.3, 0.95, 27).round(4))},  # 2 chunks of 16
])
def test_random_streamed_equals_in_memory(options, tmp_path):
    gt, pd = _random(7)
    iou = options.pop("iou_thresholds", None)
    with warnings.catch_warnings(record=True) as seen_whole:
        warnings.simplefilter("always")
        whole = pm.evaluate(gt, pd, profile="coco", iou_thresholds=iou, **options)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ev = pm.evaluate(gt.lazy(), pd.lazy(), profile="coco", iou_thresholds=iou, batches=4,
                         out=tmp_path, **options)
    assert whole.excluded.height == 1 and whole.coco.n_pd_outside == 5
    assert_same(ev, whole)
    # the predictions left out are reported once, with the total count
    assert [str(w.message)[:3] for w in seen if "left out" in str(w.message)] == \
        [str(w.message)[:3] for w in seen_whole if "left out" in str(w.message)] == ["5 p"]


def test_random_checkpoints_resume(tmp_path):
    gt, pd = _random(3)
    whole = pm.evaluate(gt, pd, profile="coco")
    first = pm.evaluate(gt.lazy(), pd.lazy(), profile="coco", batches=3, out=tmp_path)
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "batches").glob("*/records.parquet")}
    again = pm.evaluate(gt.lazy(), pd.lazy(), profile="coco", batches=3, out=tmp_path)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing recomputed
    assert_same(first, whole)
    assert_same(again, whole)


def test_rejects_name_rows_of_the_whole_table(tmp_path):
    gt, pd = _random(4, 40)
    pd = pd.with_columns(pl.when(pl.int_range(pl.len()) % 50 == 7).then(None)
                         .otherwise(pl.col("confidence")).alias("confidence"))
    whole = pm.evaluate(gt, pd, profile="coco", on_invalid="drop")
    ev = pm.evaluate(gt.lazy(), pd.lazy(), profile="coco", on_invalid="drop", batches=3,
                     out=tmp_path)
    assert whole.rejects.height == len(range(7, pd.height, 50))
    assert ev.rejects.select("table", "row").equals(whole.rejects.select("table", "row"))
    assert_same(ev, whole)


def test_refused_with_a_reason(tmp_path):
    gt, pd = _random(1, 20)
    with pytest.raises(PolarsMetricsError, match="by= is not supported"):
        pm.evaluate(gt.lazy(), pd.lazy(), profile="coco", by="split", batches=2, out=tmp_path)
    with pytest.raises(ProfileError, match="errors=True is not supported"):
        pm.evaluate(gt, pd, profile="coco", errors=True, batches=2)
    ev = pm.evaluate(gt.lazy(), pd.lazy(), profile="coco", batches=2, out=tmp_path / "x")
    with pytest.raises(ValueError, match="not kept by a streamed COCO"):
        ev.coco.dt_match  # noqa: B018
    # the per-image table stays in the batch files until read
    assert ev.lazy("data_rows").select(pl.len()).collect().item() == ev.data_rows.height


def test_ray_local_cluster(tmp_path):
    ray = pytest.importorskip("ray")
    root = str(Path(pm.__file__).resolve().parent.parent)
    gt, pd = _random(11, 60)
    whole = pm.evaluate(gt, pd, profile="coco")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": root}})
    try:
        ev = pm.evaluate(gt.lazy(), pd.lazy(), profile="coco", engine="ray", batches=3,
                         out=tmp_path)
    finally:
        ray.shutdown()
    assert_same(ev, whole)


def test_many_batches_empty_predictions_and_a_category_id_axis(tmp_path):
    gt, pd = _random(5, 30)
    # 64 batches for 31 images: most hold one image, some none, one only the extra predictions
    ev = pm.evaluate(gt.lazy(), pd.lazy(), profile="coco", batches=64, out=tmp_path / "a")
    assert_same(ev, pm.evaluate(gt, pd, profile="coco"))
    empty = pm.evaluate(gt.lazy(), pd.head(0).lazy(), profile="coco", batches=3,
                        out=tmp_path / "b")
    assert_same(empty, pm.evaluate(gt, pd.head(0), profile="coco"))
    # no Enum: the axis is the sorted category ids of both tables over all batches (999 only
    # predicted, in a few batches)
    ids = {name: 3 * i + 1 for i, name in enumerate(sorted(set(gt["feature"].to_list())))}
    g2 = gt.with_columns(category_id=pl.col("feature").replace_strict(ids, return_dtype=pl.Int64))
    ghost = pl.int_range(pl.len()) % 40 == 0  # a category (id 999, "ghost") never annotated
    p2 = pd.with_columns(
        category_id=pl.when(ghost).then(999).otherwise(
            pl.col("feature").replace_strict(ids, return_dtype=pl.Int64)),
        feature=pl.when(ghost).then(pl.lit("ghost")).otherwise(pl.col("feature")))
    whole = pm.evaluate(g2, p2, profile="coco")
    ev = pm.evaluate(g2.lazy(), p2.lazy(), profile="coco", batches=5, out=tmp_path / "c")
    assert whole.coco.category_ids.tolist() == [*sorted(ids.values()), 999]
    assert_same(ev, whole)


def test_accumulate_in_category_groups(monkeypatch, tmp_path):
    """A small budget splits the merge into groups of categories (one group's records in
    memory at a time): the same bits."""
    from polars_metrics.stream import coco as stream_coco

    gt, pd = _random(9, 50)
    monkeypatch.setattr(stream_coco, "GROUP_RECORDS", 60)
    seen = []
    real = stream_coco._groups

    def spy(*args):
        for cats, rec in real(*args):
            seen.append(cats)
            yield cats, rec

    monkeypatch.setattr(stream_coco, "_groups", spy)
    ev = pm.evaluate(gt.lazy(), pd.lazy(), profile="coco", batches=3, out=tmp_path)
    assert len(seen) >= 4  # 7 categories, ~100 records each
    assert np.concatenate(seen).tolist() == list(range(7))
    assert_same(ev, pm.evaluate(gt, pd, profile="coco"))
