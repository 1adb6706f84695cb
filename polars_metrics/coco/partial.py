"""COCO over batches of whole images: per-batch detection records, one exact accumulate.

``evaluateImg`` is per (image, category), so a batch holding every annotation of its images
matches them as the whole evaluation would. ``accumulate`` is not per image: it sorts every
detection of a category by score (ties: image order, then the detection's order within its
image) and sweeps. :func:`batch_records` runs the engine's stages up to the matcher on one batch
and keeps, per evaluated detection (rank below the largest maxDet), the columns of
:data:`RECORD_COLUMNS` — category, score, image id, rank in its (category, image) group and
the matcher's code word per (IoU chunk, area range), in (category, image, input row) order — and, per
category and area range, the number of non-ignored ground truths (npig). :func:`accumulate`
takes the records of all batches, puts them in pycocotools' accumulate order (the sort
sequence of :func:`polars_metrics.coco.engine._layout`, with the image axis of the whole
evaluation) and runs the same ``coco_accumulate`` kernel: the arrays are identical bits.

Memory: 24 bytes per record (category int32, score float64, image id int64, rank int32) plus
4 per (IoU chunk × area range) code word — 40 bytes per detection under the defaults (10 IoU
thresholds = 1 chunk, 4 area ranges). The within-image order is the records' order: each batch
writes them by (category, image, input row); pooled (use_cats=False): (image, category, row).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics._arrays import offsets_from_lengths
from polars_metrics._kernels import coco as K
from polars_metrics._kernels import coco_layout as L
from polars_metrics._lazy import lazy
from polars_metrics._parallel import run_ranges
from polars_metrics.coco import engine as E
from polars_metrics.coco import threaded
from polars_metrics.coco.arrays import CocoResult
from polars_metrics.coco.inputs import CATEGORY_ID, stable_order
from polars_metrics.coco.params import CocoParams
from polars_metrics.coco.summary import summarize, summary_frame

numba = lazy("polars_metrics._kernels._jit")

CAT, SCORE, IMAGE, RANK = "_k", "_score", "_image", "_rank"
RECORD_COLUMNS = (CAT, SCORE, IMAGE, RANK)  # then one "_code_<chunk>_<area>" per word
BYTES_PER_RECORD = 4 + 8 + 8 + 4  # + 4 per code word
NPIG = "_npig_"  # categories table: "_npig_<area>" columns
N_RECORDS = "_n"  # categories table: the batch's records of the category


def code_column(chunk: int, area: int) -> str:
    return f"_code_{chunk}_{area}"


def n_chunks(p: CocoParams) -> int:
    return -(-p.iou_thresholds.size // K.MAX_THR)


def bytes_per_detection(p: CocoParams) -> int:
    """Bytes of one detection's record (its Parquet columns in memory).

    >>> from polars_metrics.coco.params import normalize_params
    >>> bytes_per_detection(normalize_params("bbox", None, None, (1, 10, 100), None, True))
    40
    """
    return BYTES_PER_RECORD + 4 * n_chunks(p) * len(p.area_ranges)


@dataclass(frozen=True)
class BatchRecords:
    """One batch's share of the accumulation state.

    records : a row per evaluated detection (:data:`RECORD_COLUMNS` + code words), ``_k`` on
        the batch's own category axis (``categories`` maps it).
    categories : (``_k``, feature, category_id, ``_npig_<a>``...) the batch's category axis
        and its non-ignored ground truths per area range.
    images : the batch's evaluated image ids (its ground truth's images).
    n_outside : predictions left out (image not in the ground truth, unknown category).
    """

    records: pl.DataFrame
    categories: pl.DataFrame
    images: pl.Series
    n_outside: int


def batch_records(gt: pl.DataFrame, pd: pl.DataFrame, p: CocoParams,
                  order: str) -> tuple[CocoResult, BatchRecords]:
    """The batch's :class:`CocoResult` (per-row matches for the cube tables; its arrays are of
    no use, the batch is not the evaluation) and its records. ``order`` names the prediction
    column giving the within-image order (the row number in the whole table)."""
    prev = numba.get_num_threads()
    if pd.height + gt.height < E._SMALL:
        numba.set_num_threads(1)
    try:
        rows = E._annotations(gt, pd, p, False)
        lay = E._layout(rows, p)
        iou, iou_ptr = E._group_iou(gt, pd, rows, lay, p)
        d_area = E._detection_area(pd, rows, p)
        return _match(rows, lay, iou, iou_ptr, d_area, p, pd, order, gt[s.DATA_ROW].dtype)
    finally:
        numba.set_num_threads(prev)


def _match(rows, lay, iou, iou_ptr, d_area, p: CocoParams, pd: pl.DataFrame, order: str,
           image_dtype) -> tuple[CocoResult, BatchRecords]:
    """The matcher of ``engine._match_and_accumulate`` at every area range and IoU chunk."""
    T, A = p.iou_thresholds.size, len(p.area_ranges)
    match_args, area_lo, area_hi = E.match_arguments(rows, lay, iou, iou_ptr, d_area, p)
    thrs = p.match_thresholds
    n_d, max_det = rows.pd_rows.size, int(p.max_dets[-1])
    n_cat = len(rows.names)
    npig = np.zeros((n_cat, A), np.int64)  # per real category (pooled: summed at the end)
    for a in range(A):
        ok = ~(rows.g_ignore | (rows.g_area < area_lo[a]) | (rows.g_area > area_hi[a]))
        npig[:, a] = np.bincount(rows.g_cat[ok], minlength=n_cat)
    keep = p.area_labels.index("all") if "all" in p.area_labels else 0
    code = np.empty((n_d, A), np.uint32)
    no_rows = np.empty((0, 1), np.int32)
    keep_code = np.empty((n_d, n_chunks(p)), np.uint32)
    acc = lay.acc
    kept = lay.rank_acc < max_det  # the accumulate order; beyond maxDet never counts
    sel = acc[kept]
    # records in (category, image, row) order (pooled: image, category, row): concatenated over
    # batches, a stable counting sort by the whole evaluation's image index gives the engine's
    # base order within each category; a category's records are contiguous (read by group)
    row_sel = pd[order].cast(pl.Int64).to_numpy()[rows.pd_rows[sel]]
    perm = np.lexsort((row_sel, rows.d_img[sel], rows.d_cat[sel]) if p.use_cats
                      else (row_sel, rows.d_cat[sel], rows.d_img[sel]))
    sel = sel[perm]
    kept_pos = np.flatnonzero(kept)[perm]  # positions in the accumulate order (code rows)
    cols: dict[str, Any] = {
        CAT: rows.d_cat[sel].astype(np.int32), SCORE: rows.score[sel],
        IMAGE: pl.Series(rows.image_ids[rows.d_img[sel]]).cast(image_dtype),
        RANK: lay.rank[sel].astype(np.int32),
    }
    for ch, t0 in enumerate(range(0, T, K.MAX_THR)):
        t1 = min(t0 + K.MAX_THR, T)
        threaded.coco_match(*match_args, area_lo, area_hi, thrs[t0:t1].copy(), -1, code,
                            no_rows, no_rows.astype(bool))
        keep_code[:, ch] = code[:, keep]
        for a in range(A):
            cols[code_column(ch, a)] = code[kept_pos, a]  # code rows: accumulate order
    match_inputs = (match_args, area_lo[keep: keep + 1].copy(), area_hi[keep: keep + 1].copy(),
                    thrs, n_d, pd.height)
    n_k, Rn, M = lay.n_k, p.rec_thresholds.size, len(p.max_dets)
    npig_e = npig if p.use_cats else npig.sum(axis=0, keepdims=True)
    none = np.full((T, Rn, n_k, A, M), -1.0)
    res = E._result(rows, lay, p, none, np.full((T, n_k, A, M), -1.0), none, npig_e[:, keep],
                    keep, area_lo[keep], area_hi[keep], match_inputs, keep_code)
    cats = pl.DataFrame({CAT: np.arange(n_cat, dtype=np.int32),
                         s.FEATURE: pl.Series(rows.names, dtype=pl.String),
                         CATEGORY_ID: rows.cat_ids.astype(np.int64),
                         N_RECORDS: np.bincount(rows.d_cat[sel], minlength=n_cat),
                         **{f"{NPIG}{a}": npig[:, a] for a in range(A)}})
    images = pl.Series(s.DATA_ROW, rows.image_ids).cast(image_dtype)
    return res, BatchRecords(pl.DataFrame(cols), cats, images, rows.n_outside)


def category_axis(categories: pl.DataFrame, mode: str,
                  enum_names: list[str] | None) -> tuple[list[str], np.ndarray]:
    """The whole evaluation's category axis from the batches' (concatenated) axes, by the rule
    of :func:`polars_metrics.coco.inputs.category_axis`: ``mode`` "enum" (the Enum's
    categories), "id" (sorted category ids) or "name" (sorted names)."""
    if mode == "enum":
        names = list(enum_names or [])
        ids = np.full(len(names), -1, np.int64)
        known = categories.filter(pl.col(CATEGORY_ID) >= 0).unique(s.FEATURE, keep="first",
                                                                   maintain_order=True)
        lut = {n: i for i, n in enumerate(names)}
        for name, cid in known.select(s.FEATURE, CATEGORY_ID).iter_rows():
            ids[lut[name]] = cid
        return names, ids
    if mode == "id":
        first = categories.unique(CATEGORY_ID, keep="first", maintain_order=True).sort(CATEGORY_ID)
        return first[s.FEATURE].to_list(), first[CATEGORY_ID].to_numpy().astype(np.int64)
    names = sorted(set(categories[s.FEATURE].to_list()))
    return names, np.full(len(names), -1, np.int64)


def global_codes(categories: pl.DataFrame, mode: str, names: list[str],
                 ids: np.ndarray) -> np.ndarray:
    """Each row of a batch's categories table -> its index on the whole axis."""
    if mode == "id":
        return np.searchsorted(ids, categories[CATEGORY_ID].to_numpy())
    lut = {n: i for i, n in enumerate(names)}
    return np.array([lut[n] for n in categories[s.FEATURE].to_list()], np.int64)


