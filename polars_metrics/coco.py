"""Exact pycocotools ``COCOeval`` (``bbox`` and ``segm``) over Polars frames.

``evaluate_coco(gt, pd)`` returns a :class:`CocoResult` whose ``precision``, ``recall`` and
``scores`` arrays equal ``COCOeval.eval`` and whose ``stats`` equal ``COCOeval.stats``
(SPEC §6, profile ``coco``). There is no Python loop per image or per (image, category): the
rows are sorted once, and numba kernels run over group offsets.

The frames follow the layout of :func:`polars_metrics.io.coco.read_coco`.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numba
import numpy as np
import polars as pl

from polars_metrics._kernels import coco as K
from polars_metrics._kernels import rle as R
from polars_metrics.errors import (
    InvalidAnnotationError,
    PolarsMetricsWarning,
    SchemaError,
    ThresholdError,
)
from polars_metrics.kinds.mask import mask_csr

# pycocotools' Params.setDetParams, computed the same way so every float is identical
DEFAULT_IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
DEFAULT_REC_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
DEFAULT_MAX_DETS = (1, 10, 100)
DEFAULT_AREA_RANGES: dict[str, tuple[float, float]] = {
    "all": (0**2, 1e5**2),
    "small": (0**2, 32**2),
    "medium": (32**2, 96**2),
    "large": (96**2, 1e5**2),
}
IOU_TYPES = ("bbox", "segm")

# (ap?, iou, area, index into max_dets) of COCOeval.summarize()._summarizeDets, in order; the
# first stat calls _summarize(1) with its default maxDets=100 (a literal, coded as -100 here)
_STAT_SPECS: tuple[tuple[bool, float | None, str, int], ...] = (
    (True, None, "all", -100),
    (True, 0.5, "all", 2),
    (True, 0.75, "all", 2),
    (True, None, "small", 2),
    (True, None, "medium", 2),
    (True, None, "large", 2),
    (False, None, "all", 0),
    (False, None, "all", 1),
    (False, None, "all", 2),
    (False, None, "small", 2),
    (False, None, "medium", 2),
    (False, None, "large", 2),
)


@dataclass(frozen=True)
class CocoParams:
    """The evaluation settings actually used (pycocotools ``Params`` after ``evaluate``)."""

    iou_type: str
    iou_thresholds: np.ndarray
    rec_thresholds: np.ndarray
    max_dets: tuple[int, ...]
    area_ranges: tuple[tuple[float, float], ...]
    area_labels: tuple[str, ...]
    use_cats: bool


@dataclass(frozen=True, eq=False)
class CocoResult:
    """Result of :func:`evaluate_coco`; arrays are laid out exactly like ``COCOeval.eval``.

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
        (Computed on first access; a transposed view of a row-major ``(n_pd, T)`` array: ``dt_match[:, i]`` is
        contiguous.) COCO matching at area ``match_area`` and the largest maxDet: for IoU threshold index
        ``t`` and prediction row ``i`` (row of the ``pd`` frame as given), the row of the
        ``gt`` frame it matched, or -1. A match with a ground truth whose ``id`` is 0 is
        reported here, but pycocotools counts it as unmatched (its ``dtMatches`` stores the
        id, 0); the ``dt_tp`` property follows pycocotools.
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
    per_category: pl.DataFrame
    category_ids: np.ndarray
    features: tuple[str, ...]
    image_ids: np.ndarray
    dt_rank: np.ndarray = field(repr=False)
    gt_ignore: np.ndarray = field(repr=False)
    gt_id_zero: np.ndarray = field(repr=False)
    match_area: str = "all"
    n_pd_outside: int = 0
    _match_inputs: tuple = field(default=(), repr=False)

    @cached_property
    def _matches(self) -> tuple[np.ndarray, np.ndarray]:
        # the per-row match arrays are not needed for the COCO numbers: computed on first use
        # by re-running the matching at the recorded area only
        args, lo, hi, thrs, n_d, n_rows = self._match_inputs
        T = thrs.size
        dt_match = np.full((n_rows, T), -1, np.int32)
        dt_ignore = np.ones((n_rows, T), np.bool_)
        code = np.empty((n_d, 1), np.uint32)
        for t0 in range(0, T, K.MAX_THR):
            t1 = min(t0 + K.MAX_THR, T)
            m = np.full((n_rows, t1 - t0), -1, np.int32)
            ig = np.ones((n_rows, t1 - t0), np.bool_)
            K.coco_match(*args, lo, hi, thrs[t0:t1].copy(), 0, code, m, ig)
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
        return (m >= 0) & ~self.dt_ignore & ~self.gt_id_zero[np.maximum(m, 0)]

    def arrays(self) -> dict[str, np.ndarray]:
        """``{"precision", "recall", "scores"}`` as in ``COCOeval.eval``."""
        return {"precision": self.precision, "recall": self.recall, "scores": self.scores}

    def format_summary(self) -> str:
        """The 12 lines ``COCOeval.summarize()`` prints, character for character."""
        p = self.params
        lines = []
        for (ap, iou, area, _), md, value in zip(
            _STAT_SPECS, self.summary["max_dets"], self.stats, strict=True
        ):
            title = "Average Precision" if ap else "Average Recall"
            kind = "(AP)" if ap else "(AR)"
            iou_str = (
                f"{p.iou_thresholds[0]:0.2f}:{p.iou_thresholds[-1]:0.2f}"
                if iou is None
                else f"{iou:0.2f}"
            )
            lines.append(
                f" {title:<18} {kind} @[ IoU={iou_str:<9} | area={area:>6s} | "
                f"maxDets={md:>3d} ] = {value:0.3f}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format_summary()


# --- inputs -------------------------------------------------------------------------------------
def _normalize_params(
    iou_type: str,
    iou_thresholds: Sequence[float] | np.ndarray | None,
    rec_thresholds: Sequence[float] | np.ndarray | None,
    max_dets: Sequence[int],
    area_ranges: Mapping[str, Sequence[float]] | Sequence[Sequence[float]] | None,
    use_cats: bool,
) -> CocoParams:
    if iou_type not in IOU_TYPES:
        raise SchemaError(f'iou_type must be "bbox" or "segm", got {iou_type!r}.')

    def thr(values, default, name):
        if values is None:
            return default.copy()
        arr = np.asarray(values, dtype=np.float64).ravel()
        if arr.size == 0 or not np.isfinite(arr).all():
            raise ThresholdError(f"{name} must be a non-empty list of finite numbers.")
        return arr  # kept as given: pycocotools compares floats exactly

    md = tuple(sorted(int(m) for m in max_dets))
    if not md or md[0] < 0:
        raise ThresholdError(f"max_dets must be non-negative integers, got {max_dets!r}.")
    if area_ranges is None:
        labels, ranges = tuple(DEFAULT_AREA_RANGES), tuple(DEFAULT_AREA_RANGES.values())
    elif isinstance(area_ranges, Mapping):
        labels = tuple(str(k) for k in area_ranges)
        ranges = tuple((float(v[0]), float(v[1])) for v in area_ranges.values())
    else:
        ranges = tuple((float(v[0]), float(v[1])) for v in area_ranges)
        labels = tuple(list(DEFAULT_AREA_RANGES)[: len(ranges)]) if len(ranges) <= 4 else tuple(
            f"area{i}" for i in range(len(ranges))
        )
    if not ranges:
        raise ThresholdError("area_ranges is empty: give at least one (low, high) range.")
    return CocoParams(
        iou_type=iou_type,
        iou_thresholds=thr(iou_thresholds, DEFAULT_IOU_THRESHOLDS, "iou_thresholds"),
        rec_thresholds=thr(rec_thresholds, DEFAULT_REC_THRESHOLDS, "rec_thresholds"),
        max_dets=md,
        area_ranges=ranges,
        area_labels=labels,
        use_cats=bool(use_cats),
    )


def _f64(s: pl.Series) -> np.ndarray:
    return _w(s.cast(pl.Float64).to_numpy(), np.float64)


def _xywh(frame: pl.DataFrame, rows: np.ndarray, table: str) -> np.ndarray:
    """COCO ``x, y, w, h`` boxes of the given rows: the original ``bbox_xywh`` when present
    (bit-exact), else derived from the ``bbox`` x0, y0, x1, y1 column."""
    col = "bbox_xywh" if "bbox_xywh" in frame.columns else "bbox"
    if col not in frame.columns:
        raise SchemaError(f'{table}: iou_type="bbox" needs a "bbox" column (x0, y0, x1, y1).')
    s = frame[col]
    if s.null_count():
        bad = np.flatnonzero(s.is_null().to_numpy()[rows])
        if bad.size:
            raise InvalidAnnotationError(
                f'{table}: row {int(rows[bad[0]])} has a null "{col}"; bbox evaluation needs a '
                f"box on every annotation ({bad.size} rows). Drop them or fill the box."
            )
    arr = s.to_numpy()
    arr = np.asarray(arr, dtype=np.float64).reshape(-1, 4)[rows]
    if col == "bbox":
        arr = np.stack(
            [arr[:, 0], arr[:, 1], arr[:, 2] - arr[:, 0], arr[:, 3] - arr[:, 1]], axis=1
        )
    return np.ascontiguousarray(arr)


def _w(a: np.ndarray, dtype) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=dtype)
    return a if a.flags.writeable else a.copy()


