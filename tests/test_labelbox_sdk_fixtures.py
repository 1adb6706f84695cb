"""The Labelbox SDK's own metric test cases, as frames through ``pm.labelbox_sdk``.

The cases and their expected values are those of the SDK repository's tests
(``libs/labelbox/tests/data/metrics/``: ``confusion_matrix/conftest.py``,
``iou/feature/conftest.py``, ``iou/data_row/conftest.py``), restated here as table rows: the
same shapes, names and nested answers, the SDK's expected matrices and IoUs. No SDK object is
built; the numbers are the SDK authors'.
"""
from __future__ import annotations

import math

import pytest
from sdk_cases import SQUARE, checklist, frames, mask, obj, radio, text

import polars_metrics as pm

OBJECT_KINDS = ["polygon", "box", "mask", "line", "point", "span"]


def feature_cm(gt, pd, iou=0.5, subs=False):
    out = pm.labelbox_sdk.feature_confusion_matrix(gt, pd, iou, subs)
    return {r[1]: list(r[2:]) for r in out.rows()}


def row_cm(gt, pd, iou=0.5, subs=False):
    return [list(r[1:]) for r in pm.labelbox_sdk.confusion_matrix(gt, pd, iou, subs).rows()]


def summed(expected: dict) -> list[list[int]]:
    return [[sum(v[i] for v in expected.values()) for i in range(4)]] if expected else []


# --- confusion_matrix/conftest.py: get_object_pairs ---------------------------------------------
# (predictions, ground truths, expected with subclasses, expected without); an entry is
# (feature, nested "is_animal" answer or None)
OBJECT_CASES = [
    ([("cat", None)], [("cat", None)], {"cat": [1, 0, 0, 0]}, None),
    ([("cat", "yes")], [("cat", "yes")], {"cat": [1, 0, 0, 0]}, None),
    ([("cat", "yes")], [("cat", "no")], {"cat": [0, 1, 0, 1]}, {"cat": [1, 0, 0, 0]}),
    ([("cat", "yes"), ("cat", "no")], [("cat", "no")], {"cat": [1, 1, 0, 0]}, None),
    ([("cat", "yes"), ("dog", "no")], [("cat", "no")],
     {"cat": [0, 1, 0, 1], "dog": [0, 1, 0, 0]}, {"cat": [1, 0, 0, 0], "dog": [0, 1, 0, 0]}),
    ([("cat", None)] * 2, [("cat", None)] * 2, {"cat": [2, 0, 0, 0]}, None),
    ([("cat", None)] * 2, [("cat", None)], {"cat": [1, 1, 0, 0]}, None),
    ([("cat", None)], [("cat", None)] * 2, {"cat": [1, 0, 0, 1]}, None),
    ([], [], {}, None),
    ([], [("cat", None)], {"cat": [0, 0, 0, 1]}, None),
    ([("cat", None)], [], {"cat": [0, 1, 0, 0]}, None),
    ([("cat", None)], [("dog", None)], {"cat": [0, 1, 0, 0], "dog": [0, 0, 0, 1]}, None),
]


@pytest.mark.parametrize("kind", OBJECT_KINDS)
@pytest.mark.parametrize("case", range(len(OBJECT_CASES)))
@pytest.mark.parametrize("subs", [True, False])
def test_object_pairs(kind, case, subs):
    preds, gts, with_subs, without = OBJECT_CASES[case]
    expected = with_subs if subs else (without or with_subs)
    gt, pd = frames([obj(kind, n, sub) for n, sub in gts], [obj(kind, n, sub) for n, sub in preds],
                    like=obj(kind))
    assert feature_cm(gt, pd, subs=subs) == expected
    assert row_cm(gt, pd, subs=subs) == summed(expected)


