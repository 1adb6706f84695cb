"""The COCO engine: pycocotools ``COCOeval`` exactly, plus the cube under COCO matching.

Modules: ``params`` (settings, pycocotools' defaults), ``checks`` (SPEC §7 rows), ``inputs`` and
``segmentation`` (columns → arrays), ``engine`` (evaluate / accumulate by stage), ``summary``
(the 12 stats), ``cube`` (TP / FP / FN tables), ``arrays`` (:class:`CocoResult`).

:func:`run` is the one entry ``pm.evaluate(..., profile="coco")`` calls; its :class:`CocoRun`
holds everything :class:`~polars_metrics.result.coco.CocoEvaluation` shows (never the input
tables). :func:`evaluate_coco` is the arrays-only entry (a ``COCOeval`` replacement).
"""
from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics._memory import gives_back_free_heap
from polars_metrics._rejects import check_on_invalid
from polars_metrics.coco.arrays import CocoResult
from polars_metrics.coco.checks import check_image_ids, check_rows
from polars_metrics.coco.cube import CubeTables, cube_tables
from polars_metrics.coco.engine import evaluate, evaluate_coco
from polars_metrics.coco.inputs import CATEGORY_ID
from polars_metrics.coco.params import CocoParams, params_from_options
from polars_metrics.coco.segmentation import mask_csr
from polars_metrics.coco.slices import image_slices, slice_summaries
from polars_metrics.errors import ProfileError, SchemaError
from polars_metrics.prepare import to_frame
from polars_metrics.profiles import Profile
from polars_metrics.state import Deferred, RowTable
from polars_metrics.validation import POS, require_columns


@dataclass(frozen=True, eq=False)
class CocoRun:
    """Everything one COCO evaluation produced.

    coco : the whole evaluation's :class:`CocoResult` (arrays, stats, per-row matches).
    summary, per_category : the 12 stats and per-category stats; with ``by``, one block per
        slice (each slice's images evaluated on their own: AP is not additive) led by the
        ``by`` columns.
    tables : the cube counts, confusion, data-row frames, matches and the small annotation
        frames ``examples()`` reads (:class:`~polars_metrics.coco.cube.CubeTables`), built on
        first read (a :class:`~polars_metrics.state.Deferred`).
    excluded : images with predictions but absent from the ground truth; rejects : rows that
        failed the checks (``on_invalid="drop"``).
    """

    profile: Profile
    keys: tuple[str, ...]
    by: tuple[str, ...]
    conf_thr: np.ndarray
    iou_thr: np.ndarray
    coco: CocoResult
    summary: pl.DataFrame
    per_category: pl.DataFrame | RowTable  # (built on read without ``by``: slice_summaries)
    tables: Deferred | CubeTables  # built on first read (run); a streamed run's are built
    excluded: pl.DataFrame
    rejects: pl.DataFrame
    timings: dict[str, float] = field(default_factory=dict)


def run(ground_truth, predictions, profile: Profile, *,
        confidence_thresholds: Sequence[float] | None = None,
        iou_thresholds: Sequence[float] | None = None,
        by: str | Sequence[str] | None = None, data_row: str | Sequence[str] = s.DATA_ROW,
        data_rows=None, on_invalid: str = "raise") -> CocoRun:
    """Run the COCO engine under a resolved profile (``profiles.engine_of(profile) == "coco"``).

    Arguments as :func:`polars_metrics.evaluate`; ``profile.coco`` holds pycocotools' settings.

    Examples
    --------
    >>> from polars_metrics.profiles import get_profile
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"image": [1, 2], "feature": ["cat", "cat"], "split": ["a", "b"],
    ...                    "bbox": [[0.0, 0, 10, 10], [0.0, 0, 10, 10]]},
    ...                   schema_overrides={"bbox": box})
    >>> pd = pl.DataFrame({"image": [1], "feature": ["cat"], "bbox": [[0.0, 0, 10, 8]],
    ...                    "confidence": [0.9]}, schema_overrides={"bbox": box})
    >>> out = run(gt, pd, get_profile("coco"), by="split", data_row="image")
    >>> out.summary.filter(pl.col("iou") == 0.5).select("split", pl.col("value").round(3)).rows()
    [('a', 1.0), ('b', 0.0)]
    """
    t0 = time.perf_counter()
    check_switches(profile)
    check_on_invalid(on_invalid)
    key = _key_name(data_row)
    by_cols = (by,) if isinstance(by, str) else tuple(by or ())
    gt = _renamed(to_frame(ground_truth, s.GROUND_TRUTH), key, s.GROUND_TRUTH)
    pd = _renamed(to_frame(predictions, s.PREDICTIONS), key, s.PREDICTIONS)
    meta = None if data_rows is None else _renamed(to_frame(data_rows, "data_rows"), key, "data_rows")
    p = params_from_options(profile.coco, iou_thresholds, iou_strict=profile.iou_strict)
    conf_thr = s.normalize_thresholds(confidence_thresholds, "confidence_thresholds")
    gt, gt_rejects = check_rows(gt, s.GROUND_TRUTH, iou_type=p.iou_type, is_pd=False,
                                on_invalid=on_invalid)
    pd, pd_rejects = check_rows(pd, s.PREDICTIONS, iou_type=p.iou_type, is_pd=True,
                                on_invalid=on_invalid)
    check_image_ids(gt, pd)
    t1 = time.perf_counter()
    res = evaluate(gt, pd, p, for_tables=True)  # the code words, until the tables take them
    t2 = time.perf_counter()
    images, slices, excluded = image_slices(gt, pd, res.image_ids, by_cols, meta,
                                            pd_outside=res.n_pd_outside > 0)
    t3 = time.perf_counter()
    summary, per_cat = slice_summaries(gt, pd, res, p, images, slices, by_cols)
    t4 = time.perf_counter()
    timings = {"prepare": t1 - t0, "coco": t2 - t1, "slices": t3 - t2, "summary": t4 - t3}
    # the cube's tables are built on first read: until then the result holds the few input
    # columns they read (image, category, confidence), never the geometry
    # (functools.partial: this package's ``partial`` is its submodule once imported)
    tables = Deferred(functools.partial(
        _cube_tables, timings, {s.DATA_ROW: key}, _slim(gt), _slim(pd), res, conf_thr=conf_thr,
        images=images, slices=slices, by=by_cols, ids=(_ids(gt), _ids(pd)),
        zero_tn=profile.zero_tn))
    return CocoRun(
        profile=profile, keys=(key,), by=by_cols, conf_thr=conf_thr,
        iou_thr=np.round(res.params.iou_thresholds, s.THRESHOLD_DECIMALS), coco=res,
        summary=summary, per_category=per_cat, tables=tables,
        excluded=excluded.rename({s.DATA_ROW: key}), rejects=pl.concat([gt_rejects, pd_rejects]),
        timings=timings,
    )


