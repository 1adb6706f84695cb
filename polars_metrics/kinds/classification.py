"""Classifications (SPEC §4): radio, checklist and free text. Not geometric: no IoU threshold.

- radio: the matching unit is the question; the feature is the answer. Both sides answering a
  question on a data row form a pair that matches at every IoU threshold; equal answers are a
  true positive, different answers a confusion cell [gt answer, pred answer].
- checklist: every option is its own unit (the feature is the option); an option selected on
  both sides is a pair.
- text: the feature is the question; equal strings are a pair (true positive), otherwise the
  prediction is a false positive and the ground truth a false negative.

The pair IoU is 1 (agreement), so the per-feature IoU metric reads as agreement too. Tables
carry ``question`` and ``answer`` (String; radio, text) or ``answers`` (List(String);
checklist); ``feature`` is derived after validation by :func:`expand`.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics.errors import SchemaError
from polars_metrics.kinds._base import Kind
from polars_metrics.validation import Check

RADIO, CHECKLIST, TEXT = "radio", "checklist", "text"
# answers of these kinds are features of a question, which gives them true negatives
WITH_TRUE_NEGATIVES = (RADIO, CHECKLIST)


def _castable(have, want) -> bool:
    """Whether a column of dtype ``have`` reads as ``want`` (String, Float64, or a list of
    either) without changing what it says: names from categoricals, numbers from any numeric
    dtype, lists from lists or arrays of such values, nulls from anything."""
    if have == want or have == pl.Null:
        return True
    if isinstance(want, pl.List):
        return isinstance(have, pl.List | pl.Array) and _castable(have.inner, want.inner)
    if want == pl.String:
        return isinstance(have, pl.Categorical | pl.Enum)
    return want == pl.Float64 and have.is_numeric()


def _cast(frame: pl.DataFrame, table: str, column: str, dtype) -> pl.DataFrame:
    """``column`` as ``dtype`` when :func:`_castable`, else an error naming table and column.

    >>> _cast(pl.DataFrame({"answers": [[["a"]]]}), "gt", "answers", pl.List(pl.String))
    Traceback (most recent call last):
    ...
    polars_metrics.errors.SchemaError: gt.answers has dtype List(List(String)); expected List(String).
    """
    have = frame.schema[column]
    if have == dtype:
        return frame
    if _castable(have, dtype):
        return frame.with_columns(pl.col(column).cast(dtype))
    raise SchemaError(f"{table}.{column} has dtype {have}; expected {dtype}.")


def _normalize(geometry: tuple[str, ...], frame: pl.DataFrame, table: str) -> pl.DataFrame:
    frame = _cast(frame, table, s.QUESTION, pl.String)
    for col in geometry[1:]:
        frame = _cast(frame, table, col, pl.List(pl.String) if col == s.ANSWERS else pl.String)
    if s.ANSWER_CONFIDENCES in frame.columns:  # one score per option, read with the answers
        frame = _cast(frame, table, s.ANSWER_CONFIDENCES, pl.List(pl.Float64))
    return frame


def _checks(name: str, table: str, keys: Sequence[str] = (s.DATA_ROW,)) -> list[Check]:
    out = [Check(s.QUESTION, pl.col(s.QUESTION).is_null(), "question is null",
                 "name the classification question of every row")]
    if name == CHECKLIST:
        out.append(Check(s.ANSWERS, pl.col(s.ANSWERS).is_null(), "answers is null",
                         "give the list of selected options (an empty list means none)"))
        out.append(Check(s.ANSWERS,
                         pl.col(s.ANSWERS).list.len() != pl.col(s.ANSWERS).list.n_unique(),
                         "an option is selected twice", "list each selected option once"))
        out.append(Check(s.ANSWERS, pl.col(s.ANSWERS).list.eval(pl.element().is_null()).list.any(),
                         "an option in answers is null", "name every selected option"))
        out.extend(_option_confidence_checks())
    else:
        out.append(Check(s.ANSWER, pl.col(s.ANSWER).is_null(), "answer is null",
                         "give every classification its answer"))
        if name == RADIO:
            out.append(Check(s.ANSWER, pl.col(s.ANSWER) == "", "answer is empty",
                             "give the name of the chosen option"))
    out.append(Check(s.QUESTION,
                     pl.struct([*keys, s.QUESTION, s.KIND]).is_duplicated()
                     & (pl.col(s.KIND) == name),
                     f"a {name} question is answered twice on one side of a data row",
                     "keep one answer row per question and data row (a checklist lists "
                     "all its options in one row)"))
    return out


def _option_confidence_checks() -> list[Check]:
    """Per-option confidences (``answer_confidences``, aligned with ``answers``) are scores
    like ``confidence``: in [0, 1] or null (= the row's confidence), one per option."""
    def bad_value(frame: pl.DataFrame) -> np.ndarray:
        if s.ANSWER_CONFIDENCES not in frame.columns:
            return np.zeros(frame.height, dtype=bool)
        c = pl.element().cast(pl.Float64)
        expr = pl.col(s.ANSWER_CONFIDENCES).list.eval(c.is_nan() | (c < 0) | (c > 1)).list.any()
        return frame.select(expr.fill_null(False)).to_series().to_numpy()

    def bad_length(frame: pl.DataFrame) -> np.ndarray:
        if s.ANSWER_CONFIDENCES not in frame.columns:
            return np.zeros(frame.height, dtype=bool)
        conf = pl.col(s.ANSWER_CONFIDENCES)
        expr = conf.is_not_null() & (conf.list.len() != pl.col(s.ANSWERS).list.len())
        return frame.select(expr.fill_null(False)).to_series().to_numpy()

    # reported under answers (the kind's geometry column) with the reason naming the column
    return [Check(s.ANSWERS, bad_value,
                  "an option confidence (answer_confidences) is NaN or outside [0, 1]",
                  "give option confidences in [0, 1] (null means the row's confidence)"),
            Check(s.ANSWERS, bad_length,
                  "answer_confidences does not have one entry per option in answers",
                  "align answer_confidences with answers (null entries are allowed)")]


def _feature_from(column: str, frame: pl.DataFrame) -> pl.DataFrame:
    """radio: the feature is the answer; text: the question."""
    return frame.with_columns(pl.col(column).alias(s.FEATURE))


def expand_checklist(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per selected option, the option as ``feature``.

    An empty checklist explodes to one row with a null option: the question was answered (it
    counts for true negatives) but nothing was selected.

    Examples
    --------
    >>> f = pl.DataFrame({"question": ["q", "q"], "answers": [["a", "b"], []]})
    >>> expand_checklist(f).rows()
    [('q', 'a'), ('q', 'b'), ('q', None)]
    """
    if s.ANSWER_CONFIDENCES in frame.columns:
        # per-option confidence (aligned with answers) takes precedence over the row's; a
        # null list means none (one null per option, so that both lists explode alike)
        none = pl.col(s.ANSWERS).list.eval(pl.lit(None, dtype=pl.Float64))
        out = frame.with_columns(pl.col(s.ANSWER_CONFIDENCES).fill_null(none)).explode(
            [s.ANSWERS, s.ANSWER_CONFIDENCES], empty_as_null=True)
        if s.CONFIDENCE in out.columns:
            out = out.with_columns(pl.coalesce(pl.col(s.ANSWER_CONFIDENCES).cast(pl.Float64),
                                               pl.col(s.CONFIDENCE)).alias(s.CONFIDENCE))
        if s.CONFIDENCE_GIVEN in out.columns:  # an option's own confidence counts as given
            out = out.with_columns(pl.col(s.CONFIDENCE_GIVEN)
                                   | pl.col(s.ANSWER_CONFIDENCES).is_not_null())
        frame = out.drop(s.ANSWER_CONFIDENCES)
    else:
        frame = frame.explode(s.ANSWERS, empty_as_null=True)
    return frame.with_columns(pl.col(s.ANSWERS).alias(s.FEATURE)).drop(s.ANSWERS)


def _pairs(name: str, gt, pd, profile=None):
    """Pairs by equal (data row, question) — and equal option (checklist) or text (text)."""
    on = ["_r", s.QUESTION] + ([s.FEATURE] if name in (CHECKLIST, TEXT) else [])
    cols = [s.QUESTION, s.FEATURE] + ([s.ANSWER] if name == TEXT else [])
    left = gt.select(*cols).with_columns(pl.Series("_r", gt.row), pl.int_range(pl.len()).alias("_g"))
    right = pd.select(*cols).with_columns(pl.Series("_r", pd.row), pl.int_range(pl.len()).alias("_p"))
    if name == TEXT:
        on.append(s.ANSWER)
    joined = left.join(right, on=on, how="inner").sort("_g", "_p")
    g = joined["_g"].to_numpy().astype(np.int64)
    p = joined["_p"].to_numpy().astype(np.int64)
    n_rows = gt.off.shape[0] - 1
    off = np.searchsorted(gt.row[g], np.arange(n_rows + 1)).astype(np.int64)
    return off, g, p, np.ones(g.shape[0], dtype=np.float64)


def _declare(name: str, geometry: tuple[str, ...], expand, *, inferred: bool = True) -> Kind:
    """A classification kind: pairs match at every IoU threshold, the feature is derived."""
    return Kind(name, geometry, partial(_normalize, geometry), partial(_checks, name),
                partial(_pairs, name), always_match=True, expand=expand, inferred=inferred)


# --- table-level steps used by prepare -------------------------------------------------------

def qualify_collisions(gt: pl.DataFrame, pd: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """Name radio/checklist features "question/answer" where the bare answer is ambiguous.

    An answer name is ambiguous when several questions use it, or when it is also the name of
    an object feature or a text question. Returns the renamed names (for a warning).

    >>> gt = pl.DataFrame({"kind": ["radio", "radio"], "question": ["q1", "q2"],
    ...                    "feature": ["yes", "yes"]})
    >>> gt2, _, renamed = qualify_collisions(gt, gt.clear())
    >>> gt2["feature"].to_list(), renamed
    (['q1/yes', 'q2/yes'], ['yes'])
    """
    if not any(s.QUESTION in f.columns and f[s.KIND].is_in(WITH_TRUE_NEGATIVES).any() for f in (gt, pd)):
        return gt, pd, []

    def answers(frame):
        if s.QUESTION not in frame.columns:
            return pl.DataFrame(schema={s.FEATURE: pl.String, s.QUESTION: pl.String})
        return frame.filter(pl.col(s.KIND).is_in(WITH_TRUE_NEGATIVES) & pl.col(s.FEATURE).is_not_null()
                            ).select(s.FEATURE, s.QUESTION)

    def others(frame):
        return frame.filter(~pl.col(s.KIND).is_in(WITH_TRUE_NEGATIVES)).select(s.FEATURE).unique()

    clash = clashing_answers(pl.concat([answers(gt), answers(pd)]),
                             set(pl.concat([others(gt), others(pd)])[s.FEATURE].to_list()))
    if not clash:
        return gt, pd, []

    def rename(frame):
        if s.QUESTION not in frame.columns:
            return frame
        hit = pl.col(s.KIND).is_in(WITH_TRUE_NEGATIVES) & pl.col(s.FEATURE).is_in(sorted(clash))
        return frame.with_columns(
            pl.when(hit).then(pl.concat_str(s.QUESTION, pl.lit("/"), s.FEATURE))
            .otherwise(pl.col(s.FEATURE)).alias(s.FEATURE))

    return rename(gt), rename(pd), sorted(clash)


def clashing_answers(options: pl.DataFrame, others: set[str]) -> set[str]:
    """The answer names that need their question: used by several questions (``options``:
    feature = bare answer name, question) or also the name of a feature in ``others``.

    >>> opts = pl.DataFrame({"feature": ["yes", "yes", "no"], "question": ["q1", "q2", "q1"]})
    >>> sorted(clashing_answers(opts, {"no"}))
    ['no', 'yes']
    """
    pairs = options.select(s.FEATURE, s.QUESTION).unique()
    clash = set(pairs.group_by(s.FEATURE).len().filter(pl.col("len") > 1)[s.FEATURE].to_list())
    return clash | (set(pairs[s.FEATURE].to_list()) & others)


class QuestionIndex:
    """What true negatives need: the question of every radio/checklist feature, the option
    universe size of every question, and where questions were answered.

    ``feature_question[f]`` is the question code of feature f (-1: no true negatives);
    ``rq_row``/``rq_question``/``rq_npass``: one entry per (data row, question) answered on
    either side; the question counts at confidence index c iff ``c < rq_npass`` (ground truth
    answers count at every c).
    """

    def __init__(self, features, gt, gt_row, pd, pd_row, pd_npass, n_conf, qualified=()):
        self.qualified = frozenset(qualified)  # answer names written "question/answer"
        mapping = pl.concat([
            pl.DataFrame(schema={s.FEATURE: pl.String, s.QUESTION: pl.String}),
            *(f.filter(pl.col(s.KIND).is_in(WITH_TRUE_NEGATIVES) & pl.col(s.FEATURE).is_not_null())
              .select(s.FEATURE, s.QUESTION) for f in (gt, pd) if s.QUESTION in f.columns),
        ]).unique()
        # every question answered on either side, also one answered with an empty checklist
        # (no feature, so not in ``mapping``): it is a question without options seen
        asked = set(mapping[s.QUESTION].to_list())
        for f in (gt, pd):
            if s.QUESTION in f.columns:
                asked |= set(f.filter(pl.col(s.KIND).is_in(WITH_TRUE_NEGATIVES))[s.QUESTION]
                             .drop_nulls().to_list())
        self.questions = tuple(sorted(asked))
        q_code = {q: i for i, q in enumerate(self.questions)}
        f_code = {f: i for i, f in enumerate(features)}
        self.feature_question = np.full(len(features), -1, dtype=np.int64)
        for feat, q in mapping.iter_rows():
            self.feature_question[f_code[feat]] = q_code[q]
        self.universe = np.bincount(self.feature_question[self.feature_question >= 0],
                                    minlength=len(self.questions))
        rows, qs, npass = [], [], []
        for frame, row, np_ in ((gt, gt_row, None), (pd, pd_row, pd_npass)):
            if s.QUESTION not in frame.columns or not self.questions:
                continue
            # (placeholder rows have no kind: null, not a classification)
            mask = frame[s.KIND].is_in(WITH_TRUE_NEGATIVES).fill_null(False).to_numpy() & (row >= 0)
            if not mask.any():
                continue
            q = frame[s.QUESTION].filter(pl.Series(mask))
            rows.append(row[mask])
            qs.append(q.replace_strict(q_code, return_dtype=pl.Int64).to_numpy())
            npass.append(np.full(mask.sum(), n_conf, dtype=np.int64) if np_ is None else np_[mask])
        if rows:
            row_all, q_all, n_all = (np.concatenate(x) for x in (rows, qs, npass))
            code = row_all * len(self.questions) + q_all
            uniq, inv = np.unique(code, return_inverse=True)
            best = np.zeros(uniq.shape[0], dtype=np.int64)
            np.maximum.at(best, inv, n_all)
            self.rq_row = uniq // len(self.questions)
            self.rq_question = uniq % len(self.questions)
            self.rq_npass = best
        else:
            self.rq_row = self.rq_question = self.rq_npass = np.zeros(0, dtype=np.int64)

    @property
    def empty(self) -> bool:
        return not self.questions

    def answer_of(self, feature: str, question: str) -> str:
        """The bare answer name of a radio/checklist ``feature`` of ``question``."""
        head = question + "/"
        bare = feature[len(head):]
        return bare if feature.startswith(head) and bare in self.qualified else feature


RADIO_KIND = _declare(RADIO, (s.QUESTION, s.ANSWER), partial(_feature_from, s.ANSWER))
CHECKLIST_KIND = _declare(CHECKLIST, (s.QUESTION, s.ANSWERS), expand_checklist)
# a question/answer table without a kind column is radio unless told
TEXT_KIND = _declare(TEXT, (s.QUESTION, s.ANSWER), partial(_feature_from, s.QUESTION),
                     inferred=False)
