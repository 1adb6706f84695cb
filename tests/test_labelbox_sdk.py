"""``pm.labelbox_sdk`` against the real SDK (``labelbox[data]==7.17.0``, offline).

Differential: random data rows of every kind are built as SDK annotation objects; the SDK's
``feature_confusion_matrix_metric``, ``confusion_matrix_metric``, ``feature_miou_metric`` and
``miou_metric`` run on them row by row; the same objects, serialized by the SDK's
``NDJsonConverter`` and read by ``pm.read_labelbox_ndjson``, go through ``pm.labelbox_sdk``;
every per-feature and per-row value must agree to 1e-9. Then hand cases and the documented
differences.
"""
from __future__ import annotations

import math
import warnings

import labelbox_gen as G  # noqa: E402  (tests/ on sys.path)
import numpy as np
import polars as pl
import pytest
from labelbox.data.annotation_types import (  # noqa: E402
    ClassificationAnnotation,
    ClassificationAnswer,
    Mask,
    ObjectAnnotation,
    Point,
    Radio,
    Rectangle,
    Text,
    TextEntity,
)
from labelbox.data.annotation_types.data import MaskData  # noqa: E402
from labelbox.data.metrics import (  # noqa: E402
    confusion_matrix_metric,
    feature_confusion_matrix_metric,
    feature_miou_metric,
    miou_metric,
)

import polars_metrics as pm

FEATURE_KEYS = ["data_row", "feature"]
ROW_KEYS = ["data_row"]


def compare(rows, iou: float, include_subclasses: bool, confusion: bool = True) -> None:
    gt, pd = G.to_frames(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pm.PolarsMetricsWarning)
        ours = pm.labelbox_sdk.metrics(gt, pd, iou, include_subclasses)
    ref = G.sdk_results(rows, iou, include_subclasses, confusion=confusion)
    if confusion:
        G.assert_same(ours.feature_confusion_matrix, ref[0], FEATURE_KEYS)
        G.assert_same(ours.confusion_matrix, ref[1], ROW_KEYS)
    G.assert_same(ours.feature_miou, ref[2], FEATURE_KEYS)
    G.assert_same(ours.miou, ref[3], ROW_KEYS)


# --- differential, every kind -----------------------------------------------------------------------
@pytest.mark.reference
@pytest.mark.parametrize("kind", G.OBJECT_KINDS)
@pytest.mark.parametrize("include_subclasses", [False, True])
def test_objects_match_sdk(kind, include_subclasses):
    n_rows = 120 if kind in ("line", "polygon") else 200
    rows = G.dataset(10 * G.OBJECT_KINDS.index(kind) + include_subclasses, (kind,), n_rows,
                     subclasses=include_subclasses)
    compare(rows, 0.5, include_subclasses)


@pytest.mark.reference
@pytest.mark.parametrize("kind", ["radio", "checklist"])
def test_classifications_match_sdk(kind):
    compare(G.dataset(7, (kind,), 300), 0.5, False)


@pytest.mark.reference
def test_text_iou_matches_sdk():
    """Text: the SDK's IoU metric (its confusion matrix raises, see the differences below)."""
    compare(G.dataset(8, ("text",), 300), 0.5, False, confusion=False)


@pytest.mark.reference
@pytest.mark.parametrize("iou", [0.25, 0.75])
def test_other_iou_thresholds_match_sdk(iou):
    compare(G.dataset(11, ("box", "polygon"), 150, max_per_side=5), iou, False)


@pytest.mark.reference
@pytest.mark.parametrize("include_subclasses", [False, True])
def test_mixed_kinds_match_sdk(include_subclasses):
    kinds = ("box", "polygon", "point", "mask", "span", "radio", "checklist")
    compare(G.dataset(21, kinds, 120, subclasses=include_subclasses, max_per_side=3), 0.5,
            include_subclasses)


@pytest.mark.reference
@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_many_rows_match_sdk(seed):
    for kind in ("box", "line", "mask", "span"):
        compare(G.dataset(100 + seed, (kind,), 300, subclasses=bool(seed % 2)), 0.5, bool(seed % 2))


