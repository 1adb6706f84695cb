"""Every reader returns the frame schema stated once in ``polars_metrics.io.frames``."""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

import polars_metrics as pm
from polars_metrics._rejects import REJECTS_SCHEMA
from polars_metrics.io import frames as F

GT = {
    "images": [{"id": 1, "height": 4, "width": 4}, {"id": 2, "height": 4, "width": 4}],
    "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "area": 4},
        {"id": 2, "image_id": 1, "category_id": 2, "segmentation": [[0, 0, 3, 0, 3, 3, 0, 3]],
         "iscrowd": 0},
        {"id": 3, "image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1]},  # unknown image
    ],
}
BOXES = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "score": 0.9}]
SEGMS = [{"image_id": 1, "category_id": 2, "score": 0.8,
          "segmentation": {"size": [4, 4], "counts": '53103'}}]


def _check(frame: pl.DataFrame, schema: F.FrameSchema) -> None:
    assert F.check_frame(frame, schema) is frame
    assert frame.columns == schema.columns(frame.columns)


@pytest.mark.parametrize("results", [None, BOXES, SEGMS, "file"])
def test_read_coco_returns_the_coco_schema(results, tmp_path):
    if results == "file":
        path = tmp_path / "results.json"
        path.write_text(json.dumps(BOXES))
        results = path
    gt, pd, rejects = pm.read_coco(GT, results, on_invalid="drop")
    _check(gt, F.COCO_GT)
    _check(pd, F.COCO_PD)
    assert dict(rejects.schema) == REJECTS_SCHEMA
    assert rejects.select("table", "row", "data_row", "id").rows() == [("annotations", 2, "9", "3")]


def test_read_coco_library_layout_round_trip():
    gt, pd = pm.read_coco({**GT, "annotations": GT["annotations"][:2]}, SEGMS)
    again = pm.read_coco({**GT, "annotations": GT["annotations"][:2]}, pd)[1]
    _check(again, F.COCO_PD)
    assert again[F.s.MASK].to_list() == pd[F.s.MASK].to_list()


def test_labelbox_readers_return_the_labelbox_schema():
    line = json.dumps({"dataRow": {"id": "dr1"}, "name": "car", "uuid": "a", "confidence": 0.9,
                       "bbox": {"top": 0, "left": 0, "height": 2, "width": 2}})
    bad = json.dumps({"dataRow": {"id": "dr1"}, "name": "car", "uuid": "b", "bbox": {"top": 0}})
    frame, rejects = pm.read_labelbox_ndjson([line, bad], on_invalid="drop")
    _check(frame, F.LABELBOX)
    assert dict(rejects.schema) == REJECTS_SCHEMA
    export = pm.read_labelbox_export([json.dumps({
        "data_row": {"id": "dr1"}, "media_attributes": {"height": 4, "width": 4},
        "projects": {"p1": {"labels": [{"id": "l1", "annotations": {"objects": [{
            "feature_id": "f1", "name": "car", "annotation_kind": "ImageBoundingBox",
            "bounding_box": {"top": 0, "left": 0, "height": 2, "width": 2},
            "classifications": []}], "classifications": []}}]}}})])
    _check(export.ground_truth, F.LABELBOX)
    _check(export.predictions, F.LABELBOX)


def test_check_frame_names_the_drift():
    frame = pl.DataFrame(schema={c: (pl.Enum([]) if d is pl.Enum else d)
                                 for c, d in F.COCO_GT.required.items()})
    with pytest.raises(RuntimeError, match="id: String"):
        F.check_frame(frame.with_columns(pl.col("id").cast(pl.String)), F.COCO_GT)
    np.testing.assert_equal(F.check_frame(frame, F.COCO_GT).height, 0)