def _seg_index(offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Flat indices of the CSR segments of ``rows``, concatenated in that order."""
    lens = offsets[rows + 1] - offsets[rows]
    starts = offsets[rows] - (np.cumsum(lens) - lens)
    return np.repeat(starts, lens) + np.arange(int(lens.sum()), dtype=np.int64)


def _take_csr(counts: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The CSR sub-batch of ``rows``."""
    if rows.size == offsets.size - 1 and np.array_equal(rows, np.arange(rows.size)):
        return counts, offsets
    lens = offsets[rows + 1] - offsets[rows]
    new_off = np.zeros(rows.size + 1, np.int64)
    np.cumsum(lens, out=new_off[1:])
    return np.ascontiguousarray(counts[_seg_index(offsets, rows)]), new_off


def _masks(frame: pl.DataFrame, rows: np.ndarray, table: str, img_hw: tuple[np.ndarray, np.ndarray] | None,
           img_idx: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """RLE masks of the given rows; predictions without a mask get their box rasterized the way
    ``loadRes`` does for bbox results (a 4-point polygon)."""
    if "mask" not in frame.columns:
        if table == "pd" and img_hw is not None:
            null = np.ones(frame.height, bool)
            counts, offsets = np.zeros(0, np.uint32), np.zeros(frame.height + 1, np.int64)
            h = w = np.zeros(frame.height, np.int64)
        else:
            raise SchemaError(f'{table}: iou_type="segm" needs a "mask" column.')
    else:
        counts, offsets, h, w, null = mask_csr(frame["mask"])
    counts, offsets = _take_csr(counts, offsets, rows)
    h, w, null = h[rows], w[rows], null[rows]
    if null.any():
        if table != "pd" or img_hw is None:
            bad = int(rows[np.flatnonzero(null)[0]])
            raise InvalidAnnotationError(
                f'{table}: row {bad} has no "mask"; segm evaluation needs a mask (or polygon '
                f"rasterized at load) on every annotation ({int(null.sum())} rows)."
            )
        # loadRes: segmentation = [[x1, y1, x1, y2, x2, y2, x2, y1]] from the box
        fill = np.flatnonzero(null)
        xywh = _xywh(frame, rows[fill], table)
        x1, y1 = xywh[:, 0], xywh[:, 1]
        x2, y2 = x1 + xywh[:, 2], y1 + xywh[:, 3]
        coords = np.stack([x1, y1, x1, y2, x2, y2, x2, y1], axis=1).ravel()
        ih, iw = img_hw[0][img_idx[fill]], img_hw[1][img_idx[fill]]
        ptr = np.arange(fill.size + 1, dtype=np.int64)
        bc, bo = R.rle_from_polygons(coords, ptr * 8, ptr, ih, iw)
        # splice the rasterized boxes in
        lens = offsets[1:] - offsets[:-1]
        lens[fill] = bo[1:] - bo[:-1]
        h, w = h.copy(), w.copy()
        h[fill], w[fill] = ih, iw
        new_off = np.zeros(rows.size + 1, np.int64)
        np.cumsum(lens, out=new_off[1:])
        new_counts = np.empty(new_off[-1], np.uint32)
        keep = np.flatnonzero(~null)
        new_counts[_seg_index(new_off, keep)] = counts[_seg_index(offsets, keep)]
        new_counts[_seg_index(new_off, fill)] = bc
        counts, offsets = new_counts, new_off
    tot = R.rle_total(counts, offsets)
    bad = np.flatnonzero(tot != h * w)
    if bad.size:
        r = int(rows[bad[0]])
        raise InvalidAnnotationError(
            f"{table}: row {r}: mask counts sum to {int(tot[bad[0]])}, expected height x width "
            f"= {int(h[bad[0]] * w[bad[0]])} ({bad.size} such rows)."
        )
    return counts, offsets, h, w


def _category_axis(gt: pl.DataFrame, pd: pl.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """K axis: feature names, category ids, and each gt / pd row's K index (-1 = none).

    With an Enum ``feature`` (as :func:`read_coco` makes) the axis is the Enum's categories, which
    are in ascending category-id order; otherwise the sorted union of the ``category_id`` values
    (or of the feature names when there is no ``category_id``).
    """
    fdt = gt.schema.get("feature")
    has_id = "category_id" in gt.columns and "category_id" in pd.columns
    if isinstance(fdt, pl.Enum):
        names = list(fdt.categories)
        lut = {n: i for i, n in enumerate(names)}

        def codes(frame: pl.DataFrame) -> np.ndarray:
            f = frame["feature"]
            if f.dtype == fdt:
                return f.to_physical().fill_null(-1).cast(pl.Int64).to_numpy()
            return (
                f.cast(pl.String)
                .replace_strict(lut, default=-1, return_dtype=pl.Int64)
                .fill_null(-1)
                .to_numpy()
            )

        gk, pk = codes(gt), codes(pd)
        cat_ids = np.full(len(names), -1, np.int64)
        if has_id:
            for frame, k in ((gt, gk), (pd, pk)):
                cid = frame["category_id"].fill_null(-1).cast(pl.Int64).to_numpy()
                ok = (k >= 0) & (cid >= 0)
                cat_ids[k[ok]] = cid[ok]
        return names, cat_ids, gk, pk
    if has_id:
        gc = gt["category_id"].cast(pl.Int64).fill_null(-1).to_numpy()
        pc = pd["category_id"].cast(pl.Int64).fill_null(-1).to_numpy()
        ids = np.unique(np.concatenate([gc[gc >= 0], pc[pc >= 0]]))
        gk = np.where(gc >= 0, np.searchsorted(ids, gc), -1)
        pk = np.where(pc >= 0, np.searchsorted(ids, pc), -1)
        names_map: dict[int, str] = {}
        if "feature" in gt.columns:
            for frame in (gt, pd):
                if "feature" in frame.columns:
                    pairs = frame.select(
                        pl.col("category_id").cast(pl.Int64), pl.col("feature").cast(pl.String)
                    ).drop_nulls().unique("category_id")
                    names_map.update(dict(pairs.iter_rows()))
        names = [names_map.get(int(i), str(int(i))) for i in ids]
        return names, ids.astype(np.int64), gk.astype(np.int64), pk.astype(np.int64)
    if "feature" not in gt.columns:
        raise SchemaError('gt: needs a "feature" or a "category_id" column.')
    g = gt["feature"].cast(pl.String)
    p = pd["feature"].cast(pl.String)
    names = sorted(set(g.drop_nulls().to_list()) | set(p.drop_nulls().to_list()))
    lut = {n: i for i, n in enumerate(names)}
    gk = g.replace_strict(lut, default=-1, return_dtype=pl.Int64).fill_null(-1).to_numpy()
    pk = p.replace_strict(lut, default=-1, return_dtype=pl.Int64).fill_null(-1).to_numpy()
    return names, np.full(len(names), -1, np.int64), gk, pk


def _stable_order(keys: np.ndarray, n_keys: int, order: np.ndarray) -> np.ndarray:
    """``order`` stably re-sorted by ``keys[order]``: counting sort when the key range is small."""
    if n_keys <= 4 * order.size + 1_000_000:
        return K.stable_counting_order(keys, n_keys, order)
    return order[np.argsort(keys[order], kind="stable")]


# --- evaluation ---------------------------------------------------------------------------------
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

    Parameters
    ----------
    gt, pd : DataFrame
        Ground truth and predictions as :func:`polars_metrics.io.coco.read_coco` returns them:
        ``data_row`` (image id), ``feature`` (Enum of all categories) and/or ``category_id``,
        ``bbox`` (x0, y0, x1, y1; the optional ``bbox_xywh`` keeps COCO's original numbers for
        bit-exact IoU), ``area`` (COCO's area field; when absent, the box or mask area),
        ``is_crowd``, ``mask`` (``segm``), and on ``pd`` ``confidence``. Ground-truth rows with a null ``feature`` only declare an image.
        Every image of ``gt`` is evaluated; predictions on other images are left out.
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
    """
    p = _normalize_params(iou_type, iou_thresholds, rec_thresholds, max_dets, area_ranges, use_cats)
    # small inputs: one thread (waking the pool costs more than the work, more so on a busy box)
    prev = numba.get_num_threads()
    if pd.height + gt.height < _SMALL:
        numba.set_num_threads(1)
    try:
        return _evaluate(gt, pd, p, use_ignore_flag)
    finally:
        numba.set_num_threads(prev)


_SMALL = 50_000


def _evaluate(gt: pl.DataFrame, pd: pl.DataFrame, p: CocoParams, use_ignore_flag: bool) -> CocoResult:
    for name, frame in (("gt", gt), ("pd", pd)):
        if "data_row" not in frame.columns:
            raise SchemaError(f'{name}: missing the "data_row" (image id) column.')
    if "confidence" not in pd.columns:
        raise SchemaError('pd: missing the "confidence" column (COCO "score").')

    # --- images and categories
    gt_img_all = gt["data_row"].to_numpy()
    if gt["data_row"].null_count():
        raise InvalidAnnotationError("gt: data_row (image id) is null on some rows.")
    image_ids = np.unique(gt_img_all)
    n_img = image_ids.size
    names, cat_ids, gk_all, pk_all = _category_axis(gt, pd)
    n_cat = len(names)

    gt_rows = np.flatnonzero(gk_all >= 0)  # placeholder rows (null feature) only declare images
    pd_img_all = pd["data_row"].to_numpy()
    pd_img_pos = np.searchsorted(image_ids, pd_img_all) if n_img else np.zeros(pd.height, np.int64)
    pd_img_ok = (pd_img_pos < n_img) & (pk_all >= 0)
    if n_img:
        pd_img_ok &= image_ids[np.minimum(pd_img_pos, n_img - 1)] == pd_img_all
    pd_rows = np.flatnonzero(pd_img_ok)
    n_outside = int(pd.height - pd_rows.size)
    if n_outside:
        warnings.warn(
            f"{n_outside} predictions are on images absent from gt or of unknown categories; "
            "they are left out (as pycocotools' imgIds/catIds filter does).",
            PolarsMetricsWarning,
            stacklevel=2,
        )

    g_img = np.searchsorted(image_ids, gt_img_all[gt_rows]).astype(np.int64)
    d_img = pd_img_pos[pd_rows].astype(np.int64)
    g_cat = gk_all[gt_rows].astype(np.int64)
    d_cat = pk_all[pd_rows].astype(np.int64)
    n_g, n_d = gt_rows.size, pd_rows.size

    conf = pd["confidence"]
    score_all = _f64(conf)
    score = score_all[pd_rows] + 0.0  # + 0.0 folds -0.0 into 0.0, as comparisons do
    if conf.null_count() or not np.isfinite(score).all():
        bad = np.flatnonzero(~np.isfinite(score))
        r = int(pd_rows[bad[0]]) if bad.size else int(np.flatnonzero(conf.is_null().to_numpy())[0])
        raise InvalidAnnotationError(
            f'pd: row {r} has a null or non-finite "confidence"; COCO needs a score per detection.'
        )

    if "area" in gt.columns:
        g_area = _f64(gt["area"])[gt_rows]
    elif p.iou_type == "bbox" or "mask" not in gt.columns:
        b = _xywh(gt, gt_rows, "gt")  # no COCO area: the box area stands in
        g_area = b[:, 2] * b[:, 3]
    else:
        c, off, _, _, _ = mask_csr(gt["mask"])
        g_area = R.rle_area(c, off)[gt_rows].astype(np.float64)
    if np.isnan(g_area).any():
        r = int(gt_rows[np.flatnonzero(np.isnan(g_area))[0]])
        raise InvalidAnnotationError(f'gt: row {r} has a null "area"; COCO area ranges need it.')
    crowd_all = (
        gt["is_crowd"].fill_null(False).cast(pl.Boolean).to_numpy()
        if "is_crowd" in gt.columns
        else np.zeros(gt.height, bool)
    )
    g_crowd = np.ascontiguousarray(crowd_all[gt_rows], dtype=np.bool_)
    g_ignore = g_crowd.copy()
    if use_ignore_flag and "ignore" in gt.columns:
        g_ignore |= gt["ignore"].fill_null(False).cast(pl.Boolean).to_numpy()[gt_rows]
    g_idzero = (
        (gt["id"].fill_null(-1).cast(pl.Int64).to_numpy()[gt_rows] == 0)
        if "id" in gt.columns
        else np.zeros(n_g, bool)
    )

    # --- orders. use_cats=False pools categories per image; pycocotools then lists gts and
    # dts category by category, so a stable pre-sort by category gives its tie order.
    n_keys_cat = n_cat if p.use_cats else 1
    g_base = np.arange(n_g, dtype=np.int64)
    d_base = np.arange(n_d, dtype=np.int64)
    if not p.use_cats:
        g_base = _stable_order(g_cat, n_cat, g_base)
        d_base = _stable_order(d_cat, n_cat, d_base)
        g_cat_e = np.zeros(n_g, np.int64)
        d_cat_e = np.zeros(n_d, np.int64)
    else:
        g_cat_e, d_cat_e = g_cat, d_cat
    # accumulate order: category, score desc, image, within-image order
    o = _stable_order(d_img, n_img, d_base)
    o = K.radix_order_desc(score.view(np.uint64), o)
    acc = _stable_order(d_cat_e, n_keys_cat, o)
    # group order: (category, image), then score desc / input order inside the group
    d_key = d_cat_e * n_img + d_img
    g_key = g_cat_e * n_img + g_img
    n_keys = n_keys_cat * n_img
    d_grp = _stable_order(d_key, n_keys, acc)
    g_grp = _stable_order(g_key, n_keys, g_base)
    keys, dt_ptr, gt_ptr, rank_sorted = K.group_layout(d_key[d_grp], g_key[g_grp])
    rank = np.empty(n_d, np.int64)
    rank[d_grp] = rank_sorted
    dt_pos = np.empty(n_d, np.int64)
    dt_pos[acc] = np.arange(n_d, dtype=np.int64)
    max_det = int(p.max_dets[-1])

    # --- IoU blocks
    iou_ptr = K.block_sizes(dt_ptr, gt_ptr, max_det)
    if p.iou_type == "bbox":
        d_box = _xywh(pd, pd_rows, "pd")
        g_box = _xywh(gt, gt_rows, "gt")
        iou = K.box_iou_groups(d_box, g_box, g_crowd, dt_ptr, d_grp, gt_ptr, g_grp, max_det, iou_ptr)
    else:
        iou = _segm_iou(gt, pd, gt_rows, pd_rows, g_img, d_img, image_ids, g_crowd,
                        dt_ptr, d_grp, gt_ptr, g_grp, rank[d_grp], max_det, iou_ptr)

    # --- detection areas (loadRes: w*h of the box, or the mask area for segm results)
    if "area" in pd.columns and pd["area"].null_count() == 0:
        d_area = _f64(pd["area"])[pd_rows]
    elif p.iou_type == "bbox" or "mask" not in pd.columns:
        b = _xywh(pd, pd_rows, "pd")
        d_area = b[:, 2] * b[:, 3]
    else:
        c, off, _, _, _ = mask_csr(pd["mask"])
        d_area = R.rle_area(c, off)[pd_rows].astype(np.float64)
    d_area = np.ascontiguousarray(d_area, dtype=np.float64)

    # --- evaluateImg
    T, Rn, A, M = p.iou_thresholds.size, p.rec_thresholds.size, len(p.area_ranges), len(p.max_dets)
    area_lo = np.array([r[0] for r in p.area_ranges], np.float64)
    area_hi = np.array([r[1] for r in p.area_ranges], np.float64)
    keep_area = p.area_labels.index("all") if "all" in p.area_labels else 0
    iou_thrs = np.ascontiguousarray(p.iou_thresholds, dtype=np.float64)
    match_args = (
        iou, iou_ptr, dt_ptr, d_grp, gt_ptr, g_grp, max_det,
        np.ascontiguousarray(g_area), g_ignore, g_crowd, np.ascontiguousarray(g_idzero),
        gt_rows.astype(np.int64), d_area, dt_pos, pd_rows.astype(np.int64),
    )  # fmt: skip

    # --- accumulate inputs
    n_k = n_keys_cat
    npig = np.zeros((n_k, A), np.int64)
    for a in range(A):
        ok = ~(g_ignore | (g_area < area_lo[a]) | (g_area > area_hi[a]))
        npig[:, a] = np.bincount(g_cat_e[ok], minlength=n_k)
    cat_ptr = np.zeros(n_k + 1, np.int64)
    np.cumsum(np.bincount(d_cat_e, minlength=n_k), out=cat_ptr[1:])
    score_acc = np.ascontiguousarray(score[acc])
    rank_acc = np.ascontiguousarray(rank[acc])
    max_dets_arr = np.array(p.max_dets, np.int64)
    rec_thrs = np.ascontiguousarray(p.rec_thresholds, dtype=np.float64)
    precision = np.full((T, Rn, n_k, A, M), -1.0)
    recall = np.full((T, n_k, A, M), -1.0)
    scores = np.full((T, Rn, n_k, A, M), -1.0)

    # evaluateImg then accumulate, 16 IoU thresholds at a time (the packed code's width)
    code = np.empty((n_d, A), np.uint32)
    no_rows = np.empty((0, 1), np.int32)
    for t0 in range(0, T, K.MAX_THR):
        t1 = min(t0 + K.MAX_THR, T)
        K.coco_match(*match_args, area_lo, area_hi, iou_thrs[t0:t1].copy(), -1, code, no_rows,
                     no_rows.astype(bool))
        K.coco_accumulate(code, score_acc, rank_acc, cat_ptr, npig, max_dets_arr, rec_thrs,
                          precision[t0:t1], recall[t0:t1], scores[t0:t1])

    # --- per-row outputs in frame row order
    dt_rank = np.full(pd.height, -1, np.int64)
    dt_rank[pd_rows] = np.where(rank < max_det, rank, -1)
    gt_id_zero = np.zeros(gt.height, np.bool_)
    gt_id_zero[gt_rows] = g_idzero
    gt_ig = np.ones(gt.height, np.bool_)
    lo, hi = area_lo[keep_area], area_hi[keep_area]
    gt_ig[gt_rows] = g_ignore | (g_area < lo) | (g_area > hi)

    if not p.use_cats:
        names, cat_ids = ["all"], np.array([-1], np.int64)
    stats, md_used = _summarize(precision, recall, p)
    summary = pl.DataFrame(
        {
            "metric": ["AP" if ap else "AR" for ap, *_ in _STAT_SPECS],
            "iou": [iou for _, iou, _, _ in _STAT_SPECS],
            "area": [area for _, _, area, _ in _STAT_SPECS],
            "max_dets": md_used,
            "value": stats,
        },
        schema={"metric": pl.String, "iou": pl.Float64, "area": pl.String,
                "max_dets": pl.Int64, "value": pl.Float64},
    )  # fmt: skip
    per_cat = _per_category(precision, recall, p, names, cat_ids, npig[:, keep_area])
    return CocoResult(
        params=p, precision=precision, recall=recall, scores=scores, stats=stats,
        summary=summary, per_category=per_cat, category_ids=cat_ids, features=tuple(names),
        image_ids=image_ids, gt_id_zero=gt_id_zero, dt_rank=dt_rank, gt_ignore=gt_ig,
        match_area=p.area_labels[keep_area], n_pd_outside=n_outside,
        _match_inputs=(match_args, area_lo[keep_area : keep_area + 1].copy(),
                       area_hi[keep_area : keep_area + 1].copy(), iou_thrs, n_d, pd.height),
    )  # fmt: skip


def _segm_iou(gt, pd, gt_rows, pd_rows, g_img, d_img, image_ids, g_crowd, dt_ptr, d_grp, gt_ptr,
              g_grp, rank_grp, max_det, iou_ptr) -> np.ndarray:
    """RLE IoU blocks of the groups, only for the first ``max_det`` detections of each."""
    img_hw = None
    if "height" in gt.columns and "width" in gt.columns:
        hw = (
            pl.DataFrame({"i": gt["data_row"], "h": gt["height"], "w": gt["width"]})
            .drop_nulls()
            .unique("i", keep="first")
        )
        pos = np.searchsorted(image_ids, hw["i"].to_numpy())
        ih = np.zeros(image_ids.size, np.int64)
        iw = np.zeros(image_ids.size, np.int64)
        ih[pos], iw[pos] = hw["h"].to_numpy(), hw["w"].to_numpy()
        img_hw = (ih, iw)
    gc, go, gh, gw = _masks(gt, gt_rows, "gt", None, None)
    dc, do, dh, dw = _masks(pd, pd_rows, "pd", img_hw, d_img)
    g_bb = R.rle_to_bbox(gc, go, gh, gw)
    d_bb = R.rle_to_bbox(dc, do, dh, dw)
    d_ar = R.rle_area(dc, do)
    keep = rank_grp < max_det
    cut_idx = np.ascontiguousarray(d_grp[keep])
    cut_ptr = np.zeros(dt_ptr.size, np.int64)
    np.cumsum(np.minimum(np.diff(dt_ptr), max_det), out=cut_ptr[1:])
    iou = R.rle_iou_groups(dc, do, dh, dw, d_bb, d_ar, gc, go, gh, gw, g_bb, g_crowd,
                           cut_ptr, cut_idx, gt_ptr, g_grp, iou_ptr)
    if (iou < 0).any():
        # find the first offending pair for the message
        g = int(np.searchsorted(iou_ptr, np.flatnonzero(iou < 0)[0], side="right") - 1)
        j = int(g_grp[gt_ptr[g]])
        raise InvalidAnnotationError(
            f"masks of different sizes in one image: gt row {int(gt_rows[j])} is "
            f"{int(gh[j])}x{int(gw[j])} but a prediction on image {image_ids[g_img[j]]} is not; "
            "every mask of an image must have the image's height and width."
        )
    return iou


def _stat_max_det(p: CocoParams, mi: int) -> int:
    """maxDets value a stat reads: a literal (coded negative) or a position of ``max_dets``
    (clamped to the last one when fewer than 3 are given; pycocotools would fail there)."""
    if mi < 0:
        return -mi
    return int(p.max_dets[min(mi, len(p.max_dets) - 1)])


def _summarize(precision: np.ndarray, recall: np.ndarray, p: CocoParams) -> tuple[np.ndarray, list[int]]:
    """``COCOeval.summarize()._summarizeDets`` without printing."""
    stats = np.zeros(len(_STAT_SPECS))
    md_used = []
    for i, (ap, iou, area, mi) in enumerate(_STAT_SPECS):
        md = _stat_max_det(p, mi)
        md_used.append(int(md))
        stats[i] = _summarize_one(precision, recall, p, ap, iou, area, md)
    return stats, md_used


def _summarize_one(precision, recall, p: CocoParams, ap: bool, iou, area: str, md: int,
                   k: int | None = None) -> float:
    aind = [i for i, lbl in enumerate(p.area_labels) if lbl == area]
    mind = [i for i, m in enumerate(p.max_dets) if m == md]
    s = precision if ap else recall
    if iou is not None:
        s = s[np.where(iou == p.iou_thresholds)[0]]
    if k is not None:
        s = s[:, :, k : k + 1] if ap else s[:, k : k + 1]
    s = s[:, :, :, aind, mind] if ap else s[:, :, aind, mind]
    sel = s[s > -1]
    return -1.0 if sel.size == 0 else float(np.mean(sel))


def _per_category(precision, recall, p: CocoParams, names, cat_ids, n_gt) -> pl.DataFrame:
    """The 12 summary stats restricted to each category (null where undefined)."""
    cols: dict[str, np.ndarray] = {}
    n_k = len(names)
    for ap, iou, area, mi in _STAT_SPECS:
        md = _stat_max_det(p, mi)
        if area != "all":
            name = f"{'ap' if ap else 'ar'}_{area}"
        elif ap:
            name = "ap" + ("" if iou is None else str(int(round(iou * 100))))
        else:
            name = f"ar{md}"
        aind = [i for i, lbl in enumerate(p.area_labels) if lbl == area]
        mind = [i for i, m in enumerate(p.max_dets) if m == md]
        s = precision if ap else recall
        if iou is not None:
            s = s[np.where(iou == p.iou_thresholds)[0]]
        s = s[..., aind, :][..., mind]
        kax = 2 if ap else 1
        v = np.moveaxis(s, kax, 0).reshape(n_k, -1)
        ok = v > -1
        cnt = ok.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(ok, v, 0.0).sum(axis=1) / cnt
        cols[name] = np.where(cnt > 0, mean, np.nan)
    frame = pl.DataFrame(
        {
            "category_id": pl.Series(cat_ids, dtype=pl.Int64),
            "feature": list(names),
            "n_gt": np.asarray(n_gt, dtype=np.int64),
            **cols,
        }
    )
    return frame.with_columns(
        pl.when(pl.col("category_id") >= 0).then(pl.col("category_id")),
        *(pl.col(c).fill_nan(None) for c in cols),
    )
