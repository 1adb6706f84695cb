"""``polars-metrics evaluate`` on every input format: detected from the content or ``--format``.

Each format is written from the same synthetic frames; reading it through the command must give
the cube ``pm.evaluate`` gives on the original frames (the readers' geometry round trip only
moves the last bits of the ratios).
"""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from cli_data import (
    CONF,
    GRID,
    IOU,
    assert_same_cube,
    export_lines,
    frames,
    image_ids,
    ndjson_lines,
    write_coco,
    write_lines,
)
from polars.testing import assert_frame_equal

import polars_metrics as pm
from polars_metrics import cli
from polars_metrics.cli.inputs import COCO_RESULTS, sniff


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_inputs")
    gt, pd = frames()
    gt.write_parquet(d / "gt.parquet")
    pd.write_parquet(d / "pd.parquet")
    coco_gt, coco_pd = write_coco(gt, pd, d)
    files = {
        "gt": gt, "pd": pd, "dir": d, "coco_gt": coco_gt, "coco_pd": coco_pd,
        "gt_ndjson": write_lines(d / "gt.ndjson", ndjson_lines(gt)),
        "pd_ndjson": write_lines(d / "pd.ndjson", ndjson_lines(pd)),
        # predictions keyed by global key: the export's data rows map them to ids
        "pd_gk_ndjson": write_lines(d / "pd_gk.ndjson", ndjson_lines(pd, global_key=True)),
        "export": write_lines(d / "export.ndjson", export_lines(gt, unlabeled=("img_999999",))),
    }
    return files


def expected(data) -> pm.Evaluation:
    return pm.evaluate(data["gt"], data["pd"], confidence_thresholds=CONF, iou_thresholds=IOU)


