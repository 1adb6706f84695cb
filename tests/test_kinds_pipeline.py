"""Whole pipeline on mixed-kind tables: boxes, polygons, points, lines, masks and spans in one
``pm.evaluate`` call equal the kinds evaluated separately (kinds that cannot pair), and a small
case computed by hand."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import polars_metrics as pm

SCHEMA = {
    "data_row": pl.String, "id": pl.Int64, "feature": pl.String, "kind": pl.String,
    "bbox": pm.BBOX_DTYPE, "polygon": pm.POLYGON_DTYPE, "point": pm.POINT_DTYPE,
    "line": pm.LINE_DTYPE, "mask": pm.MASK_DTYPE, "start": pl.Int64, "end": pl.Int64,
    "confidence": pl.Float64,
}
GROUPS = [("box", "polygon"), ("point",), ("line",), ("mask",), ("span",)]


def table(rows: list[dict], predictions: bool) -> pl.DataFrame:
    cols = {k: [r.get(k) for r in rows] for k in SCHEMA if k != "confidence" or predictions}
    return pl.DataFrame(cols, schema={k: v for k, v in SCHEMA.items() if k in cols})


def random_rows(rng: np.random.Generator, n_rows: int, per_row: int, predictions: bool) -> list[dict]:
    out = []
    for r in range(n_rows):
        for _ in range(rng.integers(0, per_row + 1)):
            kind = rng.choice(["box", "polygon", "point", "line", "mask", "span"])
            rec = {"data_row": f"r{r}", "id": len(out), "kind": str(kind),
                   "feature": f"{kind}-{rng.integers(0, 2)}" if kind not in ("box", "polygon")
                   else f"shape-{rng.integers(0, 2)}"}  # boxes and polygons share features
            x, y = rng.integers(0, 40, 2).astype(float)
            w, h = rng.integers(2, 20, 2).astype(float)
            if kind == "box":
                rec["bbox"] = [x, y, x + w, y + h]
            elif kind == "polygon":
                rec["polygon"] = [[[x, y], [x + w, y], [x + w / 2, y + h]]]
            elif kind == "point":
                rec["point"] = [x * 5, y * 5]
            elif kind == "line":
                rec["line"] = [[x * 5, y * 5], [x * 5 + w * 5, y * 5 + h * 3]]
            elif kind == "mask":
                m = np.zeros((30, 30), bool)
                m[int(y) % 25:int(y) % 25 + int(h), int(x) % 25:int(x) % 25 + int(w)] = True
                rec["mask"] = pm.mask_from_array(m)
            else:
                rec["start"], rec["end"] = int(x), int(x + w)
            if predictions:
                rec["confidence"] = float(rng.integers(0, 11)) / 10
            out.append(rec)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_mixed_kinds_equal_each_kind_alone(seed):
    rng = np.random.default_rng(seed)
    gt = table(random_rows(rng, 12, 8, False), False)
    pd = table(random_rows(rng, 12, 10, True), True)
    kw = dict(confidence_thresholds=[0.0, 0.3, 0.7], iou_thresholds=[0.0, 0.25, 0.5, 0.75], rows="all")
    whole = pm.evaluate(gt, pd, **kw).cube
    parts = []
    for kinds in GROUPS:
        g = gt.filter(pl.col("kind").is_in(kinds))
        p = pd.filter(pl.col("kind").is_in(kinds))
        if g.height or p.height:
            parts.append(pm.evaluate(g, p, **kw).cube)
    separate = pl.concat(parts)
    keys = ["feature", "confidence_threshold", "iou_threshold"]
    assert whole.sort(keys).equals(separate.sort(keys))
    # pairs never cross incompatible kinds
    pairs = pm.pairwise_iou(gt, pd)
    def kind_of(frame, col):
        return dict(zip(frame["id"], frame["kind"], strict=True))
    gk, pk = kind_of(gt, "gt_id"), kind_of(pd, "pd_id")
    for g, p in pairs.select("gt_id", "pd_id").iter_rows():
        assert gk[g] == pk[p] or {gk[g], pk[p]} == {"box", "polygon"}


def test_mixed_kinds_by_hand():
    m = np.zeros((10, 10), bool)
    m[0:4, 0:5] = True  # 20 px
    m2 = np.zeros((10, 10), bool)
    m2[0:4, 0:4] = True  # 16 px inside: IoU 0.8
    gt = table([
        {"data_row": "img", "id": 0, "feature": "car", "kind": "box", "bbox": [0.0, 0.0, 10.0, 10.0]},
        {"data_row": "img", "id": 1, "feature": "nose", "kind": "point", "point": [0.0, 0.0]},
        {"data_row": "img", "id": 2, "feature": "road", "kind": "mask", "mask": pm.mask_from_array(m)},
        {"data_row": "img", "id": 3, "feature": "lane", "kind": "line", "line": [[0.0, 0.0], [100.0, 0.0]]},
        {"data_row": "doc", "id": 4, "feature": "person", "kind": "span", "start": 0, "end": 10},
    ], False)
    pd = table([
        # a polygon over the box's left half: IoU 0.5, matches the box at t < 0.5
        {"data_row": "img", "id": 0, "feature": "car", "kind": "polygon",
         "polygon": [[[0.0, 0.0], [5.0, 0.0], [5.0, 10.0], [0.0, 10.0]]], "confidence": 0.9},
        # a point far away: no pair, FP of nose and FN of the ground truth nose
        {"data_row": "img", "id": 1, "feature": "nose", "kind": "point", "point": [500.0, 500.0], "confidence": 0.8},
        {"data_row": "img", "id": 2, "feature": "road", "kind": "mask", "mask": pm.mask_from_array(m2), "confidence": 0.7},
        # the same line: IoU 1 (but a different feature: a misclassification)
        {"data_row": "img", "id": 3, "feature": "curb", "kind": "line", "line": [[0.0, 0.0], [100.0, 0.0]], "confidence": 0.6},
        {"data_row": "doc", "id": 4, "feature": "person", "kind": "span", "start": 5, "end": 10, "confidence": 0.5},
    ], True)
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.4, 0.6])
    got = {(f, t): (tp, fp, fn) for f, t, tp, fp, fn in
           ev.cube.select("feature", "iou_threshold", "tp", "fp", "fn").iter_rows()}
    want = {
        ("car", 0.4): (1, 0, 0), ("car", 0.6): (0, 1, 1),
        ("nose", 0.4): (0, 1, 1), ("nose", 0.6): (0, 1, 1),
        ("road", 0.4): (1, 0, 0), ("road", 0.6): (1, 0, 0),
        ("lane", 0.4): (0, 0, 1), ("lane", 0.6): (0, 0, 1),
        ("curb", 0.4): (0, 1, 0), ("curb", 0.6): (0, 1, 0),
        ("person", 0.4): (1, 0, 0), ("person", 0.6): (0, 1, 1),
    }
    assert got == want
    ious = dict(ev.cube.filter(pl.col("iou_threshold") == 0.4).select("feature", "iou").iter_rows())
    assert ious["car"] == pytest.approx(0.5) and ious["road"] == pytest.approx(0.8)
    assert ious["person"] == pytest.approx(0.5) and ious["nose"] == 0.0
    pairs = pm.pairwise_iou(gt, pd).select("data_row", "gt_id", "pd_id", "iou").rows()
    assert pairs == [("doc", 4, 4, 0.5), ("img", 0, 0, 0.5), ("img", 2, 2, 0.8), ("img", 3, 3, 1.0)]


def test_empty_and_one_sided_kinds():
    gt = table([{"data_row": "a", "id": 0, "feature": "s", "kind": "span", "start": 0, "end": 3}], False)
    pd = table([{"data_row": "a", "id": 0, "feature": "p", "kind": "point", "point": [0.0, 0.0],
                 "confidence": 1.0}], True)
    # kinds that never pair are counted (FP / FN) and, since issue 10, warned about
    with pytest.warns(pm.PolarsMetricsWarning, match="never pair"):
        ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.5])
    assert ev.cube.select("feature", "tp", "fp", "fn").rows() == [("p", 0, 1, 0), ("s", 0, 0, 1)]
    assert pm.pairwise_iou(gt.head(0), pd.head(0)).height == 0


def test_kind_inference_without_a_kind_column():
    # geometry columns name the kind; generic names (start/end) lose to bbox, as before spans
    boxes = pl.DataFrame({"data_row": ["a"], "feature": ["f"], "bbox": [[0.0, 0, 2, 2]],
                          "start": [3], "end": [1]}, schema_overrides={"bbox": pm.BBOX_DTYPE})
    assert pm.pairwise_iou(boxes, boxes)["iou"].to_list() == [1.0]
    spans = pl.DataFrame({"data_row": ["a"], "feature": ["f"], "start": [0], "end": [4]})
    assert pm.pairwise_iou(spans, spans)["iou"].to_list() == [1.0]
