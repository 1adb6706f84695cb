"""Polygons (and boxes as polygons): the engine's pairs vs the naive shapely reference, repair,
checks, dtypes, and the cross-kind properties of issue 3."""
from __future__ import annotations

import math
import warnings

import naive_kinds as naive
import numpy as np
import polars as pl
import pytest
import shapely
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from strategies_kinds import box_value, multipolygon_value, polygon_value

import polars_metrics as pm
from polars_metrics.kinds import polygon as polygon_kind

TOL = 1e-9
SETTINGS = settings(max_examples=int(60 * float(__import__("os").environ.get("PM_EXAMPLES_SCALE", "1"))), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def frame(records: list[dict], *, multi: bool = False) -> pl.DataFrame:
    """Records {data_row, kind, polygon | bbox} → an input table (ids 0..n-1)."""
    poly = []
    for r in records:
        value = r.get("polygon")
        if value is not None and multi and isinstance(value[0][0][0], float | int):
            value = [value]
        poly.append(value)
    return pl.DataFrame({
        "data_row": [r["data_row"] for r in records],
        "id": list(range(len(records))),
        "feature": ["f"] * len(records),
        "kind": [r["kind"] for r in records],
        "polygon": poly,
        "bbox": [r.get("bbox") for r in records],
    }, schema_overrides={"polygon": pm.MULTIPOLYGON_DTYPE if multi else pm.POLYGON_DTYPE,
                         "bbox": pm.BBOX_DTYPE})


def pairwise(gt: pl.DataFrame, pd: pl.DataFrame, **kw) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pm.PolarsMetricsWarning)
        out = pm.pairwise_iou(gt, pd, **kw)
    return {(r, g, p): v for r, g, p, v in out.iter_rows()}


def assert_same_pairs(got: dict, want: dict) -> None:
    for key in set(got) | set(want):
        a, b = got.get(key, 0.0), want.get(key, 0.0)
        assert abs(a - b) <= TOL, (key, a, b)
    # pairs only present on one side must be rounding noise of touching shapes
    assert all(v > 0 for v in got.values())


def naive_pairs(gt_records, pd_records) -> dict:
    with_ids = [dict(r, id=i) for i, r in enumerate(gt_records)]
    pd_ids = [dict(r, id=i) for i, r in enumerate(pd_records)]
    return {(r, g, p): v for r, g, p, v in naive.pairs(with_ids, pd_ids)}


@st.composite
def annotation(draw, rows=("a", "b"), multi=False):
    kind = draw(st.sampled_from(["polygon", "polygon", "box"]))
    rec = {"data_row": draw(st.sampled_from(rows)), "kind": kind}
    if kind == "box":
        rec["bbox"] = draw(box_value())
    else:
        rec["polygon"] = draw(multipolygon_value() if multi and draw(st.booleans()) else polygon_value())
    return rec


@SETTINGS
@given(st.lists(annotation(), min_size=1, max_size=6), st.lists(annotation(), min_size=1, max_size=6))
def test_polygon_and_box_pairs_match_naive(gt, pd):
    assert_same_pairs(pairwise(frame(gt), frame(pd)), naive_pairs(gt, pd))


@SETTINGS
@given(st.lists(annotation(multi=True), min_size=1, max_size=5),
       st.lists(annotation(multi=True), min_size=1, max_size=5))
def test_multipolygon_pairs_match_naive(gt, pd):
    assert_same_pairs(pairwise(frame(gt, multi=True), frame(pd, multi=True)), naive_pairs(gt, pd))


def _by_row(gt: pl.DataFrame, pd: pl.DataFrame, **kw) -> dict:
    return {r: v for (r, _, _), v in pairwise(gt, pd, **kw).items()}


