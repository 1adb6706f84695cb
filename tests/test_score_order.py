"""``greedy_order="score"`` in the pipeline: the engine against the naive score-ordered walk
(tests/naive.py) and against valor-lite's confusion matrix (valor-lite runs in the tests).

Rule (matching.match_by_score): per IoU threshold t, per data row (per feature when
class-aware), predictions by confidence descending take the free ground truth of highest IoU
passing ``iou > t`` (``iou >= t`` unless ``iou_strict``).

valor-lite's confusion matrix (``compute_confusion_matrix_from_table``, v0.39) uses the same
order but matches ONCE, before any threshold, and then drops the matched pairs whose IoU fails
t: a ground truth claimed by a higher-scored prediction with too low an IoU stays blocked for
the later ones. ``valor_walk`` below models that rule; the tests check the model against
valor-lite itself, and the engine against valor-lite wherever the two rules give the same
matches (``test_valor_blocking_differs`` shows the one way they differ).
"""
from __future__ import annotations

import math

import naive
import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from naive import assert_frames_match
from strategies import BBOX, Dataset, datasets, n_examples
from test_engine_vs_naive import assert_core_frames_match, assert_views_match

import polars_metrics as pm

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.data_too_large])
VALOR = dict(greedy_order="score", class_aware=False, iou_strict=False, rows="all")


@st.composite
def score_switches(draw) -> dict:
    return dict(greedy_order="score", class_aware=draw(st.booleans()),
                iou_strict=draw(st.booleans()),
                rows=draw(st.sampled_from(["both", "all", "ground_truth"])))


# --------------------------------------------------------------------------------------------
# The engine equals the naive score-ordered walk
# --------------------------------------------------------------------------------------------


@settings(max_examples=n_examples(100), **SETTINGS)
@given(ds=datasets(), switches=score_switches(), data=st.data())
def test_engine_equals_naive_score_walk(ds: Dataset, switches: dict, data) -> None:
    ev = pm.evaluate(ds.gt, ds.pd, **ds.kwargs, **switches)
    nv = naive.evaluate(ds.gt, ds.pd, **ds.kwargs, **switches)
    assert_core_frames_match(ev, nv, ds)
    assert_views_match(ev, nv, ds, data)


@settings(max_examples=n_examples(40), **SETTINGS)
@given(ds=datasets(max_rows=3, max_gt=8, max_pd=10, by_modes=("none",)),
       switches=score_switches(), data=st.data())
def test_engine_equals_naive_score_walk_crowded(ds: Dataset, switches: dict, data) -> None:
    ev = pm.evaluate(ds.gt, ds.pd, **ds.kwargs, **switches)
    nv = naive.evaluate(ds.gt, ds.pd, **ds.kwargs, **switches)
    assert_core_frames_match(ev, nv, ds)
    assert_views_match(ev, nv, ds, data)


@settings(max_examples=n_examples(60), **SETTINGS)
@given(ds=datasets(), switches=score_switches(), data=st.data())
def test_iou_order_switches_equal_naive(ds: Dataset, switches: dict, data) -> None:
    """The IoU-ordered walk honours the same switches (iou_strict was ignored before)."""
    switches["greedy_order"] = "iou"
    ev = pm.evaluate(ds.gt, ds.pd, **ds.kwargs, **switches)
    nv = naive.evaluate(ds.gt, ds.pd, **ds.kwargs, **switches)
    assert_core_frames_match(ev, nv, ds)
    assert_views_match(ev, nv, ds, data)


@settings(max_examples=n_examples(60), **SETTINGS)
@given(ds=datasets(), switches=score_switches())
def test_counts_add_up_and_examples_equal_cells(ds: Dataset, switches: dict) -> None:
    """tp + fn = ground truths and tp + fp = kept predictions in every cell; examples() of every
    confusion cell lists exactly its count."""
    ev = pm.evaluate(ds.gt, ds.pd, **ds.kwargs, **switches)
    gt_ann, pd_ann = ev.detail.annotations
    n_gt = gt_ann.group_by("feature").len("n_gt")
    cube = ev.cube.group_by("feature", "confidence_threshold", "iou_threshold").agg(
        pl.col("tp", "fp", "fn").sum()).join(n_gt, on="feature", how="left").fill_null(0)
    assert (cube["tp"] + cube["fn"] == cube["n_gt"]).all()
    for c in ev.confidence_thresholds:
        kept = pd_ann.filter(pl.col("confidence").fill_null(1.0) >= c).group_by("feature").len("k")
        at_c = cube.filter(pl.col("confidence_threshold") == c).join(kept, on="feature", how="left")
        assert (at_c["tp"] + at_c["fp"] == at_c["k"].fill_null(0)).all()
    for (c, t, g, p), n in _cells(ev):
        assert ev.examples(g, p, confidence=c, iou=t).height == n, (c, t, g, p)


