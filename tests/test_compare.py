"""pm.compare: exact point deltas, paired bootstrap against explicit resampling, flips, coverage.

Every reference here is computed independently of polars_metrics/compare/: the point deltas
from two separate ``pm.evaluate`` calls, the bootstrap by re-evaluating explicitly resampled
data sets (data rows duplicated under new keys) with ``pm.evaluate``, the flips by hand.
"""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import polars_metrics as pm
from polars_metrics.compare import bootstrap as bs

BOX = pl.Array(pl.Float64, 4)
METRICS = ["tp", "fp", "fn", "precision", "recall", "f1", "iou"]
GRID = dict(confidence_thresholds=[0.0, 0.5, 0.8], iou_thresholds=[0.3, 0.5, 0.7])


def _runs(n_images=40, seed=3):
    gt, pd = pm.synthetic.detections(n_images=n_images, n_classes=4, seed=seed)
    rng = np.random.default_rng(seed)
    keep = rng.random(pd.height) < 0.8
    conf = np.clip(pd["confidence"].to_numpy() + rng.normal(0, 0.1, pd.height), 0, 1)
    pd_b = pd.filter(pl.Series(keep)).with_columns(confidence=pl.Series(conf[keep]))
    return gt.drop("split"), pd.drop("split"), pd_b.drop("split")


def _long(ev) -> pl.DataFrame:
    keys = ["average", "feature", "confidence_threshold", "iou_threshold"]
    cube = ev.cube.with_columns(pl.lit(None, dtype=pl.String).alias("average"))
    over = ev.overall.with_columns(pl.lit(None, dtype=pl.String).alias("feature"))
    return pl.concat([f.select(*keys, *[pl.col(m).cast(pl.Float64) for m in METRICS])
                      for f in (cube, over)])


def test_point_deltas_equal_two_independent_evaluations():
    gt, pd_a, pd_b = _runs()
    cmp = pm.compare(gt, {"A": pd_a, "B": pd_b}, n_resamples=20, **GRID)
    ev_a, ev_b = pm.evaluate(gt, pd_a, **GRID), pm.evaluate(gt, pd_b, **GRID)
    keys = ["average", "feature", "confidence_threshold", "iou_threshold"]
    want = _long(ev_a).join(_long(ev_b), on=keys, how="full", coalesce=True, nulls_equal=True,
                            suffix="_b").sort(keys, nulls_last=True)
    got = cmp.deltas.pivot(on="metric", index=keys, values="delta").sort(keys, nulls_last=True)
    assert got.height == want.height == ev_a.cube.height + ev_a.overall.height
    for m in METRICS:
        expect = want[f"{m}_b"] - want[m]
        assert got[m].to_list() == expect.to_list(), m
    # and the values themselves are the evaluations' numbers
    base = cmp.deltas.pivot(on="metric", index=keys, values="baseline_value").sort(
        keys, nulls_last=True)
    assert base["recall"].to_list() == want["recall"].to_list()


def test_self_comparison_is_exactly_zero():
    gt, pd_a, _ = _runs(n_images=25)
    cmp = pm.compare(gt, {"A": pd_a, "B": pd_a}, n_resamples=50, **GRID)
    d = cmp.deltas
    defined = d.filter(pl.col("delta").is_not_null())
    assert defined.height > 0.8 * d.height
    assert (defined["delta"] == 0).all()
    boot = d.filter(pl.col("resamples") > 0)
    assert boot.height > 0
    assert (boot["ci_low"] == 0).all() and (boot["ci_high"] == 0).all()
    assert (boot["p_value"] == 1).all()
    assert cmp.flip_counts()["both"][-1] + cmp.flip_counts()["neither"][-1] == \
        cmp.flip_counts()["total"][-1]


def _box(i):
    return [10.0 * i, 0, 10.0 * i + 8, 8]


