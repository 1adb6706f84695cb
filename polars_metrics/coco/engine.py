"""Exact pycocotools ``COCOeval`` (``bbox`` and ``segm``) over Polars frames.

``evaluate_coco(gt, pd)`` returns a :class:`~polars_metrics.coco.arrays.CocoResult` whose
``precision``, ``recall`` and ``scores`` arrays equal ``COCOeval.eval`` and whose ``stats`` equal
``COCOeval.stats`` (SPEC §6, profile ``coco``). There is no Python loop per image or per (image,
category): the rows are sorted once, and numba kernels run over group offsets. The stages:

1. :func:`_annotations` — images, categories, the evaluated rows and their per-row arrays; the
   detections numbered by (category, image, row), so that each category's are one contiguous
   range and every later per-category step stays inside it;
2. :func:`_layout` — the sort orders: groups (category, image) and pycocotools' accumulate order;
3. :func:`_group_iou` — the IoU block of each group (boxes here, masks in ``segmentation``);
4. :func:`_match_and_accumulate` — ``evaluateImg`` then ``accumulate``, 16 IoU thresholds at a
   time; :func:`_result` — per-row outputs and the summary.
"""
from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from polars_metrics import _arrays
from polars_metrics import schema as s
from polars_metrics._arrays import offsets_from_lengths
from polars_metrics._kernels import coco as K
from polars_metrics._kernels import coco_layout as L
from polars_metrics._kernels import rle as R
from polars_metrics._lazy import lazy
from polars_metrics._memory import gives_back_free_heap
from polars_metrics._parallel import run_ranges
from polars_metrics.coco import threaded
from polars_metrics.coco.arrays import CocoResult, Gathered
from polars_metrics.coco.inputs import (
    category_axis,
    f64,
    image_lookup,
    positions,
    stable_order,
    xywh,
    xywh_source,
)
from polars_metrics.coco.params import DEFAULT_MAX_DETS, CocoParams, normalize_params
from polars_metrics.coco.segmentation import mask_csr, segm_iou
from polars_metrics.coco.summary import summarize, summary_frame
from polars_metrics.errors import InvalidAnnotationError, PolarsMetricsWarning, SchemaError

numba = lazy("polars_metrics._kernels._jit")  # get/set_num_threads without importing numba

_SMALL = 50_000  # below this many rows one thread runs (waking the pool costs more)


