"""Predictions to a COCO results JSON array."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics.errors import SchemaError
from polars_metrics.io.frames import BBOX_XYWH, CATEGORY_ID
from polars_metrics.kinds._rle import encode_strings, mask_csr


def write_coco_results(
    pd: pl.DataFrame, path: str | os.PathLike | None = None, *, bbox: bool | None = None
) -> str | None:
    """Write predictions as a COCO results JSON array: ``image_id``, ``category_id``, ``bbox``
    (x, y, w, h), ``score``, and ``segmentation`` as compressed RLE when a ``mask`` is present.

    ``bbox=None`` (default) writes boxes only for box results: with masks, the file is written
    like pycocotools' own segm results (no ``bbox``), because ``COCO.loadRes`` takes every
    area from the boxes as soon as the first entry has one. ``bbox=True`` / ``False`` forces it.
    Returns the JSON text when ``path`` is None.

    Examples
    --------
    >>> import polars as pl
    >>> pd = pl.DataFrame({"data_row": [1], "category_id": [3], "confidence": [0.5],
    ...                    "bbox": [[0.0, 0.0, 2.0, 4.0]]},
    ...                   schema_overrides={"bbox": pl.Array(pl.Float64, 4)})
    >>> write_coco_results(pd)
    '[{"image_id":1,"category_id":3,"bbox":[0.0,0.0,2.0,4.0],"score":0.5}]'
    >>> import json, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "results.json"
    >>> write_coco_results(pd, path)
    >>> json.loads(path.read_text())[0]["bbox"]
    [0.0, 0.0, 2.0, 4.0]
    """
    for c in (s.DATA_ROW, s.CONFIDENCE):
        if c not in pd.columns:
            raise SchemaError(f'pd: missing the "{c}" column needed for COCO results.')
    if CATEGORY_ID not in pd.columns:
        raise SchemaError('pd: missing "category_id" (COCO results refer to categories by id).')
    has_mask = s.MASK in pd.columns and pd[s.MASK].null_count() < pd.height
    if bbox is None:
        bbox = not has_mask
    cols: list[pl.Series | pl.Expr] = [
        pl.col(s.DATA_ROW).cast(pl.Int64).alias("image_id"),
        pl.col(CATEGORY_ID).cast(pl.Int64),
    ]
    if bbox and BBOX_XYWH in pd.columns:
        cols.append(pl.col(BBOX_XYWH).arr.to_list().alias("bbox"))
    elif bbox and s.BBOX in pd.columns:
        b = pl.col(s.BBOX)
        cols.append(
            pl.concat_list(
                b.arr.get(0), b.arr.get(1), b.arr.get(2) - b.arr.get(0), b.arr.get(3) - b.arr.get(1)
            ).alias("bbox")
        )
    elif bbox:
        raise SchemaError('pd: bbox=True but there is no "bbox" column.')
    cols.append(pl.col(s.CONFIDENCE).cast(pl.Float64).alias("score"))
    out = pd.select(cols)
    if has_mask:
        out = out.with_columns(_segmentation(pd[s.MASK]))
    if "bbox" in out.columns and out["bbox"].null_count():
        raise SchemaError("pd: some rows have a null bbox; COCO results need one per entry.")
    text = out.write_json()
    if path is None:
        return text
    Path(path).write_text(text)
    return None


def _segmentation(mask: pl.Series) -> pl.Series:
    """The ``mask`` column as COCO ``segmentation`` structs: size [h, w], compressed counts."""
    c, o, h, w, null = mask_csr(mask)
    st = pl.DataFrame({
        "size": pl.Series(np.stack([h, w], axis=1).astype(np.int64)).cast(pl.List(pl.Int64)),
        "counts": encode_strings(c, o),
    }).select(pl.struct("size", "counts").alias("segmentation"))["segmentation"]
    if null.any():
        st = pl.select(pl.when(pl.lit(pl.Series(~null))).then(pl.lit(st))).to_series()
    return st.alias("segmentation")