def _cells(ev):
    cells = ev.confusion.group_by("confidence_threshold", "iou_threshold", "gt_feature",
                                  "pd_feature").agg(pl.col("count").sum())
    for c, t, g, p, n in cells.iter_rows():
        yield (c, t, g, p), n


@settings(max_examples=n_examples(30), **SETTINGS)
@given(ds=datasets(by_modes=("none",), ids=("int", "str")), switches=score_switches())
def test_merge_of_halves_equals_whole(ds: Dataset, switches: dict) -> None:
    keys = ds.keys
    rows = pl.concat([ds.gt.select(keys), ds.pd.select(keys)]).unique().sort(keys)
    assume(rows.height >= 2)
    half = rows.head(rows.height // 2)
    kw = {**ds.kwargs, **switches}
    parts = [pm.partial(ds.gt.join(h, on=keys, how=how), ds.pd.join(h, on=keys, how=how),
                              **kw) for h, how in ((half, "semi"), (half, "anti"))]
    merged, whole = pm.finalize(pm.merge(*parts)), pm.evaluate(ds.gt, ds.pd, **kw)
    grid = ["confidence_threshold", "iou_threshold"]
    assert_frames_match(merged.cube, whole.cube, sort_by=["feature", *grid], what="cube")
    assert_frames_match(merged.confusion, whole.confusion,
                        sort_by=[*grid, "gt_feature", "pd_feature"], what="confusion")
    assert_frames_match(merged.matches, whole.matches,
                        sort_by=[*keys, "iou_threshold", "gt_id"], what="matches")


def test_classifications_do_not_depend_on_the_walk_order() -> None:
    gt = pl.DataFrame({"data_row": ["a", "b", "c", "d"], "question": ["q"] * 4,
                       "answer": ["x", "y", "x", "z"]})
    pd = pl.DataFrame({"data_row": ["a", "b", "c", "d"], "question": ["q"] * 4,
                       "answer": ["x", "x", "y", "z"], "confidence": [0.9, 0.8, 0.4, 0.2]})
    kw = dict(confidence_thresholds=[0.0, 0.5], iou_thresholds=[0.0, 0.5, 1.0])
    iou, score = pm.evaluate(gt, pd, **kw), pm.evaluate(gt, pd, greedy_order="score", **kw)
    assert score.cube.equals(iou.cube)
    assert score.confusion.equals(iou.confusion)
    assert score.data_rows.equals(iou.data_rows)


def test_score_order_is_not_iou_order() -> None:
    """The high-confidence prediction takes its best ground truth first, even when another
    prediction overlaps that ground truth more."""
    gt, pd = _tables([("a", "cat", (0, 0, 10, 10)), ("a", "cat", (0, 0, 10, 6))],
                     [("a", "cat", (0, 0, 10, 8), 0.9), ("a", "cat", (0, 0, 10, 10), 0.5)])
    kw = dict(confidence_thresholds=[0.0], iou_thresholds=[0.5])
    score = pm.evaluate(gt, pd, greedy_order="score", **kw)
    iou = pm.evaluate(gt, pd, **kw)
    assert sorted(score.matches.select("gt_id", "pd_id").rows()) == [(0, 0), (1, 1)]
    assert sorted(iou.matches.select("gt_id", "pd_id").rows()) == [(0, 1), (1, 0)]
    assert "iou_threshold" in score.matches.columns


def test_coco_profile_still_runs_the_coco_engine() -> None:
    gt, pd = _tables([("a", "cat", (0, 0, 10, 10))], [("a", "cat", (0, 0, 10, 10), 0.9)])
    gt = gt.with_columns(pl.col("data_row").replace_strict({"a": 1}, return_dtype=pl.Int64))
    pd = pd.with_columns(pl.col("data_row").replace_strict({"a": 1}, return_dtype=pl.Int64))
    assert type(pm.evaluate(gt, pd, profile="coco")).__name__ == "CocoEvaluation"
    assert type(pm.evaluate(gt, pd, greedy_order="score")).__name__ == "Evaluation"


# --------------------------------------------------------------------------------------------
# valor-lite
# --------------------------------------------------------------------------------------------


def valor_walk(gts, pds, t, *, strict=False, class_aware=False):
    """valor-lite's confusion-matrix rule: one class-agnostic walk over the pairs with IoU > 0
    sorted by (score, IoU) descending (stable, pairs listed gt-major), before any threshold;
    a matched pair counts at t iff its IoU >= t (score thresholds truncate the walk)."""
    assert not strict and not class_aware
    pairs = [(i, j, naive.box_iou(g.box, p.box)) for i, g in enumerate(gts)
             for j, p in enumerate(pds)]
    pairs = sorted((x for x in pairs if x[2] >= 1e-9),
                   key=lambda x: (-pds[x[1]].confidence, -x[2]))
    taken_gt, taken_pd, matches = set(), set(), []
    for i, j, iou in pairs:
        if i not in taken_gt and j not in taken_pd:
            taken_gt.add(i)
            taken_pd.add(j)
            if iou >= t:
                matches.append((i, j, iou))
    return matches


def valor_confusion(gt: pl.DataFrame, pd: pl.DataFrame, confidences, ious):
    """valor-lite's confusion matrices → (confidence, iou, gt_feature, pd_feature, count)
    rows with None for unmatched, nonzero cells only, sorted."""
    from valor_lite.object_detection import BoundingBox, Detection, Loader

    def box(rec, scored):
        x0, y0, x1, y1 = rec["bbox"]
        return BoundingBox(uid=str(rec["id"]), xmin=x0, xmax=x1, ymin=y0, ymax=y1,
                           labels=[rec["feature"]],
                           scores=[rec["confidence"]] if scored else [])

    keys = sorted(set(gt["data_row"].to_list()) | set(pd["data_row"].to_list()))
    detections = [Detection(
        uid=str(k),
        groundtruths=[box(r, False) for r in gt.filter(pl.col("data_row") == k).to_dicts()],
        predictions=[box(r, True) for r in pd.filter(pl.col("data_row") == k).to_dicts()],
    ) for k in keys]
    loader = Loader.in_memory()
    loader.add_bounding_boxes(detections)
    metrics = loader.finalize().compute_confusion_matrix(
        iou_thresholds=list(ious), score_thresholds=list(confidences))
    out = []
    for m in metrics:
        c, t = m.parameters["score_threshold"], m.parameters["iou_threshold"]
        v = m.value
        out += [(c, t, g, p, n) for g, row in v["confusion_matrix"].items()
                for p, n in row.items() if n]
        out += [(c, t, g, None, n) for g, n in v["unmatched_ground_truths"].items() if n]
        out += [(c, t, None, p, n) for p, n in v["unmatched_predictions"].items() if n]
    return sorted(out, key=naive._sort_key)


def engine_confusion(ev) -> list[tuple]:
    return sorted(ev.confusion.select("confidence_threshold", "iou_threshold", "gt_feature",
                                      "pd_feature", "count").rows(), key=naive._sort_key)


def naive_confusion(nv) -> list[tuple]:
    return sorted(nv.confusion.rows(), key=naive._sort_key)


def _tables(gts, pds):
    """(data_row, feature, box) ground truths and (…, confidence) predictions; ids 0, 1, …"""
    gt = pl.DataFrame([{"data_row": r, "feature": f, "bbox": [float(v) for v in b], "id": i}
                       for i, (r, f, b) in enumerate(gts)],
                      schema={"data_row": pl.String, "feature": pl.String, "bbox": BBOX,
                              "id": pl.Int64}, orient="row")
    pd = pl.DataFrame([{"data_row": r, "feature": f, "bbox": [float(v) for v in b], "id": i,
                        "confidence": c} for i, (r, f, b, c) in enumerate(pds)],
                      schema={"data_row": pl.String, "feature": pl.String, "bbox": BBOX,
                              "id": pl.Int64, "confidence": pl.Float64}, orient="row")
    return gt, pd


CONF, IOUS = [0.1, 0.5, 0.8], [0.25, 0.5, 0.75]

HAND_CASES = {
    # one cat, predicted as dog with IoU exactly 0.5: a misclassification up to IoU 0.5 (>=)
    "misclassified": ([("a", "cat", (0, 0, 10, 10))], [("a", "dog", (0, 0, 10, 5), 0.9)]),
    # the higher score takes the shared ground truth, though the other prediction overlaps
    # it more; that one is unmatched
    "score_beats_iou": (
        [("a", "cat", (0, 0, 10, 10))],
        [("a", "cat", (0, 0, 10, 8), 0.9), ("a", "dog", (0, 0, 10, 10), 0.6)]),
    # rows with only ground truth / only predictions count (rows="all")
    "one_sided_rows": (
        [("a", "cat", (0, 0, 4, 4)), ("b", "dog", (0, 0, 4, 4))],
        [("a", "cat", (0, 0, 4, 3), 0.7), ("c", "cat", (1, 1, 3, 3), 0.95)]),
    # a prediction overlapping two ground truths takes the higher IoU; the second prediction
    # the remaining one
    "two_by_two": (
        [("a", "cat", (0, 0, 10, 10)), ("a", "dog", (5, 0, 15, 10))],
        [("a", "dog", (1, 0, 11, 10), 0.85), ("a", "cat", (4, 0, 14, 10), 0.3)]),
}


@pytest.mark.parametrize("case", sorted(HAND_CASES))
def test_valor_lite_confusion_on_hand_cases(case: str) -> None:
    gt, pd = _tables(*HAND_CASES[case])
    ev = pm.evaluate(gt, pd, confidence_thresholds=CONF, iou_thresholds=IOUS, **VALOR)
    nv = naive.evaluate(gt, pd, confidence_thresholds=CONF, iou_thresholds=IOUS, **VALOR)
    assert engine_confusion(ev) == valor_confusion(gt, pd, CONF, IOUS) == naive_confusion(nv)


def test_valor_blocking_differs() -> None:
    """The one difference: valor-lite's single walk lets the 0.9 prediction claim the cat with
    IoU 0.6; at IoU threshold 0.75 that pair fails and the cat stays blocked, so the 0.8
    prediction (IoU 0.8 with it) is unmatched. Walking again at 0.75, as COCO and this engine
    do, the 0.8 prediction takes the cat."""
    gt, pd = _tables([("a", "cat", (0, 0, 10, 10))],
                     [("a", "cat", (0, 0, 10, 6), 0.9), ("a", "cat", (0, 0, 10, 8), 0.8)])
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.5], iou_thresholds=[0.75], **VALOR)
    assert engine_confusion(ev) == [(0.5, 0.75, None, "cat", 1), (0.5, 0.75, "cat", "cat", 1)]
    assert valor_confusion(gt, pd, [0.5], [0.75]) == [
        (0.5, 0.75, None, "cat", 2), (0.5, 0.75, "cat", None, 1)]


