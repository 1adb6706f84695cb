"""``pm.labelbox_sdk`` against the Labelbox SDK's metric functions, rows per second.

Same data for both: data rows with 10 ground-truth and 10 predicted boxes each, 3 classes
(predictions are jittered copies of the ground truths, some relabeled, some random).
The SDK runs ``feature_confusion_matrix_metric``, ``confusion_matrix_metric``,
``feature_miou_metric`` and ``miou_metric`` once per data row on prebuilt annotation objects
(building them is not timed); ours runs :func:`polars_metrics.labelbox_sdk.metrics` (all four
frames) on the frames. Parity of every value is checked before any timing; single process
(``NUMBA_NUM_THREADS=1``, ``POLARS_MAX_THREADS=1`` are set unless already given); the machine
may be shared, so each figure is the minimum over repeats.

Run ``python -m benchmarks.labelbox_sdk`` (``--sdk-rows``, ``--rows``, ``--repeat``).
"""
from __future__ import annotations

import os

if __name__ == "__main__":  # run as the benchmark: one thread each, before numba and polars load.
    # Only then: an importer (``benchmarks.first_call``, the tests) keeps its environment, since
    # numba refuses to compile once NUMBA_NUM_THREADS changes after its threads started.
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    os.environ.setdefault("POLARS_MAX_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

BOXES_PER_SIDE = 10
CLASSES = ("car", "bus", "person")
TARGET_RATIO = 500.0


def generate(n_rows: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(gt, pd) frames: ``data_row``, ``id``, ``feature``, ``bbox``; coordinates on a 1/64 grid."""
    rng = np.random.default_rng(seed)
    k = BOXES_PER_SIDE
    n = n_rows * k
    xy = rng.integers(0, 520 * 64, (n, 2)) / 64
    wh = rng.integers(20 * 64, 120 * 64, (n, 2)) / 64
    gt_box = np.hstack([xy, xy + wh])
    gt_cls = rng.integers(0, len(CLASSES), n)
    jitter = rng.integers(-6 * 64, 7 * 64, (n, 4)) / 64
    pd_box = gt_box + jitter
    pd_box[:, 2:] = np.maximum(pd_box[:, 2:], pd_box[:, :2] + 1)
    rand = rng.random(n) < 0.2  # some predictions anywhere
    pd_box[rand] = gt_box[rng.permutation(n)[: rand.sum()]]
    pd_cls = np.where(rng.random(n) < 0.1, rng.integers(0, len(CLASSES), n), gt_cls)
    order = np.argsort(rng.random((n_rows, k)), axis=1) + np.arange(n_rows)[:, None] * k
    pd_box, pd_cls = pd_box[order.ravel()], pd_cls[order.ravel()]  # predictions in random order
    rows = np.repeat(np.array([f"dr{i:07d}" for i in range(n_rows)]), k)
    names = np.array(CLASSES)

    def frame(boxes, cls, prefix):
        return pl.DataFrame({
            "data_row": rows, "id": [f"{prefix}{i}" for i in range(n)], "feature": names[cls],
            "bbox": boxes,
        }, schema_overrides={"bbox": pl.Array(pl.Float64, 4)})
    return frame(gt_box, gt_cls, "g"), frame(pd_box, pd_cls, "p")


def sdk_objects(gt: pl.DataFrame, pd: pl.DataFrame) -> dict:
    from labelbox.data.annotation_types import ObjectAnnotation, Point, Rectangle

    def objs(frame):
        out: dict[str, list] = {}
        for dr, feat, b in frame.select("data_row", "feature", "bbox").iter_rows():
            out.setdefault(dr, []).append(ObjectAnnotation(
                name=feat, value=Rectangle(start=Point(x=b[0], y=b[1]), end=Point(x=b[2], y=b[3]))))
        return out
    g, p = objs(gt), objs(pd)
    return {dr: (g.get(dr, []), p.get(dr, [])) for dr in sorted(set(g) | set(p))}


def run_sdk(rows: dict, iou: float = 0.5, only_confusion: bool = False):
    from labelbox.data.metrics import (
        confusion_matrix_metric,
        feature_confusion_matrix_metric,
        feature_miou_metric,
        miou_metric,
    )

    out = []
    for dr, (g, p) in rows.items():
        fcm = feature_confusion_matrix_metric(g, p, iou=iou)
        if only_confusion:
            out.append((dr, fcm))
            continue
        out.append((dr, fcm, confusion_matrix_metric(g, p, iou=iou),
                    feature_miou_metric(g, p, include_subclasses=False), miou_metric(g, p)))
    return out


def check_parity(ours, sdk_out) -> int:
    """Every per-feature and per-row value, to 1e-9; returns the number of values compared."""
    fcm = {(r[0], r[1]): r[2:] for r in ours.feature_confusion_matrix.rows()}
    cm = {r[0]: r[1:] for r in ours.confusion_matrix.rows()}
    fmi = {(r[0], r[1]): r[2] for r in ours.feature_miou.rows()}
    mi = {r[0]: r[1] for r in ours.miou.rows()}
    n = 0
    for dr, s_fcm, s_cm, s_fmi, s_mi in sdk_out:
        for m in s_fcm:
            assert tuple(fcm.pop((dr, m.feature_name))) == tuple(m.value), (dr, m.feature_name)
            n += 4
        assert tuple(cm.pop(dr)) == tuple(s_cm[0].value), dr
        for m in s_fmi:
            assert abs(fmi.pop((dr, m.feature_name)) - m.value) <= 1e-9, (dr, m.feature_name)
            n += 1
        assert abs(mi.pop(dr) - s_mi[0].value) <= 1e-9, dr
        n += 5
    assert not (fcm or cm or fmi or mi), "ours has values the SDK does not"
    return n


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run_labelbox_benchmark(sdk_rows: int = 200, rows: tuple[int, ...] = (200, 2_000, 20_000),
                           repeat: int = 3, seed: int = 0) -> list[dict]:
    """Rows per second of the SDK and of ``pm.labelbox_sdk`` on the same data, parity first.

    Returns one dict per measurement: ``impl``, ``what``, ``rows``, ``seconds`` (min of
    ``repeat``), ``rows_per_s``, ``ratio`` (ours / SDK rows per second, same functions).
    """
    import polars_metrics as pm

    gt, pd = generate(max(sdk_rows, *rows), seed)
    few = pl.Series(gt["data_row"].unique(maintain_order=True).head(sdk_rows))
    gt_few, pd_few = gt.filter(pl.col("data_row").is_in(few.implode())), pd.filter(pl.col("data_row").is_in(few.implode()))
    objects = sdk_objects(gt_few, pd_few)

    t0 = time.perf_counter()
    ours_few = pm.labelbox_sdk.metrics(gt_few, pd_few)  # first call: numba compile or cache load
    cold = time.perf_counter() - t0
    n_values = check_parity(ours_few, run_sdk(objects))

    results = []
    sdk_all = _best(lambda: run_sdk(objects), repeat)
    sdk_fcm = _best(lambda: run_sdk(objects, only_confusion=True), repeat)
    results.append(dict(impl="labelbox SDK", what="all four metrics", rows=sdk_rows,
                        seconds=sdk_all, rows_per_s=sdk_rows / sdk_all, ratio=1.0))
    results.append(dict(impl="labelbox SDK", what="feature confusion matrix", rows=sdk_rows,
                        seconds=sdk_fcm, rows_per_s=sdk_rows / sdk_fcm, ratio=1.0))
    results.append(dict(impl="polars_metrics", what="all four metrics (first call)", rows=sdk_rows,
                        seconds=cold, rows_per_s=sdk_rows / cold, ratio=(sdk_rows / cold) / (sdk_rows / sdk_all)))
    row_ids = gt["data_row"].unique(maintain_order=True)
    for n in rows:
        keep = row_ids.head(n).implode()
        g, p = gt.filter(pl.col("data_row").is_in(keep)), pd.filter(pl.col("data_row").is_in(keep))
        t_all = _best(lambda g=g, p=p: pm.labelbox_sdk.metrics(g, p), repeat)
        t_fcm = _best(lambda g=g, p=p: pm.labelbox_sdk.feature_confusion_matrix(g, p), repeat)
        results.append(dict(impl="polars_metrics", what="all four metrics", rows=n, seconds=t_all,
                            rows_per_s=n / t_all, ratio=(n / t_all) / (sdk_rows / sdk_all)))
        results.append(dict(impl="polars_metrics", what="feature confusion matrix", rows=n,
                            seconds=t_fcm, rows_per_s=n / t_fcm, ratio=(n / t_fcm) / (sdk_rows / sdk_fcm)))
    for r in results:
        r["parity_values_checked"] = n_values
        r["threads"] = f"numba {os.environ.get('NUMBA_NUM_THREADS')}, polars {os.environ.get('POLARS_MAX_THREADS')}"
    return results


def format_table(results: list[dict]) -> str:
    lines = ["| implementation | what | data rows | seconds (min) | rows / s | × SDK |",
             "|---|---|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['impl']} | {r['what']} | {r['rows']:,} | {r['seconds']:.4f} | "
                     f"{r['rows_per_s']:,.0f} | {r['ratio']:,.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.labelbox_sdk", description=__doc__)
    ap.add_argument("--sdk-rows", type=int, default=200)
    ap.add_argument("--rows", default="200,2000,20000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    results = run_labelbox_benchmark(args.sdk_rows, tuple(int(x) for x in args.rows.split(",")),
                                     args.repeat, args.seed)
    print(format_table(results))
    best = max(r["ratio"] for r in results if r["impl"] == "polars_metrics" and "first" not in r["what"])
    print(f"\nparity: {results[0]['parity_values_checked']:,} values equal to the SDK's; "
          f"best ratio {best:,.0f}× (target {TARGET_RATIO:,.0f}×)")
    return 0 if best >= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
