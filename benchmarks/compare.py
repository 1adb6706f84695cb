"""``pm.compare`` at scale, its interval coverage, and hotcoco's bootstrap compare on the same data.

    python -m benchmarks.compare --images 10000 --resamples 1000     # timing + peak RSS
    python -m benchmarks.compare --coverage 1000                     # coverage simulation
    python -m benchmarks --sizes 10000 --compare-sizes 10000         # inside the ladder run

Run A is the benchmark ladder's predictions (``benchmarks/generate.py``: ~7 ground truths and
~94 predictions per image, 80 classes); run B drops 10 % of them and jitters the confidences
(seeded). The timed child evaluates both runs once (profile ``labelbox``, the default grid:
11 confidence x 11 IoU thresholds) and bootstraps every metric at every cell, per feature,
micro and macro; peak RSS is the child's ``ru_maxrss``. hotcoco (``pip install hotcoco``) runs
its ``compare(eval_a, eval_b, n_bootstrap=...)`` — COCO summary-metric deltas with bootstrap
intervals over images — on the same data written as COCO JSON, in its own child: a different
quantity (AP, not the cube), so the times sit side by side, not as a ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_b(pd, seed: int = 1):
    """Run B: 90 % of run A's predictions, confidences jittered by N(0, 0.05), clipped."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    keep = rng.random(pd.height) < 0.9
    conf = np.clip(pd["confidence"].to_numpy() + rng.normal(0, 0.05, pd.height), 0.0, 1.0)
    conf = np.round(conf * 2**20) / 2**20  # the generator's score step: exact in float32
    return pd.with_columns(confidence=pl.Series(conf)).filter(pl.Series(keep))


