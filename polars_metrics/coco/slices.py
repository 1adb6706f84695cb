"""``by=`` under COCO: the slice of every image, and per-slice COCO stats.

Counts are additive, so the cube of a slice comes from the one pass (``cube``). AP and AR are
not: each slice's images are evaluated on their own, exactly as pycocotools run with
``params.imgIds`` set to the slice's images would.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics.coco.arrays import CocoResult
from polars_metrics.coco.engine import evaluate
from polars_metrics.coco.params import CocoParams
from polars_metrics.prepare import SLICE, attach_by, data_rows_frame, number_slices
from polars_metrics.state import RowTable

NOT_IN_GT = "not in ground truth"


def image_slices(gt: pl.DataFrame, pd: pl.DataFrame, image_ids: np.ndarray, by: tuple[str, ...],
                 meta: pl.DataFrame | None, *, pd_outside: bool = True,
                 ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(images, slices, excluded). ``pd_outside=False`` says no prediction is on an image
    outside ``image_ids`` (the engine counted them: ``CocoResult.n_pd_outside == 0``).

    images : (data_row, *by, _slice) of the evaluated images, in ``image_ids`` order.
    slices : (_slice, *by), one row per slice (one row and no ``by`` column without ``by``).
    excluded : (data_row, *by, reason, n_gt, n_pd) of the images that only predictions name.
    """
    keys = (s.DATA_ROW,)
    key_dtype = gt.schema[s.DATA_ROW]
    evaluated = pl.DataFrame({s.DATA_ROW: pl.Series(image_ids).cast(key_dtype)})
    pd_keys = pd.select(s.DATA_ROW) if pd_outside else pd.select(s.DATA_ROW).clear()
    outside = (pd_keys.filter(~pl.col(s.DATA_ROW).is_in(evaluated[s.DATA_ROW].implode()))
               .group_by(s.DATA_ROW).len().sort(s.DATA_ROW))
    universe = pl.concat([evaluated, outside.select(s.DATA_ROW)])
    if meta is not None:
        meta = data_rows_frame(meta, keys, by, gt)
    universe = attach_by(universe, keys, by, meta, gt, pd)
    images, slices = number_slices(universe.head(evaluated.height), by)
    excluded = pl.concat([
        universe.tail(outside.height),
        pl.DataFrame({s.REASON: [NOT_IN_GT] * outside.height}, schema={s.REASON: pl.String}),
        outside.select(pl.lit(0, dtype=pl.Int64).alias(s.N_GT),
                       pl.col("len").cast(pl.Int64).alias(s.N_PD)),
    ], how="horizontal")
    return images, slices, excluded


def slice_summaries(gt: pl.DataFrame, pd: pl.DataFrame, res: CocoResult, p: CocoParams,
                    images: pl.DataFrame, slices: pl.DataFrame,
                    by: tuple[str, ...]) -> tuple[pl.DataFrame, pl.DataFrame | RowTable]:
    """The summary and per-category frames; with ``by``, each slice evaluated on its images and
    its rows led by the slice's ``by`` values. Without ``by`` the per-category frame is built
    on first read (3 ms at any size, which most callers never read; ``res`` keeps it once
    built)."""
    if not by:
        return res.summary, RowTable(lambda: res.per_category)
    summaries, per_category = [], []
    for i in range(slices.height):
        members = images.filter(pl.col(SLICE) == i)[s.DATA_ROW].implode()
        part = evaluate(gt.filter(pl.col(s.DATA_ROW).is_in(members)),
                        pd.filter(pl.col(s.DATA_ROW).is_in(members)), p)
        label = slices.select(by)[i]
        summaries.append(_led_by(label, part.summary))
        per_category.append(_led_by(label, part.per_category))
    return pl.concat(summaries), pl.concat(per_category)


def _led_by(label: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
    return pl.concat([label.select(pl.all().gather([0] * frame.height)), frame], how="horizontal")
