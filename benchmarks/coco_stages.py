"""Per-stage timings of ``pm.evaluate(profile="coco")`` (``ev.timings``), the lazily built
matches / false-positive tables, and ``pm.evaluate_coco``; one JSON line.

    python benchmarks/coco_stages.py DATA_DIR REPEATS

Run with ``PYTHONPATH`` pointing at another checkout to compare before / after in one session.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time

import polars_metrics as pm
from polars_metrics.io.coco import read_coco


def main(data: str, reps: int) -> None:
    gt, pd = read_coco(f"{data}/coco_gt.json", f"{data}/coco_results.json")
    pm.evaluate(gt, pd, profile="coco")  # warm-up (numba cache)
    runs = []
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        ev = pm.evaluate(gt, pd, profile="coco")
        _ = (ev.coco_summary, ev.cube, ev.confusion, ev.data_rows)
        tot, cpu = time.perf_counter() - t, time.process_time() - c
        t = time.perf_counter()
        _ = (ev.matches, ev.tables.false_positives)
        lazy = time.perf_counter() - t
        stages = dict(ev.timings)
        ev = None  # its tables freed before the next timing
        t = time.perf_counter()
        pm.evaluate_coco(gt, pd).format_summary()
        core = time.perf_counter() - t
        runs.append(dict(stages, total=tot, total_cpu=cpu, matches_and_fp_tables=lazy,
                         evaluate_coco=core))
    print(json.dumps({
        "pkg": pm.__file__, "loadavg": os.getloadavg()[0],
        "median": {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]},
        "min": {k: round(min(r[k] for r in runs), 3) for k in runs[0]},
    }))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
