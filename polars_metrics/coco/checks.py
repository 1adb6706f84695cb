"""SPEC §7 row checks for the COCO engine, through the one mechanism of :mod:`validation`.

Every bad row raises :class:`~polars_metrics.errors.InvalidAnnotationError` naming the table,
column, input row, image and id with the fix — or, with ``on_invalid="drop"``, goes to
``ev.rejects`` with its reason. A ground-truth row with neither a category nor a geometry is a
placeholder (it only declares an image, as :func:`~polars_metrics.io.coco.read_coco` writes
for images without annotations) and is not checked.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics.coco.inputs import BBOX_XYWH, CATEGORY_ID, HEIGHT, WIDTH
from polars_metrics.errors import SchemaError
from polars_metrics.kinds import box, mask
from polars_metrics.prepare import duplicate_ids
from polars_metrics.prepare import guards as G
from polars_metrics.validation import POS, Check, OnInvalid, run_checks

GENERATED_ID = "_generated_id"  # ids of a table without an ``id`` column: the input row


def category_column(frame: pl.DataFrame) -> str:
    """The column that names an annotation's category: ``feature``, else ``category_id``."""
    return s.FEATURE if s.FEATURE in frame.columns or CATEGORY_ID not in frame.columns else CATEGORY_ID


def placeholder(frame: pl.DataFrame) -> np.ndarray:
    """Rows with no category and no geometry: they only declare an image."""
    cols = [c for c in (category_column(frame), s.BBOX, BBOX_XYWH, s.MASK) if c in frame.columns]
    if not cols:
        return np.zeros(frame.height, bool)
    return frame.select(pl.all_horizontal([pl.col(c).is_null() for c in cols])).to_series().to_numpy()


# the dtypes the COCO engine reads its columns as (beyond those of every profile:
# ``prepare.guards.COLUMN_DTYPES``; ``bbox``, ``bbox_xywh`` and ``mask``: four numbers / RLEs)
COLUMN_DTYPES: G.DtypeRules = {
    **G.COLUMN_DTYPES,
    s.DATA_ROW: (lambda d: d.is_integer() or (G.is_name(d) and d != pl.Null),
                 "image ids (integers, as COCO's, or Strings)"),
    s.ID: (G.is_integer, "integer annotation ids (the COCO engine's)"),
    s.FEATURE: (G.is_name, "category names (String)"),
    CATEGORY_ID: (G.is_integer, "integer category ids"),
    s.AREA: (G.is_number, "areas (Float64)"),
    s.IS_CROWD: (G.is_flag, "flags (Boolean, or 0 / 1)"),
    s.IGNORE: (G.is_flag, "flags (Boolean, or 0 / 1)"),
    HEIGHT: (G.is_integer, "integer image heights"),
    WIDTH: (G.is_integer, "integer image widths"),
}


def check_image_ids(gt: pl.DataFrame, pd: pl.DataFrame) -> None:
    """Both tables' image ids integers, or both names: an image is found by its id in both.

    >>> check_image_ids(pl.DataFrame({"data_row": [1]}), pl.DataFrame({"data_row": ["1"]}))
    Traceback (most recent call last):
    ...
    polars_metrics.errors.SchemaError: data-row key 'data_row' (image id) is Int64 in ground_truth but String in predictions; cast one side, e.g. pl.col('data_row').cast(pl.Int64).
    """
    a, b = gt.schema[s.DATA_ROW], pd.schema[s.DATA_ROW]
    if a.is_integer() != b.is_integer():
        raise SchemaError(f"data-row key {s.DATA_ROW!r} (image id) is {a} in {s.GROUND_TRUTH} but {b} "
                          f"in {s.PREDICTIONS}; cast one side, e.g. "
                          f"pl.col({s.DATA_ROW!r}).cast(pl.{a if a.is_integer() else b}).")