def _child_ours(data_dir: str, resamples: int) -> dict:
    import polars_metrics as pm
    from benchmarks.generate import read_parquet

    gt, pd_a = read_parquet(Path(data_dir))
    pd_b = run_b(pd_a)
    pm.compare(gt.head(2000), {"A": pd_a.head(2000), "B": pd_b.head(2000)}, n_resamples=5)
    t0, c0 = time.perf_counter(), time.process_time()
    ev_a, ev_b = pm.evaluate(gt, pd_a), pm.evaluate(gt, pd_b)
    t1, c1 = time.perf_counter(), time.process_time()
    from polars_metrics.compare import comparison_of

    cmp = comparison_of({"A": ev_a, "B": ev_b}, baseline="A", level=0.95, n_resamples=resamples,
                        seed=0)
    t2, c2 = time.perf_counter(), time.process_time()
    micro = cmp.at(0.5, 0.5).select("metric", "delta", "ci_low", "ci_high", "p_value")
    return {"images": gt["data_row"].n_unique(), "resamples": resamples,
            "evaluate_both_s": round(t1 - t0, 3), "bootstrap_s": round(t2 - t1, 3),
            "total_s": round(t2 - t0, 3), "evaluate_both_cpu_s": round(c1 - c0, 3),
            "bootstrap_cpu_s": round(c2 - c1, 3), "deltas_rows": cmp.deltas.height,
            "features": len(ev_a.features),
            "cells": len(ev_a.confidence_thresholds) * len(ev_a.iou_thresholds),
            "micro_at_0.5_0.5": micro.rows(),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def _child_coco(data_dir: str, resamples: int) -> dict:
    """profile="coco": the cube bootstrap with ``resamples`` and AP / AR re-accumulated for
    ``resamples`` too (pass fewer with --resamples for the AP figure)."""
    import polars as pl

    import polars_metrics as pm
    from benchmarks.generate import read_parquet
    from polars_metrics.compare import comparison_of

    gt, pd_a = read_parquet(Path(data_dir))
    if gt.schema["data_row"] == pl.String:  # COCO image ids are integers
        as_int = pl.col("data_row").str.slice(4).cast(pl.Int64)
        gt, pd_a = gt.with_columns(as_int), pd_a.with_columns(as_int)
    pd_b = run_b(pd_a)
    t0 = time.perf_counter()
    ev_a, ev_b = (pm.evaluate(gt, p, profile="coco") for p in (pd_a, pd_b))
    t1, c1 = time.perf_counter(), time.process_time()
    cmp0 = comparison_of({"A": ev_a, "B": ev_b}, baseline="A", level=0.95,
                         n_resamples=resamples, seed=0, ap_resamples=0)
    t2, c2 = time.perf_counter(), time.process_time()
    cmp = comparison_of({"A": ev_a, "B": ev_b}, baseline="A", level=0.95,
                        n_resamples=resamples, seed=0)
    t3, c3 = time.perf_counter(), time.process_time()
    ap = cmp.coco.row(0, named=True)
    return {"images": gt["data_row"].n_unique(), "resamples": resamples,
            "evaluate_both_s": round(t1 - t0, 3), "cube_bootstrap_s": round(t2 - t1, 3),
            "cube_and_ap_bootstrap_s": round(t3 - t2, 3),
            "ap_bootstrap_s": round((t3 - t2) - (t2 - t1), 3),
            "cube_bootstrap_cpu_s": round(c2 - c1, 3),
            "ap_bootstrap_cpu_s": round((c3 - c2) - (c2 - c1), 3),
            "ap": [ap["baseline_value"], ap["value"], ap["delta"], ap["ci_low"], ap["ci_high"]],
            "cube_rows": cmp0.deltas.height,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def _child_hotcoco(data_dir: str, resamples: int) -> dict:
    import hotcoco

    from benchmarks.generate import class_names, read_parquet, write_coco

    d = Path(data_dir)
    gt, pd_a = read_parquet(d)
    pd_b = run_b(pd_a)
    n = gt["data_row"].n_unique()
    paths = {}
    for name, pd in (("A", pd_a), ("B", pd_b)):
        g, r = d / "compare_gt.json", d / f"compare_results_{name}.json"
        write_coco(gt, pd, class_names(80), g, r, n_images=n)
        paths[name] = (g, r)
    t0 = time.perf_counter()
    evals = []
    for name in ("A", "B"):
        g, r = paths[name]
        coco_gt = hotcoco.COCO(str(g))
        ev = hotcoco.COCOeval(coco_gt, coco_gt.loadRes(str(r)), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        evals.append(ev)
    t1 = time.perf_counter()
    out = hotcoco.compare(evals[0], evals[1], n_bootstrap=resamples, seed=0, confidence=0.95)
    t2 = time.perf_counter()
    ci = out.get("ci") or {}
    return {"images": n, "resamples": resamples, "evaluate_both_s": round(t1 - t0, 3),
            "bootstrap_s": round(t2 - t1, 3), "total_s": round(t2 - t0, 3),
            "ap_delta": out["deltas"].get("AP"), "ap_ci": str(ci.get("AP"))[:200],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def _spawn(task: str, data_dir: Path, resamples: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.compare", "--child", task, "--data", str(data_dir),
           "--resamples", str(resamples)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=dict(os.environ))
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_compare_benchmark(n_images: int, resamples: int = 1000, *, peers: bool = True,
                          coco_resamples: int = 0) -> dict:
    """Time ``pm.compare`` (and hotcoco's compare when it installs) on the ladder's data."""
    from benchmarks.generate import ensure_dataset

    data_dir = ensure_dataset(n_images)
    out = {"loadavg_before": os.getloadavg()[0], "ours": _spawn("ours", data_dir, resamples)}
    if coco_resamples:
        out["ours_coco"] = _spawn("coco", data_dir, coco_resamples)
    if peers:
        try:
            import hotcoco  # noqa: F401

            out["hotcoco"] = _spawn("hotcoco", data_dir, resamples)
        except ImportError:
            out["hotcoco"] = {"skipped": "hotcoco is not installed (pip install hotcoco)"}
    out["loadavg_after"] = os.getloadavg()[0]
    return out


def coverage(n_sims: int, seed: int = 1) -> float:
    """Share of ``n_sims`` simulated data sets whose 95 % interval of the micro recall delta
    covers the true difference (tests/test_compare.py's generator: 60 rows x 3 ground truths,
    A detects each with p = 0.6, B with 0.7, independently)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_compare import _coverage

    return _coverage(n_sims, seed=seed)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__)
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--coverage", type=int, default=0, help="simulated data sets (0: skip)")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--coco", type=int, default=0,
                    help="also time profile='coco' with this many resamples (AP included)")
    ap.add_argument("--child", choices=["ours", "coco", "hotcoco"], help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        fn = {"ours": _child_ours, "coco": _child_coco, "hotcoco": _child_hotcoco}[args.child]
        print(json.dumps(fn(args.data, args.resamples)))
        return 0
    if args.coverage:
        t0 = time.perf_counter()
        cov = coverage(args.coverage)
        print(json.dumps({"coverage": cov, "simulations": args.coverage,
                          "seconds": round(time.perf_counter() - t0, 1)}))
        return 0
    print(json.dumps(run_compare_benchmark(args.images, args.resamples, peers=not args.no_peers,
                                           coco_resamples=args.coco), indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
