"""Labelbox JSON records → column buffers → Polars frames (shared by the import and export readers).

A :class:`RowBuffer` collects one annotation row at a time into plain Python lists and flat
coordinate buffers; :meth:`RowBuffer.frame` builds the columns in bulk (numpy / Arrow offsets,
never one frame per line). Parse helpers validate a field and raise :class:`RecordError` naming
the field; the readers add the line number.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from polars_metrics import schema as s
from polars_metrics._arrays import offsets_from_lengths
from polars_metrics.io.frames import (
    ANSWER_CONFIDENCES,
    CUSTOM_PREFIX,
    DATA_ROW_KEY_TYPE,
    LABELBOX,
    NAME,
    SCHEMA_ID,
    SOURCE_LINE,
    SPAN_END,
    SUBCLASSES,
)
from polars_metrics.kinds._rle import mask_series_from_values

# the columns of every frame the readers return: polars_metrics.io.frames.LABELBOX
CORE_SCHEMA = LABELBOX.required
OPTIONAL_SCHEMA = LABELBOX.optional


# nested columns are converted from Python objects by Arrow (C++), much faster than per element
_NESTED_ARROW = {
    SUBCLASSES: pa.large_list(pa.struct([
        ("question", pa.large_string()), ("kind", pa.large_string()), ("answer", pa.large_string()),
        ("answers", pa.large_list(pa.large_string())), ("confidence", pa.float64()),
        ("nested", pa.large_string())])),
    s.ANSWERS: pa.large_list(pa.large_string()),
    ANSWER_CONFIDENCES: pa.large_list(pa.float64()),
}


class RecordError(ValueError):
    """A field of one record is malformed; the reader adds the line number."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"field '{field}': {problem}")
        self.field = field
        self.problem = problem


# --- scalar helpers ------------------------------------------------------------------------------
INT64_MAX = 2**63 - 1


def number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(field, f"expected a number, got {value!r}")
    try:
        v = float(value)
    except OverflowError:  # an integer beyond float range
        v = math.inf
    if not math.isfinite(v):
        raise RecordError(field, f"expected a finite number, got {value!r}")
    return v


def integer(value: Any, field: str) -> int:
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or (isinstance(value, float) and not (math.isfinite(value) and value.is_integer()))):
        raise RecordError(field, f"expected an integer, got {value!r}")
    if not -INT64_MAX <= int(value) <= INT64_MAX:
        raise RecordError(field, f"integer out of the 64-bit range, got {value!r}")
    return int(value)


def confidence(value: Any, field: str) -> float | None:
    if value is None:
        return None
    v = number(value, field)
    if not 0.0 <= v <= 1.0:
        raise RecordError(field, f"confidence must be in [0, 1] (null means 1.0), got {value!r}")
    return v


def text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise RecordError(field, f"expected a string, got {value!r}")
    return value


def listed(value: Any, field: str) -> list:
    """A list field that may be absent or null (then empty); any other value is an error naming
    the field, not an iteration over it (a string's characters, a dict's keys) or a raw error.

    >>> listed(None, "classifications"), listed([1], "classifications")
    ([], [1])
    >>> try:
    ...     listed(5, "classifications")
    ... except RecordError as e:
    ...     print(e.field, "-", e.problem)
    classifications - expected a list, got 5
    """
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(field, f"expected a list, got {value!r}")
    return value


def mapping(value: Any, field: str) -> Mapping:
    """An object field; any other value is an error naming the field."""
    if not isinstance(value, Mapping):
        raise RecordError(field, f"expected an object, got {value!r}")
    return value


def optional_text(value: Any, field: str) -> str | None:
    """A string field that may be absent (None); anything else than a string is an error
    naming the field (it would otherwise reach a String column as a raw polars error)."""
    return None if value is None else text(value, field)


def point_xy(value: Any, field: str) -> tuple[float, float]:
    if not isinstance(value, Mapping) or "x" not in value or "y" not in value:
        raise RecordError(field, f"expected {{\"x\": number, \"y\": number}}, got {value!r}")
    return number(value["x"], f"{field}.x"), number(value["y"], f"{field}.y")


