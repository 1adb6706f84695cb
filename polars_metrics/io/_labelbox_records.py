"""Labelbox JSON records → column buffers → Polars frames (shared by the import and export readers).

A :class:`RowBuffer` collects one annotation row at a time into plain Python lists and flat
coordinate buffers; :meth:`RowBuffer.frame` builds the columns in bulk (numpy / Arrow offsets,
never one frame per line). Parse helpers validate a field and raise :class:`RecordError` naming
the field; the readers add the line number.
"""
from __future__ import annotations

import base64
import json
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import polars as pl
import pyarrow as pa

from polars_metrics import schema as s

# --- the columns of every frame the readers return ------------------------------------------------
DATA_ROW_KEY_TYPE = "data_row_key_type"   # "id" | "global_key": which dataRow key the line used
GLOBAL_KEY = "global_key"
NAME = "name"
SCHEMA_ID = "schema_id"
SPAN_END = "span_end"                     # span rows: the source's end convention
SUBCLASSES = "subclasses"
SOURCE_LINE = "source_line"               # 1-based line (import) / data-row line (export)
ANSWER_CONFIDENCES = "answer_confidences"  # checklist rows: per-option confidence, as `answers`
PAGE, UNIT, FRAME = "page", "unit", "frame"
LABEL_ID = "label_id"
CUSTOM_PREFIX = "custom_"                 # customMetrics [{name, value}] → column custom_<name>

SUBCLASS_DTYPE = pl.Struct({
    "question": pl.String, "kind": pl.String, "answer": pl.String,
    "answers": pl.List(pl.String), "confidence": pl.Float64, "nested": pl.String,
})
SUBCLASSES_DTYPE = pl.List(SUBCLASS_DTYPE)

