"""The README's table of input dtypes ("### Input dtypes") is the contract: every dtype a
cell accepts evaluates (identical tables give true positives: the column was read, not
dropped), and every dtype it refuses raises the library's SchemaError naming table.column."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl
import pytest

import polars_metrics as pm
from polars_metrics.errors import SchemaError

README = Path(__file__).resolve().parent.parent / "README.md"

# the README's words for dtypes -> concrete dtypes to try
NUMBERS_4 = [pl.Array(pl.Float64, 4), pl.Array(pl.Float32, 4), pl.Array(pl.Int64, 4),
             pl.List(pl.Float64), pl.List(pl.Int32)]
NUMBERS_2 = [pl.Array(pl.Float64, 2), pl.Array(pl.Float32, 2), pl.List(pl.Float64),
             pl.List(pl.Int64)]
WORDS = {
    "String": [pl.String], "Categorical": [pl.Categorical], "Enum": ["enum"],
    "integers": [pl.Int64, pl.Int32, pl.UInt8], "floats": [pl.Float64, pl.Float32],
    "Boolean": [pl.Boolean], "Date": [pl.Date], "Binary": [pl.Binary],
    "List": [pl.List(pl.String)], "Struct": [pl.Struct({"x": pl.Int64})],
    "List(String)": [pl.List(pl.String)], "List(integers)": [pl.List(pl.Int64)],
    "List(floats)": [pl.List(pl.Float64), pl.List(pl.Float32)],
    "Array or List of 4 numbers": NUMBERS_4, "Array or List of 2 numbers": NUMBERS_2,
}

# the table each column is tried in, and the values a row holds in each family of dtypes
FIXTURE = {"data_row": "box", "feature": "box", "id": "box", "kind": "box", "confidence": "box",
           "bbox": "box", "point": "point", "start": "span", "end": "span",
           "message_id": "span", "question": "radio", "answer": "radio",
           "answers": "checklist", "answer_confidences": "checklist"}
NAMES = {"data_row": "a", "feature": "cat", "id": "g1", "kind": "box", "message_id": "m",
         "question": "q", "answer": "yes", "answers": "x", "confidence": "high", "start": "0",
         "end": "5", "bbox": "0 0 10 10", "point": "1 2", "answer_confidences": "0.9"}
INTEGERS = {"data_row": 1, "id": 7, "confidence": 1, "start": 0, "end": 5, "message_id": 3,
            "feature": 1, "question": 1, "answer": 1, "kind": 1, "answer_confidences": 1}
FLOATS = {"data_row": 1.5, "id": 1.5, "confidence": 0.5, "start": 0.0, "end": 5.0,
          "answer_confidences": 0.5}
NUMBER_LISTS = {"answers": [1, 2], "answer_confidences": [0.9, 0.8], "bbox": [0, 0, 10, 10],
                "point": [1, 2]}


def _base(fixture: str) -> pl.DataFrame:
    box = {"data_row": ["a"], "feature": ["cat"]}
    return {
        "box": pl.DataFrame({**box, "bbox": [[0.0, 0, 10, 10]]},
                            schema_overrides={"bbox": pl.Array(pl.Float64, 4)}),
        "point": pl.DataFrame({**box, "point": [[1.0, 2.0]]},
                              schema_overrides={"point": pl.Array(pl.Float64, 2)}),
        "span": pl.DataFrame({**box, "start": [0], "end": [5]}),
        "radio": pl.DataFrame({"data_row": ["a"], "question": ["q"], "answer": ["yes"],
                               "kind": ["radio"]}),
        "checklist": pl.DataFrame({"data_row": ["a"], "question": ["q"], "answers": [["x", "y"]],
                                   "kind": ["checklist"]}),
    }[fixture]


def _series(column: str, dtype) -> pl.Series:
    """One value of ``column`` held as ``dtype``."""
    if dtype == "enum":
        return pl.Series(column, [NAMES[column]], pl.Enum([NAMES[column]]))
    if dtype in (pl.String, pl.Categorical):
        return pl.Series(column, [NAMES[column]], dtype)
    if dtype.is_integer():
        return pl.Series(column, [INTEGERS[column]], dtype)
    if dtype.is_float():
        return pl.Series(column, [FLOATS[column]], dtype)
    if dtype == pl.Boolean:
        return pl.Series(column, [True])
    if dtype == pl.Date:
        return pl.Series(column, [dt.date(2020, 1, 1)])
    if dtype == pl.Binary:
        return pl.Series(column, [NAMES[column].encode()])
    if isinstance(dtype, pl.Struct):
        return pl.Series(column, [{"x": 1}], dtype)
    if dtype.inner == pl.String:  # a list of names; answers keep their two options
        values = ["x", "y"] if column == "answers" else [NAMES[column]]
        return pl.Series(column, [values], dtype)
    values = ([1, 0] if column == "answer_confidences" and dtype.inner.is_integer()
              else NUMBER_LISTS[column])
    return pl.Series(column, [values], pl.List(pl.Float64)).cast(dtype)


def _frames(column: str, dtype) -> tuple[pl.DataFrame, pl.DataFrame]:
    gt = _base(FIXTURE[column])
    pd = gt.with_columns(confidence=pl.lit(0.9))
    if FIXTURE[column] == "checklist":
        pd = pd.with_columns(answer_confidences=pl.lit([0.9, 0.8]))
    if column == "id":
        gt, pd = gt.with_columns(id=pl.lit("g1")), pd.with_columns(id=pl.lit("g1"))
    if column == "kind":
        gt, pd = gt.with_columns(kind=pl.lit("box")), pd.with_columns(kind=pl.lit("box"))
    if column == "message_id":
        gt, pd = gt.with_columns(message_id=pl.lit("m")), pd.with_columns(message_id=pl.lit("m"))
    value = _series(column, dtype)
    put = (lambda f: f.with_columns(value)) if column != "confidence" else (lambda f: f)
    return put(gt), pd.with_columns(value) if column in pd.columns else pd


def _contract() -> list[tuple[str, str, str, object]]:
    """(column, "accepted" | "refused", the README's word, a dtype) of every cell."""
    text = README.read_text()
    section = text.split("### Input dtypes", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert len(rows) >= 10, "the README's dtype table is missing or cut"
    cases = []
    for line in rows:
        first, accepted, refused = (cell.strip() for cell in line.strip("|").split("|"))
        columns = re.findall(r"`([a-z_]+)`", first)
        for verdict, cell in (("accepted", accepted), ("refused", refused)):
            cell = re.sub(r"\s*\(values in [^)]*\)", "", cell)
            words = [w.strip() for w in re.split(r",\s*(?![^()]*\))", cell)]
            for word in words:
                assert word in WORDS, f"the README names {word!r}: add it to WORDS"
                cases += [(c, verdict, word, d) for c in columns for d in WORDS[word]]
    return cases


CASES = _contract()


@pytest.mark.parametrize(("column", "verdict", "word", "dtype"), CASES,
                         ids=[f"{c}-{v}-{d}" for c, v, _, d in CASES])
def test_readme_dtype_table_holds(column, verdict, word, dtype):
    gt, pd = _frames(column, dtype)
    if verdict == "accepted":
        ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.5])
        assert ev.cube["tp"].sum() >= 1, f"{column} as {dtype}: evaluated, but nothing matched"
    else:
        with pytest.raises(SchemaError) as err:
            pm.evaluate(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.5])
        table = "predictions" if column == "confidence" else "ground_truth"
        assert f"{table}.{column}" in str(err.value), str(err.value)


