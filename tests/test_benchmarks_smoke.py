"""Smoke test of the benchmark harness: generator and parity checks on tiny data, no timing.

If this breaks, `make bench` would either crash or — worse — compare the wrong numbers.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from benchmarks import parity, peers
from benchmarks.generate import (
    COORD_STEP,
    HEIGHT,
    SCORE_STEP,
    WIDTH,
    generate,
    isolated,
    write_coco,
    write_partitioned,
)

CELL = (0.5, 0.5)


@pytest.fixture(scope="module")
def tiny():
    return generate(20, seed=7)


@pytest.fixture(scope="module")
def iso():
    return isolated(20, seed=7)


def test_generator_is_seeded_and_well_formed(tiny):
    again = generate(20, seed=7)
    assert tiny.ground_truth.equals(again.ground_truth)
    assert tiny.predictions.equals(again.predictions)
    assert not tiny.predictions.equals(generate(20, seed=8).predictions)

    gt, pd = tiny.ground_truth, tiny.predictions
    assert gt.schema == pl.Schema(
        {
            "data_row": pl.Int64,
            "id": pl.Int64,
            "feature": pl.String,
            "bbox": pl.Array(pl.Float64, 4),
        }
    )
    assert pd.schema == pl.Schema({**gt.schema, "confidence": pl.Float64})
    for frame in (gt, pd):
        b = frame["bbox"].to_numpy().reshape(-1, 4)
        assert (b[:, 0] >= 0).all() and (b[:, 2] <= WIDTH).all()
        assert (b[:, 1] >= 0).all() and (b[:, 3] <= HEIGHT).all()
        assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
        # the exactness the parity checks rely on: 1/64-pixel grid, float32-representable
        assert np.array_equal(b / COORD_STEP, np.round(b / COORD_STEP))
        assert np.array_equal(b.astype(np.float32).astype(np.float64), b)
        assert frame["id"].is_unique().all()
        assert frame["data_row"].is_sorted()
        assert frame["data_row"].min() >= 1 and frame["data_row"].max() <= 20
    conf = pd["confidence"].to_numpy()
    assert (conf > 0).all() and (conf <= 1).all()
    assert np.array_equal(conf / SCORE_STEP, np.round(conf / SCORE_STEP))


def test_generator_statistics_match_the_brief():
    # 5,000 images ≈ 35k gts and ≈ 471k predictions; 500 images keep the test fast
    stats = generate(500, seed=0).stats()
    assert stats["images"] == 500
    assert 6.6 < stats["gt_per_image"] < 7.4
    assert 90 < stats["pd_per_image"] < 98
    assert stats["classes_seen"] == 80


def test_isolated_fixture_is_one_to_one(iso):
    pairs = parity.pair_ious(iso.ground_truth, iso.predictions)
    assert pairs.height > 50  # there is something to match
    assert pairs.group_by("gt_id").len()["len"].max() == 1
    assert pairs.group_by("pd_id").len()["len"].max() == 1
    # some matched pairs carry different classes (label flips exercise off-diagonal cells)
    feats = pairs.join(iso.ground_truth.select(gt_id="id", g="feature"), on="gt_id").join(
        iso.predictions.select(pd_id="id", p="feature"), on="pd_id"
    )
    assert (feats["g"] != feats["p"]).sum() > 0


def test_pair_ious_and_fragile_rows_by_hand():
    box = pl.Array(pl.Float64, 4)
    gt = pl.DataFrame(
        {
            "data_row": [1, 2],
            "id": [1, 2],
            "feature": ["a", "a"],
            "bbox": [[0.0, 0, 10, 10], [0.0, 0, 10, 10]],
        },
        schema_overrides={"bbox": box},
    )
    pd = pl.DataFrame(
        {
            "data_row": [1, 2],
            "id": [1, 2],
            "feature": ["a", "a"],
            "bbox": [[0.0, 0, 10, 5], [0.0, 0, 10, 6]],
            "confidence": [0.9, 0.9],
        },
        schema_overrides={"bbox": box},
    )
    pairs = parity.pair_ious(gt, pd).sort("data_row")
    assert pairs["iou"].to_list() == [0.5, 0.6]
    # IoU exactly at the threshold: `>` and `>=` disagree → that row is left out
    assert parity.fragile_rows(pairs, [0.5])["near_threshold"].tolist() == [1]
    assert parity.fragile_rows(pairs, [0.3])["near_threshold"].tolist() == []


def test_peers_agree_on_isolated_fixture_and_checker_catches_a_change(iso):
    """Engine-independent: on the one-to-one fixture supervision and valor-lite must give the
    same confusion matrix, and the checker must flag a single changed cell."""
    classes = iso.classes
    rows = parity.counted_rows(iso.ground_truth, iso.predictions)
    g, p = parity.keep_rows(iso.ground_truth, iso.predictions, rows)
    drop = parity.fragile_rows(parity.pair_ious(g, p), [CELL[1]])["near_threshold"]
    g, p = parity.keep_rows(g, p, np.setdiff1d(rows, drop))
    targets, preds = peers.to_supervision(g, p, classes)
    sv = peers.supervision_confusion(targets, preds, classes, *CELL)
    ev = peers.valor_ingest(peers.to_valor(g, p))
    pr, cm = peers.valor_metrics(ev, [CELL[0]], [CELL[1]])
    v_counts, v_conf = peers.valor_arrays(pr, cm, classes, [CELL[0]], [CELL[1]])

    k = len(classes)
    assert sv.sum() > 0 and sv[:k, :k].trace() > 0
    assert sv[:k].sum() == g.height  # every ground truth lands in exactly one cell
    ok = parity.compare("valor-lite", "iso", sv, v_conf[0, 0])
    assert ok.ok and ok.compared == (k + 1) ** 2
    # valor's tp per class is the diagonal there too
    assert np.array_equal(v_counts[0, 0, :, 0], np.diag(sv)[:k])

    bad = sv.copy()
    bad[3, 5] += 1
    check = parity.compare("supervision", "perturbed", bad, v_conf[0, 0], [[*classes, "None"]] * 2)
    assert not check.ok and check.mismatched == 1
    assert "class_03, class_05" in check.mismatches[0]


def test_parity_checks_pass_on_tiny_data_and_fail_on_a_wrong_engine(tiny, iso):
    checks = parity.supervision_checks(
        tiny.ground_truth,
        tiny.predictions,
        iso.ground_truth,
        iso.predictions,
        tiny.classes,
        parity.engine,
    )
    checks += parity.valor_isolated_check(
        iso.ground_truth, iso.predictions, tiny.classes, parity.engine
    )
    assert [c.name for c in checks if not c.ok] == []
    assert all(c.compared > 0 for c in checks)

    def off_by_one(g, p, classes, cs, ts):  # a fast wrong answer: one match too many
        counts, conf = parity.engine(g, p, classes, cs, ts)
        counts, conf = counts.copy(), conf.copy()
        counts[..., 0, 0] += 1
        conf[..., 0, 0] += 1
        return counts, conf

    wrong = [
        parity.supervision_agnostic_check(tiny.ground_truth, tiny.predictions, off_by_one),
        parity.supervision_isolated_check(
            iso.ground_truth, iso.predictions, tiny.classes, off_by_one
        ),
        *parity.valor_isolated_check(iso.ground_truth, iso.predictions, tiny.classes, off_by_one),
    ]
    assert not any(c.ok for c in wrong)


def test_write_coco(tmp_path, tiny):
    gt_json, res_json = tmp_path / "gt.json", tmp_path / "res.json"
    write_coco(tiny.ground_truth, tiny.predictions, tiny.classes, gt_json, res_json, n_images=20)
    coco = json.loads(gt_json.read_text())
    res = json.loads(res_json.read_text())
    assert [im["id"] for im in coco["images"]] == list(range(1, 21))
    assert len(coco["categories"]) == 80 and coco["categories"][0] == {"id": 1, "name": "class_00"}
    assert len(coco["annotations"]) == tiny.ground_truth.height
    assert len(res) == tiny.predictions.height
    a = coco["annotations"][0]
    x0, y0, x1, y1 = tiny.ground_truth["bbox"][0].to_list()
    assert a["bbox"] == [x0, y0, x1 - x0, y1 - y0]
    assert a["area"] == (x1 - x0) * (y1 - y0) and a["iscrowd"] == 0
    assert {"image_id", "category_id", "bbox", "score"} == set(res[0])


def test_importing_a_benchmark_module_leaves_the_environment_alone():
    """numba refuses to compile once ``NUMBA_NUM_THREADS`` changes after its threads started, so
    a benchmark module imported by a test or by another benchmark must not set it (or anything
    else) at import; only its ``__main__`` run may. Checked in a fresh interpreter per module."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    modules = sorted(p.stem for p in (root / "benchmarks").glob("*.py") if p.stem != "__main__")
    assert "labelbox_sdk" in modules and "first_call" in modules
    # the libraries first: polars (its allocator's settings) and polars_metrics (OMP_WAIT_POLICY)
    # set their own variables at import, documented and harmless
    probe = ("import os, importlib, sys, polars, polars_metrics; before = dict(os.environ); "
             "importlib.import_module('benchmarks.' + sys.argv[1]); "
             "changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)); "
             "print(','.join(changed))")
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_NUM_THREADS", "POLARS_MAX_THREADS")}
    changed = {}
    for name in modules:
        out = subprocess.run([sys.executable, "-c", probe, name], cwd=root, env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, (name, out.stderr[-2000:])
        keys = [k for k in out.stdout.strip().split(",") if k]
        if keys:
            changed[name] = keys
    assert changed == {}


def _parts(directory):
    return {sub: pl.concat([pl.read_parquet(p) for p in sorted((directory / sub).glob("part-*.parquet"))])
            for sub in ("ground_truth", "predictions")}


def test_partitioned_writer_resumes_and_extends(tmp_path):
    """A partitioned dataset equals, frame for frame, one written in memory chunk by chunk
    (:func:`generate` per seed, keys shifted by hand here); an interrupted write resumes to the
    same bytes; a smaller dataset's parts, linked in first, become the larger one's first parts."""
    whole = write_partitioned(25, tmp_path / "whole", chunk=10)
    frames = _parts(whole)
    # the reference: each chunk generated on its own, data rows and ids shifted here
    expected = {"ground_truth": [], "predictions": []}
    next_id = {"ground_truth": 1, "predictions": 1}
    for k, start in enumerate(range(0, 25, 10)):
        ds = generate(min(10, 25 - start), seed=k)
        for sub, frame in (("ground_truth", ds.ground_truth), ("predictions", ds.predictions)):
            expected[sub].append(frame.with_columns(pl.col("data_row") + start,
                                                    pl.col("id") + (next_id[sub] - 1)))
            next_id[sub] += frame.height
    for sub in frames:
        assert frames[sub].equals(pl.concat(expected[sub]))
        assert frames[sub]["id"].n_unique() == frames[sub].height
    meta = json.loads((whole / "meta.json").read_text())
    assert meta["stats"] == {"ground_truths": frames["ground_truth"].height,
                             "predictions": frames["predictions"].height}

    # interrupted: the last part and meta.json missing, a stale temporary file left behind
    broken = write_partitioned(25, tmp_path / "broken", chunk=10)
    for sub in ("ground_truth", "predictions"):
        (broken / sub / "part-00002.parquet").rename(broken / sub / "part-00002.tmp")
    (broken / "meta.json").unlink()
    write_partitioned(25, broken, chunk=10)
    for sub in ("ground_truth", "predictions"):
        assert not list((broken / sub).glob("*.tmp"))
        for k in range(3):
            name = f"{sub}/part-{k:05d}.parquet"
            assert (broken / name).read_bytes() == (whole / name).read_bytes()

    # extended: a 20-image dataset's two parts linked into a new directory, then 25 written
    small = write_partitioned(20, tmp_path / "small", chunk=10)
    grown = tmp_path / "grown"
    for sub in ("ground_truth", "predictions"):
        (grown / sub).mkdir(parents=True)
        for k in range(2):
            (grown / sub / f"part-{k:05d}.parquet").hardlink_to(small / sub / f"part-{k:05d}.parquet")
    write_partitioned(25, grown, chunk=10)
    for sub, frame in _parts(grown).items():
        assert frame.equals(frames[sub])


def test_work_peak_sees_the_work_and_not_the_loading():
    """The harness's peak RSS of the timed work comes from VmHWM restarted at the work's start
    (no thread sampling beside the timed code): memory touched inside counts, the loading's
    larger transient before it does not, and the process peak keeps both."""
    import mmap

    from benchmarks.worker import WorkPeak, rss_bytes

    mb = 2**20

    def touched(n: int) -> mmap.mmap:
        # pages of their own, each written: resident whatever the allocator holds free already
        # (a numpy array may reuse free heap that a test before this one left in the process)
        m = mmap.mmap(-1, n)
        np.frombuffer(m, np.uint8)[:] = 1
        return m

    touched(96 * mb).close()  # a transient of the loading, freed before the work
    peak = WorkPeak()
    with peak.measuring():
        work = touched(48 * mb)
        inside = rss_bytes()
        work.close()
    assert inside >= peak.rss_loaded + 40 * mb
    # the kernel's counters behind VmHWM and VmRSS are batched per thread: equal to ~1 MB
    assert peak.peak >= inside - mb
    if peak.how == "VmHWM":  # restarted: the loading's 96 MB are not the work's
        assert peak.peak < peak.rss_loaded + 90 * mb
    assert peak.process_peak >= peak.rss_loaded + 90 * mb


def test_ratio_table_states_the_fresh_process_with_its_import():
    """(supervision import + first cell) / (ours import + first call), from the same records."""
    from benchmarks.__main__ import summarize

    row = {"images": 5000, "stats": {"ground_truths": 1, "predictions": 2},
           "parity_ok": {"supervision": True},
           "ours": {"warm_median_s": 0.1, "warm_s": [0.1], "first_call_s": 0.15, "import_s": 0.05,
                    "peak_rss": mb_(100)},
           "supervision": {"convert_s": 1.0, "cell_median_s": 0.3, "cell_s": [0.35, 0.3],
                           "import_s": 0.25, "peak_rss": mb_(200), "work_peak_rss": mb_(150)}}
    (f,) = summarize([row])
    assert f["speedup_vs_supervision_fresh_with_import"] == pytest.approx((0.25 + 0.35) / (0.05 + 0.15))
    assert f["speedup_vs_supervision_both_fresh"] == pytest.approx(0.35 / 0.15)
    assert f["speedup_vs_supervision"] == pytest.approx(0.3 / 0.1)
    del row["supervision"]["import_s"]  # an older record: no ratio rather than a wrong one
    assert summarize([row])[0]["speedup_vs_supervision_fresh_with_import"] is None


def mb_(n: int) -> int:
    return n * 2**20


def test_rounds_give_each_ratio_as_median_and_range():
    """--rounds: every ratio per round from that round's pair of processes, then median (min-max)."""
    from benchmarks.__main__ import round_ratios, spread_table

    rounds = [dict(ours_import_s=0.1, ours_first_call_s=0.2, ours_warm_s=0.1, sv_import_s=0.3,
                   sv_first_cell_s=0.6, sv_cell_s=0.5),
              dict(ours_import_s=0.1, ours_first_call_s=0.1, ours_warm_s=0.1, sv_import_s=0.3,
                   sv_first_cell_s=0.6, sv_cell_s=0.4),
              dict(ours_import_s=0.05, ours_first_call_s=0.15, ours_warm_s=0.2, sv_import_s=0.2,
                   sv_first_cell_s=0.4, sv_cell_s=0.4)]
    r = round_ratios(rounds)
    assert r["warm"] == pytest.approx([5.0, 4.0, 2.0])
    assert r["ours fresh"] == pytest.approx([2.5, 4.0, 0.4 / 0.15])
    assert r["both fresh"] == pytest.approx([3.0, 6.0, 0.4 / 0.15])
    assert r["with import"] == pytest.approx([3.0, 4.5, 3.0])
    table = spread_table([{"images": 5000, "rounds": rounds}, {"images": 20, "rounds": rounds[:1]}])
    (line,) = [x for x in table.splitlines() if x.startswith("| 5,000")]
    assert "| 3 | 4.00x (2.00-5.00) | 2.67x (2.50-4.00) | 3.00x (2.67-6.00) | 3.00x (3.00-4.50) |" in line
    assert "| 20 |" not in table  # one round: no spread to give


@pytest.mark.parametrize(("argv", "says"), [
    (["--rounds", "0"], "at least 1"),
    (["--rounds", "3", "--peers", "valor"], "add supervision"),
])
def test_rounds_are_refused_where_they_could_not_be_honoured(argv, says):
    """--rounds below 1, or without supervision to pair with, stops before any measuring."""
    from benchmarks.__main__ import main

    with pytest.raises(SystemExit, match=says):
        main(["--sizes", "10", *argv])
