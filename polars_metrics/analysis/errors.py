"""Error decomposition (TIDE, Bolya et al. 2020): why each false positive and false negative
of one cube cell is one.

Every false positive (a kept prediction that is not a true positive at the cell) gets one type,
tested in TIDE's order (``tidecv/quantify.py``), with ``fg`` the cell's IoU threshold, ``bg``
the background threshold and "passes" the profile's IoU test (``iou > fg``, or
``iou >= min(fg, 1 - 1e-10)`` when ``iou_strict=False``):

1. ``background`` — the data row has no ground truth at all;
2. ``localization`` — the best same-feature IoU is in ``[bg, fg)`` (>= bg and does not pass);
3. ``classification`` — the best IoU with a ground truth of another feature passes ``fg``;
4. ``duplicate`` — the best same-feature IoU with a ground truth already matched at the cell
   passes ``fg``;
5. ``background`` — every IoU is <= ``bg``;
6. ``both`` — anything else: wrong feature with ``bg < IoU < fg``.

Each false negative (ground truth not a true positive) is ``missed`` unless a classification
or localization error targets it; then it is explained by that error (the highest-confidence
one, first in data-row order on ties, as TIDE's ``BestGTMatch``) and takes its type. So

* classification + localization + both + duplicate + background = FP (per prediction feature),
* the ground-truth rows (missed, and FNs explained by a classification / localization error)
  = FN (per ground-truth feature); TIDE's ``missed`` count is the first part only.

Deliberate differences from tidecv, all at exact-threshold ties or outside TIDE's scope: the
IoU test is the profile's (tidecv: ``>= fg`` to match but ``<= fg`` for localization, so a
used ground truth at exactly ``fg`` is a localization error there and a duplicate here); a
ground truth counts as "used" when it is matched at the cell to any prediction (under
``class_aware=False`` matching that can be one of another feature); the matching is the
evaluation's own (IoU order under ``labelbox``: the winner of a duplicate need not have the
higher score). Classification kinds: a radio answer pairs with every answer to its question
(IoU 1), so a wrong answer is a ``classification`` error; checklist options and text answers
pair only with the same option / text, so a wrong one is ``background`` and the expected one
``missed``; an unanswered question is ``missed`` and an extra answer ``background``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics.analysis import BACKGROUND_IOU  # noqa: F401  (its home before; re-exported)
from polars_metrics.errors import PolarsMetricsError
from polars_metrics.events import ALMOST_ONE
from polars_metrics.state import Detail

CLASSIFICATION, LOCALIZATION, BOTH = "classification", "localization", "both"
DUPLICATE, BACKGROUND, MISSED = "duplicate", "background", "missed"
ERROR_TYPES = (CLASSIFICATION, LOCALIZATION, BOTH, DUPLICATE, BACKGROUND, MISSED)  # TIDE's order
ERROR_DTYPE = pl.Enum(ERROR_TYPES)
CLS, LOC, BTH, DUP, BKG, MIS = range(6)
PREDICTION, GROUND_TRUTH = "prediction", "ground_truth"
SIDE_DTYPE = pl.Enum([PREDICTION, GROUND_TRUTH])
_TYPES = pl.Series(s.ERROR_TYPE, ERROR_TYPES, dtype=ERROR_DTYPE)
_SIDES = pl.Series(s.SIDE, [PREDICTION, GROUND_TRUTH], dtype=SIDE_DTYPE)


@dataclass(frozen=True)
class CellInputs:
    """Positions are indices into the prepared ground truths / predictions (data-row order).

    ``kept``: the predictions counted at the cell; ``match_gt`` / ``match_pd``: the pairs
    matched at the cell (kept predictions only); pairs: every (gt, pd) with IoU > 0, any feature.
    """

    gt_feat: np.ndarray
    pd_feat: np.ndarray
    gt_per_row: np.ndarray
    pd_row: np.ndarray
    pd_conf: np.ndarray
    kept: np.ndarray
    pair_gt: np.ndarray
    pair_pd: np.ndarray
    pair_iou: np.ndarray
    pair_always: np.ndarray
    match_gt: np.ndarray
    match_pd: np.ndarray
    pair_order: np.ndarray | None = None  # pairs by (pd, IoU desc, gt); see pair_order()


def pair_order(detail: Detail) -> np.ndarray:
    """Pairs by prediction, then IoU descending (threshold-free pairs first), then ground
    truth: independent of the cell, so computed once per evaluation and cached."""
    if "error_pair_order" not in detail.frames:
        p = detail.pairs_arrays
        key = np.where(p.always, 2.0, p.iou)
        detail.frames["error_pair_order"] = np.lexsort((p.gt, -key, p.pd))
    return detail.frames["error_pair_order"]


@dataclass(frozen=True)
class Decomposition:
    """Per prediction and per ground truth: the type code (-1 = no error), the pair that
    decided it (-1 = none) — for a ground truth, the pair of the error that explains it —
    and for a ground truth the explaining prediction (-1 = none)."""

    pd_type: np.ndarray
    pd_pair: np.ndarray
    gt_type: np.ndarray
    gt_pair: np.ndarray
    gt_pd: np.ndarray
    pd_tp: np.ndarray
    gt_tp: np.ndarray


def _best_pair(cand: np.ndarray, order: np.ndarray, pair_pd: np.ndarray,
               n_pd: int) -> np.ndarray:
    """Per prediction, the candidate pair first in ``order`` (pairs by prediction, then key
    descending, then ground truth: the best IoU, first ground truth on ties); -1 where the
    prediction has no candidate."""
    out = np.full(n_pd, -1, dtype=np.int64)
    srt = order[cand[order]]
    if srt.size == 0:
        return out
    p = pair_pd[srt]
    first = np.ones(srt.size, dtype=bool)
    first[1:] = p[1:] != p[:-1]
    out[p[first]] = srt[first]
    return out


def classify(x: CellInputs, fg: float, bg: float, strict: bool) -> Decomposition:
    """TIDE's error types at one cell (see the module docstring for the rules)."""
    n_gt, n_pd = x.gt_feat.shape[0], x.pd_feat.shape[0]
    right = x.gt_feat[x.match_gt] == x.pd_feat[x.match_pd]
    gt_tp = np.zeros(n_gt, dtype=bool)
    pd_tp = np.zeros(n_pd, dtype=bool)
    gt_tp[x.match_gt[right]] = True
    pd_tp[x.match_pd[right]] = True
    taken = np.zeros(n_gt, dtype=bool)
    taken[x.match_gt] = True
    fp = x.kept & ~pd_tp

    passes = x.pair_always | (x.pair_iou > fg if strict else x.pair_iou >= min(fg, ALMOST_ONE))
    key = np.where(x.pair_always, 2.0, x.pair_iou)  # threshold-free pairs rank first
    key_x, pass_x = np.append(key, 0.0), np.append(passes, False)  # index -1: no pair
    sel = fp[x.pair_pd]
    same = x.gt_feat[x.pair_gt] == x.pd_feat[x.pair_pd]
    order = (np.lexsort((x.pair_gt, -key, x.pair_pd)) if x.pair_order is None
             else x.pair_order)
    s_best = _best_pair(sel & same, order, x.pair_pd, n_pd)
    o_best = _best_pair(sel & ~same, order, x.pair_pd, n_pd)
    u_best = _best_pair(sel & same & taken[x.pair_gt], order, x.pair_pd, n_pd)
    a_best = _best_pair(sel, order, x.pair_pd, n_pd)

    pd_type = np.full(n_pd, -1, dtype=np.int8)
    pd_pair = np.full(n_pd, -1, dtype=np.int64)
    rest = fp.copy()

    def assign(mask: np.ndarray, code: int, pair: np.ndarray) -> None:
        hit = rest & mask
        pd_type[hit] = code
        pd_pair[hit] = pair[hit]
        rest[hit] = False

    none = np.full(n_pd, -1, dtype=np.int64)
    assign(x.gt_per_row[x.pd_row] == 0, BKG, none)
    assign((s_best >= 0) & (key_x[s_best] >= bg) & ~pass_x[s_best], LOC, s_best)
    assign(pass_x[o_best], CLS, o_best)
    assign(pass_x[u_best], DUP, u_best)
    assign(key_x[a_best] <= bg, BKG, a_best)
    assign(rest, BTH, o_best)

    gt_type = np.where(gt_tp, -1, MIS).astype(np.int8)
    gt_pair = np.full(n_gt, -1, dtype=np.int64)
    gt_pd = np.full(n_gt, -1, dtype=np.int64)
    expl = np.flatnonzero((pd_type == CLS) | (pd_type == LOC))
    target = x.pair_gt[pd_pair[expl]]
    expl, target = expl[~gt_tp[target]], target[~gt_tp[target]]
    if expl.size:
        order = np.lexsort((expl, -x.pd_conf[expl], target))
        expl, target = expl[order], target[order]
        first = np.ones(expl.size, dtype=bool)
        first[1:] = target[1:] != target[:-1]
        g, p = target[first], expl[first]
        gt_type[g], gt_pair[g], gt_pd[g] = pd_type[p], pd_pair[p], p
    return Decomposition(pd_type, pd_pair, gt_type, gt_pair, gt_pd, pd_tp, gt_tp)


