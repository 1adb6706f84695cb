"""True negatives of classification features (SPEC §4); every other feature has none (null).

A radio answer or checklist option ``f`` of question ``q`` is a true negative on a data row
where ``q`` was answered (on either side, by a kept prediction at the confidence threshold)
and ``f`` was chosen on neither side. Counted per (slice, confidence threshold, feature) — true
negatives do not depend on the IoU threshold — and per (data row, confidence threshold).
"""
from __future__ import annotations

import numpy as np

from polars_metrics import _arrays
from polars_metrics.matching import Matches
from polars_metrics.prepare import Prepared


def _answered_per_slice(prep: Prepared, row_slice: np.ndarray, n_slices: int) -> np.ndarray:
    """(S, C, Q): data rows where question q counts as answered at confidence index c."""
    qi = prep.questions
    C, Q = prep.conf_thr.shape[0], len(qi.questions)
    hist = np.bincount((row_slice[qi.rq_row] * Q + qi.rq_question) * (C + 1) + qi.rq_npass,
                       minlength=n_slices * Q * (C + 1)).reshape(n_slices, Q, C + 1)
    # answered at c iff npass > c
    return _arrays.count_above(hist).transpose(0, 2, 1)  # (S, C, Q)


def slice_true_negatives(prep: Prepared, row_slice: np.ndarray, n_slices: int,
                         feature_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tn (S, C, F) and the mask of features that have true negatives.

    ``feature_rows[s, c, f]`` is the number of data rows where f was chosen on either side.
    """
    fq = prep.questions.feature_question
    has = fq >= 0
    tn = np.zeros_like(feature_rows)
    if has.any():
        answered = _answered_per_slice(prep, row_slice, n_slices)
        tn[:, :, has] = answered[:, :, fq[has]] - feature_rows[:, :, has]
    return tn, has


def row_true_negatives(prep: Prepared, m: Matches) -> np.ndarray | None:
    """(n_rows, C) true negatives per data row; NaN where the row has no such question."""
    qi = prep.questions
    if qi.empty:
        return None
    n, C = prep.n_rows, prep.conf_thr.shape[0]
    # Σ option-universe sizes of the questions answered at c (difference array over c)
    diff = np.zeros((n, C + 1))
    np.add.at(diff, (qi.rq_row, 0), qi.universe[qi.rq_question])
    np.add.at(diff, (qi.rq_row, qi.rq_npass), -qi.universe[qi.rq_question])
    universe = np.cumsum(diff, axis=1)[:, :C]
    # minus the options chosen on either side at c
    tn_feature = qi.feature_question[m.rf_feat] >= 0
    chosen = tn_feature[:, None] & ((m.rf_ngt[:, None] > 0) | (m.rf_kept(prep) > 0))
    rf_row = m.rf_row
    taken = np.zeros((n, C))
    for c in range(C):
        taken[:, c] = np.bincount(rf_row, weights=chosen[:, c], minlength=n)
    out = universe - taken
    answered_somewhere = np.zeros(n, dtype=bool)
    answered_somewhere[qi.rq_row] = True
    out[~answered_somewhere] = np.nan
    return out
