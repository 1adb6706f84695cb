"""The cube, confusion and data-row tables under COCO matching — what pycocotools never reports.

The per-detection match arrays of a :class:`~polars_metrics.coco.arrays.CocoResult` (area "all",
the largest maxDet) give TP / FP / FN at every (confidence, IoU) cell. COCO matching is
score-ordered per (image, category), so the matches differ per IoU threshold but not per
confidence threshold: a detection that passes ``n`` confidence thresholds counts in the cells
``c < n`` of every IoU threshold where it is counted (true positive / not ignored). Each
detection is added once, at ``n - 1``, to a per-(slice, category) and a per-image histogram
over (confidence, IoU), which a sum from the top of the confidence axis turns into counts
(``_kernels/coco_tables.py``) — read from the code words the one matcher run left
(``CocoResult.take_row_code()``), without expanding (threshold × detection) cells. The same
:func:`polars_metrics.cube.tables_from_matched` as the default profile labels them.

Counted like pycocotools: ignored detections (matched to a crowd or ignored ground truth, beyond
maxDet) are neither TP nor FP; ignored ground truths are never FN. Matching is per image, so
the counts of a slice of images (``by=``) are the counts of its images: one pass serves every
slice (unlike AP, which is evaluated per slice).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, partial

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics._arrays import narrowed, widened
from polars_metrics._kernels.aot import kernel
from polars_metrics._parallel import run_ranges
from polars_metrics.coco.arrays import CocoResult
from polars_metrics.coco.inputs import CATEGORY_ID, f64, positions
from polars_metrics.cube import label_tables, tables_from_matched
from polars_metrics.prepare import SLICE
from polars_metrics.state import RowTable

coco_cell_counts = kernel("coco_tables", "coco_cell_counts")
image_rows = kernel("coco_tables", "image_rows")


@dataclass(frozen=True, eq=False)
class CubeTables:
    """The additive tables of one COCO run, and what ``examples()`` reads.

    counts, confusion : as ``PartialResult`` (slice and feature labelled).
    data_rows : per (image, *by, confidence_threshold, iou_threshold) counts and ratios; kept
        as the per-image counts it is built from (``rows``, a
        :class:`~polars_metrics.state.RowTable`): built on read and cached weakly, so a result
        nobody reads the table of, or holds it no longer, keeps 2 × 8 bytes per (image,
        confidence, IoU) instead of the frame's 88.
    gt_counted : (data_row, gt_id, feature) of the ground truths that count (not ignored).
    matches : true positives (data_row, iou_threshold, gt_id, pd_id, confidence, gt_feature,
        pd_feature); a TP at IoU threshold t counts at every confidence threshold <= confidence.
    false_positives : (data_row, iou_threshold, pd_id, confidence, pd_feature): counted
        detections that are not true positives at that IoU threshold.

    ``matches`` and ``false_positives`` are built on first access (then kept): they hold one
    row per (IoU threshold × detection) — millions of rows for a large results file — and only
    ``examples()``, ``ev.matches`` and the report read them. Until then the tables keep the
    few prediction columns they are built from (image id, confidence, id), not the input
    tables; the rows are the same whenever they are built.
    """

    counts: pl.DataFrame
    confusion: pl.DataFrame
    rows: RowTable | pl.DataFrame  # a streamed run's is the frame its batches wrote
    gt_counted: pl.DataFrame
    _build_matches: Callable[[], pl.DataFrame] = field(repr=False)
    _build_false_positives: Callable[[], pl.DataFrame] = field(repr=False)

    @property
    def data_rows(self) -> pl.DataFrame:
        """The per-image table (see the class docstring)."""
        return self.rows.frame() if isinstance(self.rows, RowTable) else self.rows

    @cached_property
    def matches(self) -> pl.DataFrame:
        """True positives (see the class docstring); built on first access."""
        return self._build_matches()

    @cached_property
    def false_positives(self) -> pl.DataFrame:
        """Counted detections that are not true positives (see the class docstring); built on
        first access."""
        return self._build_false_positives()

    def renamed(self, mapping: dict[str, str]) -> CubeTables:
        """The same tables with columns renamed (``strict=False``); the lazy ones when built.
        The lazy builders are partials of module functions, not lambdas, so that a result
        pickles (a :class:`RowTable` pickles as its frame)."""
        def rn(frame: pl.DataFrame) -> pl.DataFrame:
            return frame.rename(mapping, strict=False)

        return CubeTables(
            counts=rn(self.counts), confusion=rn(self.confusion),
            rows=RowTable(lambda: rn(self.data_rows)), gt_counted=rn(self.gt_counted),
            _build_matches=partial(_built_renamed, self._build_matches, mapping),
            _build_false_positives=partial(_built_renamed, self._build_false_positives, mapping))


def _built_renamed(build: Callable[[], pl.DataFrame], mapping: dict[str, str]) -> pl.DataFrame:
    return build().rename(mapping, strict=False)


def category_index(frame: pl.DataFrame, res: CocoResult) -> np.ndarray:
    """Each row's index on ``res``'s category axis (-1: none); ``use_cats=False``: 0."""
    if len(res.features) == 1 and res.category_ids[0] == -1 and res.features[0] == "all":
        return (np.where(frame[s.FEATURE].is_null().to_numpy(), -1, 0) if s.FEATURE in frame.columns
                else np.zeros(frame.height, np.int64))
    if s.FEATURE in frame.columns:
        dtype = frame.schema[s.FEATURE]
        if isinstance(dtype, pl.Enum) and tuple(dtype.categories) == res.features:
            return frame[s.FEATURE].to_physical().cast(pl.Int64).fill_null(-1).to_numpy()
        lut = {name: i for i, name in enumerate(res.features)}
        return (frame[s.FEATURE].cast(pl.String)
                .replace_strict(lut, default=-1, return_dtype=pl.Int64).fill_null(-1).to_numpy())
    lut = {int(c): i for i, c in enumerate(res.category_ids)}
    return (frame[CATEGORY_ID].replace_strict(lut, default=-1, return_dtype=pl.Int64)
            .fill_null(-1).to_numpy())


def cube_tables(gt: pl.DataFrame, pd: pl.DataFrame, res: CocoResult, *, conf_thr: np.ndarray,
                images: pl.DataFrame, slices: pl.DataFrame, by: tuple[str, ...],
                ids: tuple[pl.Series, pl.Series], zero_tn: bool) -> CubeTables:
    """The tables of one run. ``images`` lists ``res.image_ids`` in order with their ``by``
    values and ``_slice``; ``ids`` are the gt / pd annotation ids reported in the frames.

    The counts come from the matcher's code word per detection (``res.take_row_code()``): each
    detection is added once to a (key, confidence, IoU) histogram at its last passed
    confidence threshold, and the histogram is summed from the top of the confidence axis
    (``_kernels/coco_tables.py``) — no (threshold × detection) cells are expanded and the
    matcher does not run again.
    """
    iou_thr = np.asarray(res.params.iou_thresholds, dtype=np.float64)
    C, T, F, S = conf_thr.shape[0], iou_thr.shape[0], len(res.features), slices.height
    n_img = res.image_ids.shape[0]
    g_cat, d_cat = category_index(gt, res), category_index(pd, res)
    img_slice = images[SLICE].to_numpy().astype(np.int64)
    g_img = positions(res.image_ids, gt[s.DATA_ROW].to_numpy())
    d_img = np.minimum(positions(res.image_ids, pd[s.DATA_ROW].to_numpy()), max(n_img - 1, 0))
    d_slice = img_slice[d_img] if n_img else np.zeros(pd.height, np.int64)
    g_key = img_slice[g_img] * F + g_cat if n_img else g_cat
    d_key = d_slice * F + d_cat
    counted_gt = ~res.gt_ignore & (g_cat >= 0)
    evaluated = res.evaluated()
    # rows not evaluated carry every ignore bit: the kernel skips them before reading their
    # key; threads take disjoint IoU thresholds (scores are finite: the row checks said so)
    key_tp, key_pd = (np.zeros((T, S * F, C), np.int64) for _ in range(2))
    img_tp, img_pd = (np.zeros((T, n_img, C), np.int32) for _ in range(2))
    run_ranges(coco_cell_counts, (res.take_row_code(), f64(pd[s.CONFIDENCE]),
                                  np.ascontiguousarray(conf_thr, dtype=np.float64),
                                  np.maximum(d_key, 0).astype(np.int64), d_img.astype(np.int64),
                                  key_tp, key_pd, img_tp, img_pd),
               np.arange(T + 1, dtype=np.int64) * max(pd.height, 1))
    key_tp = np.ascontiguousarray(key_tp.transpose(1, 2, 0))  # (key, c, t) from here on
    key_pd = np.ascontiguousarray(key_pd.transpose(1, 2, 0))
    gt_total = np.bincount(g_key[counted_gt], minlength=S * F).reshape(S, F)
    n_pd = np.bincount(d_key[evaluated], minlength=S * F).reshape(S, F)
    # the matched (slice, gt feature, pd feature) keys: COCO matching is class-aware
    sf = np.flatnonzero(key_tp.reshape(S * F, C * T).any(axis=1))  # (no -1: F may be 0)
    uniq = (sf // F * (F + 1) + sf % F) * (F + 1) + sf % F
    counts, confusion = tables_from_matched(
        uniq, key_tp[sf], n_slices=S, n_features=F,
        gt_total=np.broadcast_to(gt_total[:, None, None, :], (S, C, T, F)),
        pd_total=key_pd.reshape(S, F, C, T).transpose(0, 2, 3, 1), present=(gt_total + n_pd) > 0,
        iou_sum=np.zeros((S, C, F)), iou_rows=np.zeros((S, C, F), np.int64),
        tn=np.zeros((S, C, F), np.int64), has_tn=np.zeros(F, bool),
    )
    iou_rounded = np.round(iou_thr, s.THRESHOLD_DECIMALS)
    counts_df, confusion_df = label_tables(counts, confusion, slices=slices, by=by,
                                           features=res.features, conf_thr=conf_thr,
                                           iou_thr=iou_rounded)
    img_gt = np.bincount(g_img[counted_gt], minlength=n_img)
    head = images.select(s.DATA_ROW, *by)
    # what the data-row table is built from, kept narrowed (a detection count per image: a
    # byte or two an entry, not 4) and widened for the kernel when the table is built
    img = narrowed(tp=img_tp, pd=img_pd)
    rows = RowTable(lambda: _image_table(head, conf_thr, iou_rounded, widened(img["tp"]),
                                         widened(img["pd"]), img_gt, zero_tn))
    feats = pl.Series(list(res.features), dtype=pl.String)
    # what the lazy tables keep of each detection's category: a byte while K <= 256 (-1,
    # a detection of no category, keeps it int32)
    d_cat = narrowed(d_cat=d_cat)["d_cat"]
    gt_ids, pd_ids = ids
    # what the lazy tables read: a few prediction columns, not the input tables
    pd_cols = pd.select(s.DATA_ROW, s.CONFIDENCE).with_columns(pd_ids.alias(_PD_ID))
    return CubeTables(
        counts=counts_df, confusion=confusion_df, rows=rows,
        gt_counted=pl.DataFrame({s.DATA_ROW: gt[s.DATA_ROW].filter(counted_gt),
                                 s.GT_ID: gt_ids.filter(counted_gt),
                                 s.FEATURE: feats.gather(g_cat[counted_gt])}),
        _build_matches=partial(_matches, pd_cols, res, iou_rounded, d_cat, gt_ids, feats),
        _build_false_positives=partial(_false_positives, pd_cols, res, iou_rounded, d_cat, feats),
    )


_PD_ID = "__pd_id"


def _image_table(images: pl.DataFrame, conf_thr, iou_thr, tp, kept, n_gt, zero_tn) -> pl.DataFrame:
    """Per (image, *by, c, t): TP, FP, FN and their ratios (``iou`` null, ``tn`` null or 0),
    from ``tp`` / ``kept`` counts laid out (t, image, c).
    Built from numpy columns in one kernel pass (``image_rows``): the ratios are the same IEEE
    divisions ``metrics.ratio_columns`` makes (int64 counts as float64), null where the
    denominator is 0."""
    T, n, C = tp.shape
    tp_rows, fp, fn = (np.empty(n * C * T, np.int64) for _ in range(3))
    precision, recall, f1 = (np.empty(n * C * T, np.float64) for _ in range(3))
    run_ranges(image_rows, (tp, kept, n_gt.astype(np.int64), tp_rows, fp, fn, precision, recall,
                            f1), np.arange(n + 1, dtype=np.int64) * (C * T))
    key = images[s.DATA_ROW]
    if images.width == 1 and key.dtype.is_numeric() and not key.has_nulls():
        head = pl.DataFrame({s.DATA_ROW: np.repeat(key.to_numpy(), C * T)}, schema=images.schema)
    else:
        head = images.select(pl.all().gather(np.repeat(np.arange(n), C * T)))
    body = pl.DataFrame({
        s.CONFIDENCE_THRESHOLD: np.tile(np.repeat(conf_thr, T), n),
        s.IOU_THRESHOLD: np.tile(iou_thr, n * C),
        s.TP: tp_rows, s.FP: fp, s.FN: fn,
        s.PRECISION: pl.Series(precision, nan_to_null=True),
        s.RECALL: pl.Series(recall, nan_to_null=True), s.F1: pl.Series(f1, nan_to_null=True),
    })
    tn = pl.lit(0 if zero_tn else None, dtype=pl.Int64).alias(s.TN)
    frame = pl.concat([head, body], how="horizontal").with_columns(
        tn, pl.lit(None, dtype=pl.Float64).alias(s.IOU))
    return frame.select(*head.columns, s.CONFIDENCE_THRESHOLD, s.IOU_THRESHOLD, s.TP, s.FP, s.TN,
                        s.FN, s.PRECISION, s.RECALL, s.F1, s.IOU)


def _matches(pd_cols: pl.DataFrame, res: CocoResult, iou_thr, d_cat, gt_ids,
             feats) -> pl.DataFrame:
    """(data_row, iou_threshold, gt_id, pd_id, confidence, gt_feature, pd_feature) of every TP,
    IoU threshold by IoU threshold, predictions in row order (the matcher runs again here, at
    the matched area only, for the matched ground truths: ``res.dt_match``)."""
    t_tp, i_tp = np.nonzero(res.dt_tp)
    g_row = res.dt_match[t_tp, i_tp]
    cat = feats.gather(d_cat[i_tp])
    return pl.DataFrame({
        s.DATA_ROW: pd_cols[s.DATA_ROW].gather(i_tp),
        s.IOU_THRESHOLD: iou_thr[t_tp],
        s.GT_ID: gt_ids.gather(g_row),
        s.PD_ID: pd_cols[_PD_ID].gather(i_tp).alias(s.PD_ID),
        s.CONFIDENCE: pd_cols[s.CONFIDENCE].gather(i_tp),
        s.GT_FEATURE: cat.alias(s.GT_FEATURE),
        s.PD_FEATURE: cat.alias(s.PD_FEATURE),
    })


def _false_positives(pd_cols: pl.DataFrame, res: CocoResult, iou_thr, d_cat,
                     feats) -> pl.DataFrame:
    """(data_row, iou_threshold, pd_id, confidence, pd_feature) of the counted detections that
    are not true positives, IoU threshold by IoU threshold, predictions in row order."""
    counted_pd = ~res.dt_ignore & res.evaluated()[None, :]
    fp_t, fp_i = np.nonzero(counted_pd & ~res.dt_tp)
    return pl.DataFrame({
        s.DATA_ROW: pd_cols[s.DATA_ROW].gather(fp_i), s.IOU_THRESHOLD: iou_thr[fp_t],
        s.PD_ID: pd_cols[_PD_ID].gather(fp_i).alias(s.PD_ID),
        s.CONFIDENCE: pd_cols[s.CONFIDENCE].gather(fp_i),
        s.PD_FEATURE: feats.gather(d_cat[fp_i])})
