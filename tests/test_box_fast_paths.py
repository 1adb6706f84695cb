"""The fast box path (issue 12) gives the frames of the implementation before it.

Frozen frames: ``tests/data/box_fast/`` holds cube, confusion, data_rows, overall and
excluded written by the implementation before the fast path (``tests/box_fast_cases.py``),
on random cases with IoU ties, confidences exactly at thresholds, data rows with only ground
truth / only predictions / nothing, out-of-order input and dropped rows; today's frames must
equal them exactly (floats bit for bit). The same cases also match the naive reference, and
the new kernels are compared with numpy on random data.
"""
from __future__ import annotations

import naive
import numpy as np
import polars as pl
import pytest
from box_fast_cases import CASES, GOLDEN, case, frames
from naive import assert_frames_match

import polars_metrics as pm
from polars_metrics._kernels.aot import kernel
from polars_metrics.kinds.box import box_pairs

count_at_or_below = kernel("sorting", "count_at_or_below")


@pytest.mark.parametrize(("seed", "kwargs"), CASES)
def test_frames_equal_the_frozen_ones(seed, kwargs):
    gt, pd, data_rows = case(seed)
    with pytest.warns(pm.PolarsMetricsWarning) if kwargs.get("on_invalid") else _nothing():
        ev = pm.evaluate(gt, pd, data_rows=data_rows, **kwargs)
    for name, got in frames(ev).items():
        want = pl.read_parquet(GOLDEN / f"{seed}_{name}.parquet")
        assert got.schema == want.schema, name
        assert got.equals(want), (name, got, want)


@pytest.mark.parametrize(("seed", "kwargs"), [c for c in CASES if "on_invalid" not in c[1]])
def test_frames_match_the_naive_reference(seed, kwargs):
    gt, pd, data_rows = case(seed)
    ev = pm.evaluate(gt, pd, data_rows=data_rows, **kwargs)
    nv = naive.evaluate(gt, pd, data_rows=data_rows, **kwargs)
    grid = ["confidence_threshold", "iou_threshold"]
    assert_frames_match(ev.cube, nv.cube, sort_by=["feature", *grid], what="cube")
    assert_frames_match(ev.confusion, nv.confusion,
                        sort_by=[*grid, "gt_feature", "pd_feature"], what="confusion")
    assert_frames_match(ev.data_rows, nv.data_rows, sort_by=["data_row", *grid],
                        what="data_rows")
    # the cases do have the edge cases they are for
    reasons = set(ev.excluded["reason"].to_list())
    assert {"no ground truth", "no predictions", "no annotations"} <= reasons
    assert pd["confidence"].is_in(ev.cube["confidence_threshold"].unique().implode()).any()


def test_count_at_or_below_is_searchsorted_right():
    rng = np.random.default_rng(0)
    thr = np.array([0.0, 0.1, 0.25, 0.5, 0.5, 0.9, 1.0])
    values = np.concatenate([rng.random(1000), thr, [np.nan, -0.1, 1.1, 0.0, 1.0]])
    got = count_at_or_below(thr, values)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, np.searchsorted(thr, values, side="right"))
    assert count_at_or_below(np.zeros(0), values[:3]).tolist() == [0, 0, 0]


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 100, 1000])
def test_argsort_kv_is_a_stable_descending_sort(n):
    from polars_metrics._kernels.sorting import argsort_desc_stable_kv

    rng = np.random.default_rng(n)
    values = rng.integers(0, 7, n) / 7.0  # many ties
    idx, buf = np.empty(n, np.int64), np.empty(n, np.int64)
    which = argsort_desc_stable_kv.py_func(values, idx, buf, np.empty(n), np.empty(n))
    np.testing.assert_array_equal((buf if which else idx)[:n], np.argsort(-values, kind="stable"))
    passes, width = 0, 16  # merge passes over sorted runs of 16: the order ends in buf if odd
    while width < n:
        passes, width = passes + 1, 2 * width
    assert which == passes % 2


def test_box_pairs_through_an_index_equal_pairs_of_gathered_boxes():
    rng = np.random.default_rng(1)
    boxes = np.sort(rng.integers(0, 8, (400, 4)).astype(np.float64).reshape(400, 2, 2), axis=1)
    boxes = np.ascontiguousarray(boxes.transpose(0, 2, 1).reshape(400, 4))
    boxes = np.ascontiguousarray(boxes[:, [0, 2, 1, 3]])  # (x0, y0, x1, y1), x0 <= x1, y0 <= y1
    g_idx = rng.permutation(400)[:150].astype(np.int32)
    p_idx = rng.permutation(400)[:250].astype(np.int32)
    g_off = np.r_[0, np.sort(rng.integers(0, 151, 19)), 150].astype(np.int64)
    p_off = np.r_[0, np.sort(rng.integers(0, 251, 19)), 250].astype(np.int64)
    got = box_pairs(boxes, g_idx, g_off, boxes, p_idx, p_off)
    want = box_pairs(np.ascontiguousarray(boxes[g_idx]), None, g_off,
                     np.ascontiguousarray(boxes[p_idx]), None, p_off)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    # and the naive IoU of every listed pair, gt-major per row
    off, g, p, iou = got
    for r in range(20):
        expected = [(i, j, naive.box_iou(boxes[g_idx[i]], boxes[p_idx[j]]))
                    for i in range(g_off[r], g_off[r + 1]) for j in range(p_off[r], p_off[r + 1])]
        expected = [e for e in expected if e[2] > 0]
        sl = slice(off[r], off[r + 1])
        listed = list(zip(g[sl], p[sl], iou[sl], strict=True))
        assert [(a, b) for a, b, _ in listed] == [(a, b) for a, b, _ in expected]
        np.testing.assert_allclose([v for *_, v in listed], [v for *_, v in expected], rtol=1e-15)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