def test_flips_hand_case():
    # 5 ground truths on 2 rows: A finds g0, g1; B finds g0, g2; nobody finds g3, g4 (B's
    # g4 box is the wrong feature)
    gt = pl.DataFrame({"data_row": ["r1", "r1", "r1", "r2", "r2"], "id": [0, 1, 2, 3, 4],
                       "feature": ["cat", "cat", "dog", "dog", "cat"],
                       "bbox": [_box(i) for i in range(5)]}, schema_overrides={"bbox": BOX})

    def run(ids, feats):
        return pl.DataFrame({"data_row": [gt["data_row"][i] for i in ids], "feature": feats,
                             "bbox": [_box(i) for i in ids], "confidence": [0.9] * len(ids)},
                            schema_overrides={"bbox": BOX})

    pd_a = run([0, 1], ["cat", "cat"])
    pd_b = run([0, 2, 4], ["cat", "dog", "dog"])
    cmp = pm.compare(gt, {"A": pd_a, "B": pd_b}, n_resamples=10, rows="ground_truth",
                     confidence_thresholds=[0.5], iou_thresholds=[0.5])
    f = cmp.flips(0.5, 0.5)
    assert f.select("gt_id", "found_A", "found_B", pl.col("category").cast(pl.String)).rows() == [
        (0, True, True, "both"), (1, True, False, "A only"), (2, False, True, "B only"),
        (3, False, False, "neither"), (4, False, False, "neither")]
    counts = cmp.flip_counts(0.5, 0.5)
    assert counts.filter(pl.col("feature").is_null()).row(0) == (None, 1, 1, 1, 2, 5)
    assert counts.filter(pl.col("feature") == "cat").row(0) == ("cat", 1, 1, 0, 1, 3)
    # the flips are the recall delta: (B only - A only) / n_gt
    rec = cmp.at(0.5, 0.5).filter(pl.col("metric") == "recall")["delta"][0]
    assert rec == pytest.approx(0.0)
    rows = cmp.data_rows(0.5, 0.5)
    assert rows.select("data_row", "tp_A", "tp_B").sort("data_row").rows() == [
        ("r1", 2, 2), ("r2", 0, 0)]


def test_flips_sum_to_ground_truth_count():
    gt, pd_a, pd_b = _runs(n_images=30)
    cmp = pm.compare(gt, {"A": pd_a, "B": pd_b}, n_resamples=10, rows="ground_truth", **GRID)
    for c, t in [(0.5, 0.5), (0.0, 0.3), (0.8, 0.7)]:
        f = cmp.flip_counts(c, t)
        assert f["total"][-1] == gt.height
        # found-by counts are the cube's tp: found by A = both + A only
        tp = cmp.at(c, t).filter(pl.col("metric") == "tp")
        assert f["both"][-1] + f["A only"][-1] == tp["baseline_value"][0]
        assert f["both"][-1] + f["B only"][-1] == tp["value"][0]


def _resampled(frame: pl.DataFrame, rows: list[str], idx: np.ndarray) -> pl.DataFrame:
    """The data set made of data rows ``rows[idx]``, each copy under its own key."""
    parts = [frame.filter(pl.col("data_row") == rows[i]).with_columns(
        data_row=pl.lit(f"{k:04d}_{rows[i]}")) for k, i in enumerate(idx)]
    return pl.concat(parts)


def test_bootstrap_equals_explicit_resampling():
    gt, pd_a, pd_b = _runs(n_images=12, seed=5)
    kw = dict(rows="ground_truth", confidence_thresholds=[0.3, 0.6], iou_thresholds=[0.5, 0.75])
    B, seed = 40, 11
    cmp = pm.compare(gt, {"A": pd_a, "B": pd_b}, n_resamples=B, seed=seed, level=0.9, **kw)
    rows = gt["data_row"].unique().sort().to_list()
    rng = np.random.default_rng(seed)
    keys = ["average", "feature", "confidence_threshold", "iou_threshold"]
    deltas = []
    for _ in range(B):
        idx = rng.integers(0, len(rows), size=len(rows))
        g = _resampled(gt, rows, idx)
        la = _long(pm.evaluate(g, _resampled(pd_a, rows, idx), **kw))
        lb = _long(pm.evaluate(g, _resampled(pd_b, rows, idx), **kw))
        j = la.join(lb, on=keys, how="full", coalesce=True, nulls_equal=True, suffix="_b")
        deltas.append(j.select(*keys, *[(pl.col(f"{m}_b") - pl.col(m)).alias(m) for m in METRICS]))
    every = pl.concat(deltas).filter(pl.col("average").is_null() | (pl.col("average") == "micro"))
    checked = 0
    for row in cmp.deltas.filter(pl.col("average").is_null() | (pl.col("average") == "micro")
                                 ).iter_rows(named=True):
        sel = every.filter(*[pl.col(k).eq_missing(row[k]) for k in keys])[row["metric"]]
        # a feature absent from a resample has no cube row: its counts are 0, ratios undefined
        vals = np.array(sel.fill_null(np.nan).to_list() + [0.0 if row["metric"] in
                        ("tp", "fp", "fn") else np.nan] * (B - sel.len()), dtype=float)
        n = int((~np.isnan(vals)).sum())
        assert row["resamples"] == n
        if n == 0:
            continue
        lo, hi = np.nanquantile(vals, 0.05), np.nanquantile(vals, 0.95)
        p = min(1.0, 2 * (min((vals <= 0).sum(), (vals >= 0).sum()) + 1) / (n + 1))
        if row["metric"] == "iou":  # IoU sums ride in float32 products: not bit-equal
            assert row["ci_low"] == pytest.approx(lo, abs=1e-6)
            assert row["ci_high"] == pytest.approx(hi, abs=1e-6)
        else:
            assert (row["ci_low"], row["ci_high"], row["p_value"]) == (lo, hi, p), row
        checked += 1
    assert checked > 100


