"""Streamed evaluation at scale: wall time and peak RSS, streamed vs in memory.

    python -m benchmarks.stream --images 1000000            # streamed (local)
    python -m benchmarks.stream --images 200000 --in-memory # the in-memory path, same data
    python -m benchmarks.stream --images 200000 --engine ray
    python -m benchmarks.stream --images 20000 --profile coco [--in-memory]
    python -m benchmarks.stream --rss-ladder 5000,20000,100000 --peer-sizes 5000,20000

With ``--profile coco`` the line also carries the 12 stats and a hash of the precision / recall
/ scores arrays (identical streamed and in memory) and the record bytes per detection.

The dataset is written once by :func:`benchmarks.generate.write_partitioned` (50k images per
file, memory bounded) under ``benchmarks/data/stream/<images>``; each measurement runs in a
fresh subprocess whose peak RSS and CPU seconds are read from ``getrusage(RUSAGE_CHILDREN)``
(a Ray run's workers are not children of it: their CPU is not counted); the load average
before and after is printed (the machine is shared).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.generate import DATA_DIR, write_partitioned


def _measure(args: argparse.Namespace) -> None:
    """The child: one evaluation, then a JSON line with its numbers."""
    import polars as pl

    import polars_metrics as pm

    root = Path(args.data)
    gt, pd = str(root / "ground_truth"), str(root / "predictions")
    if (root / "ground_truth.parquet").exists():  # a ladder size: one file per table
        gt, pd = str(root / "ground_truth.parquet"), str(root / "predictions.parquet")
    t0 = time.perf_counter()
    if args.in_memory:
        ev = pm.evaluate(pl.read_parquet(gt), pl.read_parquet(pd), profile=args.profile)
        ev.data_rows.write_parquet(Path(args.out) / "data_rows.parquet")
        n_rows = ev.data_rows.height
    else:
        kwargs = {"memory_limit": args.memory_limit} if args.memory_limit else {}
        if args.batches:
            kwargs = {"batches": args.batches}
        ev = pm.evaluate(gt, pd, profile=args.profile, out=args.out, engine=args.engine,
                         progress=args.progress, **kwargs)
        n_rows = ev.lazy("data_rows").select(pl.len()).collect().item()
    seconds = time.perf_counter() - t0
    line = {"seconds": round(seconds, 2), "data_rows_rows": n_rows,
            "tp_micro_05": ev.summary().row(-1, named=True)["tp"],
            "timings": {k: round(v, 2) for k, v in ev.timings.items()},
            "vm_hwm_mb": _vm_hwm_mb()}
    if args.profile == "coco":
        line.update(_coco_numbers(ev))
    print(json.dumps(line))


def _vm_hwm_mb() -> float:
    """This process's own peak RSS (``ru_maxrss`` of a child can carry its parent's)."""
    with open("/proc/self/status") as f:
        return round(int(next(x for x in f if x.startswith("VmHWM:")).split()[1]) / 1024)


def rss_ladder(sizes: list[int], peers: list[str], peer_sizes: list[int]) -> list[dict]:
    """Peak RSS at each ladder size (``benchmarks/data/<n>/``, one Parquet file per table):
    ours in memory and streamed (a fresh process each), and the COCO peers on the same data
    written as COCO JSON (``benchmarks.coco``'s child: load + evaluate + accumulate +
    summarize). One JSON line per measurement."""
    import tempfile

    from benchmarks import coco as coco_bench
    from benchmarks.generate import ensure_dataset, read_parquet, write_coco

    rows = []
    for n in sizes:
        data = ensure_dataset(n)
        for in_memory in (True, False):
            out = Path(tempfile.mkdtemp(prefix=f"pm-ladder-{n}-"))
            cmd = [sys.executable, "-m", "benchmarks.stream", "--child", "--data", str(data),
                   "--out", str(out), "--profile", "labelbox", "--engine", "local"]
            load = os.getloadavg()[0]
            done = subprocess.run(cmd + ["--in-memory"] * in_memory, capture_output=True,
                                  text=True)
            shutil.rmtree(out, ignore_errors=True)
            if done.returncode:
                print(done.stderr[-2000:], file=sys.stderr)
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append({"images": n, "tool": "polars_metrics",
                         "mode": "in memory" if in_memory else "streamed",
                         "peak_rss_mb": r["vm_hwm_mb"], "seconds": r["seconds"],
                         "load": [round(load, 1), round(os.getloadavg()[0], 1)]})
            print(json.dumps(rows[-1]), flush=True)
        if n not in peer_sizes or not peers:
            continue
        gt_json, res_json = data / "coco_gt.json", data / "coco_results.json"
        if not (gt_json.exists() and res_json.exists()):
            gt, pd = read_parquet(data)
            from benchmarks.generate import class_names
            write_coco(gt, pd, class_names(80), gt_json, res_json, n)
        for lib in peers:
            load = os.getloadavg()[0]
            try:
                r = coco_bench._run_child(lib, gt_json, res_json, "bbox", 1, warmup=False,
                                          timeout=900)
            except Exception as exc:  # noqa: BLE001 - report the peer's failure, go on
                rows.append({"images": n, "tool": lib, "error": str(exc)[-300:]})
            else:
                rows.append({"images": n, "tool": lib, "mode": "COCO JSON",
                             "peak_rss_mb": round(r["peak_rss_mb"]),
                             "seconds": round(r["load_s"] + r["core_s"][0], 1),
                             "load": [round(load, 1), round(os.getloadavg()[0], 1)]})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def _coco_numbers(ev) -> dict:
    """The COCO stats, a hash of the full arrays (bit-identical runs hash alike), the record
    bytes per detection of a streamed run."""
    import hashlib

    from polars_metrics.coco.partial import bytes_per_detection

    h = hashlib.blake2b(digest_size=8)
    for name in ("precision", "recall", "scores"):
        h.update(getattr(ev.coco, name).tobytes())
    return {"coco_stats": [round(float(x), 6) for x in ev.coco.stats],
            "coco_arrays_hash": h.hexdigest(),
            "record_bytes_per_detection": bytes_per_detection(ev.coco.params)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.stream")
    p.add_argument("--images", type=int, default=200_000)
    p.add_argument("--profile", default="labelbox")
    p.add_argument("--engine", default="local", choices=["local", "ray"])
    p.add_argument("--memory-limit", default=None)
    p.add_argument("--batches", type=int, default=None)
    p.add_argument("--in-memory", action="store_true")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--root", default=str(DATA_DIR / "stream"))
    p.add_argument("--rss-ladder", default=None, help="sizes, e.g. 5000,20000,100000: peak RSS "
                   "in memory vs streamed (and the COCO peers at --peer-sizes)")
    p.add_argument("--peers", default="pycocotools,faster-coco-eval,hotcoco")
    p.add_argument("--peer-sizes", default="5000,20000")
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _measure(args)
        return 0
    if args.rss_ladder:
        rss_ladder([int(x) for x in args.rss_ladder.split(",")],
                   [x for x in args.peers.split(",") if x],
                   [int(x) for x in args.peer_sizes.split(",") if x])
        return 0
    data = Path(args.root) / str(args.images)
    t0 = time.perf_counter()
    write_partitioned(args.images, data)
    gen_seconds = time.perf_counter() - t0
    gen_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = Path(args.root) / f"out-{args.images}-{'mem' if args.in_memory else args.engine}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cmd = [sys.executable, "-m", "benchmarks.stream", "--child", "--data", str(data),
           "--out", str(out), "--profile", args.profile, "--engine", args.engine]
    cmd += ["--in-memory"] * args.in_memory + ["--progress"] * args.progress
    cmd += ["--memory-limit", args.memory_limit] * bool(args.memory_limit)
    cmd += ["--batches", str(args.batches)] * bool(args.batches)
    load_before = os.getloadavg()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        print(done.stdout, done.stderr, file=sys.stderr)
        return done.returncode
    result = json.loads(done.stdout.strip().splitlines()[-1])
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    result.update(images=args.images, mode="in-memory" if args.in_memory else args.engine,
                  peak_rss_mb=round(child.ru_maxrss / 1024),
                  cpu_seconds={"user": round(child.ru_utime, 1), "system": round(child.ru_stime, 1)},
                  load_average={"before": [round(x, 1) for x in load_before],
                                "after": [round(x, 1) for x in os.getloadavg()]},
                  out_dir_mb=round(sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
                                   / 1e6),
                  generate_seconds=round(gen_seconds, 1), generate_peak_rss_mb=round(gen_rss),
                  dataset=json.loads((data / "meta.json").read_text())["stats"])
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
