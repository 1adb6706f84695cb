"""Benchmark runner: ``python -m benchmarks`` (or ``make bench``).

For every size of the ladder: generate (or reuse) the Parquet data, check parity with each
peer, then time ours (cold and warm) and the peers, each in its own subprocess, and write
``results.{md,csv,json}`` to ``--out``. Exits non-zero if any parity check failed; a peer whose
parity failed gets no speed ratio.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import importlib.metadata as md
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PEERS = ("supervision", "valor", "coco", "errors")
DEFAULT_SIZES = "500,1000,2000,5000,10000,20000,50000,100000"
TARGET_SIZE = 5_000
TARGET_VS_SUPERVISION = 2.0
TARGET_VS_VALOR = 30.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated image counts")
    ap.add_argument("--repeat", type=int, default=5, help="warm repetitions (median reported)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="fresh (ours, supervision) process pairs per size, in alternating order; "
                    "above 1 the ratios are also given as median (min-max) over the rounds: a "
                    "shared machine moves them by +-20%% within an hour, and a fresh process "
                    "gives one first call per round")
    ap.add_argument(
        "--peers",
        default="supervision,valor,coco,errors",
        help=f"comma-separated subset of {','.join(PEERS)} ('' for none)",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--valor-max-images",
        type=int,
        default=5_000,
        help="valor-lite's Python ingest is slow and superlinear; skip it above this",
    )
    ap.add_argument("--valor-repeat", type=int, default=1)
    ap.add_argument("--supervision-max-images", type=int, default=100_000)
    ap.add_argument("--coco-max-images", type=int, default=20_000,
                    help="pycocotools takes minutes per run above this")
    ap.add_argument("--errors-max-images", type=int, default=5_000,
                    help="TIDE error decomposition vs tidecv (pure Python, slow) and hotcoco")
    ap.add_argument(
        "--cold-sizes",
        default=str(TARGET_SIZE),
        help="sizes at which to also run the numba JIT fallback (warm, and cold with an empty cache)",
    )
    ap.add_argument(
        "--isolated-images",
        type=int,
        default=2_000,
        help="images of the one-to-one parity fixture (capped at the size)",
    )
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        help="before each timed worker, wait up to this many seconds for other processes to "
        "use < --busy-pct CPU (the busy level is recorded either way)",
    )
    ap.add_argument("--busy-pct", type=float, default=25.0)
    ap.add_argument("--first-call-images", type=int, default=TARGET_SIZE,
                    help="images for benchmarks/first_call.py (fresh process, empty numba "
                    "cache, every kind and profile; import time); 0 skips it")
    ap.add_argument(
        "--compare-sizes",
        default="10000",
        help="sizes at which pm.compare (run comparison, 1,000 resamples) is also timed "
        "(benchmarks/compare.py; '' for none)",
    )
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="re-render results.md/csv from --out/results.json without measuring",
    )
    return ap.parse_args(argv)


# --- environment ------------------------------------------------------------------------------


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def environment() -> dict[str, Any]:
    import psutil

    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
        "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS", "(unset: all cores)"),
        "POLARS_MAX_THREADS": os.environ.get("POLARS_MAX_THREADS", "(unset: all cores)"),
        "versions": {
            d: _version(d)
            for d in (
                "polars_metrics",
                "polars",
                "numpy",
                "numba",
                "llvmlite",
                "pyarrow",
                "supervision",
                "valor-lite",
                "pycocotools",
                "faster-coco-eval",
                "hotcoco",
                "vernier",
                "msgspec",
                "psutil",
            )
        },
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


# --- subprocess workers -----------------------------------------------------------------------


QUIET = {"wait_s": 0.0, "busy_pct": 25.0}


def background_cpu(wait_s: float, busy_pct: float) -> float:
    """CPU use (% of all cores) of everything else on the machine, sampled over 1 s; waits up
    to ``wait_s`` for it to drop below ``busy_pct`` — timings on a busy box are not evidence."""
    import psutil

    deadline = time.monotonic() + wait_s
    while True:
        busy = psutil.cpu_percent(interval=1.0)
        if busy < busy_pct or time.monotonic() >= deadline:
            if busy >= busy_pct:
                log(f"  WARNING: machine busy ({busy:.0f}% CPU used by other processes)")
            return busy
        time.sleep(4.0)


def run_worker(
    task: str, data_dir: Path, repeat: int, env: dict[str, str], scratch: Path
) -> dict[str, Any]:
    busy = background_cpu(QUIET["wait_s"], QUIET["busy_pct"])
    out = scratch / f"{task}-{data_dir.name}-{time.monotonic_ns()}.json"
    cmd = [sys.executable, "-m", "benchmarks.worker", task, str(data_dir), str(out), str(repeat)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {task} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result = json.loads(out.read_text())
    result["background_cpu_pct_before"] = busy
    result["loadavg_after"] = os.getloadavg()[0]
    npz = out.with_suffix(".npz")
    if npz.exists():
        with np.load(npz) as z:
            result["_arrays"] = {k: z[k] for k in z.files}
    return result


# --- one size ---------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def bench_size(
    n: int, args: argparse.Namespace, peers_on: set[str], cache_dir: Path, scratch: Path
) -> dict[str, Any]:
    from benchmarks import parity, peers
    from benchmarks.generate import class_names, ensure_dataset, isolated, read_parquet

    t0 = time.perf_counter()
    data_dir = ensure_dataset(n, seed=args.seed)
    gt, pd = read_parquet(data_dir)
    classes = class_names(80)
    meta = json.loads((data_dir / "meta.json").read_text())
    row: dict[str, Any] = {"images": n, "stats": meta["stats"], "checks": [], "skipped": []}
    log(
        f"{n:,} images: {gt.height:,} ground truths, {pd.height:,} predictions "
        f"(ready in {time.perf_counter() - t0:.1f}s)"
    )

    # ---- parity first (in this process) --------------------------------------------------
    grid = peers.DEFAULT_THRESHOLDS
    o_counts, o_conf = parity.engine(gt, pd, classes, grid, grid)
    row["ours_digest"] = _digest(o_counts, o_conf)
    iso = isolated(min(n, args.isolated_images), seed=args.seed)
    checks: list[parity.Check] = []
    if "supervision" in peers_on or "valor" in peers_on:
        # the one-to-one fixture and the one-class view; S2/V2 run on the timed output below
        if "supervision" in peers_on:
            checks.append(parity.supervision_agnostic_check(gt, pd, parity.engine))
            checks.append(
                parity.supervision_isolated_check(
                    iso.ground_truth, iso.predictions, classes, parity.engine
                )
            )
        if "valor" in peers_on:
            checks += parity.valor_isolated_check(
                iso.ground_truth, iso.predictions, classes, parity.engine
            )
    for c in checks:
        log("  " + c.line())

    # ---- timing (each in its own process) --------------------------------------------------
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    cold_sizes = {int(s) for s in args.cold_sizes.split(",") if s}
    jit_env = dict(env, POLARS_METRICS_JIT="1")  # the fallback without compiled kernels
    if n in cold_sizes:
        with tempfile.TemporaryDirectory(prefix="numba-cold-") as empty:
            cold = run_worker("ours", data_dir, 0, dict(jit_env, NUMBA_CACHE_DIR=empty), scratch)
        row["ours_cold_compile"] = _strip(cold)
        log(
            f"  ours, numba JIT fallback, empty cache: import {cold['import_s']:.2f}s + first call "
            f"{cold['first_call_s']:.2f}s"
        )
    if n in cold_sizes:
        jit = run_worker("ours", data_dir, args.repeat, jit_env, scratch)
        row["ours_jit"] = _strip(jit)
        log(
            f"  ours, numba JIT fallback, warm cache: warm median {jit['warm_median_s']:.3f}s, "
            f"peak RSS {jit['peak_rss'] / 2**20:.0f} MB"
        )
    warm = run_worker("ours", data_dir, args.repeat, env, scratch)
    if warm.get("kernels") != "ahead-of-time":
        log("  WARNING: the compiled kernels are not built (make kernels); ours runs on the JIT")
    row["ours"] = _strip(warm)
    log(
        f"  ours: import {warm['import_s']:.3f}s, first call in a fresh process "
        f"{warm['first_call_s']:.3f}s, warm median "
        f"{warm['warm_median_s']:.3f}s {_fmt_stages(warm['warm_stage_median_s'])}, "
        f"peak RSS {warm['peak_rss'] / 2**20:.0f} MB, with the previous result alive "
        f"{_mb(warm.get('peak_rss_previous_alive'))} MB; IoU floor {warm['iou_floor_s']:.3f}s "
        f"(warm / floor {warm['warm_median_s'] / warm['iou_floor_s']:.1f}×)"
    )
    checks.append(
        parity.Check(
            "ours",
            "timed run = checked run (digest)",
            1,
            int(warm["digest"] != row["ours_digest"]),
            []
            if warm["digest"] == row["ours_digest"]
            else [f"timed {warm['digest']} != parity {row['ours_digest']}"],
        )
    )

    if "supervision" in peers_on:
        if n <= args.supervision_max_images:
            sv = run_worker("supervision", data_dir, args.repeat, env, scratch)
            row["supervision"] = _strip(sv)
            log(
                f"  supervision: import {sv['import_s']:.3f}s, convert {sv['convert_s']:.2f}s, "
                f"first cell {sv['cell_s'][0]:.3f}s, one cell median "
                f"{sv['cell_median_s']:.3f}s, peak RSS {sv['peak_rss'] / 2**20:.0f} MB"
            )
            ci = peers.cell(grid, 0.5)
            s2 = parity.supervision_marginal_checks(
                gt, pd, classes, sv["_arrays"]["matrix"], o_counts[ci, ci]
            )
            checks += s2
            for c in s2:
                log("  " + c.line())
            row["rounds"] = _more_rounds(
                [_round_of(warm, sv)], args.rounds, data_dir, args.repeat, env, scratch,
                ours_digest=row["ours_digest"], sv_digest=sv["digest"])
        else:
            row["skipped"].append(f"supervision (> {args.supervision_max_images:,} images)")

    if "valor" in peers_on:
        if n <= args.valor_max_images:
            va = run_worker("valor", data_dir, args.valor_repeat, env, scratch)
            row["valor"] = _strip(va)
            log(
                f"  valor-lite: convert {va['convert_s']:.2f}s, ingest {va['ingest_median_s']:.2f}s, "
                f"pr cube {va['pr_median_s']:.2f}s, confusion {va['cm_median_s']:.2f}s, "
                f"peak RSS {va['peak_rss'] / 2**20:.0f} MB"
            )
            v2 = parity.valor_marginal_checks(
                gt, pd, classes, va["_arrays"]["counts"], va["_arrays"]["confusion"], o_counts
            )
            checks += v2
            for c in v2:
                log("  " + c.line())
        else:
            row["skipped"].append(
                f"valor-lite (> {args.valor_max_images:,} images; raise --valor-max-images)"
            )

    if "coco" in peers_on:
        row["coco"] = _coco(n, gt, pd, classes, data_dir, args)
    if "errors" in peers_on:
        row["errors"] = _errors(n, gt, pd, args)
    if n in {int(x) for x in args.compare_sizes.split(",") if x}:
        from benchmarks.compare import run_compare_benchmark  # pm.compare; hotcoco if installed

        row["compare"] = run_compare_benchmark(n)
        log(f"  compare: {json.dumps(row['compare'], default=str)[:600]}")

    row["checks"] = [
        {
            "peer": c.peer,
            "name": c.name,
            "ok": c.ok,
            "compared": c.compared,
            "mismatched": c.mismatched,
            "mismatches": c.mismatches,
            "note": c.note,
        }
        for c in checks
    ]
    row["parity_ok"] = {
        p: all(c.ok for c in checks if c.peer == p) for p in ("supervision", "valor-lite", "ours")
    }
    row["wall_s"] = time.perf_counter() - t0
    return row


def _round_of(ours: dict[str, Any], sv: dict[str, Any]) -> dict[str, float]:
    """The times of one (ours, supervision) pair of fresh processes that the ratios use."""
    return dict(ours_import_s=ours["import_s"], ours_first_call_s=ours["first_call_s"],
                ours_warm_s=ours["warm_median_s"], sv_import_s=sv["import_s"],
                sv_first_cell_s=sv["cell_s"][0], sv_cell_s=sv["cell_median_s"])


def _more_rounds(rounds: list[dict[str, float]], n_rounds: int, data_dir: Path, repeat: int,
                 env: dict[str, str], scratch: Path, *, ours_digest: str,
                 sv_digest: str) -> list[dict[str, float]]:
    """Up to ``n_rounds`` pairs of fresh processes, supervision first in every other round
    (drift on a shared machine then favours neither); each timed run must give the numbers
    its first run gave (digest), or the benchmark stops."""
    for i in range(len(rounds), n_rounds):
        order = ("supervision", "ours") if i % 2 else ("ours", "supervision")
        got = {task: run_worker(task, data_dir, repeat, env, scratch) for task in order}
        for task, want in (("ours", ours_digest), ("supervision", sv_digest)):
            if got[task]["digest"] != want:
                raise RuntimeError(f"round {i + 1}: {task}'s timed numbers changed "
                                   f"({got[task]['digest']} != {want})")
        rounds.append(_round_of(got["ours"], got["supervision"]))
        r = round_ratios(rounds[-1:])
        log(f"  round {i + 1}: supervision / ours warm {r['warm'][0]:.2f}x, ours fresh "
            f"{r['ours fresh'][0]:.2f}x, both fresh {r['both fresh'][0]:.2f}x, with import "
            f"{r['with import'][0]:.2f}x")
    return rounds


def round_ratios(rounds: list[dict[str, float]]) -> dict[str, list[float]]:
    """Per round: supervision / ours, warm (cell median / warm median), ours fresh (cell median
    / first call), both fresh (first cell / first call) and with import (import + first cell /
    import + first call).

    >>> r = round_ratios([dict(ours_import_s=0.1, ours_first_call_s=0.2, ours_warm_s=0.1,
    ...                        sv_import_s=0.3, sv_first_cell_s=0.6, sv_cell_s=0.5)])
    >>> {k: round(v[0], 3) for k, v in r.items()}
    {'warm': 5.0, 'ours fresh': 2.5, 'both fresh': 3.0, 'with import': 3.0}
    """
    return {
        "warm": [r["sv_cell_s"] / r["ours_warm_s"] for r in rounds],
        "ours fresh": [r["sv_cell_s"] / r["ours_first_call_s"] for r in rounds],
        "both fresh": [r["sv_first_cell_s"] / r["ours_first_call_s"] for r in rounds],
        "with import": [(r["sv_import_s"] + r["sv_first_cell_s"])
                        / (r["ours_import_s"] + r["ours_first_call_s"]) for r in rounds],
    }


def spread_table(rows: list[dict[str, Any]]) -> str:
    """Each ratio as median (min-max) over the rounds of every size that ran more than one."""
    sized = [r for r in rows if len(r.get("rounds", [])) > 1]
    if not sized:
        return ""
    kinds = list(round_ratios(sized[0]["rounds"]))
    out = ["| images | rounds | " + " | ".join(f"supervision / ours, {k}" for k in kinds) + " |",
           "|" + "---|" * (len(kinds) + 2)]
    for r in sized:
        ratios = round_ratios(r["rounds"])
        cells = [f"{statistics.median(v):.2f}x ({min(v):.2f}-{max(v):.2f})"
                 for v in ratios.values()]
        out.append(f"| {r['images']:,} | {len(r['rounds'])} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def _errors(n: int, gt, pd, args: argparse.Namespace) -> Any:  # noqa: ANN001
    """TIDE error types: ev.errors() vs tidecv and hotcoco (benchmarks/errors.py)."""
    if n > args.errors_max_images:
        return {"skipped": f"> {args.errors_max_images:,} images"}
    from benchmarks.errors import run_errors_benchmark

    rows = run_errors_benchmark(gt, pd, repeat=max(1, min(args.repeat, 3)))
    for r in rows:
        log(f"  errors: {r}")
    return rows


def _coco(n: int, gt, pd, classes, data_dir: Path, args: argparse.Namespace) -> Any:  # noqa: ANN001
    spec = importlib.util.find_spec("benchmarks.coco")
    if spec is None:
        log("  coco: benchmarks/coco.py not present — skipped")
        return {"skipped": "benchmarks/coco.py not present"}
    if n > args.coco_max_images:
        return {"skipped": f"> {args.coco_max_images:,} images"}
    try:
        from benchmarks.coco import run_coco_benchmark
    except ImportError as exc:  # the file is someone else's and may be mid-edit
        log(f"  coco: benchmarks/coco.py has no run_coco_benchmark ({exc}) — skipped")
        return {"skipped": f"benchmarks/coco.py: {exc}"}
    from benchmarks.generate import write_coco

    gt_json, res_json = data_dir / "coco_gt.json", data_dir / "coco_results.json"
    if not gt_json.exists() or not res_json.exists():
        write_coco(gt, pd, classes, gt_json, res_json, n_images=n)
    try:
        rows = run_coco_benchmark(gt_json, res_json)
    except AssertionError as exc:  # parity failed: no ratios, the run fails
        log(f"  coco: {exc}")
        return {"skipped": str(exc), "parity_failed": True}
    from benchmarks.coco import format_table

    log("  coco bbox (peer / ours > 1: ours faster):\n" + format_table(rows))
    return rows


def _digest(counts: np.ndarray, conf: np.ndarray) -> str:
    from benchmarks.worker import digest

    return digest(counts, conf)


def _strip(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if not k.startswith("_")}


def _fmt_stages(st: dict[str, float]) -> str:
    return "(" + ", ".join(f"{k} {v:.3f}" for k, v in st.items()) + ")"


# --- report -----------------------------------------------------------------------------------


def _mb(b: float | None) -> str:
    return "—" if b is None else f"{b / 2**20:,.0f}"


def _s(x: float | None, nd: int = 3) -> str:
    return "—" if x is None else f"{x:.{nd}f}"


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat record per size (the CSV), ratios computed from the same run."""
    flat = []
    for r in rows:
        o, sv, va = r.get("ours", {}), r.get("supervision"), r.get("valor")
        ours_s = o.get("warm_median_s")
        rec: dict[str, Any] = {
            "images": r["images"],
            "ground_truths": r["stats"]["ground_truths"],
            "predictions": r["stats"]["predictions"],
            "ours_warm_s": ours_s,
            "ours_warm_min_s": min(o["warm_s"]) if o.get("warm_s") else None,
            "ours_warm_cpu_s": o.get("warm_cpu_median_s"),
            "ours_first_call_fresh_process_s": o.get("first_call_s"),
            "ours_import_s": o.get("import_s"),
            "ours_cold_compile_first_call_s": r.get("ours_cold_compile", {}).get("first_call_s"),
            "ours_cold_compile_import_s": r.get("ours_cold_compile", {}).get("import_s"),
            **{f"ours_{k}_s": v for k, v in o.get("warm_stage_median_s", {}).items()},
            "ours_us_per_image": None if ours_s is None else 1e6 * ours_s / r["images"],
            "ours_peak_rss_mb": o.get("peak_rss", 0) / 2**20 if o else None,
            "ours_peak_rss_previous_alive_mb": (o["peak_rss_previous_alive"] / 2**20
                                                if o.get("peak_rss_previous_alive") else None),
            "iou_floor_s": o.get("iou_floor_s"),
            "ours_warm_over_iou_floor": (o["warm_median_s"] / o["iou_floor_s"]
                                         if o.get("iou_floor_s") else None),
            "ours_first_call_over_iou_floor": (o["first_call_s"] / o["iou_floor_s"]
                                               if o.get("iou_floor_s") else None),
            "ours_work_peak_rss_mb": o.get("work_peak_rss", 0) / 2**20 if o else None,
            "ours_rss_loaded_mb": o.get("rss_loaded", 0) / 2**20 if o else None,
            "ours_background_cpu_pct": o.get("background_cpu_pct_before"),
            "kernel_threads": o.get("kernel_threads"),
            "kernels": o.get("kernels"),
            "ours_jit_warm_s": r.get("ours_jit", {}).get("warm_median_s"),
            "ours_jit_peak_rss_mb": (r["ours_jit"]["peak_rss"] / 2**20) if r.get("ours_jit") else None,
            "polars_threads": o.get("polars_threads"),
        }
        if sv:
            ok = r["parity_ok"]["supervision"]
            rec.update(
                supervision_convert_s=sv["convert_s"],
                supervision_cell_s=sv["cell_median_s"],
                supervision_cell_min_s=min(sv["cell_s"]),
                supervision_cell_cpu_s=sv.get("cell_cpu_median_s"),
                supervision_peak_rss_mb=sv["peak_rss"] / 2**20,
                supervision_work_peak_rss_mb=sv["work_peak_rss"] / 2**20,
                supervision_parity=ok,
                supervision_background_cpu_pct=sv.get("background_cpu_pct_before"),
                speedup_vs_supervision=(sv["cell_median_s"] / ours_s) if ok and ours_s else None,
                # ours' first call in a fresh process vs supervision's one cell
                speedup_vs_supervision_fresh=(sv["cell_median_s"] / o["first_call_s"]
                                              if ok and o.get("first_call_s") else None),
                # both as fresh processes: supervision's first cell (after its conversion to
                # sv.Detections, not timed) vs ours' first call
                speedup_vs_supervision_both_fresh=(sv["cell_s"][0] / o["first_call_s"]
                                                   if ok and o.get("first_call_s") else None),
                # a fresh process's whole wait: importing the library, then the first call
                # (supervision: its first cell; its conversion to sv.Detections not included)
                supervision_import_s=sv.get("import_s"),
                speedup_vs_supervision_fresh_with_import=(
                    (sv["import_s"] + sv["cell_s"][0]) / (o["import_s"] + o["first_call_s"])
                    if ok and o.get("first_call_s") and sv.get("import_s") is not None
                    and o.get("import_s") is not None else None),
                # min/min: the least contended run of each, for a shared (noisy) machine
                speedup_vs_supervision_min=(
                    min(sv["cell_s"]) / min(o["warm_s"]) if ok and o.get("warm_s") else None
                ),
            )
        if va:
            ok = r["parity_ok"]["valor-lite"]
            cube = va["ingest_median_s"] + va["pr_median_s"]
            rec.update(
                valor_convert_s=va["convert_s"],
                valor_ingest_s=va["ingest_median_s"],
                valor_pr_cube_s=va["pr_median_s"],
                valor_confusion_s=va["cm_median_s"],
                valor_all_cpu_s=va.get("cpu_median_s"),
                valor_peak_rss_mb=va["peak_rss"] / 2**20,
                valor_work_peak_rss_mb=va["work_peak_rss"] / 2**20,
                valor_parity=ok,
                valor_background_cpu_pct=va.get("background_cpu_pct_before"),
                speedup_vs_valor_ingest_cube=(cube / ours_s) if ok and ours_s else None,
                speedup_vs_valor_ingest_cube_confusion=(
                    (cube + va["cm_median_s"]) / ours_s if ok and ours_s else None
                ),
            )
        flat.append(rec)
    return flat


