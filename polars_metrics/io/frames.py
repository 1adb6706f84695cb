"""The frames the readers return, stated once, and the check every reader runs before returning.

Every reader returns ground truth and predictions in the engine's input layout: ``data_row``,
``id``, ``feature``, ``kind``, the geometry columns of the kinds it reads (in the engine's
canonical dtypes), and ``confidence`` on predictions. Each format adds its own columns (COCO's
category ids and image sizes, Labelbox's names and source lines). The schema of each format is
below; :func:`check_frame` holds a reader's output to it, so a reader that drifts fails its
tests instead of feeding the engine a surprise.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from polars_metrics import schema as s
from polars_metrics.kinds import KIND_DTYPE

# --- columns only the readers add -----------------------------------------------------------------
CATEGORY_ID = "category_id"   # COCO category id
BBOX_XYWH = "bbox_xywh"       # COCO's x, y, w, h as read (COCO IoUs are bit-exact on these)
HEIGHT, WIDTH = "height", "width"  # COCO image size

DATA_ROW_KEY_TYPE = "data_row_key_type"   # Labelbox: "id" | "global_key", the key the line used
GLOBAL_KEY = "global_key"
NAME = "name"
SCHEMA_ID = "schema_id"
SPAN_END = "span_end"                     # span rows: the source's end convention
SUBCLASSES = "subclasses"
SOURCE_LINE = "source_line"               # 1-based line (import) / data-row line (export)
ANSWER_CONFIDENCES = s.ANSWER_CONFIDENCES
PAGE, UNIT, FRAME = "page", "unit", "frame"
LABEL_ID = "label_id"
IS_BENCHMARK_REFERENCE = "is_benchmark_reference"
CUSTOM_PREFIX = "custom_"                 # customMetrics [{name, value}] → column custom_<name>

SUBCLASS_DTYPE = pl.Struct({
    "question": pl.String, "kind": pl.String, "answer": pl.String,
    "answers": pl.List(pl.String), "confidence": pl.Float64, "nested": pl.String,
})
SUBCLASSES_DTYPE = pl.List(SUBCLASS_DTYPE)


@dataclass(frozen=True)
class FrameSchema:
    """Columns a reader returns: ``required`` in this order (``pl.Enum`` = any Enum), then
    ``optional`` ones when present; other columns (e.g. ``custom_*``) pass unchecked."""

    name: str
    required: Mapping[str, pl.DataType | type]
    optional: Mapping[str, pl.DataType | type] = field(default_factory=dict)

    def columns(self, present) -> list[str]:
        """The schema's columns that are in ``present``, in the schema's order."""
        have = set(present)
        return [c for c in {**self.required, **self.optional} if c in have]


def _coco(predictions: bool) -> FrameSchema:
    required: dict = {s.DATA_ROW: pl.Int64, s.ID: pl.Int64, s.FEATURE: pl.Enum,
                      CATEGORY_ID: pl.Int64, s.KIND: KIND_DTYPE, s.BBOX: s.BBOX_DTYPE,
                      BBOX_XYWH: s.BBOX_DTYPE, s.AREA: pl.Float64}
    required.update({s.CONFIDENCE: pl.Float64} if predictions
                    else {s.IS_CROWD: pl.Boolean, s.IGNORE: pl.Boolean})
    # ``mask`` sits between these and the image size when any annotation has one; the image
    # size is the ground truth's (a detection's would repeat its image's: 16 bytes a detection)
    optional = {s.MASK: s.MASK_DTYPE} | ({} if predictions else {HEIGHT: pl.Int64, WIDTH: pl.Int64})
    return FrameSchema("coco " + ("predictions" if predictions else "ground truth"), required, optional)


COCO_GT = _coco(predictions=False)
COCO_PD = _coco(predictions=True)

LABELBOX = FrameSchema("labelbox", {
    s.DATA_ROW: pl.String, DATA_ROW_KEY_TYPE: pl.String, s.ID: pl.String, s.FEATURE: pl.String,
    NAME: pl.String, SCHEMA_ID: pl.String, s.KIND: KIND_DTYPE, s.CONFIDENCE: pl.Float64,
    s.BBOX: s.BBOX_DTYPE, s.POLYGON: s.POLYGON_DTYPE, s.POINT: s.POINT_DTYPE, s.LINE: s.LINE_DTYPE,
    s.MASK: s.MASK_DTYPE, s.START: pl.Int64, s.END: pl.Int64, s.MESSAGE_ID: pl.String,
    SPAN_END: pl.String, s.QUESTION: pl.String, s.ANSWER: pl.String,
    s.ANSWERS: pl.List(pl.String), ANSWER_CONFIDENCES: pl.List(pl.Float64),
    SUBCLASSES: SUBCLASSES_DTYPE, SOURCE_LINE: pl.Int64,
}, {
    GLOBAL_KEY: pl.String, LABEL_ID: pl.String, PAGE: pl.Int64, UNIT: pl.String,
    FRAME: pl.Int64, IS_BENCHMARK_REFERENCE: pl.Boolean,
})


def _matches(dtype: pl.DataType, expected) -> bool:
    if isinstance(expected, type):
        return isinstance(dtype, expected)
    return dtype == expected


def check_frame(frame: pl.DataFrame, schema: FrameSchema) -> pl.DataFrame:
    """Return ``frame`` when it has the columns and dtypes of ``schema``, else raise.

    A mismatch is a bug in the reader (not in the user's file), hence ``RuntimeError``.

    Examples
    --------
    >>> import polars as pl
    >>> pd = pl.DataFrame(schema={c: (pl.Enum([]) if d is pl.Enum else d)
    ...                           for c, d in COCO_PD.required.items()})
    >>> check_frame(pd, COCO_PD).columns[:4]
    ['data_row', 'id', 'feature', 'category_id']
    >>> check_frame(pd.drop("confidence"), COCO_PD)
    Traceback (most recent call last):
    ...
    RuntimeError: coco predictions reader returned a frame without column(s) ['confidence'] (a bug in polars_metrics; please report it).
    """
    missing = [c for c in schema.required if c not in frame.columns]
    if missing:
        raise RuntimeError(f"{schema.name} reader returned a frame without column(s) {missing} "
                           "(a bug in polars_metrics; please report it).")
    expected = {**schema.required, **{c: d for c, d in schema.optional.items() if c in frame.columns}}
    wrong = [f"{c}: {frame.schema[c]} (expected {d})" for c, d in expected.items()
             if not _matches(frame.schema[c], d)]
    if wrong:
        raise RuntimeError(f"{schema.name} reader returned wrong dtypes: {'; '.join(wrong)} "
                           "(a bug in polars_metrics; please report it).")
    return frame
