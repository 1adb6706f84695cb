"""The shape issue 9 gave the package: switches honoured or refused, one immutable result that
keeps no inputs, declared merge rules, no import cycles."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import polars_metrics as pm
from polars_metrics import state

BOX = pl.Array(pl.Float64, 4)
ROOT = Path(__file__).resolve().parents[1]


def _tables():
    gt = pl.DataFrame({"data_row": ["a", "a", "b"], "feature": ["cat", "dog", "cat"],
                       "bbox": [[0.0, 0, 10, 10], [20.0, 20, 30, 30], [0.0, 0, 8, 8]]},
                      schema_overrides={"bbox": BOX})
    pd = gt.with_columns(feature=pl.Series(["cat", "cat", "cat"]),
                         confidence=pl.Series([0.9, 0.8, 0.3]))
    return gt, pd


@pytest.mark.parametrize(("switch", "value", "message"), [
    ("iou_type", "segm", "only apply to profile='coco'"),
    ("max_dets", (1, 10), "only apply to profile='coco'"),
    ("use_cats", False, "only apply to profile='coco'"),
    ("include_subclasses", True, "only apply to profile='labelbox-sdk'"),
    ("clas_aware", True, 'Did you mean "class_aware"'),
    ("greedy_order", "scores", "is not one of"),
    ("rows", "every", "is not one of"),
])
def test_a_switch_no_engine_reads_is_refused(switch, value, message):
    gt, pd = _tables()
    with pytest.raises(pm.ProfileError, match=message):
        pm.evaluate(gt, pd, **{switch: value})


def test_engine_options_are_nested_and_set_by_keyword():
    prof = pm.get_profile("coco", iou_type="segm", max_dets=[1, 5], use_cats=False,
                          area_ranges={"all": (0, 1e10)})
    assert prof.coco == pm.CocoOptions(iou_type="segm", max_dets=(1, 5), use_cats=False,
                                       area_ranges=(("all", 0.0, 1e10),))
    assert pm.get_profile("coco").coco == pm.CocoOptions()  # the preset is untouched
    assert pm.get_profile("labelbox").coco is None and pm.get_profile("labelbox").sdk is None
    assert pm.get_profile("labelbox-sdk").sdk == pm.SdkOptions()


def test_partial_refuses_the_coco_engine():
    gt, pd = _tables()
    with pytest.raises(pm.ProfileError, match="not additive"):
        pm.partial(gt, pd, profile="coco")


def test_the_evaluation_is_immutable_and_keeps_no_input_table():
    gt, pd = _tables()
    ev = pm.evaluate(gt, pd)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.cube = ev.cube.head(0)
    # the per-annotation material keeps keys, ids, features and confidence, no geometry
    prep = ev.detail.prep
    assert "bbox" not in prep.gt.frame.columns and "bbox" not in prep.pd.frame.columns
    # (+ whether a confidence was given: calibration and the queues refuse predictions without)
    assert set(prep.pd.frame.columns) == {"data_row", "id", "feature", "confidence",
                                          "_confidence_given"}
    assert not any(isinstance(v, pl.DataFrame) and "bbox" in v.columns for v in vars(ev).values())


def test_a_finer_grid_is_an_explicit_evaluation():
    gt, pd = _tables()
    ev = pm.evaluate(gt, pd)
    with pytest.raises(pm.PolarsMetricsError, match="FINE_CONFIDENCE_THRESHOLDS"):
        ev.pr_curve(0.5, fine=True)
    fine = pm.evaluate(gt, pd, confidence_thresholds=pm.FINE_CONFIDENCE_THRESHOLDS,
                       iou_thresholds=[0.5])
    curve = fine.pr_curve(0.5).filter(pl.col("feature").is_null())
    assert curve.height == 101
    # hand count, micro: every prediction is kept at c <= 0.3; cat/a and cat/b are TPs, the dog
    # is found as a cat (a misclassification: FP of cat, FN of dog)
    at = curve.filter(pl.col("confidence_threshold") == 0.3).row(0, named=True)
    assert (at["precision"], at["recall"]) == (2 / 3, 2 / 3)
    at = curve.filter(pl.col("confidence_threshold") == 0.31).row(0, named=True)
    assert (at["precision"], at["recall"]) == (1 / 2, 1 / 3)


def test_unknown_feature_in_examples_suggests_the_name():
    gt, pd = _tables()
    ev = pm.evaluate(gt, pd)
    with pytest.raises(pm.PolarsMetricsError, match='Did you mean "dog"'):
        ev.examples("dogs", "cat")


def test_every_partial_field_declares_its_merge():
    rules = {f.name: f.metadata.get("merge") for f in dataclasses.fields(state.PartialResult)}
    assert None not in rules.values(), rules
    assert set(rules.values()) <= set(state._MERGERS)


def test_merge_follows_the_declared_rules():
    gt, pd = _tables()
    parts = [pm.partial(gt.filter(pl.col("data_row") == k), pd.filter(pl.col("data_row") == k))
             for k in ("a", "b")]
    merged = pm.merge(parts)
    whole = pm.partial(gt, pd)
    assert merged.counts.equals(whole.counts)
    assert merged.confusion.equals(whole.confusion)
    assert merged.data_rows.equals(whole.data_rows)
    assert set(merged.timings) == set(whole.timings)
    changed = dataclasses.replace(parts[1], iou_thr=parts[1].iou_thr[:3])
    with pytest.raises(pm.PolarsMetricsError, match="differ in iou_thr"):
        pm.merge(parts[0], changed)


def test_import_contracts_hold():
    """The layer contracts of pyproject.toml (no cycles, no upward imports, kernels without
    polars); `make test` runs lint-imports too — this keeps the check inside pytest runs."""
    lint = Path(sys.executable).with_name("lint-imports")
    res = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:]


@pytest.mark.parametrize("option", [{"include_subclasses": True}, {"coordinate_decimals": None},
                                    {"span_end": "as_given"}, {"semantic_masks": False}])
def test_sdk_function_options_are_refused_by_evaluate(option):
    gt, pd = _tables()
    with pytest.raises(pm.ProfileError, match="pm.labelbox_sdk.metrics"):
        pm.evaluate(gt, pd, profile="labelbox-sdk", **option)
    # the same option is honoured by the functions it belongs to
    assert pm.labelbox_sdk.metrics(gt, pd, **option).confusion_matrix.height == 2


def test_a_cell_lookup_takes_the_nearest_grid_value():
    """Thresholds are rounded to 1e-9, so 0.0 and 1e-9 are both grid values within the
    lookup tolerance of 1e-9: the lookup must take the nearer one."""
    gt, pd = _tables()
    pd = pd.with_columns(confidence=pl.Series([0.9, 0.8, 0.0]))
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0, 1e-9], iou_thresholds=[0.5])
    # by hand: at c = 1e-9 the 0.0-confidence prediction on "b" is dropped, at c = 0 it counts
    assert ev.summary(confidence=1e-9, iou=0.5).filter(pl.col("feature") == "cat")["tp"].item() == 1
    assert ev.summary(confidence=0.0, iou=0.5).filter(pl.col("feature") == "cat")["tp"].item() == 2
    assert ev.examples(None, "cat", confidence=1e-9, iou=0.5).height == 0


def test_every_public_function_has_a_running_example():
    """Every public callable of the package and of pm.labelbox_sdk documents an Examples
    section (doctests run them: --doctest-modules in make test)."""
    import inspect

    missing = []
    names = [(n, getattr(pm, n)) for n in pm.__all__]
    names += [(f"labelbox_sdk.{n}", getattr(pm.labelbox_sdk, n)) for n in pm.labelbox_sdk.__all__]
    for name, obj in names:
        if not callable(obj) or inspect.isclass(obj) and issubclass(obj, Exception):
            continue
        doc = inspect.getdoc(obj) or ""
        owner = inspect.getmodule(obj)
        if ">>>" not in doc and ">>>" not in (inspect.getdoc(owner) or ""):
            missing.append(name)
    assert not missing, f"public names without a runnable example: {missing}"
