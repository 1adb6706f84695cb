"""Peers' own test cases, ported as frames (issue 10): torchmetrics' / detectron2's / pycocotools'
COCO hand cases (compared with pycocotools run here), valor-lite's confusion-matrix cases under
its rule set. The Labelbox SDK's metric fixtures are in tests/test_labelbox_sdk_fixtures.py."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import polars as pl
import pytest

import polars_metrics as pm

pycoco = pytest.importorskip("pycocotools.coco")
cocoeval = pytest.importorskip("pycocotools.cocoeval")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# after torchmetrics' MeanAveragePrecision test inputs (tests/unittests/detection/test_map.py,
# ``_inputs``: four COCO images, xyxy boxes), transcribed from memory, not from the file: the
# reference is pycocotools run here, not torchmetrics' published numbers
TM_PREDS = [
    ([[258.15, 41.29, 606.41, 285.07]], [0.236], [4]),
    ([[61.00, 22.75, 565.00, 632.42], [12.66, 3.32, 281.26, 275.23]], [0.318, 0.726], [3, 2]),
    ([[87.87, 276.25, 384.29, 379.43], [0.00, 3.66, 142.15, 316.06], [296.55, 93.96, 314.97, 152.79],
      [328.94, 97.05, 342.49, 122.98], [356.62, 95.47, 372.33, 147.55], [464.08, 105.09, 495.74, 146.99],
      [276.11, 103.84, 291.44, 150.72]], [0.546, 0.3, 0.407, 0.611, 0.335, 0.805, 0.953], [4, 1, 0, 0, 0, 0, 0]),
    ([[72.92, 45.96, 91.23, 80.57], [45.17, 45.34, 66.28, 79.83], [82.28, 47.04, 99.66, 78.50],
      [59.96, 46.17, 80.35, 80.48], [75.29, 23.01, 91.85, 50.85], [71.14, 1.10, 96.96, 28.33],
      [61.34, 55.23, 77.14, 79.57], [41.17, 45.78, 60.99, 78.48], [56.18, 44.80, 64.42, 56.25]],
     [0.532, 0.204, 0.782, 0.202, 0.883, 0.271, 0.561, 0.204, 0.349], [49] * 9),
]
TM_TARGETS = [
    ([[214.15, 41.29, 562.41, 285.07]], [4]),
    ([[13.00, 22.75, 548.98, 632.42], [1.66, 3.32, 270.26, 275.23]], [2, 2]),
    ([[61.87, 276.25, 358.29, 379.43], [2.75, 3.66, 162.15, 316.06], [295.55, 93.96, 313.97, 152.79],
      [326.94, 97.05, 340.49, 122.98], [356.62, 95.47, 372.33, 147.55], [462.08, 105.09, 493.74, 146.99],
      [277.11, 103.84, 292.44, 150.72]], [4, 1, 0, 0, 0, 0, 0]),
    ([[72.92, 45.96, 91.23, 80.57], [50.17, 45.34, 71.28, 79.83], [81.28, 47.04, 98.66, 78.50],
      [63.96, 46.17, 84.35, 80.48], [75.29, 23.01, 91.85, 50.85], [56.39, 21.65, 75.66, 45.54],
      [73.14, 1.10, 98.96, 28.33], [62.34, 55.23, 78.14, 79.57], [44.17, 45.78, 63.99, 78.48],
      [58.18, 44.80, 66.42, 56.25]], [49] * 10),
]


def _xywh(b):
    return [b[0], b[1], b[2] - b[0], b[3] - b[1]]


def coco_json(targets, preds, *, categories=None, size=1000):
    """COCO dicts from per-image (boxes, labels) targets and (boxes, scores, labels) preds."""
    cats = sorted(categories or {c for _, labels in targets for c in labels}
                  | {c for _, _, labels in preds for c in labels})
    anns, dets = [], []
    for img, (boxes, labels) in enumerate(targets, start=1):
        for b, c in zip(boxes, labels, strict=True):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append({"id": len(anns) + 1, "image_id": img, "category_id": c, "bbox": _xywh(b),
                         "area": w * h, "iscrowd": 0})
    for img, (boxes, scores, labels) in enumerate(preds, start=1):
        for b, s, c in zip(boxes, scores, labels, strict=True):
            dets.append({"image_id": img, "category_id": c, "bbox": _xywh(b), "score": s})
    gt = {"images": [{"id": i, "height": size, "width": size} for i in range(1, max(len(targets), len(preds)) + 1)],
          "annotations": anns, "categories": [{"id": c, "name": f"c{c}"} for c in cats]}
    return gt, dets


def pycocotools_stats(gt: dict, dets: list, iou_type="bbox") -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        cg = pycoco.COCO()
        cg.dataset = gt
        cg.createIndex()
        cd = cg.loadRes(dets) if dets else pycoco.COCO()
        if not dets:
            cd.dataset = {"images": gt["images"], "annotations": [], "categories": gt["categories"]}
            cd.createIndex()
        ev = cocoeval.COCOeval(cg, cd, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats)


def ours(gt: dict, dets: list, iou_type="bbox") -> np.ndarray:
    g, p = pm.read_coco(gt, dets, iou_type=iou_type)
    return np.asarray(pm.evaluate(g, p, profile="coco", iou_type=iou_type).coco.stats)


def test_torchmetrics_map_inputs_equal_pycocotools():
    gt, dets = coco_json(TM_TARGETS, TM_PREDS)
    want = pycocotools_stats(gt, dets)
    assert 0 < want[0] < 1 and (want[:3] > 0).all()  # a case with partial credit, not a trivial one
    np.testing.assert_allclose(ours(gt, dets), want, atol=1e-12, rtol=0)


CASES = {
    # torchmetrics test_empty_preds: ground truth, no predictions -> AP 0 where gt exists
    "empty_preds": ([([[214.0, 41.0, 562.0, 285.0]], [4])], [([], [], [])]),
    # torchmetrics test_empty_ground_truths / missing gt: predictions only -> every stat -1
    "empty_ground_truths": ([([], [])], [([[214.0, 41.0, 562.0, 285.0]], [0.5], [4])]),
    # torchmetrics issue 1184: one image with gt, one with a prediction only (false positive)
    "missing_gt_image": ([([[10.0, 20.0, 15.0, 25.0]], [0]), ([], [])],
                         [([[10.0, 20.0, 15.0, 25.0]], [0.9], [0]), ([[10.0, 20.0, 15.0, 25.0]], [0.95], [0])]),
    # chainercv / detectron2 single-class case: the better box scores lower
    "higher_score_worse_box": ([([[0.0, 0.0, 10.0, 9.0]], [0])],
                               [([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 20.0, 20.0]], [0.8, 0.9], [0, 0])]),
    # a duplicate detection of one object: one TP, one FP
    "duplicate_detection": ([([[0.0, 0.0, 50.0, 50.0]], [1])],
                            [([[0.0, 0.0, 50.0, 50.0], [1.0, 1.0, 50.0, 50.0]], [0.9, 0.8], [1, 1])]),
    # a detection of a category that has no ground truth on the image
    "wrong_category": ([([[0.0, 0.0, 50.0, 50.0]], [1])], [([[0.0, 0.0, 50.0, 50.0]], [0.9], [2])]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_peer_coco_hand_cases_equal_pycocotools(case):
    targets, preds = CASES[case]
    gt, dets = coco_json(targets, preds, categories={0, 1, 2, 4})
    np.testing.assert_allclose(ours(gt, dets), pycocotools_stats(gt, dets), atol=1e-12, rtol=0)


def test_zero_ground_truths_segm_gives_minus_one_like_pycocotools():
    """Peers' suites: iou_type="segm" with no ground-truth annotation (pycocotools: 12 x -1)."""
    gt = {"images": [{"id": 1, "height": 10, "width": 10}], "annotations": [],
          "categories": [{"id": 1, "name": "c1"}]}
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(np.pad(np.ones((2, 2), np.uint8), ((0, 8), (0, 8)))))
    rle["counts"] = rle["counts"].decode()
    dets = [{"image_id": 1, "category_id": 1, "score": 0.5, "segmentation": rle}]
    want = pycocotools_stats(gt, dets, "segm")
    assert (want == -1).all()
    # pycocotools' loadRes has stored its toBbox() numpy array into dets[0]["bbox"]: the reader
    # takes such results as they are
    assert isinstance(dets[0]["bbox"], np.ndarray)
    np.testing.assert_array_equal(ours(gt, dets, "segm"), want)


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_a_ground_truth_without_categories_gives_minus_one_like_pycocotools(tmp_path, iou_type):
    """A file whose ``categories`` list is empty: pycocotools evaluates no category and reports
    12 x -1. Before, the COCO profile's tables failed with numpy's "cannot reshape array of size
    0"; now the stats equal pycocotools' and the tables are empty (the data-row table still
    lists every image). pycocotools scores the detection of an unknown category nowhere; our
    reader sets it aside as a reject."""
    gt, dets = coco_json([([[0.0, 0.0, 10.0, 10.0]], [1])], [([[0.0, 0.0, 10.0, 10.0]], [0.9], [1])])
    gt["categories"], gt["annotations"] = [], []
    for det in dets:
        det["segmentation"] = [[0, 0, 10, 0, 10, 10, 0, 10]]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(dets))
    want = pycocotools_stats(gt, dets, iou_type)  # (its loadRes rewrites dets in place)
    g, p, rejects = pm.read_coco(tmp_path / "gt.json", tmp_path / "res.json", iou_type=iou_type,
                                 on_invalid="drop")  # the detection's category is not in the file
    assert rejects.select("table", "row", "column").rows() == [("results", 0, "category_id")]
    ev = pm.evaluate(g, p, profile="coco", iou_type=iou_type)
    np.testing.assert_array_equal(ev.coco.stats, want)
    assert (want == -1).all()
    assert ev.cube.height == ev.confusion.height == 0
    assert ev.data_rows["data_row"].unique().to_list() == [1]