@gives_back_free_heap
def evaluate_coco(
    gt: pl.DataFrame,
    pd: pl.DataFrame,
    *,
    iou_type: str = "bbox",
    iou_thresholds: Sequence[float] | np.ndarray | None = None,
    rec_thresholds: Sequence[float] | np.ndarray | None = None,
    max_dets: Sequence[int] = DEFAULT_MAX_DETS,
    area_ranges: Mapping[str, Sequence[float]] | Sequence[Sequence[float]] | None = None,
    use_cats: bool = True,
    use_ignore_flag: bool = False,
) -> CocoResult:
    """Evaluate like pycocotools ``COCOeval(gt, dt, iou_type)``: evaluate, accumulate, summarize.

    The arrays-only entry; ``pm.evaluate(gt, pd, profile="coco")`` runs the same engine and
    returns a :class:`~polars_metrics.result.coco.CocoEvaluation` whose ``coco`` attribute is
    this result (plus the cube, confusion and data-row frames, ``by=`` and row checks).

    Parameters
    ----------
    gt, pd : DataFrame
        Ground truth and predictions as :func:`polars_metrics.io.coco.read_coco` returns them:
        ``data_row`` (image id), ``feature`` (Enum of all categories) and/or ``category_id``,
        ``bbox`` (x0, y0, x1, y1; the optional ``bbox_xywh`` keeps COCO's original numbers for
        bit-exact IoU), ``area`` (COCO's area field; when absent, the box or mask area),
        ``is_crowd``, ``mask`` (``segm``), and on ``pd`` ``confidence``. Ground-truth rows with
        a null ``feature`` only declare an image. Every image of ``gt`` is evaluated;
        predictions on other images are left out.
    iou_type : {"bbox", "segm"}
    iou_thresholds : default ``np.linspace(.5, .95, 10)`` (pycocotools' values).
    rec_thresholds : default ``np.linspace(0, 1, 101)``.
    max_dets : default (1, 10, 100); sorted like pycocotools. ``summarize`` reads positions 0,
        1, 2 of it (clamped to the last one when fewer are given, where pycocotools fails),
        except the first stat, which pycocotools always reads at maxDets=100 (-1 if absent).
    area_ranges : ``{label: (low, high)}`` (inclusive), default all / small / medium / large.
        The summary looks the labels "all", "small", "medium", "large" up by name (-1 when
        absent), as pycocotools does.
    use_cats : False pools all categories per image (``params.useCats = 0``).
    use_ignore_flag : pycocotools overwrites a ground truth's ``ignore`` with its ``iscrowd``;
        True also ignores ground truths whose ``ignore`` column is set (not pycocotools).

    Returns
    -------
    CocoResult

    Examples
    --------
    >>> import polars as pl
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"data_row": [1, 1], "feature": ["cat", "dog"],
    ...                    "bbox": [[0.0, 0, 10, 10], [20.0, 20, 40, 40]]},
    ...                   schema_overrides={"bbox": box})
    >>> pd = pl.DataFrame({"data_row": [1], "feature": ["cat"], "bbox": [[0.0, 0, 10, 8]],
    ...                    "confidence": [0.9]}, schema_overrides={"bbox": box})
    >>> r = evaluate_coco(gt, pd)
    >>> r.stats[:3].round(3).tolist(), r.per_category["ap50"].round(3).to_list()
    ([0.35, 0.5, 0.5], [1.0, 0.0])
    """
    p = normalize_params(iou_type, iou_thresholds, rec_thresholds, max_dets, area_ranges, use_cats)
    return evaluate(gt, pd, p, use_ignore_flag=use_ignore_flag)


def evaluate(gt: pl.DataFrame, pd: pl.DataFrame, p: CocoParams, *,
             use_ignore_flag: bool = False, for_tables: bool = False) -> CocoResult:
    """:func:`evaluate_coco` with settings already validated (a :class:`CocoParams`).
    ``for_tables``: the result keeps the matcher's code words until the cube's tables take
    them (:meth:`CocoResult.take_row_code`); without it, a result keeps none."""
    prev = numba.get_num_threads()
    if pd.height + gt.height < _SMALL:
        numba.set_num_threads(1)
    try:
        rows = _annotations(gt, pd, p, use_ignore_flag)
        lay = _layout(rows, p)
        iou, iou_ptr = _group_iou(gt, pd, rows, lay, p)
        d_area = _detection_area(pd, rows, p)
        # the matching is the call's peak: the arrays only the layout and the IoU read go first
        rows, lay = rows.for_matching(), lay.for_matching()
        return _match_and_accumulate(rows, lay, iou, iou_ptr, d_area, p, pd.height, for_tables)
    finally:
        numba.set_num_threads(prev)


@dataclass(frozen=True)
class _Rows:
    """The evaluated annotations: ``gt_rows`` / ``pd_rows`` index the frames; the rest are
    per evaluated row (``g_*`` / ``d_*``) or per image / category. Ground truths are in frame
    order; detections in the engine's order, category by category (see
    ``_kernels.coco_layout.evaluation_rows``), so every per-category step reads and writes one
    contiguous range."""

    image_ids: np.ndarray
    names: list[str]
    cat_ids: np.ndarray
    gt_rows: np.ndarray
    pd_rows: np.ndarray
    g_img: np.ndarray
    d_img: np.ndarray
    g_cat: np.ndarray
    d_cat: np.ndarray
    score: np.ndarray
    g_area: np.ndarray
    g_crowd: np.ndarray
    g_ignore: np.ndarray
    g_idzero: np.ndarray
    n_gt_frame: int
    n_outside: int
    d_area: np.ndarray | None = None  # the area column's values when it has them all
    area_column: np.ndarray | None = None  # that column itself (shared with the frame)

    def for_matching(self) -> _Rows:
        """Without the per-detection arrays the matching and the result never read (image,
        category, score: the layout has placed them), so they are freed before it."""
        return dataclasses.replace(self, d_img=None, d_cat=None, score=None)


