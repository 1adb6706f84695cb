"""``pm.labelbox_sdk``'s options (``Profile.sdk`` and keywords): each one changes the numbers as
the hand calculation next to it says, or is rejected with a clear message."""
from __future__ import annotations

import dataclasses
import math

import polars as pl
import pytest
from sdk_cases import frames, mask, obj

import polars_metrics as pm
from polars_metrics.errors import ProfileError
from polars_metrics.profiles import SdkOptions

SDK = pm.labelbox_sdk


def box_frames(gt_box, pd_box, gt_sub=None, pd_sub=None):
    return frames([obj("box", "car", gt_sub, bbox=gt_box)], [obj("box", "car", pd_sub, bbox=pd_box)])


def iou_of(frame: pl.DataFrame) -> float:
    return frame["iou"].item()


# --- coordinate_decimals ---------------------------------------------------------------------------
def test_coordinate_decimals():
    # [0, 0, 1, 1.0000004] rounds to the unit box at 6 decimals: IoU 1; unrounded 1 / 1.0000004
    gt, pd = box_frames([0.0, 0, 1, 1], [0.0, 0, 1, 1.0000004])
    assert iou_of(SDK.feature_miou(gt, pd)) == 1.0
    assert iou_of(SDK.feature_miou(gt, pd, coordinate_decimals=None)) == pytest.approx(
        1 / 1.0000004, abs=1e-15)
    # [0.4, 0, 1.4, 1] vs the unit box: overlap 0.6, union 1.4; at 0 decimals it is the unit box
    gt, pd = box_frames([0.0, 0, 1, 1], [0.4, 0, 1.4, 1])
    assert iou_of(SDK.feature_miou(gt, pd)) == pytest.approx(0.6 / 1.4, abs=1e-12)
    assert iou_of(SDK.feature_miou(gt, pd, coordinate_decimals=0)) == 1.0
    # the confusion matrix at 0.5 sees the same change: 0.43 (no match) vs 1.0 (match)
    assert SDK.confusion_matrix(gt, pd).rows() == [("r", 0, 1, 0, 1)]
    assert SDK.confusion_matrix(gt, pd, coordinate_decimals=0).rows() == [("r", 1, 0, 0, 0)]


def test_coordinate_decimals_from_the_profile():
    gt, pd = box_frames([0.0, 0, 1, 1], [0.4, 0, 1.4, 1])
    profile = pm.get_profile("labelbox-sdk", coordinate_decimals=0)
    assert iou_of(SDK.feature_miou(gt, pd, profile=profile)) == 1.0
    unrounded = dataclasses.replace(profile, sdk=SdkOptions(coordinate_decimals=None))
    gt, pd = box_frames([0.0, 0, 1, 1], [0.0, 0, 1, 1.0000004])
    assert iou_of(SDK.feature_miou(gt, pd, profile=unrounded)) < 1.0
    # a keyword overrides the profile
    assert iou_of(SDK.feature_miou(gt, pd, profile=unrounded, coordinate_decimals=6)) == 1.0


# --- span_end --------------------------------------------------------------------------------------
def test_span_end():
    # read with inclusive ends: (0, 6) and (3, 6) hold raw (0, 5) and (3, 5): IoU 2 / 5;
    # as given, [0, 6) and [3, 6): IoU 3 / 6
    gt = pl.DataFrame({"data_row": ["t"], "feature": ["person"], "start": [0], "end": [6],
                       "span_end": ["inclusive"]})
    pd = gt.with_columns(pl.Series("start", [3]))
    assert iou_of(SDK.feature_miou(gt, pd)) == pytest.approx(0.4)
    assert iou_of(SDK.feature_miou(gt, pd, span_end="as_given")) == pytest.approx(0.5)
    assert iou_of(SDK.feature_miou(gt, pd, profile=pm.get_profile(
        "labelbox-sdk", span_end="as_given"))) == pytest.approx(0.5)
    assert SDK.confusion_matrix(gt, pd, 0.45).rows() == [("t", 0, 1, 0, 1)]
    assert SDK.confusion_matrix(gt, pd, 0.45, span_end="as_given").rows() == [("t", 1, 0, 0, 0)]
    # without the column the numbers are used as given either way
    bare = gt.drop("span_end"), pd.drop("span_end")
    assert iou_of(SDK.feature_miou(*bare)) == iou_of(SDK.feature_miou(*bare, span_end="as_given"))


# --- semantic_masks --------------------------------------------------------------------------------
def halves():
    left = [(r, c) for r in range(4) for c in range(2)]
    right = [(r, c) for r in range(4) for c in range(2, 4)]
    full = left + right
    return frames([obj("mask", "road", mask=mask(left, 4)), obj("mask", "road", mask=mask(right, 4))],
                  [obj("mask", "road", mask=mask(full, 4))])


def test_semantic_masks():
    # union of the two halves = the prediction: 1.0; instances: one half matched (0.5) out of
    # max(2, 1) = 2 → 0.25
    gt, pd = halves()
    assert iou_of(SDK.miou(gt, pd)) == 1.0
    assert iou_of(SDK.miou(gt, pd, semantic_masks=False)) == 0.25
    assert iou_of(SDK.miou(gt, pd, profile=pm.get_profile(
        "labelbox-sdk", semantic_masks=False))) == 0.25
    # the confusion matrix always pairs instances: 0.5 > 0.4 matches one half
    for semantic in (True, False):
        assert SDK.confusion_matrix(gt, pd, 0.4, semantic_masks=semantic).rows() == [
            ("r", 1, 0, 0, 1)]


