"""Hypothesis strategies for box datasets that hit the edges of SPEC §2 and §5.

Coordinates live on a half-unit grid, so every area, intersection and union is exact in
float64 and any correct IoU formula gives the same double: ties are real ties, and an IoU of
exactly 0.5 (gt (0,0,10,10) vs pd (0,0,10,5)) really is 0.5. Pools of boxes per data row make
duplicate boxes and symmetric layouts (tied IoUs) common. Also generated: zero-area boxes,
rows with only ground truth or only predictions, features on one side only, empty tables,
null confidences, confidences exactly at (or one ulp around) a threshold, threshold lists from
``np.linspace`` / unsorted with duplicates / differing only below 1e-9, Int64, String and
composite data-row keys, explicit or generated ids, and a ``split`` slice column.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from hypothesis import strategies as st

BBOX = pl.Array(pl.Float64, 4)


def n_examples(n: int) -> int:
    """Hypothesis example count, scaled by $PM_EXAMPLES_SCALE (e.g. 10 for a long soak run)."""
    return max(1, int(n * float(os.environ.get("PM_EXAMPLES_SCALE", "1"))))


FEATURES = ["cat", "dog", "eel", "fox"]

# Threshold values that stress rounding and equality with exact IoUs / confidences.
SPECIAL_THRESHOLDS = [
    0.0, 0.1, 0.2, 0.25, 0.3, 0.1 + 0.2, 1 / 3, 0.4, 0.5, 0.6, 2 / 3, 0.7, 0.75, 0.8,
    0.9, 1.0, 0.300000001, 0.3000000001, 0.30000000004, math.nextafter(0.5, 1.0), math.nextafter(0.5, 0.0),
]
SPECIAL_CONFIDENCES = [
    None, None, 0.0, 0.1, 0.2, 0.3, 0.1 + 0.2, 0.5, 0.6, 0.7, 0.9, 1.0,
    math.nextafter(0.5, 0.0), math.nextafter(0.5, 1.0), math.nextafter(0.3, 0.0),
    *np.linspace(0, 1, 11).tolist(),
]


# --------------------------------------------------------------------------------------------
# Boxes
# --------------------------------------------------------------------------------------------

half = st.integers(0, 24).map(lambda v: v / 2)  # 0.0, 0.5, ..., 12.0
extent = st.sampled_from([0, 0, 1, 1, 2, 2, 3, 4, 5, 6, 8, 10]).map(float)


@st.composite
def grid_boxes(draw) -> tuple[float, float, float, float]:
    """A box on the half-unit grid; width or height 0 now and then (zero-area box)."""
    x0, y0 = draw(half), draw(half)
    w, h = draw(extent), draw(extent)
    return (x0, y0, x0 + w, y0 + h)


def derived_box(base: tuple, how: str) -> tuple:
    """A box related to ``base`` by a known IoU pattern."""
    x0, y0, x1, y1 = base
    w, h = x1 - x0, y1 - y0
    if how == "same":
        return base
    if how == "top_half":  # IoU exactly 0.5 when the base has area
        return (x0, y0, x1, y0 + h / 2)
    if how == "left_half":
        return (x0, y0, x0 + w / 2, y1)
    if how == "shift_right":  # mirror images of each other -> tied IoUs
        return (x0 + 1, y0, x1 + 1, y1)
    if how == "shift_left":
        return (x0 - 1, y0, x1 - 1, y1)
    if how == "grow":
        return (x0 - 1, y0 - 1, x1 + 1, y1 + 1)
    if how == "quarter":  # IoU 0.25
        return (x0, y0, x0 + w / 2, y0 + h / 2)
    if how == "flat":  # zero-area box inside the base
        return (x0, y0, x1, y0)
    raise ValueError(how)


DERIVATIONS = ["same", "top_half", "left_half", "shift_right", "shift_left", "grow", "quarter",
               "flat"]


@st.composite
def row_boxes(draw, pool: list[tuple]) -> tuple:
    choice = draw(st.sampled_from(["pool", "pool", "derived", "derived", "fresh"]))
    if choice == "pool":
        return draw(st.sampled_from(pool))
    if choice == "derived":
        return derived_box(draw(st.sampled_from(pool)), draw(st.sampled_from(DERIVATIONS)))
    return draw(grid_boxes())


# --------------------------------------------------------------------------------------------
# Thresholds and confidences
# --------------------------------------------------------------------------------------------


def thresholds() -> st.SearchStrategy:
    """None (defaults), np.linspace arrays, unsorted lists with duplicates, random floats."""
    return st.one_of(
        st.just(None),
        st.integers(1, 21).map(lambda n: np.linspace(0.0, 1.0, n) if n > 1 else np.array([0.5])),
        st.lists(st.sampled_from(SPECIAL_THRESHOLDS), min_size=1, max_size=7),
        st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4),
        st.sampled_from([[0.0], [1.0], [0.5], [0.0, 1.0], [0.5, 0.51, 0.52, 0.55, 0.6]]),
    )


confidences = st.one_of(st.sampled_from(SPECIAL_CONFIDENCES), st.floats(0.0, 1.0))


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------


@dataclass
class Dataset:
    """Two input tables plus the keyword arguments of ``evaluate`` (``kwargs``)."""

    gt: pl.DataFrame
    pd: pl.DataFrame
    kwargs: dict = field(default_factory=dict)

    def __repr__(self) -> str:  # what Hypothesis prints for a falsifying example
        def show(v):
            if isinstance(v, np.ndarray):
                return f"np.array({v.tolist()!r})"
            if isinstance(v, pl.DataFrame):
                return f"pl.DataFrame({v.to_dicts()!r}, schema={dict(v.schema)!r})"
            return repr(v)

        kwargs = ", ".join(f"{k}={show(v)}" for k, v in self.kwargs.items())
        return (
            f"Dataset(\n  gt=pl.DataFrame({self.gt.to_dicts()!r},\n    schema={dict(self.gt.schema)!r}),"
            f"\n  pd=pl.DataFrame({self.pd.to_dicts()!r},\n    schema={dict(self.pd.schema)!r}),"
            f"\n  kwargs=dict({kwargs}))"
        )

    def _repr_pretty_(self, printer, cycle) -> None:  # Hypothesis' pretty printer
        printer.text(repr(self))

    @property
    def keys(self) -> list[str]:
        key = self.kwargs.get("data_row", "data_row")
        return [key] if isinstance(key, str) else list(key)


def _key_values(key_kind: str, i: int) -> dict:
    if key_kind == "int":
        return {"data_row": 7 * i - 3}
    if key_kind == "str":
        return {"data_row": f"img-{i:03d}"}
    return {"video": f"v{i % 2}", "frame": i // 2}


def _key_schema(key_kind: str) -> dict:
    if key_kind == "int":
        return {"data_row": pl.Int64}
    if key_kind == "str":
        return {"data_row": pl.String}
    return {"video": pl.String, "frame": pl.Int64}


@st.composite
def datasets(
    draw,
    *,
    max_rows: int = 6,
    max_gt: int = 4,
    max_pd: int = 5,
    key_kinds=("int", "str", "composite"),
    ids=("generated", "int", "str"),
    by_modes=("none", "none", "table", "data_rows"),
    shuffle_table: bool = True,
    with_thresholds: bool = True,
    coordinates: str = "grid",
) -> Dataset:
    """A box dataset. ``coordinates="continuous"`` draws tie-free random boxes instead."""
    key_kind = draw(st.sampled_from(key_kinds))
    id_mode = draw(st.sampled_from(ids))
    by_mode = draw(st.sampled_from(by_modes))
    gt_features = draw(st.lists(st.sampled_from(FEATURES), min_size=1, max_size=3, unique=True))
    pd_features = draw(st.lists(st.sampled_from(FEATURES), min_size=1, max_size=3, unique=True))
    n_rows = draw(st.integers(0, max_rows))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    gt_records, pd_records, row_meta = [], [], []
    for i in range(n_rows):
        key = _key_values(key_kind, i)
        split = draw(st.sampled_from(["train", "val"]))
        row_meta.append({**key, "split": split})
        n_gt = draw(st.integers(0, max_gt))
        n_pd = draw(st.integers(0 if n_gt else 1, max_pd))  # every row is in some table
        if coordinates == "grid":
            pool = draw(st.lists(grid_boxes(), min_size=1, max_size=3))
            box_strategy = row_boxes(pool)
        else:
            box_strategy = st.builds(lambda: _continuous_box(rng))
        gt_ids = draw(st.lists(st.integers(0, 50), min_size=n_gt, max_size=n_gt, unique=True))
        pd_ids = draw(st.lists(st.integers(0, 50), min_size=n_pd, max_size=n_pd, unique=True))
        for k in range(n_gt):
            gt_records.append({**key, "split": split, "feature": draw(st.sampled_from(gt_features)),
                               "bbox": list(draw(box_strategy)), "id": gt_ids[k]})
        for k in range(n_pd):
            conf = draw(confidences) if coordinates == "grid" else float(rng.uniform(0, 1))
            pd_records.append({**key, "split": split, "feature": draw(st.sampled_from(pd_features)),
                               "bbox": list(draw(box_strategy)), "id": pd_ids[k],
                               "confidence": conf})

    if shuffle_table:  # interleave data rows in the tables
        if draw(st.booleans()):
            gt_records = draw(st.permutations(gt_records))
        if draw(st.booleans()):
            pd_records = draw(st.permutations(pd_records))

    key_schema = _key_schema(key_kind)
    id_dtype = pl.String if id_mode == "str" else pl.Int64
    base = {**key_schema, "split": pl.String, "feature": pl.String, "bbox": BBOX, "id": id_dtype}
    if id_mode == "str":
        for rec in gt_records + pd_records:
            rec["id"] = f"a{rec['id']}"
    gt = pl.DataFrame(gt_records, schema=base, orient="row") if gt_records else pl.DataFrame(schema=base)
    pd_schema = {**base, "confidence": pl.Float64}
    pd = pl.DataFrame(pd_records, schema=pd_schema) if pd_records else pl.DataFrame(schema=pd_schema)
    if id_mode == "generated":
        gt, pd = gt.drop("id"), pd.drop("id")
    if by_mode != "table":
        gt, pd = gt.drop("split"), pd.drop("split")

    kwargs: dict = {}
    if key_kind == "composite":
        kwargs["data_row"] = ["video", "frame"]
    if by_mode != "none":
        kwargs["by"] = ["split"]
    if by_mode == "data_rows":
        meta_schema = {**key_schema, "split": pl.String}
        if draw(st.integers(0, 4)) == 0:  # a data row listed in neither table
            row_meta.append({**_key_values(key_kind, n_rows), "split": "val"})
        kwargs["data_rows"] = pl.DataFrame(row_meta, schema=meta_schema) if row_meta else pl.DataFrame(schema=meta_schema)
    if with_thresholds:
        ct, it = draw(thresholds()), draw(thresholds())
        if ct is not None:
            kwargs["confidence_thresholds"] = ct
        if it is not None:
            kwargs["iou_thresholds"] = it
    return Dataset(gt, pd, kwargs)


def _continuous_box(rng: np.random.Generator) -> tuple:
    """A random real-valued box: tied IoUs and exact threshold hits have probability ~0."""
    x0, y0 = rng.uniform(0, 10, size=2)
    w, h = rng.uniform(0.5, 6, size=2)
    return (float(x0), float(y0), float(x0 + w), float(y0 + h))


@st.composite
def continuous_boxes_strategy(draw) -> tuple:
    """Real-valued boxes drawn by Hypothesis (shrinkable). Sides are 0 or at least 1e-100: a
    positive area below 1e-290 underflows float64 and is rejected as bad input (see
    tests/test_hostile_inputs.py), which is not what these tests are about."""
    side = st.one_of(st.just(0.0), st.floats(1e-100, 50, allow_subnormal=False))
    x0 = draw(st.floats(-100, 100, allow_subnormal=False))
    y0 = draw(st.floats(-100, 100, allow_subnormal=False))
    w = draw(side)
    h = draw(side)
    return (x0, y0, x0 + w, y0 + h)