def points(value: Any, field: str, minimum: int) -> list[tuple[float, float]]:
    if not isinstance(value, list):
        raise RecordError(field, f"expected a list of {{\"x\", \"y\"}} points, got {value!r}")
    out = [point_xy(p, f"{field}[{i}]") for i, p in enumerate(value)]
    if len(out) < minimum:
        raise RecordError(field, f"expected at least {minimum} points, got {len(out)}")
    return out


def box(value: Any, field: str) -> tuple[float, float, float, float]:
    """{top, left, height, width} → (x0, y0, x1, y1); negative sizes are errors."""
    if not isinstance(value, Mapping):
        raise RecordError(field, f"expected {{top, left, height, width}}, got {value!r}")
    missing = [k for k in ("top", "left", "height", "width") if k not in value]
    if missing:
        raise RecordError(field, f"missing {missing} (a box is {{top, left, height, width}})")
    top, left = number(value["top"], f"{field}.top"), number(value["left"], f"{field}.left")
    h, w = number(value["height"], f"{field}.height"), number(value["width"], f"{field}.width")
    if h < 0 or w < 0:
        raise RecordError(field, f"negative height or width ({h}, {w}); the platform writes "
                          "top = min(y), height = |dy|")
    return left, top, left + w, top + h


def custom_metrics(value: Any, field: str) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, list):
        raise RecordError(field, f"expected a list of {{\"name\", \"value\"}}, got {value!r}")
    out = {}
    for i, m in enumerate(value):
        if not isinstance(m, Mapping) or "name" not in m or "value" not in m:
            raise RecordError(f"{field}[{i}]", f"expected {{\"name\", \"value\"}}, got {m!r}")
        out[text(m["name"], f"{field}[{i}].name")] = number(m["value"], f"{field}[{i}].value")
    return out


# A frame range expands to one row per frame: bound what one line (or one data row of an
# export) may expand to, so a typo such as end = 10**9 is an error, not 10**9 rows.
MAX_FRAMES = 100_000


def frame_ranges(value: Any, field: str, limit: int = MAX_FRAMES) -> list[int]:
    """The frames of ``[{"start", "end"}, ...]`` (both ends inclusive), sorted, each once;
    at most ``limit`` frames (:data:`MAX_FRAMES`).

    >>> frame_ranges([{"start": 2, "end": 4}, {"start": 8, "end": 8}], "frames")
    [2, 3, 4, 8]
    """
    if not isinstance(value, list) or not value:
        raise RecordError(field, f"expected a non-empty list of {{\"start\", \"end\"}}, got {value!r}")
    ranges = []
    for i, fr in enumerate(value):
        if not isinstance(fr, Mapping) or "start" not in fr or "end" not in fr:
            raise RecordError(f"{field}[{i}]", f"expected {{\"start\", \"end\"}}, got {fr!r}")
        lo, hi = integer(fr["start"], f"{field}[{i}].start"), integer(fr["end"], f"{field}[{i}].end")
        if lo < 0 or hi < lo:
            raise RecordError(f"{field}[{i}]", f"need 0 <= start <= end, got start={lo}, end={hi}")
        ranges.append((lo, hi))
    total = sum(hi - lo + 1 for lo, hi in ranges)
    if total > limit:
        raise RecordError(field, f"the frame ranges cover {total:,} frames, more than the "
                          f"{limit:,} one annotation may expand to (one row per frame); check "
                          "start/end, or split the video")
    return sorted({f for lo, hi in ranges for f in range(lo, hi + 1)})