def test_semantic_masks_not_with_subclasses():
    """The SDK pairs instances in its subclass mode; so do we, whatever semantic_masks says."""
    gt, pd = halves()
    assert iou_of(SDK.miou(gt, pd, include_subclasses=True)) == 0.25
    assert iou_of(SDK.miou(gt, pd, include_subclasses=True, semantic_masks=True)) == 0.25


# --- include_subclasses ----------------------------------------------------------------------------
def test_include_subclasses():
    # box IoU 0.5, nested answers disagree: without subclasses IoU 0.5 and a match at 0.4; with
    # them (0.5 + 0) / 2 = 0.25 and the pair is rejected
    gt, pd = box_frames([0.0, 0, 10, 10], [0.0, 0, 10, 5], "yes", "no")
    assert iou_of(SDK.feature_miou(gt, pd)) == 0.5
    assert iou_of(SDK.feature_miou(gt, pd, True)) == 0.25
    assert SDK.feature_confusion_matrix(gt, pd, 0.4).rows() == [("r", "car", 1, 0, 0, 0)]
    assert SDK.feature_confusion_matrix(gt, pd, 0.4, True).rows() == [("r", "car", 0, 1, 0, 1)]
    with_subs = pm.get_profile("labelbox-sdk", include_subclasses=True)
    assert iou_of(SDK.feature_miou(gt, pd, profile=with_subs)) == 0.25
    assert iou_of(SDK.feature_miou(gt, pd, False, profile=with_subs)) == 0.5  # keyword wins
    assert iou_of(SDK.metrics(gt, pd, include_subclasses=True).miou) == 0.25


# --- geometry switches of the profile --------------------------------------------------------------
def test_point_switches_of_the_profile_are_honoured():
    # true circles of radius 10 at distance d = 5√2: lens = 2r²·acos(d/2r) − (d/2)·√(4r² − d²)
    r, d = 10.0, math.hypot(5, 5)
    lens = 2 * r * r * math.acos(d / (2 * r)) - d / 2 * math.sqrt(4 * r * r - d * d)
    expected = lens / (2 * math.pi * r * r - lens)
    gt, pd = frames([obj("point", "p", point=[0.0, 0])], [obj("point", "p", point=[5.0, 5])])
    profile = pm.get_profile("labelbox-sdk", point_iou="circle", buffer_radius=r)
    assert iou_of(SDK.feature_miou(gt, pd, profile=profile)) == pytest.approx(expected, rel=1e-9)
    assert iou_of(SDK.feature_miou(gt, pd)) == pytest.approx(0.879113232477017)  # the SDK's


# --- rejected --------------------------------------------------------------------------------------
@pytest.mark.parametrize("func", [SDK.feature_confusion_matrix, SDK.confusion_matrix,
                                  SDK.feature_miou, SDK.miou, SDK.metrics])
def test_unknown_keyword_suggests(func):
    gt, pd = box_frames([0.0, 0, 1, 1], [0.0, 0, 1, 1])
    with pytest.raises(ProfileError, match='semantic_mask.*Did you mean "semantic_masks"'):
        func(gt, pd, semantic_mask=False)
    with pytest.raises(ProfileError, match='Did you mean "coordinate_decimals"'):
        func(gt, pd, coordinate_decimal=3)


@pytest.mark.parametrize("options, message", [
    ({"span_end": "inclusive"}, "span_end must be one of"),
    ({"span_end": "as_giver"}, 'Did you mean "as_given"'),
    ({"coordinate_decimals": -1}, "coordinate_decimals must be None or an int"),
    ({"coordinate_decimals": 2.5}, "coordinate_decimals must be None or an int"),
    ({"include_subclasses": "yes"}, "include_subclasses must be True or False"),
    ({"semantic_masks": 2}, "semantic_masks must be True or False"),
])
def test_invalid_values(options, message):
    gt, pd = box_frames([0.0, 0, 1, 1], [0.0, 0, 1, 1])
    with pytest.raises(ProfileError, match=message):
        SDK.metrics(gt, pd, **options)


@pytest.mark.parametrize("profile, message", [
    ("labelbox", "profile 'labelbox' has none"),
    ("coco", "profile 'coco' has none"),
    (pm.get_profile("labelbox-sdk", class_aware=False), "class_aware=False"),
    (pm.get_profile("labelbox-sdk", greedy_order="score", rows="both"),
     "greedy_order='score', rows='both'"),
])
def test_profiles_the_sdk_rules_cannot_run(profile, message):
    gt, pd = box_frames([0.0, 0, 1, 1], [0.0, 0, 1, 1])
    with pytest.raises(ProfileError, match=message):
        SDK.miou(gt, pd, profile=profile)


def test_profile_by_name_and_object_agree():
    gt, pd = box_frames([0.0, 0, 10, 10], [0.0, 0, 10, 5], "yes", "no")
    by_name = SDK.metrics(gt, pd, profile="labelbox-sdk")
    by_object = SDK.metrics(gt, pd, profile=pm.get_profile("labelbox-sdk"))
    default = SDK.metrics(gt, pd)
    for a, b, c in zip(by_name[:4], by_object[:4], default[:4], strict=True):
        assert a.equals(b) and a.equals(c)
