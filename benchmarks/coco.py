"""COCO ``bbox`` benchmark: polars_metrics vs pycocotools vs faster-coco-eval.

``run_coco_benchmark(gt_json, results_json)`` checks parity first (the 12 summary stats equal to
1e-10 against both peers), then times JSON loading and evaluate + accumulate + summarize for
each library, and measures peak RSS of each library in its own child process.

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
_CHILD = r'''
import contextlib, io, json, resource, sys, time
lib, gt_path, res_path, iou_type, repeats = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
out = {"library": lib}
quiet = contextlib.redirect_stdout(io.StringIO())
if lib == "polars_metrics":
    from polars_metrics.io.coco import read_coco
    from polars_metrics.coco import evaluate_coco
    t = time.perf_counter(); gt, pd = read_coco(gt_path, res_path); out["load_s"] = time.perf_counter() - t
    times, cpu = [], []
    for _ in range(repeats):
        t = time.perf_counter(); c = time.process_time()
        r = evaluate_coco(gt, pd, iou_type=iou_type); _ = r.format_summary()
        times.append(time.perf_counter() - t); cpu.append(time.process_time() - c)
    stats = r.stats
elif lib in ("pycocotools", "faster-coco-eval"):
    if lib == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval as Eval
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as Eval
    with quiet:
        t = time.perf_counter(); cg = COCO(gt_path); cd = cg.loadRes(res_path); out["load_s"] = time.perf_counter() - t
    times, cpu = [], []
    for _ in range(repeats):
        with contextlib.redirect_stdout(io.StringIO()):
            t = time.perf_counter(); c = time.process_time()
            ev = Eval(cg, cd, iou_type); ev.evaluate(); ev.accumulate(); ev.summarize()
            times.append(time.perf_counter() - t); cpu.append(time.process_time() - c)
    stats = ev.stats
else:
    raise SystemExit(f"unknown library {lib}")
out["eval_s"] = times
out["eval_cpu_s"] = cpu
out["stats"] = [float(v) for v in stats]
# VmHWM is this interpreter's own peak; ru_maxrss would carry the forking parent's over exec
out["peak_rss_mb"] = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]) / 1024
print("RESULT " + json.dumps(out))
'''


def _run_child(lib: str, gt: Path, res: Path, iou_type: str, repeats: int,
               env: dict[str, str] | None = None, timeout: float = 3600) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, lib, str(gt), str(res), iou_type, str(repeats)],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, **(env or {})}, timeout=timeout,
    )  # fmt: skip
    for line in proc.stdout.splitlines()[::-1]:
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{lib} benchmark child failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def run_coco_benchmark(
    gt_path_json: str | Path,
    results_path_json: str | Path,
    *,
    iou_type: str = "bbox",
    repeats: int = 3,
    peers: tuple[str, ...] = ("pycocotools", "faster-coco-eval"),
    atol: float = 1e-10,
) -> list[dict]:
    """Parity first, then timings and peak RSS of each library, each in its own process.

    Every library loads the JSON files and runs evaluate + accumulate + summarize ``repeats``
    times (pycocotools once: it is slow) in a fresh ``python -c`` child that reports its
    ``ru_maxrss``. polars_metrics is run twice: with an empty numba cache (``cold``: includes
    compiling the kernels) and with the warm on-disk cache (``warm``: the median of the repeats
    after the first call). Raises ``AssertionError`` when the 12 stats of any two libraries
    differ by more than ``atol``.

    Returns one dict per (library, variant): ``library``, ``variant``, ``load_s``, ``eval_s``
    (evaluate + accumulate + summarize, wall), ``eval_cpu_s`` (its CPU time, all threads: a
    steadier figure on a shared machine), ``peak_rss_mb``, ``stats``, ``max_abs_stat_diff``
    (against pycocotools, or faster-coco-eval without it), and for the peers ``speedup_eval``,
    ``speedup_eval_cpu``, ``speedup_load`` (peer / ours warm).
    """
    import tempfile

    gt, res = Path(gt_path_json), Path(results_path_json)
    n_images = len(json.loads(gt.read_text()).get("images", []))
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as cache:
        cold = _run_child("polars_metrics", gt, res, iou_type, 1, env={"NUMBA_CACHE_DIR": cache})
    cold["variant"] = "cold (compiles kernels)"
    cold["eval_s"] = cold["eval_s"][0]
    cold["eval_cpu_s"] = cold["eval_cpu_s"][0]
    ours = _run_child("polars_metrics", gt, res, iou_type, max(repeats, 2) + 1)
    ours["variant"] = "warm"
    ours["first_call_s"] = ours["eval_s"][0]
    ours["eval_s"] = float(np.median(ours["eval_s"][1:]))
    ours["eval_cpu_s"] = float(np.median(ours["eval_cpu_s"][1:]))
    rows += [cold, ours]
    for lib in peers:
        try:
            r = _run_child(lib, gt, res, iou_type, 1 if lib == "pycocotools" else repeats)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            rows.append({"library": lib, "skipped": str(exc)[:500]})
            continue
        r["variant"] = "-"
        r["eval_s"] = float(np.median(r["eval_s"]))
        r["eval_cpu_s"] = float(np.median(r["eval_cpu_s"]))
        rows.append(r)

    ran = [r for r in rows if "stats" in r]
    ref = next((r for r in ran if r["library"] == "pycocotools"), None) or next(
        (r for r in ran if r["library"] == "faster-coco-eval"), ran[0]
    )
    for r in ran:
        r["max_abs_stat_diff"] = float(np.max(np.abs(np.subtract(r["stats"], ref["stats"]))))
    bad = [r for r in ran if r["max_abs_stat_diff"] > atol]
    # parity between peers themselves too: every pair must agree
    assert not bad, (
        "COCO parity failed before timing: "
        + "; ".join(f"{r['library']} ({r['variant']}) differs by {r['max_abs_stat_diff']:.3g}" for r in bad)
    )
    for r in ran:
        r["n_images"] = n_images
        r["iou_type"] = iou_type
        if r["library"] != "polars_metrics":
            r["speedup_eval"] = r["eval_s"] / ours["eval_s"]
            r["speedup_eval_cpu"] = r["eval_cpu_s"] / ours["eval_cpu_s"]
            r["speedup_load"] = r["load_s"] / ours["load_s"]
    return rows


def format_table(rows: list[dict]) -> str:
    """A markdown table of ``run_coco_benchmark`` rows."""
    head = (
        "| library | variant | JSON load s | evaluate+accumulate+summarize s (CPU s) | peak RSS MB "
        "| ours faster: eval wall / eval CPU / load | max abs stat diff |"
    )
    lines = [head, "|" + "---|" * 7]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['library']} | skipped | | | | | {r['skipped'][:60]} |")
            continue
        sp = (
            f"{r['speedup_eval']:.1f}x / {r['speedup_eval_cpu']:.1f}x / {r['speedup_load']:.1f}x"
            if "speedup_eval" in r
            else ""
        )
        lines.append(
            f"| {r['library']} | {r['variant']} | {r['load_s']:.3f} | "
            f"{r['eval_s']:.3f} ({r['eval_cpu_s']:.3f}) | "
            f"{r['peak_rss_mb']:.0f} | {sp} | {r['max_abs_stat_diff']:.1e} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.coco", description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iou-type", default="bbox", choices=("bbox",))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-pycocotools", action="store_true", help="skip the slowest peer")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args(argv)
    gt, res = generate_coco(args.images, seed=args.seed)
    peers = ("faster-coco-eval",) if args.no_pycocotools else ("pycocotools", "faster-coco-eval")
    rows = run_coco_benchmark(gt, res, iou_type=args.iou_type, repeats=args.repeats, peers=peers)
    print(f"COCO {args.iou_type}: {args.images} images, data {gt.name} / {res.name}, {os.cpu_count()} cores")
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
