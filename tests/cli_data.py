"""Small input files for the CLI tests: one synthetic evaluation written in every input format.

The frames come from ``pm.synthetic.detections``; each writer turns them into a file of one
format (COCO instances + results, Labelbox import NDJSON, Labelbox export) so that a test can
check that reading the file through the command gives the numbers ``pm.evaluate`` gives on the
original frames.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

import polars_metrics as pm

COUNTS = ["tp", "fp", "fn"]
RATIOS = ["precision", "recall", "f1", "iou"]
GRID = ["--confidence-thresholds", "0,0.3,0.5,0.8", "--iou-thresholds", "0.3,0.5,0.7"]
CONF, IOU = [0, 0.3, 0.5, 0.8], [0.3, 0.5, 0.7]


def frames(n_images: int = 40, n_classes: int = 5, seed: int = 7):
    return pm.synthetic.detections(n_images=n_images, n_classes=n_classes, seed=seed)


def image_ids(gt: pl.DataFrame, pd: pl.DataFrame) -> dict[str, int]:
    names = sorted(set(gt["data_row"]) | set(pd["data_row"]))
    return {name: i + 1 for i, name in enumerate(names)}


def write_coco(gt: pl.DataFrame, pd: pl.DataFrame, directory: Path) -> tuple[Path, Path]:
    """COCO instances JSON (every image listed) and a results JSON by ``pm.write_coco_results``."""
    ids = image_ids(gt, pd)
    cats = {name: i + 1 for i, name in enumerate(sorted(set(gt["feature"]) | set(pd["feature"])))}
    anns = []
    for row in gt.iter_rows(named=True):
        x0, y0, x1, y1 = row["bbox"]
        anns.append({"id": len(anns) + 1, "image_id": ids[row["data_row"]],
                     "category_id": cats[row["feature"]], "bbox": [x0, y0, x1 - x0, y1 - y0],
                     "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    doc = {"info": {"description": "cli test"},
           "images": [{"id": i, "height": 480, "width": 640, "file_name": f"{n}.jpg"}
                      for n, i in ids.items()],
           "categories": [{"id": i, "name": n} for n, i in cats.items()], "annotations": anns}
    gt_path, pd_path = directory / "instances.json", directory / "results.json"
    gt_path.write_text(json.dumps(doc))
    res = pd.with_columns(pl.col("data_row").replace_strict(ids).alias("data_row"),
                          pl.col("feature").replace_strict(cats).alias("category_id"))
    pm.write_coco_results(res, pd_path)
    return gt_path, pd_path


def _box(bbox) -> dict:
    x0, y0, x1, y1 = bbox
    return {"top": y0, "left": x0, "height": y1 - y0, "width": x1 - x0}


def ndjson_lines(frame: pl.DataFrame, *, global_key: bool = False) -> list[str]:
    """Labelbox import NDJSON: one box a line (``dataRow.globalKey`` when ``global_key``)."""
    lines = []
    for row in frame.iter_rows(named=True):
        rec = {"uuid": f"{row['data_row']}-{row['id']}",
               "dataRow": {"globalKey": f"{row['data_row']}.jpg"} if global_key
               else {"id": row["data_row"]},
               "name": row["feature"], "bbox": _box(row["bbox"])}
        if "confidence" in row:
            rec["confidence"] = row["confidence"]
        lines.append(json.dumps(rec))
    return lines


def export_lines(gt: pl.DataFrame, *, unlabeled: tuple[str, ...] = ()) -> list[str]:
    """Labelbox project export: one data row a line, its label's boxes as objects."""
    lines = []
    for (name,), rows in gt.group_by(["data_row"], maintain_order=True):
        objects = [{"feature_id": f"{name}-{r['id']}", "feature_schema_id": "s" + r["feature"],
                    "name": r["feature"], "value": r["feature"],
                    "annotation_kind": "ImageBoundingBox", "bounding_box": _box(r["bbox"]),
                    "classifications": []} for r in rows.iter_rows(named=True)]
        label = {"id": f"label-{name}", "annotations": {"objects": objects, "classifications": [],
                                                         "relationships": []}}
        lines.append(json.dumps({"data_row": {"id": name, "global_key": f"{name}.jpg"},
                                 "media_attributes": {"height": 480, "width": 640},
                                 "projects": {"p1": {"name": "demo", "labels": [label]}}}))
    for name in unlabeled:
        lines.append(json.dumps({"data_row": {"id": name, "global_key": f"{name}.jpg"},
                                 "projects": {}}))
    return lines


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def per_feature(cube: pl.DataFrame) -> pl.DataFrame:
    cols = ["feature", "confidence_threshold", "iou_threshold", *COUNTS, *RATIOS]
    return (cube.with_columns(pl.col("feature").cast(pl.String))
            .select(cols).sort("feature", "confidence_threshold", "iou_threshold"))


def assert_same_cube(got: pl.DataFrame, expected: pl.DataFrame) -> None:
    """Counts exactly; ratios to 1e-9 (a format's x, y, w, h round trip moves the last bits)."""
    got, expected = per_feature(got), per_feature(expected)
    assert_frame_equal(got.drop(RATIOS), expected.drop(RATIOS), check_dtypes=False)
    assert_frame_equal(got.select(RATIOS), expected.select(RATIOS), check_exact=False,
                       rel_tol=1e-9, abs_tol=1e-9)


def subprocess_env() -> dict[str, str]:
    """A subprocess imports the package under test (this worktree), not an installed copy."""
    root = str(Path(pm.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p)}


def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "polars_metrics.cli", *args],
                          env=subprocess_env(), timeout=900, **kwargs)
