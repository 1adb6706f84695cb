"""The engine equals the naive reference (tests/naive.py) on generated datasets.

Every column of cube, overall, confusion, data_rows and excluded is compared (both sides
sorted explicitly; counts and strings exactly, floats to 1e-12), plus the views built on
them (confusion_matrix, examples, pr_curve, best_thresholds), pairwise_iou and the box_iou
expression.
"""
from __future__ import annotations

import math

import naive
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from naive import assert_frames_match
from strategies import Dataset, continuous_boxes_strategy, datasets, grid_boxes, n_examples

import polars_metrics as pm

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.data_too_large])


def engine_and_naive(ds: Dataset):
    return pm.evaluate(ds.gt, ds.pd, **ds.kwargs), naive.evaluate(ds.gt, ds.pd, **ds.kwargs)


def assert_core_frames_match(ev, nv, ds: Dataset) -> None:
    keys, by = ds.keys, list(ds.kwargs.get("by", []))
    grid = ["confidence_threshold", "iou_threshold"]
    assert_frames_match(ev.cube, nv.cube, sort_by=[*by, "feature", *grid], what="cube")
    assert_frames_match(ev.overall, nv.overall, sort_by=[*by, "average", *grid], what="overall")
    assert_frames_match(ev.confusion, nv.confusion,
                        sort_by=[*by, *grid, "gt_feature", "pd_feature"], what="confusion")
    assert_frames_match(ev.data_rows, nv.data_rows, sort_by=[*keys, *by, *grid],
                        what="data_rows")
    excluded = ev.excluded
    want = nv.excluded
    if not set(by) <= set(excluded.columns):  # by columns on `excluded` are optional
        want = want.drop(by)
    assert_frames_match(excluded, want, sort_by=keys, what="excluded")


def assert_views_match(ev, nv, ds: Dataset, data) -> None:
    """confusion_matrix, examples, pr_curve, best_thresholds at a drawn (c, t) cell."""
    keys, by = ds.keys, list(ds.kwargs.get("by", []))
    if not nv.rows:
        return
    c = data.draw(st.sampled_from(nv.confidence_thresholds), label="c")
    t = data.draw(st.sampled_from(nv.iou_thresholds), label="t")

    if not by:
        want = nv.confusion_matrix(c, t)
        got = ev.confusion_matrix(confidence=c, iou=t)
        assert got.columns == want.columns, (got.columns, want.columns)
        assert got["gt_feature"].to_list() == want["gt_feature"].to_list()
        assert_frames_match(got, want, sort_by=["gt_feature"], what="confusion_matrix")

    names = sorted({f for row in nv.rows for f in row.features})
    for g in [*names, None]:
        for p in [*names, None]:
            if g is None and p is None:  # empty by definition
                continue
            want = nv.examples(g, p, c, t)
            got = ev.examples(gt_feature=g, pd_feature=p, confidence=c, iou=t)
            got_rows = sorted(got.select([*keys, "gt_id", "pd_id", "iou"]).rows(),
                              key=naive._sort_key)
            assert len(got_rows) == len(want), (g, p, c, t, got_rows, want)
            for a, b in zip(got_rows, want, strict=True):
                assert a[:-1] == b[:-1], (g, p, c, t, got_rows, want)
                if b[-1] is None:  # unmatched: no pair, so no pair IoU
                    assert a[-1] is None, (g, p, c, t, got_rows, want)
                else:
                    assert math.isclose(a[-1], b[-1], rel_tol=0, abs_tol=1e-12), (a, b)

    curve_cols = [*by, "feature", "confidence_threshold", "precision", "recall", "f1"]
    assert_frames_match(ev.pr_curve(iou=t).select(curve_cols), nv.pr_curve(t),
                        sort_by=[*by, "feature", "confidence_threshold"], what="pr_curve")
    best_want = nv.best_thresholds(t)
    best_got = ev.best_thresholds(iou=t).select(curve_cols)
    # a group whose F1 is undefined at every threshold: absent, or reported with null F1
    undefined = best_got.join(best_want.select([*by, "feature"]), on=[*by, "feature"],
                              how="anti", nulls_equal=True)
    assert undefined["f1"].null_count() == undefined.height, undefined
    best_got = best_got.join(best_want.select([*by, "feature"]), on=[*by, "feature"],
                             how="semi", nulls_equal=True)
    assert_frames_match(best_got, best_want, sort_by=[*by, "feature"], what="best_thresholds")