@gives_back_free_heap
def _cube_tables(timings: dict[str, float], back: dict[str, str], *args, **kwargs) -> CubeTables:
    """:func:`~polars_metrics.coco.cube.cube_tables` on first read, its seconds in
    ``timings["cube"]``, the image id column renamed ``back`` to the caller's name."""
    t0 = time.perf_counter()
    tables = cube_tables(*args, **kwargs).renamed(back)
    timings["cube"] = time.perf_counter() - t0
    return tables


def _slim(frame: pl.DataFrame) -> pl.DataFrame:
    """The columns :func:`~polars_metrics.coco.cube.cube_tables` reads of an input table."""
    return frame.select([c for c in (s.DATA_ROW, s.FEATURE, CATEGORY_ID, s.CONFIDENCE)
                         if c in frame.columns])


_PIPELINE = Profile()  # the defaults of the switches the COCO engine has no use for


def check_switches(profile: Profile) -> None:
    """Reject every switch the COCO engine cannot honour (``zero_tn`` and ``iou_strict`` it does).

    Examples
    --------
    >>> from polars_metrics.profiles import get_profile
    >>> check_switches(get_profile("coco", zero_tn=True, iou_strict=True))
    >>> check_switches(get_profile("coco", rows="all"))
    Traceback (most recent call last):
    ...
    polars_metrics.errors.ProfileError: rows='all' is not supported with profile='coco': COCO evaluates exactly the images of the ground truth (predictions on other images are listed in ev.excluded). Keep rows='ground_truth', or add the images to the ground truth (a row with a null feature declares an image).
    """
    reason = None
    if profile.greedy_order != "score":
        reason = ("greedy_order='iou' is not supported with profile='coco': COCO matches each "
                  "detection in score order. Use profile='labelbox' for IoU-ordered matching.")
    elif not profile.class_aware:
        reason = ("class_aware=False is not supported with profile='coco': COCO's category-"
                  "agnostic mode (use_cats=False) pools every category into one, which a "
                  "cross-class confusion matrix is not. Pass use_cats=False for pycocotools' "
                  "useCats=0, or profile='labelbox' with class_aware=False for the confusion "
                  "between classes.")
    elif profile.rows != "ground_truth":
        reason = (f"rows={profile.rows!r} is not supported with profile='coco': COCO evaluates "
                  "exactly the images of the ground truth (predictions on other images are "
                  "listed in ev.excluded). Keep rows='ground_truth', or add the images to the "
                  "ground truth (a row with a null feature declares an image).")
    elif not profile.use_confidence:
        reason = ("use_confidence=False is not supported with profile='coco': COCO ranks "
                  "detections by confidence and AP integrates over it. For a cube that counts "
                  "every detection, pass confidence_thresholds=[0.0].")
    else:
        for name in ("buffer_radius", "point_iou", "crs"):
            if getattr(profile, name) != getattr(_PIPELINE, name):
                reason = (f"{name}={getattr(profile, name)!r} is not supported with "
                          "profile='coco': it applies to points, lines and geographic "
                          "coordinates, and COCO evaluates boxes (bbox) and masks (segm).")
                break
    if reason is not None:
        raise ProfileError(reason)


def _key_name(data_row: str | Sequence[str]) -> str:
    keys = [data_row] if isinstance(data_row, str) else list(data_row)
    if len(keys) != 1:
        raise SchemaError(
            f"profile='coco' identifies images by one column; data_row={keys!r} is a composite "
            "key. Build one image id column first, e.g. pl.concat_str(..., separator='/'), and "
            "pass its name as data_row=.")
    return keys[0]


def _renamed(frame: pl.DataFrame, key: str, table: str) -> pl.DataFrame:
    """The image id column under the engine's name (``data_row``)."""
    if key == s.DATA_ROW:
        return frame
    require_columns(frame, table, [key], hint="data_row= names the image id column.")
    if s.DATA_ROW in frame.columns:
        raise SchemaError(
            f"{table} has a {s.DATA_ROW!r} column and the key column {key!r}; with "
            f"data_row={key!r} rename or drop {s.DATA_ROW!r} first.")
    return frame.rename({key: s.DATA_ROW})


def _ids(frame: pl.DataFrame) -> pl.Series:
    """Annotation ids as reported: the ``id`` column, else the input row."""
    return frame[s.ID] if s.ID in frame.columns else frame[POS].cast(pl.Int64).alias(s.ID)


__all__ = ["CocoParams", "CocoResult", "CocoRun", "check_switches", "evaluate_coco", "mask_csr",
           "run"]
