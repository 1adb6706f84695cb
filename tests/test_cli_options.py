"""Every ``pm.evaluate`` option on the command line, honoured; ``--json``; no abbreviations."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import polars as pl
import pytest
from cli_data import CONF, GRID, IOU, frames
from polars.testing import assert_frame_equal

import polars_metrics as pm
from polars_metrics import cli
from polars_metrics.cli.options import SWITCHES, flag

FRAMES = ("cube", "overall", "confusion", "data_rows", "excluded", "rejects", "matches")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli_options")
    gt, pd = frames(n_images=60, n_classes=6, seed=11)
    gt.write_parquet(d / "gt.parquet")
    pd.write_parquet(d / "pd.parquet")
    return {"gt": d / "gt.parquet", "pd": d / "pd.parquet"}


def inputs(files) -> tuple[pl.DataFrame, pl.DataFrame]:
    return pl.read_parquet(files["gt"]), pl.read_parquet(files["pd"])


def evaluate_cli(files, out: Path, *extra: str) -> int:
    return cli.main(["evaluate", "--ground-truth", str(files["gt"]), "--predictions",
                     str(files["pd"]), "--out", str(out), "-q", *extra])


def assert_outputs(out: Path, ev: pm.Evaluation) -> None:
    for name in FRAMES:
        assert_frame_equal(pl.read_parquet(out / f"{name}.parquet"), getattr(ev, name),
                           check_exact=True)


def test_every_profile_switch_has_a_flag():
    fields = ({f.name for f in dataclasses.fields(pm.Profile)} - {"name", "coco", "sdk"}
              | {f.name for f in dataclasses.fields(pm.CocoOptions)})
    assert set(SWITCHES) == fields
    # the SDK functions' options are no pm.evaluate option (so no flag): if that changes, the
    # command needs their flags
    gt, pd = frames(n_images=2, n_classes=2)
    changed = {"coordinate_decimals": 2, "span_end": "as_given", "semantic_masks": False,
               "include_subclasses": True}
    assert set(changed) == {f.name for f in dataclasses.fields(pm.SdkOptions)}
    for name, value in changed.items():
        with pytest.raises(pm.PolarsMetricsError, match="pm.evaluate does not read"):
            pm.evaluate(gt, pd, profile="labelbox-sdk", **{name: value})
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for command in ("evaluate", "report"):
        strings = {s for a in sub.choices[command]._actions for s in a.option_strings}
        for name in fields:
            assert flag(name) in strings, (command, name)
        for option in ("--profile", "--by", "--data-row", "--data-rows", "--on-invalid",
                       "--confidence-thresholds", "--iou-thresholds", "--format", "--project",
                       "--model-run", "--label-selection"):
            assert option in strings, (command, option)


@pytest.mark.parametrize(("extra", "keywords"), [
    (["--class-aware", "--no-iou-strict", "--rows", "all", "--zero-tn"],
     {"class_aware": True, "iou_strict": False, "rows": "all", "zero_tn": True}),
    (["--no-use-confidence", "--greedy-order", "score", "--on-invalid", "drop"],
     {"use_confidence": False, "greedy_order": "score", "on_invalid": "drop"}),
    (["--profile", "labelbox-sdk", "--no-class-aware", "--buffer-radius", "3"],
     {"profile": "labelbox-sdk", "class_aware": False, "buffer_radius": 3.0}),
    (["--by", "split", "--data-row", "data_row"], {"by": "split"}),
])
def test_pipeline_switches_are_honoured(files, tmp_path, extra, keywords):
    assert evaluate_cli(files, tmp_path / "out", *GRID, *extra) == 0
    gt, pd = inputs(files)
    ev = pm.evaluate(gt, pd, confidence_thresholds=CONF, iou_thresholds=IOU, **keywords)
    assert_outputs(tmp_path / "out", ev)
    # the options change the numbers, so a flag that was dropped would fail the line above
    default = pm.evaluate(gt, pd, confidence_thresholds=CONF, iou_thresholds=IOU)
    changed = [name for name in ("cube", "confusion", "data_rows")
               if not getattr(ev, name).equals(getattr(default, name))]
    assert changed


def test_coco_options_are_honoured(files, tmp_path, capsys):
    gt, pd = inputs(files)
    gt = gt.with_columns(pl.col("data_row").str.slice(4).cast(pl.Int64))
    pd = pd.with_columns(pl.col("data_row").str.slice(4).cast(pl.Int64))
    gt.write_parquet(tmp_path / "gt.parquet")
    pd.write_parquet(tmp_path / "pd.parquet")
    paths = {"gt": tmp_path / "gt.parquet", "pd": tmp_path / "pd.parquet"}
    options = ["--profile", "coco", "--max-dets", "1,5,20", "--area-ranges",
               "all:0:1e10,small:0:1024,big:1024:1e10", "--no-use-cats", "--rec-thresholds",
               "0,0.25,0.5,0.75,1", "--iou-type", "bbox", "--json"]
    assert evaluate_cli(paths, tmp_path / "out", *options) == 0
    summary = json.loads(capsys.readouterr().out)
    ev = pm.evaluate(gt, pd, profile="coco", max_dets=(1, 5, 20),
                     area_ranges=(("all", 0, 1e10), ("small", 0, 1024), ("big", 1024, 1e10)),
                     use_cats=False, rec_thresholds=(0, 0.25, 0.5, 0.75, 1), iou_type="bbox")
    assert_outputs(tmp_path / "out", ev)
    assert [r["value"] for r in summary["coco_summary"]] == pytest.approx(
        ev.coco_summary["value"].to_list(), nan_ok=True)
    assert summary["profile"]["coco"]["max_dets"] == [1, 5, 20]
    assert summary["profile"]["coco"]["use_cats"] is False
    default = pm.evaluate(gt, pd, profile="coco")
    assert not ev.coco_summary["value"].equals(default.coco_summary["value"])


def test_json_summary_equals_the_evaluation(files, tmp_path, capsys):
    gt, pd = inputs(files)
    gt = gt.with_columns(pl.when(pl.col("id") == 3).then(pl.lit([5.0, 5, 1, 1], dtype=gt["bbox"].dtype))
                         .otherwise(pl.col("bbox")).alias("bbox"))  # one x1 < x0 -> a reject
    gt.write_parquet(tmp_path / "gt.parquet")
    paths = {"gt": tmp_path / "gt.parquet", "pd": files["pd"]}
    assert evaluate_cli(paths, tmp_path / "out", "--json", "--on-invalid", "drop", "--by", "split",
                        "--confidence-thresholds", "0,0.25,0.55,0.9", "--summary-iou", "0.5") == 0
    data = json.loads(capsys.readouterr().out)
    ev = pm.evaluate(gt, pd, on_invalid="drop", by="split",
                     confidence_thresholds=[0, 0.25, 0.55, 0.9])
    c, t = 0.55, 0.5
    assert data["cell"] == {"confidence": c, "iou": t, "requested": {"confidence": 0.5, "iou": 0.5}}
    # per-feature and micro / macro rows: ev.summary() at the cell
    summ = ev.summary(confidence=c, iou=t)
    per = summ.filter(~pl.col("feature").str.starts_with("all ("))
    got = pl.DataFrame(data["features"]).sort("split", "feature")
    want = per.sort("split", "feature")
    for col in ("tp", "fp", "fn", "precision", "recall", "f1", "iou"):
        assert got[col].to_list() == pytest.approx(want[col].to_list(), nan_ok=True), col
    overall = pl.DataFrame(data["overall"]).sort("split", "average")
    cell = ev.overall.filter((pl.col("confidence_threshold") == c) & (pl.col("iou_threshold") == t))
    assert overall["tp"].to_list() == cell.sort("split", "average")["tp"].to_list()
    assert overall["f1"].to_list() == pytest.approx(cell.sort("split", "average")["f1"].to_list())
    # data rows: evaluated / excluded by reason / rejected
    n_rows = ev.data_rows.filter((pl.col("confidence_threshold") == c)
                                 & (pl.col("iou_threshold") == t)).height
    assert data["data_rows"]["evaluated"] == n_rows
    assert data["data_rows"]["excluded"] == ev.excluded.height
    assert sum(data["data_rows"]["excluded_by_reason"].values()) == ev.excluded.height
    assert data["data_rows"]["rejected_input_rows"] == ev.rejects.height == 1
    # confusions and unmatched from ev.confusion at the cell
    conf = ev.confusion.filter((pl.col("confidence_threshold") == c) & (pl.col("iou_threshold") == t))
    off = conf.filter(pl.col("gt_feature").is_not_null() & pl.col("pd_feature").is_not_null()
                      & (pl.col("gt_feature") != pl.col("pd_feature")))
    assert sum(r["count"] for r in data["confusions"]) == off["count"].sum()
    assert data["unmatched"]["ground_truths"] == conf.filter(pl.col("pd_feature").is_null())["count"].sum()
    # best-F1 confidence: ev.best_thresholds, micro rows
    best = ev.best_thresholds(iou=t).filter(pl.col("feature").is_null()).sort("split")
    assert [r["confidence_threshold"] for r in sorted(data["best_f1_confidence"],
                                                      key=lambda r: r["split"])] == \
        best["confidence_threshold"].to_list()
    # worst data rows: the lowest F1 of ev.data_rows at the cell
    worst_f1 = sorted(r["f1"] for r in data["worst_data_rows"])
    cell_rows = ev.data_rows.filter((pl.col("confidence_threshold") == c) & (pl.col("iou_threshold") == t))
    assert worst_f1 == pytest.approx(cell_rows["f1"].drop_nulls().sort().head(len(worst_f1)).to_list())
    # timings, inputs, outputs
    assert {"read ground truth", "read predictions", "evaluate", "write outputs"} <= set(
        data["timings"]["stages"])
    assert data["inputs"]["ground_truth"]["format"] == "parquet"
    assert Path(data["outputs"]["cube"]).exists()


@pytest.mark.parametrize(("extra", "message"), [
    (["--profile", "lablebox"], 'Unknown profile \'lablebox\'; profiles are [\'coco\', '
     '\'labelbox\', \'labelbox-sdk\']. Did you mean "labelbox"?'),
    (["--rows", "bth"], 'Did you mean "both"?'),
    (["--greedy-order", "scor"], 'Did you mean "score"?'),
    (["--point-iou", "circel"], 'Did you mean "circle"?'),
    (["--on-invalid", "dorp"], 'Did you mean "drop"?'),
    (["--by", "spilt"], 'Did you mean "split"?'),
    (["--iou-type", "segm"], "--iou-type is an option of the COCO engine; such options only "
     "apply to --profile coco"),
])
def test_unknown_values_fail_with_did_you_mean(files, tmp_path, capsys, extra, message):
    assert evaluate_cli(files, tmp_path / "out", *extra) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert err.count("\n") == 1


@pytest.mark.parametrize("argv", [
    ["--iou", "0.5"], ["--conf", "0.5"], ["--confidence", "0.5"], ["--prof", "coco"],
    ["--summary-c", "0.5"], ["--class", "--json"],
])
def test_abbreviations_are_refused(files, tmp_path, capsys, argv):
    assert evaluate_cli(files, tmp_path / "out", *argv) == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments" in err and argv[0] in err
    assert err.count("\n") == 1
    assert not (tmp_path / "out" / "cube.parquet").exists()


def test_report_takes_the_same_inputs_and_options(files, tmp_path, capsys):
    gt, pd = inputs(files)
    out = tmp_path / "r.html"
    assert cli.main(["report", "--ground-truth", str(files["gt"]), "--predictions",
                     str(files["pd"]), "-o", str(out), "--class-aware", "--by", "split",
                     "--json", "-q"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["report"] == str(out) and out.exists()
    ev = pm.evaluate(gt, pd, class_aware=True, by="split")
    # the same report as the library writes for the class-aware evaluation of the same tables
    same = pm.report(ev, tmp_path / "lib.html", ground_truth=gt, predictions=pd)
    assert out.read_text() == same.read_text()
    plain = pm.report(pm.evaluate(gt, pd, by="split"), tmp_path / "plain.html",
                      ground_truth=gt, predictions=pd)
    assert out.read_text() != plain.read_text()
