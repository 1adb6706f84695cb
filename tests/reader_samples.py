"""Small valid documents of every input format the readers take (COCO gt and results, the
Labelbox import NDJSON, project and model-run exports), and the helpers the reader fuzz tests
share: an outcome classifier and a runner that executes a test module's loop in a fresh
interpreter (a crash in a compiled kernel fails by return code, not the test runner)."""
from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# valid documents (the RLE strings are pycocotools' encodings of 20 x 30 masks): every
# mutation starts from an input that reads and evaluates
COCO_GT = {
    "info": {"description": "fuzz"},
    "images": [{"id": i, "height": 20, "width": 30, "file_name": f"{i}.jpg"} for i in (1, 2, 3)],
    "categories": [{"id": 1, "name": "a", "supercategory": "s"}, {"id": 7, "name": "b"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "area": 12, "iscrowd": 0,
         "segmentation": [[1, 2, 4, 2, 4, 6, 1, 6]]},
        {"id": 2, "image_id": 2, "category_id": 7, "bbox": [1.5, 2.25, 3e0, 4], "area": 12.5,
         "iscrowd": 1, "segmentation": {"size": [20, 30], "counts": [5, 10, 585]}},
        {"id": 3, "image_id": 3, "category_id": 7, "bbox": [0, 0, 10, 10], "area": 100,
         "iscrowd": 0, "segmentation": {"size": [20, 30], "counts": "n16>000000000R="}},
    ],
}
COCO_RESULTS = [
    {"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4.5], "score": 0.9,
     "segmentation": [[1, 2, 4, 2, 4, 6, 1, 6]]},
    {"image_id": 2, "category_id": 7, "bbox": [1e-3, 2, 3, 4], "score": 0.25,
     "segmentation": {"size": [20, 30], "counts": "5:Yb0"}},
    {"image_id": 3, "category_id": 7, "bbox": [0, 0, 10, 10], "score": 1},
]


def outcome(fn):
    import polars_metrics as pm

    try:
        return "ok", fn()
    except pm.errors.PolarsMetricsError as e:
        return "error", f"{type(e).__name__}: {e}"
    except Exception:  # a raw error: a finding
        return "raw", traceback.format_exc()[-1500:]


def _png() -> str:
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.arange(12).reshape(3, 4) % 2 * 255).astype(np.uint8)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def ndjson_lines() -> list[dict]:
    """One line of every kind the import NDJSON has (LABELBOX_FORMATS.md)."""
    return [
        {"dataRow": {"id": "d1"}, "name": "car", "confidence": 0.9,
         "bbox": {"top": 1, "left": 2, "height": 3, "width": 4}},
        {"dataRow": {"id": "d1"}, "name": "car", "bbox": {"top": 1.5, "left": 2, "height": 3, "width": 4},
         "classifications": [{"name": "color", "answer": {"name": "red", "confidence": 0.4}}]},
        {"dataRow": {"id": "d1"}, "name": "pond",
         "polygon": [{"x": 1, "y": 2}, {"x": 5, "y": 2}, {"x": 5, "y": 7}]},
        {"dataRow": {"id": "d2"}, "name": "pin", "point": {"x": 1, "y": 2}},
        {"dataRow": {"id": "d2"}, "name": "road", "line": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]},
        {"dataRow": {"globalKey": "g3"}, "name": "person", "location": {"start": 3, "end": 9}},
        {"dataRow": {"id": "d2"}, "name": "weather", "answer": {"name": "sunny"}},
        {"dataRow": {"id": "d2"}, "name": "tags", "answer": [{"name": "a"}, {"name": "b", "confidence": 0.2}]},
        {"dataRow": {"id": "d2"}, "name": "caption", "answer": "a cat"},
        {"dataRow": {"id": "d2"}, "name": "blob", "mask": {"png": _png()}},
        {"dataRow": {"id": "d2"}, "name": "blob2", "mask": {"size": [3, 4], "counts": [1, 2, 3, 6]}},
    ]


def _export_object(fid: str, name: str, kind: str, **geometry) -> dict:
    return {"feature_id": fid, "feature_schema_id": "s" + fid, "name": name, "value": name,
            "annotation_kind": kind, "classifications": [], **geometry}


def export_records() -> list[dict]:
    """Three data rows of a project export (LABELBOX_FORMATS.md): every object and
    classification kind, a label with two objects, and a data row without labels."""
    radio = {"feature_id": "r", "feature_schema_id": "s", "name": "weather", "value": "weather",
             "radio_answer": {"feature_id": "a", "feature_schema_id": "t", "name": "sunny",
                              "value": "sunny", "classifications": []}}
    checklist = {"feature_id": "c", "name": "tags", "checklist_answers": [{"feature_id": "o", "name": "in"}]}
    text = {"feature_id": "x", "name": "caption", "text_answer": {"content": "a red car"}}
    objects = [
        _export_object("f1", "car", "ImageBoundingBox", classifications=[radio],
                       bounding_box={"top": 20.0, "left": 10.0, "height": 40.0, "width": 30.0}),
        _export_object("f2", "roof", "ImagePolygon",
                       polygon=[{"x": 0.0, "y": 0.0}, {"x": 4.0, "y": 0.0}, {"x": 4.0, "y": 4.0}]),
        _export_object("f3", "lane", "ImagePolyline", line=[{"x": 0.0, "y": 0.0}, {"x": 1.0, "y": 1.0}]),
        _export_object("f4", "nose", "ImagePoint", point={"x": 1.0, "y": 2.0}),
        _export_object("f5", "person", "TextEntity", location={"start": 1, "end": 4, "token": "abcd"}),
        _export_object("f6", "person", "ConversationalTextEntity",
                       conversational_location={"message_id": "m", "location": {"start": 0, "end": 3}}),
    ]

    def record(data_row: str, labels: list) -> dict:
        return {"data_row": {"id": data_row, "global_key": f"{data_row}.jpg"},
                "media_attributes": {"height": 480, "width": 640},
                "projects": {"p1": {"name": "demo", "labels": labels}}}

    def labelled(label_id: str, objects: list, classifications: list) -> dict:
        return {"id": label_id, "annotations": {"objects": objects, "classifications": classifications,
                                                "relationships": []}}

    return [record("d1", [labelled("l1", objects, [radio, checklist, text])]),
            record("d2", [labelled("l2", objects[:2], [])]), record("d3", [])]


def model_run_records() -> list[dict]:
    """:func:`export_records` as a model-run export: the labels, and predictions with scores."""
    out = []
    for record in export_records():
        labels = record.pop("projects")["p1"]["labels"]
        preds = [dict(lab, annotations=dict(lab["annotations"], objects=[
            dict(o, confidence=0.5) for o in lab["annotations"]["objects"]])) for lab in labels]
        record["experiments"] = {"m1": {"name": "model", "runs": {"r1": {
            "name": "run", "labels": labels, "predictions": preds}}}}
        out.append(record)
    return out


def run_isolated(script: str, *args: str) -> list[dict]:
    """Run ``script`` (a test module) with ``args`` in a fresh interpreter; its last line of
    output is the JSON list of findings."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, script, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (
        f"the process failed (return code {proc.returncode}; < 0 or 134/139: a crash)\n"
        f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