def test_quantiles_match_numpy():
    rng = np.random.default_rng(0)
    d = rng.normal(size=(57, 30)).round(1)
    d[rng.random(d.shape) < 0.2] = np.nan
    d[:, 3] = np.nan
    d[1:, 4] = np.nan
    for q in (0.025, 0.5, 0.975, 0.05):
        got, n = bs.quantiles(d, q)
        with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
            want = np.nanquantile(d, q, axis=0)
        assert np.array_equal(got, want, equal_nan=True)
        assert n.tolist() == (~np.isnan(d)).sum(0).tolist()
    full = rng.normal(size=(1000, 40)).round(2)  # no NaN: the partition path
    for q in (0.025, 0.975, 0.3):
        assert np.array_equal(bs.quantiles(full, q)[0], np.quantile(full, q, axis=0))


@pytest.mark.slow
def test_interval_coverage_simulation():
    """200 data sets with a known recall difference p_B - p_A = 0.1: the 95 % intervals of the
    micro recall delta cover it in 93-97 % of them (fixed seeds: deterministic; the binomial
    standard error of a coverage estimate over 200 data sets is 1.5 points, so this checks the
    interval is calibrated to about +-1.3 SE; benchmarks/compare.py runs 1,000)."""
    hits = _coverage(200, seed=0)
    assert 0.93 <= hits <= 0.97, hits


def _coverage(n_sims: int, seed: int, n_rows: int = 60, per_row: int = 3,
              p_a: float = 0.6, p_b: float = 0.7, n_resamples: int = 400) -> float:
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n_rows), per_row)
    boxes = [_box(i % per_row) for i in range(rows.size)]
    gt = pl.DataFrame({"data_row": rows, "feature": ["x"] * rows.size, "bbox": boxes},
                      schema_overrides={"bbox": BOX})
    cover = 0
    for k in range(n_sims):
        runs = {name: gt.filter(pl.Series(rng.random(rows.size) < p)).with_columns(
            confidence=pl.lit(0.9)) for name, p in (("A", p_a), ("B", p_b))}
        cmp = pm.compare(gt, runs, n_resamples=n_resamples, seed=seed * 100_000 + k,
                         rows="ground_truth", confidence_thresholds=[0.5], iou_thresholds=[0.5])
        r = cmp.at(0.5, 0.5).filter(pl.col("metric") == "recall").row(0, named=True)
        cover += r["ci_low"] <= p_b - p_a <= r["ci_high"]
    return cover / n_sims