def test_same_counts_as_the_engine_profile():
    """Without subclasses the confusion counts and IoU are the engine's labelbox-sdk profile
    (``ev.data_row_features``): same matching, same pairs."""
    rows = G.dataset(5, ("box",), 150)
    gt, pd = G.to_frames(rows)
    ours = pm.labelbox_sdk.metrics(gt, pd, 0.5)
    ev = pm.evaluate(gt, pd, profile="labelbox-sdk", confidence_thresholds=[0.0], iou_thresholds=[0.5])
    eng = ev.data_row_features.select(*FEATURE_KEYS, "tp", "fp", "tn", "fn").sort(FEATURE_KEYS)
    assert ours.feature_confusion_matrix.sort(FEATURE_KEYS).equals(eng)
    iou = ev.data_row_features.select(*FEATURE_KEYS, "iou").sort(FEATURE_KEYS)
    np.testing.assert_allclose(ours.feature_miou.sort(FEATURE_KEYS)["iou"].to_numpy(),
                               iou["iou"].to_numpy(), rtol=0, atol=1e-12)


# --- hand cases ------------------------------------------------------------------------------------------
BOX = pl.Array(pl.Float64, 4)


def rect(b, name="car", subs=()):
    return ObjectAnnotation(name=name, value=Rectangle(start=Point(x=b[0], y=b[1]), end=Point(x=b[2], y=b[3])),
                            classifications=[ClassificationAnnotation(name=q, value=Radio(
                                answer=ClassificationAnswer(name=a))) for q, a in subs])


def frames_of(gt_boxes, pd_boxes, row="r"):
    """The same boxes as frames (with subclasses) and as SDK objects."""
    def frame(boxes):
        return pl.DataFrame({
            "data_row": [row] * len(boxes), "feature": [b[1] if len(b) > 1 else "car" for b in boxes],
            "bbox": [list(map(float, b[0])) for b in boxes],
            "subclasses": [[{"question": q, "kind": "radio", "answer": a} for q, a in (b[2] if len(b) > 2 else ())]
                           for b in boxes],
        }, schema_overrides={"bbox": BOX})
    sdk = ([rect(*b) for b in gt_boxes], [rect(*b) for b in pd_boxes])
    return frame(gt_boxes), frame(pd_boxes), sdk


def sdk_feature_cm(sdk, iou, subs=False):
    return {m.feature_name: list(m.value) for m in feature_confusion_matrix_metric(*sdk, include_subclasses=subs, iou=iou)}


def ours_feature_cm(gt, pd, iou, subs=False):
    out = pm.labelbox_sdk.feature_confusion_matrix(gt, pd, iou, subs)
    return {r[1]: list(r[2:]) for r in out.rows()}


@pytest.mark.parametrize("pd_order, expected", [((0, 1), [1, 1, 0, 1]), ((1, 0), [2, 0, 0, 0])])
def test_tied_ious_follow_gt_major_input_order(pd_order, expected):
    """Three pairs tie at IoU 0.6: (G1,P1), (G1,P2), (G2,P1). Walking ties gt-major in input
    order, P1 before P2 gives G1-P1 and nothing for G2; P2 before P1 gives two matches."""
    g = [((0, 0, 10, 10),), ((0, -4, 10, 6),)]
    p_all = [((0, 0, 10, 6),), ((0, 4, 10, 10),)]
    p = [p_all[i] for i in pd_order]
    gt, pd, sdk = frames_of(g, p)
    assert sdk_feature_cm(sdk, 0.5) == {"car": expected}
    assert ours_feature_cm(gt, pd, 0.5) == {"car": expected}


@pytest.mark.parametrize("iou, expected", [(0.5, [0, 1, 0, 1]), (0.49, [1, 0, 0, 0])])
def test_iou_exactly_at_the_threshold_does_not_match(iou, expected):
    gt, pd, sdk = frames_of([((0, 0, 10, 10),)], [((0, 0, 10, 5),)])
    assert sdk_feature_cm(sdk, iou) == ours_feature_cm(gt, pd, iou) == {"car": expected}


