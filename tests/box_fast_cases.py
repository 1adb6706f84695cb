"""Random box datasets with the edge cases the fast box path must keep exact (issue 12):
IoU ties (boxes on a coarse integer grid), confidences exactly at thresholds, data rows with
only ground truth, only predictions, none at all (``data_rows=``), data rows listed out of
order and interleaved, rows set aside by ``on_invalid="drop"`` (so the prepared sides are
gathered views), several features.

``python tests/box_fast_cases.py`` writes the frames of today's implementation to
``tests/data/box_fast/`` (run once, at the commit before the fast path, to freeze them).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl

GOLDEN = Path(__file__).parent / "data" / "box_fast"
BOX = pl.Array(pl.Float64, 4)
FEATURES = ["cat", "dog", "eel"]
THRESHOLDS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
# (seed, evaluate keyword arguments)
CASES = [
    (0, {}),
    (1, {"class_aware": True}),
    (2, {"confidence_thresholds": [0.25, 0.5, 0.75], "iou_thresholds": [0.1, 0.5, 0.9]}),
    (3, {"iou_strict": False}),
    (4, {"on_invalid": "drop"}),
    (5, {}),
]


def _boxes(rng: np.random.Generator, n: int) -> list[list[float]]:
    x0 = rng.integers(0, 6, n)
    y0 = rng.integers(0, 6, n)
    w = rng.integers(1, 4, n)
    h = rng.integers(1, 4, n)
    return [[float(a), float(b), float(a + c), float(b + d)] for a, b, c, d in zip(x0, y0, w, h, strict=True)]


def case(seed: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(ground truth, predictions, data_rows) of one random case."""
    rng = np.random.default_rng(seed)
    gt_rows, pd_rows = [], []
    n_rows = 24
    for r in range(n_rows):
        kind = r % 6  # 0: gt only, 1: pd only, 2: neither (data_rows only), else both
        n_gt = 0 if kind in (1, 2) else int(rng.integers(1, 7))
        n_pd = 0 if kind in (0, 2) else int(rng.integers(1, 12))
        for i, b in enumerate(_boxes(rng, n_gt)):
            gt_rows.append((f"r{r:02d}", 100 * r + i, FEATURES[rng.integers(0, 3)], b))
        conf = np.where(rng.random(n_pd) < 0.4, rng.choice(THRESHOLDS, n_pd),
                        rng.random(n_pd).round(3))
        for i, (b, c) in enumerate(zip(_boxes(rng, n_pd), conf, strict=True)):
            pd_rows.append((f"r{r:02d}", 100 * r + i, FEATURES[rng.integers(0, 3)], b, float(c)))
    gt = pl.DataFrame(gt_rows, schema={"data_row": pl.String, "id": pl.Int64,
                                       "feature": pl.String, "bbox": BOX}, orient="row")
    pd = pl.DataFrame(pd_rows, schema={"data_row": pl.String, "id": pl.Int64,
                                       "feature": pl.String, "bbox": BOX,
                                       "confidence": pl.Float64}, orient="row")
    # out of order and interleaved: the prepared sides are gathered, not views
    gt = gt.sample(fraction=1.0, shuffle=True, seed=seed)
    pd = pd[np.argsort(rng.random(pd.height) + (pd["data_row"] == "r03").to_numpy())]
    if seed == 4:  # invalid rows, set aside under on_invalid="drop"
        pd = pd.with_columns(pl.when(pl.int_range(pl.len()) % 7 == 3).then(1.5)
                             .otherwise(pl.col("confidence")).alias("confidence"))
    data_rows = pl.DataFrame({"data_row": [f"r{r:02d}" for r in range(n_rows)]})
    return gt, pd, data_rows


def frames(ev) -> dict[str, pl.DataFrame]:
    return {"cube": ev.cube, "confusion": ev.confusion, "data_rows": ev.data_rows,
            "overall": ev.overall, "excluded": ev.excluded}


def write_golden() -> None:
    import polars_metrics as pm

    GOLDEN.mkdir(parents=True, exist_ok=True)
    for seed, kwargs in CASES:
        gt, pd, data_rows = case(seed)
        ev = pm.evaluate(gt, pd, data_rows=data_rows, **kwargs)
        for name, frame in frames(ev).items():
            frame.write_parquet(GOLDEN / f"{seed}_{name}.parquet")


if __name__ == "__main__":
    sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else ".")
    write_golden()