# --------------------------------------------------------------------------------------------
# The cube and everything built on it
# --------------------------------------------------------------------------------------------


@settings(max_examples=n_examples(250), **SETTINGS)
@given(ds=datasets(), data=st.data())
def test_engine_equals_naive(ds: Dataset, data) -> None:
    ev, nv = engine_and_naive(ds)
    assert_core_frames_match(ev, nv, ds)
    assert_views_match(ev, nv, ds, data)


@settings(max_examples=n_examples(40), **SETTINGS)
@given(ds=datasets(max_rows=3, max_gt=8, max_pd=10, by_modes=("none",)), data=st.data())
def test_engine_equals_naive_crowded_rows(ds: Dataset, data) -> None:
    """Fewer, fuller rows: long tie chains and many competing pairs per row."""
    ev, nv = engine_and_naive(ds)
    assert_core_frames_match(ev, nv, ds)
    assert_views_match(ev, nv, ds, data)


@settings(max_examples=n_examples(40), **SETTINGS)
@given(ds=datasets(coordinates="continuous", max_gt=6, max_pd=8), data=st.data())
def test_engine_equals_naive_continuous(ds: Dataset, data) -> None:
    ev, nv = engine_and_naive(ds)
    assert_core_frames_match(ev, nv, ds)
    assert_views_match(ev, nv, ds, data)


@settings(max_examples=n_examples(25), **SETTINGS)
@given(ds=datasets(max_rows=3))
def test_default_thresholds_equal_naive(ds: Dataset) -> None:
    ds.kwargs.pop("confidence_thresholds", None)
    ds.kwargs.pop("iou_thresholds", None)
    ev, nv = engine_and_naive(ds)
    assert ev.cube["confidence_threshold"].unique().sort().to_list() in (
        [], [i / 10 for i in range(11)])
    assert_core_frames_match(ev, nv, ds)


# --------------------------------------------------------------------------------------------
# IoU
# --------------------------------------------------------------------------------------------


@settings(max_examples=n_examples(60), **SETTINGS)
@given(ds=datasets(by_modes=("none",), with_thresholds=False))
def test_pairwise_iou_equals_naive(ds: Dataset) -> None:
    keys = ds.keys
    got = pm.pairwise_iou(ds.gt, ds.pd, **({"data_row": ds.kwargs["data_row"]}
                                           if "data_row" in ds.kwargs else {}))
    gts, pds = naive._read(ds.gt, keys, False), naive._read(ds.pd, keys, True)
    want = sorted(
        ((*g.key, g.id, p.id, naive.box_iou(g.box, p.box)) for g in gts for p in pds
         if g.key == p.key and naive.box_iou(g.box, p.box) > 0),
        key=naive._sort_key,
    )
    assert got.columns == [*keys, "gt_id", "pd_id", "iou"]
    got_rows = sorted(got.rows(), key=naive._sort_key)
    assert [r[:-1] for r in got_rows] == [r[:-1] for r in want]
    for a, b in zip(got_rows, want, strict=True):
        assert math.isclose(a[-1], b[-1], rel_tol=0, abs_tol=1e-15), (a, b)


@settings(max_examples=n_examples(100), **SETTINGS)
@given(st.lists(st.tuples(st.one_of(grid_boxes(), continuous_boxes_strategy()),
                          st.one_of(grid_boxes(), continuous_boxes_strategy())), max_size=20))
