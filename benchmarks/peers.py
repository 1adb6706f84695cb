"""Adapters: the same Polars frames in, every tool's numbers out as dense numpy arrays.

Common layout so parity checks are plain array comparisons (``K = len(classes)``, the class
index is the position in ``classes``, index ``K`` is the None class):

* ``counts[c, t, k, j]``: j = 0 tp, 1 fp, 2 fn, per confidence threshold c, IoU threshold t.
* ``confusion[c, t, g, p]``: ground-truth class g × predicted class p, shape (K+1, K+1).

Conversions (frames → a peer's own objects) are separate functions so the runner can time
them apart from the peer's computation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(round(i / 10, 1) for i in range(11))


def class_index(frame: pl.DataFrame, classes: Sequence[str]) -> np.ndarray:
    return frame["feature"].cast(pl.Enum(list(classes))).to_physical().to_numpy().astype(np.int64)


def _groups(frame: pl.DataFrame, data_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start/end offsets of each data row in a frame sorted by data_row (stable)."""
    keys = frame["data_row"].to_numpy()
    return np.searchsorted(keys, data_rows, "left"), np.searchsorted(keys, data_rows, "right")


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    # stable: inside a data row the input order is kept (it is the tie order of SPEC §5)
    return frame.sort("data_row", maintain_order=True)


def all_data_rows(ground_truth: pl.DataFrame, predictions: pl.DataFrame) -> np.ndarray:
    return np.union1d(ground_truth["data_row"].to_numpy(), predictions["data_row"].to_numpy())


# --- supervision --------------------------------------------------------------------------------


def to_supervision(
    ground_truth: pl.DataFrame, predictions: pl.DataFrame, classes: Sequence[str]
) -> tuple[list[Any], list[Any]]:
    """One ``sv.Detections`` per data row (every row of either table), targets and predictions."""
    import supervision as sv

    gt, pd = _sorted(ground_truth), _sorted(predictions)
    rows = all_data_rows(gt, pd)
    gt_box = gt["bbox"].to_numpy().reshape(-1, 4)
    pd_box = pd["bbox"].to_numpy().reshape(-1, 4)
    gt_cls, pd_cls = class_index(gt, classes), class_index(pd, classes)
    pd_conf = pd["confidence"].fill_null(1.0).to_numpy()
    g0, g1 = _groups(gt, rows)
    p0, p1 = _groups(pd, rows)
    targets = [
        sv.Detections(xyxy=gt_box[a:b], class_id=gt_cls[a:b]) for a, b in zip(g0, g1, strict=True)
    ]
    preds = [
        sv.Detections(xyxy=pd_box[a:b], class_id=pd_cls[a:b], confidence=pd_conf[a:b])
        for a, b in zip(p0, p1, strict=True)
    ]
    return targets, preds


def supervision_confusion(
    targets: list[Any], preds: list[Any], classes: Sequence[str], confidence: float, iou: float
) -> np.ndarray:
    """``sv.ConfusionMatrix.from_detections`` for one cell; (K+1, K+1), last index = None."""
    import supervision as sv

    cm = sv.ConfusionMatrix.from_detections(
        predictions=preds,
        targets=targets,
        classes=list(classes),
        conf_threshold=confidence,
        iou_threshold=iou,
    )
    return np.asarray(cm.matrix, dtype=np.int64)


# --- valor-lite ---------------------------------------------------------------------------------


def to_valor(ground_truth: pl.DataFrame, predictions: pl.DataFrame) -> list[Any]:
    """One ``valor_lite`` ``Detection`` per data row (every row of either table)."""
    from valor_lite.object_detection import BoundingBox, Detection

    gt, pd = _sorted(ground_truth), _sorted(predictions)
    rows = all_data_rows(gt, pd)

    def boxes(frame: pl.DataFrame, scored: bool) -> list[Any]:
        b = frame["bbox"].to_numpy().reshape(-1, 4).tolist()
        ids = frame["id"].cast(pl.String).to_list()
        feats = frame["feature"].to_list()
        if scored:
            conf = frame["confidence"].fill_null(1.0).to_list()
            return [
                BoundingBox(uid=u, xmin=x0, xmax=x1, ymin=y0, ymax=y1, labels=[f], scores=[c])
                for u, (x0, y0, x1, y1), f, c in zip(ids, b, feats, conf, strict=True)
            ]
        return [
            BoundingBox(uid=u, xmin=x0, xmax=x1, ymin=y0, ymax=y1, labels=[f])
            for u, (x0, y0, x1, y1), f in zip(ids, b, feats, strict=True)
        ]

    gt_objs, pd_objs = boxes(gt, False), boxes(pd, True)
    g0, g1 = _groups(gt, rows)
    p0, p1 = _groups(pd, rows)
    return [
        Detection(uid=str(r), groundtruths=gt_objs[a:b], predictions=pd_objs[c:d])
        for r, a, b, c, d in zip(rows.tolist(), g0, g1, p0, p1, strict=True)
    ]


def valor_ingest(detections: list[Any]) -> Any:
    """Loader (IoU of every pair, the pairs cache) and ``finalize`` (sort + rank)."""
    from valor_lite.object_detection import Loader

    loader = Loader.in_memory()
    loader.add_bounding_boxes(detections)
    return loader.finalize()


def valor_metrics(
    evaluator: Any, confidences: Sequence[float], ious: Sequence[float]
) -> tuple[dict[Any, list[Any]], list[Any]]:
    """The precision/recall cube and the confusion matrices at every (score, IoU) cell."""
    pr = evaluator.compute_precision_recall(
        iou_thresholds=list(ious), score_thresholds=list(confidences)
    )
    cm = evaluator.compute_confusion_matrix(
        iou_thresholds=list(ious), score_thresholds=list(confidences)
    )
    return pr, cm