def check_background_iou(background_iou: float, fg: float) -> None:
    if not (0.0 <= background_iou <= fg):
        raise ValueError(
            f"background_iou={background_iou} must be in [0, iou] = [0, {fg}]: a prediction "
            "below it overlaps nothing, between it and iou it is mislocalized (TIDE uses 0.1).")


def cell_inputs(detail: Detail, c: int, t: int, use_confidence: bool) -> CellInputs:
    """The :class:`CellInputs` of one cell (grid indices) of a pipeline evaluation."""
    if detail.prep is None or detail.pairs_arrays is None or detail.matches_arrays is None:
        raise PolarsMetricsError(
            "errors() needs the pairs of one in-memory run; they are not kept through pm.merge "
            "or a streamed evaluation. Evaluate the data rows you want to analyse with "
            "pm.evaluate(ground_truth, predictions) on in-memory frames.")
    prep, m, pairs = detail.prep, detail.matches_arrays, detail.pairs_arrays
    c_lo, c_hi, t_lo, t_hi = m.rectangles()
    at = (c_lo <= c) & (c < c_hi) & (t_lo <= t) & (t < t_hi)
    kept = (prep.pd.npass > c) if use_confidence else np.ones(len(prep.pd), dtype=bool)
    return CellInputs(
        gt_feat=prep.gt.feat, pd_feat=prep.pd.feat, gt_per_row=np.diff(prep.gt.off),
        pd_row=prep.pd.row, pd_conf=prep.pd.column(s.CONFIDENCE).to_numpy(), kept=kept,
        pair_gt=pairs.gt, pair_pd=pairs.pd, pair_iou=pairs.iou, pair_always=pairs.always,
        match_gt=m.ev_gt[at].astype(np.int64), match_pd=m.ev_pd[at].astype(np.int64),
        pair_order=pair_order(detail),
    )


