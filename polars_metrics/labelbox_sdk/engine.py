"""The one pass of ``pm.labelbox_sdk``: SDK inputs → prepare → pairs → the SDK kernel.

The engine's ``prepare`` and ``build_pairs`` give every (data row, feature) its annotations
and IoU pairs; ``_kernels.labelbox_sdk.sdk_feature_metrics`` walks them with the SDK's rules
(confusion walk and IoU walk); with ``semantic_masks`` the IoU of mask features is then
replaced by the IoU of the unions of their masks.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics._kernels.labelbox_sdk import sdk_feature_metrics, semantic_mask_iou
from polars_metrics._parallel import run_ranges
from polars_metrics.errors import PolarsMetricsWarning
from polars_metrics.kinds.mask import mask_csr
from polars_metrics.labelbox_sdk.inputs import object_features, sdk_frames, subclass_codes
from polars_metrics.matching import row_features
from polars_metrics.pairs import build_pairs
from polars_metrics.prepare import Prepared, prepare
from polars_metrics.profiles import Profile


@dataclass(frozen=True)
class FeatureCounts:
    """Per (data row, feature) entry of ``rf_off`` / ``rf_feat`` (CSR over the prepared data
    rows): matched pairs, annotations per side, and the SDK's feature IoU."""

    prep: Prepared
    rf_off: np.ndarray
    rf_feat: np.ndarray
    tp: np.ndarray
    n_gt: np.ndarray
    n_pd: np.ndarray
    iou: np.ndarray


def run(gt, pd, *, iou: float, keys: list[str], on_invalid: str, profile: Profile) -> FeatureCounts:
    """Count every (data row, feature) of both tables under the SDK's rules, in one pass.

    Examples
    --------
    >>> from polars_metrics.labelbox_sdk.params import resolve
    >>> gt = pl.DataFrame({"data_row": ["a"], "feature": ["yes"], "kind": ["radio"],
    ...                    "question": ["q"], "answer": ["yes"]})
    >>> out = run(gt, gt, iou=0.5, keys=["data_row"], on_invalid="raise", profile=resolve())
    >>> out.tp.tolist(), out.n_gt.tolist(), out.iou.tolist()
    ([1], [1], [1.0])
    """
    sdk = profile.sdk
    gt, pd = sdk_frames(gt, pd, keys, sdk)
    prep = prepare(gt, pd, keys=keys, by=(), data_rows=None, profile=profile,
                   conf_thr=np.zeros(1), iou_thr=np.array([iou]), on_invalid=on_invalid)
    pairs = build_pairs(prep)
    rf_off, rf_feat = row_features(prep, prep.gt.feat, prep.pd.feat)
    n_rf = rf_feat.shape[0]
    gsc = subclass_codes(prep.gt, sdk.include_subclasses)
    psc = subclass_codes(prep.pd, sdk.include_subclasses, shared=gsc)
    tp, n_gt, n_pd = (np.zeros(n_rf, np.int64) for _ in range(3))
    fiou = np.zeros(n_rf, np.float64)
    run_ranges(sdk_feature_metrics, (
        prep.gt.off, prep.pd.off, prep.gt.feat, prep.pd.feat,
        pairs.off, pairs.gt, pairs.pd, pairs.iou, np.ascontiguousarray(pairs.always),
        rf_off, rf_feat, object_features(prep),
        float(iou), bool(sdk.include_subclasses),
        gsc.off, gsc.key, gsc.val, gsc.has, psc.off, psc.key, psc.val, psc.has,
        tp, n_gt, n_pd, fiou,
    ), pairs.off + prep.gt.off + prep.pd.off)  # a row's work: its pairs and annotations
    if sdk.semantic_masks and not sdk.include_subclasses:
        semantic_masks(prep, rf_off, rf_feat, n_gt, n_pd, fiou)
    if prep.rejects.height:
        warnings.warn(f"{prep.rejects.height} input row(s) rejected (on_invalid='drop') and left "
                      "out of the SDK metrics; see pm.labelbox_sdk.metrics(...).rejects.",
                      PolarsMetricsWarning, stacklevel=4)
    return FeatureCounts(prep, rf_off, rf_feat, tp, n_gt, n_pd, fiou)


def _mask_groups(prep: Prepared, rf_off, rf_feat, n_gt, n_pd):
    """Per side: (side, mask annotation indices, their (data row, feature) entry), and the
    entries with masks on both sides; None when there is nothing to union."""
    n_feat = max(len(prep.features), 1)
    rf_code = np.repeat(np.arange(rf_off.shape[0] - 1), np.diff(rf_off)) * n_feat + rf_feat
    sides = []
    for side in (prep.gt, prep.pd):
        if len(side) == 0 or s.MASK not in side.frame.columns:
            return None
        is_mask = (side.column(s.KIND).cast(pl.String) == "mask").to_numpy()
        idx = np.flatnonzero(is_mask)
        sides.append((side, idx, np.searchsorted(rf_code, side.row[idx] * n_feat + side.feat[idx])))
    groups = np.intersect1d(sides[0][2], sides[1][2])
    groups = groups[(n_gt[groups] > 0) & (n_pd[groups] > 0)]
    return (sides, groups) if groups.size else None


def semantic_masks(prep: Prepared, rf_off, rf_feat, n_gt, n_pd, fiou) -> None:
    """Replace the IoU of mask features (both sides present) by the IoU of the mask unions."""
    found = _mask_groups(prep, rf_off, rf_feat, n_gt, n_pd)
    if found is None:
        return
    sides, groups = found
    batches, csr = [], []
    base = 0
    for side, idx, grp in sides:
        keep = np.isin(grp, groups)
        idx, grp = idx[keep], grp[keep]
        counts, offsets, _, _, _ = mask_csr(side.column(s.MASK).gather(idx))
        pos = np.searchsorted(groups, grp)
        order = np.argsort(pos, kind="stable")
        g_off = np.searchsorted(pos[order], np.arange(groups.size + 1))
        batches.append((counts, offsets))
        csr.append((g_off.astype(np.int64), (order + base).astype(np.int64)))
        base += idx.size
    counts = np.concatenate([batches[0][0], batches[1][0]])
    offsets = np.concatenate([batches[0][1][:-1], batches[1][1] + batches[0][1][-1]])
    inter = np.zeros(groups.size, np.int64)
    union = np.zeros(groups.size, np.int64)
    run_ranges(semantic_mask_iou, (counts, offsets.astype(np.int64), csr[0][0], csr[0][1],
                                   csr[1][0], csr[1][1], inter, union), csr[0][0] + csr[1][0])
    fiou[groups] = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