# --- confusion_matrix/conftest.py: radio_pairs, checklist_pairs ----------------------------------
CLASSIFICATION_CASES = [
    ([radio("is_animal", "yes")], [radio("is_animal", "yes")], {"yes": [1, 0, 0, 0]}),
    ([radio("is_animal", "yes")], [radio("is_animal", "no")],
     {"no": [0, 0, 0, 1], "yes": [0, 1, 0, 0]}),
    ([radio("is_animal", "yes")], [], {"yes": [0, 1, 0, 0]}),
    ([], [radio("is_animal", "yes")], {"yes": [0, 0, 0, 1]}),
    ([radio("is_animal", "yes"), radio("is_short", "no")], [radio("is_animal", "yes")],
     {"no": [0, 1, 0, 0], "yes": [1, 0, 0, 0]}),
    ([checklist("animal_attributes", ["striped"])], [checklist("animal_attributes", ["striped"])],
     {"striped": [1, 0, 0, 0]}),
    ([checklist("animal_attributes", ["striped"])], [], {"striped": [0, 1, 0, 0]}),
    ([], [checklist("animal_attributes", ["striped"])], {"striped": [0, 0, 0, 1]}),
    ([checklist("animal_attributes", ["striped", "short"])],
     [checklist("animal_attributes", ["striped"])],
     {"short": [0, 1, 0, 0], "striped": [1, 0, 0, 0]}),
    ([checklist("animal_attributes", ["striped"])],
     [checklist("animal_attributes", ["striped", "short"])],
     {"short": [0, 0, 0, 1], "striped": [1, 0, 0, 0]}),
    ([checklist("animal_attributes", ["striped", "short", "black"])],
     [checklist("animal_attributes", ["striped", "short"])],
     {"black": [0, 1, 0, 0], "short": [1, 0, 0, 0], "striped": [1, 0, 0, 0]}),
    ([checklist("animal_attributes", ["striped", "short", "black"]),
      checklist("animal_name", ["doggy", "pup"])],
     [checklist("animal_attributes", ["striped", "short"]), checklist("animal_name", ["pup"])],
     {"black": [0, 1, 0, 0], "doggy": [0, 1, 0, 0], "pup": [1, 0, 0, 0], "short": [1, 0, 0, 0],
      "striped": [1, 0, 0, 0]}),
]


@pytest.mark.parametrize("case", range(len(CLASSIFICATION_CASES)))
def test_classification_pairs(case):
    preds, gts, expected = CLASSIFICATION_CASES[case]
    gt, pd = frames(gts, preds, like=(gts + preds)[0])
    assert feature_cm(gt, pd) == expected
    assert row_cm(gt, pd) == summed(expected)


# --- confusion_matrix/conftest.py: pair_iou_thresholds -------------------------------------------
HALF_SQUARE = [[0.0, 0], [5, 0], [5, 5], [0, 5]]
THRESHOLD_CASES = [
    (obj("polygon", polygon=[SQUARE]), obj("polygon", polygon=[HALF_SQUARE]), {0.2: 1, 0.3: 0}),
    (obj("box", bbox=[0.0, 0, 10, 10]), obj("box", bbox=[0.0, 0, 5, 5]), {0.2: 1, 0.3: 0}),
    (obj("point", point=[0.0, 0]), obj("point", point=[20.0, 20]), {0.5: 1, 0.65: 0}),
    (obj("line", line=SQUARE), obj("line", line=[[0.0, 0], [100, 0], [100, 100], [0, 100]]),
     {0.3: 1, 0.65: 0}),
    (obj("mask", mask=mask([(0, 0), (1, 1), (2, 2), (3, 3)])),
     obj("mask", mask=mask([(0, 0), (1, 1)])), {0.4: 1, 0.6: 0}),
]


@pytest.mark.parametrize("case", range(len(THRESHOLD_CASES)))
def test_partial_overlap(case):
    pred, truth, expected = THRESHOLD_CASES[case]
    gt, pd = frames([truth], [pred])
    for iou, tp in expected.items():
        assert row_cm(gt, pd, iou) == [[1, 0, 0, 0] if tp else [0, 1, 0, 1]]


# --- iou/feature/conftest.py ---------------------------------------------------------------------
def square(name, points=SQUARE):
    return obj("polygon", name, polygon=[points])


FEATURE_IOU_CASES = [
    ([square("cat")], [square("dog")], {"cat": 0.0, "dog": 0.0}),
    ([square("cat"), square("dog", HALF_SQUARE)], [square("dog")], {"dog": 0.25, "cat": 0.0}),
    ([square("dog", HALF_SQUARE)], [square("dog"), square("cat")], {"dog": 0.25, "cat": 0.0}),
    ([], [], {}),
    ([], [square("dog"), square("cat")], {"dog": 0.0, "cat": 0.0}),
    ([square("dog"), square("cat")], [], {"dog": 0.0, "cat": 0.0}),
]


@pytest.mark.parametrize("case", range(len(FEATURE_IOU_CASES)))
def test_feature_iou(case):
    preds, gts, expected = FEATURE_IOU_CASES[case]
    gt, pd = frames(gts, preds, like=square("cat"))
    ours = dict(pm.labelbox_sdk.feature_miou(gt, pd).select("feature", "iou").rows())
    assert ours.keys() == expected.keys()
    assert all(math.isclose(ours[k], v) for k, v in expected.items())
    rows = pm.labelbox_sdk.miou(gt, pd)["iou"].to_list()
    assert rows == ([sum(expected.values()) / len(expected)] if expected else [])


# --- iou/data_row/conftest.py --------------------------------------------------------------------
UNIT = [[0.0, 0], [1, 0], [1, 1], [0, 1]]
HALF_UNIT = [[0.0, 0], [1, 0], [1, 0.5], [0, 0.5]]
LB_BOX = [2010.0, 1099, 2010 + 591, 1099 + 690]  # left, top, width 591, height 690