def annotation_frame(detail: Detail, x: CellInputs, d: Decomposition) -> pl.DataFrame:
    """One row per false positive (side "prediction") and per false negative (side
    "ground_truth"): (*keys, *by, side, error_type, gt_feature, pd_feature, confidence, gt_id,
    pd_id, iou). ``gt_id`` of a prediction row is the ground truth that decided its type
    (null for background without overlap); ``pd_id`` of a ground-truth row is the prediction
    whose error explains it (null when missed); ``iou`` is the deciding pair's IoU."""
    prep = detail.prep
    gt_ids, pd_ids = prep.gt.column(s.ID), prep.pd.column(s.ID)
    names = pl.Series(list(prep.features), dtype=pl.String)
    conf = x.pd_conf
    gt_row, pd_row = prep.gt.row, prep.pd.row
    iou_x = np.append(x.pair_iou, np.nan)
    gt_x = np.append(x.pair_gt, -1)

    def side(pos, row, typ, gt_pos, pd_pos, pair, label) -> pl.DataFrame:
        return pl.concat([
            prep.rows.select(*prep.keys, *prep.by)[row[pos]],
            pl.DataFrame({
                "_row": row[pos],
                s.SIDE: _SIDES.gather(np.full(pos.size, _SIDES.index_of(label))),
                s.ERROR_TYPE: _TYPES.gather(typ.astype(np.int64)),
                s.GT_FEATURE: _gather(names, x.gt_feat, gt_pos),
                s.PD_FEATURE: _gather(names, x.pd_feat, pd_pos),
                s.CONFIDENCE: np.where(pd_pos >= 0, conf[np.maximum(pd_pos, 0)], np.nan)
                if conf.size else np.full(pos.size, np.nan),
                s.GT_ID: _gather(gt_ids, None, gt_pos),
                s.PD_ID: _gather(pd_ids, None, pd_pos),
                s.IOU: iou_x[pair],
            }),
        ], how="horizontal")

    p = np.flatnonzero(d.pd_type >= 0)
    g = np.flatnonzero(d.gt_type >= 0)
    out = pl.concat([
        side(p, pd_row, d.pd_type[p], gt_x[d.pd_pair[p]], p, d.pd_pair[p], PREDICTION),
        side(g, gt_row, d.gt_type[g], g, d.gt_pd[g], d.gt_pair[g], GROUND_TRUTH),
    ])
    return (out.with_columns(pl.col(s.CONFIDENCE).fill_nan(None), pl.col(s.IOU).fill_nan(None))
            .sort("_row", s.SIDE, maintain_order=True).drop("_row"))


