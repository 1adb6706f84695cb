"""TIDE error decomposition: ``ev.errors()`` vs tidecv and hotcoco's ``tide_errors``.

``python -m benchmarks.errors [--images 5000] [--repeat 3]`` prints a markdown table;
``run_errors_benchmark(gt, pd)`` returns its rows (``python -m benchmarks`` calls it per size
when this module is present). The data are the benchmark generator's boxes, capped at the 100
highest-scored detections per image (tidecv keeps 100 per image, COCO 100 per image and
category: capped, both see the same detections), of the classes with ground truth (hotcoco
averages AP over those, tidecv and ours over the classes with ground truth or detections). Parity first: the six error counts and ΔAP
(±0.005) against each peer; a peer whose parity fails is marked, not ranked.

Timed, warm (numba compiled), minimum of ``repeat`` runs, interleaved ours / peers:

* ours (coco): ``pm.evaluate(profile="coco", errors=True)`` then ``ev.errors(0.0, 0.5)``
  (counts + ΔAP), also split into the pairs stage the flag adds and ``errors()`` alone;
* ours (labelbox): ``ev.errors(0.5, 0.5)`` on a default ``pm.evaluate`` (the pipeline keeps its
  pairs; the figure is ``errors()`` alone) and the memory of the kept pairs;
* tidecv: ``Data`` construction + ``TIDE.evaluate`` + ``get_main_errors``;
* hotcoco: ``COCO`` / ``load_res`` from JSON + ``COCOeval.evaluate`` + ``tide_errors``.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import polars as pl

import polars_metrics as pm
from polars_metrics.analysis.tide import coco_detail

SHORT = {"classification": "Cls", "localization": "Loc", "both": "Both", "duplicate": "Dupe",
         "background": "Bkg", "missed": "Miss"}
MAX_DETS = 100


def cap_detections(pd: pl.DataFrame, k: int = MAX_DETS) -> pl.DataFrame:
    """The ``k`` highest-scored detections per image (stable on ties)."""
    return (pd.with_row_index("_i").sort(["data_row", "confidence", "_i"],
                                          descending=[False, True, False])
            .group_by("data_row", maintain_order=True).head(k).sort("_i").drop("_i"))


def _best(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def _ours_coco(gt, pd):
    ev = pm.evaluate(gt, pd, profile="coco", errors=True, confidence_thresholds=[0.0])
    tot = ev.errors(0.0, 0.5).filter(pl.col("feature").is_null())
    return ev, ({SHORT[t]: n for t, n in tot.select("error_type", "count").iter_rows()},
                {SHORT[t]: d for t, d in tot.select("error_type", "delta_ap").iter_rows()})


def _tidecv(gt, pd, cat):
    import tidecv

    g, p = tidecv.Data("gt"), tidecv.Data("pd")
    for img, f, b in gt.select("data_row", "feature", "bbox").iter_rows():
        g.add_ground_truth(img, cat[f], [b[0], b[1], b[2] - b[0], b[3] - b[1]])
    for img in gt["data_row"].unique().to_list():
        g._make_default_image(img)
    for img, f, b, sc in pd.select("data_row", "feature", "bbox", "confidence").iter_rows():
        p.add_detection(img, cat[f], sc, [b[0], b[1], b[2] - b[0], b[3] - b[1]])
    tide = tidecv.TIDE()
    run = tide.evaluate(g, p, mode=tidecv.TIDE.BOX, name="run")
    counts = {k.short_name: v for k, v in run.count_errors().items()}
    return counts, {k: v / 100 for k, v in tide.get_main_errors()["run"].items()}


def _write_json(gt, pd, cat, directory: Path) -> tuple[Path, Path]:
    def xywh(b):
        return [b[0], b[1], b[2] - b[0], b[3] - b[1]]
    images = sorted(gt["data_row"].unique().to_list())
    anns = [{"id": i + 1, "image_id": img, "category_id": cat[f], "bbox": xywh(b),
             "area": (b[2] - b[0]) * (b[3] - b[1]), "iscrowd": 0}
            for i, (img, f, b) in enumerate(gt.select("data_row", "feature", "bbox").iter_rows())]
    doc = {"images": [{"id": i, "width": 640, "height": 480} for i in images],
           "categories": [{"id": v, "name": k} for k, v in cat.items()], "annotations": anns}
    res = [{"image_id": img, "category_id": cat[f], "bbox": xywh(b), "score": sc}
           for img, f, b, sc in pd.select("data_row", "feature", "bbox", "confidence").iter_rows()]
    gp, rp = directory / "gt.json", directory / "res.json"
    gp.write_text(json.dumps(doc))
    rp.write_text(json.dumps(res))
    return gp, rp


def _hotcoco(gp: Path, rp: Path):
    import hotcoco

    coco_gt = hotcoco.COCO(str(gp))
    ev = hotcoco.COCOeval(coco_gt, coco_gt.load_res(str(rp)), "bbox")
    ev.evaluate()
    out = ev.tide_errors(pos_thr=0.5, bg_thr=0.1)
    return out["counts"], out["delta_ap"]


def _parity(ours, theirs) -> dict:
    counts, delta = ours
    c2, d2 = theirs
    bad_counts = {k: (counts[k], c2[k]) for k in counts if counts[k] != c2[k]}
    diff = max(abs(delta[k] - d2[k]) for k in delta)
    return {"counts_equal": not bad_counts, "count_mismatches": bad_counts,
            "max_delta_ap_diff": diff, "ok": not bad_counts and diff <= 0.005}


def run_errors_benchmark(gt: pl.DataFrame, pd: pl.DataFrame, *, repeat: int = 3,
                         peers: tuple[str, ...] = ("tidecv", "hotcoco")) -> list[dict]:
    """Rows: one per (library, what), with seconds, and parity against ours."""
    # detections of classes with ground truth only: hotcoco averages AP over the classes with
    # ground truth, tidecv (and ours) over those with ground truth or detections
    pd = cap_detections(pd.filter(pl.col("feature").is_in(gt["feature"].unique().implode())))
    cat = {f: i + 1 for i, f in enumerate(sorted(set(gt["feature"]) | set(pd["feature"])))}
    rows: list[dict] = []
    _ours_coco(gt.head(200), pd.head(2000))  # compile / warm the kernels
    t_ours, (ev, ours) = _best(lambda: _ours_coco(gt, pd), repeat)
    t_plain, _ = _best(lambda: pm.evaluate(gt, pd, profile="coco",
                                           confidence_thresholds=[0.0]), repeat)
    t_pairs, _ = _best(lambda: coco_detail(gt, pd, key="data_row", iou_type="bbox",
                                           on_invalid="raise"), repeat)
    t_err, _ = _best(lambda: ev.errors(0.0, 0.5), repeat)
    rows.append({"library": "polars_metrics (coco)", "what": "evaluate(errors=True) + errors()",
                 "seconds": t_ours, "parity": "reference"})
    rows.append({"library": "polars_metrics (coco)", "what": "evaluate() without errors=True",
                 "seconds": t_plain, "parity": "-"})
    rows.append({"library": "polars_metrics (coco)", "what": "pairs stage errors=True adds",
                 "seconds": t_pairs, "parity": "-"})
    rows.append({"library": "polars_metrics (coco)", "what": "errors() alone (counts + ΔAP)",
                 "seconds": t_err, "parity": "-"})
    lb = pm.evaluate(gt, pd)
    t_lb, _ = _best(lambda: lb.errors(0.5, 0.5), repeat)
    pairs = lb.detail.pairs_arrays
    mb = sum(a.nbytes for a in (pairs.off, pairs.gt, pairs.pd, pairs.iou, pairs.always)) / 1e6
    rows.append({"library": "polars_metrics (labelbox)", "what": "errors() alone (counts)",
                 "seconds": t_lb, "parity": f"pairs kept: {len(pairs):,} = {mb:.1f} MB"})
    if "tidecv" in peers:
        t, res = _best(lambda: _tidecv(gt, pd, cat), 1)
        rows.append({"library": "tidecv", "what": "Data + evaluate + main errors", "seconds": t,
                     "parity": _parity(ours, res)})
    if "hotcoco" in peers:
        with tempfile.TemporaryDirectory() as tmp:
            gp, rp = _write_json(gt, pd, cat, Path(tmp))
            t, res = _best(lambda: _hotcoco(gp, rp), repeat)
        rows.append({"library": "hotcoco", "what": "load JSON + evaluate + tide_errors",
                     "seconds": t, "parity": _parity(ours, res)})
    for r in rows:
        r["ratio_vs_ours"] = r["seconds"] / t_ours if t_ours else float("nan")
    return rows


def markdown(rows: list[dict]) -> str:
    out = ["| library | what | seconds | × ours (coco, end to end) | parity |", "|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['library']} | {r['what']} | {r['seconds']:.3f} | "
                   f"{r['ratio_vs_ours']:.2f} | {r['parity']} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from benchmarks.generate import generate

    ap = argparse.ArgumentParser(prog="python -m benchmarks.errors", description=__doc__)
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--peers", default="tidecv,hotcoco")
    args = ap.parse_args(argv)
    ds = generate(args.images, seed=0)
    rows = run_errors_benchmark(ds.ground_truth, ds.predictions, repeat=args.repeat,
                                peers=tuple(p for p in args.peers.split(",") if p))
    print(f"{args.images} images, load average {os.getloadavg()}")
    print(markdown(rows))
    return 0 if all(r["parity"] in ("reference", "-") or not isinstance(r["parity"], dict)
                    or r["parity"]["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