def test_one_side_empty():
    gt, pd, sdk = frames_of([((0, 0, 10, 10),), ((20, 20, 30, 30), "bus")], [((0, 0, 10, 10), "bike")])
    expected = {"car": [0, 0, 0, 1], "bus": [0, 0, 0, 1], "bike": [0, 1, 0, 0]}
    assert sdk_feature_cm(sdk, 0.5) == ours_feature_cm(gt, pd, 0.5) == expected
    miou = dict(pm.labelbox_sdk.feature_miou(gt, pd).select("feature", "iou").rows())
    assert miou == {m.feature_name: m.value for m in feature_miou_metric(*sdk, include_subclasses=False)}
    assert miou == {"car": 0.0, "bus": 0.0, "bike": 0.0}
    # a data row with annotations on one side only still has metrics; none at all: no metric
    only_gt = gt.filter(pl.col("feature") == "car")
    empty_pd = pd.clear()
    assert pm.labelbox_sdk.confusion_matrix(only_gt, empty_pd).rows() == [("r", 0, 0, 0, 1)]
    assert pm.labelbox_sdk.miou(gt.clear(), pd.clear()).height == 0
    assert confusion_matrix_metric([], []) == [] and miou_metric([], []) == []


def test_zero_iou_pairs_count_in_miou():
    g = [((0, 0, 10, 10), "car", [("quality", "good")]), ((100, 100, 110, 110), "car", [("quality", "good")])]
    p_agree = [((0, 0, 10, 5), "car", [("quality", "good")]), ((200, 200, 210, 210), "car", [("quality", "good")])]
    p_disagree = [p_agree[0], ((200, 200, 210, 210), "car", [("quality", "bad")])]
    for p, subs, expected in [(p_agree, False, 0.25), (p_agree, True, (0.75 + 0.5) / 2),
                              (p_disagree, True, 0.75 / 2)]:
        gt, pd, sdk = frames_of(g, p)
        ours = pm.labelbox_sdk.miou(gt, pd, subs)["iou"].item()
        ref = miou_metric(*sdk, include_subclasses=subs)[0].value
        assert math.isclose(ours, expected, abs_tol=1e-12) and math.isclose(ref, expected, abs_tol=1e-12)


def test_greedy_is_not_optimal():
    """G1-P1 (0.667) is taken first, so P2 (0.538 with G1 only) and G2 (0.43 with P1 only)
    stay unmatched at IoU 0.4, although two matches exist."""
    gt, pd, sdk = frames_of([((0, 0, 10, 10),), ((6, 0, 16, 10),)], [((2, 0, 12, 10),), ((-3, 0, 7, 10),)])
    assert sdk_feature_cm(sdk, 0.4) == ours_feature_cm(gt, pd, 0.4) == {"car": [1, 1, 0, 1]}


def test_subclass_disagreement_rejects_without_consuming():
    g = [((0, 0, 10, 10), "car", [("quality", "good")])]
    p = [((0, 0, 10, 9), "car", [("quality", "bad")]), ((0, 0, 10, 8), "car", [("quality", "good")])]
    gt, pd, sdk = frames_of(g, p)
    # without subclasses the 0.9 pair matches; with them it is skipped and the 0.8 pair matches
    assert sdk_feature_cm(sdk, 0.5, True) == ours_feature_cm(gt, pd, 0.5, True) == {"car": [1, 1, 0, 0]}
    ours = pm.labelbox_sdk.feature_miou(gt, pd, True)["iou"].item()
    ref = feature_miou_metric(*sdk, include_subclasses=True)[0].value
    assert math.isclose(ours, ref, abs_tol=1e-12)  # (0.9 + 0) / 2 for the best pair, then 0 / 2


def test_semantic_masks_in_miou_instances_in_confusion():
    """Two ground-truth halves, one prediction covering both: the IoU metric unions the masks
    (1.0), the confusion matrix compares instances (0.5 each: no match at 0.5)."""
    left = np.zeros((4, 8), np.uint8)
    left[:, :4] = 1
    right = 1 - left
    full = np.ones((4, 8), np.uint8)

    def m(a):
        return ObjectAnnotation(name="road", value=Mask(mask=MaskData.from_2D_arr(a), color=(1, 1, 1)))
    sdk = ([m(left), m(right)], [m(full)])
    gt = pl.DataFrame({"data_row": ["r", "r"], "feature": ["road", "road"],
                       "mask": pm.masks_from_arrays([left, right])})
    pd = pl.DataFrame({"data_row": ["r"], "feature": ["road"], "mask": pm.masks_from_arrays([full])})
    assert pm.labelbox_sdk.miou(gt, pd)["iou"].item() == miou_metric(*sdk)[0].value == 1.0
    assert ours_feature_cm(gt, pd, 0.4) == sdk_feature_cm(sdk, 0.4) == {"road": [1, 0, 0, 1]}
    assert ours_feature_cm(gt, pd, 0.5) == sdk_feature_cm(sdk, 0.5) == {"road": [0, 1, 0, 2]}