# --- valor-lite's confusion-matrix cases under its rule set ------------------------------------
VALOR = dict(greedy_order="score", class_aware=False, iou_strict=False, rows="all")


def _frames(gts, pds):
    gt = pl.DataFrame([{"data_row": r, "feature": f, "bbox": [float(v) for v in b], "id": i}
                       for i, (r, f, b) in enumerate(gts)],
                      schema={"data_row": pl.String, "feature": pl.String,
                              "bbox": pl.Array(pl.Float64, 4), "id": pl.Int64}, orient="row")
    pd = pl.DataFrame([{"data_row": r, "feature": f, "bbox": [float(v) for v in b], "id": i, "confidence": c}
                       for i, (r, f, b, c) in enumerate(pds)],
                      schema={"data_row": pl.String, "feature": pl.String, "bbox": pl.Array(pl.Float64, 4),
                              "id": pl.Int64, "confidence": pl.Float64}, orient="row")
    return gt, pd


def valor_cells(gt, pd, scores, ious):
    from valor_lite.object_detection import BoundingBox, Detection, Loader

    def box(rec, scored):
        x0, y0, x1, y1 = rec["bbox"]
        return BoundingBox(uid=str(rec["id"]), xmin=x0, xmax=x1, ymin=y0, ymax=y1, labels=[rec["feature"]],
                           scores=[rec["confidence"]] if scored else [])

    keys = sorted(set(gt["data_row"].to_list()) | set(pd["data_row"].to_list()))
    loader = Loader.in_memory()
    loader.add_bounding_boxes([Detection(
        uid=k, groundtruths=[box(r, False) for r in gt.filter(data_row=k).to_dicts()],
        predictions=[box(r, True) for r in pd.filter(data_row=k).to_dicts()]) for k in keys])
    out = set()
    for m in loader.finalize().compute_confusion_matrix(iou_thresholds=ious, score_thresholds=scores):
        c, t, v = m.parameters["score_threshold"], m.parameters["iou_threshold"], m.value
        out |= {(c, t, g, p, n) for g, row in v["confusion_matrix"].items() for p, n in row.items() if n}
        out |= {(c, t, g, None, n) for g, n in v["unmatched_ground_truths"].items() if n}
        out |= {(c, t, None, p, n) for p, n in v["unmatched_predictions"].items() if n}
    return out