CORE_SCHEMA: dict[str, pl.DataType] = {
    s.DATA_ROW: pl.String, DATA_ROW_KEY_TYPE: pl.String, s.ID: pl.String, s.FEATURE: pl.String,
    NAME: pl.String, SCHEMA_ID: pl.String, s.KIND: pl.String, s.CONFIDENCE: pl.Float64,
    s.BBOX: s.BBOX_DTYPE, s.POLYGON: s.POLYGON_DTYPE, s.POINT: s.POINT_DTYPE, s.LINE: s.LINE_DTYPE,
    s.MASK: s.MASK_DTYPE, s.START: pl.Int64, s.END: pl.Int64, s.MESSAGE_ID: pl.String,
    SPAN_END: pl.String, s.QUESTION: pl.String, s.ANSWER: pl.String,
    s.ANSWERS: pl.List(pl.String), ANSWER_CONFIDENCES: pl.List(pl.Float64),
    SUBCLASSES: SUBCLASSES_DTYPE, SOURCE_LINE: pl.Int64,
}
OPTIONAL_SCHEMA: dict[str, pl.DataType] = {
    GLOBAL_KEY: pl.String, LABEL_ID: pl.String, PAGE: pl.Int64, UNIT: pl.String,
    FRAME: pl.Int64,
}


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
def number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(field, f"expected a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise RecordError(field, f"expected a finite number, got {value!r}")
    return v


def integer(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or float(value) != int(value):
        raise RecordError(field, f"expected an integer, got {value!r}")
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
            nested.extend(elem.get("classifications") or [])
        elif isinstance(ans, Mapping):  # radio (a single-object sub-checklist reads as radio)
            answer = _answer_name(ans, f"{field}.answer", "schemaId")
            kind, answers = "radio", None
            conf = confidence(ans.get("confidence"), f"{field}.answer.confidence")
            conf = line_conf if conf is None else conf
            nested.extend(ans.get("classifications") or [])
        elif isinstance(ans, list):
            kind, answer = "checklist", None
            answers = [_answer_name(a, f"{field}.answer[{i}]", "schemaId") if isinstance(a, Mapping)
                       else _bad(f"{field}.answer[{i}]", a) for i, a in enumerate(ans)]
            conf = line_conf
            for a in ans:
                nested.extend(a.get("classifications") or [])
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
        nested.extend(ans.get("classifications") or [])
    elif key.endswith("checklist_answers"):
        if not isinstance(ans, list):
            raise RecordError(f"{field}.{key}", f"expected a list, got {ans!r}")
        kind, answer = "checklist", None
        answers = [_answer_name(a, f"{field}.{key}[{i}]", "feature_schema_id") if isinstance(a, Mapping)
                   else _bad(f"{field}.{key}[{i}]", a) for i, a in enumerate(ans)]
        option_conf = [confidence(a.get("confidence"), f"{field}.{key}[{i}].confidence")
                       for i, a in enumerate(ans)]
        for a in ans:
            nested.extend(a.get("classifications") or [])
    else:
        content = ans.get("content") if isinstance(ans, Mapping) else ans
        kind, answer, answers = "text", text(content, f"{field}.{key}.content"), None
    return {"question": question, "kind": kind, "answer": answer, "answers": answers,
            "confidence": conf, "option_confidences": option_conf, "nested": nested,
            "message_id": elem.get("message_id"), "feature_id": elem.get("feature_id"),
            "schema_id": elem.get("feature_schema_id")}


def subclass_export(elem: Any, field: str) -> dict:
    c = export_classification(elem, field)
    conf = c["confidence"]
    if conf is None and c["option_confidences"]:
        known = [x for x in c["option_confidences"] if x is not None]
        conf = max(known) if known else None
    return {"question": c["question"], "kind": c["kind"], "answer": c["answer"],
            "answers": c["answers"], "confidence": conf,
            "nested": json.dumps(c["nested"]) if c["nested"] else None}


# --- masks ----------------------------------------------------------------------------------------
class MaskSource:
    """Turns mask references into RLE values without any network access.

    ``uri_map``: a mapping URL → local path, or a callable URL → local path (or None).
    ``mask_root``: a directory; a relative path resolves against it, and an http(s) URL maps
    to ``mask_root / <last path segment of the URL>``. Decoded composite PNGs are cached (one
    composite PNG is shared by every instance of a label).
    """

    def __init__(self, mask_root=None, uri_map=None, cache_size: int = 16):
        self.root = None if mask_root is None else Path(mask_root)
        self.uri_map = uri_map
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def local_path(self, uri: str, field: str) -> Path:
        mapped = None
        if self.uri_map is not None:
            mapped = self.uri_map(uri) if callable(self.uri_map) else self.uri_map.get(uri)
        if mapped is not None:
            path = Path(os.fspath(mapped))
        else:
            parsed = urlparse(uri)
            if parsed.scheme in ("http", "https"):
                if self.root is None:
                    raise RecordError(field, f"{uri!r} is a web address; masks are never fetched "
                                      "over the network. Download it and pass uri_map={url: "
                                      "local_path} or mask_root=<directory holding the files>.")
                name = unquote(Path(parsed.path).name)
                path = self.root / name
            elif parsed.scheme == "file":
                path = Path(unquote(parsed.path))
            elif parsed.scheme in ("", ) or (len(parsed.scheme) == 1 and os.name == "nt"):
                path = Path(uri)
                if not path.is_absolute() and self.root is not None:
                    path = self.root / path
            else:
                raise RecordError(field, f"unsupported mask address {uri!r}: give a local path, "
                                  "a file:// URL, or map it with uri_map=.")
        if not path.is_file():
            raise RecordError(field, f"mask file {str(path)!r} (for {uri!r}) does not exist.")
        return path

    def _rgb(self, path: Path) -> np.ndarray:
        key = str(path)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        from PIL import Image

        with Image.open(path) as img:
            img.load()
            arr = np.asarray(img.convert("RGB"))
        self._cache[key] = arr
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return arr

    def from_uri(self, uri: Any, color: Any, field: str, any_color: bool) -> dict:
        uri = text(uri, f"{field}.instanceURI")
        path = self.local_path(uri, f"{field}.instanceURI")
        rgb = self._rgb(path)
        if color is None:
            if not any_color:
                raise RecordError(f"{field}.colorRGB", "missing: the instance is the pixels of that "
                                  "RGB colour. Add colorRGB, or pass mask_color='any' to take every "
                                  "non-zero pixel.")
            fg = (rgb != 0).any(axis=2)
        else:
            if (not isinstance(color, list | tuple) or len(color) != 3
                    or not all(isinstance(c, int) and not isinstance(c, bool) for c in color)):
                raise RecordError(f"{field}.colorRGB", f"expected [r, g, b] integers, got {color!r}")
            fg = (rgb == np.asarray(color, dtype=rgb.dtype)[None, None, :]).all(axis=2)
        return rle_from_dense(fg)


def png_mask(value: Any, field: str) -> dict:
    """A base64 PNG (0/1 single channel, as the SDK writes) → RLE. Non-zero = foreground."""
    import io

    from PIL import Image

    data = text(value, field)
    try:
        raw = base64.b64decode(data, validate=False)
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            arr = np.asarray(img)
    except Exception as exc:  # noqa: BLE001 - any decoding problem is a format error
        raise RecordError(field, f"not a base64-encoded PNG ({exc.__class__.__name__}: {exc})") from None
    fg = (arr[..., :3] != 0).any(axis=2) if arr.ndim == 3 else arr != 0
    return rle_from_dense(fg)


def rle_from_dense(fg: np.ndarray) -> dict:
    """Column-major runs starting with a run of 0s (the engine's MASK_DTYPE value)."""
    h, w = fg.shape
    flat = np.asarray(fg, bool).ravel(order="F")
    if flat.size == 0:
        counts = np.zeros(1, np.uint32)
    else:
        change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        runs = np.diff(np.concatenate([[0], change, [flat.size]]))
        if flat[0]:
            runs = np.concatenate([[0], runs])
        counts = runs.astype(np.uint32)
    return {"height": int(h), "width": int(w), "counts": counts}


def rle_mask(value: Mapping, field: str) -> dict:
    """{size: [h, w], counts: [...]} (uncompressed COCO RLE), behind ``allow_rle_masks``."""
    size = value.get("size")
    counts = value.get("counts")
    if not isinstance(size, list) or len(size) != 2 or not isinstance(counts, list):
        raise RecordError(field, "an RLE mask is {\"size\": [height, width], \"counts\": [...]}")
    h, w = integer(size[0], f"{field}.size[0]"), integer(size[1], f"{field}.size[1]")
    c = np.asarray([integer(x, f"{field}.counts") for x in counts], dtype=np.int64)
    if (c < 0).any() or int(c.sum()) != h * w:
        raise RecordError(f"{field}.counts", f"run lengths must be >= 0 and sum to height × width "
                          f"= {h * w}, got sum {int(c.sum())}")
    return {"height": h, "width": w, "counts": c.astype(np.uint32)}


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
            dtype = OPTIONAL_SCHEMA.get(name, pl.String if name != "is_benchmark_reference" else pl.Boolean)
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
    ring_off = np.zeros(n + 1, np.int64)
    np.cumsum(np.where(null, 0, rings), out=ring_off[1:])
    pt_off = np.zeros(len(buf.poly_ring_len) + 1, np.int64)
    np.cumsum(np.asarray(buf.poly_ring_len, np.int64), out=pt_off[1:])
    inner = pa.LargeListArray.from_arrays(pa.array(pt_off), _points_array(buf.poly_xy))
    outer = pa.LargeListArray.from_arrays(pa.array(ring_off), inner,
                                          mask=pa.array(null) if null.any() else None)
    return pl.Series(pl.from_arrow(outer)).cast(s.POLYGON_DTYPE)


def _line_series(buf: RowBuffer, n: int) -> pl.Series:
    lens = np.asarray(buf.line_len, dtype=np.int64).reshape(-1)
    null = lens < 0
    off = np.zeros(n + 1, np.int64)
    np.cumsum(np.where(null, 0, lens), out=off[1:])
    arr = pa.LargeListArray.from_arrays(pa.array(off), _points_array(buf.line_xy),
                                        mask=pa.array(null) if null.any() else None)
    return pl.Series(pl.from_arrow(arr)).cast(s.LINE_DTYPE)


def _mask_series(buf: RowBuffer, n: int) -> pl.Series:
    masks = buf.masks
    null = np.fromiter((m is None for m in masks), bool, n)
    h = np.fromiter((0 if m is None else m["height"] for m in masks), np.int64, n)
    w = np.fromiter((0 if m is None else m["width"] for m in masks), np.int64, n)
    lens = np.fromiter((0 if m is None else len(m["counts"]) for m in masks), np.int64, n)
    off = np.zeros(n + 1, np.int64)
    np.cumsum(lens, out=off[1:])
    parts = [np.asarray(m["counts"], np.uint32) for m in masks if m is not None]
    counts = np.concatenate(parts) if parts else np.zeros(0, np.uint32)
    counts_arr = pa.LargeListArray.from_arrays(pa.array(off), pa.array(counts, pa.uint32()))
    struct = pa.StructArray.from_arrays(
        [pa.array(h, pa.int64()), pa.array(w, pa.int64()), counts_arr],
        names=["height", "width", "counts"], mask=pa.array(null) if null.any() else None)
    return pl.Series(pl.from_arrow(struct)).cast(s.MASK_DTYPE)


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