def check_rows(frame: pl.DataFrame, table: str, *, iou_type: str, is_pd: bool,
               on_invalid: OnInvalid) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows that pass, rejects). The frame comes back with a ``_pos`` column (input row).

    Examples
    --------
    >>> gt = pl.DataFrame({"data_row": [1, 1], "id": [5, 5], "feature": ["a", "a"],
    ...                    "bbox": [[0.0, 0, 1, 1], [0.0, 0, 1, 1]]})
    >>> good, rejects = check_rows(gt, "ground_truth", iou_type="bbox", is_pd=False,
    ...                            on_invalid="drop")
    >>> good.height, rejects.select("row", "column", "reason").rows()
    (0, [(0, 'id', 'annotation id is not unique within its data row'), (1, 'id', 'annotation id is not unique within its data row')])
    """
    G.refuse_dtypes(frame, table, COLUMN_DTYPES)
    if s.BBOX in frame.columns:
        frame = box.normalize(frame, table)
    if BBOX_XYWH in frame.columns and frame.schema[BBOX_XYWH] != pl.Null:
        frame = box.four_numbers(frame, table, BBOX_XYWH, "COCO's (x, y, width, height)")
    if s.MASK in frame.columns and iou_type == "segm":
        frame = mask.normalize(frame, table)
    frame = frame.with_row_index(POS)
    generated = s.ID not in frame.columns
    if generated:  # run_checks names rows by id: the input row stands in
        frame = frame.with_columns(pl.col(POS).cast(pl.Int64).alias(s.ID))
    annotation = np.ones(frame.height, bool) if is_pd else ~placeholder(frame)
    checks = [c.within(annotation) for c in _checks(frame, iou_type, is_pd, generated)]
    checks.insert(0, Check(s.DATA_ROW, pl.col(s.DATA_ROW).is_null(), "image id (data row) is null",
                           "give every annotation its image"))
    good, rejects = run_checks(frame, table, (s.DATA_ROW,), checks, on_invalid)
    return (good.drop(s.ID) if generated else good), rejects


def _checks(frame: pl.DataFrame, iou_type: str, is_pd: bool, generated: bool) -> list[Check]:
    cat = category_column(frame)
    checks = [Check(cat, pl.col(cat).is_null(), f"{cat} is null",
                    "give every annotation its category")] if cat in frame.columns else []
    if not generated:
        checks += [
            Check(s.ID, pl.col(s.ID).is_null(), "annotation id is null",
                  "give every annotation an id (or leave out the id column to number rows)"),
            Check(s.ID, lambda f: duplicate_ids(f, (s.DATA_ROW,)),
                  "annotation id is not unique within its data row",
                  "give each annotation of an image its own id"),
        ]
    if is_pd and s.CONFIDENCE in frame.columns:
        conf = pl.col(s.CONFIDENCE).cast(pl.Float64)
        checks.append(Check(s.CONFIDENCE, conf.is_null() | conf.is_nan() | (conf < 0) | (conf > 1),
                            "confidence is null, NaN or outside [0, 1]",
                            "give every detection a score in [0, 1] (COCO ranks detections by it)"))
    if s.BBOX in frame.columns:
        box_checks = box.checks("")
        if iou_type == "segm":  # a mask stands in for a missing box
            box_checks = box_checks[1:]
        checks += box_checks
    if BBOX_XYWH in frame.columns:
        checks.append(Check(BBOX_XYWH, _bad_xywh,
                            "bbox_xywh has a non-finite value or a negative width or height",
                            "give boxes as x, y, width, height with width, height >= 0"))
    if iou_type == "segm":
        checks.append(_mask_check(frame, is_pd))
        if s.MASK in frame.columns:  # sizes, counts and sums, as for pm.evaluate's masks
            checks += mask.checks("")[1:]
    if not is_pd and s.AREA in frame.columns:
        area = pl.col(s.AREA).cast(pl.Float64)
        checks.append(Check(s.AREA, area.is_null() | area.is_nan() | (area < 0),
                            "area is null, NaN or negative", "give COCO's area (or drop the column "
                            "to use the box or mask area)"))
    return checks


def _bad_xywh(frame: pl.DataFrame) -> np.ndarray:
    """Rows whose (x, y, w, h) has a NaN or infinite value or a negative w or h (null boxes are
    not bad here: the box checks name them). Read as one (n, 4) numpy block.

    >>> f = pl.DataFrame({"bbox_xywh": [[0.0, 0, 1, 1], [0.0, 0, -1, 1], None, [0.0, 0, 1, float("nan")]]},
    ...                  schema={"bbox_xywh": pl.Array(pl.Float64, 4)})
    >>> _bad_xywh(f).tolist()
    [False, True, False, True]
    """
    col = frame[BBOX_XYWH].cast(s.BBOX_DTYPE)
    if not col.has_nulls():
        return _bad_xywh_values(col.to_numpy())
    known = ~col.is_null().to_numpy()
    bad = np.zeros(frame.height, dtype=bool)
    bad[known] = _bad_xywh_values(col.filter(known).to_numpy())
    return bad


def _bad_xywh_values(xy: np.ndarray) -> np.ndarray:
    # a row's 4 finite flags read as one uint32 (all finite: 0x01010101), faster than all(axis=1)
    finite = np.ascontiguousarray(np.isfinite(xy.reshape(-1, 4))).view(np.uint32).ravel()
    with np.errstate(invalid="ignore"):
        return (finite != 0x01010101) | (xy[:, 2] < 0) | (xy[:, 3] < 0)


def _mask_check(frame: pl.DataFrame, is_pd: bool) -> Check:
    """Every segm ground truth needs a mask; a detection a mask or a box (rasterized, loadRes)."""
    missing = pl.col(s.MASK).is_null() if s.MASK in frame.columns else pl.lit(True)
    if is_pd and s.BBOX in frame.columns:
        return Check(s.MASK, missing & pl.col(s.BBOX).is_null(), "detection has neither mask nor bbox",
                     "give every segm detection a mask (or a box, rasterized like loadRes)")
    return Check(s.MASK, missing, "mask is null", "give every segm annotation a mask")
