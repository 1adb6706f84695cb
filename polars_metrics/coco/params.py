"""The COCO engine's settings: pycocotools ``Params`` (``iouType="bbox"`` / ``"segm"``).

:class:`CocoParams` is built either from a profile's nested options (``Profile.coco``, via
:func:`params_from_options`) or from :func:`~polars_metrics.coco.evaluate_coco`'s keywords (via
:func:`normalize_params`). The defaults are computed exactly as ``Params.setDetParams`` computes
them, so every float is bit for bit pycocotools'.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from polars_metrics.errors import SchemaError, ThresholdError
from polars_metrics.profiles import COCO_AREA_RANGES, COCO_MAX_DETS, CocoOptions

# pycocotools' Params.setDetParams, computed the same way so every float is identical
DEFAULT_IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
DEFAULT_REC_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
DEFAULT_MAX_DETS = COCO_MAX_DETS
DEFAULT_AREA_RANGES: dict[str, tuple[float, float]] = {lbl: (lo, hi) for lbl, lo, hi in COCO_AREA_RANGES}
IOU_TYPES = ("bbox", "segm")
IOU_CAP = 1 - 1e-10  # pycocotools: iou >= min(t, 1 - 1e-10)

# (ap?, iou, area, index into max_dets) of COCOeval.summarize()._summarizeDets, in order; the
# first stat calls _summarize(1) with its default maxDets=100 (a literal, coded as -100 here)
STAT_SPECS: tuple[tuple[bool, float | None, str, int], ...] = (
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
    """The evaluation settings actually used (pycocotools ``Params`` after ``evaluate``).

    ``iou_strict`` (not pycocotools) matches on ``iou > t`` instead of ``iou >= min(t, 1 -
    1e-10)``; :attr:`match_thresholds` are the bounds the matcher compares with ``>=``.
    """

    iou_type: str
    iou_thresholds: np.ndarray
    rec_thresholds: np.ndarray
    max_dets: tuple[int, ...]
    area_ranges: tuple[tuple[float, float], ...]
    area_labels: tuple[str, ...]
    use_cats: bool
    iou_strict: bool = False

    @property
    def match_thresholds(self) -> np.ndarray:
        """Lower bounds (inclusive) of a match's IoU, one per IoU threshold.

        >>> p = normalize_params(iou_thresholds=[0.5, 1.0])
        >>> p.match_thresholds.tolist()
        [0.5, 0.9999999999]
        >>> bool(normalize_params(iou_thresholds=[0.5], iou_strict=True).match_thresholds[0] > 0.5)
        True
        """
        thr = np.ascontiguousarray(self.iou_thresholds, dtype=np.float64)
        if self.iou_strict:  # iou > t  <=>  iou >= the next float after t
            return np.nextafter(thr, np.inf)
        return np.minimum(thr, IOU_CAP)


def normalize_params(
    iou_type: str = "bbox",
    iou_thresholds: Sequence[float] | np.ndarray | None = None,
    rec_thresholds: Sequence[float] | np.ndarray | None = None,
    max_dets: Sequence[int] = DEFAULT_MAX_DETS,
    area_ranges: Mapping[str, Sequence[float]] | Sequence[Sequence[float]] | None = None,
    use_cats: bool = True,
    iou_strict: bool = False,
) -> CocoParams:
    """Validate the keyword form of the settings (that of :func:`evaluate_coco`).

    ``area_ranges`` is ``{label: (low, high)}``, or a list of ``(low, high)`` labelled
    all / small / medium / large in order (``area0``, ``area1``, ... beyond four).

    Examples
    --------
    >>> p = normalize_params(max_dets=(100, 1, 10))
    >>> p.max_dets, p.area_labels, p.iou_thresholds.size, p.rec_thresholds.size
    ((1, 10, 100), ('all', 'small', 'medium', 'large'), 10, 101)
    """
    if iou_type not in IOU_TYPES:
        raise SchemaError(f'iou_type must be "bbox" or "segm", got {iou_type!r}.')
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
        iou_thresholds=_thresholds(iou_thresholds, DEFAULT_IOU_THRESHOLDS, "iou_thresholds"),
        rec_thresholds=_thresholds(rec_thresholds, DEFAULT_REC_THRESHOLDS, "rec_thresholds"),
        max_dets=md,
        area_ranges=ranges,
        area_labels=labels,
        use_cats=bool(use_cats),
        iou_strict=bool(iou_strict),
    )


def params_from_options(options: CocoOptions, iou_thresholds=None, *,
                        iou_strict: bool = False) -> CocoParams:
    """The settings of a profile's COCO options (``Profile.coco``) and IoU thresholds.

    Examples
    --------
    >>> from polars_metrics.profiles import get_profile
    >>> p = params_from_options(get_profile("coco", iou_type="segm", max_dets=(1, 5)).coco)
    >>> p.iou_type, p.max_dets, p.area_ranges[1]
    ('segm', (1, 5), (0.0, 1024.0))
    """
    return normalize_params(
        iou_type=options.iou_type, iou_thresholds=iou_thresholds,
        rec_thresholds=options.rec_thresholds, max_dets=options.max_dets,
        area_ranges={lbl: (lo, hi) for lbl, lo, hi in options.area_ranges},
        use_cats=options.use_cats, iou_strict=iou_strict,
    )


def _thresholds(values, default: np.ndarray, name: str) -> np.ndarray:
    if values is None:
        return default.copy()
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0 or not np.isfinite(arr).all():
        raise ThresholdError(f"{name} must be a non-empty list of finite numbers.")
    return arr  # kept as given: pycocotools compares floats exactly