def ring_without_closure(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Drop a repeated closing vertex (the serializer and exports close rings)."""
    if len(pts) > 1 and pts[0] == pts[-1]:
        return pts[:-1]
    return pts


# --- nested classifications -----------------------------------------------------------------------
def _answer_name(ans: Mapping, field: str, schema_key: str) -> str:
    name = ans.get("name")
    if name is None:
        name = ans.get(schema_key)
    if name is None:
        raise RecordError(field, f"an answer needs 'name' or '{schema_key}', got {ans!r}")
    return text(name, field)


def subclass_import(elem: Any, field: str) -> dict:
    """One import-format nested classification → the ``subclasses`` struct value."""
    if not isinstance(elem, Mapping):
        raise RecordError(field, f"expected a classification object, got {elem!r}")
    question = elem.get("name", elem.get("schemaId"))
    if question is None:
        raise RecordError(field, "a nested classification needs 'name' or 'schemaId'")
    question = text(question, f"{field}.name")
    line_conf = confidence(elem.get("confidence"), f"{field}.confidence")
    nested: list = []
    if "answer" in elem:
        ans = elem["answer"]
        if isinstance(ans, str):
            kind, answer, answers, conf = "text", ans, None, line_conf
            nested.extend(listed(elem.get("classifications"), f"{field}.classifications"))
        elif isinstance(ans, Mapping):  # radio (a single-object sub-checklist reads as radio)
            answer = _answer_name(ans, f"{field}.answer", "schemaId")
            kind, answers = "radio", None
            conf = confidence(ans.get("confidence"), f"{field}.answer.confidence")
            conf = line_conf if conf is None else conf
            nested.extend(listed(ans.get("classifications"), f"{field}.answer.classifications"))
        elif isinstance(ans, list):
            kind, answer = "checklist", None
            answers = [_answer_name(a, f"{field}.answer[{i}]", "schemaId") if isinstance(a, Mapping)
                       else _bad(f"{field}.answer[{i}]", a) for i, a in enumerate(ans)]
            conf = line_conf
            for i, a in enumerate(ans):
                nested.extend(listed(a.get("classifications"), f"{field}.answer[{i}].classifications"))
        else:
            raise RecordError(f"{field}.answer", f"expected an object, a list or a string, got {ans!r}")
    elif "answers" in elem and isinstance(elem["answers"], list):
        kind, answer, conf = "checklist", None, line_conf
        answers = [_answer_name(a, f"{field}.answers[{i}]", "schemaId") if isinstance(a, Mapping)
                   else _bad(f"{field}.answers[{i}]", a) for i, a in enumerate(elem["answers"])]
    else:
        raise RecordError(field, f"a nested classification needs 'answer', got keys {sorted(elem)}")
    return {"question": question, "kind": kind, "answer": answer, "answers": answers,
            "confidence": conf, "nested": json.dumps(nested) if nested else None}


def _bad(field: str, value: Any):
    raise RecordError(field, f"expected an answer object {{\"name\"}}, got {value!r}")


EXPORT_ANSWER_KEYS = ("radio_answer", "checklist_answers", "text_answer",
                      "conversational_radio_answer", "conversational_checklist_answers",
                      "conversational_text_answer")


def export_classification(elem: Any, field: str) -> dict:
    """One export-format classification (global or nested) → question / kind / answer(s)."""
    if not isinstance(elem, Mapping):
        raise RecordError(field, f"expected a classification object, got {elem!r}")
    question = elem.get("name", elem.get("feature_schema_id"))
    if question is None:
        raise RecordError(field, "a classification needs 'name' or 'feature_schema_id'")
    question = text(question, f"{field}.name")
    key = next((k for k in EXPORT_ANSWER_KEYS if k in elem), None)
    nested: list = []
    conf = confidence(elem.get("confidence"), f"{field}.confidence")
    option_conf: list | None = None
    if key is None:
        raise RecordError(field, f"no answer key ({', '.join(EXPORT_ANSWER_KEYS[:3])}) among "
                          f"{sorted(elem)}")
    ans = elem[key]
    if key.endswith("radio_answer"):
        if not isinstance(ans, Mapping):
            raise RecordError(f"{field}.{key}", f"expected an object, got {ans!r}")
        kind, answer, answers = "radio", _answer_name(ans, f"{field}.{key}", "feature_schema_id"), None
        c = confidence(ans.get("confidence"), f"{field}.{key}.confidence")
        conf = conf if c is None else c
        nested.extend(listed(ans.get("classifications"), f"{field}.{key}.classifications"))
    elif key.endswith("checklist_answers"):
        if not isinstance(ans, list):
            raise RecordError(f"{field}.{key}", f"expected a list, got {ans!r}")
        kind, answer = "checklist", None
        answers = [_answer_name(a, f"{field}.{key}[{i}]", "feature_schema_id") if isinstance(a, Mapping)
                   else _bad(f"{field}.{key}[{i}]", a) for i, a in enumerate(ans)]
        option_conf = [confidence(a.get("confidence"), f"{field}.{key}[{i}].confidence")
                       for i, a in enumerate(ans)]
        for i, a in enumerate(ans):
            nested.extend(listed(a.get("classifications"), f"{field}.{key}[{i}].classifications"))
    else:
        content = ans.get("content") if isinstance(ans, Mapping) else ans
        kind, answer, answers = "text", text(content, f"{field}.{key}.content"), None
    return {"question": question, "kind": kind, "answer": answer, "answers": answers,
            "confidence": conf, "option_confidences": option_conf, "nested": nested,
            "message_id": optional_text(elem.get("message_id"), f"{field}.message_id"),
            "feature_id": optional_text(elem.get("feature_id"), f"{field}.feature_id"),
            "schema_id": optional_text(elem.get("feature_schema_id"), f"{field}.feature_schema_id")}


def subclass_export(elem: Any, field: str) -> dict:
    c = export_classification(elem, field)
    conf = c["confidence"]
    if conf is None and c["option_confidences"]:
        known = [x for x in c["option_confidences"] if x is not None]
        conf = max(known) if known else None
    return {"question": c["question"], "kind": c["kind"], "answer": c["answer"],
            "answers": c["answers"], "confidence": conf,
            "nested": json.dumps(c["nested"]) if c["nested"] else None}


# --- the row buffer ------------------------------------------------------------------------------
class RowBuffer:
    """Accumulate annotation rows; build a frame with the readers' schema in bulk."""

    def __init__(self) -> None:
        self.cols: dict[str, list] = {c: [] for c in CORE_SCHEMA if c not in _GEOMETRY_BUFFERS}
        self.optional: dict[str, dict[int, Any]] = {}
        self.custom: dict[str, dict[int, float]] = {}
        self.n = 0
        # flat geometry buffers
        self.bbox = []            # per row: 4 floats or None
        self.point = []           # per row: 2 floats or None
        self.poly_xy: list[float] = []
        self.poly_ring_len: list[int] = []
        self.poly_rings: list[int] = []   # rings per row; -1 = null
        self.line_xy: list[float] = []
        self.line_len: list[int] = []     # points per row; -1 = null
        self.masks: list = []             # per row: dict or None

    def add(self, *, data_row, key_type, ident, name=None, schema_id=None, kind, conf=None,
            source_line, bbox=None, polygon=None, point=None, line=None, mask=None, start=None,
            end=None, message_id=None, span_end=None, question=None, answer=None, answers=None,
            answer_confidences=None, subclasses=None, custom=None, **optional) -> None:
        c = self.cols
        c[s.DATA_ROW].append(data_row)
        c[DATA_ROW_KEY_TYPE].append(key_type)
        c[s.ID].append(ident)
        c[NAME].append(name)
        c[SCHEMA_ID].append(schema_id)
        feature = None if kind in ("radio", "checklist", "text") else (name if name is not None else schema_id)
        c[s.FEATURE].append(feature)
        c[s.KIND].append(kind)
        c[s.CONFIDENCE].append(conf)
        c[s.START].append(start)
        c[s.END].append(end)
        c[s.MESSAGE_ID].append(message_id)
        c[SPAN_END].append(span_end)
        c[s.QUESTION].append(question)
        c[s.ANSWER].append(answer)
        c[s.ANSWERS].append(answers)
        c[ANSWER_CONFIDENCES].append(answer_confidences)
        c[SUBCLASSES].append(subclasses)
        c[SOURCE_LINE].append(source_line)
        self.bbox.append(bbox)
        self.point.append(point)
        if polygon is None:
            self.poly_rings.append(-1)
        else:
            self.poly_rings.append(len(polygon))
            for ring in polygon:
                self.poly_ring_len.append(len(ring))
                for x, y in ring:
                    self.poly_xy.append(x)
                    self.poly_xy.append(y)
        if line is None:
            self.line_len.append(-1)
        else:
            self.line_len.append(len(line))
            for x, y in line:
                self.line_xy.append(x)
                self.line_xy.append(y)
        self.masks.append(mask)
        for k, v in optional.items():
            if v is not None:
                self.optional.setdefault(k, {})[self.n] = v
        if custom:
            for k, v in custom.items():
                self.custom.setdefault(k, {})[self.n] = v
        self.n += 1

    def frame(self) -> pl.DataFrame:
        n = self.n
        data: dict[str, pl.Series] = {}
        for name, dtype in CORE_SCHEMA.items():
            if name in _GEOMETRY_BUFFERS:
                data[name] = _GEOMETRY_BUFFERS[name](self, n).alias(name)
            elif name in _NESTED_ARROW:
                arr = pa.array(self.cols[name], type=_NESTED_ARROW[name])
                data[name] = pl.Series(name, pl.from_arrow(arr)).cast(dtype)
            else:
                data[name] = pl.Series(name, self.cols[name], dtype=dtype)
        for name, values in self.optional.items():
            dtype = OPTIONAL_SCHEMA.get(name, pl.String)
            col = [None] * n
            for i, v in values.items():
                col[i] = v
            data[name] = pl.Series(name, col, dtype=dtype)
        for name in sorted(self.custom):
            col = np.full(n, np.nan)
            for i, v in self.custom[name].items():
                col[i] = v
            data[CUSTOM_PREFIX + name] = pl.Series(CUSTOM_PREFIX + name, col, nan_to_null=True)
        return pl.DataFrame(data)


def _bbox_series(buf: RowBuffer, n: int) -> pl.Series:
    arr = np.full((n, 4), np.nan)
    null = np.ones(n, bool)
    idx = [i for i, b in enumerate(buf.bbox) if b is not None]
    if idx:
        arr[idx] = np.asarray([buf.bbox[i] for i in idx], dtype=np.float64)
        null[idx] = False
    return _fixed_array(arr, null, 4)


def _point_series(buf: RowBuffer, n: int) -> pl.Series:
    arr = np.full((n, 2), np.nan)
    null = np.ones(n, bool)
    idx = [i for i, p in enumerate(buf.point) if p is not None]
    if idx:
        arr[idx] = np.asarray([buf.point[i] for i in idx], dtype=np.float64)
        null[idx] = False
    return _fixed_array(arr, null, 2)


def _fixed_array(arr: np.ndarray, null: np.ndarray, width: int) -> pl.Series:
    values = pa.array(arr.ravel(), pa.float64())
    fsl = pa.FixedSizeListArray.from_arrays(values, width)
    if null.any():
        fsl = pa.FixedSizeListArray.from_arrays(values, width, mask=pa.array(null))
    return pl.Series(pl.from_arrow(fsl)).cast(pl.Array(pl.Float64, width))


def _points_array(xy: list[float]) -> pa.Array:
    flat = pa.array(np.asarray(xy, dtype=np.float64), pa.float64())
    return pa.FixedSizeListArray.from_arrays(flat, 2)


def _polygon_series(buf: RowBuffer, n: int) -> pl.Series:
    rings = np.asarray(buf.poly_rings, dtype=np.int64).reshape(-1)
    null = rings < 0
    ring_off = offsets_from_lengths(np.where(null, 0, rings))
    pt_off = offsets_from_lengths(buf.poly_ring_len)
    inner = pa.LargeListArray.from_arrays(pa.array(pt_off), _points_array(buf.poly_xy))
    outer = pa.LargeListArray.from_arrays(pa.array(ring_off), inner,
                                          mask=pa.array(null) if null.any() else None)
    return pl.Series(pl.from_arrow(outer)).cast(s.POLYGON_DTYPE)


def _line_series(buf: RowBuffer, n: int) -> pl.Series:
    lens = np.asarray(buf.line_len, dtype=np.int64).reshape(-1)
    null = lens < 0
    off = offsets_from_lengths(np.where(null, 0, lens))
    arr = pa.LargeListArray.from_arrays(pa.array(off), _points_array(buf.line_xy),
                                        mask=pa.array(null) if null.any() else None)
    return pl.Series(pl.from_arrow(arr)).cast(s.LINE_DTYPE)


def _mask_series(buf: RowBuffer, n: int) -> pl.Series:
    return mask_series_from_values(buf.masks)


_GEOMETRY_BUFFERS: dict[str, Callable[[RowBuffer, int], pl.Series]] = {
    s.BBOX: _bbox_series, s.POINT: _point_series, s.POLYGON: _polygon_series,
    s.LINE: _line_series, s.MASK: _mask_series,
}


def empty_frame() -> pl.DataFrame:
    return RowBuffer().frame()


def concat_frames(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Concatenate chunk frames whose optional / custom columns may differ."""
    if not frames:
        return empty_frame()
    if len(frames) == 1:
        return frames[0]
    return pl.concat(frames, how="diagonal_relaxed")
