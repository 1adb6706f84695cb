"""COCO JSON in and out: ``read_coco`` and ``write_coco_results``.

Modules: ``gt`` (images, categories, annotations), ``results`` (detections, as
``COCO.loadRes``), ``segmentation`` (polygons / RLE to masks), ``write`` (results JSON); files
are read by typed scanners (``_gt_scan`` for ground truth, ``_scan`` for results: one pass over
the bytes into numpy columns, exact floats) and by msgspec / ``json`` when a scanner does not
take a file, with the same frames, errors and rejects either way.

Frames produced (the library's shared layout)
---------------------------------------------
``gt`` — one row per annotation, in file order, then one placeholder row per image without
annotations (null ``feature``, ``id`` and geometry: "a data row that exists but has no
annotations"):

* ``data_row`` Int64 — image id; ``height``, ``width`` Int64 — from the images table;
* ``feature`` Enum — category names in ascending category-id order (every category of the
  file, so categories without annotations are still known); ``category_id`` Int64;
* ``id`` Int64 — annotation id; ``kind`` Enum (the engine's kinds, a byte a row) — "mask"
  when the annotation has a segmentation, else "box";
* ``bbox`` Array(Float64, 4) — x0, y0, x1, y1 (from COCO's x, y, w, h); ``bbox_xywh``
  Array(Float64, 4) — COCO's numbers as read, kept so COCO IoUs are bit-exact;
* ``area`` Float64 — the json ``area`` (``w * h`` of the box when absent); ``is_crowd``,
  ``ignore`` Boolean (json ``iscrowd`` / ``ignore``, False when absent);
* ``mask`` Struct(height, width, counts: List(UInt32)) — uncompressed RLE, present when any
  annotation has a segmentation: polygons rasterized exactly like pycocotools
  (``frPyObjects`` + ``merge``), compressed strings decoded, uncompressed counts kept.

``pd`` — one row per result entry in file order, the same columns (no ``is_crowd`` /
``ignore``, and no ``height`` / ``width``: a detection's image size is its image's, in ``gt``)
plus ``confidence`` Float64 (COCO ``score``). Ids are 1..n in file order and
``area`` follows ``COCO.loadRes``: when the first entry has a non-empty ``bbox`` every area is
the box's ``w * h``, otherwise it is the mask's pixel area (and a missing box is the mask's
bounding box).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from polars_metrics.io.coco._columns import coco_rejects
from polars_metrics.io.coco.gt import read_gt
from polars_metrics.io.coco.results import empty_results, read_results
from polars_metrics.io.coco.write import write_coco_results

__all__ = ["read_coco", "write_coco_results"]


def read_coco(
    ground_truth: str | os.PathLike | Mapping,
    results: str | os.PathLike | Sequence[Mapping] | pl.DataFrame | np.ndarray | None = None,
    *,
    on_invalid: str = "raise",
    iou_type: str = "bbox",
) -> tuple[pl.DataFrame, pl.DataFrame] | tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Read a COCO ground-truth file and (optionally) a results file into frames.

    Parameters
    ----------
    ground_truth : path or dict
        A COCO instances JSON (``images``, ``annotations``, ``categories``) or the parsed dict.
    results : path, list of dicts, DataFrame, ndarray, or None
        A COCO results JSON (array of ``image_id``, ``category_id``, ``bbox`` and/or
        ``segmentation``, ``score``), the parsed list, a frame with those columns (or with
        ``data_row`` / ``confidence``), or pycocotools' ``N x 7`` numpy layout. ``None`` gives
        an empty ``pd``.
    on_invalid : {"raise", "drop"}
        "raise" (default): the first bad entry raises :class:`~polars_metrics.errors.FormatError`
        naming the table, the entry index, the field and the fix. "drop": bad entries are left
        out and listed in a third returned frame ``rejects`` (``table``, ``row`` = entry index,
        ``data_row``, ``id``, ``column``, ``reason``). A malformed overall structure (not a JSON
        object / array, missing ``images`` or ``categories``) always raises.
    iou_type : {"bbox", "segm"}
        Which geometry the ``kind`` column selects, the same on both sides so that
        ``pm.evaluate(gt, pd)`` compares like with like: "bbox" (default, as COCOeval's
        default) makes every annotation with a box a ``box`` (also ground truths that carry a
        segmentation); "segm" makes every annotation with a segmentation a ``mask``. The
        ``bbox`` and ``mask`` columns are read either way (``profile="coco"`` takes its own
        ``iou_type`` and ignores ``kind``).

    Returns
    -------
    (gt, pd) or, with ``on_invalid="drop"``, (gt, pd, rejects)
        See the module docstring for the columns.

    Examples
    --------
    >>> gt, pd = read_coco({"images": [{"id": 1, "height": 10, "width": 10}],
    ...                     "annotations": [], "categories": [{"id": 3, "name": "cat"}]},
    ...                    [{"image_id": 1, "category_id": 3, "bbox": [0, 0, 2, 2], "score": .5}])
    >>> gt.select("data_row", "feature", "id").rows(), pd["bbox"].to_list()
    ([(1, None, None)], [[0.0, 0.0, 2.0, 2.0]])
    >>> _, _, rejects = read_coco({"images": [{"id": 1}], "categories": [],
    ...                            "annotations": [{"id": 5, "image_id": 2, "bbox": [0, 0, 1, 1]}]},
    ...                           on_invalid="drop")
    >>> rejects.select("table", "row", "data_row", "id", "column").rows()
    [('annotations', 0, '2', '5', 'image_id')]
    """
    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {list(IOU_TYPES)}, got {iou_type!r}.")
    rej = coco_rejects(on_invalid)
    gt, meta = read_gt(ground_truth, rej, iou_type)
    pd = empty_results(meta) if results is None else read_results(results, meta, rej, iou_type)
    if rej.drop:
        return gt, pd, rej.frame(sort=True)
    return gt, pd




IOU_TYPES = ("bbox", "segm")  # ``kind`` by iou_type: see _columns.comparable_kind
