"""ev.errors(): TIDE error types at a cell, against a brute-force reference, by hand, and
(under profile="coco") against tidecv and hotcoco."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import polars_metrics as pm
from polars_metrics.analysis.errors import ERROR_TYPES
from polars_metrics.errors import PolarsMetricsError

BOX = pl.Array(pl.Float64, 4)


# --- brute force --------------------------------------------------------------------------
def box_iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def span_iou(a, b) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def radio_iou(a, b) -> float:
    return 1.0 if a == b else 0.0  # a radio answer pairs with every answer to its question


def naive(gts, pds, iou_fn, *, conf, fg, bg, class_aware, order="iou", strict=True):
    """Per-cell error types by explicit loops. gts: (row, id, feature, geom); pds: (row, id,
    feature, geom, confidence). Returns {("prediction"|"ground_truth", id): (type, other id)}."""
    passes = (lambda v: v > fg) if strict else (lambda v: v >= fg)
    out = {}
    # profile "labelbox" counts the data rows with ground truth and predictions (rows="both")
    for row in sorted({g[0] for g in gts} & {p[0] for p in pds}):
        G = [g for g in gts if g[0] == row]
        P = [p for p in pds if p[0] == row and p[4] >= conf]
        iou = {(i, j): iou_fn(g[3], p[3]) for i, g in enumerate(G) for j, p in enumerate(P)}
        gm, pm_ = {}, {}
        if order == "iou":  # greedy by IoU descending; ties: first ground truth, prediction
            cand = sorted((-v, i, j) for (i, j), v in iou.items()
                          if v > 0 and passes(v) and (not class_aware or G[i][2] == P[j][2]))
            for _, i, j in cand:
                if i not in gm and j not in pm_:
                    gm[i], pm_[j] = j, i
        else:  # predictions by score, each takes its best free ground truth
            for j in sorted(range(len(P)), key=lambda j: -P[j][4]):
                best, bi = -1.0, None
                for i in range(len(G)):
                    if i in gm or (class_aware and G[i][2] != P[j][2]):
                        continue
                    if iou[i, j] > best:
                        best, bi = iou[i, j], i
                if bi is not None and best > 0 and passes(best):
                    gm[bi], pm_[j] = j, bi
        tp_g = {i for i, j in gm.items() if G[i][2] == P[j][2]}
        tp_p = {gm[i] for i in tp_g}
        typ = {}
        for j, p in enumerate(P):
            if j in tp_p:
                continue

            def best(allowed, j=j, iou=iou):
                cands = [(iou[i, j], -i) for i in allowed if iou[i, j] > 0]
                return max(cands) if cands else (0.0, None)
            same = best([i for i in range(len(G)) if G[i][2] == p[2]])
            other = best([i for i in range(len(G)) if G[i][2] != p[2]])
            used = best([i for i in range(len(G)) if G[i][2] == p[2] and i in gm])
            anyg = best(range(len(G)))
            if not G:
                t, i = "background", None
            elif same[1] is not None and same[0] >= bg and not passes(same[0]):
                t, i = "localization", -same[1]
            elif other[1] is not None and passes(other[0]):
                t, i = "classification", -other[1]
            elif used[1] is not None and passes(used[0]):
                t, i = "duplicate", -used[1]
            elif anyg[0] <= bg:
                t, i = "background", None if anyg[1] is None else -anyg[1]
            else:
                t, i = "both", -other[1]
            typ[j] = (t, i)
            out["prediction", p[1]] = (t, None if i is None else G[i][1])
        for i, g in enumerate(G):
            if i in tp_g:
                continue
            expl = [(-P[j][4], j) for j, (t, k) in typ.items()
                    if k == i and t in ("classification", "localization")]
            if expl:
                j = min(expl)[1]
                out["ground_truth", g[1]] = (typ[j][0], P[j][1])
            else:
                out["ground_truth", g[1]] = ("missed", None)
    return out


def ours(ev, conf, iou, bg=0.1):
    ann = ev.errors(conf, iou, background_iou=bg, per="annotation")
    res = {}
    for side, t, gid, pid in ann.select("side", "error_type", "gt_id", "pd_id").iter_rows():
        key, other = (pid, gid) if side == "prediction" else (gid, pid)
        res[side, key] = (t, other)
    return res


# --- random data per kind -----------------------------------------------------------------
FEATS = ["a", "b", "c"]


def random_boxes(rng, n_rows, n_per):
    gts, pds = [], []
    for r in range(n_rows):
        base = []
        for _ in range(rng.integers(0, n_per + 1)):
            x, y = rng.uniform(0, 60, 2)
            w, h = rng.uniform(5, 30, 2)
            base.append([x, y, x + w, y + h])
            gts.append((r, len(gts), FEATS[rng.integers(3)], base[-1]))
        for _ in range(rng.integers(0, n_per + 2)):
            if base and rng.random() < 0.7:
                b = np.array(base[rng.integers(len(base))]) + rng.normal(0, 4, 4)
                b = [b[0], b[1], max(b[2], b[0] + 1), max(b[3], b[1] + 1)]
            else:
                x, y = rng.uniform(0, 60, 2)
                b = [x, y, x + rng.uniform(5, 30), y + rng.uniform(5, 30)]
            pds.append((r, len(pds), FEATS[rng.integers(3)], list(map(float, b)),
                        float(rng.uniform(0, 1))))
    return gts, pds


def box_frames(gts, pds, column="bbox"):
    g = pl.DataFrame({"data_row": [x[0] for x in gts], "id": [x[1] for x in gts],
                      "feature": [x[2] for x in gts], "bbox": [x[3] for x in gts]},
                     schema_overrides={"bbox": BOX, "data_row": pl.Int64, "id": pl.Int64,
                                       "feature": pl.String})
    p = pl.DataFrame({"data_row": [x[0] for x in pds], "id": [x[1] for x in pds],
                      "feature": [x[2] for x in pds], "bbox": [x[3] for x in pds],
                      "confidence": [x[4] for x in pds]},
                     schema_overrides={"bbox": BOX, "data_row": pl.Int64, "id": pl.Int64,
                                       "feature": pl.String, "confidence": pl.Float64})
    if column == "polygon":
        def poly(b):
            return [[[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]], [b[0], b[1]]]]
        g = g.with_columns(polygon=pl.Series([poly(x[3]) for x in gts])).drop("bbox")
        p = p.with_columns(polygon=pl.Series([poly(x[3]) for x in pds])).drop("bbox")
    return g, p


def random_spans(rng, n_rows, n_per):
    gts, pds = [], []
    for r in range(n_rows):
        base = []
        for _ in range(rng.integers(0, n_per + 1)):
            a = int(rng.integers(0, 200))
            base.append((a, a + int(rng.integers(3, 40))))
            gts.append((r, len(gts), FEATS[rng.integers(3)], base[-1]))
        for _ in range(rng.integers(0, n_per + 2)):
            if base and rng.random() < 0.7:
                a, b = base[rng.integers(len(base))]
                a, b = a + int(rng.integers(-6, 7)), b + int(rng.integers(-6, 7))
                a, b = max(a, 0), max(b, max(a, 0) + 1)
            else:
                a = int(rng.integers(0, 200))
                b = a + int(rng.integers(3, 40))
            pds.append((r, len(pds), FEATS[rng.integers(3)], (a, b), float(rng.uniform(0, 1))))
    return gts, pds


def span_frames(gts, pds):
    def frame(rows, conf):
        d = {"data_row": [x[0] for x in rows], "id": [x[1] for x in rows],
             "feature": [x[2] for x in rows], "start": [x[3][0] for x in rows],
             "end": [x[3][1] for x in rows]}
        if conf:
            d["confidence"] = [x[4] for x in rows]
        return pl.DataFrame(d, schema_overrides={"data_row": pl.Int64, "id": pl.Int64,
                                                 "start": pl.Int64, "end": pl.Int64,
                                                 "feature": pl.String})
    return frame(gts, False), frame(pds, True)


def random_radio(rng, n_rows):
    gts, pds = [], []
    for r in range(n_rows):
        for q in ("q1", "q2"):
            if rng.random() < 0.8:
                gts.append((r, len(gts), FEATS[rng.integers(3)], q))
            if rng.random() < 0.8:
                pds.append((r, len(pds), FEATS[rng.integers(3)], q, float(rng.uniform(0, 1))))
    return gts, pds


def radio_frames(gts, pds):
    g = pl.DataFrame({"data_row": [x[0] for x in gts], "id": [x[1] for x in gts],
                      "question": [x[3] for x in gts], "answer": [x[2] for x in gts]},
                     schema_overrides={"data_row": pl.Int64, "id": pl.Int64})
    p = pl.DataFrame({"data_row": [x[0] for x in pds], "id": [x[1] for x in pds],
                      "question": [x[3] for x in pds], "answer": [x[2] for x in pds],
                      "confidence": [x[4] for x in pds]},
                     schema_overrides={"data_row": pl.Int64, "id": pl.Int64})
    return g, p


CELLS = [(0.0, 0.5), (0.3, 0.3), (0.6, 0.7), (0.2, 0.1)]


@pytest.mark.parametrize("class_aware", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_boxes_match_brute_force(seed, class_aware):
    rng = np.random.default_rng(seed)
    gts, pds = random_boxes(rng, 40, 5)
    ev = pm.evaluate(*box_frames(gts, pds), class_aware=class_aware)
    for conf, iou in CELLS:
        for bg in [b for b in (0.1, 0.25) if b <= iou]:
            want = naive(gts, pds, box_iou, conf=conf, fg=iou, bg=bg, class_aware=class_aware)
            assert ours(ev, conf, iou, bg) == want, (conf, iou, bg)


def test_polygons_match_brute_force():
    rng = np.random.default_rng(7)
    gts, pds = random_boxes(rng, 30, 4)
    ev = pm.evaluate(*box_frames(gts, pds, "polygon"), class_aware=True)
    for conf, iou in CELLS:
        want = naive(gts, pds, box_iou, conf=conf, fg=iou, bg=0.1, class_aware=True)
        assert ours(ev, conf, iou) == want


@pytest.mark.parametrize("seed", [0, 1])
def test_spans_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    gts, pds = random_spans(rng, 40, 5)
    ev = pm.evaluate(*span_frames(gts, pds), class_aware=True)
    for conf, iou in CELLS:
        want = naive(gts, pds, span_iou, conf=conf, fg=iou, bg=0.1, class_aware=True)
        assert ours(ev, conf, iou) == want


def test_score_order_matches_brute_force():
    rng = np.random.default_rng(3)
    gts, pds = random_boxes(rng, 40, 5)
    ev = pm.evaluate(*box_frames(gts, pds), greedy_order="score", class_aware=True,
                     iou_strict=False)
    for conf, iou in CELLS:
        want = naive(gts, pds, box_iou, conf=conf, fg=iou, bg=0.1, class_aware=True,
                     order="score", strict=False)
        assert ours(ev, conf, iou) == want


def test_radio_wrong_answer_is_classification():
    rng = np.random.default_rng(5)
    gts, pds = random_radio(rng, 40)
    ev = pm.evaluate(*radio_frames(gts, pds))
    for conf, iou in CELLS:
        want = naive(gts, pds, radio_iou, conf=conf, fg=iou, bg=0.1, class_aware=False)
        got = ours(ev, conf, iou)
        assert got == want
    types = {v[0] for v in want.values()}
    assert types <= {"classification", "background", "missed"} and "classification" in types


# --- the counts add up to the cell's FP and FN ----------------------------------------------
@pytest.mark.parametrize("class_aware", [True, False])
def test_counts_sum_to_fp_and_fn(class_aware):
    rng = np.random.default_rng(11)
    gts, pds = random_boxes(rng, 60, 6)
    ev = pm.evaluate(*box_frames(gts, pds), class_aware=class_aware)
    for conf, iou in CELLS:
        summ = ev.summary(conf, iou).filter(~pl.col("feature").str.starts_with("all ("))
        counts = ev.errors(conf, iou)
        ann = ev.errors(conf, iou, per="annotation")
        assert counts.height == (len(ev.features) + 1) * len(ERROR_TYPES)
        for feat, fp, fn in summ.select("feature", "fp", "fn").iter_rows():
            c = dict(counts.filter(pl.col("feature") == feat)
                     .select("error_type", "count").iter_rows())
            assert sum(c[t] for t in ERROR_TYPES[:5]) == fp
            explained = ann.filter((pl.col("side") == "ground_truth")
                                   & (pl.col("gt_feature") == feat)
                                   & (pl.col("error_type") != "missed")).height
            assert c["missed"] + explained == fn
        tot = dict(counts.filter(pl.col("feature").is_null())
                   .select("error_type", "count").iter_rows())
        assert sum(tot[t] for t in ERROR_TYPES[:5]) == summ["fp"].sum()


# --- hand-computed cases, one per type ------------------------------------------------------
def _one(gt_rows, pd_rows, **kw):
    g = pl.DataFrame(gt_rows, schema={"data_row": pl.String, "feature": pl.String, "bbox": BOX},
                     orient="row")
    p = pl.DataFrame(pd_rows, schema={"data_row": pl.String, "feature": pl.String, "bbox": BOX,
                                      "confidence": pl.Float64}, orient="row")
    ev = pm.evaluate(g, p, class_aware=True, **kw)
    return ev.errors(0.5, 0.5, per="annotation").select(
        "side", "error_type", "gt_id", "pd_id", "iou").rows()


SQ = [0.0, 0, 10, 10]


def test_hand_localization_and_its_ground_truth():
    # IoU 0.3 in [0.1, 0.5): localization; the ground truth it targets is explained by it
    assert _one([("a", "cat", SQ)], [("a", "cat", [0.0, 0, 10, 3], 0.9)]) == [
        ("prediction", "localization", 0, 0, pytest.approx(0.3)),
        ("ground_truth", "localization", 0, 0, pytest.approx(0.3))]


def test_hand_classification():
    assert _one([("a", "cat", SQ)], [("a", "dog", SQ, 0.9)]) == [
        ("prediction", "classification", 0, 0, 1.0),
        ("ground_truth", "classification", 0, 0, 1.0)]


def test_hand_both():
    # wrong feature and IoU 0.3: neither classification nor localization alone; gt missed
    assert _one([("a", "cat", SQ)], [("a", "dog", [0.0, 0, 10, 3], 0.9)]) == [
        ("prediction", "both", 0, 0, pytest.approx(0.3)),
        ("ground_truth", "missed", 0, None, None)]


def test_hand_duplicate():
    assert _one([("a", "cat", SQ)], [("a", "cat", SQ, 0.9), ("a", "cat", [0.0, 0, 10, 9], 0.8)]) == [
        ("prediction", "duplicate", 0, 1, pytest.approx(0.9))]


def test_hand_background_and_missed():
    rows = _one([("a", "cat", SQ), ("b", "cat", SQ)],
                [("a", "cat", [50.0, 50, 60, 60], 0.9), ("c", "dog", SQ, 0.9)], rows="all")
    # row a: no overlap; row b: nothing predicted; row c: no ground truth at all
    assert rows == [("prediction", "background", None, 0, None),
                    ("ground_truth", "missed", 0, None, None),
                    ("ground_truth", "missed", 1, None, None),
                    ("prediction", "background", None, 1, None)]


def test_hand_background_below_threshold_overlap():
    # IoU 0.05 with the only ground truth: <= background_iou
    rows = _one([("a", "cat", SQ)], [("a", "cat", [0.0, 0, 10, 0.5], 0.9)])
    assert rows[0][:2] == ("prediction", "background")
    rows = _one([("a", "cat", SQ)], [("a", "cat", [0.0, 0, 10, 0.5], 0.9)])
    assert rows[1][:2] == ("ground_truth", "missed")


def test_best_explainer_is_highest_confidence():
    rows = _one([("a", "cat", SQ)], [("a", "dog", SQ, 0.6), ("a", "cat", [0.0, 0, 10, 3], 0.8)])
    # gt explained by the 0.8 localization error, not the 0.6 classification error
    assert rows[-1] == ("ground_truth", "localization", 0, 1, pytest.approx(0.3))


def test_per_and_background_iou_are_checked():
    gts, pds = random_boxes(np.random.default_rng(0), 3, 2)
    ev = pm.evaluate(*box_frames(gts, pds))
    with pytest.raises(ValueError, match="per="):
        ev.errors(per="image")
    with pytest.raises(ValueError, match="background_iou"):
        ev.errors(0.5, 0.5, background_iou=0.7)


def test_by_slices_count_per_slice():
    gts, pds = random_boxes(np.random.default_rng(4), 30, 4)
    g, p = box_frames(gts, pds)
    g = g.with_columns(split=pl.when(pl.col("data_row") % 2 == 0).then(pl.lit("even"))
                       .otherwise(pl.lit("odd")))
    ev = pm.evaluate(g, p, by="split", class_aware=True)
    counts = ev.errors(0.0, 0.5)
    fp = (ev.summary(0.0, 0.5).filter(~pl.col("feature").str.starts_with("all ("))
          .group_by("split").agg(pl.col("fp").sum()).sort("split"))
    got = (counts.filter(pl.col("feature").is_not_null(),
                         pl.col("error_type").cast(pl.String) != "missed")
           .group_by("split").agg(pl.col("count").sum()).sort("split"))
    assert got["count"].to_list() == fp["fp"].to_list()


def test_merged_evaluation_refuses_clearly():
    gts, pds = random_boxes(np.random.default_rng(0), 6, 2)
    g, p = box_frames(gts, pds)
    parts = [pm.partial(g.filter(pl.col("data_row") < 3), p.filter(pl.col("data_row") < 3)),
             pm.partial(g.filter(pl.col("data_row") >= 3), p.filter(pl.col("data_row") >= 3))]
    ev = pm.finalize(pm.merge(parts))
    with pytest.raises(PolarsMetricsError, match="pm.evaluate"):
        ev.errors()


# --- under profile="coco": parity with tidecv and hotcoco ---------------------------------
SHORT = {"classification": "Cls", "localization": "Loc", "both": "Both", "duplicate": "Dupe",
         "background": "Bkg", "missed": "Miss"}


def coco_data(seed, n_images=60, n_classes=5):
    """Random COCO-style boxes without crowd, every predicted class also in the ground truth,
    < 100 detections per image, continuous scores."""
    rng = np.random.default_rng(seed)
    gts, pds = [], []
    for img in range(1, n_images + 1):
        base = []
        for _ in range(rng.integers(0, 8)):
            x, y = rng.uniform(0, 200, 2)
            w, h = rng.uniform(8, 60, 2)
            base.append(([x, y, x + w, y + h], int(rng.integers(1, n_classes + 1))))
            gts.append((img, len(gts) + 1, f"c{base[-1][1]}", base[-1][0]))
        for _ in range(rng.integers(0, 15)):
            if base and rng.random() < 0.75:
                b, k = base[rng.integers(len(base))]
                b = np.array(b) + rng.normal(0, rng.choice([1.0, 6.0, 15.0]), 4)
                b = [b[0], b[1], max(b[2], b[0] + 2), max(b[3], b[1] + 2)]
                k = k if rng.random() < 0.8 else int(rng.integers(1, n_classes + 1))
            else:
                x, y = rng.uniform(0, 200, 2)
                b = [x, y, x + rng.uniform(8, 60), y + rng.uniform(8, 60)]
                k = int(rng.integers(1, n_classes + 1))
            pds.append((img, len(pds) + 1, f"c{k}", [float(v) for v in b],
                        float(rng.uniform(0.01, 1))))
    gt_classes = {g[2] for g in gts}
    pds = [p for p in pds if p[2] in gt_classes]
    return gts, pds


def tidecv_result(gts, pds, fg=0.5, bg=0.1):
    tidecv = pytest.importorskip("tidecv", reason="tidecv (pip install tidecv) is the reference")
    g, p = tidecv.Data("gt"), tidecv.Data("pd")
    for img, _, f, b in gts:
        g.add_ground_truth(img, int(f[1:]), [b[0], b[1], b[2] - b[0], b[3] - b[1]])
    for img in {x[0] for x in gts}:  # every image of the ground truth is evaluated
        g._make_default_image(img)
    for img, _, f, b, sc in pds:
        p.add_detection(img, int(f[1:]), sc, [b[0], b[1], b[2] - b[0], b[3] - b[1]])
    tide = tidecv.TIDE(pos_threshold=fg, background_threshold=bg)
    run = tide.evaluate(g, p, mode=tidecv.TIDE.BOX, name="run")
    counts = {k.short_name: v for k, v in run.count_errors().items()}
    delta = {k: v / 100 for k, v in tide.get_main_errors()["run"].items()}
    return counts, delta, run.ap / 100


def hotcoco_result(gts, pds, tmp_path, fg=0.5, bg=0.1):
    hotcoco = pytest.importorskip("hotcoco", reason="hotcoco (pip install hotcoco) ships TIDE")
    import json
    classes = sorted({int(x[2][1:]) for x in gts} | {int(x[2][1:]) for x in pds})
    images = sorted({x[0] for x in gts})
    gt_json = {"images": [{"id": i, "width": 300, "height": 300} for i in images],
               "categories": [{"id": k, "name": f"c{k}"} for k in classes],
               "annotations": [{"id": i, "image_id": img, "category_id": int(f[1:]),
                                "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                                "area": (b[2] - b[0]) * (b[3] - b[1]), "iscrowd": 0}
                               for img, i, f, b in gts]}
    res = [{"image_id": img, "category_id": int(f[1:]), "score": sc,
            "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]} for img, _, f, b, sc in pds]
    (tmp_path / "gt.json").write_text(json.dumps(gt_json))
    (tmp_path / "res.json").write_text(json.dumps(res))
    coco_gt = hotcoco.COCO(str(tmp_path / "gt.json"))
    ev = hotcoco.COCOeval(coco_gt, coco_gt.load_res(str(tmp_path / "res.json")), "bbox")
    ev.evaluate()
    out = ev.tide_errors(pos_thr=fg, bg_thr=bg)
    return out["counts"], out["delta_ap"], out["ap_base"]


def ours_coco(gts, pds, fg=0.5, bg=0.1):
    g, p = box_frames(gts, pds)
    ev = pm.evaluate(g, p, profile="coco", errors=True, confidence_thresholds=[0.0])
    tot = ev.errors(0.0, fg, background_iou=bg).filter(pl.col("feature").is_null())
    counts = {SHORT[t]: n for t, n in tot.select("error_type", "count").iter_rows()}
    delta = {SHORT[t]: d for t, d in tot.select("error_type", "delta_ap").iter_rows()}
    return ev, counts, delta


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coco_matches_tidecv(seed):
    gts, pds = coco_data(seed)
    ev, counts, delta = ours_coco(gts, pds)
    want_counts, want_delta, want_ap = tidecv_result(gts, pds)
    assert counts == want_counts
    for k, v in want_delta.items():
        assert delta[k] == pytest.approx(v, abs=0.005), k
    # without crowd and with every predicted class in the ground truth, TIDE's AP is AP50
    # (tidecv's own AP differs from pycocotools' in the 5th decimal on these data)
    assert float(ev.coco.stats[1]) == pytest.approx(want_ap, abs=1e-3)


def test_coco_fg_075_matches_tidecv():
    gts, pds = coco_data(5)
    _, counts, delta = ours_coco(gts, pds, fg=0.75, bg=0.2)
    want_counts, want_delta, _ = tidecv_result(gts, pds, fg=0.75, bg=0.2)
    assert counts == want_counts
    for k, v in want_delta.items():
        assert delta[k] == pytest.approx(v, abs=0.005), k


@pytest.mark.parametrize("seed", [0, 3])
def test_coco_matches_hotcoco(seed, tmp_path):
    gts, pds = coco_data(seed)
    ev, counts, delta = ours_coco(gts, pds)
    want_counts, want_delta, want_ap = hotcoco_result(gts, pds, tmp_path)
    assert counts == want_counts
    assert float(ev.coco.stats[1]) == pytest.approx(want_ap, abs=1e-12)
    for k in SHORT.values():
        assert delta[k] == pytest.approx(want_delta[k], abs=0.005), k


def test_coco_counts_sum_to_fp():
    gts, pds = coco_data(4)
    g, p = box_frames(gts, pds)
    ev = pm.evaluate(g, p, profile="coco", errors=True, confidence_thresholds=[0.0, 0.5])
    for conf in (0.0, 0.5):
        summ = ev.summary(conf, 0.5).filter(pl.col("feature") == "all (micro)")
        tot = dict(ev.errors(conf, 0.5).filter(pl.col("feature").is_null())
                   .select("error_type", "count").iter_rows())
        ann = ev.errors(conf, 0.5, per="annotation")
        assert sum(tot[t] for t in ERROR_TYPES[:5]) == summ["fp"].item()
        assert ann.filter(pl.col("side") == "ground_truth").height == summ["fn"].item()


def test_coco_without_errors_flag_says_which_option():
    gts, pds = coco_data(0, n_images=5)
    ev = pm.evaluate(*box_frames(gts, pds), profile="coco")
    with pytest.raises(PolarsMetricsError, match="errors=True"):
        ev.errors()


# --- more kinds: masks against the brute force (integer rectangles: mask IoU = box IoU), and
# points and lines by the FP / FN sums ------------------------------------------------------
def _rle(b, size=100):
    m = np.zeros((size, size), dtype=bool)
    m[int(b[1]):int(b[3]), int(b[0]):int(b[2])] = True
    flat = m.flatten(order="F")  # COCO RLE runs go down the columns, zeros first
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat.astype(np.int8))) + 1, [flat.size]])
    counts = np.diff(bounds).tolist()
    return {"height": size, "width": size, "counts": ([0] + counts) if flat[0] else counts}


def _integer(rows, geom_at=3):
    out = []
    for r in rows:
        b = [min(max(round(v / 1.2), 0), 99) for v in r[geom_at]]
        b = [b[0], b[1], max(b[2], b[0] + 1), max(b[3], b[1] + 1)]
        b = [min(b[0], 98), min(b[1], 98), min(b[2], 99), min(b[3], 99)]
        out.append((*r[:geom_at], [float(v) for v in b], *r[geom_at + 1:]))
    return out


def test_masks_match_brute_force():
    rng = np.random.default_rng(8)
    gts, pds = random_boxes(rng, 30, 4)
    gts, pds = _integer(gts), _integer(pds)
    g, p = box_frames(gts, pds)
    mask = pl.Struct({"height": pl.Int64, "width": pl.Int64, "counts": pl.List(pl.UInt32)})
    g = g.with_columns(mask=pl.Series([_rle(x[3]) for x in gts], dtype=mask)).drop("bbox")
    p = p.with_columns(mask=pl.Series([_rle(x[3]) for x in pds], dtype=mask)).drop("bbox")
    ev = pm.evaluate(g, p, class_aware=True)
    for conf, iou in CELLS:
        want = naive(gts, pds, box_iou, conf=conf, fg=iou, bg=0.1, class_aware=True)
        assert ours(ev, conf, iou) == want


@pytest.mark.parametrize("kind", ["point", "line"])
def test_points_and_lines_sum_to_fp_and_fn(kind):
    rng = np.random.default_rng(9)
    gts, pds = random_boxes(rng, 30, 4)

    def geom(b):
        b = [10 * v for v in b]  # buffer radius 70: spread the coordinates
        if kind == "point":
            return [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2]
        return [[b[0], b[1]], [b[2], b[3]]]
    dtype = pl.Array(pl.Float64, 2) if kind == "point" else pl.List(pl.Array(pl.Float64, 2))
    g, p = box_frames(gts, pds)
    g = g.with_columns(pl.Series(kind, [geom(x[3]) for x in gts], dtype=dtype)).drop("bbox")
    p = p.with_columns(pl.Series(kind, [geom(x[3]) for x in pds], dtype=dtype)).drop("bbox")
    ev = pm.evaluate(g, p, class_aware=True)
    for conf, iou in CELLS:
        summ = ev.summary(conf, iou).filter(pl.col("feature") == "all (micro)")
        ann = ev.errors(conf, iou, per="annotation")
        assert ann.filter(pl.col("side") == "prediction").height == summ["fp"].item()
        assert ann.filter(pl.col("side") == "ground_truth").height == summ["fn"].item()
    assert ann["error_type"].n_unique() >= 3


# --- the README example and the benchmark's parity check ------------------------------------
def test_readme_errors_example_says_what_it_computes():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("## Why the model fails: error types"):]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    scope: dict = {}
    exec(code, scope)  # noqa: S102 - the README's own example
    tot = scope["ev"].errors(0.5, 0.5).filter(pl.col("feature").is_null())
    assert dict(tot.select("error_type", "count").iter_rows()) == {
        "classification": 1, "localization": 1, "both": 0, "duplicate": 1, "background": 1,
        "missed": 0}
    coco = scope["coco"].errors(0.5, 0.5).filter(pl.col("feature").is_null())
    got = {t: round(d, 3) for t, d in coco.select("error_type", "delta_ap").iter_rows()}
    assert got == {"classification": 0.5, "localization": 0.124, "both": 0.0,
                   "duplicate": 0.0, "background": 0.0, "missed": 0.0}


def test_benchmark_parity_on_tiny_data():
    pytest.importorskip("tidecv", reason="tidecv (pip install tidecv) is the reference")
    pytest.importorskip("hotcoco", reason="hotcoco (pip install hotcoco) ships TIDE")
    from benchmarks.errors import run_errors_benchmark
    from benchmarks.generate import generate

    ds = generate(25, seed=3)
    rows = run_errors_benchmark(ds.ground_truth, ds.predictions, repeat=1)
    checks = [r["parity"] for r in rows if isinstance(r["parity"], dict)]
    assert len(checks) == 2 and all(c["ok"] and c["counts_equal"] for c in checks), checks


def test_coco_segm_masks_sum_to_fp_and_fn():
    gts, pds = coco_data(6, n_images=20)
    gts = [(a, i, f, b) for a, i, f, b in _integer(gts)]
    pds = _integer(pds)
    g, p = box_frames(gts, pds)
    mask = pl.Struct({"height": pl.Int64, "width": pl.Int64, "counts": pl.List(pl.UInt32)})
    g = g.with_columns(mask=pl.Series([_rle(x[3]) for x in gts], dtype=mask)).drop("bbox")
    p = p.with_columns(mask=pl.Series([_rle(x[3]) for x in pds], dtype=mask)).drop("bbox")
    ev = pm.evaluate(g, p, profile="coco", iou_type="segm", errors=True,
                     confidence_thresholds=[0.0])
    summ = ev.summary(0.0, 0.5).filter(pl.col("feature") == "all (micro)")
    ann = ev.errors(0.0, 0.5, per="annotation")
    assert ann.filter(pl.col("side") == "prediction").height == summ["fp"].item()
    assert ann.filter(pl.col("side") == "ground_truth").height == summ["fn"].item()
    # integer rectangles: the same types as the boxes they rasterize
    boxes = pm.evaluate(*box_frames(gts, pds), profile="coco", errors=True,
                        confidence_thresholds=[0.0])
    assert ann.equals(boxes.errors(0.0, 0.5, per="annotation"))