def run(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "out"
    assert cli.main(["evaluate", *args, "--out", str(out), *GRID, "-q"]) == 0
    return out


def cube(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "cube.parquet")


def test_sniffed_formats(data, tmp_path):
    assert sniff(data["dir"] / "gt.parquet") == "parquet"
    assert sniff(data["coco_gt"]) == "coco"
    assert sniff(data["coco_pd"]) == COCO_RESULTS
    assert sniff(data["gt_ndjson"]) == "labelbox-ndjson"
    assert sniff(data["export"]) == "labelbox-export"
    # a JSON array of import objects, a BOM and blank lines first, an empty results list
    arr = tmp_path / "array.json"
    arr.write_text("\ufeff\n\n  [" + ",".join(ndjson_lines(data["pd"])[:3]) + "]")
    assert sniff(arr) == "labelbox-ndjson"
    (tmp_path / "empty.json").write_text(" [ ] ")
    assert sniff(tmp_path / "empty.json") == COCO_RESULTS
    # a COCO file whose first record does not end within the first MiB: found by its keys
    big = json.loads(data["coco_gt"].read_text())
    big["annotations"] = big["annotations"] * 40
    (tmp_path / "big.json").write_text(json.dumps(big) + " " * (1 << 20))
    assert sniff(tmp_path / "big.json") == "coco"
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    assert sniff(tmp_path / "x.csv") is None


def test_coco_json_under_the_labelbox_profile_equals_the_frames(data, tmp_path, capsys):
    out = run(tmp_path, "--ground-truth", str(data["coco_gt"]),
              "--predictions", str(data["coco_pd"]))
    assert_same_cube(cube(out), expected(data).cube)
    printed = " ".join(capsys.readouterr().out.split())
    assert "instances.json, coco)" in printed and "results.json, coco-results)" in printed
    assert "COCO input compared by box" in printed


def test_coco_json_under_the_coco_profile_equals_pm_evaluate(data, tmp_path):
    out = run(tmp_path, "--ground-truth", str(data["coco_gt"]),
              "--predictions", str(data["coco_pd"]), "--profile", "coco")
    gt, pd = pm.read_coco(data["coco_gt"], data["coco_pd"])
    ev = pm.evaluate(gt, pd, profile="coco", confidence_thresholds=CONF, iou_thresholds=IOU)
    assert_frame_equal(cube(out), ev.cube)
    assert_frame_equal(pl.read_parquet(out / "data_rows.parquet"), ev.data_rows)
    # and the cube counts are the frames' own under COCO matching
    ids = image_ids(data["gt"], data["pd"])
    keyed = [f.with_columns(pl.col("data_row").replace_strict(ids)) for f in (data["gt"], data["pd"])]
    direct = pm.evaluate(*keyed, profile="coco", confidence_thresholds=CONF, iou_thresholds=IOU)
    assert_same_cube(cube(out), direct.cube)


def test_coco_gt_with_parquet_predictions(data, tmp_path):
    ids = image_ids(data["gt"], data["pd"])
    pd = data["pd"].with_columns(pl.col("data_row").replace_strict(ids))
    pd.write_parquet(tmp_path / "pd.parquet")
    out = run(tmp_path, "--ground-truth", str(data["coco_gt"]),
              "--predictions", str(tmp_path / "pd.parquet"))
    assert_same_cube(cube(out), expected(data).cube)


def test_labelbox_ndjson_both_sides(data, tmp_path):
    out = run(tmp_path, "--ground-truth", str(data["gt_ndjson"]),
              "--predictions", str(data["pd_ndjson"]))
    assert_same_cube(cube(out), expected(data).cube)


def test_labelbox_export_with_global_key_predictions(data, tmp_path, capsys):
    out = run(tmp_path, "--ground-truth", str(data["export"]),
              "--predictions", str(data["pd_gk_ndjson"]))
    assert_same_cube(cube(out), expected(data).cube)
    # the export's unlabeled data row is listed, not evaluated
    excluded = pl.read_parquet(out / "input_excluded.parquet")
    assert excluded["data_row"].to_list() == ["img_999999"]
    assert "1 data rows of the export are not labeled" in capsys.readouterr().out


def test_model_run_export_holds_both_sides(data, tmp_path):
    gt, pd = data["gt"].head(12), data["pd"]
    lines = []
    for (name,), rows in gt.group_by(["data_row"], maintain_order=True):
        def objs(frame, conf, name=name):
            return [{"feature_id": f"{name}-{conf}-{r['id']}", "name": r["feature"],
                     "annotation_kind": "ImageBoundingBox", "classifications": [],
                     "bounding_box": {"top": r["bbox"][1], "left": r["bbox"][0],
                                      "height": r["bbox"][3] - r["bbox"][1],
                                      "width": r["bbox"][2] - r["bbox"][0]},
                     **({"confidence": r["confidence"]} if conf else {})}
                    for r in frame.iter_rows(named=True)]
        preds = pd.filter(pl.col("data_row") == name)
        run_ = {"labels": [{"id": "l", "annotations": {"objects": objs(rows, False)}}],
                "predictions": [{"id": "p", "annotations": {"objects": objs(preds, True)}}]}
        lines.append(json.dumps({"data_row": {"id": name},
                                 "experiments": {"m": {"runs": {"r1": run_}}}}))
    path = write_lines(tmp_path / "run.ndjson", lines)
    out = run(tmp_path, "--ground-truth", str(path))
    exp = pm.read_labelbox_export(path)
    ev = pm.evaluate(exp.ground_truth, exp.predictions, confidence_thresholds=CONF,
                     iou_thresholds=IOU, data_rows=exp.data_rows)
    assert_frame_equal(cube(out), ev.cube)
    kept = pd.filter(pl.col("data_row").is_in(gt["data_row"].unique().to_list()))
    direct = pm.evaluate(gt, kept, confidence_thresholds=CONF, iou_thresholds=IOU)
    assert_same_cube(cube(out), direct.cube)


def test_parquet_directory_and_glob(data, tmp_path):
    parts = tmp_path / "gt_parts"
    parts.mkdir()
    gt = data["gt"]
    gt.head(50).write_parquet(parts / "a.parquet")
    gt.slice(50).write_parquet(parts / "b.parquet")
    out = run(tmp_path, "--ground-truth", str(parts),
              "--predictions", str(data["dir"] / "p*.parquet"))
    assert_frame_equal(cube(out), expected(data).cube)


@pytest.mark.parametrize(("gt_key", "pd_key", "forced"), [
    ("coco_gt", "coco_pd", ["coco"]),
    ("gt_ndjson", "pd_ndjson", ["labelbox-ndjson"]),
    ("export", "pd_ndjson", ["labelbox-export", "labelbox-ndjson"]),
])
def test_forced_format_equals_detection(data, tmp_path, gt_key, pd_key, forced):
    detected = run(tmp_path / "a", "--ground-truth", str(data[gt_key]),
                   "--predictions", str(data[pd_key]))
    named = run(tmp_path / "b", "--ground-truth", str(data[gt_key]),
                "--predictions", str(data[pd_key]), "--format", *forced)
    assert_frame_equal(cube(detected), cube(named))


def test_ndjson_under_any_file_name_and_as_a_json_array(data, tmp_path):
    lines = ndjson_lines(data["pd"])
    (tmp_path / "preds.json").write_text("[" + ",\n".join(lines) + "]")
    (tmp_path / "preds.txt").write_text("\n".join(lines))
    for name in ("preds.json", "preds.txt"):
        out = run(tmp_path / name.replace(".", "_"), "--ground-truth", str(data["gt_ndjson"]),
                  "--predictions", str(tmp_path / name))
        assert_same_cube(cube(out), expected(data).cube)


@pytest.mark.parametrize(("args", "message"), [
    (["--ground-truth", "{coco_pd}", "--predictions", "{coco_pd}"],
     "is a COCO results file (a list of detections): pass it as --predictions"),
    (["--ground-truth", "{coco_gt}", "--predictions", "{coco_gt}"],
     "is a COCO instances file (images, annotations); COCO predictions are a results file"),
    (["--ground-truth", "{gt_parquet}", "--predictions", "{coco_pd}"],
     "so --ground-truth must be one (it is parquet)"),
    (["--ground-truth", "{coco_gt}", "--predictions", "{pd_ndjson}"],
     "--predictions must be a COCO results JSON or Parquet, not labelbox-ndjson"),
    (["--ground-truth", "{export}"],
     "--predictions is required: only a Labelbox model-run export holds both sides"),
    (["--ground-truth", "{gt_parquet}"], "--predictions is required"),
    (["--ground-truth", "{gt_parquet}", "--predictions", "{pd_ndjson}", "--format", "cocoo"],
     '--format cocoo: not a format; formats are parquet, coco, labelbox-ndjson, '
     'labelbox-export. Did you mean "coco"?'),
    (["--ground-truth", "{gt_parquet}", "--predictions", "{pd_ndjson}", "--format", "parquet",
      "parquet", "parquet"], "--format takes one format (both inputs) or two"),
    (["--ground-truth", "{gt_parquet}", "--predictions", "{pd_ndjson}", "--format", "parquet"],
     "cannot read it as Parquet"),
    (["--ground-truth", "{gt_ndjson}", "--predictions", "{pd_ndjson}", "--format", "coco"],
     "--ground-truth"),
    (["--ground-truth", "{gt_parquet}", "--predictions", "{pd_parquet}", "--format",
      "labelbox-ndjson"], "cannot read it as labelbox-ndjson"),
    (["--ground-truth", "{dir}/nothing*.parquet", "--predictions", "{pd_parquet}"],
     "the pattern matches no file"),
    (["--ground-truth", "{dir}", "--predictions", "{pd_parquet}"],
     "directories and globs are read as Parquet"),
])
def test_input_errors_are_one_line(data, tmp_path, capsys, args, message):
    names = {k: str(v) for k, v in data.items() if isinstance(v, Path)}
    names.update(gt_parquet=str(data["dir"] / "gt.parquet"),
                 pd_parquet=str(data["dir"] / "pd.parquet"))
    argv = [a.format(**names) for a in args]
    assert cli.main(["evaluate", *argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert err.count("\n") == 1 and err.startswith("polars-metrics: error: ")
    assert "Traceback" not in err


def test_data_rows_from_a_labelbox_export_and_by(data, tmp_path):
    """--data-rows takes an export's data rows (here the by column comes from Parquet)."""
    meta = data["gt"].select("data_row", "split").unique()
    meta.write_parquet(tmp_path / "meta.parquet")
    out = run(tmp_path, "--ground-truth", str(data["export"]),
              "--predictions", str(data["pd_ndjson"]), "--data-rows", str(tmp_path / "meta.parquet"),
              "--by", "split")
    ev = pm.evaluate(data["gt"].drop("split"), data["pd"].drop("split"), data_rows=meta, by="split",
                     confidence_thresholds=CONF, iou_thresholds=IOU)
    got = cube(out).sort("split", "feature", "confidence_threshold", "iou_threshold")
    want = ev.cube.sort("split", "feature", "confidence_threshold", "iou_threshold")
    assert_frame_equal(got.select("split", "feature", "tp", "fp", "fn"),
                       want.select("split", "feature", "tp", "fp", "fn"))
    # an export as --data-rows: its data rows, with the media size
    out2 = run(tmp_path / "b", "--ground-truth", str(data["gt_ndjson"]),
               "--predictions", str(data["pd_ndjson"]), "--data-rows", str(data["export"]))
    assert_same_cube(cube(out2), expected(data).cube)


def test_coco_segmentations_do_not_zero_the_metrics(data, tmp_path, capsys):
    """COCO ground truths with polygons read as masks; box results must still pair with them
    (the first-use trap: all-zero metrics) — the command compares boxes unless --iou-type segm."""
    doc = json.loads(data["coco_gt"].read_text())
    for ann in doc["annotations"]:
        x, y, w, h = ann["bbox"]
        ann["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    path = tmp_path / "instances_segm.json"
    path.write_text(json.dumps(doc))
    gt, _ = pm.read_coco(path, iou_type="segm")
    assert set(gt["kind"].drop_nulls()) == {"mask"}  # what the reader gives for segm
    gt, _ = pm.read_coco(path)
    assert set(gt["kind"].drop_nulls()) == {"box"}  # and by default (iou_type="bbox")
    out = run(tmp_path, "--ground-truth", str(path), "--predictions", str(data["coco_pd"]))
    assert_same_cube(cube(out), expected(data).cube)
    capsys.readouterr()
    assert cli.main(["evaluate", "--ground-truth", str(path), "--predictions",
                     str(data["coco_pd"]), "--out", str(tmp_path / "o2"), "--iou-type", "segm"]) == 2
    err = capsys.readouterr().err
    assert "--iou-type segm: the predictions (" in err and "use --iou-type bbox" in err