def test_coco_deltas_equal_two_coco_evaluations():
    gt, pd_a, pd_b = _runs(n_images=20, seed=7)
    gt = gt.with_columns(pl.col("data_row").str.slice(4).cast(pl.Int64))
    pd_a, pd_b = (p.with_columns(pl.col("data_row").str.slice(4).cast(pl.Int64)) for p in (pd_a, pd_b))
    kw = dict(profile="coco", confidence_thresholds=[0.0, 0.5])
    cmp = pm.compare(gt, {"A": pd_a, "B": pd_b}, n_resamples=20, **kw)
    ev_a, ev_b = pm.evaluate(gt, pd_a, **kw), pm.evaluate(gt, pd_b, **kw)
    assert cmp.coco["delta"].to_list() == (ev_b.coco.stats - ev_a.coco.stats).tolist()
    keys = ["average", "feature", "confidence_threshold", "iou_threshold"]
    want = _long(ev_a).join(_long(ev_b), on=keys, how="full", coalesce=True, nulls_equal=True,
                            suffix="_b").sort(keys, nulls_last=True)
    got = cmp.deltas.pivot(on="metric", index=keys, values="delta").sort(keys, nulls_last=True)
    for m in ["tp", "fp", "fn", "precision", "recall", "f1"]:
        assert got[m].to_list() == (want[f"{m}_b"] - want[m]).to_list(), m
    assert "AP" in repr(cmp)


@pytest.mark.parametrize("profile", ["labelbox", "coco"])
def test_unit_weights_reproduce_the_cube(profile):
    """The count arrays the bootstrap re-sums give the evaluation's cube with weights 1."""
    from polars_metrics.compare.counts import raw_counts, shared_index

    gt, pd_a, _ = _runs(n_images=15, seed=2)
    if profile == "coco":
        gt, pd_a = (f.with_columns(pl.col("data_row").str.slice(4).cast(pl.Int64)) for f in (gt, pd_a))
    ev = pm.evaluate(gt, pd_a, profile=profile, confidence_thresholds=[0.0, 0.5],
                     iou_thresholds=[0.5, 0.75])
    universe, groups, (rc,) = shared_index([raw_counts(ev)], list(ev.keys), [])
    w = bs.Weights(np.ones((universe.height, 1), np.float32))
    for g, feature in enumerate(groups["feature"]):
        tot = bs.group_totals(w, rc, g)
        v = bs.metric_values(tot, 2)
        cube = ev.cube.filter(pl.col("feature") == feature).sort("confidence_threshold",
                                                                 "iou_threshold")
        for m in ("tp", "fp", "fn"):
            assert v[m][0].ravel().tolist() == cube[m].cast(pl.Float64).to_list(), (feature, m)
        if profile == "labelbox":
            want = cube["iou"].fill_null(np.nan).to_numpy()
            np.testing.assert_allclose(v["iou"][0].ravel(), want, rtol=1e-6)


def test_errors_are_clear():
    gt, pd_a, pd_b = _runs(n_images=5)
    with pytest.raises(pm.PolarsMetricsError, match="at least two runs"):
        pm.compare(gt, {"A": pd_a})
    with pytest.raises(pm.PolarsMetricsError, match="baseline 'C'"):
        pm.compare(gt, {"A": pd_a, "B": pd_b}, baseline="C")
    cmp = pm.compare(gt, {"A": pd_a, "B": pd_b, "C": pd_b}, baseline="B", n_resamples=5, **GRID)
    assert set(cmp.deltas["run"].unique()) == {"A", "C"}
    with pytest.raises(pm.PolarsMetricsError, match="not compared here"):
        cmp.flips(run="B")


@pytest.mark.slow
def test_readme_section_output_is_current(tmp_path):
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    text = (root / "README.md").read_text().split("## Is run B better?", 1)[1]
    code, expected = re.search(r"```python\n(.*?)```\s*```\n(.*?)```", text, flags=re.S).groups()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=600, env={**__import__("os").environ,
                                                         "PYTHONPATH": str(root)})
    assert res.returncode == 0, res.stderr
    assert res.stdout == expected


def _coco_data(n_images=15, seed=4):
    gt, pd_a, pd_b = _runs(n_images=n_images, seed=seed)
    as_int = pl.col("data_row").str.slice(4).cast(pl.Int64)
    # distinct scores: with ties pycocotools orders copies of tied detections by image id
    pd_a, pd_b = (p.with_columns(as_int, confidence=pl.col("confidence") * 0.999
                                 + pl.int_range(pl.len()) * 1e-7) for p in (pd_a, pd_b))
    return gt.with_columns(as_int), pd_a, pd_b