class StreamedCocoResult(CocoResult):
    """A :class:`CocoResult` accumulated from batch records: the arrays, stats, summary and
    per-category frames of the whole evaluation; the per-prediction-row arrays (``dt_match``,
    ``dt_ignore``, ``dt_tp``, ``dt_rank``, ``gt_ignore``) are not kept (empty / refused):
    ``ev.matches`` and ``ev.data_rows`` hold the per-image outcomes."""

    @property
    def dt_rank(self) -> np.ndarray:  # not kept (see the class docstring)
        return np.empty(0, np.int64)

    @property
    def _matches(self):
        raise ValueError(
            "dt_match / dt_ignore / dt_tp are per row of the whole predictions table and are not "
            "kept by a streamed COCO evaluation; read ev.matches (true positives) or "
            "ev.data_rows, or evaluate in memory (no batching keyword, DataFrames).")


def accumulate(records: pl.DataFrame, npig: np.ndarray, image_ids: np.ndarray, p: CocoParams,
               names: list[str], cat_ids: np.ndarray, n_outside: int) -> CocoResult:
    """pycocotools' ``accumulate`` and ``summarize`` over the records of every batch.

    ``records``: ``_k`` on the whole category axis (``names``); each batch's records as
    :func:`batch_records` wrote them (category, image, input row), the batches in any order; ``npig``
    (n categories, A) summed over batches; ``image_ids``: the evaluation's sorted images.

    Examples
    --------
    Two batches of one image each give the arrays of the whole evaluation, bit for bit:

    >>> from polars_metrics.coco.engine import evaluate
    >>> from polars_metrics.coco.params import normalize_params
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"data_row": [1, 2], "feature": ["cat", "cat"],
    ...                    "bbox": [[0.0, 0, 10, 10]] * 2}, schema_overrides={"bbox": box})
    >>> pd = pl.DataFrame({"data_row": [1, 2, 2], "feature": ["cat"] * 3,
    ...                    "bbox": [[0.0, 0, 10, 8], [5.0, 5, 15, 15], [0.0, 0, 10, 10]],
    ...                    "confidence": [0.9, 0.8, 0.8], "row": [0, 1, 2]},
    ...                   schema_overrides={"bbox": box})
    >>> p = normalize_params("bbox", None, None, (1, 10, 100), None, True)
    >>> parts = [batch_records(gt.filter(pl.col("data_row") == i),
    ...                        pd.filter(pl.col("data_row") == i), p, "row")[1] for i in (1, 2)]
    >>> npig = sum(b.categories.select(pl.selectors.starts_with(NPIG)).to_numpy() for b in parts)
    >>> res = accumulate(pl.concat([b.records for b in parts]), npig, np.array([1, 2]), p,
    ...                  ["cat"], np.array([-1]), 0)
    >>> whole = evaluate(gt, pd, p)
    >>> bool(np.array_equal(res.precision, whole.precision)), float(res.stats[1].round(3))
    (True, 0.835)

    (AP50: the tied 0.8 detections of image 2 sweep in input order, the miss first: 51 recall
    thresholds at precision 1, 50 at 2/3.)
    """
    return accumulate_groups([(None, records)], npig, image_ids, p, names, cat_ids, n_outside)


