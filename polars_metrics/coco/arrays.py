""":class:`CocoResult`: the arrays of ``COCOeval.eval``, the stats, and per-detection matches."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import polars as pl

from polars_metrics._kernels import coco as K
from polars_metrics.coco import threaded
from polars_metrics.coco.params import CocoParams
from polars_metrics.coco.summary import format_summary, per_category
from polars_metrics.errors import PolarsMetricsError

ALL_IGNORED = ((1 << K.MAX_THR) - 1) << K.IGN_SHIFT  # a code word: ignored at every threshold


@dataclass(frozen=True)
class Gathered:
    """A per-detection argument a result does not keep: ``source[rows]``, gathered when it is
    needed. ``source`` is a column of the input table, shared with it (a result alive while
    the caller holds the input costs nothing for it).

    >>> Gathered(np.array([1.0, 2.0, 3.0]), np.array([2, 0], np.int32)).array().tolist()
    [3.0, 1.0]
    """

    source: np.ndarray
    rows: np.ndarray

    def array(self) -> np.ndarray:
        return np.ascontiguousarray(self.source[self.rows], dtype=np.float64)


@dataclass(frozen=True, eq=False)
class CocoResult:
    """Result of :func:`~polars_metrics.coco.evaluate_coco`; arrays laid out like ``COCOeval.eval``.

    Under ``pm.evaluate(..., profile="coco")`` it is ``ev.coco``.

    Examples
    --------
    >>> import polars as pl, polars_metrics as pm
    >>> gt = pl.DataFrame({"data_row": [1], "feature": ["cat"], "bbox": [[0.0, 0, 10, 10]]},
    ...                   schema_overrides={"bbox": pl.Array(pl.Float64, 4)})
    >>> res = pm.evaluate_coco(gt, gt.with_columns(confidence=pl.lit(0.9)))
    >>> type(res).__name__, res.precision.shape, round(float(res.stats[0]), 6)
    ('CocoResult', (10, 101, 1, 4, 3), 1.0)

    Attributes
    ----------
    params : CocoParams
        Thresholds, maxDets (sorted), area ranges and labels used.
    precision : ndarray, shape (T, R, K, A, M)
        Interpolated precision; -1 where a category has no (non-ignored) ground truth.
    recall : ndarray, shape (T, K, A, M)
        Final recall; -1 likewise.
    scores : ndarray, shape (T, R, K, A, M)
        Detection score at each recall threshold; -1 likewise.
    stats : ndarray, shape (12,)
        ``COCOeval.stats`` (AP, AP50, AP75, AP small/medium/large, AR1, AR10, AR100,
        AR small/medium/large); -1 where undefined, as in pycocotools.
    summary : DataFrame
        The 12 stats as rows: ``metric`` ("AP"/"AR"), ``iou`` (null = the whole
        ``iou_thresholds`` range, else the threshold), ``area``, ``max_dets``, ``value``
        (-1 where undefined, equal to ``stats``).
    per_category : DataFrame
        One row per category of the K axis: ``category_id``, ``feature``, ``n_gt``
        (non-ignored ground truths at area "all") and the 12 stats restricted to the
        category (``ap``, ``ap50``, ``ap75``, ``ap_small``, ``ap_medium``, ``ap_large``,
        ``ar1``, ``ar10``, ``ar100``, ``ar_small``, ``ar_medium``, ``ar_large``; names follow
        the maxDets used), null where undefined.
    category_ids : ndarray (K,)
        Category id of each K index (-1 where unknown; ``use_cats=False``: ``[-1]``).
    features : tuple of str
        Feature name of each K index.
    image_ids : ndarray
        The evaluated images (sorted unique ``data_row`` of the ground truth).
    dt_match : ndarray, shape (T, n_pd), int32
        (Computed on first access; a transposed view of a row-major ``(n_pd, T)`` array:
        ``dt_match[:, i]`` is contiguous.) COCO matching at area ``match_area`` and the largest
        maxDet: for IoU threshold index ``t`` and prediction row ``i`` (row of the ``pd`` frame
        as given), the row of the ``gt`` frame it matched, or -1. A match with a ground truth
        whose ``id`` is 0 is reported here, but pycocotools counts it as unmatched (its
        ``dtMatches`` stores the id, 0); the ``dt_tp`` property follows pycocotools.
    dt_ignore : ndarray, shape (T, n_pd), bool
        ``dtIgnore``: the prediction neither counts as TP nor FP (matched to an ignored
        ground truth — crowd or area out of range — or unmatched with its own area out of
        range). Predictions not evaluated at all (beyond the largest maxDet in their
        (image, category), on images absent from ``gt``, or of unknown categories) are
        ignored too.
    dt_rank : ndarray (n_pd,), int64
        Rank of each prediction within its (image, category) by score (ties in input
        order); -1 for predictions not evaluated. Rank < maxDet selects the detections of
        a maxDet setting.
    gt_id_zero : ndarray (n_gt,), bool
        Ground-truth rows whose ``id`` is 0 (see ``dt_match``).
    gt_ignore : ndarray (n_gt,), bool
        ``gtIgnore`` per ground-truth row at area ``match_area``; True for placeholder rows.
        Non-ignored ground truths not matched by any prediction at threshold ``t`` are the
        false negatives there.
    match_area : str
        Area label of the match arrays ("all" unless custom ranges lack it: then the first).
    n_pd_outside : int
        Predictions left out because their image is not in ``gt`` or their category is not
        in the category list (pycocotools' ``getAnnIds`` filter drops them the same way).
    """

    params: CocoParams
    precision: np.ndarray
    recall: np.ndarray
    scores: np.ndarray
    stats: np.ndarray
    summary: pl.DataFrame
    category_ids: np.ndarray
    features: tuple[str, ...]
    image_ids: np.ndarray
    gt_ignore: np.ndarray = field(repr=False)
    gt_id_zero: np.ndarray = field(repr=False)
    match_area: str = "all"
    n_pd_outside: int = 0
    _match_inputs: tuple = field(default=(), repr=False)
    # what the lazily built frames are made of: (names, category ids, non-ignored ground
    # truths per category) for ``per_category``; (evaluated rows, their rank, their position
    # in the code, the largest maxDet, [the code at match_area] until taken, n_pd) for
    # ``take_row_code``
    _per_category_of: tuple = field(default=(), repr=False)
    _row_code_of: tuple = field(default=(), repr=False)

    @cached_property
    def per_category(self) -> pl.DataFrame:
        """The 12 stats per category (see the class docstring), built on first access."""
        names, cat_ids, n_gt = self._per_category_of
        return per_category(self.precision, self.recall, self.params, names, cat_ids, n_gt)

    @cached_property
    def dt_rank(self) -> np.ndarray:
        """(n_pd,) int64, see the class docstring; built on first access (a result holds the
        ranks of the evaluated rows only, so two results alive cost two fewer full columns)."""
        pd_rows, rank, _, max_det, _, n_pd = self._row_code_of
        out = np.full(n_pd, -1, np.int64)
        evaluated = rank < max_det
        out[pd_rows[evaluated]] = rank[evaluated]
        return out

    def evaluated(self) -> np.ndarray:
        """(n_pd,) bool: ``dt_rank >= 0`` (the prediction rows evaluated), without building and
        keeping ``dt_rank``: a result read only for its tables holds no per-row ranks."""
        pd_rows, rank, _, max_det, _, n_pd = self._row_code_of
        out = np.zeros(n_pd, np.bool_)
        out[pd_rows[rank < max_det]] = True
        return out

    def take_row_code(self) -> np.ndarray:
        """(n_pd, n_chunks) int64: the matcher's code word per prediction row at
        ``match_area`` and chunk of 16 IoU thresholds (bit t: true positive, bit 16 + t:
        ignored; rows not evaluated are ignored everywhere) — what the cube's counts are built
        from (coco.cube). Its one reader, the cube's tables (built once), takes it: the result
        keeps the code words until then, and none after (nor when evaluated without
        ``for_tables``, as ``pm.evaluate_coco`` does)."""
        pd_rows, rank, dt_pos, max_det, kept_code, n_pd = self._row_code_of
        if not kept_code:
            raise PolarsMetricsError(
                "this COCO result keeps no code words: they are taken once, by the cube's "
                "tables of pm.evaluate(profile='coco') (pm.evaluate_coco keeps none).")
        keep_code = kept_code.pop()
        row_code = np.full((n_pd, keep_code.shape[1]), ALL_IGNORED, np.int64)
        evaluated = rank < max_det
        rows, pos = pd_rows[evaluated], dt_pos[evaluated]
        if keep_code.shape[1] == 1:  # one chunk of thresholds: 1-d gathers are much faster
            row_code[:, 0][rows] = keep_code[:, 0][pos]
        else:
            row_code[rows] = keep_code[pos]
        return row_code

    @cached_property
    def _matches(self) -> tuple[np.ndarray, np.ndarray]:
        # the per-row match arrays are not needed for the COCO numbers: computed on first use
        # by re-running the matching at the recorded area only
        args, lo, hi, thrs, n_d, n_rows = self._match_inputs
        # the kernel's index arrays are int64; the result keeps them narrowed, and an input
        # column as it is (engine._result)
        args = tuple(a.array() if isinstance(a, Gathered) else
                     a.astype(np.int64) if isinstance(a, np.ndarray) and a.dtype.kind in "iu"
                     else a for a in args)
        T = thrs.size
        dt_match = np.full((n_rows, T), -1, np.int32)
        dt_ignore = np.ones((n_rows, T), np.bool_)
        code = np.empty((n_d, 1), np.uint32)
        for t0 in range(0, T, K.MAX_THR):
            t1 = min(t0 + K.MAX_THR, T)
            m = np.full((n_rows, t1 - t0), -1, np.int32)
            ig = np.ones((n_rows, t1 - t0), np.bool_)
            threaded.coco_match(*args, lo, hi, thrs[t0:t1].copy(), 0, code, m, ig)
            dt_match[:, t0:t1] = m
            dt_ignore[:, t0:t1] = ig
        return dt_match.T, dt_ignore.T

    @property
    def dt_match(self) -> np.ndarray:
        """(T, n_pd) int32, see the class docstring."""
        return self._matches[0]

    @property
    def dt_ignore(self) -> np.ndarray:
        """(T, n_pd) bool, see the class docstring."""
        return self._matches[1]

    @property
    def dt_tp(self) -> np.ndarray:
        """(T, n_pd) bool: true positive as pycocotools counts it (matched, not ignored, the
        ground truth's id is not 0). ``~dt_tp & ~dt_ignore`` are the false positives."""
        m = self.dt_match
        # unmatched (-1) looks up a padding entry: there may be no ground truth at all
        zero = np.append(self.gt_id_zero, False)
        return (m >= 0) & ~self.dt_ignore & ~zero[np.where(m >= 0, m, zero.shape[0] - 1)]

    def arrays(self) -> dict[str, np.ndarray]:
        """``{"precision", "recall", "scores"}`` as in ``COCOeval.eval``."""
        return {"precision": self.precision, "recall": self.recall, "scores": self.scores}

    def format_summary(self) -> str:
        """The 12 lines ``COCOeval.summarize()`` prints, character for character."""
        return format_summary(self.params, self.summary)

    def __str__(self) -> str:
        return self.format_summary()
