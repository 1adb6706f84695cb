"""Label-error queues against injected errors: ``ev.suspects`` vs cleanlab and hotcoco.

    python -m benchmarks suspects                   # = python -m benchmarks.suspects
    python -m benchmarks suspects --images 2000 --rate 0.05 --seed 0

Synthetic data: clean labels; a "model" predicts from the *clean* labels with noise (90 % of
objects found, box jitter, 7 % class confusions, background false positives, confidences
higher for right answers); then the labels are corrupted: a share ``--rate`` of the ground
truths each get a class swap, a deletion, or a shifted box (IoU with the clean box ~0.1-0.4).

Per method, precision@k and recall@k against the injected errors, at k = the number of
injected errors (and 2k):

Precision@k is over the rows a method returns when its queue is shorter than k.

* annotation level: a queue row hits an error when it names the corrupted ground truth, or a
  prediction made from it (a deleted ground truth is only findable through its prediction).
  Ours (``ev.suspects``, score order) and hotcoco (``COCOeval.image_diagnostics``
  ``label_errors``, by detection score); cleanlab scores images, not boxes.
* image level: an image holds an error or not; images ranked by the best row of ours / hotcoco
  per image, and by cleanlab's ``get_label_quality_scores`` (ascending);
  ``find_label_issues`` gives cleanlab's flagged set.

The same injection for NER spans (swapped entity types, deleted spans) and radio
classifications (flipped answers) runs through ``ev.suspects`` only (the peers score boxes).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl

BOX = pl.Array(pl.Float64, 4)
CLASSES = ("car", "person", "dog", "cat", "bike")
W, H = 640.0, 480.0


# --- detection data ----------------------------------------------------------------------------
def detection(n_images: int, rate: float, seed: int):
    rng = np.random.default_rng(seed)
    gts, pds = [], []
    for img in range(n_images):
        for _ in range(rng.integers(1, 9)):
            w, h = rng.uniform(20, 160), rng.uniform(20, 160)
            x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
            c = int(rng.integers(len(CLASSES)))
            gid = len(gts)
            gts.append([img, gid, c, x, y, x + w, y + h])
            if rng.random() < 0.9:
                jit = rng.normal(0, 0.04, 4) * [w, h, w, h]
                right = rng.random() >= 0.07
                pc = c if right else int(rng.choice([k for k in range(len(CLASSES)) if k != c]))
                conf = rng.beta(6, 2) if right else rng.beta(3, 3)
                pds.append([img, len(pds), pc, x + jit[0], y + jit[1], x + w + jit[2],
                            y + h + jit[3], conf, gid])
        for _ in range(rng.poisson(0.7)):  # background false positives
            w, h = rng.uniform(20, 120), rng.uniform(20, 120)
            x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
            pds.append([img, len(pds), int(rng.integers(len(CLASSES))), x, y, x + w, y + h,
                        rng.beta(2, 5), -1])
    gt = np.array(gts, dtype=np.float64)
    pd = np.array(pds, dtype=np.float64)
    n = gt.shape[0]
    chosen = rng.choice(n, size=3 * int(round(rate * n)), replace=False)
    swap, delete, shift = np.array_split(chosen, 3)
    for i in swap:
        gt[i, 2] = (gt[i, 2] + rng.integers(1, len(CLASSES))) % len(CLASSES)
    for i in shift:  # move by 45-75 % of the width: IoU with the clean box ~0.14-0.38
        w = gt[i, 5] - gt[i, 3]
        d = w * rng.uniform(0.45, 0.75) * rng.choice([-1, 1])
        gt[i, [3, 5]] += d
    kind = {int(i): "swap" for i in swap} | {int(i): "delete" for i in delete} | \
        {int(i): "shift" for i in shift}
    keep = np.setdiff1d(np.arange(n), delete)
    return gt[keep], pd, kind


def frames(gt: np.ndarray, pd: np.ndarray):
    names = pl.Series(CLASSES)
    g = pl.DataFrame({"data_row": gt[:, 0].astype(np.int64), "id": gt[:, 1].astype(np.int64),
                      "feature": names.gather(gt[:, 2].astype(np.int64)),
                      "bbox": gt[:, 3:7]}, schema_overrides={"bbox": BOX})
    p = pl.DataFrame({"data_row": pd[:, 0].astype(np.int64), "id": pd[:, 1].astype(np.int64),
                      "feature": names.gather(pd[:, 2].astype(np.int64)),
                      "bbox": pd[:, 3:7], "confidence": pd[:, 7]}, schema_overrides={"bbox": BOX})
    return g, p


def hits(rows: list[tuple], source: dict[int, int], kind: dict[int, str]) -> list[int | None]:
    """Per queue row (gt_id, pd_id): the injected error it names, or None."""
    out = []
    for g, p in rows:
        if g is not None and int(g) in kind:
            out.append(int(g))
        elif p is not None and source.get(int(p), -1) in kind:
            out.append(source[int(p)])
        else:
            out.append(None)
    return out


def at_k(found: list, n_errors: int, k: int) -> tuple[float, float]:
    top = found[:k]  # a queue shorter than k: precision over the rows it gives
    hit = [h for h in top if h is not None]
    return len(hit) / max(len(top), 1), len(set(hit)) / max(n_errors, 1)


def image_at_k(ranked_images: list[int], bad: set[int], k: int) -> tuple[float, float]:
    top = ranked_images[:k]
    tp = len([i for i in top if i in bad])
    return tp / max(k, 1), tp / max(len(bad), 1)


def run_ours(gt, pd):
    import polars_metrics as pm

    t0 = time.perf_counter()
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0, 0.5], iou_thresholds=[0.1, 0.5])
    q = ev.suspects(0.5, 0.5)
    return q, time.perf_counter() - t0


def run_hotcoco(gt_np, pd_np, n_images):
    import hotcoco

    images = [{"id": i + 1, "width": W, "height": H} for i in range(n_images)]
    cats = [{"id": k + 1, "name": n} for k, n in enumerate(CLASSES)]
    anns = [{"id": int(r[1]) + 1, "image_id": int(r[0]) + 1, "category_id": int(r[2]) + 1,
             "bbox": [r[3], r[4], r[5] - r[3], r[6] - r[4]],
             "area": (r[5] - r[3]) * (r[6] - r[4]), "iscrowd": 0} for r in gt_np]
    dets = [{"id": int(r[1]) + 1, "image_id": int(r[0]) + 1, "category_id": int(r[2]) + 1,
             "bbox": [r[3], r[4], r[5] - r[3], r[6] - r[4]], "score": float(r[7])} for r in pd_np]
    t0 = time.perf_counter()
    coco = hotcoco.COCO({"images": images, "categories": cats, "annotations": anns})
    ev = hotcoco.COCOeval(coco, coco.loadRes(dets), "bbox")
    ev.evaluate()
    diag = ev.image_diagnostics(iou_thr=0.5, score_thr=0.5)
    seconds = time.perf_counter() - t0
    errs = sorted(diag["label_errors"], key=lambda e: -e["dt_score"])
    # loadRes numbers detections 1..n in input order; the input order is our pd id order
    rows = [(None if e["gt_id"] is None else e["gt_id"] - 1,
             None if e["dt_id"] is None else e["dt_id"] - 1) for e in errs]
    return rows, [e["image_id"] - 1 for e in errs], [e["dt_score"] for e in errs], seconds


def run_cleanlab(gt_np, pd_np, n_images):
    from cleanlab.object_detection.filter import find_label_issues
    from cleanlab.object_detection.rank import get_label_quality_scores

    labels, preds = [], []
    g_img, p_img = gt_np[:, 0].astype(int), pd_np[:, 0].astype(int)
    for i in range(n_images):
        g = gt_np[g_img == i]
        labels.append({"bboxes": g[:, 3:7].astype(np.float32), "labels": g[:, 2].astype(int)})
        p = pd_np[p_img == i]
        preds.append([p[p[:, 2] == k][:, [3, 4, 5, 6, 7]].astype(np.float32)
                      for k in range(len(CLASSES))])
    t0 = time.perf_counter()
    scores = get_label_quality_scores(labels, preds)
    flagged = find_label_issues(labels, preds)
    return np.argsort(scores, kind="stable").tolist(), int(flagged.sum()), time.perf_counter() - t0


def bench_detection(args) -> list[dict]:
    gt_np, pd_np, kind = detection(args.images, args.rate, args.seed)
    gt, pd = frames(gt_np, pd_np)
    source = {int(r[1]): int(r[8]) for r in pd_np if r[8] >= 0}
    n_err = len(kind)
    # every injected error's image, from the clean labels (deleted ones included)
    img_of_gt = {int(r[8]): int(r[0]) for r in pd_np if r[8] >= 0}
    img_of_gt |= {int(r[1]): int(r[0]) for r in gt_np}
    bad_images = {img_of_gt[g] for g in kind if g in img_of_gt}
    out = []
    q, secs = run_ours(gt, pd)
    rows = list(zip(q["gt_id"].to_list(), q["pd_id"].to_list(), strict=True))
    found = hits(rows, source, kind)
    img_rank = q.group_by("data_row", maintain_order=True).agg(pl.col("score").max()).sort(
        "score", descending=True, maintain_order=True)["data_row"].to_list()
    out.append(_row("boxes", "polars_metrics suspects", found, n_err, img_rank, bad_images, secs,
                    len(rows)))
    try:
        h_rows, h_imgs, _, hsecs = run_hotcoco(gt_np, pd_np, args.images)
        h_found = hits(h_rows, source, kind)
        h_rank = list(dict.fromkeys(h_imgs))
        out.append(_row("boxes", "hotcoco image_diagnostics", h_found, n_err, h_rank, bad_images,
                        hsecs, len(h_rows)))
    except ImportError as e:
        print(f"hotcoco skipped: {e}")
    try:
        c_rank, c_flagged, csecs = run_cleanlab(gt_np, pd_np, args.images)
        out.append(_row("boxes", "cleanlab find_label_issues", None, n_err, c_rank, bad_images,
                        csecs, c_flagged))
    except ImportError as e:
        print(f"cleanlab skipped: {e}")
    by_type = {}
    for t in ("swap", "delete", "shift"):
        ids = {g for g, v in kind.items() if v == t}
        by_type[t] = len({h for h in found if h in ids}) / max(len(ids), 1)
    out[0]["recall by type (whole queue)"] = ", ".join(f"{t} {v:.2f}" for t, v in by_type.items())
    return out


def _row(data, method, found, n_err, img_rank, bad, secs, n_rows) -> dict:
    r = {"data": data, "method": method, "errors": n_err, "queue": n_rows,
         "seconds": round(secs, 3)}
    for mult in (1, 2):
        k = mult * n_err
        p, rc = at_k(found, n_err, k) if found is not None else (None, None)
        r[f"P@{mult}k"], r[f"R@{mult}k"] = p, rc
    kb = len(bad)
    r["img P@k"], r["img R@k"] = image_at_k(img_rank, bad, kb)
    return r


# --- spans and classifications -----------------------------------------------------------------
def spans(n_rows: int, rate: float, seed: int):
    rng = np.random.default_rng(seed)
    types = ("PER", "ORG", "LOC", "DATE")
    gts, pds = [], []
    for r in range(n_rows):
        pos = 0
        while pos < 400:
            pos += int(rng.integers(5, 40))
            ln = int(rng.integers(3, 15))
            t = int(rng.integers(4))
            gid = len(gts)
            gts.append((r, gid, types[t], pos, pos + ln))
            if rng.random() < 0.9:
                right = rng.random() >= 0.05
                pt = t if right else (t + 1) % 4
                s0 = pos + int(rng.integers(-1, 2)) * (rng.random() < 0.2)
                pds.append((r, len(pds), types[pt], s0, pos + ln,
                            rng.beta(6, 2) if right else rng.beta(3, 3), gid))
            pos += ln
    n = len(gts)
    chosen = rng.choice(n, size=2 * int(round(rate * n)), replace=False)
    swap, delete = np.array_split(chosen, 2)
    kind = {int(i): "swap" for i in swap} | {int(i): "delete" for i in delete}
    gts = [(r, g, types[(types.index(t) + 1) % 4] if g in kind and kind[g] == "swap" else t, s, e)
           for r, g, t, s, e in gts if kind.get(g) != "delete"]
    gt = pl.DataFrame(gts, schema=["data_row", "id", "feature", "start", "end"], orient="row")
    pd = pl.DataFrame([p[:6] for p in pds],
                      schema=["data_row", "id", "feature", "start", "end", "confidence"], orient="row")
    return gt, pd, {p[1]: p[6] for p in pds}, kind


def radio(n_rows: int, rate: float, seed: int):
    rng = np.random.default_rng(seed)
    answers = ("yes", "no", "unsure")
    gts, pds = [], []
    for r in range(n_rows):
        for q in range(3):
            a = int(rng.integers(3))
            gid = len(gts)
            right = rng.random() >= 0.1
            pa = a if right else (a + 1) % 3
            gts.append((r, gid, f"q{q}", answers[a]))
            pds.append((r, gid, f"q{q}", answers[pa], rng.beta(6, 2) if right else rng.beta(2, 3)))
    flip = set(rng.choice(len(gts), size=int(round(rate * len(gts))), replace=False).tolist())
    gts = [(r, g, q, answers[(answers.index(a) + 1) % 3] if g in flip else a) for r, g, q, a in gts]
    gt = pl.DataFrame(gts, schema=["data_row", "id", "question", "answer"], orient="row")
    pd = pl.DataFrame(pds, schema=["data_row", "id", "question", "answer", "confidence"],
                      orient="row")
    kind = {g: "flip" for g in flip}
    return (gt.with_columns(kind=pl.lit("radio")), pd.with_columns(kind=pl.lit("radio")),
            {g: g for g in range(len(pds))}, kind)


def bench_other(args) -> list[dict]:
    import polars_metrics as pm

    out = []
    for data, make in (("NER spans", spans), ("radio", radio)):
        gt, pd, source, kind = make(args.images, args.rate, args.seed)
        t0 = time.perf_counter()
        q = pm.evaluate(gt, pd, confidence_thresholds=[0.0, 0.5],
                        iou_thresholds=[0.1, 0.5]).suspects(0.5, 0.5)
        secs = time.perf_counter() - t0
        found = hits(list(zip(q["gt_id"].to_list(), q["pd_id"].to_list(), strict=True)),
                     source, kind)
        bad = set()
        rows_of = dict(zip(gt["id"].to_list(), gt["data_row"].to_list(), strict=True))
        pd_rows = dict(zip(pd["id"].to_list(), pd["data_row"].to_list(), strict=True))
        inv = {v: k for k, v in source.items()}
        for g in kind:
            bad.add(rows_of.get(g, pd_rows.get(inv.get(g, -1), -1)))
        bad.discard(-1)
        img_rank = q.group_by("data_row", maintain_order=True).agg(pl.col("score").max()).sort(
            "score", descending=True, maintain_order=True)["data_row"].to_list()
        out.append(_row(data, "polars_metrics suspects", found, len(kind), img_rank, bad, secs,
                        q.height))
    return out


def table(rows: list[dict]) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))

    def fmt(v):
        return "—" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks suspects", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=2000, help="images / documents / data rows")
    ap.add_argument("--rate", type=float, default=0.05,
                    help="share of ground truths corrupted per error type")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rows = bench_detection(args) + bench_other(args)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