def accumulate_groups(groups, npig: np.ndarray, image_ids: np.ndarray, p: CocoParams,
                      names: list[str], cat_ids: np.ndarray, n_outside: int) -> CocoResult:
    """:func:`accumulate` a group of categories at a time: ``groups`` yields (sorted category
    indices, their records) — ``None`` for every category — so only one group's records are in
    memory. ``accumulate`` runs per category, so the arrays are the same bits."""
    T, Rn, A, M = p.iou_thresholds.size, p.rec_thresholds.size, len(p.area_ranges), len(p.max_dets)
    n_k = len(names) if p.use_cats else 1
    npig_e = np.ascontiguousarray(npig if p.use_cats else npig.sum(axis=0, keepdims=True),
                                  dtype=np.int64)
    precision = np.full((T, Rn, n_k, A, M), -1.0)
    recall = np.full((T, n_k, A, M), -1.0)
    scores = np.full((T, Rn, n_k, A, M), -1.0)
    for cats, records in groups:
        cats = np.arange(n_k) if cats is None else np.asarray(cats, np.int64)
        _accumulate_into(records, cats, npig_e, image_ids, p, (precision, recall, scores))
    keep = p.area_labels.index("all") if "all" in p.area_labels else 0
    if not p.use_cats:
        names, cat_ids = ["all"], np.array([-1], np.int64)
    stats, md_used = summarize(precision, recall, p)
    empty = np.empty(0, np.bool_)
    return StreamedCocoResult(
        params=p, precision=precision, recall=recall, scores=scores, stats=stats,
        summary=summary_frame(stats, md_used),
        _per_category_of=(names, cat_ids, npig_e[:, keep]),
        category_ids=cat_ids, features=tuple(names), image_ids=image_ids,
        gt_ignore=empty, gt_id_zero=empty,
        match_area=p.area_labels[keep], n_pd_outside=n_outside)