def markdown(env: dict[str, Any], rows: list[dict[str, Any]], flat: list[dict[str, Any]]) -> str:
    v = env["versions"]
    out = [
        "# polars_metrics benchmark results",
        "",
        f"{env['date']} · commit `{env['git_commit']}`{' (dirty)' if env['git_dirty'] else ''} · "
        f"{env['cpu_count']} cores (affinity {env['cpu_affinity']}), {env['memory_gb']} GB · "
        f"{env['platform']} · Python {env['python']}",
        "",
        f"Threads: NUMBA_NUM_THREADS={env['NUMBA_NUM_THREADS']}, "
        f"POLARS_MAX_THREADS={env['POLARS_MAX_THREADS']} (effective: kernels "
        f"{flat[0].get('kernel_threads') if flat else '?'}, polars "
        f"{flat[0].get('polars_threads') if flat else '?'}). Kernels: "
        f"{flat[0].get('kernels') if flat else '?'}.",
        "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
        "",
        "Ours = `pm.evaluate` with the default 11 × 11 thresholds, `ev.cube`, `ev.confusion` and "
        "`ev.data_rows` materialized, from in-memory frames, warm numba (median of the runs). "
        "supervision = `ConfusionMatrix.from_detections` for the single cell (c = 0.5, t = 0.5). "
        "valor-lite = `Loader.add_bounding_boxes` + `finalize` (ingest) + "
        "`compute_precision_recall` (cube) [+ `compute_confusion_matrix`] at the same 11 × 11 "
        "thresholds. Converting frames to each peer's objects is timed separately and *not* "
        "included in the peer's time. Peak RSS = VmHWM of a process that only loads the "
        "data and runs that tool.",
        "",
    ]
    tgt = next((f for f in flat if f["images"] == TARGET_SIZE), None)
    if tgt:
        out += [
            "## Targets at 5,000 images (issue 2)",
            "",
            "| target | measured | met |",
            "|---|---|---|",
        ]
        sv = tgt.get("speedup_vs_supervision")
        out.append(
            f"| ≥ {TARGET_VS_SUPERVISION:g}× faster than supervision's one cell | "
            + (
                f"{sv:.2f}× ({_s(tgt['ours_warm_s'])} s vs {_s(tgt['supervision_cell_s'])} s)"
                if sv
                else "n/a"
            )
            + f" | {'yes' if sv and sv >= TARGET_VS_SUPERVISION else 'no'} |"
        )
        svm = tgt.get("speedup_vs_supervision_min")
        if svm:
            out.append(
                f"| (same, fastest run of each) | {svm:.2f}× ({_s(tgt['ours_warm_min_s'])} s vs "
                f"{_s(tgt['supervision_cell_min_s'])} s) | "
                f"{'yes' if svm >= TARGET_VS_SUPERVISION else 'no'} |"
            )
        va = tgt.get("speedup_vs_valor_ingest_cube")
        out.append(
            f"| ≥ {TARGET_VS_VALOR:g}× faster than valor-lite ingest + cube | "
            + (
                f"{va:.1f}× ({_s(tgt['ours_warm_s'])} s vs "
                f"{_s(tgt['valor_ingest_s'] + tgt['valor_pr_cube_s'], 2)} s)"
                if va
                else "n/a"
            )
            + f" | {'yes' if va and va >= TARGET_VS_VALOR else 'no'} |"
        )
        peers_rss = {k: tgt.get(f"{k}_peak_rss_mb") for k in ("supervision", "valor")}
        peers_rss = {k: x for k, x in peers_rss.items() if x}
        below = all(tgt["ours_peak_rss_mb"] < x for x in peers_rss.values()) if peers_rss else None
        out.append(
            "| peak RSS below every peer | ours "
            + f"{tgt['ours_peak_rss_mb']:,.0f} MB vs "
            + ", ".join(f"{k} {x:,.0f} MB" for k, x in peers_rss.items())
            + f" | {'yes' if below else 'no' if below is not None else 'n/a'} |"
        )
        out.append("")

    out += [
        "## Ours across the ladder",
        "",
        "| images | gts | preds | warm e2e s median (min) | prepare | pairs | match | cube | µs/image | "
        "first call, fresh process s | peak RSS MB | RSS during work (loaded → peak) MB | "
        "numba JIT fallback: warm s / peak RSS MB / cold compile (import + first call) s |",
        "|" + "---|" * 13,
    ]
    for f in flat:
        cold = (
            f"{_s(f['ours_cold_compile_import_s'], 2)} + {_s(f['ours_cold_compile_first_call_s'], 2)}"
            if f.get("ours_cold_compile_first_call_s") is not None
            else "—"
        )
        out.append(
            f"| {f['images']:,} | {f['ground_truths']:,} | {f['predictions']:,} | "
            f"{_s(f['ours_warm_s'])} ({_s(f['ours_warm_min_s'])}) | {_s(f.get('ours_prepare_s'))} | "
            f"{_s(f.get('ours_pairs_s'))} | "
            f"{_s(f.get('ours_match_s'))} | {_s(f.get('ours_cube_s'))} | "
            f"{_s(f['ours_us_per_image'], 1)} | {_s(f['ours_first_call_fresh_process_s'])} | "
            f"{f['ours_peak_rss_mb']:,.0f} | {f['ours_rss_loaded_mb']:,.0f} → {f['ours_work_peak_rss_mb']:,.0f} | "
            f"{_s(f.get('ours_jit_warm_s'))} / {_mb_s(f.get('ours_jit_peak_rss_mb'))} / {cold} |"
        )
    out.append("")
    out += [
        "## Peers (same data, same run)",
        "",
        "| images | ours s | supervision cell s | ×sv (min/min) | ×sv | sv convert s | valor ingest s | "
        "valor cube s | valor confusion s | ×valor (ingest+cube) | ×valor (+confusion) | "
        "valor convert s | peak RSS MB ours / sv / valor | "
        "other processes' CPU % before ours / sv / valor |",
        "|" + "---|" * 14,
    ]

    def x(f: dict[str, Any], key: str, nd: int = 1) -> str:
        val = f.get(key)
        return "—" if val is None else f"{val:.{nd}f}×"

    for f in flat:
        out.append(
            f"| {f['images']:,} | {_s(f['ours_warm_s'])} | {_s(f.get('supervision_cell_s'))} | "
            f"{x(f, 'speedup_vs_supervision_min', 2)} | "
            f"{x(f, 'speedup_vs_supervision', 2)} | {_s(f.get('supervision_convert_s'), 2)} | "
            f"{_s(f.get('valor_ingest_s'), 2)} | {_s(f.get('valor_pr_cube_s'), 2)} | "
            f"{_s(f.get('valor_confusion_s'), 2)} | {x(f, 'speedup_vs_valor_ingest_cube')} | "
            f"{x(f, 'speedup_vs_valor_ingest_cube_confusion')} | {_s(f.get('valor_convert_s'), 2)} | "
            f"{_mb_s(f.get('ours_peak_rss_mb'))} / {_mb_s(f.get('supervision_peak_rss_mb'))} / "
            f"{_mb_s(f.get('valor_peak_rss_mb'))} | {_pct(f.get('ours_background_cpu_pct'))} / "
            f"{_pct(f.get('supervision_background_cpu_pct'))} / "
            f"{_pct(f.get('valor_background_cpu_pct'))} |"
        )
    out.append("")
    out += [
        "CPU seconds of the timed work (all threads of the process; barely affected by other "
        "processes, unlike wall time — ours runs on up to "
        f"{flat[0].get('kernel_threads') if flat else '?'} threads):",
        "",
        "| images | ours CPU s | supervision cell CPU s | valor ingest+cube+confusion CPU s |",
        "|---|---|---|---|",
    ]
    for f in flat:
        out.append(
            f"| {f['images']:,} | {_s(f.get('ours_warm_cpu_s'))} | "
            f"{_s(f.get('supervision_cell_cpu_s'))} | {_s(f.get('valor_all_cpu_s'), 2)} |"
        )
    out.append("")
    base = next((f for f in flat if f["ours_us_per_image"]), None)
    if base:
        out += [
            "## Scaling (ours, warm)",
            "",
            "| images | wall µs/image | relative | CPU µs/image | relative |",
            "|---|---|---|---|---|",
        ]
        cpu0 = (base.get("ours_warm_cpu_s") or 0) / base["images"]
        for f in flat:
            cpu = (f.get("ours_warm_cpu_s") or 0) / f["images"]
            out.append(
                f"| {f['images']:,} | {_s(f['ours_us_per_image'], 1)} | "
                f"{f['ours_us_per_image'] / base['ours_us_per_image']:.2f} | "
                f"{1e6 * cpu:.1f} | {cpu / cpu0 if cpu0 else float('nan'):.2f} |"
            )
        out.append("")
    out += ["## Parity checks (exact integer equality; see benchmarks/README.md)", ""]
    for r in rows:
        out.append(
            f"**{r['images']:,} images**"
            + (f" — skipped: {'; '.join(r['skipped'])}" if r["skipped"] else "")
        )
        out.append("")
        for c in r["checks"]:
            out.append(
                f"- {'PASS' if c['ok'] else '**FAIL**'} {c['peer']} · {c['name']}: "
                f"{c['compared'] - c['mismatched']:,}/{c['compared']:,} equal"
                + (f" ({c['note']})" if c["note"] else "")
            )
            for m in c["mismatches"]:
                out.append(f"  - `{m}`")
        out.append("")
    cocos = [(r["images"], r["coco"]) for r in rows if isinstance(r.get("coco"), list)]
    if cocos:
        from benchmarks.coco import format_table

        out += [
            "## COCO bbox (benchmarks/coco.py: its own parity and timing, same data as COCO JSON)",
            "",
            "core = evaluate + accumulate + summarize (ours: `pm.evaluate_coco`); profile = ours "
            "`pm.evaluate(profile=\"coco\")` through `coco_summary`; full = that call with "
            "`coco_summary`, `cube`, `confusion` and `data_rows` read; medians of interleaved "
            "rounds (min / min in brackets).",
            "",
        ]
    for n, coco in cocos:
        out += [f"**{n:,} images**", "", format_table(coco), ""]
    errs = [(r["images"], r["errors"]) for r in rows if isinstance(r.get("errors"), list)]
    if errs:
        from benchmarks.errors import markdown as errors_markdown

        out += ["## TIDE error types (benchmarks/errors.py: parity, then time)", ""]
        for n, e in errs:
            out += [f"**{n:,} images**", "", errors_markdown(e), ""]
    out += ["## All ratios (peer / ours; > 1: ours faster)", "", ratio_table(rows), ""]
    spread = spread_table(rows)
    if spread:
        out += ["## Spread over rounds (fresh process pairs, alternating order)", "", spread, ""]
    return "\n".join(out)


