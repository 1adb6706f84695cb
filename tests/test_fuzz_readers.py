"""Byte-level mutations of valid files through the readers: ``read_coco`` (its typed scanners
against the generic msgspec / ``json`` reader) and ``read_labelbox_ndjson`` followed by
``pm.evaluate``. Every mutated input must end in the library's own error, a reject, or a
result — never a raw Python / numpy / polars error or a crash — and the COCO scanners must give
exactly the generic reader's frames or its error message.

The mutations (truncations, replaced / inserted / deleted bytes, repeated slices, oversized or
odd numbers such as ``1e400`` and ``99999999999999999999``) are drawn from a fixed seed, so a
failure names a reproducible case. The loop runs in a fresh interpreter (this file run as a
script): a segfault in a compiled scanner fails the test by return code.
"""
from __future__ import annotations

import base64
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BYTES = b'{}[]",:0123456789.eE+-\\ntrufalsl \t\n\x00\xff'
ODD_NUMBERS = [b"1e400", b"-0", b"99999999999999999999", b"1.0000000000000000000001", b"NaN",
               b"Infinity", b"4294967296", b"-1", b"2147483648", b"1e-400", b"null", b"[]", b"{}"]


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to three random edits of ``data``."""
    b = bytearray(data)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        op, i = rng.randrange(6), rng.randrange(len(b) + 1)
        if op == 0 and b:
            del b[i:]
        elif op == 1 and b:
            b[min(i, len(b) - 1)] = rng.choice(BYTES)
        elif op == 2:
            b[i:i] = bytes([rng.choice(BYTES)])
        elif op == 3 and b:
            del b[min(i, len(b) - 1)]
        elif op == 4 and b:
            j = rng.randrange(len(b))
            b[i:i] = b[j:j + rng.randrange(1, 40)]
        elif op == 5:
            b[i:i] = rng.choice(ODD_NUMBERS)
    return bytes(b)


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
         "iscrowd": 0, "segmentation": {"size": [20, 30], "counts": "0j01N2"}},
    ],
}
COCO_RESULTS = [
    {"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4.5], "score": 0.9,
     "segmentation": {"size": [20, 30], "counts": "52Ob0"}},
    {"image_id": 2, "category_id": 7, "bbox": [1e-3, 2, 3, 4], "score": 0.25,
     "segmentation": {"size": [20, 30], "counts": "0j01N2"}},
    {"image_id": 3, "category_id": 7, "bbox": [0, 0, 10, 10], "score": 1},
]


def _outcome(fn):
    import polars_metrics as pm

    try:
        return "ok", fn()
    except pm.errors.PolarsMetricsError as e:
        return "error", f"{type(e).__name__}: {e}"
    except Exception:  # a raw error: a finding
        return "raw", traceback.format_exc()[-1500:]


def fuzz_coco(seed: int, n: int, which: str) -> list[dict]:
    """Read ``n`` mutated gt or results files with the scanners and with the generic reader."""
    from polars.testing import assert_frame_equal

    import polars_metrics as pm
    from polars_metrics.io.coco import gt as gt_reader
    from polars_metrics.io.coco import results as results_reader

    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp())
    findings = []
    for case in range(n):
        gt, res = json.dumps(COCO_GT).encode(), json.dumps(COCO_RESULTS).encode()
        gt, res = (mutate(rng, gt), res) if which == "gt" else (gt, mutate(rng, res))
        (tmp / "gt.json").write_bytes(gt)
        (tmp / "res.json").write_bytes(res)
        iou_type = rng.choice(["bbox", "segm"])

        def read(iou_type=iou_type):
            return pm.read_coco(tmp / "gt.json", tmp / "res.json", iou_type=iou_type)

        scanned = _outcome(read)
        scanners = gt_reader.scan_gt, results_reader.scan_results
        gt_reader.scan_gt = results_reader.scan_results = lambda path: None
        try:
            generic = _outcome(read)
        finally:
            gt_reader.scan_gt, results_reader.scan_results = scanners
        problem = None
        if "raw" in (scanned[0], generic[0]):
            problem = "raw error"
        elif scanned[0] != generic[0] or (scanned[0] == "error" and scanned[1] != generic[1]):
            problem = "scanner and generic reader disagree"
        elif scanned[0] == "ok":
            try:
                for a, b in zip(scanned[1], generic[1], strict=True):
                    assert_frame_equal(a, b)
            except AssertionError as e:
                problem, scanned = "frames differ", ("ok", str(e)[:800])
        if problem:
            findings.append({"case": case, "problem": problem, "iou_type": iou_type,
                             "input": (gt if which == "gt" else res)[:600].decode("latin-1"),
                             "scanner": str(scanned[1])[:1500], "generic": str(generic[1])[:1500]})
    return findings


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


def fuzz_ndjson(seed: int, n: int) -> list[dict]:
    """Read ``n`` NDJSON documents with one mutated line (raise and drop), evaluate what drop
    keeps against itself, and build the frames."""
    import polars as pl

    import polars_metrics as pm

    rng = random.Random(seed)
    base = [json.dumps(line).encode() for line in ndjson_lines()]
    findings = []
    for case in range(n):
        lines = list(base)
        k = rng.randrange(len(lines))
        lines[k] = mutate(rng, lines[k])
        for on_invalid in ("raise", "drop"):
            def run(on_invalid=on_invalid, lines=lines):
                out = pm.read_labelbox_ndjson(lines, role="ground_truth", allow_rle_masks=True,
                                              global_key_map={"g3": "d3"}, on_invalid=on_invalid)
                frame = out[0] if isinstance(out, tuple) else out
                if on_invalid == "drop":
                    pd = frame if "confidence" in frame.columns else frame.with_columns(
                        confidence=pl.lit(0.5))
                    ev = pm.evaluate(frame, pd, on_invalid="drop")
                    return ev.cube.height, ev.confusion.height, ev.data_rows.height
                return frame.height

            got = _outcome(run)
            if got[0] == "raw":
                findings.append({"case": case, "on_invalid": on_invalid,
                                 "line": lines[k][:600].decode("latin-1"), "error": got[1]})
    return findings


def _run(*args: str) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, __file__, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (
        f"the process failed (return code {proc.returncode}; < 0 or 134/139: a crash)\n"
        f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.parametrize("which", ["gt", "results"])
def test_mutated_coco_files_read_like_the_generic_reader(which):
    findings = _run("coco", "20261204", "600", which)
    assert not findings, json.dumps(findings[:3], indent=1)


def test_mutated_ndjson_lines_end_in_library_errors_or_results():
    findings = _run("ndjson", "20261204", "400")
    assert not findings, json.dumps(findings[:3], indent=1)


if __name__ == "__main__":  # the loop of one test, in its own interpreter
    warnings.simplefilter("ignore")
    what, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    found = (fuzz_coco(seed, count, sys.argv[4]) if what == "coco" else fuzz_ndjson(seed, count))
    print(json.dumps(found))