def test_spans_use_the_raw_numbers_like_the_sdk():
    """(0, 5) and (5, 10) as written: the SDK's IoU is 0 (its arithmetic is half-open on the raw
    numbers); read as inclusive offsets they would share one character."""
    gt_lines = ['{"dataRow": {"id": "t"}, "name": "person", "location": {"start": 0, "end": 5}}']
    pd_lines = ['{"dataRow": {"id": "t"}, "name": "person", "location": {"start": 5, "end": 10}}']
    gt = pm.read_labelbox_ndjson(gt_lines, role="ground_truth")
    pd = pm.read_labelbox_ndjson(pd_lines)
    assert gt["end"].item() == 6 and gt["span_end"].item() == "inclusive"
    ours = pm.labelbox_sdk.feature_miou(gt, pd)["iou"].item()
    sdk = feature_miou_metric([ObjectAnnotation(name="person", value=TextEntity(start=0, end=5))],
                              [ObjectAnnotation(name="person", value=TextEntity(start=5, end=10))],
                              include_subclasses=False)[0].value
    assert ours == sdk == 0.0
    # the engine's own profile reads the same frames as half-open [0, 6) and [5, 11)
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.0])
    assert math.isclose(ev.cube["iou"].item(), 1 / 11)


# --- documented differences ------------------------------------------------------------------------
def test_text_in_the_confusion_matrix_difference():
    """The SDK raises on free text in the confusion matrix; here equal text is a TP."""
    def text(q, a):
        return ClassificationAnnotation(name=q, value=Text(answer=a))
    with pytest.raises(ValueError, match="Unsupported subclass"):
        feature_confusion_matrix_metric([text("caption", "a car")], [text("caption", "a car")])
    gt = pl.DataFrame({"data_row": ["r", "s"], "kind": ["text", "text"], "question": ["caption"] * 2,
                       "answer": ["a car", "a car"]})
    pd = gt.with_columns(pl.Series("answer", ["a car", "a bus"]))
    out = pm.labelbox_sdk.feature_confusion_matrix(gt, pd)
    assert out.rows() == [("r", "caption", 1, 0, 0, 0), ("s", "caption", 0, 1, 0, 1)]


def test_two_empty_masks_difference():
    empty = np.zeros((4, 4), np.uint8)
    sdk = ([ObjectAnnotation(name="m", value=Mask(mask=MaskData.from_2D_arr(empty), color=(1, 1, 1)))],
           [ObjectAnnotation(name="m", value=Mask(mask=MaskData.from_2D_arr(empty), color=(1, 1, 1)))])
    with np.errstate(invalid="ignore"):
        assert math.isnan(miou_metric(*sdk)[0].value)
    frame = pl.DataFrame({"data_row": ["r"], "feature": ["m"], "mask": pm.masks_from_arrays([empty])})
    assert pm.labelbox_sdk.miou(frame, frame)["iou"].item() == 0.0
    with np.errstate(invalid="ignore"):
        assert ours_feature_cm(frame, frame, 0.5) == sdk_feature_cm(sdk, 0.5) == {"m": [0, 1, 0, 1]}


def test_answer_name_collision_difference():
    """Two questions answered "yes": the SDK merges them into one feature "yes"; the engine
    keeps them apart as "question/answer"."""
    def radio(q, a):
        return ClassificationAnnotation(name=q, value=Radio(answer=ClassificationAnswer(name=a)))
    sdk = feature_confusion_matrix_metric([radio("q1", "yes"), radio("q2", "yes")], [radio("q1", "yes")])
    assert sdk == []  # "yes" has two ground truths in one radio group: the SDK gives no metric
    gt = pl.DataFrame({"data_row": ["r", "r"], "kind": ["radio", "radio"], "question": ["q1", "q2"],
                       "answer": ["yes", "yes"]})
    with pytest.warns(pm.PolarsMetricsWarning, match="question/answer"):
        out = pm.labelbox_sdk.feature_confusion_matrix(gt, gt.head(1))
    assert out.select("feature", "tp", "fp", "fn").rows() == [("q1/yes", 1, 0, 0), ("q2/yes", 0, 0, 1)]