def ratio_table(rows: list[dict[str, Any]]) -> str:
    """One table of every ratio (peer time / our time: > 1 means ours is faster), per size,
    with the 1-minute load average seen around the timed processes."""
    coco_peers = ("hotcoco", "faster-coco-eval", "pycocotools", "vernier")
    head = ["images", "load avg",
            "supervision cell / ours (warm; ours fresh; both fresh; both fresh with import)",
            "peak RSS MB ours (previous result alive) / supervision", "ours / IoU floor",
            "valor ingest+cube / ours"]
    head += [f"{p} / ours COCO (core; profile; full)" for p in coco_peers]
    head += ["hotcoco load / read_coco (first; again)", "peak RSS MB ours COCO / hotcoco"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r, f in zip(rows, summarize(rows), strict=True):
        loads = [x for x in (r.get("ours", {}).get("loadavg_after"),) if x is not None]
        coco = r.get("coco") if isinstance(r.get("coco"), list) else []
        by_lib = {c["library"]: c for c in coco if c.get("variant") == "warm"}
        loads += [x for c in coco for x in c.get("loadavg", [])]
        cells = [f"{r['images']:,}",
                 f"{min(loads):.1f}–{max(loads):.1f}" if loads else "—",
                 f"{_x(f.get('speedup_vs_supervision'))}; {_x(f.get('speedup_vs_supervision_fresh'))}"
                 f"; {_x(f.get('speedup_vs_supervision_both_fresh'))}"
                 f"; {_x(f.get('speedup_vs_supervision_fresh_with_import'))}",
                 f"{_mb_s(f.get('ours_peak_rss_mb'))} ({_mb_s(f.get('ours_peak_rss_previous_alive_mb'))})"
                 f" / {_mb_s(f.get('supervision_peak_rss_mb'))}",
                 _x(f.get("ours_warm_over_iou_floor")),
                 _x(f.get("speedup_vs_valor_ingest_cube"))]
        for p in coco_peers:
            c = by_lib.get(p)
            # (results.json written before the "profile" phase has no ratio_profile: --report-only)
            cells.append("; ".join(_x(c.get(k)) for k in ("ratio_core", "ratio_profile", "ratio_full"))
                         if c and "ratio_core" in c else "—")
        h, o = by_lib.get("hotcoco"), by_lib.get("polars_metrics")
        cells.append(f"{h['ratio_load']:.2f}x; {h['ratio_load_warm']:.2f}x" if h and "ratio_load" in h
                     else "—")
        cells.append(f"{o['peak_rss_mb']:.0f} / {h['peak_rss_mb']:.0f}" if h and o else "—")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _x(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}x"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.0f}"


def _mb_s(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}"


def write_results(out_dir: Path, env: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    flat = summarize(rows)
    (out_dir / "results.json").write_text(
        json.dumps({"environment": env, "sizes": rows, "summary": flat}, indent=2, default=str)
    )
    keys = list(dict.fromkeys(k for f in flat for k in f))
    with (out_dir / "results.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(flat)
    (out_dir / "results.md").write_text(markdown(env, rows, flat))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["suspects"]:  # label-error queues vs cleanlab / hotcoco (issue 14)
        from benchmarks.suspects import main as suspects_main

        return suspects_main(argv[1:])
    args = parse_args(argv)
    if args.report_only:
        saved = json.loads((args.out / "results.json").read_text())
        write_results(args.out, saved["environment"], saved["sizes"])
        log(f"re-rendered {args.out / 'results.md'}")
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s]
    peers_on = {p.strip() for p in args.peers.split(",") if p.strip()}
    unknown = peers_on - set(PEERS)
    if unknown:
        raise SystemExit(f"unknown peer(s) {sorted(unknown)}; choose from {', '.join(PEERS)}")
    if args.rounds < 1:
        raise SystemExit(f"--rounds must be at least 1, got {args.rounds}")
    if args.rounds > 1 and "supervision" not in peers_on:
        raise SystemExit("--rounds repeats the (ours, supervision) process pairs: add supervision "
                         "to --peers, or drop --rounds")
    # one numba cache for the parity run and the warm workers; the cold run gets an empty one
    cache_dir = Path(os.environ.get("NUMBA_CACHE_DIR", ROOT / ".numba_cache"))
    os.environ["NUMBA_CACHE_DIR"] = str(cache_dir)
    QUIET.update(wait_s=args.quiet_wait, busy_pct=args.busy_pct)
    env = environment()
    log(
        f"benchmark: sizes {sizes}, repeat {args.repeat}, peers {sorted(peers_on)}, "
        f"{env['cpu_count']} cores, numba cache {cache_dir}"
    )
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pm-bench-") as scratch:
        for n in sizes:
            rows.append(bench_size(n, args, peers_on, cache_dir, Path(scratch)))
            write_results(args.out, env, rows)  # partial results survive an interrupted run
    log(f"wrote {args.out / 'results.md'}")
    if args.first_call_images:  # issue 12: no compile at user time, import time
        from benchmarks import first_call

        table = first_call.format_table(first_call.run_first_calls(args.first_call_images),
                                        first_call.import_times())
        print(table)
        (args.out / "first_call.md").write_text(table + "\n")
    print("\nAll ratios (peer / ours; > 1: ours faster), load average now "
          f"{os.getloadavg()[0]:.1f}:\n" + ratio_table(rows), flush=True)
    if spread := spread_table(rows):
        print("\nSpread over rounds (fresh process pairs, alternating order):\n" + spread,
              flush=True)
    failed = [c for r in rows for c in r["checks"] if not c["ok"]]
    failed += [r["coco"] for r in rows if isinstance(r.get("coco"), dict) and r["coco"].get("parity_failed")]
    if failed:
        log(f"{len(failed)} parity check(s) FAILED — see results.md")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