@settings(SETTINGS, max_examples=max(1, SETTINGS.max_examples // 3))
@given(st.lists(st.tuples(box_value(), box_value()), min_size=1, max_size=25))
def test_box_iou_equals_polygon_iou_of_the_rectangle(cases):
    # a degenerate rectangle is not a polygon (fewer than 3 distinct points): boxes only
    cases = [(a, b) for a, b in cases if a[2] > a[0] and a[3] > a[1]]
    assume(cases)
    rows = [str(i) for i in range(len(cases))]
    rect = [[[[a[0], a[1]], [a[2], a[1]], [a[2], a[3]], [a[0], a[3]]]] for a, _ in cases]
    as_box = _by_row(frame([{"data_row": r, "kind": "box", "bbox": a} for r, (a, _) in zip(rows, cases, strict=True)]),
                     frame([{"data_row": r, "kind": "box", "bbox": b} for r, (_, b) in zip(rows, cases, strict=True)]))
    as_poly = _by_row(frame([{"data_row": r, "kind": "polygon", "polygon": p} for r, p in zip(rows, rect, strict=True)]),
                      frame([{"data_row": r, "kind": "box", "bbox": b} for r, (_, b) in zip(rows, cases, strict=True)]))
    for r, (a, b) in zip(rows, cases, strict=True):
        want = naive.area_iou(naive.box_geometry(a), naive.box_geometry(b))
        assert as_box.get(r, 0.0) == pytest.approx(want, abs=1e-12)
        assert as_poly.get(r, 0.0) == pytest.approx(want, abs=1e-12)


@settings(SETTINGS, max_examples=max(1, SETTINGS.max_examples // 3))
@given(st.lists(st.tuples(polygon_value(), polygon_value()), min_size=1, max_size=15))
def test_iou_is_symmetric_bounded_and_one_with_itself(cases):
    rows = [str(i) for i in range(len(cases))]
    fa = frame([{"data_row": r, "kind": "polygon", "polygon": a} for r, (a, _) in zip(rows, cases, strict=True)])
    fb = frame([{"data_row": r, "kind": "polygon", "polygon": b} for r, (_, b) in zip(rows, cases, strict=True)])
    ab, ba, aa = _by_row(fa, fb), _by_row(fb, fa), _by_row(fa, fa)
    for r, (a, _) in zip(rows, cases, strict=True):
        assert ab.get(r, 0.0) == pytest.approx(ba.get(r, 0.0), abs=1e-12)
        assert 0.0 <= ab.get(r, 0.0) <= 1.0
        if naive.polygon_geometry(a).area > 1e-9:
            assert aa[r] == pytest.approx(1.0, abs=1e-12)


def test_hand_case_l_shape_and_hole():
    # an L (area 3) against the unit square at its corner (area 1): IoU 1/3
    ell = [[[0, 0], [2, 0], [2, 1], [1, 1], [1, 2], [0, 2]]]
    gt = frame([{"data_row": "r", "kind": "polygon", "polygon": ell}])
    pd = frame([{"data_row": "r", "kind": "box", "bbox": [0.0, 0.0, 1.0, 1.0]}])
    assert pairwise(gt, pd)[("r", 0, 0)] == pytest.approx(1 / 3, abs=1e-15)
    # a 4x4 square with a 2x2 hole (area 12) against the hole: no overlap
    holed = [[[0, 0], [4, 0], [4, 4], [0, 4]], [[1, 1], [1, 3], [3, 3], [3, 1]]]
    gt = frame([{"data_row": "r", "kind": "polygon", "polygon": holed}])
    pd = frame([{"data_row": "r", "kind": "box", "bbox": [1.0, 1.0, 3.0, 3.0]},
                {"data_row": "r", "kind": "box", "bbox": [0.0, 0.0, 4.0, 4.0]}])
    assert pairwise(gt, pd) == {("r", 0, 1): pytest.approx(12 / 16, abs=1e-15)}


def test_closing_vertex_and_list_points_are_accepted():
    open_ring = [[0.0, 0.0], [4.0, 0.0], [4.0, 3.0]]
    closed = open_ring + [open_ring[0]]
    gt = pl.DataFrame({"data_row": ["r"], "feature": ["f"], "polygon": [[closed]]})  # List(List(List(f64)))
    pd = pl.DataFrame({"data_row": ["r"], "feature": ["f"], "polygon": [[open_ring]]})
    assert gt.schema["polygon"] == pl.List(pl.List(pl.List(pl.Float64)))
    assert pm.pairwise_iou(gt, pd)["iou"].to_list() == [pytest.approx(1.0)]


def test_bad_dtype_and_point_width_fail_clearly():
    bad = pl.DataFrame({"data_row": ["r"], "feature": ["f"], "polygon": [[[[0.0, 0.0, 1.0]] * 3]]})
    with pytest.raises(pm.SchemaError, match=r"exactly \(x, y\)"):
        pm.pairwise_iou(bad, bad)
    bad = pl.DataFrame({"data_row": ["r"], "feature": ["f"], "kind": ["polygon"], "polygon": ["x"]})
    with pytest.raises(pm.SchemaError, match="ground_truth.polygon has dtype String"):
        pm.pairwise_iou(bad, bad)


def test_self_intersection_is_repaired_and_reported():
    bowtie = [[[0, 0], [10, 10], [10, 0], [0, 10]]]
    gt = frame([{"data_row": "r", "kind": "polygon", "polygon": bowtie}])
    pd = frame([{"data_row": "r", "kind": "box", "bbox": [0.0, 0.0, 10.0, 5.0]}])
    with pytest.warns(pm.PolarsMetricsWarning, match=r"1 invalid polygon\(s\) repaired"):
        got = pm.pairwise_iou(gt, pd)
    # two triangles of area 25 each; the lower half-box keeps 12.5 of each: 25 / (50 + 50 - 25)
    assert got["iou"].to_list() == [pytest.approx(1 / 3, abs=1e-12)]
    fixed, repairs = polygon_kind.repair(gt, "ground_truth")
    assert repairs.select("table", "row", "id", "parts", "area").rows() == [("ground_truth", 0, "0", 2, 50.0)]
    assert repairs["reason"].item().startswith("Self-intersection")
    # the column became multipolygons (the repair split the polygon in two)
    assert fixed.schema["polygon"] == pm.MULTIPOLYGON_DTYPE
    assert naive.polygon_geometry(fixed["polygon"][0].to_list()).area == pytest.approx(50.0)


def test_valid_polygons_are_not_touched():
    star = [[[math.cos(a) * (1 + i % 2), math.sin(a) * (1 + i % 2)]
             for i, a in enumerate(np.linspace(0, 2 * math.pi, 300, endpoint=False))]]
    gt = frame([{"data_row": "r", "kind": "polygon", "polygon": star}])
    fixed, repairs = polygon_kind.repair(gt, "ground_truth")
    assert repairs.height == 0 and fixed.equals(gt)
    # the same ring with two vertices swapped crosses itself: found by GEOS (ring > numba limit)
    ring = star[0][:]
    ring[10], ring[150] = ring[150], ring[10]
    assert not shapely.Polygon(ring).is_valid
    _, repairs = polygon_kind.repair(frame([{"data_row": "r", "kind": "polygon", "polygon": [ring]}]), "gt")
    assert repairs.height == 1


def test_collapsed_polygon_becomes_empty_with_zero_iou():
    flat = [[[0, 0], [1, 1], [2, 2], [3, 3]]]
    gt = frame([{"data_row": "r", "kind": "polygon", "polygon": flat}])
    pd = frame([{"data_row": "r", "kind": "box", "bbox": [0.0, 0.0, 3.0, 3.0]}])
    with pytest.warns(pm.PolarsMetricsWarning):
        assert pm.pairwise_iou(gt, pd).height == 0
    fixed, repairs = polygon_kind.repair(gt, "ground_truth")
    assert fixed["polygon"].to_list() == [[]] and repairs["parts"].to_list() == [0]


@pytest.mark.parametrize("ring, reason", [
    ([[0, 0], [1, 1], [0, 0]], "fewer than 3 distinct points"),
    ([[0, 0], [1, 0], [float("nan"), 1]], "NaN or infinite coordinate"),
])
def test_checks_name_the_row(ring, reason):
    gt = frame([{"data_row": "r", "kind": "polygon", "polygon": [[[0, 0], [2, 0], [2, 2]]]},
                {"data_row": "r", "kind": "polygon", "polygon": [ring]}])
    with pytest.raises(pm.InvalidAnnotationError, match=reason) as info:
        pm.pairwise_iou(gt, gt)
    assert "id=1" in str(info.value) and "ground_truth.polygon" in str(info.value)
    ev = pm.evaluate(gt, gt, on_invalid="drop", confidence_thresholds=[0.0], iou_thresholds=[0.5])
    assert ev.rejects.filter(pl.col("table") == "ground_truth").select("row", "column").rows() == [(1, "polygon")]
    assert reason in ev.rejects["reason"][0]


def test_null_polygon_is_an_error():
    gt = frame([{"data_row": "r", "kind": "polygon", "polygon": None}])
    with pytest.raises(pm.InvalidAnnotationError, match="polygon is null"):
        pm.pairwise_iou(gt, gt)


def test_polygons_from_shapely_roundtrip():
    geoms = [shapely.box(0, 0, 2, 1), None,
             shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3)]),
             shapely.Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [[(1, 1), (1, 2), (2, 2), (2, 1)]])]
    col = pm.polygons_from_shapely(geoms)
    assert col.dtype == pm.MULTIPOLYGON_DTYPE and col[1] is None
    back = [naive.polygon_geometry(v) if v is not None else None for v in col.to_list()]
    for g, b in zip(geoms, back, strict=True):
        assert (g is None and b is None) or g.symmetric_difference(b).area == 0