def test_box_iou_expression_equals_naive(pairs) -> None:
    frame = pl.DataFrame(
        {"a": [list(a) for a, _ in pairs], "b": [list(b) for _, b in pairs]},
        schema={"a": pl.Array(pl.Float64, 4), "b": pl.Array(pl.Float64, 4)},
    )
    got = frame.select(pl.col("a").pm.box_iou(pl.col("b")).alias("iou"))["iou"].to_list()
    want = [naive.box_iou(a, b) for a, b in pairs]
    assert len(got) == len(want)
    for x, y in zip(got, want, strict=True):
        assert math.isclose(x, y, rel_tol=0, abs_tol=1e-15), (x, y)
        assert 0.0 <= x <= 1.0


@pytest.mark.parametrize(
    "a, b, iou",
    [
        ((0, 0, 10, 10), (0, 0, 10, 5), 0.5),
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),  # touching edges
        ((0, 0, 10, 10), (5, 5, 5, 5), 0.0),  # zero-area point inside
        ((2, 2, 2, 8), (2, 2, 2, 8), 0.0),  # identical zero-area boxes
        ((0, 0, 2, 1), (1, 0, 3, 1), 1 / 3),
        ((0, 0, 4, 4), (1, 1, 3, 3), 0.25),
    ],
)
def test_naive_box_iou_known_values(a, b, iou) -> None:
    assert naive.box_iou(a, b) == iou
    assert naive.box_iou(b, a) == iou


def test_naive_thresholds_normalization() -> None:
    assert naive.normalize_thresholds(np.linspace(0, 1, 11)) == [i / 10 for i in range(11)]
    assert naive.normalize_thresholds([0.5, 0.30000000004, 0.3, 0.5]) == [0.3, 0.5]
    assert naive.normalize_thresholds([0.300000001, 0.3000000001, 0.3]) == [0.3, 0.300000001]


# --------------------------------------------------------------------------------------------
# More shapes: a crowded image, the fine PR grid, dropped invalid rows, another key name
# --------------------------------------------------------------------------------------------


def test_more_than_100_detections_in_one_image() -> None:
    """One image with 40 ground truths and 150 predictions (many overlapping, some tied)."""
    rng = np.random.default_rng(7)
    def boxes(n):
        x0 = rng.integers(0, 30, n) / 2
        y0 = rng.integers(0, 30, n) / 2
        w = rng.integers(0, 12, n) / 2
        h = rng.integers(1, 12, n) / 2
        return [[a, b, a + c, b + d] for a, b, c, d in zip(x0, y0, w, h, strict=True)]
    feats = ["cat", "dog", "eel"]
    gt = pl.DataFrame({"data_row": [1] * 40, "feature": rng.choice(feats, 40).tolist(),
                       "bbox": boxes(40)}, schema_overrides={"bbox": pl.Array(pl.Float64, 4)})
    pd_boxes = boxes(110) + [list(b) for b in gt["bbox"].to_list()]  # 40 exact duplicates
    conf = rng.choice([0.1, 0.3, 0.5, 0.9, None], 150).tolist()
    pd = pl.DataFrame({"data_row": [1] * 150, "feature": rng.choice(feats, 150).tolist(),
                       "bbox": pd_boxes, "confidence": conf},
                      schema_overrides={"bbox": pl.Array(pl.Float64, 4),
                                        "confidence": pl.Float64})
    ds = Dataset(gt, pd, dict(confidence_thresholds=[0.0, 0.3, 0.6, 1.0],
                              iou_thresholds=[0.0, 0.25, 0.5, 0.75]))
    ev, nv = engine_and_naive(ds)
    assert_core_frames_match(ev, nv, ds)
    assert_views_match(ev, nv, ds, _FixedDraw())


