"""pm.partial + pm.merge over any partition of the data rows = one evaluation, bit for bit
(issue 10, item 5): counts, confusion, per-data-row table, excluded rows, rejects (with the
whole table's row numbers) and generated ids — boxes and classifications together."""
from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import polars_metrics as pm

BOX = pl.Array(pl.Float64, 4)
GRID = ["confidence_threshold", "iou_threshold"]
ORDER = {"cube": ["feature", *GRID], "overall": ["average", *GRID],
         "confusion": [*GRID, "gt_feature", "pd_feature"], "data_rows": ["data_row", *GRID],
         "excluded": ["data_row"], "rejects": ["table", "row", "column"]}
KW = dict(confidence_thresholds=[0.0, 0.5, 0.9], iou_thresholds=[0.3, 0.7])


def _box_rows(draw, n_rows, side):
    rows = []
    for r in range(n_rows):
        for _ in range(draw(st.integers(0, 3))):
            x, y = draw(st.integers(0, 6)), draw(st.integers(0, 6))
            w = draw(st.sampled_from([2, 3, 4, -1]))  # -1: an invalid box, rejected
            rows.append({"data_row": f"r{r}", "feature": draw(st.sampled_from(["car", "cat"])),
                         "kind": "box", "bbox": [float(x), float(y), float(x + w), float(y + 3)],
                         "confidence": draw(st.sampled_from([0.2, 0.6, 0.95, 1.5])) if side == "pd" else None})
    return rows


def _radio_rows(draw, n_rows, side):
    rows = []
    for r in range(n_rows):
        if draw(st.booleans()):
            rows.append({"data_row": f"r{r}", "kind": "radio", "question": "weather",
                         "answer": draw(st.sampled_from(["sun", "rain"])),
                         "confidence": draw(st.sampled_from([0.3, 0.8])) if side == "pd" else None})
    return rows


@st.composite
def datasets(draw, classifications: bool):
    n_rows = draw(st.integers(2, 6))
    tables = []
    for side in ("gt", "pd"):
        rows = _box_rows(draw, n_rows, side)
        if classifications:
            rows += _radio_rows(draw, n_rows, side)
        rows.sort(key=lambda d: d["data_row"])
        frame = pl.DataFrame(rows, schema={"data_row": pl.String, "feature": pl.String, "kind": pl.String,
                                           "bbox": BOX, "question": pl.String, "answer": pl.String,
                                           "confidence": pl.Float64})
        if side == "gt":
            frame = frame.drop("confidence")
        tables.append(frame.with_row_index("_pos"))  # whole-table positions travel with the rows
    parts = draw(st.lists(st.integers(0, 2), min_size=n_rows, max_size=n_rows))
    return tables[0], tables[1], {f"r{r}": p for r, p in enumerate(parts)}


def _parts(gt, pd, assign):
    out = []
    for p in sorted(set(assign.values())):
        keys = [r for r, q in assign.items() if q == p]
        out.append(pm.partial(gt.filter(pl.col("data_row").is_in(keys)),
                              pd.filter(pl.col("data_row").is_in(keys)), on_invalid="drop", **KW))
    return out


def _same(merged, whole):
    for name, order in ORDER.items():
        a, b = getattr(merged, name), getattr(whole, name)
        assert_frame_equal(a.sort(order, nulls_last=False), b.sort(order, nulls_last=False),
                           check_exact=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets(classifications=False))
def test_any_partition_of_boxes_merges_to_the_whole_including_rejects(data):
    gt, pd, assign = data
    with _quiet():
        whole = pm.evaluate(gt, pd, on_invalid="drop", **KW)
        merged = pm.finalize(pm.merge(_parts(gt, pd, assign)))
    _same(merged, whole)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets(classifications=True))
def test_any_partition_with_classifications_merges_to_the_whole(data):
    gt, pd, assign = data
    with _quiet():
        whole = pm.evaluate(gt, pd, on_invalid="drop", **KW)
        merged = pm.finalize(pm.merge(_parts(gt, pd, assign)))
    _same(merged, whole)


def _question_rows(draw, n_rows, side):
    """Radio and checklist answers whose names clash across questions and with the box
    feature "car" (so one evaluation names them "question/answer"), on some data rows."""
    rows = []
    for r in range(n_rows):
        for question, options, kind in (("weather", ["sun", "rain", "car"], "radio"),
                                        ("mood", ["yes", "no"], "radio"),
                                        ("tags", ["yes", "sun", "fog"], "checklist")):
            if not draw(st.booleans()):
                continue
            row = {"data_row": f"r{r}", "kind": kind, "question": question,
                   "confidence": draw(st.sampled_from([0.3, 0.8])) if side == "pd" else None}
            if kind == "radio":
                row["answer"] = draw(st.sampled_from(options))
            else:
                row["answers"] = draw(st.lists(st.sampled_from(options), max_size=3, unique=True))
            rows.append(row)
    return rows