def _annotations(gt: pl.DataFrame, pd: pl.DataFrame, p: CocoParams, use_ignore_flag: bool) -> _Rows:
    """Images, the category axis and the rows that take part, with their per-row arrays."""
    for name, frame in (("gt", gt), ("pd", pd)):
        if s.DATA_ROW not in frame.columns:
            raise SchemaError(f'{name}: missing the "{s.DATA_ROW}" (image id) column.')
    if s.CONFIDENCE not in pd.columns:
        raise SchemaError(f'pd: missing the "{s.CONFIDENCE}" column (COCO "score").')
    if gt[s.DATA_ROW].null_count():
        raise InvalidAnnotationError(f"gt: {s.DATA_ROW} (image id) is null on some rows.")
    gt_img_all = gt[s.DATA_ROW].to_numpy()
    image_ids = np.unique(gt_img_all)
    n_img = image_ids.size
    names, cat_ids, gk_all, pk_all = category_axis(gt, pd)

    gt_rows = np.flatnonzero(gk_all >= 0)  # placeholder rows (null feature) only declare images
    conf = pd[s.CONFIDENCE]
    area = _detection_area_column(pd)
    pd_rows, d_img, d_cat, score, d_area = threaded.evaluation_rows(
        *image_lookup(image_ids, pd[s.DATA_ROW].to_numpy()),
        np.ascontiguousarray(pk_all, dtype=np.int64), n_img, len(names), p.use_cats,
        _f64_view(conf), area if area is not None else np.empty(0))
    n_outside = int(pd.height - pd_rows.size)
    if n_outside:
        warnings.warn(
            f"{n_outside} predictions are on images absent from gt or of unknown categories; "
            "they are left out (as pycocotools' imgIds/catIds filter does).",
            PolarsMetricsWarning, stacklevel=4,
        )
    if conf.null_count() or not np.isfinite(score).all():
        bad = np.flatnonzero(~np.isfinite(score))
        r = int(pd_rows[bad].min()) if bad.size else int(np.flatnonzero(conf.is_null().to_numpy())[0])
        raise InvalidAnnotationError(
            f'pd: row {r} has a null or non-finite "{s.CONFIDENCE}"; COCO needs a score per detection.'
        )
    g_crowd = np.ascontiguousarray(_flag(gt, s.IS_CROWD)[gt_rows], dtype=np.bool_)
    g_ignore = g_crowd.copy()
    if use_ignore_flag:
        g_ignore |= _flag(gt, s.IGNORE)[gt_rows]
    g_idzero = ((gt[s.ID].fill_null(-1).cast(pl.Int64).to_numpy()[gt_rows] == 0)
                if s.ID in gt.columns else np.zeros(gt_rows.size, bool))
    return _Rows(
        image_ids=image_ids, names=names, cat_ids=cat_ids, gt_rows=gt_rows, pd_rows=pd_rows,
        g_img=positions(image_ids, gt_img_all[gt_rows]),
        d_img=d_img, g_cat=gk_all[gt_rows].astype(np.int64), d_cat=d_cat, score=score,
        g_area=np.ascontiguousarray(_gt_area(gt, gt_rows, p)), g_crowd=g_crowd, g_ignore=g_ignore,
        g_idzero=np.ascontiguousarray(g_idzero), n_gt_frame=gt.height, n_outside=n_outside,
        d_area=None if area is None else d_area, area_column=area,
    )


def _f64_view(series: pl.Series) -> np.ndarray:
    """A numeric column as float64, without a copy when it is one already (null: NaN)."""
    return np.ascontiguousarray(series.cast(pl.Float64).to_numpy(), dtype=np.float64)


def _detection_area_column(pd: pl.DataFrame) -> np.ndarray | None:
    """loadRes's area of every prediction row when the frame has it on every row (the mask
    or box area is computed later for the evaluated rows otherwise)."""
    if s.AREA in pd.columns and pd[s.AREA].null_count() == 0:
        return _f64_view(pd[s.AREA])
    return None


