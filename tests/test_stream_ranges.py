"""Inputs already laid out by data row (stream/ranges.py): files with disjoint key ranges are
taken as they are (no bucketing pass), big ones cut at key values; overlapping files fall back
to the hash buckets. Every frame identical to the in-memory evaluation; the IoU re-sum
(stream/iou.py) gives the same bits; the per-annotation frames are rebuilt on first access."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from test_stream import assert_identical

import polars_metrics as pm
from polars_metrics.stream import ranges
from polars_metrics.synthetic import detections


def _write_by_rows(frame: pl.DataFrame, directory, cuts) -> list:
    """``frame`` as one file per data-row range [cuts[i], cuts[i+1]) (the ends open)."""
    directory.mkdir(parents=True)
    paths = []
    cuts = [None, *cuts[1:-1], None]
    for i, (lo, hi) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        part = frame.filter(((pl.col("data_row") >= lo) if lo is not None else True)
                            & ((pl.col("data_row") < hi) if hi is not None else True))
        paths.append(directory / f"part-{i:03d}.parquet")
        part.write_parquet(paths[-1])
    return paths


@pytest.fixture(scope="module")
def tables():
    gt, pd = detections(150, n_classes=6, seed=11, fp_per_image=8.0)
    return gt, pd


@pytest.mark.parametrize("parts", [1, 2, 4])
def test_files_by_data_row_are_batches_without_a_bucketing_pass(tables, tmp_path, parts):
    gt, pd = tables
    n_ann = gt.height + pd.height
    batch_size = -(-n_ann // parts)
    rows = gt["data_row"].unique().sort()
    cuts = [rows[0], rows[40], rows[90], rows[-1] + "~"]  # string keys
    _write_by_rows(gt, tmp_path / "gt", cuts)
    # the predictions cut elsewhere: a prediction file overlaps two ground-truth files, so
    # they are one component (a data row across files is still evaluated whole)
    _write_by_rows(pd, tmp_path / "pd", [rows[0], rows[60], pd["data_row"].max() + "~"])
    whole = pm.evaluate(gt, pd)
    ev = pm.evaluate(str(tmp_path / "gt"), str(tmp_path / "pd"), batch_size=batch_size,
                     out=tmp_path / "out")
    assert not (tmp_path / "out" / "_buckets").exists()
    names = sorted(p.name for p in (tmp_path / "out" / "batches").iterdir())
    assert all(n.startswith("keys-") for n in names)
    assert len(names) == parts
    assert_identical(ev, whole)
    gt_ann, pd_ann = ev.detail.annotations  # rebuilt from the batches' input files
    assert_frame_equal(gt_ann.sort("id"), whole.detail.annotations[0].sort("id"),
                       check_exact=True)
    assert_frame_equal(pd_ann.sort("id"), whole.detail.annotations[1].sort("id"),
                       check_exact=True)


def test_disjoint_files_without_ids_and_with_rejects(tables, tmp_path):
    gt, pd = tables
    boxes = gt["bbox"].to_list()
    boxes[130] = [5.0, 5.0, 1.0, 1.0]  # a bad box: rejected, named by its whole-table row
    gt = gt.drop("id").with_columns(pl.Series("bbox", boxes, dtype=gt.schema["bbox"]))
    pd = pd.drop("id")
    rows = gt["data_row"].unique().sort()
    cuts = [rows[0], rows[50], rows[100], rows[-1] + "~"]
    _write_by_rows(gt, tmp_path / "gt", cuts)
    _write_by_rows(pd, tmp_path / "pd", cuts)
    whole = pm.evaluate(gt, pd, on_invalid="drop")
    ev = pm.evaluate(str(tmp_path / "gt"), str(tmp_path / "pd"), on_invalid="drop",
                     batch_size=(gt.height + pd.height) // 5, out=tmp_path / "out")
    assert not (tmp_path / "out" / "_buckets").exists()
    assert ev.rejects.height >= 1
    assert_identical(ev, whole)


def test_overlapping_files_fall_back_to_hash_buckets(tables, tmp_path):
    gt, pd = tables
    (tmp_path / "gt").mkdir()
    (tmp_path / "pd").mkdir()
    for i in range(4):  # every file spans every data row
        gt.filter(pl.int_range(pl.len()) % 4 == i).write_parquet(tmp_path / "gt" / f"{i}.parquet")
        pd.filter(pl.int_range(pl.len()) % 4 == i).write_parquet(tmp_path / "pd" / f"{i}.parquet")
    assert ranges.key_ranges(str(tmp_path / "gt"), str(tmp_path / "pd"), ["data_row"], 300) \
        is None
    ev = pm.evaluate(str(tmp_path / "gt"), str(tmp_path / "pd"), batch_size=300,
                     out=tmp_path / "out")
    assert (tmp_path / "out" / "_buckets").exists()
    assert_identical(ev, pm.evaluate(gt, pd))


def test_iou_resum_is_the_sequential_sum_in_data_row_order(tmp_path):
    """Values whose sum depends on the order: the merge adds them in data-row order, as a
    plain loop does (zeros left out of the files change nothing)."""
    from polars_metrics import schema as s
    from polars_metrics.stream import iou

    rng = np.random.default_rng(0)
    n = 3000
    frame = pl.DataFrame({
        "data_row": rng.permutation(n).astype(np.int64),
        s.FEATURE: rng.choice(["a", "b", None], n),
        s.CONFIDENCE_THRESHOLD: 0.5,
        "value": np.where(rng.random(n) < 0.3, 0.0, rng.random(n) * 10.0 ** rng.integers(-8, 8, n)),
    })
    group = [s.FEATURE, s.CONFIDENCE_THRESHOLD]
    dirs = []
    for b in range(5):
        d = tmp_path / f"b{b}"
        iou.write(frame.filter(pl.col("data_row") % 5 == b), group, ["data_row"], d / "iou")
        dirs.append(d)
    counts = frame.select(group).unique().with_columns(
        pl.lit(0.5).alias("iou_sum"), pl.lit(0, dtype=pl.Int64).alias("iou_rows"))
    iou.CELLS, old = 7, iou.CELLS  # one group per block
    try:
        got = iou.resum(counts, dirs, (), ["data_row"])
    finally:
        iou.CELLS = old
    for feature, expected_rows in frame.group_by(s.FEATURE):
        acc = 0.0
        for v in expected_rows.sort("data_row")["value"]:
            acc += v
        row = got.filter(pl.col(s.FEATURE).eq_missing(feature[0])).row(0, named=True)
        assert row["iou_sum"] == acc  # bit for bit


def test_per_annotation_frames_are_rebuilt_on_first_access(tables, tmp_path):
    """The run writes data_rows and the small tables only; ev.matches and examples() rebuild
    the per-annotation frames from each batch's input files, equal to the in-memory ones."""
    gt, pd = tables
    whole = pm.evaluate(gt, pd)
    ev = pm.evaluate(gt.lazy(), pd.lazy(), batches=3, out=tmp_path / "out")
    batches = tmp_path / "out" / "batches"
    assert len(list(batches.glob("*/data_rows.parquet"))) == 3
    assert not list(batches.glob("*/matches.parquet"))
    assert not list(batches.glob("*/*annotations.parquet"))
    feature = whole.features[0]
    other = whole.features[1]
    keys = ["data_row", "gt_id", "pd_id"]
    for cell in ((feature, feature), (feature, None), (None, feature), (feature, other)):
        got = ev.examples(*cell).sort(keys, nulls_last=True, maintain_order=True)
        want = whole.examples(*cell).sort(keys, nulls_last=True, maintain_order=True)
        assert_frame_equal(got, want, check_exact=True)
    assert len(list(batches.glob("*/matches.parquet"))) == 3  # kept once rebuilt
    assert ev.lazy("matches").select(pl.len()).collect().item() == whole.matches.height
