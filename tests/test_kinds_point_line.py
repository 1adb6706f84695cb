"""Points and lines: buffered discs / buffers against shapely's ``buffer`` (to 1e-9), the exact
circle option, the radius switch, and the expression namespace."""
from __future__ import annotations

import math
import os

import naive_kinds as naive
import numpy as np
import polars as pl
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies_kinds import line_value, point_value

import polars_metrics as pm
from polars_metrics.kinds.point import disc_offsets

TOL = 1e-9
SETTINGS = settings(max_examples=int(50 * float(os.environ.get("PM_EXAMPLES_SCALE", "1"))),
                    deadline=None, suppress_health_check=[HealthCheck.too_slow])


def table(kind: str, values: list, rows: list[str]) -> pl.DataFrame:
    dtype = pm.POINT_DTYPE if kind == "point" else pm.LINE_DTYPE
    return pl.DataFrame({"data_row": rows, "id": list(range(len(values))), "feature": ["f"] * len(values),
                         kind: values}, schema_overrides={kind: dtype})


def engine(gt, pd, **kw) -> dict:
    return {(r, g, p): v for r, g, p, v in pm.pairwise_iou(gt, pd, **kw).iter_rows()}


def reference(kind, gt_values, gt_rows, pd_values, pd_rows, **kw) -> dict:
    gt = [{"data_row": r, "id": i, "kind": kind, kind: v} for i, (v, r) in enumerate(zip(gt_values, gt_rows, strict=True))]
    pd = [{"data_row": r, "id": i, "kind": kind, kind: v} for i, (v, r) in enumerate(zip(pd_values, pd_rows, strict=True))]
    return {(r, g, p): v for r, g, p, v in naive.pairs(gt, pd, **kw)}


def assert_same(got: dict, want: dict) -> None:
    for key in set(got) | set(want):
        assert abs(got.get(key, 0.0) - want.get(key, 0.0)) <= TOL, (key, got.get(key), want.get(key))


def test_disc_vertices_are_shapely_buffer_bit_for_bit():
    rng = np.random.default_rng(0)
    for radius in (70.0, 1.0, 12.3):
        ox, oy = disc_offsets(radius)
        for cx, cy in rng.uniform(-1e4, 1e4, (50, 2)):
            want = np.asarray(shapely.Point(cx, cy).buffer(radius).exterior.coords)[:-1]
            assert want.shape == (64, 2)
            assert np.array_equal(want, np.c_[cx + ox, cy + oy])


rows = st.sampled_from(["a", "b"])


@SETTINGS
@given(st.lists(st.tuples(point_value(), rows), min_size=1, max_size=8),
       st.lists(st.tuples(point_value(), rows), min_size=1, max_size=8))
def test_point_pairs_match_shapely_buffer(gt, pd):
    gv, gr = zip(*gt, strict=True)
    pv, pr = zip(*pd, strict=True)
    got = engine(table("point", list(gv), list(gr)), table("point", list(pv), list(pr)))
    assert_same(got, reference("point", gv, gr, pv, pr))


@SETTINGS
@given(st.lists(st.tuples(point_value(), rows), min_size=1, max_size=8),
       st.lists(st.tuples(point_value(), rows), min_size=1, max_size=8),
       st.sampled_from([70.0, 5.0, 150.0]))
def test_circle_option_and_radius(gt, pd, radius):
    gv, gr = zip(*gt, strict=True)
    pv, pr = zip(*pd, strict=True)
    got = engine(table("point", list(gv), list(gr)), table("point", list(pv), list(pr)),
                 point_iou="circle", buffer_radius=radius)
    assert_same(got, reference("point", gv, gr, pv, pr, point_iou="circle", radius=radius))


@SETTINGS
@given(st.lists(st.tuples(line_value(), rows), min_size=1, max_size=5),
       st.lists(st.tuples(line_value(), rows), min_size=1, max_size=5))
