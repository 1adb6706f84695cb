"""ev.suspects / ev.uncertain / pm.uncertain_across: every reason by hand, ranking, and exact
recovery of errors injected into clean labels."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import polars_metrics as pm
from polars_metrics.errors import PolarsMetricsError

BOX = pl.Array(pl.Float64, 4)


def boxes(rows, conf=False):
    cols = {"data_row": [r[0] for r in rows], "feature": [r[1] for r in rows],
            "bbox": [list(map(float, r[2])) for r in rows]}
    if conf:
        cols["confidence"] = [r[3] for r in rows]
    return pl.DataFrame(cols, schema_overrides={"bbox": BOX})


def reasons(ev, **kw):
    return ev.suspects(**kw).select("data_row", "reason", "gt_id", "pd_id").with_columns(
        pl.col("reason").cast(pl.String)).rows()


def test_each_reason_on_a_hand_built_case():
    gt = boxes([
        ("a", "dog", (0, 0, 10, 10)),      # gt 0: a cat predicted on it -> wrong_class
        ("a", "cat", (40, 0, 50, 10)),     # gt 1: a cat at IoU 0.25 -> mislocated
        ("a", "cat", (80, 80, 90, 90)),    # gt 2: nothing near -> spurious_label
        ("b", "cat", (0, 0, 10, 10)),      # gt 3: covered (IoU 1), also a dog on it at IoU 0.8
        ("b", "cat", (40, 40, 50, 50)),    # gt 4: a low-confidence cat only: not covered
    ])
    pd = boxes([
        ("a", "cat", (0, 0, 10, 10), 0.9),     # pd 0: wrong_class, score 0.9 * 1.0
        ("a", "cat", (46, 0, 56, 10), 0.8),    # pd 1: IoU 4/16 = 0.25 -> 0.8 * 0.75 = 0.6
        ("a", "dog", (200, 200, 210, 210), 0.7),  # pd 2: missing_label, 0.7
        ("b", "cat", (0, 0, 10, 10), 0.95),    # pd 3: the TP of gt 3
        ("b", "dog", (0, 0, 10, 8), 0.85),     # pd 4: IoU 0.8 with a covered gt -> not a suspect
        ("b", "cat", (40, 40, 50, 50), 0.2),   # pd 5: not confident
        ("b", "dog", (300, 300, 310, 310), 0.3),  # pd 6: not confident: not missing_label
    ], conf=True)
    ev = pm.evaluate(gt, pd)
    out = ev.suspects(0.5, 0.5)
    assert out.select("reason", "gt_id", "pd_id").with_columns(pl.col("reason").cast(pl.String)).rows() == [
        ("wrong_class", 0, 0), ("missing_label", None, 2), ("mislocated", 1, 1),
        ("spurious_label", 2, None)]
    # spurious: cat gts are 1, 2, 3, 4; covered (confident cat at IoU >= 0.5): gt 3 only;
    # the score is half the recall
    assert out["score"].to_list() == pytest.approx([0.9, 0.7, 0.8 * 0.75, 1 / 8])
    assert out["iou"].to_list() == [1.0, None, 0.25, None]
    assert out.row(0, named=True)["gt_feature"] == "dog"
    assert out.row(0, named=True)["pd_feature"] == "cat"
    # ranking: scores never increase
    assert out["score"].to_list() == sorted(out["score"].to_list(), reverse=True)
    # k and reasons
    assert ev.suspects(k=2).height == 2
    assert ev.suspects(reasons="mislocated")["pd_id"].to_list() == [1]
    with pytest.raises(ValueError, match="unknown reason"):
        ev.suspects(reasons=["typo"])
    # a lower confidence bar makes pd 6 a missing label and pd 5 covers gt 4
    low = reasons(ev, confidence=0.2)
    assert ("b", "missing_label", None, 6) in low
    # with a background threshold above 0.25, pd 1 no longer counts as near gt 1
    assert ("a", "missing_label", None, 1) in reasons(ev, background=0.3)


def test_wrong_class_before_mislocated_and_covered_gts_are_not_blamed():
    gt = boxes([("a", "dog", (0, 0, 10, 10)), ("a", "cat", (0, 0, 10, 4))])
    # the cat prediction overlaps the dog gt at IoU 0.9 and the cat gt at IoU 4/9 < 0.5
    pd = boxes([("a", "cat", (0, 0, 10, 9), 0.9)], conf=True)
    out = pm.evaluate(gt, pd).suspects()
    first = out.row(0, named=True)
    assert (first["reason"], first["gt_id"], first["pd_id"]) == ("wrong_class", 0, 0)
    assert first["score"] == pytest.approx(0.9 * 0.9)
    assert "mislocated" not in out["reason"].cast(pl.String).to_list()


def test_classification_contradicted_and_spans():
    gt = pl.DataFrame({"data_row": ["a", "b", "c"], "kind": ["radio"] * 3, "question": ["q"] * 3,
                       "answer": ["cat", "cat", "dog"]})
    pd = gt.with_columns(answer=pl.Series(["dog", "cat", "dog"]),
                         confidence=pl.Series([0.9, 0.8, 0.3]))
    out = pm.evaluate(gt, pd).suspects()
    assert out.select("data_row", "reason", "score").with_columns(
        pl.col("reason").cast(pl.String)).rows() == [("a", "contradicted", 0.9)]
    sg = pl.DataFrame({"data_row": ["a", "a"], "feature": ["PER", "ORG"], "start": [0, 10],
                       "end": [5, 20]})
    sp = sg.with_columns(feature=pl.Series(["LOC", "ORG"]), end=pl.Series([5, 14]),
                         confidence=pl.Series([0.9, 0.8]))
    out = pm.evaluate(sg, sp).suspects()
    assert out.select("reason", "gt_id", "score").with_columns(pl.col("reason").cast(pl.String)).rows() \
        == [("wrong_class", 0, 0.9), ("mislocated", 1, pytest.approx(0.8 * 0.6))]


def injected_case(seed=0, n_rows=40, per_row=6):
    """Clean boxes on a grid (no two overlap), a perfect model (IoU >= 0.81, confidence
    >= 0.6), some of it missing; then labels corrupted: class swaps, deletions, shifts."""
    rng = np.random.default_rng(seed)
    feats = ["cat", "dog", "cow"]
    gts, pds, truth = [], [], {}
    for r in range(n_rows):
        for j in range(per_row):
            x, y = 30.0 * j, 0.0
            f = feats[rng.integers(3)]
            gid = len(gts)
            gts.append({"data_row": r, "id": gid, "feature": f, "bbox": [x, y, x + 10, y + 10]})
            if rng.random() < 0.9:  # the model finds 90 %
                pds.append({"data_row": r, "id": len(pds), "feature": f,
                            "bbox": [x, y, x + 10, y + 9 + rng.uniform(0, 1)],
                            "confidence": float(rng.uniform(0.6, 1.0))})
                truth[gid] = pds[-1]["id"]
    found = sorted(truth)
    chosen = rng.choice(found, size=3 * len(found) // 20, replace=False)
    swap, delete, shift = (set(map(int, c)) for c in np.array_split(chosen, 3))
    clean_missed = {g["id"] for g in gts} - set(truth)
    for g in gts:
        if g["id"] in swap:
            g["feature"] = feats[(feats.index(g["feature"]) + 1) % 3]
        if g["id"] in shift:  # IoU with the prediction drops to about 0.3
            g["bbox"] = [g["bbox"][0] + 5.0, 0.0, g["bbox"][2] + 5.0, 10.0]
    gts = [g for g in gts if g["id"] not in delete]
    # predictions of every data row are kept: none is excluded for lack of ground truth
    gt = pl.DataFrame(gts, schema_overrides={"bbox": BOX})
    pd = pl.DataFrame(pds, schema_overrides={"bbox": BOX})
    return gt, pd, dict(swap=swap, delete={truth[g] for g in delete}, shift=shift,
                        missed=clean_missed)


def test_injected_errors_are_found_exactly():
    gt, pd, inj = injected_case()
    assert all(len(v) >= 3 for v in inj.values())
    ev = pm.evaluate(gt, pd)
    out = ev.suspects(0.5, 0.5).with_columns(pl.col("reason").cast(pl.String))
    by_reason = {r: set(out.filter(pl.col("reason") == r)[col].to_list())
                 for r, col in [("wrong_class", "gt_id"), ("missing_label", "pd_id"),
                                ("mislocated", "gt_id"), ("spurious_label", "gt_id")]}
    # every confident prediction sits on its clean box, so each injected error shows as its
    # reason, and nothing else is flagged except the ground truths the model missed
    assert by_reason["wrong_class"] == inj["swap"]
    assert by_reason["missing_label"] == inj["delete"]
    assert by_reason["mislocated"] == inj["shift"]
    assert by_reason["spurious_label"] == inj["missed"]
    assert out.height == sum(len(v) for v in inj.values())
    # scores by hand: the prediction of a gt spans [x, x+10] x [0, h]; IoU with the clean box
    # h/10, with the box shifted by 5: 5h / (100 + 5h)
    preds = {r["id"]: r for r in pd.to_dicts()}
    gt_to_pd = {g: p for g, p in zip(out["gt_id"], out["pd_id"], strict=True) if None not in (g, p)}
    for row in out.iter_rows(named=True):
        if row["reason"] == "spurious_label":
            continue
        p = preds[row["pd_id"]]
        h = p["bbox"][3]
        expected = {"wrong_class": p["confidence"] * h / 10,
                    "missing_label": p["confidence"],
                    "mislocated": p["confidence"] * (1 - 5 * h / (100 + 5 * h))}[row["reason"]]
        assert row["score"] == pytest.approx(expected, abs=1e-12)
    assert len(gt_to_pd) == len(inj["swap"]) + len(inj["shift"])
    assert out["score"].to_list() == sorted(out["score"].to_list(), reverse=True)


def test_uncertain_margins_by_hand():
    gt = boxes([("a", "cat", (0, 0, 10, 10)), ("a", "dog", (40, 0, 50, 10))])
    pd = boxes([("a", "cat", (0, 0, 10, 10), 0.9),      # margin min(0.4, 0.5) = 0.4
                ("a", "cat", (0, 0, 10, 5.2), 0.7),     # IoU 0.52: margin 0.02
                ("a", "dog", (40, 0, 50, 10), 0.47),    # not kept at 0.5: margin 0.03
                ("a", "dog", (100, 0, 110, 10), 0.8)],  # no overlap: margin 0.3
               conf=True)
    out = pm.evaluate(gt, pd).uncertain(0.5, 0.5)
    assert out["pd_id"].to_list() == [1, 2, 3, 0]
    assert out["margin"].to_list() == pytest.approx([0.02, 0.03, 0.3, 0.4])
    assert out["kept"].to_list() == [True, False, True, True]
    # pd 1 matches nothing at 0.5 (pd 0 took the cat); pd 2 is below the threshold
    assert out["tp"].to_list() == [False, False, False, True]
    assert pm.evaluate(gt, pd).uncertain(k=1).height == 1


def test_uncertain_across_runs():
    gt = boxes([("a", "cat", (0, 0, 10, 10)), ("a", "dog", (40, 0, 50, 10)),
                ("a", "cow", (80, 0, 90, 10))])
    run_a = boxes([("a", "cat", (0, 0, 10, 10), 0.9), ("a", "dog", (40, 0, 50, 10), 0.9),
                   ("a", "cow", (80, 0, 90, 10), 0.9)], conf=True)
    run_b = boxes([("a", "cat", (0, 0, 10, 10), 0.9), ("a", "cat", (40, 0, 50, 10), 0.9)],
                  conf=True)
    run_c = boxes([("a", "cat", (0, 0, 10, 10), 0.9)], conf=True)
    evs = {"A": pm.evaluate(gt, run_a), "B": pm.evaluate(gt, run_b), "C": pm.evaluate(gt, run_c)}
    out = pm.uncertain_across(evs)
    # gt 0 found by all: agreement, left out; gt 1: A found it, B answered cat, C nothing;
    # gt 2: A only
    assert out.select("gt_id", "n_found", "found_by", "missed_by", "A", "B", "C").rows() == [
        (1, 1, ["A"], ["B", "C"], "dog", "cat", None),
        (2, 1, ["A"], ["B", "C"], "cow", None, None)]
    other = boxes([("a", "dog", (0, 0, 10, 10))])
    with pytest.raises(PolarsMetricsError, match="other ground truth"):
        pm.uncertain_across({"A": evs["A"], "X": pm.evaluate(other, run_a)})
    # a data row without predictions is excluded from run D: its ground truths count as missed
    gt2 = pl.concat([gt, boxes([("b", "cat", (0, 0, 10, 10))])]).with_row_index("id")
    both = pl.concat([run_a, boxes([("b", "cat", (0, 0, 10, 10), 0.9)], conf=True)])
    out = pm.uncertain_across({"A": pm.evaluate(gt2, both), "D": pm.evaluate(gt2, run_a)})
    assert out.select("data_row", "gt_id", "found_by", "missed_by").rows() == [
        ("b", 3, ["A"], ["D"])]
    with pytest.raises(PolarsMetricsError, match="2\\+ runs"):
        pm.uncertain_across({"A": evs["A"]})


def test_merged_partials_keep_the_pairs():
    gt, pd, _ = injected_case(seed=1, n_rows=10)
    one = pm.evaluate(gt, pd).suspects()
    parts = [pm.partial(gt.filter(pl.col("data_row") < 5), pd.filter(pl.col("data_row") < 5)),
             pm.partial(gt.filter(pl.col("data_row") >= 5), pd.filter(pl.col("data_row") >= 5))]
    merged = pm.finalize(pm.merge(parts)).suspects()
    assert merged.equals(one)


def test_readme_section_output_is_current():
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    text = (root / "README.md").read_text()
    section = text[text.index("## Calibration and label-error queues"):]
    code, expected = re.search(r"```python\n(.*?)```\s*```\n(.*?)```", section, flags=re.S).groups()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    assert res.stdout == expected


def test_benchmark_scoring_and_harness():
    from benchmarks import suspects as bench

    gt_np, pd_np, kind = bench.detection(40, 0.05, seed=3)
    source = {int(r[1]): int(r[8]) for r in pd_np if r[8] >= 0}
    # a queue naming exactly the injected errors scores 1; a deleted gt is named by its pd
    pd_of = {g: p for p, g in source.items()}
    perfect = [(None, pd_of[g]) if k == "delete" else (g, None) for g, k in kind.items()
               if k != "delete" or g in pd_of]
    found = bench.hits(perfect, source, kind)
    assert bench.at_k(found, len(kind), len(perfect)) == (1.0, len(perfect) / len(kind))
    assert bench.at_k([None, *found], len(kind), 2) == (0.5, 1 / len(kind))
    # the deleted ground truths are gone from the labels, the others are in it
    assert not {g for g, k in kind.items() if k == "delete"} & set(gt_np[:, 1].astype(int))
    pytest.importorskip("hotcoco", reason="hotcoco is in the bench extra")
    pytest.importorskip("cleanlab", reason="cleanlab is in the bench extra")
    rows = bench.bench_detection(type("A", (), {"images": 40, "rate": 0.05, "seed": 3})())
    assert [r["method"] for r in rows] == ["polars_metrics suspects", "hotcoco image_diagnostics",
                                          "cleanlab find_label_issues"]


def test_checklist_options_sharing_an_id_are_told_apart():
    # a checklist's options share their row's id: an annotation is (data row, id, feature)
    gt = pl.DataFrame({"data_row": ["a", "b"], "kind": ["checklist"] * 2, "question": ["q", "q"],
                       "answers": [["x", "y"], ["x"]]})
    pd = pl.DataFrame({"data_row": ["a", "b"], "kind": ["checklist"] * 2, "question": ["q", "q"],
                       "answers": [["x"], ["x", "z"]], "answer_confidences": [[0.9], [0.8, 0.7]]})
    ev = pm.evaluate(gt, pd)
    # x at 0.9 and 0.8 are right, z at 0.7 is not: bin [0.5, 1] holds all three
    err = ev.calibration_error(bins=2).sort("feature", nulls_last=True).rows()
    assert err == [("x", 2, pytest.approx(0.15), pytest.approx(0.15)),
                   ("z", 1, pytest.approx(0.7), pytest.approx(0.7)),
                   (None, 3, pytest.approx(abs(2 / 3 - 0.8)), pytest.approx(abs(2 / 3 - 0.8)))]
    # z (confident, in no label) is a missing label; y (labelled, never predicted) a spurious
    # label scoring half its feature's recall: y is covered nowhere -> 0
    out = ev.suspects().select("reason", "gt_id", "pd_id", "gt_feature", "pd_feature").with_columns(
        pl.col("reason").cast(pl.String)).rows()
    assert out == [("missing_label", None, 1, None, "z"), ("spurious_label", 0, None, "y", None)]
    unc = ev.uncertain(0.5, 0.5).select("pd_id", "pd_feature", "tp").rows()
    assert sorted(unc) == [(0, "x", True), (1, "x", True), (1, "z", False)]
