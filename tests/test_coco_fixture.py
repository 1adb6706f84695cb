"""The real COCO fixture (100 val2014 images, fake bbox / segm results) against pycocotools.

The published file ``val2014_fake_eval_res.txt`` prints 3 decimals; our summary must print
exactly those lines, and every stat and the full precision / recall / scores arrays must equal
a pycocotools run on the same files to 1e-10.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import numpy as np
import polars as pl
import pycocotools.coco as pycoco  # noqa: E402
import pycocotools.cocoeval as cocoeval  # noqa: E402
import pytest

from polars_metrics.coco import evaluate_coco
from polars_metrics.io.coco import read_coco, write_coco_results
from polars_metrics.kinds import KIND_DTYPE

pytestmark = [
    pytest.mark.reference,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*"),
]

FIXTURE = Path(
    os.environ.get("POLARS_METRICS_COCO_FIXTURE", Path(__file__).resolve().parent / "data" / "cocoapi")
)
GT = FIXTURE / "instances_val2014_100.json"
RESULTS = {
    "bbox": FIXTURE / "instances_val2014_fakebbox100_results.json",
    "segm": FIXTURE / "instances_val2014_fakesegm100_results.json",
}


def _published() -> dict[str, list[str]]:
    """Summary lines per iou type from the published pycocotools output."""
    out: dict[str, list[str]] = {}
    current = None
    for line in (FIXTURE / "val2014_fake_eval_res.txt").read_text().splitlines():
        m = re.match(r"type=(\w+)", line)
        if m:
            current = m.group(1)
            out[current] = []
        elif current and line.startswith(" Average"):
            out[current].append(line)
    return out


@pytest.fixture(scope="module", params=["bbox", "segm"])
def both(request):
    iou_type = request.param
    gt, pd = read_coco(GT, RESULTS[iou_type])
    ours = evaluate_coco(gt, pd, iou_type=iou_type)
    with contextlib.redirect_stdout(io.StringIO()):
        cg = pycoco.COCO(str(GT))
        cd = cg.loadRes(str(RESULTS[iou_type]))
        ev = cocoeval.COCOeval(cg, cd, iou_type)
        ev.evaluate()
        ev.accumulate()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        ev.summarize()
    ev.printed_summary = printed.getvalue().splitlines()
    return iou_type, gt, pd, ours, ev


def test_summary_lines_equal_published(both):
    """Same lines as the published file (which pads the title one space narrower than
    today's pycocotools) and, character for character, as the installed pycocotools prints."""
    iou_type, _, _, ours, ev = both
    published = _published()[iou_type]
    assert len(published) == 12
    lines = ours.format_summary().splitlines()
    squash = lambda text: re.sub(r" +", " ", text)  # noqa: E731
    assert [squash(x) for x in lines] == [squash(x) for x in published]
    assert lines == ev.printed_summary
    assert str(ours) == ours.format_summary()
    values = [float(line.rsplit("=", 1)[1]) for line in published]
    np.testing.assert_array_equal(np.round(ours.stats, 3), values)


def test_stats_equal_pycocotools(both):
    _, _, _, ours, ev = both
    np.testing.assert_allclose(ours.stats, ev.stats, atol=1e-10, rtol=0)
    np.testing.assert_allclose(ours.summary["value"].to_numpy(), ev.stats, atol=1e-10, rtol=0)
    assert ours.summary["metric"].to_list() == ["AP"] * 6 + ["AR"] * 6


@pytest.mark.parametrize("name", ["precision", "recall", "scores"])
def test_arrays_equal_pycocotools(both, name):
    _, _, _, ours, ev = both
    a, b = getattr(ours, name), ev.eval[name]
    assert a.shape == b.shape
    np.testing.assert_array_equal(a == -1, b == -1)
    np.testing.assert_allclose(a, b, atol=1e-10, rtol=0)


def test_match_arrays_equal_eval_imgs(both):
    """dt_match / dt_ignore / gt_ignore reproduce evaluateImg at area 'all', maxDets[-1]."""
    _, gt, pd, ours, ev = both
    gt_ids = gt["id"].to_numpy()
    pd_row_of_id = {int(i): r for r, i in enumerate(pd["id"].to_list())}
    gt_row_of_id = {int(i): r for r, i in enumerate(gt["id"].to_list()) if i is not None}
    seen = 0
    for e in ev.evalImgs:
        if e is None or e["aRng"] != [0, 1e10]:
            continue
        for d, did in enumerate(e["dtIds"]):
            r = pd_row_of_id[did]
            m = ours.dt_match[:, r]
            got = np.where(m >= 0, gt_ids[np.maximum(m, 0)], 0)
            np.testing.assert_array_equal(got, e["dtMatches"][:, d])
            np.testing.assert_array_equal(ours.dt_ignore[:, r], e["dtIgnore"][:, d].astype(bool))
            seen += 1
        for g, gid in enumerate(e["gtIds"]):
            assert ours.gt_ignore[gt_row_of_id[gid]] == bool(e["gtIgnore"][g])
    assert seen > 0
    # the TP view agrees with what accumulate counts
    tp = ours.dt_tp
    assert tp.shape == ours.dt_match.shape and not (tp & ours.dt_ignore).any()


def test_frames_schema(both):
    iou_type, gt, pd, _, _ = both
    assert gt.schema["data_row"] == pl.Int64
    assert isinstance(gt.schema["feature"], pl.Enum)
    assert gt.schema["bbox"] == pl.Array(pl.Float64, 4)
    assert pd.schema["confidence"] == pl.Float64
    assert gt.schema["mask"] == pl.Struct(
        {"height": pl.Int64, "width": pl.Int64, "counts": pl.List(pl.UInt32)}
    )
    # ``kind`` is the engine's Enum (a byte a row), on both sides
    assert gt.schema["kind"] == pd.schema["kind"] == KIND_DTYPE
    assert set(pd["kind"].unique()) == {"box"}  # read with iou_type="bbox": every row has a box
    # the image size is the ground truth's, not repeated on every detection
    assert {"height", "width"} <= set(gt.columns) and not {"height", "width"} & set(pd.columns)
    # every image of the file is a data row, annotated or not
    n_images = gt["data_row"].n_unique()
    assert n_images == 100
    placeholders = gt.filter(pl.col("feature").is_null())
    assert placeholders["id"].null_count() == placeholders.height
    assert pd["id"].to_list() == list(range(1, pd.height + 1))
    if iou_type == "segm":
        assert pd["mask"].null_count() == 0


def test_results_round_trip(both, tmp_path):
    iou_type, gt, pd, ours, _ = both
    path = tmp_path / "res.json"
    write_coco_results(pd, path)
    gt2, pd2 = read_coco(GT, path)
    again = evaluate_coco(gt2, pd2, iou_type=iou_type)
    np.testing.assert_array_equal(again.precision, ours.precision)
    np.testing.assert_array_equal(again.stats, ours.stats)
    # a frame in the library's own layout (x0, y0, x1, y1 boxes, features by name) reads back too
    _, pd3 = read_coco(GT, pd.drop("category_id", "bbox_xywh"))
    assert pd3["feature"].to_list() == pd["feature"].to_list()
    np.testing.assert_allclose(evaluate_coco(gt, pd3, iou_type=iou_type).stats, ours.stats, atol=1e-10)


def test_per_category_frame(both):
    _, _, _, ours, ev = both
    pc = ours.per_category
    assert pc.height == len(ev.params.catIds) == ours.precision.shape[2]
    # ids are known for every category that has an annotation or a result; the others are null
    ids = pc["category_id"].to_list()
    assert [c for c in ids if c is not None] == [
        c for c in sorted(ev.params.catIds) if c in {i for i in ids if i is not None}
    ]
    assert all(c is not None for c, n in zip(ids, pc["n_gt"].to_list(), strict=True) if n > 0)
    # the mean of the per-category AP over defined categories is the overall AP
    ap = pc["ap"].drop_nulls().to_numpy()
    assert ap.size > 0
    p = ours.precision[:, :, :, 0, 2]
    per_k = [p[:, :, k][p[:, :, k] > -1].mean() for k in range(p.shape[2]) if (p[:, :, k] > -1).any()]
    np.testing.assert_allclose(ap, per_k, atol=1e-12)


@pytest.mark.parametrize(
    ("iou_type", "index", "published"),
    # the values SPEC §6 quotes from pycocotools' run on this fixture, to 10 decimals
    [("bbox", 0, 0.5045806987), ("bbox", 1, 0.6969727247), ("segm", 0, 0.3195452759)],
)
def test_stats_equal_the_quoted_pycocotools_values(iou_type, index, published):
    gt, pd = read_coco(GT, RESULTS[iou_type])
    stats = evaluate_coco(gt, pd, iou_type=iou_type).stats
    assert abs(stats[index] - published) <= 1e-10
