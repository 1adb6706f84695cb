"""The Labelbox SDK's metric functions, as frames: ``pm.labelbox_sdk``.

Reproduces ``labelbox.data.metrics`` (``labelbox[data]==7.17.0``) to 1e-9, on every data row
at once: :func:`feature_confusion_matrix` ↔ ``feature_confusion_matrix_metric``,
:func:`confusion_matrix` ↔ ``confusion_matrix_metric``, :func:`feature_miou` ↔
``feature_miou_metric``, :func:`miou` ↔ ``miou_metric`` — called by the SDK once per data row
with that row's ground truths and predictions.

The rules, read from the SDK's source (``metrics/group.py``, ``confusion_matrix/calculation.py``,
``iou/calculation.py``):

- Annotations are grouped per data row by feature: objects by name; radio classifications by
  their **answer**; checklists exploded into one unit per selected option; free text by the
  question. Confidence is ignored. A feature present on neither side gives no metric; a data
  row with no annotation gives no metric.
- One side empty → confusion ``[0, n_pred, 0, n_gt]`` and IoU 0.
- Confusion (objects): pairs of the feature by IoU descending, ties in ground-truth-major input
  order; a pair matches iff ``iou > t`` (strict) and both members are free; TP = matches,
  FP = n_pred − TP, FN = n_gt − TP, TN = 0. A pair rejected by the threshold (or, with
  ``include_subclasses``, by its nested classifications) does not consume its members.
- Radio: the same answer on both sides → ``[1, 0, 0, 0]``; otherwise each answer is one-sided.
  Checklist options likewise. IoU of a shared answer/option is 1.
- IoU (objects): every (prediction, ground truth) pair by IoU descending, ties in
  **prediction-major** order (the SDK builds these pairs from ``product(predictions,
  ground_truths)``), matched greedily without threshold, zero-IoU pairs included; value =
  Σ matched IoU / max(n_gt, n_pred). (Greedy matching of a class of equal IoUs picks the same
  pairs in gt-major and prediction-major order, so this equals the engine's IoU metric.)
- Masks: instance IoU in the confusion matrix; in the IoU metric (``include_subclasses=False``)
  the IoU of the *union* of the feature's ground-truth masks with the union of its predicted
  masks (semantic); with subclasses, instance pairs as for other objects.
- Points and lines are buffered by 70 (shapely's ``buffer``) before polygon IoU.
- Coordinates of boxes, polygons, points and lines are rounded to 6 decimals first: the SDK
  builds its shapely geometry through ``geojson``, whose default precision is 6 (Python's
  ``round(x, 6)``, reproduced here exactly; ``coordinate_decimals``).
- NER spans: the SDK computes on the raw ``(start, end)`` numbers of the file
  (``(ie − is) / (ue − us)``, 1 for two equal empty spans). Frames read by
  :func:`polars_metrics.read_labelbox_ndjson` / ``read_labelbox_export`` with
  ``span_end="inclusive"`` (their default) added 1 to ``end`` and say so in their ``span_end``
  column; these functions subtract it again. Frames without that column are used as given.
- ``include_subclasses=True`` (objects only; one level of nested classifications from the
  ``subclasses`` column): agreement of two annotations = the mean, over the nested answers
  present on either side, of 1 when both sides have it (text: with equal strings) else 0.
  Confusion: a pair whose agreement is < 1 is skipped. IoU: a matched pair contributes
  ``(iou + agreement) / 2`` (``agreement`` := ``iou`` when neither has nested
  classifications), and zero-IoU pairs matched last contribute ``agreement / 2``.
- Per data row: confusion = sum over features; mIoU = mean over features.

Options: every function takes ``profile=`` (None: ``"labelbox-sdk"``; a profile must carry
:class:`~polars_metrics.profiles.SdkOptions` as ``Profile.sdk``) and the fields of
``SdkOptions`` as keywords, which override the profile's values (see :mod:`.params`):
``coordinate_decimals`` (6; None: coordinates as given), ``span_end`` (``"from_column"``;
``"as_given"``: ``end`` used as it is), ``semantic_masks`` (True; False: instance pairs in the
IoU metric too), ``include_subclasses`` (False). Unknown keywords fail with a suggestion; a
profile that changes one of the SDK's fixed rules (matching order, class awareness, ``>``,
confidence, rows, TN) is rejected. ``buffer_radius``, ``point_iou`` and ``crs`` of the profile
are honoured.

Layout: :mod:`.params` (options), :mod:`.inputs` (the frames as the SDK reads them),
:mod:`.engine` (prepare → pairs → kernel), :mod:`.frames` (output frames).

Differences from the SDK — each one where the SDK is defective or raises:

1. Free-text classifications in the confusion matrix: the SDK raises ``ValueError``
   ("Unsupported subclass"); here equal strings are ``[1, 0, 0, 0]``, different strings
   ``[0, 1, 0, 1]`` (its IoU metric already scores text this way).
2. Two empty masks (or empty unions): the SDK's IoU is NaN (0/0), which also poisons the
   feature and data-row means; here it is 0.
3. Answer names shared by several questions (or with an object name): the SDK groups them into
   one feature (e.g. "yes" of two questions); the engine keeps them apart as
   ``"question/answer"`` (with a warning). Nested classifications are keyed by question and
   answer for the same reason. Identical results whenever answer names are unique.
4. Spans in different messages (``message_id``) never overlap here; the SDK ignores the message.
5. The SDK's ``confusion_matrix_metric`` refuses ``iou`` outside (0, 1); here any value in
   [0, 1] is accepted (``iou=1`` matches no object pair, classification pairs still match).
6. Invalid (self-intersecting) polygons are repaired once with ``make_valid`` (reported with
   a warning); the SDK uses ``buffer(0)``, which can keep a different part of the shape.
7. In subclass mode, a pair whose nested classifications hold no answer at all on either side
   (e.g. only a checklist with no option selected) makes the SDK raise ``TypeError``
   (``None < 1.0``); here such a pair agrees.
8. Objects of different kinds under one feature name pair only where the engine pairs kinds
   (box ↔ polygon); the SDK dispatches on the first prediction's type.
9. ``feature_miou_metric`` defaults to ``include_subclasses=True`` in the SDK; every function
   here defaults to ``False`` — pass it explicitly to compare.

Examples
--------
>>> import polars as pl, polars_metrics as pm
>>> box = pl.Array(pl.Float64, 4)
>>> gt = pl.DataFrame({"data_row": ["a", "a"], "feature": ["car", "car"],
...                    "bbox": [[0.0, 0, 10, 10], [20.0, 0, 30, 10]]}, schema_overrides={"bbox": box})
>>> pd = pl.DataFrame({"data_row": ["a"], "feature": ["car"], "bbox": [[0.0, 0, 10, 5]]},
...                   schema_overrides={"bbox": box})
>>> pm.labelbox_sdk.feature_confusion_matrix(gt, pd, iou=0.4).rows()
[('a', 'car', 1, 0, 0, 1)]
>>> pm.labelbox_sdk.miou(gt, pd).rows()
[('a', 0.25)]
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from polars_metrics import schema as s
from polars_metrics.labelbox_sdk.engine import run
from polars_metrics.labelbox_sdk.frames import SdkMetrics, sdk_metrics
from polars_metrics.labelbox_sdk.inputs import round_like_python
from polars_metrics.labelbox_sdk.params import check_iou, resolve
from polars_metrics.profiles import Profile

__all__ = ["SdkMetrics", "confusion_matrix", "feature_confusion_matrix", "feature_miou", "metrics",
           "miou", "round_like_python"]

DataRow = str | Sequence[str]


def _compute(gt, pd, iou, include_subclasses, data_row, on_invalid, profile, options) -> SdkMetrics:
    resolved = resolve(profile, include_subclasses=include_subclasses, **options)
    keys = [data_row] if isinstance(data_row, str) else list(data_row)
    counts = run(gt, pd, iou=check_iou(iou), keys=keys, on_invalid=on_invalid, profile=resolved)
    return sdk_metrics(counts, keys)


def feature_confusion_matrix(gt, pd, iou: float = 0.5, include_subclasses: bool | None = None, *,
                             data_row: DataRow = s.DATA_ROW, on_invalid: str = "raise",
                             profile: str | Profile | None = None, **options: Any) -> pl.DataFrame:
    """Per (data row, feature): ``tp, fp, tn, fn`` as ``feature_confusion_matrix_metric``.

    Returns (*data_row keys, ``feature``, ``tp``, ``fp``, ``tn``, ``fn``), one row per feature
    present on either side of a data row; ``tn`` is always 0. ``include_subclasses`` (None:
    the profile's, False) and ``options`` (``coordinate_decimals``, ``span_end``,
    ``semantic_masks``) override ``profile``'s SDK options; see the module docstring.

    Examples
    --------
    >>> import polars_metrics as pm
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"data_row": ["a"], "feature": ["car"], "bbox": [[0.0, 0, 10, 10]],
    ...     "subclasses": [[{"question": "colour", "kind": "radio", "answer": "red"}]]},
    ...     schema_overrides={"bbox": box})
    >>> pd = gt.with_columns(pl.lit([{"question": "colour", "kind": "radio", "answer": "blue"}])
    ...                      .alias("subclasses"))
    >>> pm.labelbox_sdk.feature_confusion_matrix(gt, pd).rows()
    [('a', 'car', 1, 0, 0, 0)]
    >>> pm.labelbox_sdk.feature_confusion_matrix(gt, pd, include_subclasses=True).rows()
    [('a', 'car', 0, 1, 0, 1)]
    """
    return _compute(gt, pd, iou, include_subclasses, data_row, on_invalid, profile,
                    options).feature_confusion_matrix


def confusion_matrix(gt, pd, iou: float = 0.5, include_subclasses: bool | None = None, *,
                     data_row: DataRow = s.DATA_ROW, on_invalid: str = "raise",
                     profile: str | Profile | None = None, **options: Any) -> pl.DataFrame:
    """Per data row: the feature matrices summed, as ``confusion_matrix_metric``.

    Returns (*data_row keys, ``tp``, ``fp``, ``tn``, ``fn``) for data rows with annotations.
    Options as in :func:`feature_confusion_matrix`.

    Examples
    --------
    >>> import polars_metrics as pm
    >>> gt = pl.DataFrame({"data_row": ["a", "a"], "kind": ["checklist"] * 2,
    ...                    "question": ["attrs", "size"], "answers": [["red", "new"], ["big"]]})
    >>> pd = pl.DataFrame({"data_row": ["a"], "kind": ["checklist"], "question": ["attrs"],
    ...                    "answers": [["red", "old"]]})
    >>> pm.labelbox_sdk.confusion_matrix(gt, pd).rows()
    [('a', 1, 1, 0, 2)]
    """
    return _compute(gt, pd, iou, include_subclasses, data_row, on_invalid, profile,
                    options).confusion_matrix


def feature_miou(gt, pd, include_subclasses: bool | None = None, *,
                 data_row: DataRow = s.DATA_ROW, on_invalid: str = "raise",
                 profile: str | Profile | None = None, **options: Any) -> pl.DataFrame:
    """Per (data row, feature): the IoU metric of ``feature_miou_metric``.

    Returns (*data_row keys, ``feature``, ``iou``). Note the SDK's default there is
    ``include_subclasses=True``; here it is the profile's (False). Options as in
    :func:`feature_confusion_matrix`.

    Examples
    --------
    >>> import polars_metrics as pm
    >>> gt = pl.DataFrame({"data_row": ["t"], "feature": ["person"], "start": [0], "end": [6],
    ...                    "span_end": ["inclusive"]})
    >>> pd = gt.with_columns(pl.Series("start", [3]))
    >>> pm.labelbox_sdk.feature_miou(gt, pd)["iou"].item()  # raw (0, 5) vs (3, 5)
    0.4
    >>> round(pm.labelbox_sdk.feature_miou(gt, pd, span_end="as_given")["iou"].item(), 3)
    0.5
    """
    return _compute(gt, pd, 0.5, include_subclasses, data_row, on_invalid, profile,
                    options).feature_miou


def miou(gt, pd, include_subclasses: bool | None = None, *,
         data_row: DataRow = s.DATA_ROW, on_invalid: str = "raise",
         profile: str | Profile | None = None, **options: Any) -> pl.DataFrame:
    """Per data row: the mean of the feature IoUs, as ``miou_metric``.

    Returns (*data_row keys, ``iou``) for data rows with annotations. Options as in
    :func:`feature_confusion_matrix`.

    Examples
    --------
    >>> import polars_metrics as pm
    >>> half = pm.masks_from_arrays([[[1, 1, 0, 0]], [[0, 0, 1, 1]]])
    >>> gt = pl.DataFrame({"data_row": ["a", "a"], "feature": ["road"] * 2, "mask": half})
    >>> pd = pl.DataFrame({"data_row": ["a"], "feature": ["road"],
    ...                    "mask": pm.masks_from_arrays([[[1, 1, 1, 1]]])})
    >>> pm.labelbox_sdk.miou(gt, pd).rows()  # the union of the two halves is the prediction
    [('a', 1.0)]
    >>> pm.labelbox_sdk.miou(gt, pd, semantic_masks=False).rows()  # one half matched: 0.5 / 2
    [('a', 0.25)]
    """
    return _compute(gt, pd, 0.5, include_subclasses, data_row, on_invalid, profile,
                    options).miou


def metrics(gt, pd, iou: float = 0.5, include_subclasses: bool | None = None, *,
            data_row: DataRow = s.DATA_ROW, on_invalid: str = "raise",
            profile: str | Profile | None = None, **options: Any) -> SdkMetrics:
    """All four frames in one pass over the data (pairs and matching computed once).

    ``on_invalid="drop"`` moves invalid input rows (SPEC §7) to ``.rejects`` instead of
    raising, with a :class:`~polars_metrics.errors.PolarsMetricsWarning` counting them.
    Options as in :func:`feature_confusion_matrix`.

    Examples
    --------
    >>> import polars_metrics as pm
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"data_row": ["a"], "feature": ["car"], "bbox": [[0.0, 0, 1, 1]]},
    ...                   schema_overrides={"bbox": box})
    >>> pd = gt.with_columns(pl.lit([0.0, 0, 1, 1.0000004], dtype=box).alias("bbox"))
    >>> pm.labelbox_sdk.metrics(gt, pd).feature_miou["iou"].item()  # rounded to 6 decimals
    1.0
    >>> pm.labelbox_sdk.metrics(gt, pd, coordinate_decimals=None).feature_miou["iou"].item() < 1
    True
    """
    return _compute(gt, pd, iou, include_subclasses, data_row, on_invalid, profile, options)