# cases in the shape of valor-lite's confusion-matrix tests (datums "uid1"..., labels "v1"...;
# written here, not copied from its suite, which is not installed), judged by valor-lite itself
# run above; only cases where matching once before the thresholds (valor-lite) and per
# threshold (the engine) choose the same pairs
VALOR_CASES = {
    # test_confusion_matrix "basic": two ground truths, predictions with a swapped label
    "basic": ([("uid1", "v1", (0, 0, 10, 10)), ("uid1", "v2", (20, 20, 30, 30))],
              [("uid1", "v1", (0, 0, 10, 10), 0.9), ("uid1", "v1", (20, 20, 30, 30), 0.7)]),
    # unmatched prediction and unmatched ground truth on separate datums
    "unmatched": ([("uid1", "v1", (0, 0, 10, 10))], [("uid2", "v1", (0, 0, 10, 10), 0.5)]),
    # a prediction with low IoU: matched below the IoU threshold only
    "low_iou": ([("uid1", "v1", (0, 0, 10, 10))], [("uid1", "v1", (0, 0, 10, 3), 0.8)]),
    # score thresholds cut predictions out of the walk
    "score_cut": ([("uid1", "v1", (0, 0, 10, 10)), ("uid1", "v2", (50, 50, 60, 60))],
                  [("uid1", "v2", (0, 0, 10, 10), 0.3), ("uid1", "v2", (50, 50, 60, 60), 0.95)]),
}


@pytest.mark.parametrize("case", sorted(VALOR_CASES))
def test_valor_lite_confusion_matrix_cases(case):
    gt, pd = _frames(*VALOR_CASES[case])
    scores, ious = [0.25, 0.5, 0.75], [0.1, 0.5, 0.75]
    ev = pm.evaluate(gt, pd, confidence_thresholds=scores, iou_thresholds=ious, **VALOR)
    mine = {tuple(r) for r in ev.confusion.select("confidence_threshold", "iou_threshold", "gt_feature",
                                                   "pd_feature", "count").rows() if r[-1]}
    assert mine == valor_cells(gt, pd, scores, ious)
