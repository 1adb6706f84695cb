"""The ``polars-metrics`` command: its Parquet outputs must be exactly ``pm.evaluate``'s frames.

Run both as a subprocess (``python -m polars_metrics.cli`` of the package under test) and
in-process through ``cli.main([...])``.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import polars_metrics as pm
from polars_metrics import cli

FRAMES = ("cube", "overall", "confusion", "data_rows", "excluded", "rejects", "matches")


def frames(ev: pm.Evaluation) -> dict[str, pl.DataFrame]:
    return {name: getattr(ev, name) for name in FRAMES}


def assert_outputs_equal(out: Path, ev: pm.Evaluation) -> None:
    for name, expected in frames(ev).items():
        path = out / f"{name}.parquet"
        assert path.exists(), f"{path} was not written"
        assert_frame_equal(pl.read_parquet(path), expected, check_exact=True)


def command() -> list[str]:
    return [sys.executable, "-m", "polars_metrics.cli"]


def env() -> dict[str, str]:
    """The subprocess imports the package under test (this worktree), not an installed copy."""
    root = str(Path(pm.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p)}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*command(), *args], capture_output=True, text=True, timeout=900,
                          env=env())


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("inputs")
    gt, pd = pm.synthetic.detections(n_images=150, n_classes=12, seed=3)
    gt.write_parquet(d / "gt.parquet")
    pd.write_parquet(d / "pd.parquet")
    return d


# --- demo ----------------------------------------------------------------------------------------

def test_demo_writes_the_frames_of_evaluate(tmp_path):
    out = tmp_path / "tmp"
    res = run("demo", "--images", "200", "--out", str(out))
    assert res.returncode == 0, res.stderr
    gt = pl.read_parquet(out / "input" / "ground_truth.parquet")
    pd = pl.read_parquet(out / "input" / "predictions.parquet")
    # the demo's input is the package generator's output for the same arguments
    gen_gt, gen_pd = pm.synthetic.detections(n_images=200, n_classes=80, seed=0)
    assert_frame_equal(gt, gen_gt)
    assert_frame_equal(pd, gen_pd)
    assert_outputs_equal(out, pm.evaluate(gt, pd))
    # the summary: micro/macro rows, worst features and rows, confusions, best threshold, times
    for text in ("| micro", "| macro", "worst of 80 features by F1", "worst data rows by F1",
                 "Largest confusions", "Best-F1 confidence threshold", "Wall time (s):",
                 "Data rows: "):
        assert text in res.stdout, text
    # stderr is a pipe here, not a terminal: no progress at all (tests/test_cli_errors.py runs
    # the command on a pseudo-terminal for the progress lines)
    assert res.stderr == ""


def test_demo_in_process_lines_fit_100_columns(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--images", "60", "--classes", "8", "--seed", "4",
                     "--out", "demo_output", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.splitlines()
    # the copy-paste command hint is the only line allowed to be long
    too_long = [line for line in lines if len(line) > cli.WIDTH and "--predictions" not in line]
    assert not too_long, too_long
    out = tmp_path / "demo_output"
    gt = pl.read_parquet(out / "input" / "ground_truth.parquet")
    pd = pl.read_parquet(out / "input" / "predictions.parquet")
    assert_outputs_equal(out, pm.evaluate(gt, pd))


# --- evaluate ------------------------------------------------------------------------------------

def test_evaluate_subprocess_equals_pm_evaluate(tmp_path, inputs):
    out = tmp_path / "out"
    res = run("evaluate", "--ground-truth", str(inputs / "gt.parquet"),
              "--predictions", str(inputs / "pd.parquet"), "--out", str(out))
    assert res.returncode == 0, res.stderr
    ev = pm.evaluate(pl.read_parquet(inputs / "gt.parquet"), pl.read_parquet(inputs / "pd.parquet"))
    assert_outputs_equal(out, ev)
    assert "| micro" in res.stdout


def test_evaluate_python_m_with_options(tmp_path, inputs):
    out = tmp_path / "out"
    res = subprocess.run(
        [sys.executable, "-m", "polars_metrics.cli", "evaluate",
         "--ground-truth", str(inputs / "gt.parquet"), "--predictions", str(inputs / "pd.parquet"),
         "--out", str(out), "--by", "split", "--confidence-thresholds", "0,0.3,0.55,0.9",
         "--iou-thresholds", "0.25, 0.5,0.75", "--summary-confidence", "0.5"],
        capture_output=True, text=True, timeout=900, env=env())
    assert res.returncode == 0, res.stderr
    ev = pm.evaluate(pl.read_parquet(inputs / "gt.parquet"), pl.read_parquet(inputs / "pd.parquet"),
                     by="split", confidence_thresholds=[0, 0.3, 0.55, 0.9],
                     iou_thresholds=[0.25, 0.5, 0.75])
    assert_outputs_equal(out, ev)
    # 0.5 is not in the grid: the summary snaps to the nearest threshold and says so
    assert "confidence 0.5 -> 0.55" in res.stdout
    assert "| split |" in res.stdout and "| micro" in res.stdout


def test_evaluate_in_process_composite_key_and_data_rows(tmp_path, inputs, capsys):
    gt = pl.read_parquet(inputs / "gt.parquet")
    pd = pl.read_parquet(inputs / "pd.parquet")

    def split_key(df: pl.DataFrame) -> pl.DataFrame:  # img_000123 -> video 1, frame 23
        num = pl.col("data_row").str.slice(4).cast(pl.Int64)
        return df.select((num // 100).alias("video"), (num % 100).alias("frame"),
                         pl.exclude("data_row"))

    # the split comes from a data_rows table, not from the annotation tables
    meta = split_key(pl.concat([gt.select("data_row", "split"), pd.select("data_row", "split")])
                     .unique())
    paths = {name: tmp_path / f"{name}.parquet" for name in ("gt", "pd", "meta")}
    split_key(gt).drop("split").write_parquet(paths["gt"])
    split_key(pd).drop("split").write_parquet(paths["pd"])
    meta.write_parquet(paths["meta"])
    out = tmp_path / "out"
    status = cli.main(["evaluate", "--ground-truth", str(paths["gt"]),
                       "--predictions", str(paths["pd"]), "--out", str(out),
                       "--data-row", "video", "frame", "--by", "split",
                       "--data-rows", str(paths["meta"]), "-q"])
    assert status == 0
    ev = pm.evaluate(pl.read_parquet(paths["gt"]), pl.read_parquet(paths["pd"]),
                     data_row=["video", "frame"], by="split", data_rows=pl.read_parquet(paths["meta"]))
    assert_outputs_equal(out, ev)
    printed = capsys.readouterr().out
    assert "| video | frame | split |" in printed and "| micro" in printed


@pytest.fixture()
def bad_box(tmp_path, inputs) -> tuple[Path, Path, dict]:
    gt = pl.read_parquet(inputs / "gt.parquet")
    row = 5
    bad = gt.row(row, named=True)
    x0, y0, x1, y1 = bad["bbox"]
    boxes = gt["bbox"].to_list()
    boxes[row] = [x1, y0, x0, y1]  # x1 < x0
    gt.with_columns(pl.Series("bbox", boxes, dtype=pl.Array(pl.Float64, 4))).write_parquet(
        tmp_path / "bad_gt.parquet")
    return tmp_path / "bad_gt.parquet", inputs / "pd.parquet", {"row": row, **bad}


def test_bad_box_exits_2_naming_table_column_and_row(tmp_path, bad_box, capsys):
    gt_path, pd_path, bad = bad_box
    status = cli.main(["evaluate", "--ground-truth", str(gt_path), "--predictions", str(pd_path),
                       "--out", str(tmp_path / "out")])
    assert status == 2
    err = capsys.readouterr().err
    assert "ground_truth.bbox" in err
    assert "x1 < x0" in err
    assert f"row {bad['row']}" in err and repr(bad["data_row"]) in err and f"id={bad['id']}" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "cube.parquet").exists()


def test_bad_box_subprocess_exit_code_and_no_traceback(tmp_path, bad_box):
    gt_path, pd_path, bad = bad_box
    res = run("evaluate", "--ground-truth", str(gt_path), "--predictions", str(pd_path),
              "--out", str(tmp_path / "out"))
    assert res.returncode == 2
    assert "ground_truth.bbox" in res.stderr and bad["data_row"] in res.stderr
    assert "Traceback" not in res.stderr


def test_on_invalid_drop_writes_rejects(tmp_path, bad_box, capsys):
    gt_path, pd_path, bad = bad_box
    out = tmp_path / "out"
    assert cli.main(["evaluate", "--ground-truth", str(gt_path), "--predictions", str(pd_path),
                     "--out", str(out), "--on-invalid", "drop", "-q"]) == 0
    rejects = pl.read_parquet(out / "rejects.parquet")
    assert rejects.select("table", "row", "data_row", "column").rows() == [
        ("ground_truth", bad["row"], bad["data_row"], "bbox")]
    ev = pm.evaluate(pl.read_parquet(gt_path), pl.read_parquet(pd_path), on_invalid="drop")
    assert_outputs_equal(out, ev)
    assert "Rejected input rows (1" in capsys.readouterr().out


@pytest.mark.parametrize(("extra", "message"), [
    (["--iou-thresholds", "0.5,x"], "argument --iou-thresholds: takes comma-separated numbers"),
    (["--confidence-thresholds", "0.5,1.5"], "--confidence-thresholds must be finite numbers in [0, 1]"),
    (["--by", "spilt"], "by column 'spilt'"),
    (["--data-row", "image"], "missing column(s) ['image']"),
])
def test_usage_errors_exit_2(tmp_path, inputs, capsys, extra, message):
    status = cli.main(["evaluate", "--ground-truth", str(inputs / "gt.parquet"),
                       "--predictions", str(inputs / "pd.parquet"), "--out", str(tmp_path), *extra])
    assert status == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_unreadable_inputs_exit_2(tmp_path, inputs, capsys):
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    for gt_path, message in ((tmp_path / "missing.parquet", "no such file"),
                             (junk, "cannot tell its format from its content")):
        status = cli.main(["evaluate", "--ground-truth", str(gt_path),
                           "--predictions", str(inputs / "pd.parquet"), "--out", str(tmp_path)])
        assert status == 2
        assert message in capsys.readouterr().err


def test_argparse_usage_errors(capsys):
    # argparse's own errors: one line (no usage block), exit status 2, no SystemExit
    assert cli.main(["evaluate", "--out", "x"]) == 2  # missing required inputs
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "required: --ground-truth" in err
    assert cli.main(["evaluat"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice" in err


def test_format_summary_on_an_empty_evaluation():
    box = pl.Array(pl.Float64, 4)
    empty = pl.DataFrame({"data_row": [], "feature": [], "bbox": []},
                         schema={"data_row": pl.String, "feature": pl.String, "bbox": box})
    ev = pm.evaluate(empty, empty.with_columns(confidence=pl.lit(0.5)))
    text = cli.format_summary(ev)
    assert "Data rows: 0 evaluated, 0 excluded" in text