def test_coco_ap_unit_weights_reproduce_the_stats():
    from polars_metrics.compare.coco_ap import bootstrap_stats

    gt, pd_a, _ = _coco_data()
    ev = pm.evaluate(gt, pd_a, profile="coco")
    got = bootstrap_stats(ev, np.ones((1, ev.coco.image_ids.size)))[0]
    np.testing.assert_allclose(got, ev.coco.stats[[0, 1, 2, 8]], rtol=0, atol=1e-12)


def test_coco_ap_bootstrap_equals_explicit_resampling():
    """Each resample's AP, AP50, AP75, AR100 equal pm.evaluate's COCO stats on the data set
    made of the drawn images (copies under new image ids)."""
    from polars_metrics.compare.coco_ap import bootstrap_stats

    gt, pd_a, _ = _coco_data(n_images=10, seed=6)
    ev = pm.evaluate(gt, pd_a, profile="coco")
    images = ev.coco.image_ids
    rng = np.random.default_rng(3)
    for _ in range(4):
        idx = rng.integers(0, images.size, images.size)
        w = np.bincount(idx, minlength=images.size)[None, :].astype(float)
        parts = [(f.filter(pl.col("data_row") == images[i])
                  .with_columns(data_row=pl.lit(k * 1000 + int(images[i]))), k)
                 for k, i in enumerate(idx) for f in (gt,)]
        g = pl.concat([p for p, _ in parts])
        d = pl.concat([pd_a.filter(pl.col("data_row") == images[i])
                       .with_columns(data_row=pl.lit(k * 1000 + int(images[i])))
                       for k, i in enumerate(idx)])
        want = pm.evaluate(g, d, profile="coco").coco.stats[[0, 1, 2, 8]]
        np.testing.assert_allclose(bootstrap_stats(ev, w)[0], want, rtol=0, atol=1e-12)


def test_coco_self_comparison_ap_interval_is_zero():
    gt, pd_a, pd_b = _coco_data(n_images=12)
    cmp = pm.compare(gt, {"A": pd_a, "B": pd_a}, profile="coco", n_resamples=30)
    ap = cmp.coco.filter(pl.col("resamples") > 0)
    assert ap.height == 4
    assert (ap["ci_low"] == 0).all() and (ap["ci_high"] == 0).all() and (ap["delta"] == 0).all()
    cmp = pm.compare(gt, {"A": pd_a, "B": pd_b}, profile="coco", n_resamples=30, ap_resamples=0)
    assert cmp.coco["ci_low"].null_count() == 12


def test_by_slices_point_deltas_and_self_zero():
    gt, pd = pm.synthetic.detections(n_images=30, n_classes=3, seed=9)
    pd_b = pd.filter(pl.int_range(pl.len()) % 4 != 0)
    kw = dict(by="split", confidence_thresholds=[0.5], iou_thresholds=[0.5])
    cmp = pm.compare(gt, {"A": pd, "B": pd_b}, n_resamples=20, **kw)
    ev_a, ev_b = pm.evaluate(gt, pd, **kw), pm.evaluate(gt, pd_b, **kw)
    micro = cmp.micro.filter(pl.col("metric") == "tp").sort("split")
    want = (ev_b.overall.filter(pl.col("average") == "micro").sort("split")["tp"]
            - ev_a.overall.filter(pl.col("average") == "micro").sort("split")["tp"])
    assert micro["delta"].cast(pl.Int64).to_list() == want.to_list()
    assert micro["resamples"].to_list() == [20] * micro.height
    same = pm.compare(gt, {"A": pd, "B": pd}, n_resamples=20, **kw).deltas
    assert (same.filter(pl.col("resamples") > 0)["ci_high"] == 0).all()


def test_exact_product_falls_back_to_float64_when_float32_would_round():
    rng = np.random.default_rng(0)
    w = rng.integers(0, 3, size=(50, 7)).astype(np.float32)
    w[0, 0] = 2.0**22  # max(W) * column sum >= 2**24: float32 sums could round
    x = rng.integers(0, 5, size=(50, 3)).astype(np.float32)
    got = bs.exact_product(bs.Weights(w), np.arange(50), x)
    assert np.array_equal(got, w.astype(np.float64).T @ x.astype(np.float64))
    small = bs.Weights(w[:, 1:])
    assert np.array_equal(bs.exact_product(small, np.arange(50), x),
                          w[:, 1:].astype(np.float64).T @ x.astype(np.float64))