@st.composite
def valor_datasets(draw):
    """Grid boxes (exact IoUs), distinct confidences in (0, 1] (valor-lite orders equal scores
    by IoU across predictions, and never counts a score of 0), string ids."""
    ds = draw(datasets(key_kinds=("str",), ids=("int",), by_modes=("none",), max_gt=5, max_pd=6,
                       with_thresholds=False))
    n = ds.pd.height
    conf = draw(st.lists(st.integers(1, 1000), min_size=n, max_size=n, unique=True))
    pd = ds.pd.with_columns(pl.Series("confidence", [v / 1000 for v in conf], dtype=pl.Float64))
    confidences = draw(st.lists(st.sampled_from([0.05, 0.25, 0.5, 0.75, 1.0]), min_size=1,
                                max_size=3, unique=True).map(sorted))
    ious = draw(st.lists(st.sampled_from([0.1, 0.25, round(1 / 3, 9), 0.5, 0.75, 0.9, 1.0]), min_size=1,
                         max_size=3, unique=True).map(sorted))
    return ds.gt, pd, confidences, ious


@settings(max_examples=n_examples(40), **SETTINGS)
@given(case=valor_datasets())
def test_valor_walk_models_valor_lite(case) -> None:
    gt, pd, confidences, ious = case
    assume(gt.height + pd.height > 0)
    nv = naive.evaluate(gt, pd, confidence_thresholds=confidences, iou_thresholds=ious,
                        walk=valor_walk, **VALOR)
    assert valor_confusion(gt, pd, confidences, ious) == naive_confusion(nv)


@settings(max_examples=n_examples(60), **SETTINGS)
@given(case=valor_datasets())
def test_engine_equals_valor_lite_where_the_rules_agree(case) -> None:
    gt, pd, confidences, ious = case
    assume(gt.height + pd.height > 0)
    kw = dict(confidence_thresholds=confidences, iou_thresholds=ious, **VALOR)
    once = naive_confusion(naive.evaluate(gt, pd, walk=valor_walk, **kw))
    assume(once == naive_confusion(naive.evaluate(gt, pd, **kw)))
    ev = pm.evaluate(gt, pd, **kw)
    got = [(c, t, g, p, n) for c, t, g, p, n in engine_confusion(ev)]
    want = valor_confusion(gt, pd, confidences, ious)
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a[2:] == b[2:] and math.isclose(a[0], b[0]) and math.isclose(a[1], b[1]), (a, b)
