"""Text spans: engine pairs vs the naive reference, span IoU = 1-D box IoU, the zero-length and
message rules, checks, and the expression namespace."""
from __future__ import annotations

import os

import naive_kinds as naive
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies_kinds import span_value

import polars_metrics as pm

SETTINGS = settings(max_examples=int(80 * float(os.environ.get("PM_EXAMPLES_SCALE", "1"))),
                    deadline=None, suppress_health_check=[HealthCheck.too_slow])


def spans(values, rows=None, messages=None) -> pl.DataFrame:
    n = len(values)
    data = {"data_row": rows or ["t"] * n, "id": list(range(n)), "feature": ["e"] * n,
            "start": [v[0] for v in values], "end": [v[1] for v in values]}
    if messages is not None:
        data["message_id"] = messages
    return pl.DataFrame(data)


span_row = st.tuples(span_value(), st.sampled_from(["t1", "t2"]), st.sampled_from([None, "m1", "m2"]))


@SETTINGS
@given(st.lists(span_row, min_size=1, max_size=10), st.lists(span_row, min_size=1, max_size=10),
       st.booleans())
def test_span_pairs_match_naive(gt, pd, with_messages):
    def frame(items):
        return spans([v for v, _, _ in items], [r for _, r, _ in items],
                     [m for _, _, m in items] if with_messages else None)

    def records(items):
        return [{"data_row": r, "id": i, "kind": "span", "start": v[0], "end": v[1],
                 "message_id": m if with_messages else None} for i, (v, r, m) in enumerate(items)]

    got = {(r, g, p): v for r, g, p, v in pm.pairwise_iou(frame(gt), frame(pd)).iter_rows()}
    want = {(r, g, p): v for r, g, p, v in naive.pairs(records(gt), records(pd))}
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == want[k]


@settings(SETTINGS, max_examples=max(1, SETTINGS.max_examples // 4))
@given(st.lists(st.tuples(span_value(), span_value()), min_size=1, max_size=30))
def test_span_iou_is_one_dimensional_box_iou(cases):
    rows = [str(i) for i in range(len(cases))]

    def by_row(out):
        return dict(zip(out["data_row"], out["iou"], strict=True))

    got = by_row(pm.pairwise_iou(spans([a for a, _ in cases], rows), spans([b for _, b in cases], rows)))
    back = by_row(pm.pairwise_iou(spans([b for _, b in cases], rows), spans([a for a, _ in cases], rows)))

    def boxes(values):
        return pl.DataFrame({"data_row": rows, "feature": ["e"] * len(rows),
                             "bbox": [[float(s), 0.0, float(e), 1.0] for s, e in values]},
                            schema_overrides={"bbox": pm.BBOX_DTYPE})

    box = by_row(pm.pairwise_iou(boxes([a for a, _ in cases]), boxes([b for _, b in cases])))
    for r, (a, b) in zip(rows, cases, strict=True):
        if a[0] == a[1] == b[0] == b[1]:
            assert got[r] == 1.0 and r not in box  # the zero-length rule: only spans have it
        else:
            assert got.get(r, 0.0) == pytest.approx(box.get(r, 0.0), abs=1e-15)
        assert back.get(r) == got.get(r)  # symmetric


def test_span_hand_cases():
    gt = spans([(0, 10), (10, 20), (5, 5), (30, 40)], messages=["m", "m", "m", "a"])
    pd = spans([(5, 15), (20, 30), (5, 5), (30, 40)], messages=["m", "m", "m", "b"])
    got = pm.pairwise_iou(gt, pd).select("gt_id", "pd_id", "iou").rows()
    # [0,10)∩[5,15) = 5 of 15; [10,20)∩[5,15) = 5 of 15; touching [10,20),[20,30): no pair;
    # zero-length at the same offset: 1; [5,5) inside [0,10): 0; other message: 0
    assert got == [(0, 0, 1 / 3), (1, 0, 1 / 3), (2, 2, 1.0)]


@pytest.mark.parametrize("start, end, reason", [(5, 3, "end < start"), (-1, 3, "start is negative"),
                                                 (None, 3, "start is null")])
def test_span_checks(start, end, reason):
    bad = pl.DataFrame({"data_row": ["t", "t"], "feature": ["e", "e"], "start": [0, start], "end": [1, end]})
    with pytest.raises(pm.InvalidAnnotationError, match=reason) as info:
        pm.pairwise_iou(bad, bad)
    assert "id=1" in str(info.value)


def test_float_offsets_are_rejected():
    bad = pl.DataFrame({"data_row": ["t"], "feature": ["e"], "start": [0.5], "end": [1.0]})
    with pytest.raises(pm.SchemaError, match="integer character offsets"):
        pm.pairwise_iou(bad, bad)


def test_expression_span_iou():
    df = pl.DataFrame({"a": [{"start": 0, "end": 10, "message_id": "m"}, {"start": 3, "end": 3, "message_id": "m"},
                             None, {"start": 0, "end": 4, "message_id": "x"}],
                       "b": [{"start": 5, "end": 15, "message_id": "m"}, {"start": 3, "end": 3, "message_id": "m"},
                             {"start": 0, "end": 1, "message_id": "m"}, {"start": 0, "end": 4, "message_id": "y"}]})
    assert df.select(pl.col("a").pm.span_iou("b")).to_series().to_list() == [1 / 3, 1.0, None, 0.0]
    arr = pl.DataFrame({"a": [[0, 10]], "b": [[5, 10]]}, schema={"a": pl.Array(pl.Int64, 2), "b": pl.Array(pl.Int64, 2)})
    assert arr.select(pl.col("a").pm.span_iou("b")).item() == 0.5