def poly(points):
    return obj("polygon", "p", polygon=[points])


def boxed(answer=None):
    row = obj("box", "b", bbox=LB_BOX)
    if answer is not None:
        row["subclasses"] = [{"question": "q", "kind": "text", "answer": answer}]
    return row


# (ground truths, predictions, expected with subclasses, expected without)
DATA_ROW_CASES = {
    "polygon_pair": ([poly(UNIT)], [poly(HALF_UNIT)], 0.5, None),
    "box_pair": ([boxed()], [boxed()], 1.0, None),
    "unmatched_prediction": ([poly(UNIT)], [poly(HALF_UNIT), poly(
        [[10.0, 10], [11, 10], [11, 1.5], [10, 1.5]])], 0.25, None),
    "unmatched_label": ([poly(UNIT), poly([[10.0, 10], [11, 10], [11, 11], [10, 11]])],
                        [poly(HALF_UNIT)], 0.25, None),
    "mask_pair": ([obj("mask", "m", mask=mask([(0, 0), (0, 1)]))],
                  [obj("mask", "m", mask=mask([(0, 0)]))], 0.5, None),
    "matching_radio": ([radio("q", "a")], [radio("q", "a")], 1.0, None),
    "empty_radio_label": ([], [radio("q", "a")], 0.0, None),
    "empty_radio_prediction": ([radio("q", "a")], [], 0.0, None),
    "matching_text": ([text("q", "test")], [text("q", "test")], 1.0, None),
    "not_matching_text": ([text("q", "test")], [text("q", "not_test")], 0.0, None),
    "test_box_with_subclass": ([boxed("test")], [boxed("test")], 1.0, None),
    "test_box_with_wrong_subclass": ([boxed("test")], [boxed("not_test")], 0.5, 1.0),
    "line_pair": ([obj("line", "l", line=[[0.0, 100], [0, 0]])],
                  [obj("line", "l", line=[[5.0, 95], [0, 0]])], 0.9496975567603978, None),
    "point_pair": ([obj("point", "p", point=[0.0, 0])], [obj("point", "p", point=[5.0, 5])],
                   0.879113232477017, None),
    "matching_ner": ([obj("span", "n", start=0, end=10)], [obj("span", "n", start=0, end=10)],
                     1.0, None),
    "no_matching_ner": ([obj("span", "n", start=0, end=5)], [obj("span", "n", start=5, end=10)],
                        0.0, None),
    "partial_matching_ner": ([obj("span", "n", start=0, end=7)],
                             [obj("span", "n", start=3, end=5)], 0.2857142857142857, None),
}


@pytest.mark.parametrize("name", sorted(DATA_ROW_CASES))
@pytest.mark.parametrize("subs", [True, False])
def test_data_row_iou(name, subs):
    gts, preds, with_subs, without = DATA_ROW_CASES[name]
    expected = with_subs if subs or without is None else without
    gt, pd = frames(gts, preds, like=(gts + preds)[0])
    (feature_iou,) = pm.labelbox_sdk.feature_miou(gt, pd, subs)["iou"].to_list()
    (row_iou,) = pm.labelbox_sdk.miou(gt, pd, subs)["iou"].to_list()
    assert math.isclose(feature_iou, expected, abs_tol=1e-12)
    assert math.isclose(row_iou, expected, abs_tol=1e-12)


A, B, C, D, E = "abcde"
# (ground-truth options, predicted options, data-row mIoU, {feature IoU: how many features})
CHECKLIST_CASES = {
    "matching_checklist": ([A, B, C], [A, B, C], 1.0, {1.0: 3}),
    "partially_matching_checklist_1": ([A, B, C, D], [A, B, C, E], 0.6, {0.0: 2, 1.0: 3}),
    "partially_matching_checklist_2": ([A, B], [A, B, C, E], 0.5, {1.0: 2, 0.0: 2}),
    "partially_matching_checklist_3": ([A, B, C, E], [A, B], 0.5, {1.0: 2, 0.0: 2}),
    "empty_checklist_label": ([], [A], 0.0, {0.0: 1}),
    "empty_checklist_prediction": ([A], [], 0.0, {0.0: 1}),
}


@pytest.mark.parametrize("name", sorted(CHECKLIST_CASES))
def test_checklist_iou(name):
    gt_opts, pd_opts, row_expected, histogram = CHECKLIST_CASES[name]
    gt, pd = frames([checklist("q", gt_opts)] if gt_opts else [],
                    [checklist("q", pd_opts)] if pd_opts else [], like=checklist("q", [A]))
    ious = pm.labelbox_sdk.feature_miou(gt, pd)["iou"].to_list()
    assert {v: ious.count(v) for v in set(ious)} == histogram
    assert math.isclose(pm.labelbox_sdk.miou(gt, pd)["iou"].item(), row_expected)