def test_spans_in_different_messages_difference():
    gt = pl.DataFrame({"data_row": ["c"], "feature": ["person"], "start": [0], "end": [5], "message_id": ["m1"]})
    pd = gt.with_columns(pl.lit("m2").alias("message_id"))
    assert pm.labelbox_sdk.feature_miou(gt, pd)["iou"].item() == 0.0
    same = pm.labelbox_sdk.feature_miou(gt, gt)["iou"].item()
    assert same == 1.0


def test_iou_one_is_accepted():
    gt, pd, sdk = frames_of([((0, 0, 10, 10),)], [((0, 0, 10, 10),)])
    with pytest.raises(ValueError):
        confusion_matrix_metric(*sdk, iou=1.0)
    assert ours_feature_cm(gt, pd, 1.0) == {"car": [0, 1, 0, 1]}
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pm.labelbox_sdk.confusion_matrix(gt, pd, iou=1.5)


def test_coordinates_are_rounded_like_geojson():
    """The SDK's shapes go through geojson (6 decimals): so do ours, with Python's rounding."""
    from polars_metrics.labelbox_sdk import round_like_python
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-1e4, 1e4, 20000), np.round(rng.uniform(0, 10, 2000), 7),
                        [0.5e-6, 2.5e-6, 1.0000005, -3.0000015, 1e300, np.nan, -0.0]])
    ours = round_like_python(x)
    ref = np.array([round(float(v), 6) if np.isfinite(v) else v for v in x])
    assert np.array_equal(ours, ref, equal_nan=True)
    gt, pd, sdk = frames_of([((0.1234564, 0, 10, 10),)], [((0.1234566, 0, 10, 5),)])
    assert math.isclose(pm.labelbox_sdk.feature_miou(gt, pd)["iou"].item(),
                        feature_miou_metric(*sdk, include_subclasses=False)[0].value, abs_tol=1e-15)


def test_composite_keys_and_empty_inputs():
    gt = pl.DataFrame({"data_row": ["v", "v"], "frame": [1, 2], "feature": ["car", "car"],
                       "bbox": [[0.0, 0, 10, 10], [0.0, 0, 10, 10]]}, schema_overrides={"bbox": BOX})
    pd = gt.head(1)
    out = pm.labelbox_sdk.confusion_matrix(gt, pd, data_row=["data_row", "frame"])
    assert out.rows() == [("v", 1, 1, 0, 0, 0), ("v", 2, 0, 0, 0, 1)]
    empty = pm.labelbox_sdk.metrics(gt.clear(), pd.clear())
    assert all(f.height == 0 for f in empty)
    assert empty.feature_confusion_matrix.columns == ["data_row", "feature", "tp", "fp", "tn", "fn"]


def test_invalid_rows_raise_or_go_to_rejects():
    gt = pl.DataFrame({"data_row": ["r", "r"], "feature": ["car", "car"],
                       "bbox": [[0.0, 0, 10, 10], [10.0, 0, 0, 10]]}, schema_overrides={"bbox": BOX})
    with pytest.raises(pm.InvalidAnnotationError, match="x1 < x0"):
        pm.labelbox_sdk.metrics(gt, gt.head(1))
    with pytest.warns(pm.PolarsMetricsWarning, match="1 input row"):
        out = pm.labelbox_sdk.metrics(gt, gt.head(1), on_invalid="drop")
    assert out.rejects.select("table", "row").rows() == [("ground_truth", 1)]
    assert out.feature_confusion_matrix.rows() == [("r", "car", 1, 0, 0, 0)]


def test_nested_classifications_without_any_answer_difference():
    from labelbox.data.annotation_types import Checklist

    empty = [ClassificationAnnotation(name="attrs", value=Checklist(answer=[]))]
    g = [ObjectAnnotation(name="car", value=Rectangle(start=Point(x=0, y=0), end=Point(x=10, y=10)),
                          classifications=empty)]
    p = [rect((0, 0, 10, 10))]
    with pytest.raises(TypeError):
        feature_confusion_matrix_metric(g, p, include_subclasses=True)
    gt = pl.DataFrame({"data_row": ["r"], "feature": ["car"], "bbox": [[0.0, 0, 10, 10]],
                       "subclasses": [[{"question": "attrs", "kind": "checklist", "answers": []}]]},
                      schema_overrides={"bbox": BOX})
    pd = gt.with_columns(pl.lit(None, dtype=gt.schema["subclasses"]).alias("subclasses"))
    assert ours_feature_cm(gt, pd, 0.5, True) == {"car": [1, 0, 0, 0]}