class _FixedDraw:
    """Stands in for Hypothesis' ``data`` outside @given: always draws the middle element."""

    def draw(self, strategy, label=None):
        values = strategy.wrapped_strategy.elements if hasattr(strategy, "wrapped_strategy") \
            else strategy.elements
        return values[len(values) // 2]


@settings(max_examples=n_examples(20), **SETTINGS)
@given(ds=datasets(max_rows=4, with_thresholds=False), t=st.sampled_from([0.0, 0.5, 0.7]))
def test_fine_pr_curve_equals_naive_on_101_points(ds: Dataset, t: float) -> None:
    fine = {"confidence_thresholds": pm.FINE_CONFIDENCE_THRESHOLDS, "iou_thresholds": [t]}
    ev = pm.evaluate(ds.gt, ds.pd, **{**ds.kwargs, **fine})
    with pytest.raises(pm.PolarsMetricsError, match="keeps no input tables"):
        pm.evaluate(ds.gt, ds.pd, **ds.kwargs).pr_curve(iou=t, fine=True)
    nv = naive.evaluate(ds.gt, ds.pd, **{**ds.kwargs, "confidence_thresholds":
                                         np.linspace(0, 1, 101), "iou_thresholds": [t]})
    by = list(ds.kwargs.get("by", []))
    cols = [*by, "feature", "confidence_threshold", "precision", "recall", "f1"]
    got = ev.pr_curve(iou=t).select(cols)
    assert_frames_match(got, nv.pr_curve(t), sort_by=[*by, "feature", "confidence_threshold"],
                        what="pr_curve(fine=True)")


@settings(max_examples=n_examples(40), **SETTINGS)
@given(ds=datasets(ids=("int",), by_modes=("none",)), data=st.data())
def test_dropped_invalid_rows_do_not_count(ds: Dataset, data) -> None:
    """on_invalid="drop": the result is the naive result on the valid rows alone."""
    bad_boxes = [[5.0, 0.0, 1.0, 1.0], [0.0, 0.0, float("nan"), 1.0], [0.0, float("inf"), 1, 2]]
    gt, pd = ds.gt, ds.pd
    n_bad_gt = n_bad_pd = 0
    if gt.height:
        i = data.draw(st.integers(0, gt.height - 1))
        gt = gt.with_columns(pl.when(pl.int_range(pl.len()) == i)
                             .then(pl.lit(data.draw(st.sampled_from(bad_boxes)),
                                          dtype=pl.Array(pl.Float64, 4)))
                             .otherwise(pl.col("bbox")).alias("bbox"))
        n_bad_gt = 1
    if pd.height:
        j = data.draw(st.integers(0, pd.height - 1))
        pd = pd.with_columns(pl.when(pl.int_range(pl.len()) == j)
                             .then(pl.lit(data.draw(st.sampled_from([1.5, -0.1, float("nan")]))))
                             .otherwise(pl.col("confidence")).alias("confidence"))
        n_bad_pd = 1
    ev = pm.evaluate(gt, pd, on_invalid="drop", **ds.kwargs)
    # one rejected input row may be reported once per failed check
    assert ev.rejects.select("table", "row").unique().height == n_bad_gt + n_bad_pd
    good_gt = gt.filter(pl.int_range(pl.len()) != i) if n_bad_gt else gt
    good_pd = pd.filter(pl.int_range(pl.len()) != j) if n_bad_pd else pd
    nv = naive.evaluate(good_gt, good_pd, **ds.kwargs)
    assert_core_frames_match(ev, nv, ds)


@settings(max_examples=n_examples(20), **SETTINGS)
@given(ds=datasets(key_kinds=("int", "str"), by_modes=("none", "table")))
def test_any_key_column_name(ds: Dataset) -> None:
    gt, pd = (f.rename({"data_row": "image_id"}) for f in (ds.gt, ds.pd))
    ds = Dataset(gt, pd, {**ds.kwargs, "data_row": "image_id"})
    ev, nv = engine_and_naive(ds)
    assert_core_frames_match(ev, nv, ds)
    assert "data_row" not in ev.data_rows.columns
