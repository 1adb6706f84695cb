"""profile="coco": pycocotools' numbers through pm.evaluate, and the TP / FP / FN cube under
COCO matching checked against pycocotools' own per-image match records (evalImgs)."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import polars as pl
import pycocotools.coco as pycoco
import pycocotools.cocoeval as cocoeval
import pytest

import polars_metrics as pm
from polars_metrics.io.coco import read_coco

pytestmark = [pytest.mark.reference,
              pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")]

FIXTURE = Path(__file__).resolve().parent / "data" / "cocoapi"
GT = FIXTURE / "instances_val2014_100.json"
RESULTS = {"bbox": FIXTURE / "instances_val2014_fakebbox100_results.json",
           "segm": FIXTURE / "instances_val2014_fakesegm100_results.json"}
CONF = [0.0, 0.3, 0.5, 0.8, 1.0]


def pycocotools_run(iou_type):
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = pycoco.COCO(str(GT))
        coco_dt = coco_gt.loadRes(str(RESULTS[iou_type]))
        ev = cocoeval.COCOeval(coco_gt, coco_dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return coco_gt, ev


def reference_counts(coco_gt, ev):
    """{(category name, c, t): (tp, fp, fn)} from evalImgs at area 'all', maxDets 100."""
    names = {c["id"]: c["name"] for c in coco_gt.loadCats(coco_gt.getCatIds())}
    thr = ev.params.iouThrs
    out = {}
    for e in ev.evalImgs:
        if e is None or e["aRng"] != [0, 1e10] or e["maxDet"] != 100:
            continue
        name = names[e["category_id"]]
        scores = np.asarray(e["dtScores"])
        n_gt = int((~np.asarray(e["gtIgnore"], bool)).sum())
        for ti, t in enumerate(thr):
            matched = np.asarray(e["dtMatches"])[ti] > 0 if len(scores) else np.zeros(0, bool)
            ignored = np.asarray(e["dtIgnore"])[ti].astype(bool) if len(scores) else np.zeros(0, bool)
            for c in CONF:
                kept = scores >= c
                tp = int((matched & ~ignored & kept).sum())
                fp = int((~matched & ~ignored & kept).sum())
                key = (name, c, round(float(t), 9))
                a, b, f = out.get(key, (0, 0, 0))
                out[key] = (a + tp, b + fp, f + n_gt - tp)
    return out


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_coco_profile_matches_pycocotools(iou_type):
    coco_gt, ref = pycocotools_run(iou_type)
    gt, pd = read_coco(GT, RESULTS[iou_type])
    ev = pm.evaluate(gt, pd, profile="coco", iou_type=iou_type, confidence_thresholds=CONF)
    np.testing.assert_allclose(ev.coco_summary["value"].to_numpy(), ref.stats, rtol=0, atol=1e-10)
    ours = ev.coco_arrays()
    for name in ("precision", "recall", "scores"):
        np.testing.assert_allclose(ours[name], ref.eval[name], rtol=0, atol=1e-10)

    expected = reference_counts(coco_gt, ref)
    got = {(r["feature"], r["confidence_threshold"], r["iou_threshold"]): (r["tp"], r["fp"], r["fn"])
           for r in ev.cube.iter_rows(named=True)}
    # every category with ground truth or detections has its cells; others are all zero
    for key, value in expected.items():
        assert got.get(key, (0, 0, 0)) == value, key
    for key, value in got.items():
        assert expected.get(key, (0, 0, 0)) == value, key
    # confusion: class-aware matching leaves only the diagonal and the None row / column
    conf = ev.confusion.drop_nulls()
    assert (conf["gt_feature"] == conf["pd_feature"]).all()
    # row sums of the confusion = counted ground truths; TP = diagonal
    cell = ev.confusion.filter((pl.col("confidence_threshold") == 0.5) & (pl.col("iou_threshold") == 0.5))
    diag = cell.filter(pl.col("gt_feature") == pl.col("pd_feature"))
    assert diag["count"].sum() == sum(v[0] for k, v in expected.items() if k[1] == 0.5 and k[2] == 0.5)


def test_coco_examples_behind_cells():
    gt, pd = read_coco(GT, RESULTS["bbox"])
    ev = pm.evaluate(gt, pd, profile="coco", confidence_thresholds=CONF)
    row = ev.cube.filter((pl.col("feature") == "person") & (pl.col("confidence_threshold") == 0.5)
                         & (pl.col("iou_threshold") == 0.75)).row(0, named=True)
    tp = ev.examples("person", "person", confidence=0.5, iou=0.75)
    fn = ev.examples("person", None, confidence=0.5, iou=0.75)
    fp = ev.examples(None, "person", confidence=0.5, iou=0.75)
    assert (tp.height, fp.height, fn.height) == (row["tp"], row["fp"], row["fn"])
    # a ground truth is either matched or missed, never both
    assert not set(tp["gt_id"].to_list()) & set(fn["gt_id"].to_list())
    assert ev.examples("person", "dog", confidence=0.5, iou=0.75).height == 0


def test_coco_only_options_are_rejected_elsewhere():
    gt, pd = read_coco(GT, RESULTS["bbox"])
    with pytest.raises(pm.ProfileError, match="only apply to profile='coco'"):
        pm.evaluate(gt.drop("mask", strict=False), pd, iou_type="bbox")
    # by= is honoured under coco now (tests/test_coco_options.py); an unknown column fails
    with pytest.raises(pm.SchemaError, match="neither table"):
        pm.evaluate(gt, pd, profile="coco", by="split")