def test_expression_matches_pairwise():
    rng = np.random.default_rng(3)
    a = [[(rng.uniform(0, 10, (5, 2))).tolist()] for _ in range(40)]
    b = [[(rng.uniform(0, 10, (4, 2))).tolist()] for _ in range(40)]
    df = pl.DataFrame({"a": a, "b": b}, schema={"a": pm.POLYGON_DTYPE, "b": pm.POLYGON_DTYPE})
    df = df.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("a")).alias("a"))
    got = df.select(pl.col("a").pm.polygon_iou("b")).to_series().to_list()
    assert got[3] is None
    for i in range(40):
        if i == 3:
            continue
        want = naive.area_iou(naive.polygon_geometry(a[i]), naive.polygon_geometry(b[i]))
        assert got[i] == pytest.approx(want, abs=TOL)
    # boxes on either side
    boxes = pl.DataFrame({"p": [[[[0.0, 0], [2, 0], [2, 2], [0, 2]]]], "b": [[1.0, 1, 3, 3]]},
                         schema={"p": pm.POLYGON_DTYPE, "b": pm.BBOX_DTYPE})
    assert boxes.select(pl.col("b").pm.polygon_iou("p")).item() == pytest.approx(1 / 7)


def test_box_only_tables_keep_the_box_kernel(monkeypatch):
    calls = []
    monkeypatch.setattr(polygon_kind, "pairs", lambda *a, **k: calls.append(1))
    gt = frame([{"data_row": "r", "kind": "box", "bbox": [0.0, 0, 2, 2]}])
    assert pm.pairwise_iou(gt, gt).height == 1 and not calls
