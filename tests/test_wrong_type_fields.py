"""Every field of every valid record (and every record) of each reader's format replaced by a
value of another type or size, and every column of valid input frames by a column of another
dtype — a number where a string or a list belongs, a list where an
object belongs, ``1e400``, ``True``, ``null`` — then read (``on_invalid="raise"`` and "drop")
and evaluated. Each must end in the library's own error naming the line / entry and the
field, or a reject, or a result: never a raw Python / numpy / polars error. The loops run in a
fresh interpreter (this file run as a script, :func:`reader_samples.run_isolated`).
"""
from __future__ import annotations

import json
import sys
import tempfile
import warnings
from pathlib import Path

import pytest
from reader_samples import (
    COCO_GT,
    COCO_RESULTS,
    export_records,
    model_run_records,
    ndjson_lines,
    outcome,
    run_isolated,
)

# another type or size for any field (numbers beyond int64 have their own tests in
# test_hostile_inputs.py)
WRONG_VALUES = [5, 10**400, "x", True, None, [1], {"a": 1}]


def _paths(node, prefix=()):
    """Every position in a JSON document, itself included."""
    yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield from _paths(value, (*prefix, key))


def _replaced(doc, path, value):
    if not path:
        return value
    doc = json.loads(json.dumps(doc))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def swap_fields(reader: str) -> list[dict]:
    """Each field of each record replaced by each of ``WRONG_VALUES``: read (raise, then drop)
    and evaluate what drop keeps."""
    import polars as pl

    import polars_metrics as pm

    records = {"ndjson": ndjson_lines, "export": export_records, "run": model_run_records}[reader]()

    def read(lines, on_invalid):
        if reader == "ndjson":
            out = pm.read_labelbox_ndjson(lines, role="ground_truth", allow_rle_masks=True,
                                          global_key_map={"g3": "d3"}, on_invalid=on_invalid)
            return (out[0] if isinstance(out, tuple) else out), None
        return tuple(pm.read_labelbox_export(lines, on_invalid=on_invalid))

    findings = []
    for k, record in enumerate(records):
        for path in _paths(record):
            if reader == "run" and "labels" in path:
                continue  # a label reads as in a project export (the "export" case)
            for value in WRONG_VALUES:
                lines = [json.dumps(r) for r in records]
                lines[k] = json.dumps(_replaced(record, path, value))
                for on_invalid in ("raise", "drop"):
                    def run(lines=lines, on_invalid=on_invalid):
                        gt, pd = read(lines, on_invalid)
                        if on_invalid == "drop":
                            if pd is None or pd.height == 0:
                                pd = gt.with_columns(confidence=pl.lit(0.5))
                            ev = pm.evaluate(gt, pd, on_invalid="drop")
                            return ev.cube.height, ev.data_rows.height

                    got = outcome(run)
                    if got[0] == "raw":
                        findings.append({"record": k, "path": list(map(str, path)),
                                         "value": repr(value)[:30], "on_invalid": on_invalid,
                                         "error": got[1]})
    return findings


def swap_coco_fields(which: str) -> list[dict]:
    """Each field of the gt file (or the results) replaced by each of ``WRONG_VALUES``: read
    under ``on_invalid="drop"`` and evaluated, from a file as ``bbox`` and from parsed JSON as
    ``segm``."""
    import polars_metrics as pm

    tmp = Path(tempfile.mkdtemp())
    doc = COCO_GT if which == "gt" else COCO_RESULTS
    findings = []
    for path in _paths(doc):
        if not path:
            continue  # a whole document of another type: the readers' own tests
        for value in WRONG_VALUES:
            gt = _replaced(doc, path, value) if which == "gt" else COCO_GT
            res = _replaced(doc, path, value) if which != "gt" else COCO_RESULTS
            (tmp / "gt.json").write_text(json.dumps(gt))
            (tmp / "res.json").write_text(json.dumps(res))
            # the file through the scanners for one IoU type, the parsed JSON for the other
            for iou_type, source in (("bbox", (tmp / "gt.json", tmp / "res.json")), ("segm", (gt, res))):
                def run(source=source, iou_type=iou_type):
                    g, p, _ = pm.read_coco(*source, iou_type=iou_type, on_invalid="drop")
                    ev = pm.evaluate(g, p, profile=pm.get_profile("coco", iou_type=iou_type))
                    return ev.coco.stats.tolist(), ev.cube.height, ev.data_rows.height

                got = outcome(run)
                if got[0] == "raw":
                    findings.append({"path": list(map(str, path)), "value": repr(value)[:30],
                                     "iou_type": iou_type, "error": got[1]})
    return findings


def _other_dtypes(column):
    """Columns of the same name and length with another dtype, or nulls of the same one."""
    import datetime

    import polars as pl

    n, name = column.len(), column.name
    yield "Int64", pl.Series(name, list(range(n)), dtype=pl.Int64)
    yield "Float64", pl.Series(name, [1.5] * n, dtype=pl.Float64)
    yield "String", pl.Series(name, ["x"] * n, dtype=pl.String)
    yield "Boolean", pl.Series(name, [True] * n, dtype=pl.Boolean)
    yield "Null", pl.Series(name, [None] * n, dtype=pl.Null)
    yield "Categorical", pl.Series(name, ["x"] * n, dtype=pl.Categorical)
    yield "Date", pl.Series(name, [datetime.date(2020, 1, 1)] * n, dtype=pl.Date)
    yield "List(Float64)", pl.Series(name, [[1.0, 2.0]] * n, dtype=pl.List(pl.Float64))
    yield "List(List)", pl.Series(name, [[[1.0]]] * n, dtype=pl.List(pl.List(pl.Float64)))
    yield "Array(Float64, 4)", pl.Series(name, [[0.0, 0, 1, 1]] * n, dtype=pl.Array(pl.Float64, 4))
    yield "Array(Int64, 2)", pl.Series(name, [[1, 2]] * n, dtype=pl.Array(pl.Int64, 2))
    yield "Struct", pl.Series(name, [{"a": 1}] * n)
    yield "Binary", pl.Series(name, [b"x"] * n, dtype=pl.Binary)
    yield "nulls", pl.Series(name, [None] * n, dtype=column.dtype)