def _flag(frame: pl.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.zeros(frame.height, bool)
    return frame[column].fill_null(False).cast(pl.Boolean).to_numpy()


def _gt_area(gt: pl.DataFrame, gt_rows: np.ndarray, p: CocoParams) -> np.ndarray:
    """COCO's ``area`` field; without it, the box area (bbox) or the mask area (segm)."""
    if s.AREA in gt.columns:
        area = f64(gt[s.AREA])[gt_rows]
    elif p.iou_type == "bbox" or s.MASK not in gt.columns:
        b = xywh(gt, gt_rows, "gt")
        area = b[:, 2] * b[:, 3]
    else:
        c, off, _, _, _ = mask_csr(gt[s.MASK])
        area = R.rle_area(c, off)[gt_rows].astype(np.float64)
    if np.isnan(area).any():
        r = int(gt_rows[np.flatnonzero(np.isnan(area))[0]])
        raise InvalidAnnotationError(f'gt: row {r} has a null "{s.AREA}"; COCO area ranges need it.')
    return area


def _detection_area(pd: pl.DataFrame, rows: _Rows, p: CocoParams) -> np.ndarray:
    """loadRes: the ``area`` column (placed by ``_annotations``), else w*h of the box, or the
    mask area for segm results."""
    if rows.d_area is not None:
        area = rows.d_area
    elif p.iou_type == "bbox" or s.MASK not in pd.columns:
        b = xywh(pd, rows.pd_rows, "pd")
        area = b[:, 2] * b[:, 3]
    else:
        c, off, _, _, _ = mask_csr(pd[s.MASK])
        area = R.rle_area(c, off)[rows.pd_rows].astype(np.float64)
    return np.ascontiguousarray(area, dtype=np.float64)


@dataclass(frozen=True)
class _Layout:
    """Sort orders. ``d_grp`` / ``g_grp``: rows in group order (``dt_ptr`` / ``gt_ptr`` CSR over
    groups); ``acc``: detections in accumulate order (``cat_ptr`` CSR over categories),
    ``dt_pos`` its inverse, ``score_acc`` / ``rank_acc`` the score / rank at each of its
    positions; ``rank``: rank of each detection in its group; ``*_cat_e``: the category key (0
    everywhere when pooled)."""

    n_k: int
    g_cat_e: np.ndarray
    d_cat_e: np.ndarray
    cat_ptr: np.ndarray
    acc: np.ndarray
    d_grp: np.ndarray
    g_grp: np.ndarray
    dt_ptr: np.ndarray
    gt_ptr: np.ndarray
    iou_ptr: np.ndarray
    rank: np.ndarray
    dt_pos: np.ndarray
    score_acc: np.ndarray
    rank_acc: np.ndarray

    def for_matching(self) -> _Layout:
        """Without ``acc`` and ``d_cat_e`` (their positions are in ``dt_pos`` and ``cat_ptr``),
        which the matching and the result never read."""
        return dataclasses.replace(self, acc=None, d_cat_e=None)


def _layout(rows: _Rows, p: CocoParams) -> _Layout:
    """use_cats=False pools categories per image; pycocotools then lists gts and dts category by
    category, so a stable pre-sort by category gives its tie order (for detections,
    ``_annotations`` numbered them that way)."""
    n_g, n_d, n_cat, n_img = rows.gt_rows.size, rows.pd_rows.size, len(rows.names), rows.image_ids.size
    n_k = n_cat if p.use_cats else 1
    g_base = np.arange(n_g, dtype=np.int64)
    if p.use_cats:
        g_cat_e, d_cat_e = rows.g_cat, rows.d_cat
    else:
        g_base = stable_order(rows.g_cat, n_cat, g_base)
        g_cat_e, d_cat_e = np.zeros(n_g, np.int64), np.zeros(n_d, np.int64)
    # accumulate order: category, score desc, image, within-image order; group order:
    # (category, image), score desc inside. The detections are numbered by (category, image,
    # row) already, so both are stable sorts inside each category's range, on threads.
    cat_ptr = offsets_from_lengths(np.bincount(d_cat_e, minlength=n_k))
    acc, d_grp, rank, dt_pos, rank_acc = (np.empty(n_d, np.int64) for _ in range(5))
    score_acc = np.empty(n_d, np.float64)
    run_ranges(L.category_orders, (cat_ptr, rows.score, rows.d_img, acc, d_grp, rank, dt_pos,
                                   score_acc, rank_acc), cat_ptr)
    g_cat_ptr = offsets_from_lengths(np.bincount(g_cat_e, minlength=n_k))
    g_grp = K.segment_counting_order(g_cat_ptr, rows.g_img, n_img, stable_order(g_cat_e, n_k, g_base))
    dt_ptr, gt_ptr, iou_ptr = threaded.group_pointers(cat_ptr, rows.d_img, d_grp, g_cat_ptr,
                                                      rows.g_img, g_grp, int(p.max_dets[-1]))
    return _Layout(n_k=n_k, g_cat_e=g_cat_e, d_cat_e=d_cat_e, cat_ptr=cat_ptr, acc=acc,
                   d_grp=d_grp, g_grp=g_grp, dt_ptr=dt_ptr, gt_ptr=gt_ptr, iou_ptr=iou_ptr,
                   rank=rank, dt_pos=dt_pos, score_acc=score_acc, rank_acc=rank_acc)


def _group_iou(gt, pd, rows: _Rows, lay: _Layout, p: CocoParams) -> tuple[np.ndarray, np.ndarray]:
    """``computeIoU`` of every group: the blocks and their CSR offsets."""
    max_det, iou_ptr = int(p.max_dets[-1]), lay.iou_ptr
    if p.iou_type == "segm":
        return segm_iou(gt, pd, rows, lay, max_det, iou_ptr), iou_ptr
    d_box, d_box_row = xywh_source(pd, rows.pd_rows, "pd")
    g_box, g_box_row = xywh_source(gt, rows.gt_rows, "gt")
    iou = threaded.box_iou_groups(d_box, d_box_row, g_box, g_box_row, rows.g_crowd, lay.dt_ptr,
                                  lay.d_grp, lay.gt_ptr, lay.g_grp, max_det, iou_ptr)
    return iou, iou_ptr


def match_arguments(rows: _Rows, lay: _Layout, iou, iou_ptr, d_area, p: CocoParams):
    """The leading arguments of ``coco_match`` (up to the area bounds) and the area bounds."""
    area_lo = np.array([r[0] for r in p.area_ranges], np.float64)
    area_hi = np.array([r[1] for r in p.area_ranges], np.float64)
    match_args = (
        iou, iou_ptr, lay.dt_ptr, lay.d_grp, lay.gt_ptr, lay.g_grp, int(p.max_dets[-1]),
        rows.g_area, rows.g_ignore, rows.g_crowd, rows.g_idzero,
        rows.gt_rows.astype(np.int64, copy=False), d_area, lay.dt_pos,
        rows.pd_rows.astype(np.int64, copy=False),
    )  # fmt: skip
    return match_args, area_lo, area_hi


_D_AREA, _PD_ROWS = 12, 14  # positions in match_arguments' tuple


def _match_and_accumulate(rows: _Rows, lay: _Layout, iou, iou_ptr, d_area, p: CocoParams,
                          n_pd_frame: int, for_tables: bool) -> CocoResult:
    """``evaluateImg`` then ``accumulate``, 16 IoU thresholds at a time (the packed code's width)."""
    T, Rn, A, M = p.iou_thresholds.size, p.rec_thresholds.size, len(p.area_ranges), len(p.max_dets)
    match_args, area_lo, area_hi = match_arguments(rows, lay, iou, iou_ptr, d_area, p)
    thrs = p.match_thresholds
    n_d = rows.pd_rows.size
    npig = np.zeros((lay.n_k, A), np.int64)
    for a in range(A):
        ok = ~(rows.g_ignore | (rows.g_area < area_lo[a]) | (rows.g_area > area_hi[a]))
        npig[:, a] = np.bincount(lay.g_cat_e[ok], minlength=lay.n_k)
    max_dets = np.array(p.max_dets, np.int64)
    rec_thrs = np.ascontiguousarray(p.rec_thresholds, dtype=np.float64)
    precision = np.empty((T, Rn, lay.n_k, A, M))  # the kernel writes every cell
    recall = np.empty((T, lay.n_k, A, M))
    scores = np.empty((T, Rn, lay.n_k, A, M))
    code = np.empty((n_d, A), np.uint32)
    no_rows = np.empty((0, 1), np.int32)
    keep = p.area_labels.index("all") if "all" in p.area_labels else 0
    # the matcher's code at the kept area, per chunk of thresholds: the cube's counts come from
    # it (coco.cube), so the matching never runs twice for them
    keep_code = np.empty((n_d, -(-T // K.MAX_THR)), np.uint32) if for_tables else None
    for ch, t0 in enumerate(range(0, T, K.MAX_THR)):
        t1 = min(t0 + K.MAX_THR, T)
        threaded.coco_match(*match_args, area_lo, area_hi, thrs[t0:t1].copy(), -1, code, no_rows,
                            no_rows.astype(bool))
        threaded.coco_accumulate(code, lay.score_acc, lay.rank_acc, lay.cat_ptr, npig, max_dets,
                                 rec_thrs, precision[t0:t1], recall[t0:t1], scores[t0:t1])
        if keep_code is not None:
            keep_code[:, ch] = code[:, keep]
    match_inputs = (match_args, area_lo[keep: keep + 1].copy(), area_hi[keep: keep + 1].copy(),
                    thrs, n_d, n_pd_frame)
    return _result(rows, lay, p, precision, recall, scores, npig[:, keep], keep, area_lo[keep],
                   area_hi[keep], match_inputs, keep_code)


def _result(rows: _Rows, lay: _Layout, p: CocoParams, precision, recall, scores, n_gt, keep,
            lo, hi, match_inputs, keep_code) -> CocoResult:
    """Per-row outputs in frame row order, and the summaries."""
    max_det = int(p.max_dets[-1])
    gt_id_zero = np.zeros(rows.n_gt_frame, np.bool_)
    gt_id_zero[rows.gt_rows] = rows.g_idzero
    gt_ig = np.ones(rows.n_gt_frame, np.bool_)
    gt_ig[rows.gt_rows] = rows.g_ignore | (rows.g_area < lo) | (rows.g_area > hi)
    names, cat_ids = (rows.names, rows.cat_ids) if p.use_cats else (["all"], np.array([-1], np.int64))
    stats, md_used = summarize(precision, recall, p)
    # the int64 index arrays a result keeps, narrowed (a result alive while the next evaluation
    # runs costs its peak): widened again only when ``dt_match`` is built. An array held twice
    # (frame rows and positions are also in ``_row_code_of``) is narrowed once and shared
    narrow = {id(a): _arrays.narrowed(a=a)["a"] for a in (*match_inputs[0], lay.rank)
              if isinstance(a, np.ndarray) and a.dtype == np.int64}

    def kept(a):
        return narrow.get(id(a), a)

    args = tuple(map(kept, match_inputs[0]))
    if rows.area_column is not None:  # the input's area column: gathered again, not kept
        args = (*args[:_D_AREA], Gathered(rows.area_column, args[_PD_ROWS]), *args[_D_AREA + 1:])
    match_inputs = (args, *match_inputs[1:])
    return CocoResult(
        params=p, precision=precision, recall=recall, scores=scores, stats=stats,
        summary=summary_frame(stats, md_used), _per_category_of=(names, cat_ids, n_gt),
        category_ids=cat_ids, features=tuple(names), image_ids=rows.image_ids,
        gt_id_zero=gt_id_zero, gt_ignore=gt_ig, match_area=p.area_labels[keep],
        n_pd_outside=rows.n_outside, _match_inputs=match_inputs,
        # the code words in a list the cube's tables empty (take_row_code): a result read for
        # its tables, or never, holds none
        _row_code_of=(kept(rows.pd_rows), kept(lay.rank), kept(lay.dt_pos), max_det,
                      [] if keep_code is None else [keep_code], match_inputs[-1]),
    )