@st.composite
def question_datasets(draw):
    n_rows = draw(st.integers(2, 7))
    schema = {"data_row": pl.String, "site": pl.String, "feature": pl.String, "kind": pl.String,
              "bbox": BOX, "question": pl.String, "answer": pl.String,
              "answers": pl.List(pl.String), "confidence": pl.Float64}
    tables = []
    for side in ("gt", "pd"):
        rows = _box_rows(draw, n_rows, side) + _question_rows(draw, n_rows, side)
        for row in rows:
            row["site"] = "north" if int(row["data_row"][1:]) % 2 else "south"
        rows.sort(key=lambda d: d["data_row"])
        frame = pl.DataFrame(rows, schema=schema)
        tables.append((frame.drop("confidence") if side == "gt" else frame).with_row_index("_pos"))
    parts = draw(st.lists(st.integers(0, 3), min_size=n_rows, max_size=n_rows))
    return tables[0], tables[1], {f"r{r}": p for r, p in enumerate(parts)}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(question_datasets())
def test_any_partition_with_clashing_answers_checklists_and_slices_merges_to_the_whole(data):
    """A part that sees one question using "yes" names it bare; the whole tables name it
    "mood/yes": the merge renames, and true negatives count every option of the whole tables."""
    gt, pd, assign = data
    kw = dict(KW, by="site", on_invalid="drop")
    with _quiet():
        whole = pm.evaluate(gt, pd, **kw)
        parts = []
        for p in sorted(set(assign.values())):
            keys = [r for r, q in assign.items() if q == p]
            parts.append(pm.partial(gt.filter(pl.col("data_row").is_in(keys)),
                                    pd.filter(pl.col("data_row").is_in(keys)), **kw))
        merged = pm.finalize(pm.merge(parts))
        # merging is associative: merged pairs merged again give the same frames
        nested = pm.finalize(pm.merge([pm.merge(parts[:1]), pm.merge(parts[1:])])) if len(parts) > 1 else merged
    for ev in (merged, nested):
        for name, order in ORDER.items():
            order = ["site", *order] if name in ("cube", "confusion") else order
            assert_frame_equal(getattr(ev, name).sort(order, nulls_last=False),
                               getattr(whole, name).sort(order, nulls_last=False), check_exact=True)


def test_true_negatives_of_an_option_one_part_never_saw():
    """Hand count: 'weather' answered on rows a (sun, both sides) and b (rain, both sides).
    Whole: sun is a true negative on b, rain on a. Part {a} never sees 'rain', so alone it
    counts rain's true negatives nowhere and row a's options as one; the merge restores both."""
    gt = pl.DataFrame({"data_row": ["a", "b"], "kind": ["radio"] * 2, "question": ["weather"] * 2,
                       "answer": ["sun", "rain"]})
    pd = gt.with_columns(confidence=pl.lit(0.9))
    kw = dict(confidence_thresholds=[0.5], iou_thresholds=[0.5])
    parts = [pm.partial(gt.filter(data_row=k), pd.filter(data_row=k), **kw) for k in "ab"]
    assert pm.finalize(parts[0]).cube.select("feature", "tn").rows() == [("sun", 0)]
    merged = pm.finalize(pm.merge(parts))
    assert merged.cube.sort("feature").select("feature", "tn").rows() == [("rain", 1), ("sun", 1)]
    # per data row: each row has 2 options, one chosen on both sides: 1 true negative
    assert merged.data_rows.sort("data_row").select("data_row", "tn").rows() == [("a", 1), ("b", 1)]


def test_rejects_and_generated_ids_use_whole_table_positions():
    gt = pl.DataFrame({"data_row": ["a", "b", "b"], "feature": ["c"] * 3,
                       "bbox": [[0.0, 0, 1, 1], [0.0, 0, 1, 1], [5.0, 0, 1, 1]]},
                      schema_overrides={"bbox": BOX}).with_row_index("_pos")
    pd = gt.drop("_pos").head(2).with_columns(pl.lit(0.9).alias("confidence")).with_row_index("_pos")
    whole = pm.evaluate(gt, pd, on_invalid="drop", **KW)
    part_b = pm.finalize(pm.partial(gt.filter(data_row="b"), pd.filter(data_row="b"), on_invalid="drop", **KW))
    assert whole.rejects.select("table", "row", "data_row").rows() == [("ground_truth", 2, "b")]
    assert part_b.rejects.select("table", "row", "data_row").rows() == [("ground_truth", 2, "b")]
    with pytest.raises(pm.SchemaError, match="increase strictly"):
        pm.evaluate(gt.reverse(), pd)


class _quiet:
    def __enter__(self):
        import warnings
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", pm.PolarsMetricsWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)
