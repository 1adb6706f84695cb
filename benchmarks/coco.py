"""COCO ``bbox`` benchmark: polars_metrics vs hotcoco, faster-coco-eval, pycocotools, vernier.

``run_coco_benchmark(gt_json, results_json)`` checks parity first (the 12 summary stats of every
library equal pycocotools' to 1e-10; the table shows how many are bit-equal), then times JSON
loading and evaluate + accumulate + summarize for each library, in interleaved rounds of
child processes (one library per process: peak RSS is its own), with the load average.

Standalone::

    python -m benchmarks.coco --images 5000

generates a seeded COCO dataset (~7 ground truths and ~94 detections per image, 80 classes)
into ``benchmarks/data/`` and prints the table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data" / "coco"
REPO = Path(__file__).resolve().parent.parent


# --- data ---------------------------------------------------------------------------------------
def generate_coco(
    n_images: int = 5000,
    *,
    seed: int = 0,
    n_classes: int = 80,
    gt_per_image: float = 7.0,
    dets_per_image: float = 94.2,
    out_dir: Path | str | None = None,
) -> tuple[Path, Path]:
    """Write a seeded synthetic COCO ground truth and a bbox results file; return both paths.

    Detections are jittered copies of the ground truths (mostly the right class, some the
    wrong one) plus background boxes, with scores rounded to 3 decimals so ties across
    images occur, as they do in real result files. About 1% of ground truths are crowds.
    """
    rng = np.random.default_rng(seed)
    out = Path(out_dir) if out_dir is not None else DATA_DIR
    out.mkdir(parents=True, exist_ok=True)
    tag = f"{n_images}_s{seed}"
    gt_path, res_path = out / f"coco_gt_{tag}.json", out / f"coco_res_{tag}.json"
    if gt_path.exists() and res_path.exists():
        return gt_path, res_path

    cat_ids = np.sort(rng.choice(np.arange(1, 91), size=n_classes, replace=False))
    # class frequencies ~ 1 / rank (the most frequent class ~20% of objects, as "person" in COCO)
    cat_p = 1.0 / rng.permutation(np.arange(1, n_classes + 1)).astype(np.float64)
    cat_p /= cat_p.sum()
    img_ids = np.sort(rng.choice(np.arange(1, 100 * n_images + 1), size=n_images, replace=False))
    widths = rng.integers(320, 641, size=n_images)
    heights = rng.integers(240, 481, size=n_images)

    images = [
        {"id": int(i), "width": int(w), "height": int(h), "file_name": f"{int(i):012d}.jpg"}
        for i, w, h in zip(img_ids, widths, heights, strict=True)
    ]
    categories = [{"id": int(c), "name": f"class_{int(c)}", "supercategory": "thing"} for c in cat_ids]

    n_gt = rng.poisson(gt_per_image, size=n_images)
    g_img = np.repeat(np.arange(n_images), n_gt)
    G = g_img.size
    g_cat = rng.choice(n_classes, size=G, p=cat_p)
    W, H = widths[g_img].astype(float), heights[g_img].astype(float)
    gw = np.minimum(np.exp(rng.normal(3.8, 1.0, G)), W * 0.9).round(2)
    gh = np.minimum(np.exp(rng.normal(3.8, 1.0, G)), H * 0.9).round(2)
    gx = (rng.random(G) * (W - gw)).round(2)
    gy = (rng.random(G) * (H - gh)).round(2)
    g_area = (gw * gh * rng.uniform(0.55, 0.95, G)).round(2)
    g_crowd = rng.random(G) < 0.01
    annotations = [
        {
            "id": k + 1,
            "image_id": int(img_ids[i]),
            "category_id": int(cat_ids[c]),
            "bbox": [float(x), float(y), float(w), float(h)],
            "area": float(a),
            "iscrowd": int(cr),
            "segmentation": [],
        }
        for k, (i, c, x, y, w, h, a, cr) in enumerate(
            zip(g_img, g_cat, gx, gy, gw, gh, g_area, g_crowd, strict=True)
        )
    ]

    # detections: ~3 jittered copies per gt, the rest background boxes
    n_copy = rng.poisson(3.0, size=G)
    c_src = np.repeat(np.arange(G), n_copy)
    C = c_src.size
    jit = rng.normal(0.0, 0.12, size=(C, 4))
    cw = np.maximum(gw[c_src] * np.exp(jit[:, 2]), 1.0)
    ch = np.maximum(gh[c_src] * np.exp(jit[:, 3]), 1.0)
    cx = gx[c_src] + jit[:, 0] * gw[c_src]
    cy = gy[c_src] + jit[:, 1] * gh[c_src]
    c_cat = np.where(rng.random(C) < 0.85, g_cat[c_src], rng.choice(n_classes, size=C, p=cat_p))
    c_img = g_img[c_src]
    c_score = np.clip(rng.beta(4, 2, C), 0.001, 1.0)

    n_bg = max(int(round(dets_per_image * n_images)) - C, 0)
    b_img = rng.integers(0, n_images, size=n_bg)
    BW, BH = widths[b_img].astype(float), heights[b_img].astype(float)
    bw = np.minimum(np.exp(rng.normal(3.5, 1.1, n_bg)), BW * 0.9)
    bh = np.minimum(np.exp(rng.normal(3.5, 1.1, n_bg)), BH * 0.9)
    bx = rng.random(n_bg) * (BW - bw)
    by = rng.random(n_bg) * (BH - bh)
    b_cat = rng.choice(n_classes, size=n_bg, p=cat_p)
    b_score = np.clip(rng.beta(1.2, 5, n_bg), 0.001, 1.0)

    d_img = np.concatenate([c_img, b_img])
    order = np.argsort(d_img, kind="stable")  # results files are usually grouped by image
    d_img = d_img[order]
    d_cat = np.concatenate([c_cat, b_cat])[order]
    d_box = np.stack(
        [np.concatenate(v)[order].round(2) for v in ((cx, bx), (cy, by), (cw, bw), (ch, bh))], axis=1
    )
    d_score = np.concatenate([c_score, b_score])[order].round(3)
    results = [
        {
            "image_id": int(img_ids[i]),
            "category_id": int(cat_ids[c]),
            "bbox": [float(v) for v in b],
            "score": float(s),
        }
        for i, c, b, s in zip(d_img, d_cat, d_box, d_score, strict=True)
    ]
    with open(gt_path, "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)
    with open(res_path, "w") as f:
        json.dump(results, f)
    return gt_path, res_path


# --- one library in its own process -------------------------------------------------------------
# Each child loads the JSON files (timed: "load"), runs the evaluation once untimed when `warmup`
# (the warm variant), then `repeats` timed runs. polars_metrics is timed three ways in the same
# process: "core" = pm.evaluate_coco + the summary (the COCOeval replacement: evaluate +
# accumulate + summarize, what every peer does), "profile" = pm.evaluate(profile="coco") through
# coco_summary (the same numbers from the profile's call; its tables are built on first read)
# and "full" = that call with coco_summary, cube, confusion and data_rows materialized (what no
# peer computes).
_CHILD = r'''
import contextlib, io, json, sys, time
lib, gt_path, res_path, iou_type, repeats, warmup = sys.argv[1:7]
repeats, warmup = int(repeats), warmup == "1"
out = {"library": lib}
quiet = contextlib.redirect_stdout(io.StringIO())

def timed(fn):
    t, c = time.perf_counter(), time.process_time(); r = fn()
    return time.perf_counter() - t, time.process_time() - c, r

def peak_mb():  # VmHWM: this interpreter's own peak (ru_maxrss would carry the forking parent's)
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]) / 1024

def file_backed_mb():  # resident pages of mapped files: library code (polars' runtime is ~59 MB of
    # ours), an input file a reader maps; counted in VmHWM like any page, shared between processes
    return int(next(l for l in open("/proc/self/status") if l.startswith("RssFile:")).split()[1]) / 1024

def reset_peak():  # the peak starts again from the resident size now (Linux: "5" > clear_refs)
    import gc; gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f: f.write("5")
        return True
    except OSError:
        return False

if lib == "polars_metrics":
    import polars_metrics as pm
    from polars_metrics.io.coco import read_coco
    load = lambda: read_coco(gt_path, res_path, iou_type=iou_type)
    out["load_s"], out["load_cpu_s"], (gt, pd) = timed(load)  # first call: lazy imports too
    out["load_warm_s"] = timed(load)[0]
    def core():
        r = pm.evaluate_coco(gt, pd, iou_type=iou_type); r.format_summary(); return r
    def profile():  # the profile's call as a COCOeval user makes it: the tables are not read
        ev = pm.evaluate(gt, pd, profile="coco", iou_type=iou_type); ev.coco_summary; return ev
    def full():
        ev = pm.evaluate(gt, pd, profile="coco", iou_type=iou_type)
        _ = (ev.coco_summary, ev.cube, ev.confusion, ev.data_rows)
        return ev
    runs = {"core": core, "profile": profile, "full": full}
elif lib in ("pycocotools", "faster-coco-eval", "vernier"):
    if lib == "faster-coco-eval":
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as Eval
    else:  # vernier's drop-in COCOeval takes pycocotools' COCO objects (it has no loader)
        from pycocotools.coco import COCO
        if lib == "pycocotools":
            from pycocotools.cocoeval import COCOeval as Eval
        else:
            import functools, vernier
            Eval = functools.partial(vernier.COCOeval, parity_mode="strict")
    with quiet:
        load = lambda: (lambda g: (g, g.loadRes(res_path)))(COCO(gt_path))
        out["load_s"], out["load_cpu_s"], (cg, cd) = timed(load)
        out["load_warm_s"] = timed(load)[0]
    def core():
        with contextlib.redirect_stdout(io.StringIO()):
            ev = Eval(cg, cd, iou_type); ev.evaluate(); ev.accumulate(); ev.summarize()
        return ev
    runs = {"core": core}
elif lib == "hotcoco":
    import hotcoco
    with quiet:
        load = lambda: (lambda g: (g, g.load_res(res_path)))(hotcoco.COCO(gt_path))
        out["load_s"], out["load_cpu_s"], (cg, cd) = timed(load)
        out["load_warm_s"] = timed(load)[0]
    def core():
        with contextlib.redirect_stdout(io.StringIO()):
            ev = hotcoco.COCOeval(cg, cd, iou_type); ev.evaluate(); ev.accumulate(); ev.summarize()
        return ev
    runs = {"core": core}
else:
    raise SystemExit(f"unknown library {lib}")
out["peak_rss_load_mb"] = peak_mb()  # both loads (the first result alive during the second)
for name, fn in runs.items():
    r = None
    phase = reset_peak()
    if warmup:
        out[f"{name}_first_s"] = timed(fn)[0]
    walls, cpus = [], []
    for _ in range(repeats):
        w, c, r = timed(fn); walls.append(w); cpus.append(c)
    out[f"{name}_s"], out[f"{name}_cpu_s"] = walls, cpus
    stats = r.coco.stats if name in ("profile", "full") else getattr(r, "stats", None)
    out[f"{name}_stats"] = [float(v) for v in stats]
    # the loaded data plus this variant's runs (each run's result alive during the next run's)
    out[f"peak_rss_{name}_mb"] = peak_mb() if phase else None
    out[f"file_rss_{name}_mb"] = file_backed_mb()  # at the phase's end (library pages only grow)
    r = None
out["peak_rss_mb"] = max(out["peak_rss_load_mb"], peak_mb(),
                         *(v for k, v in out.items() if k.startswith("peak_rss_") and v))
print("RESULT " + json.dumps(out))
'''

PEERS = ("hotcoco", "faster-coco-eval", "pycocotools", "vernier")


def _run_child(lib: str, gt: Path, res: Path, iou_type: str, repeats: int, warmup: bool = True,
               env: dict[str, str] | None = None, timeout: float = 3600) -> dict:
    load = os.getloadavg()[0]
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, lib, str(gt), str(res), iou_type, str(repeats),
         "1" if warmup else "0"],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, **(env or {})}, timeout=timeout,
    )  # fmt: skip
    for line in proc.stdout.splitlines()[::-1]:
        if line.startswith("RESULT "):
            out = json.loads(line[7:])
            out["loadavg_before"] = load
            out["loadavg_after"] = os.getloadavg()[0]
            return out
    raise RuntimeError(f"{lib} benchmark child failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def _merge(runs: list[dict]) -> dict:
    """One library's interleaved rounds: timings pooled (median and min), the largest peak RSS,
    the loads seen."""
    out = dict(runs[0])
    for key in [k for k in runs[0] if k.endswith("_s") and isinstance(runs[0][k], list)]:
        pooled = [v for r in runs for v in r[key]]
        out[key] = float(np.median(pooled))
        out[key.replace("_s", "_min_s")] = float(min(pooled))
    for key in ("load_s", "load_cpu_s", "load_warm_s"):
        out[key] = float(min(r[key] for r in runs))
    for key in [k for k in runs[0] if k.startswith(("peak_rss_", "file_rss_"))]:
        values = [r[key] for r in runs if r.get(key) is not None]
        out[key] = max(values) if values else None
    out["loadavg"] = [round(r["loadavg_before"], 2) for r in runs]
    return out


def run_coco_benchmark(
    gt_path_json: str | Path,
    results_path_json: str | Path,
    *,
    iou_type: str = "bbox",
    repeats: int = 3,
    rounds: int = 2,
    peers: tuple[str, ...] = PEERS,
    cold: bool = True,
    atol: float = 1e-10,
    slow_repeats: int = 1,
) -> list[dict]:
    """Parity first, then timings and peak RSS of each library, each in its own process.

    Each library's child loads the JSON files and runs evaluate + accumulate + summarize once
    untimed (warm-up), then ``repeats`` timed runs; the children of all libraries run in
    ``rounds`` interleaved rounds (ours, every peer, ours, every peer, ...) so that a busy
    machine slows all alike; the load average before each child is recorded. pycocotools and
    vernier get ``slow_repeats`` runs (pycocotools takes a minute at 5k images). polars_metrics
    is also run once with an empty numba cache (``cold``: first call, compiling what is not
    compiled ahead of time). Raises ``AssertionError`` when any library's 12 stats differ from
    pycocotools' (or the first peer's) by more than ``atol`` — before any ratio is reported.

    Returns one dict per (library, variant): ``library``, ``variant``, ``load_s`` (min),
    ``core_s`` / ``core_cpu_s`` (median wall / CPU of evaluate + accumulate + summarize; ours:
    ``pm.evaluate_coco``), for ours ``profile_s`` (``pm.evaluate(profile="coco")`` through
    ``coco_summary``) and ``full_s`` (that call with the cube, confusion and data-row tables
    read), ``peak_rss_mb`` (the process) and per phase ``peak_rss_load_mb`` /
    ``peak_rss_core_mb`` / ``peak_rss_profile_mb`` / ``peak_rss_full_mb`` (the peak restarts
    from the resident size at each phase: the loaded data plus that phase's runs),
    ``file_rss_core_mb`` / ``file_rss_full_mb`` (of the resident size at that phase's end, the
    pages of mapped files: library code above all), ``stats``, ``max_abs_stat_diff``,
    ``loadavg``, and for the peers ``ratio_core`` (peer / ours core), ``ratio_profile`` (peer /
    ours profile), ``ratio_full`` (peer / ours full), ``ratio_load`` (peer load / ours).
    """
    import tempfile

    gt, res = Path(gt_path_json), Path(results_path_json)
    n_images = len(json.loads(gt.read_text()).get("images", []))
    rows: list[dict] = []
    if cold:
        with tempfile.TemporaryDirectory() as cache:
            c = _run_child("polars_metrics", gt, res, iou_type, 1, warmup=False,
                           env={"NUMBA_CACHE_DIR": cache})
        c.update(variant="cold (fresh process, empty numba cache)", stats=c["core_stats"],
                 core_s=c["core_s"][0], core_cpu_s=c["core_cpu_s"][0],
                 profile_s=c["profile_s"][0], full_s=c["full_s"][0],
                 full_cpu_s=c["full_cpu_s"][0], loadavg=[round(c["loadavg_before"], 2)])
        rows.append(c)
    runs: dict[str, list[dict]] = {lib: [] for lib in ("polars_metrics", *peers)}
    skipped: dict[str, str] = {}
    for r in range(rounds):
        for lib in runs:
            if lib in skipped or (lib in ("pycocotools", "vernier") and r > 0 and runs[lib]):
                continue  # the slow peers: one round
            try:
                n = slow_repeats if lib in ("pycocotools", "vernier") else repeats
                # pycocotools (pure Python) has nothing to warm up and takes minutes per run
                runs[lib].append(_run_child(lib, gt, res, iou_type, n,
                                            warmup=lib != "pycocotools"))
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                skipped[lib] = str(exc)[:500]
    for lib, got in runs.items():
        if lib in skipped:
            rows.append({"library": lib, "skipped": skipped[lib]})
            continue
        m = _merge(got)
        m.update(variant="warm", stats=m["core_stats"])
        rows.append(m)

    ran = [r for r in rows if "stats" in r]
    ref = next((r for r in ran if r["library"] == "pycocotools"), None) or next(
        (r for r in ran if r["library"] != "polars_metrics"), ran[0])
    for r in ran:
        diffs = [np.abs(np.subtract(r[k], ref["stats"]))
                 for k in ("core_stats", "profile_stats", "full_stats") if k in r]
        r["max_abs_stat_diff"] = float(max(np.max(d) for d in diffs))
        r["stats_equal"] = int(min(np.sum(d == 0) for d in diffs))
    bad = [r for r in ran if r["max_abs_stat_diff"] > atol]
    assert not bad, (
        "COCO parity failed before timing: "
        + "; ".join(f"{r['library']} ({r['variant']}) differs by {r['max_abs_stat_diff']:.3g}" for r in bad)
    )
    ours = next(r for r in rows if r["library"] == "polars_metrics" and r.get("variant") == "warm")
    for r in ran:
        r["n_images"] = n_images
        r["iou_type"] = iou_type
        if r["library"] != "polars_metrics":
            r["ratio_core"] = r["core_s"] / ours["core_s"]
            r["ratio_core_min"] = r["core_min_s"] / ours["core_min_s"]
            r["ratio_profile"] = r["core_s"] / ours["profile_s"]
            r["ratio_profile_min"] = r["core_min_s"] / ours["profile_min_s"]
            r["ratio_full"] = r["core_s"] / ours["full_s"]
            r["ratio_full_min"] = r["core_min_s"] / ours["full_min_s"]
            r["ratio_core_cpu"] = r["core_cpu_s"] / ours["core_cpu_s"]
            r["ratio_load"] = r["load_s"] / ours["load_s"]
            r["ratio_load_warm"] = r["load_warm_s"] / ours["load_warm_s"]
    return rows


def _rss(r: dict) -> str:
    """Peak RSS: the whole process, then its load and core phases (and ours' profile and full
    phases); then how much of the last phase's resident size was file-backed (mostly library
    code)."""
    phases = [f"{r[k]:.0f}" for k in ("peak_rss_load_mb", "peak_rss_core_mb",
                                        "peak_rss_profile_mb", "peak_rss_full_mb")
              if r.get(k) is not None]
    text = f"{r['peak_rss_mb']:.0f} ({' / '.join(phases)})" if phases else f"{r['peak_rss_mb']:.0f}"
    files = [r[k] for k in ("file_rss_full_mb", "file_rss_core_mb") if r.get(k) is not None]
    return f"{text}; {files[0]:.0f} file-backed" if files else text


def format_table(rows: list[dict]) -> str:
    """A markdown table of ``run_coco_benchmark`` rows: seconds, then ratios peer / ours (> 1:
    ours faster), medians (min / min in brackets)."""
    head = ("| library | variant | load s first / again | evaluate+accumulate+summarize s (CPU s) "
            "| ours profile s | ours full s "
            "| peak RSS MB: process (load / core / profile / full phases); of it file-backed at the end "
            "| peer / ours core | peer / ours profile | peer / ours full | peer / ours load first / again "
            "| 12 stats: max abs diff (exactly equal) | load avg |")
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['library']} | skipped | | | | | | | | | | {r['skipped'][:60]} | |")
            continue
        ours = r["library"] == "polars_metrics"
        rc, rp, rf = ("" if ours else f"{r[f'ratio_{k}']:.2f}x ({r[f'ratio_{k}_min']:.2f}x)"
                      for k in ("core", "profile", "full"))
        rl = "" if ours else f"{r['ratio_load']:.2f}x / {r['ratio_load_warm']:.2f}x"
        prof, full = (f"{r[k]:.3f}" if k in r else "" for k in ("profile_s", "full_s"))
        lines.append(
            f"| {r['library']} | {r['variant']} | {r['load_s']:.3f} / {r['load_warm_s']:.3f} | {r['core_s']:.3f} "
            f"({r['core_cpu_s']:.3f}) | {prof} | {full} | {_rss(r)} | {rc} | {rp} | {rf} | {rl} | "
            f"{r['max_abs_stat_diff']:.1e} ({r['stats_equal']}/12) | "
            f"{', '.join(f'{x:.1f}' for x in r['loadavg'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.coco", description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iou-type", default="bbox", choices=("bbox",))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--peers", default=",".join(PEERS), help=f"subset of {','.join(PEERS)}")
    ap.add_argument("--no-cold", action="store_true")
    ap.add_argument("--data", type=Path, help="a directory with coco_gt.json / coco_results.json "
                    "(e.g. benchmarks/data/5000 of the ladder) instead of this module's generator")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args(argv)
    if args.data:
        gt, res = args.data / "coco_gt.json", args.data / "coco_results.json"
    else:
        gt, res = generate_coco(args.images, seed=args.seed)
    peers = tuple(p for p in args.peers.split(",") if p)
    rows = run_coco_benchmark(gt, res, iou_type=args.iou_type, repeats=args.repeats,
                              rounds=args.rounds, peers=peers, cold=not args.no_cold)
    n = next(r["n_images"] for r in rows if "n_images" in r)
    print(f"COCO {args.iou_type}: {n} images, data {gt} / {res.name}, {os.cpu_count()} cores, "
          f"load average now {os.getloadavg()[0]:.1f}")
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
