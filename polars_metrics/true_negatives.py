"""True negatives of classification features (SPEC §4); every other feature has none (null).

A radio answer or checklist option ``f`` of question ``q`` is a true negative on a data row
where ``q`` was answered (on either side, by a kept prediction at the confidence threshold)
and ``f`` was chosen on neither side. Counted per (slice, confidence threshold, feature) — true
negatives do not depend on the IoU threshold — and per (data row, confidence threshold).

Which options a question has, and which answer names need their question ("q/yes"), depend on
the whole tables, while ``pm.partial`` sees only its own data rows. A :class:`QuestionState`
carries what a part saw (its options, the rows where each question was answered), and
:func:`merged_true_negatives` resolves both at ``pm.merge``, so any partition of the data rows
merges to one evaluation's numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from polars_metrics import _arrays
from polars_metrics import schema as s
from polars_metrics.events import Matches
from polars_metrics.kinds.classification import clashing_answers
from polars_metrics.prepare import SLICE, Prepared

_ANSWER, _ROWS, _NPASS, _ADD = "answer", "rows", "npass", "_tn_add"


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


@dataclass(frozen=True)
class QuestionState:
    """What one part saw of the classification questions, for :func:`merged_true_negatives`.

    options : (question, answer, feature) — each radio/checklist option, ``answer`` its bare
        name, ``feature`` its name in this part.
    others : (feature) — names without true negatives (object features, text questions).
    answered : (*by, confidence_threshold, question, rows) — data rows where the question
        counts as answered, per slice.
    row_questions : (*keys, question, npass) — per data row, each answered question and the
        number of confidence thresholds at which it counts.
    """

    options: pl.DataFrame
    others: pl.DataFrame
    answered: pl.DataFrame
    row_questions: pl.DataFrame

    @classmethod
    def of_run(cls, prep: Prepared) -> QuestionState:
        qi = prep.questions
        row_slice = np.ascontiguousarray(prep.rows[SLICE].to_numpy(), dtype=np.int64)
        fq = qi.feature_question
        names = np.array(qi.questions + ("",), dtype=object)
        opt = [(names[q], qi.answer_of(f, names[q]), f) for f, q in zip(prep.features, fq, strict=True) if q >= 0]
        options = pl.DataFrame(opt, schema={s.QUESTION: pl.String, _ANSWER: pl.String,
                                            s.FEATURE: pl.String}, orient="row")
        others = pl.DataFrame({s.FEATURE: [f for f, q in zip(prep.features, fq, strict=True) if q < 0]},
                              schema={s.FEATURE: pl.String})
        S, C, Q = prep.slices.height, prep.conf_thr.shape[0], len(qi.questions)
        answered = (_answered_per_slice(prep, row_slice, S) if Q else np.zeros((S, C, 0), np.int64))
        sl, c, q = np.nonzero(answered)
        answered_frame = pl.concat([
            prep.slices.select(prep.by)[sl] if prep.by else pl.DataFrame(),
            pl.DataFrame({s.CONFIDENCE_THRESHOLD: prep.conf_thr[c],
                          s.QUESTION: pl.Series(names[q].tolist(), dtype=pl.String),
                          _ROWS: answered[sl, c, q].astype(np.int64)}),
        ], how="horizontal")
        row_questions = pl.concat([
            prep.rows.select(prep.keys)[qi.rq_row],
            pl.DataFrame({s.QUESTION: pl.Series(names[qi.rq_question].tolist(), dtype=pl.String),
                          _NPASS: qi.rq_npass.astype(np.int64)}),
        ], how="horizontal")
        return cls(options, others, answered_frame, row_questions)

    def renamed(self, mapping: dict[str, str]) -> QuestionState:
        return QuestionState(rename_features(self.options, mapping), self.others, self.answered,
                             self.row_questions)


def rename_features(frame: pl.DataFrame, mapping: dict[str, str]) -> pl.DataFrame:
    """``frame`` with its feature columns (feature, gt_feature, pd_feature) renamed."""
    if not mapping:
        return frame
    cols = [c for c in (s.FEATURE, s.GT_FEATURE, s.PD_FEATURE) if c in frame.columns]
    return frame.with_columns(pl.col(c).replace(mapping) for c in cols)


def merged_names(states: list[QuestionState]) -> list[dict[str, str]]:
    """Per part, the renames that give its options the whole tables' names: an answer name
    needs its question when several questions use it, or another feature has it."""
    options = pl.concat([st.options for st in states])
    others = set(pl.concat([st.others for st in states])[s.FEATURE].to_list())
    clash = clashing_answers(options.select(pl.col(_ANSWER).alias(s.FEATURE), s.QUESTION), others)
    out = []
    for st in states:
        out.append({feat: f"{q}/{a}" if a in clash else a
                    for q, a, feat in st.options.iter_rows()
                    if feat != (f"{q}/{a}" if a in clash else a)})
    return out


def merge_states(states: list[QuestionState | None]) -> QuestionState | None:
    """The state of the union of the parts (their options already named alike)."""
    states = [st for st in states if st is not None]
    if not states:
        return None
    return QuestionState(*(pl.concat([getattr(st, f) for st in states]).unique(maintain_order=True)
                           if f in ("options", "others") else
                           pl.concat([getattr(st, f) for st in states])
                           for f in ("options", "others", "answered", "row_questions")))


def merged_true_negatives(states: list[QuestionState], counts: list[pl.DataFrame],
                          merged_counts: pl.DataFrame, data_rows: pl.DataFrame, by, keys,
                          conf_thr: np.ndarray) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Merged ``counts`` and ``data_rows`` with the true negatives one evaluation over all parts
    gives (parts' options renamed alike first, see :func:`merged_names`).

    A part counted true negatives only for the options it saw: an option of question q absent
    from a part's slice misses that part's rows where q was answered (in the slice), and a data
    row's true negatives miss the options of its questions that the part did not see.
    """
    by, keys = list(by), list(keys)
    option_of = pl.concat([st.options for st in states]).select(s.QUESTION, s.FEATURE).unique()
    slice_add = []
    for st, part_counts in zip(states, counts, strict=True):
        present = part_counts.select(*by, s.FEATURE).unique()
        slice_add.append(st.answered.join(option_of, on=s.QUESTION)
                         .join(present, on=[*by, s.FEATURE], how="anti", nulls_equal=True)
                         .select(*by, s.FEATURE, s.CONFIDENCE_THRESHOLD, _ROWS))
    grid = [*by, s.FEATURE, s.CONFIDENCE_THRESHOLD]
    slice_add = pl.concat(slice_add).group_by(grid).agg(pl.col(_ROWS).sum().alias(_ADD))
    merged_counts = _add_tn(merged_counts, slice_add, grid)

    universe = option_of.group_by(s.QUESTION).len("size")
    thresholds = pl.DataFrame({s.CONFIDENCE_THRESHOLD: conf_thr,
                               "_c": np.arange(conf_thr.shape[0], dtype=np.int64)})
    row_add = []
    for st in states:
        mine = st.options.select(s.QUESTION, s.FEATURE).unique().group_by(s.QUESTION).len("mine")
        grown = (universe.join(mine, on=s.QUESTION, how="left")
                 .select(s.QUESTION, (pl.col("size") - pl.col("mine").fill_null(0)).alias(_ADD))
                 .filter(pl.col(_ADD) > 0))
        row_add.append(st.row_questions.join(grown, on=s.QUESTION).join(thresholds, how="cross")
                       .filter(pl.col("_c") < pl.col(_NPASS))
                       .select(*keys, s.CONFIDENCE_THRESHOLD, _ADD))
    row_add = pl.concat(row_add).group_by([*keys, s.CONFIDENCE_THRESHOLD]).agg(pl.col(_ADD).sum())
    return merged_counts, _add_tn(data_rows, row_add, [*keys, s.CONFIDENCE_THRESHOLD])


def _add_tn(frame: pl.DataFrame, add: pl.DataFrame, on: list[str]) -> pl.DataFrame:
    if add.height == 0:
        return frame
    add = add.cast({c: frame.schema[c] for c in on})
    return (frame.join(add, on=on, how="left", nulls_equal=True, maintain_order="left")
            .with_columns((pl.col(s.TN) + pl.col(_ADD).fill_null(0)).cast(frame.schema[s.TN]))
            .drop(_ADD))