def _accumulate_into(records: pl.DataFrame, cats: np.ndarray, npig_e: np.ndarray,
                     image_ids: np.ndarray, p: CocoParams, out) -> None:
    """``coco_accumulate`` over the records of the categories ``cats`` (pooled: ``[0]``),
    written into their cells of the ``(precision, recall, scores)`` arrays."""
    T, Rn, A, M = p.iou_thresholds.size, p.rec_thresholds.size, len(p.area_ranges), len(p.max_dets)
    n_g = cats.size
    k = (np.searchsorted(cats, records[CAT].cast(pl.Int64).to_numpy()) if p.use_cats
         else np.zeros(records.height, np.int64))
    score = np.ascontiguousarray(records[SCORE].to_numpy(), dtype=np.float64)
    img = np.searchsorted(image_ids, records[IMAGE].to_numpy())
    # engine._layout's sequence: base (image, row) — each batch's records of a category come
    # in that order and an image is in one batch, so a stable sort by image gives it — then
    # score descending, then category
    base = stable_order(img, image_ids.size, np.arange(k.size, dtype=np.int64))
    del img
    cat_ptr = offsets_from_lengths(np.bincount(k, minlength=n_g))
    by_cat = stable_order(k, n_g, base)  # category_orders sorts each category's range
    del base, k
    acc = np.empty(by_cat.size, np.int64)
    no_i, no_f = acc[:0], score[:0]  # only acc wanted
    run_ranges(L.category_orders, (cat_ptr, score[by_cat], no_i, acc, no_i, no_i, no_i, no_f,
                                   no_i), cat_ptr)
    acc = by_cat[acc]
    del by_cat
    score_acc = np.ascontiguousarray(score[acc])
    del score
    rank_acc = np.ascontiguousarray(records[RANK].cast(pl.Int64).to_numpy()[acc])
    npig_g = np.ascontiguousarray(npig_e[cats])
    max_dets = np.array(p.max_dets, np.int64)
    rec_thrs = np.ascontiguousarray(p.rec_thresholds, dtype=np.float64)
    precision, recall, scores = out
    for ch, t0 in enumerate(range(0, T, K.MAX_THR)):
        t1 = min(t0 + K.MAX_THR, T)
        code = np.empty((acc.size, A), np.uint32)
        for a in range(A):
            code[:, a] = records[code_column(ch, a)].to_numpy()[acc]
        g_prec = np.full((t1 - t0, Rn, n_g, A, M), -1.0)
        g_rec = np.full((t1 - t0, n_g, A, M), -1.0)
        g_scores = np.full((t1 - t0, Rn, n_g, A, M), -1.0)
        threaded.coco_accumulate(code, score_acc, rank_acc, cat_ptr, npig_g, max_dets, rec_thrs,
                          g_prec, g_rec, g_scores)
        precision[t0:t1, :, cats] = g_prec
        recall[t0:t1, cats] = g_rec
        scores[t0:t1, :, cats] = g_scores