def valor_arrays(
    pr: dict[Any, list[Any]],
    cm: list[Any],
    classes: Sequence[str],
    confidences: Sequence[float],
    ious: Sequence[float],
) -> tuple[np.ndarray, np.ndarray]:
    """valor-lite's Metric objects → (counts, confusion) in the common layout."""
    from valor_lite.object_detection import MetricType

    k = len(classes)
    pos = {name: i for i, name in enumerate(classes)}
    ci = {float(c): i for i, c in enumerate(confidences)}
    ti = {float(t): i for i, t in enumerate(ious)}
    counts = np.zeros((len(confidences), len(ious), k, 3), dtype=np.int64)
    for m in pr[MetricType.Counts]:
        p = m.parameters
        c, t, lab = ci[float(p["score_threshold"])], ti[float(p["iou_threshold"])], pos[p["label"]]
        counts[c, t, lab] = (m.value["tp"], m.value["fp"], m.value["fn"])
    confusion = np.zeros((len(confidences), len(ious), k + 1, k + 1), dtype=np.int64)
    for m in cm:
        p = m.parameters
        c, t = ci[float(p["score_threshold"])], ti[float(p["iou_threshold"])]
        v = m.value
        for g, row in v["confusion_matrix"].items():
            for q, n in row.items():
                confusion[c, t, pos[g], pos[q]] = n
        for g, n in v["unmatched_ground_truths"].items():
            confusion[c, t, pos[g], k] = n
        for q, n in v["unmatched_predictions"].items():
            confusion[c, t, k, pos[q]] = n
    return counts, confusion


# --- ours ---------------------------------------------------------------------------------------


def ours_evaluate(
    ground_truth: pl.DataFrame,
    predictions: pl.DataFrame,
    confidences: Sequence[float] | None = None,
    ious: Sequence[float] | None = None,
) -> Any:
    """``pm.evaluate`` with every output frame materialized (what the benchmark times)."""
    return ours_evaluate_timed(ground_truth, predictions, confidences, ious)[0]


def ours_evaluate_timed(
    ground_truth: pl.DataFrame,
    predictions: pl.DataFrame,
    confidences: Sequence[float] | None = None,
    ious: Sequence[float] | None = None,
) -> tuple[Any, float, float]:
    """As ``ours_evaluate``; also seconds in the ``pm.evaluate`` call and in materializing
    the frames afterwards (non-zero if the Evaluation builds any of them lazily)."""
    import time

    import polars_metrics as pm

    t0 = time.perf_counter()
    ev = pm.evaluate(
        ground_truth,
        predictions,
        confidence_thresholds=None if confidences is None else list(confidences),
        iou_thresholds=None if ious is None else list(ious),
    )
    t1 = time.perf_counter()
    # touch the three frames the targets are about, in case any is built lazily
    _ = (ev.cube, ev.confusion, ev.data_rows)
    return ev, t1 - t0, time.perf_counter() - t1


def _threshold_index(values: pl.Series, grid: Sequence[float]) -> np.ndarray:
    g = np.asarray(grid, dtype=np.float64)
    v = values.to_numpy()
    idx = np.searchsorted(g, v)
    idx = np.clip(idx, 0, len(g) - 1)
    # pick the nearest grid point (outputs may carry 1e-9-rounded thresholds)
    left = np.clip(idx - 1, 0, len(g) - 1)
    idx = np.where(np.abs(g[left] - v) < np.abs(g[idx] - v), left, idx)
    if not np.allclose(g[idx], v, atol=1e-9, rtol=0):
        raise ValueError(f"threshold values {np.unique(v)} are not on the grid {g}")
    return idx


def ours_counts(
    cube: pl.DataFrame, classes: Sequence[str], confidences: Sequence[float], ious: Sequence[float]
) -> np.ndarray:
    """``ev.cube`` → counts[c, t, k, (tp, fp, fn)] (features absent from the cube count 0)."""
    k = len(classes)
    counts = np.zeros((len(confidences), len(ious), k, 3), dtype=np.int64)
    if cube.height == 0:
        return counts
    c = _threshold_index(cube["confidence_threshold"], confidences)
    t = _threshold_index(cube["iou_threshold"], ious)
    lab = class_index(cube, classes)
    for j, col in enumerate(("tp", "fp", "fn")):
        counts[c, t, lab, j] = cube[col].fill_null(0).to_numpy()
    return counts


def ours_confusion(
    confusion: pl.DataFrame,
    classes: Sequence[str],
    confidences: Sequence[float],
    ious: Sequence[float],
) -> np.ndarray:
    """``ev.confusion`` → confusion[c, t, g, p] with the None class at index K."""
    k = len(classes)
    out = np.zeros((len(confidences), len(ious), k + 1, k + 1), dtype=np.int64)
    if confusion.height == 0:
        return out
    enum = pl.Enum(list(classes))
    g = confusion["gt_feature"].cast(enum).to_physical().fill_null(k).to_numpy().astype(np.int64)
    p = confusion["pd_feature"].cast(enum).to_physical().fill_null(k).to_numpy().astype(np.int64)
    c = _threshold_index(confusion["confidence_threshold"], confidences)
    t = _threshold_index(confusion["iou_threshold"], ious)
    np.add.at(out, (c, t, g, p), confusion["count"].to_numpy().astype(np.int64))
    return out


def cell(grid: Sequence[float], value: float) -> int:
    """Index of ``value`` in a threshold grid (exact up to 1e-9)."""
    g = np.asarray(grid, dtype=np.float64)
    hit = np.flatnonzero(np.abs(g - value) < 1e-9)
    if hit.size != 1:
        raise ValueError(f"{value} is not in the threshold grid {list(grid)}")
    return int(hit[0])
