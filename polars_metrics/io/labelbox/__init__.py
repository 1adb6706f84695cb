"""Labelbox JSON in and out.

In: the import NDJSON (one annotation per line, :func:`read_labelbox_ndjson`, module
``ndjson``) and the export (one data row per line, :func:`read_labelbox_export`, module
``export``), read into the engine's frames so ``pm.evaluate(gt, pd)`` works on them directly;
``records`` turns one JSON value into row fields and buffers rows. Out: custom-metric NDJSON
(:func:`write_labelbox_metrics`, module ``metrics``).

The frame schema is ``polars_metrics.io.frames.LABELBOX``.

Frames produced (both readers; one row per annotation, a checklist is one row)
-----------------------------------------------------------------------------
* ``data_row`` String — ``dataRow.id`` or ``dataRow.globalKey`` (import), ``data_row.id``
  (export); ``data_row_key_type`` — ``"id"`` or ``"global_key"``; export frames also carry
  ``global_key``.
* ``id`` String — ``uuid`` (import) / ``feature_id`` (export); ``"line:<n>"`` when absent.
* ``feature`` String — the object's ``name``, else its schema id; null on classification rows
  (the engine derives their feature: the answer for radio and checklist options, the question
  for text). ``name`` and ``schema_id`` keep both identities (P1: a file keyed by schema ids
  does not join a file keyed by names).
* ``kind`` Enum (the engine's kinds, a byte a row) — box, polygon, line, point, mask, span,
  radio, checklist, text.
* ``confidence`` Float64 — null means 1.0. Radio: the answer's, else the line's (P3).
  Checklist: the line's, else the highest option confidence given; every option's own
  confidence is in ``answer_confidences`` (List(Float64), aligned with ``answers``).
* geometry: ``bbox`` Array(Float64, 4) = x0, y0, x1, y1 from {top, left, height, width};
  ``polygon`` one ring without the duplicate closing vertex; ``line``; ``point``; ``mask``
  (RLE Struct{height, width, counts}); ``start`` / ``end`` / ``message_id`` for spans.
* ``span_end`` — on span rows, the source's end convention: ``"inclusive"`` (default: the
  platform's ``end`` is inclusive, the reader added 1 so ``end`` is half-open) or
  ``"exclusive"`` (``end`` kept as written). ``pm.labelbox_sdk`` reads it to give the SDK its
  raw numbers back.
* ``question``, ``answer`` (radio, text), ``answers`` List(String) (checklist).
* ``subclasses`` List(Struct{question, kind, answer, answers, confidence, nested}) — nested
  classifications one level deep (objects' ``classifications``, an answer's
  ``classifications``); anything deeper is JSON text in ``nested``.
* ``custom_<name>`` Float64 — ``customMetrics`` of the line (radio: of the answer too).
* ``source_line`` Int64 — the 1-based line (element of a JSON array) the row came from.
* when present in the file: ``page``, ``unit`` (document boxes), ``frame`` (video keyframes;
  evaluate them with ``data_row=["data_row", "frame"]``), ``label_id`` (export).

Data types (export)
-------------------
Image, Text, Audio, HTML, JSON and Conversational data rows give ``objects`` and global
``classifications`` rows alike. Document boxes carry ``page`` (``page_number``, 1-based);
conversational entities and classifications carry ``message_id``. Video (``label_kind``
"Video"): every object and frame classification of ``frames.<n>`` is one row with ``frame`` =
n (exports list every frame an annotation is on, so frame ranges are never expanded; import
``frames: [{start, end}]`` ranges expand to one row per frame, at most
``records.MAX_FRAMES`` = 100,000 per line, else the line is an error / reject); global video
classifications have a null ``frame``. Evaluate per frame on the frame rows,
``gt.filter(pl.col("frame").is_not_null())`` with ``data_row=["data_row", "frame"]``, and
per video on the global rows, ``gt.filter(pl.col("frame").is_null())`` with the default
``data_row`` (a null key part is rejected). DICOM (``groups.<Axial|Sagittal|Coronal>.frames``):
like video, with the group in a ``group`` column (``data_row=["data_row", "group", "frame"]``).

Masks are never fetched over the network: ``instanceURI`` / export mask URLs must be local
paths, ``file://`` URLs, or mapped to local files with ``uri_map`` / ``mask_root``.
"""
from __future__ import annotations

from polars_metrics.io.labelbox.export import LabelboxExport, read_labelbox_export
from polars_metrics.io.labelbox.metrics import write_labelbox_metrics
from polars_metrics.io.labelbox.ndjson import read_labelbox_ndjson

__all__ = ["LabelboxExport", "read_labelbox_export", "read_labelbox_ndjson", "write_labelbox_metrics"]