def test_every_column_the_prepare_step_checks_is_in_the_table():
    """The README lists each column the shared dtype rules cover (a new rule needs a row)."""
    from polars_metrics.prepare.guards import COLUMN_DTYPES

    documented = {c for c, *_ in CASES}
    assert set(COLUMN_DTYPES) <= documented, set(COLUMN_DTYPES) - documented


def test_the_readers_kind_enum_evaluates_as_the_same_kinds_as_strings():
    """``read_coco`` / the Labelbox readers give ``kind`` as the engine's Enum, which the
    prepare step takes as it is; the same kinds as Strings take the cast: same tables."""
    from polars.testing import assert_frame_equal

    from polars_metrics.kinds import KIND_DTYPE

    data = Path(__file__).resolve().parent / "data" / "cocoapi"
    gt, pd = pm.read_coco(data / "instances_val2014_100.json",
                          data / "instances_val2014_fakebbox100_results.json")
    assert gt.schema["kind"] == pd.schema["kind"] == KIND_DTYPE
    as_enum = pm.evaluate(gt, pd)
    as_string = pm.evaluate(*(t.with_columns(pl.col("kind").cast(pl.String)) for t in (gt, pd)))
    for table in ("cube", "confusion", "data_rows"):
        assert_frame_equal(getattr(as_enum, table), getattr(as_string, table))
    assert as_enum.cube["tp"].sum() > 0