def _swap_columns(gt, pd, evaluate, **where) -> list[dict]:
    """Every column of ``gt`` and ``pd`` replaced by each of :func:`_other_dtypes`, through
    ``evaluate(gt, pd, on_invalid)`` with "raise" and "drop"; the raw errors."""
    findings = []
    for side, frame in (("ground_truth", gt), ("predictions", pd)):
        for column in frame.columns:
            for label, other in _other_dtypes(frame[column]):
                g = frame.with_columns(other) if side == "ground_truth" else gt
                p = frame.with_columns(other) if side == "predictions" else pd
                for on_invalid in ("raise", "drop"):
                    got = outcome(lambda g=g, p=p, on_invalid=on_invalid: evaluate(g, p, on_invalid))
                    if got[0] == "raw":
                        findings.append({**where, "table": side, "column": column, "dtype": label,
                                         "on_invalid": on_invalid, "error": got[1]})
    return findings


def swap_frame_dtypes() -> list[dict]:
    """The columns of a ground truth holding every kind (read from :func:`ndjson_lines`) and
    of the predictions made from it, through ``pm.evaluate``."""
    import polars as pl

    import polars_metrics as pm

    def evaluate(g, p, on_invalid):
        ev = pm.evaluate(g, p, on_invalid=on_invalid)
        return ev.cube.height, ev.confusion.height, ev.data_rows.height

    gt = pm.read_labelbox_ndjson([json.dumps(line) for line in ndjson_lines()], role="ground_truth",
                                 allow_rle_masks=True, global_key_map={"g3": "d3"})
    return _swap_columns(gt, gt.with_columns(confidence=pl.lit(0.7)), evaluate)


def swap_coco_frame_dtypes() -> list[dict]:
    """The columns of ``read_coco``'s frames (bbox and segm) through ``profile="coco"``."""
    import polars_metrics as pm

    findings = []
    for iou_type in ("bbox", "segm"):
        def evaluate(g, p, on_invalid, iou_type=iou_type):
            ev = pm.evaluate(g, p, profile="coco", iou_type=iou_type, on_invalid=on_invalid)
            return ev.coco.stats.tolist(), ev.cube.height, ev.data_rows.height

        gt, pd = pm.read_coco(COCO_GT, COCO_RESULTS, iou_type=iou_type)
        findings += _swap_columns(gt, pd, evaluate, iou_type=iou_type)
    return findings


def test_every_coco_input_column_of_another_dtype_is_a_library_error():
    """Before: the COCO engine read ``data_row``, ``id``, ``category_id``, ``area``,
    ``is_crowd``, ``confidence``, ``bbox_xywh``, ``height`` / ``width`` of any dtype and failed
    inside polars or numpy ("cannot cast List type", "invalid literal for int()", "shape
    mismatch", a kernel's "expected a C-contiguous 1-D float64 array"). Now each is a
    SchemaError naming table, column and the dtype the engine reads (``coco.checks``)."""
    findings = run_isolated(__file__, "swap-coco-frame", "-")
    assert not findings, json.dumps(findings[:3], indent=1)


def test_every_input_column_of_another_dtype_is_a_library_error():
    """Before: a kind / id / message-id column of lists, a categorical ground-truth confidence,
    answer scores that are not a list of numbers, answers as lists of lists, a 2-wide box
    array, a null kind on an annotation (TypeError sorting kinds), a null answer-score list on
    a checklist (polars' "exploded columns must have matching element counts") all ended in raw
    polars / Python errors. Now each is a SchemaError naming table, column and the expected
    dtype, or a row error / reject."""
    findings = run_isolated(__file__, "swap-frame", "-")
    assert not findings, json.dumps(findings[:3], indent=1)


@pytest.mark.parametrize("reader", ["ndjson", "export", "run"])
def test_every_labelbox_field_of_a_wrong_type_is_a_library_error(reader):
    """Before: a list where an object belongs (``projects``, a model run, a prediction label),
    a number where a string or a list belongs (``global_key``, ``feature_id``, ``classifications``,
    ``objects``), or an infinite image size ended in raw ``AttributeError`` / ``TypeError`` /
    ``OverflowError`` or in polars' "unexpected value while building Series"; now each is the
    reader's error naming the line and the field, or a reject."""
    findings = run_isolated(__file__, "swap", reader)
    assert not findings, json.dumps(findings[:3], indent=1)


@pytest.mark.parametrize("which", ["gt", "results"])
def test_every_coco_field_of_a_wrong_type_is_a_library_error(which):
    """Before: an empty ``categories`` list failed the COCO tables with numpy's "cannot reshape
    array of size 0", numbers beyond int64 / float64 with a raw OverflowError."""
    findings = run_isolated(__file__, "swap-coco", which)
    assert not findings, json.dumps(findings[:3], indent=1)


if __name__ == "__main__":  # the loop of one test, in its own interpreter
    warnings.simplefilter("ignore")
    found = {"swap": lambda: swap_fields(sys.argv[2]), "swap-frame": swap_frame_dtypes,
             "swap-coco-frame": swap_coco_frame_dtypes,
             "swap-coco": lambda: swap_coco_fields(sys.argv[2])}[sys.argv[1]]()
    print(json.dumps(found))
