"""ev.calibration / ev.calibration_error: by hand, against a naive reference, against netcal."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import polars as pl
import pytest

import polars_metrics as pm
from polars_metrics.errors import PolarsMetricsError
from polars_metrics.result import queues
from tests import naive

BOX = pl.Array(pl.Float64, 4)


def frame(rows, with_conf):
    cols = {"data_row": [r[0] for r in rows], "feature": [r[1] for r in rows],
            "bbox": [list(r[2]) for r in rows]}
    if with_conf:
        cols["confidence"] = [r[3] for r in rows]
    return pl.DataFrame(cols, schema_overrides={"bbox": BOX})


def test_hand_case():
    # row a: cat gt matched exactly by a 0.95 cat (TP) ; a 0.91 cat far away (FP)
    # row b: dog gt, a 0.32 dog overlapping IoU 0.25 (FP at 0.5, TP at 0.2); a 0.35 cat on it
    gt = frame([("a", "cat", (0, 0, 10, 10)), ("b", "dog", (0, 0, 10, 10))], False)
    pd = frame([("a", "cat", (0, 0, 10, 10), 0.95), ("a", "cat", (50, 50, 60, 60), 0.91),
                ("b", "dog", (0, 0, 10, 4), 0.32), ("b", "cat", (0, 0, 10, 10), 0.35)], True)
    ev = pm.evaluate(gt, pd, iou_thresholds=[0.2, 0.5])
    # at IoU 0.5 the walk is class-agnostic: b's cat (IoU 1) takes the dog gt -> not a TP
    table = ev.calibration(0.5, bins=10)
    micro = table.filter(pl.col("feature").is_null() & (pl.col("count") > 0))
    # bins: [0.3, 0.4) holds 0.32 and 0.35 (both wrong), [0.9, 1.0] holds 0.95 (right), 0.91
    assert micro.select("bin", "count", "accuracy").rows() == [(3, 2, 0.0), (9, 2, 0.5)]
    assert micro["confidence"].to_list() == pytest.approx([0.335, 0.93])
    err = ev.calibration_error(0.5, bins=10)
    ece = (2 * abs(0.0 - 0.335) + 2 * abs(0.5 - 0.93)) / 4
    row = err.filter(pl.col("feature").is_null()).row(0, named=True)
    assert row["count"] == 4
    assert row["ece"] == pytest.approx(ece, abs=1e-15)
    assert row["mce"] == pytest.approx(0.43, abs=1e-15)
    cat = err.filter(pl.col("feature") == "cat").row(0, named=True)
    # cat: 0.35 wrong (bin 3), 0.95 right + 0.91 wrong (bin 9)
    assert cat["ece"] == pytest.approx((0.35 + 2 * abs(0.5 - 0.93)) / 3, abs=1e-15)
    dog = err.filter(pl.col("feature") == "dog").row(0, named=True)
    assert (dog["count"], dog["ece"], dog["mce"]) == (1, pytest.approx(0.32), pytest.approx(0.32))
    # at IoU 0.2 nothing changes for b: the cat still holds the dog gt (IoU 1 first)
    assert ev.calibration_error(0.2).filter(pl.col("feature") == "dog")["ece"].item() == \
        pytest.approx(0.32)


def test_every_bin_listed_and_edges_follow_numpy():
    # the edges are linspace(0, 1, 11): its 0.30000000000000004 lies above 0.3, so 0.3 falls in
    # the bin below, as in numpy's histogram (and netcal); 0.5 is exact and opens bin 5; 1.0
    # closes the last bin
    conf = [0.3, 0.5, 1.0, 0.0]
    gt = frame([("a", "cat", (0, 0, 10, 10))], False)
    pd = frame([("a", "cat", (0, 0, 10, 10), c) for c in conf], True)
    table = pm.evaluate(gt, pd).calibration(0.5, bins=10).filter(pl.col("feature") == "cat")
    assert table.height == 10
    assert table["count"].to_list() == np.histogram(conf, np.linspace(0, 1, 11))[0].tolist()
    assert table["count"].to_list() == [1, 0, 1, 0, 0, 1, 0, 0, 0, 1]
    assert table["lower"].to_list() == np.linspace(0, 1, 11)[:-1].tolist()


def random_data(seed, n_rows=60, features=("cat", "dog", "cow")):
    rng = np.random.default_rng(seed)
    gts, pds = [], []
    for r in range(n_rows):
        for _ in range(rng.integers(1, 5)):
            x, y, w, h = rng.uniform(0, 80), rng.uniform(0, 80), rng.uniform(5, 20), rng.uniform(5, 20)
            f = str(rng.choice(features))
            gts.append((r, f, (x, y, x + w, y + h)))
            if rng.random() < 0.85:
                dx, dy = rng.normal(0, 2.5, 2)
                pf = f if rng.random() < 0.85 else str(rng.choice(features))
                conf = float(rng.choice([rng.uniform(), round(rng.uniform(), 1)]))
                pds.append((r, pf, (x + dx, y + dy, x + w + dx, y + h + dy), conf))
        for _ in range(rng.integers(1, 3)):  # every row has a prediction (none is excluded)
            x, y = rng.uniform(0, 90), rng.uniform(0, 90)
            pds.append((r, str(rng.choice(features)), (x, y, x + 8, y + 8), float(rng.uniform())))
    return frame(gts, False), frame(pds, True)


def naive_flags(gt, pd, t):
    """Per prediction (data row, position in its row): correct at IoU t, from the §5 walk in
    plain Python with every prediction taking part."""
    g_all, p_all = naive._read(gt, ["data_row"], False), naive._read(pd, ["data_row"], True)
    rows = defaultdict(lambda: ([], []))
    for a in g_all:
        rows[a.key][0].append(a)
    for p in p_all:
        rows[p.key][1].append(p)
    out = []
    for gts, pds in rows.values():
        right = {j for i, j, _ in naive.greedy_walk(gts, pds, t) if gts[i].feature == pds[j].feature}
        out += [(p.feature, p.confidence, j in right) for j, p in enumerate(pds)]
    return out


def naive_ece(flags, bins):
    """ECE and MCE with bins found by plain comparisons with the edges."""
    edges = [i / bins for i in range(bins + 1)]
    edges = list(np.linspace(0, 1, bins + 1))
    groups = defaultdict(list)
    for conf, ok in flags:
        b = next(i for i in range(bins) if conf < edges[i + 1] or i == bins - 1)
        groups[b].append((conf, ok))
    n = len(flags)
    gaps = {b: abs(sum(o for _, o in v) / len(v) - sum(c for c, _ in v) / len(v))
            for b, v in groups.items()}
    return sum(len(groups[b]) / n * g for b, g in gaps.items()), max(gaps.values())


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("t", [0.3, 0.5])
def test_against_naive_reference(seed, t):
    gt, pd = random_data(seed)
    ev = pm.evaluate(gt, pd, iou_thresholds=[0.3, 0.5])
    err = ev.calibration_error(t, bins=10)
    flags = naive_flags(gt, pd, t)
    assert sum(ok for *_, ok in flags) == \
        ev.cube.filter((pl.col("confidence_threshold") == 0) & (pl.col("iou_threshold") == t))["tp"].sum()
    for feature in [None, "cat", "dog", "cow"]:
        sub = [(c, ok) for f, c, ok in flags if feature is None or f == feature]
        ece, mce = naive_ece(sub, 10)
        got = err.filter(pl.col("feature").eq_missing(feature)).row(0, named=True)
        assert got["count"] == len(sub)
        assert got["ece"] == pytest.approx(ece, abs=1e-12)
        assert got["mce"] == pytest.approx(mce, abs=1e-12)


def test_netcal_parity():
    netcal = pytest.importorskip("netcal.metrics", reason="netcal is in the test extra")
    for seed in range(3):
        gt, pd = random_data(seed, n_rows=120)
        ev = pm.evaluate(gt, pd)
        flags = queues.flags(ev, 0.5)
        for bins in (5, 10, 15):
            for strategy, equal in (("uniform", True), ("quantile", False)):
                err = ev.calibration_error(0.5, bins=bins, strategy=strategy)
                for feature in [None, "cat", "dog", "cow"]:
                    f = flags if feature is None else flags.filter(pl.col("feature") == feature)
                    x = f["confidence"].to_numpy()[:, None]
                    y = f["correct"].to_numpy().astype(np.int64)
                    got = err.filter(pl.col("feature").eq_missing(feature)).row(0, named=True)
                    ece = netcal.ECE(bins, equal_intervals=equal, detection=True).measure(x, y)
                    mce = netcal.MCE(bins, equal_intervals=equal, detection=True).measure(x, y)
                    assert abs(got["ece"] - ece) < 1e-12, (seed, bins, strategy, feature)
                    assert abs(got["mce"] - mce) < 1e-12, (seed, bins, strategy, feature)


def test_slices_equal_evaluations_of_each_slice():
    gt, pd = random_data(3)
    half = pl.col("data_row") < 30
    gt = gt.with_columns(half.alias("half"))
    pd = pd.with_columns(half.alias("half"))
    sliced = pm.evaluate(gt, pd, by="half").calibration(0.5)
    for value in (True, False):
        alone = pm.evaluate(gt.filter(pl.col("half") == value),
                            pd.filter(pl.col("half") == value)).calibration(0.5)
        mine = sliced.filter(pl.col("half") == value).drop("half")
        assert mine.equals(alone)


def test_score_order_and_merge_agree_with_one_run():
    gt, pd = random_data(4)
    one = pm.evaluate(gt, pd, greedy_order="score").calibration_error(0.5)
    parts = [pm.partial(gt.filter(pl.col("data_row") % 2 == k),
                        pd.filter(pl.col("data_row") % 2 == k), greedy_order="score")
             for k in (0, 1)]
    merged = pm.finalize(pm.merge(parts)).calibration_error(0.5)
    a, b = merged.sort("feature", nulls_last=True), one.sort("feature", nulls_last=True)
    assert a.select("feature", "count").equals(b.select("feature", "count"))
    # the bins add predictions in another order: equal to rounding
    np.testing.assert_allclose(a.select("ece", "mce").to_numpy(), b.select("ece", "mce").to_numpy(),
                               rtol=0, atol=1e-14)


def test_clear_errors():
    gt = frame([("a", "cat", (0, 0, 10, 10))], False)
    with pytest.raises(PolarsMetricsError, match="1 of 1 predictions have none"):
        pm.evaluate(gt, gt).calibration()
    pd = frame([("a", "cat", (0, 0, 10, 10), None), ("a", "cat", (0, 0, 10, 10), 0.4)], True)
    with pytest.raises(PolarsMetricsError, match=r"1 of 2 .* data row data_row='a', id 0"):
        pm.evaluate(gt, pd).calibration()
    with pytest.raises(PolarsMetricsError, match="1 of 2"):
        pm.evaluate(gt, pd).suspects()
    sdk = pm.evaluate(gt, pd.fill_null(0.5), profile="labelbox-sdk")
    with pytest.raises(PolarsMetricsError, match="ignores them"):
        sdk.calibration()
    ev = pm.evaluate(gt, frame([("a", "cat", (0, 0, 10, 10), 0.5)], True))
    with pytest.raises(ValueError, match="strategy"):
        ev.calibration(strategy="equal")
    with pytest.raises(ValueError, match="bins"):
        ev.calibration(bins=0)
    with pytest.raises(pm.ThresholdError):
        ev.calibration(0.55)
    coco = pm.evaluate(frame([(1, "cat", (0, 0, 10, 10))], False),
                       frame([(1, "cat", (0, 0, 10, 10), 0.5)], True), profile="coco")
    with pytest.raises(PolarsMetricsError, match="COCO engine"):
        coco.calibration()


def test_coco_with_errors_true_is_refused_with_the_way_out():
    """profile="coco", errors=True keeps the pairs for ev.errors() but not every prediction's
    match: calibration and the queues say so (they crashed with an AttributeError)."""
    gt = pl.DataFrame({"data_row": [1], "feature": ["cat"], "bbox": [[0.0, 0, 10, 10]]},
                      schema_overrides={"bbox": pl.Array(pl.Float64, 4)})
    ev = pm.evaluate(gt, gt.with_columns(confidence=pl.lit(0.9)), profile="coco", errors=True)
    for method in (ev.calibration, ev.calibration_error, ev.suspects, ev.uncertain):
        with pytest.raises(pm.PolarsMetricsError, match="COCO engine keeps true positives only"):
            method()
