"""``polars-metrics evaluate`` out of core (issue 13 item 5): Parquet datasets streamed in
batches give the frames the in-memory command writes; the same command resumes; what a streamed
run cannot honour fails with one line naming the flag."""
from __future__ import annotations

import json

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from polars_metrics.cli import main
from polars_metrics.synthetic import detections

ROW_ORDER = ["data_row", "confidence_threshold", "iou_threshold"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Ground truth as a directory of three files, one data row split across two of them;
    predictions as one file."""
    d = tmp_path_factory.mktemp("stream_cli")
    gt, pd = detections(120, n_classes=4, seed=3, fp_per_image=6.0)
    (d / "gt").mkdir()
    split_row = gt["data_row"][0]
    first = gt.filter(pl.col("data_row") == split_row)
    assert first.height >= 2, "the split data row needs two annotations"
    gt.filter(pl.col("data_row") != split_row).head(300).vstack(first.head(1)).write_parquet(
        d / "gt" / "part-0.parquet")
    gt.filter(pl.col("data_row") != split_row).slice(300).write_parquet(d / "gt" / "part-1.parquet")
    first.slice(1).write_parquet(d / "gt" / "part-2.parquet")
    pd.write_parquet(d / "pd.parquet")
    gt.write_parquet(d / "gt_whole.parquet")
    return d


def _run(*argv) -> int:
    return main(["evaluate", *map(str, argv), "-q"])


def test_streamed_command_writes_the_in_memory_frames(dataset, tmp_path, capsys):
    assert _run("--ground-truth", dataset / "gt_whole.parquet", "--predictions",
                dataset / "pd.parquet", "--out", tmp_path / "whole") == 0
    assert _run("--ground-truth", dataset / "gt", "--predictions", dataset / "pd.parquet",
                "--out", tmp_path / "streamed", "--batches", 3) == 0
    printed = capsys.readouterr().out
    assert "streamed, 3 batches" in printed and "batches/*/data_rows.parquet" in printed
    whole, streamed = tmp_path / "whole", tmp_path / "streamed"
    for name in ("cube", "overall", "confusion", "excluded", "rejects"):
        assert_frame_equal(pl.read_parquet(streamed / f"{name}.parquet"),
                           pl.read_parquet(whole / f"{name}.parquet"), check_exact=True)
    rows = pl.scan_parquet(str(streamed / "batches" / "*" / "data_rows.parquet")).collect()
    assert_frame_equal(rows.sort(ROW_ORDER, maintain_order=True),
                       pl.read_parquet(whole / "data_rows.parquet"), check_exact=True)
    matches = pl.scan_parquet(str(streamed / "batches" / "*" / "matches.parquet")).collect()
    expected = pl.read_parquet(whole / "matches.parquet")
    order = expected.columns
    assert_frame_equal(matches.select(order).sort(order), expected.sort(order), check_exact=True)


def test_the_same_command_resumes_from_its_checkpoints(dataset, tmp_path, capsys):
    argv = ["--ground-truth", dataset / "gt", "--predictions", dataset / "pd.parquet",
            "--out", tmp_path / "run", "--batch-size", 400, "--json"]
    assert _run(*argv) == 0
    first = json.loads(capsys.readouterr().out)
    manifests = sorted((tmp_path / "run" / "batches").glob("*/manifest.json"))
    assert len(manifests) >= 2
    stamps = [m.stat().st_mtime_ns for m in manifests]
    assert _run(*argv) == 0
    second = json.loads(capsys.readouterr().out)
    # no batch was recomputed, and the numbers are the same
    assert [m.stat().st_mtime_ns for m in manifests] == stamps
    assert first["overall"] == second["overall"] and first["features"] == second["features"]
    assert second["inputs"]["streamed"]["options"] == "--batch-size"
    assert second["outputs"]["data_rows"].endswith("batches/*/data_rows.parquet")


@pytest.mark.parametrize("extra, message", [
    (["--engine", "spark"], "--engine spark: must be local or ray"),
    (["--batches", "0"], "--batches: takes a whole number >= 1"),
    (["--stream", "--project", "p1"], "--project reads Labelbox exports; --stream reads Parquet"),
    (["--memory-limit", "lots"], "--memory-limit lots is not a size"),
])
def test_what_a_streamed_run_cannot_honour_exits_2(dataset, tmp_path, capsys, extra, message):
    assert _run("--ground-truth", dataset / "gt", "--predictions", dataset / "pd.parquet",
                "--out", tmp_path / "o", *extra) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_coco_json_input_is_refused_with_the_way_out(tmp_path, capsys):
    coco = tmp_path / "instances.json"
    coco.write_text(json.dumps({"images": [{"id": 1, "width": 10, "height": 10}],
                                "annotations": [], "categories": [{"id": 1, "name": "cat"}]}))
    results = tmp_path / "results.json"
    results.write_text("[]")
    assert _run("--ground-truth", coco, "--predictions", results, "--out", tmp_path / "o",
                "--stream") == 2
    err = capsys.readouterr().err
    assert "is coco; --stream streams Parquet inputs" in err and "Drop --stream" in err