def test_line_pairs_match_shapely_buffer(gt, pd):
    gv, gr = zip(*gt, strict=True)
    pv, pr = zip(*pd, strict=True)
    got = engine(table("line", list(gv), list(gr)), table("line", list(pv), list(pr)))
    assert_same(got, reference("line", gv, gr, pv, pr))


def test_point_hand_values():
    # one radius apart: 64-gon and circle values known in closed form
    gt = table("point", [[0.0, 0.0]], ["r"])
    pd = table("point", [[70.0, 0.0]], ["r"])
    d, r = 70.0, 70.0
    lens = 2 * r * r * math.acos(d / (2 * r)) - d / 2 * math.sqrt(4 * r * r - d * d)
    assert engine(gt, pd, point_iou="circle")[("r", 0, 0)] == pytest.approx(lens / (2 * math.pi * r * r - lens), abs=1e-14)
    a, b = shapely.Point(0, 0).buffer(70), shapely.Point(70, 0).buffer(70)
    assert engine(gt, pd)[("r", 0, 0)] == pytest.approx(a.intersection(b).area / a.union(b).area, abs=1e-12)
    # the same point: 1; two radii apart: no pair
    assert engine(gt, gt)[("r", 0, 0)] == pytest.approx(1.0, abs=1e-15)
    assert engine(gt, table("point", [[140.0, 0.0]], ["r"])) == {}


def test_point_and_line_checks():
    bad = table("point", [[0.0, float("nan")]], ["r"])
    with pytest.raises(pm.InvalidAnnotationError, match="point has a NaN"):
        pm.pairwise_iou(bad, bad)
    short = table("line", [[[0.0, 0.0]]], ["r"])
    with pytest.raises(pm.InvalidAnnotationError, match="fewer than 2 points"):
        pm.pairwise_iou(short, short)
    with pytest.raises(pm.ProfileError, match="buffer_radius"):
        pm.pairwise_iou(table("point", [[0.0, 0.0]], ["r"]), table("point", [[0.0, 0.0]], ["r"]),
                        buffer_radius=-1.0)
    with pytest.raises(pm.ProfileError, match="did you mean|Did you mean"):
        pm.pairwise_iou(table("point", [[0.0, 0.0]], ["r"]), table("point", [[0.0, 0.0]], ["r"]),
                        buffer_radis=1.0)


def test_points_accept_structs_and_lists():
    gt = pl.DataFrame({"data_row": ["r"], "feature": ["f"], "point": [{"x": 1.0, "y": 2.0}]})
    pd = pl.DataFrame({"data_row": ["r"], "feature": ["f"], "point": [[1, 2]]})
    assert pm.pairwise_iou(gt, pd)["iou"].to_list() == [pytest.approx(1.0)]


def test_expressions_match_pairwise():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 200, (30, 2)).astype(float)
    b = rng.integers(0, 200, (30, 2)).astype(float)
    df = pl.DataFrame({"a": a, "b": b}, schema={"a": pm.POINT_DTYPE, "b": pm.POINT_DTYPE})
    got = df.select(pl.col("a").pm.point_iou("b")).to_series().to_numpy()
    want = [naive.area_iou(shapely.Point(p).buffer(70), shapely.Point(q).buffer(70)) for p, q in zip(a, b, strict=True)]
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)
    circ = df.select(pl.col("a").pm.point_iou("b", radius=50, how="circle")).to_series().to_numpy()
    np.testing.assert_allclose(circ, [naive.circle_iou(p, q, 50) for p, q in zip(a, b, strict=True)], atol=TOL, rtol=0)
    lines = pl.DataFrame({"a": [a[:3].tolist(), a[3:5].tolist()], "b": [b[:2].tolist(), None]},
                         schema={"a": pm.LINE_DTYPE, "b": pm.LINE_DTYPE})
    got = lines.select(pl.col("a").pm.line_iou("b", radius=30)).to_series().to_list()
    la, lb = shapely.LineString(a[:3]).buffer(30), shapely.LineString(b[:2]).buffer(30)
    assert got[1] is None and got[0] == pytest.approx(naive.area_iou(la, lb), abs=TOL)