def _gather(values: pl.Series, codes: np.ndarray | None, pos: np.ndarray) -> pl.Series:
    """``values[codes[pos]]`` (or ``values[pos]``), null where ``pos`` is -1."""
    ok = pos >= 0
    idx = np.maximum(pos, 0)
    if codes is not None:
        idx = codes[idx] if codes.size else idx
    if values.len() == 0:
        return pl.Series(values.name, [None] * pos.size, dtype=values.dtype)
    picked = values.gather(idx.astype(np.int64))
    return picked.set(pl.Series(~ok), None) if (~ok).any() else picked


def count_frame(ann: pl.DataFrame, grid: pl.DataFrame, by: tuple[str, ...]) -> pl.DataFrame:
    """(*by, feature, error_type, count): TIDE's counts — the prediction-side types per
    prediction feature and ``missed`` per ground-truth feature — one row per (slice, feature
    of the cube) × type, zeros included, then the totals over features (feature = null)."""
    by = list(by)
    counted = ann.filter((pl.col(s.SIDE) == PREDICTION) | (pl.col(s.ERROR_TYPE) == MISSED))
    counted = counted.with_columns(
        pl.when(pl.col(s.SIDE) == PREDICTION).then(pl.col(s.PD_FEATURE))
        .otherwise(pl.col(s.GT_FEATURE)).alias(s.FEATURE))
    counts = counted.group_by(*by, s.FEATURE, s.ERROR_TYPE).agg(pl.len().alias(s.COUNT))
    types = pl.DataFrame({s.ERROR_TYPE: pl.Series(ERROR_TYPES, dtype=ERROR_DTYPE)})
    full = (grid.select(*by, s.FEATURE).unique().join(types, how="cross")
            .join(counts, on=[*by, s.FEATURE, s.ERROR_TYPE], how="left", nulls_equal=True)
            .with_columns(pl.col(s.COUNT).fill_null(0).cast(pl.Int64)))
    totals = full.group_by(*by, s.ERROR_TYPE).agg(pl.col(s.COUNT).sum()).with_columns(
        pl.lit(None, dtype=pl.String).alias(s.FEATURE))
    out = pl.concat([full, totals.select(full.columns)])
    return out.sort([*by, s.FEATURE, s.ERROR_TYPE], nulls_last=True)


def error_frames(detail: Detail, grid: pl.DataFrame, *, by: tuple[str, ...], c: int, t: int,
                 fg: float, background_iou: float, strict: bool,
                 use_confidence: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(counts, annotations) at the cell (c, t) of a pipeline evaluation; ``grid`` holds the
    (*by, feature) rows of the cube."""
    check_background_iou(background_iou, fg)
    x = cell_inputs(detail, c, t, use_confidence)
    d = classify(x, fg, background_iou, strict)
    ann = annotation_frame(detail, x, d)
    return count_frame(ann, grid, by), ann
