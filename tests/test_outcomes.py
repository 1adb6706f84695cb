"""ev.outcomes(): one row per annotation at a cell; per feature they add up to the cube."""
from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import datasets, n_examples

import polars_metrics as pm
from polars_metrics import schema as s
from polars_metrics.result.outcomes import outcome_counts


def _cube_counts(ev, c, t) -> pl.DataFrame:
    cell = ev.cube.filter((pl.col(s.CONFIDENCE_THRESHOLD) == c) & (pl.col(s.IOU_THRESHOLD) == t))
    return cell.group_by(s.FEATURE).agg(pl.col(s.TP, s.FP, s.FN).sum())


@settings(max_examples=n_examples(60), deadline=None)
@given(ds=datasets(), data=st.data())
def test_outcomes_add_up_to_the_cube(ds, data):
    ev = pm.evaluate(ds.gt, ds.pd, **ds.kwargs)
    c = data.draw(st.sampled_from(ev.confidence_thresholds.tolist()))
    t = data.draw(st.sampled_from(ev.iou_thresholds.tolist()))
    out = ev.outcomes(c, t)
    got = outcome_counts(out)
    want = _cube_counts(ev, c, t)
    joined = want.join(got, on=s.FEATURE, how="full", coalesce=True, suffix="_o").fill_null(0)
    for col in (s.TP, s.FP, s.FN):
        assert joined[col].to_list() == joined[f"{col}_o"].to_list(), (col, joined)
    # one row per counted annotation, every pair seen from both sides
    gt_ann, pd_ann = ev.detail.annotations
    assert out.filter(pl.col("side") == "gt").height == gt_ann.height
    assert out.filter(pl.col("side") == "pd").height == pd_ann.filter(pl.col(s.CONFIDENCE) >= c).height
    matched = out.filter(pl.col("partner_feature").is_not_null())
    assert (matched["side"] == "gt").sum() == (matched["side"] == "pd").sum()
    # confusion: off-diagonal cells are the misclassified pairs
    mis = out.filter((pl.col("side") == "gt") & (pl.col("outcome") == "misclassified")).height
    conf = ev.confusion.filter((pl.col(s.CONFIDENCE_THRESHOLD) == c) & (pl.col(s.IOU_THRESHOLD) == t)
                               & pl.col(s.GT_FEATURE).is_not_null() & pl.col(s.PD_FEATURE).is_not_null()
                               & (pl.col(s.GT_FEATURE) != pl.col(s.PD_FEATURE)))
    assert mis == conf[s.COUNT].sum()


def test_outcome_columns():
    gt, pd = pm.synthetic.detections(n_images=5, n_classes=3, seed=1)
    out = pm.evaluate(gt, pd, by="split").outcomes()
    assert out.columns == ["side", "data_row", "split", "id", "feature", "confidence", "outcome",
                           "partner_id", "partner_feature", "iou"]
    assert set(out["outcome"].unique().to_list()) <= {"tp", "fp", "fn", "misclassified"}


@settings(max_examples=n_examples(40), deadline=None)
@given(ds=datasets(), data=st.data())
def test_examples_are_the_outcomes_of_their_cell(ds, data):
    """Every confusion cell's examples() rows are that cell's outcomes() rows, seen from the
    ground-truth side for pairs and unmatched ground truth, the prediction side otherwise."""
    ev = pm.evaluate(ds.gt, ds.pd, **ds.kwargs)
    c = data.draw(st.sampled_from(ev.confidence_thresholds.tolist()))
    t = data.draw(st.sampled_from(ev.iou_thresholds.tolist()))
    out = ev.outcomes(c, t).with_columns(pl.col("outcome").cast(pl.String))
    keys = list(ev.keys)
    gt = out.filter(pl.col("side") == "gt")
    pd = out.filter(pl.col("side") == "pd").select(
        *keys, pl.col("id").alias("pd_id"), pl.col("confidence").alias("pd_conf"))
    labels = [*ev.features, None]
    for g in labels:
        for p in labels:
            if g is None and p is None:
                continue
            ex = ev.examples(g, p, confidence=c, iou=t)
            assert ex.columns == [*keys, *ev.by, "outcome", "gt_feature", "pd_feature",
                                  "confidence", "gt_id", "pd_id", "iou"]
            if g is None:
                want = out.filter((pl.col("side") == "pd") & (pl.col("feature") == p)
                                  & pl.col("partner_id").is_null()).select(
                    *keys, pl.lit(None).alias("gt_id"), pl.col("id").alias("pd_id"), "confidence",
                    "iou", "outcome")
            else:
                sel = gt.filter(pl.col("feature") == g)
                sel = sel.filter(pl.col("partner_id").is_null() if p is None
                                 else pl.col("partner_feature") == p)
                want = sel.select(*keys, pl.col("id").alias("gt_id"),
                                  pl.col("partner_id").alias("pd_id"), "iou", "outcome").join(
                    pd, on=[*keys, "pd_id"], how="left").rename({"pd_conf": "confidence"})
            cols = [*keys, "gt_id", "pd_id", "confidence", "iou", "outcome"]
            got = ex.with_columns(pl.col("outcome").cast(pl.String)).select(cols).rows()
            assert sorted(map(repr, got)) == sorted(map(repr, want.select(cols).rows())), (g, p)
            assert all(r == (g, p) for r in ex.select("gt_feature", "pd_feature").rows())


def test_checklist_options_are_separate_annotations_though_they_share_an_id():
    """A checklist answer's options share its id: ground truth {a, b}, prediction {a, c}
    (per-option confidences). By hand: a is a tp pair, b a missed ground truth, c an unmatched
    prediction — never "misclassified", and each option listed once."""
    gt = pl.DataFrame({"data_row": ["r"], "kind": ["checklist"], "question": ["tags"],
                       "answers": [["a", "b"]]})
    pd = pl.DataFrame({"data_row": ["r"], "kind": ["checklist"], "question": ["tags"],
                       "answers": [["a", "c"]], "answer_confidences": [[0.9, 0.7]]})
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.5], iou_thresholds=[0.5])
    out = ev.outcomes(0.5, 0.5).sort("side", "feature")
    assert out.select("side", "feature", "outcome", "partner_feature", "confidence").rows() == [
        ("gt", "a", "tp", "a", None), ("gt", "b", "fn", None, None),
        ("pd", "a", "tp", "a", 0.9), ("pd", "c", "fp", None, 0.7)]
    assert ev.examples("a", "a").select("outcome", "confidence").rows() == [("tp", 0.9)]
    assert ev.examples("b", None).select("outcome", "gt_id").rows() == [("fn", 0)]
    assert ev.examples(None, "c").select("outcome", "confidence").rows() == [("fp", 0.7)]
    assert outcome_counts(out).sort("feature").rows() == [("a", 1, 0, 0), ("b", 0, 0, 1),
                                                          ("c", 0, 1, 0)]
