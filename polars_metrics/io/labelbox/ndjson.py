"""Labelbox import NDJSON (one annotation per line) to the engine's frames; the columns are
described in :mod:`polars_metrics.io.labelbox`."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl

from polars_metrics import schema as s
from polars_metrics.errors import FormatError
from polars_metrics.io import frames as F
from polars_metrics.io.frames import LABELBOX, check_frame
from polars_metrics.io.labelbox import _common as C
from polars_metrics.io.labelbox import masks as M
from polars_metrics.io.labelbox import records as R

# lines the metrics cannot use: skipped, counted, reported in one warning
SKIPPED_KEYS = {"metricValue": "metric", "masks": "video mask", "textSelections": "document entity",
                "relationship": "relationship", "messageEvaluationTask": "message evaluation task"}

# --- import NDJSON --------------------------------------------------------------------------------
def read_labelbox_ndjson(path_or_lines, *, role: C.Role = "predictions",
                         span_end: Literal["inclusive", "exclusive"] = "inclusive",
                         mask_root: str | os.PathLike | None = None, uri_map=None,
                         mask_color: Literal["exact", "any"] = "exact",
                         allow_rle_masks: bool = False, global_key_map=None,
                         on_invalid: Literal["raise", "drop"] = "raise",
                         chunk_lines: int = C.CHUNK_LINES):
    """Read the Labelbox import NDJSON (predictions, MAL, label import): one annotation a line.

    Parameters
    ----------
    path_or_lines : path, open file, or an iterable of lines (str / bytes) or parsed dicts.
        Blank lines are skipped; a file holding one JSON array of the same objects is read too.
    role : "predictions" (default) or "ground_truth": names the table in errors and rejects.
    span_end : "inclusive" (default; the platform's ``location.end`` is inclusive, so 1 is
        added to give the engine's half-open spans) or "exclusive" (``end`` kept as written).
        The choice is recorded on span rows in the ``span_end`` column.
    mask_root, uri_map : where ``instanceURI`` masks are read from. A local path or
        ``file://`` URL is read directly (relative paths against ``mask_root``); an http(s)
        URL must be mapped to a local file by ``uri_map`` (a dict URL → path, or a callable)
        or by ``mask_root`` (the URL's last path segment inside that directory). Nothing is
        ever fetched over the network.
    mask_color : "exact" (default): an ``instanceURI`` mask without ``colorRGB`` is an error;
        "any": it means every non-zero pixel.
    allow_rle_masks : also accept ``mask: {"size": [h, w], "counts": [...]}`` (uncompressed
        COCO RLE; platform support unverified).
    global_key_map : a dict global key → data row id, or a frame with ``global_key`` and
        ``data_row`` columns (e.g. ``read_labelbox_export(...).data_rows``): lines keyed by
        ``globalKey`` get the data row id (the key is kept in ``global_key``). A global key
        missing from the map is an error (P2), never dropped.
    on_invalid : "raise" (default): the first bad line raises
        :class:`~polars_metrics.errors.FormatError` naming the line number and the field.
        "drop": bad lines are left out and returned in a second frame ``rejects``
        (``table``, ``row`` = line number, ``data_row``, ``id``, ``column`` = field, ``reason``).
    chunk_lines : lines parsed per chunk (memory stays bounded by one chunk of Python objects;
        columns are built in bulk per chunk).

    Returns
    -------
    DataFrame, or ``(frame, rejects)`` with ``on_invalid="drop"``. See the module docstring
    for the columns. Lines the metrics cannot use (metrics, relationships, document token
    entities, video masks, message evaluations) are skipped and counted in one
    :class:`~polars_metrics.errors.PolarsMetricsWarning`.

    Examples
    --------
    >>> import polars_metrics as pm
    >>> lines = ['{"dataRow": {"id": "dr1"}, "name": "car", "uuid": "a", "confidence": 0.9,'
    ...          ' "bbox": {"top": 20, "left": 10, "height": 40, "width": 30}}',
    ...          '{"dataRow": {"id": "dr1"}, "name": "weather", "answer": {"name": "sunny"}}']
    >>> pd = pm.read_labelbox_ndjson(lines)
    >>> pd.select("data_row", "kind", "feature", "bbox", "answer").rows()
    [('dr1', 'box', 'car', [10.0, 20.0, 40.0, 60.0], None), ('dr1', 'radio', None, None, 'sunny')]
    """
    C.check_choice("role", role, (s.PREDICTIONS, s.GROUND_TRUTH))
    C.check_choice("span_end", span_end, C.SPAN_ENDS)
    C.check_choice("mask_color", mask_color, C.MASK_COLORS)
    problems = C.Problems(role, on_invalid)
    ctx = _ImportContext(span_end=span_end, masks=M.MaskSource(mask_root, uri_map),
                         any_color=mask_color == "any", allow_rle=allow_rle_masks,
                         problems=problems)
    frames = []
    buf = R.RowBuffer()
    for n, rec, err in C.iter_records(path_or_lines):
        if err is not None:
            problems.bad(n, "line", err)
            continue
        _import_record(rec, n, buf, ctx)
        if buf.n >= chunk_lines:
            frames.append(buf.frame())
            buf = R.RowBuffer()
    if buf.n or not frames:
        frames.append(buf.frame())
    frame = R.concat_frames(frames)
    frame = _duplicate_uuids(frame, problems)
    if global_key_map is not None:
        frame = _map_global_keys(frame, global_key_map, problems)
    problems.warn_skipped()
    frame = check_frame(frame, LABELBOX)
    return (frame, problems.frame()) if problems.drop else frame


@dataclass
class _ImportContext:
    span_end: str
    masks: M.MaskSource
    any_color: bool
    allow_rle: bool
    problems: C.Problems


def _import_record(rec: Any, n: int, buf: R.RowBuffer, ctx: _ImportContext) -> None:
    bad = ctx.problems.bad
    if not isinstance(rec, Mapping):
        bad(n, "line", f"expected a JSON object, got {type(rec).__name__}")
        return
    skipped = next((label for key, label in SKIPPED_KEYS.items() if key in rec), None)
    if skipped is not None and "segments" not in rec:
        ctx.problems.skipped[skipped] += 1
        return
    ident = rec.get("uuid")
    try:
        data_row, key_type = _data_row(rec.get("dataRow"), "dataRow", "id", "globalKey")
        if ident is not None:
            ident = R.text(ident, "uuid")
        name, schema_id = rec.get("name"), rec.get("schemaId")
        if name is None and schema_id is None:
            raise R.RecordError("name", "give the feature's 'name' or 'schemaId'")
        name = None if name is None else R.text(name, "name")
        schema_id = None if schema_id is None else R.text(schema_id, "schemaId")
        common = dict(data_row=data_row, key_type=key_type, ident=ident or f"line:{n}", name=name,
                      schema_id=schema_id, source_line=n)
        rows = _import_rows(rec, common, ctx)
    except R.RecordError as exc:
        dr = rec.get("dataRow") if isinstance(rec.get("dataRow"), Mapping) else {}
        bad(n, exc.field, exc.problem, dr.get("id", dr.get("globalKey")), ident)
        return
    for row in rows:
        buf.add(**row)


def _data_row(value: Any, field: str, id_key: str, gk_key: str) -> tuple[str, str]:
    if not isinstance(value, Mapping):
        raise R.RecordError(field, f"expected {{\"{id_key}\": ...}} or {{\"{gk_key}\": ...}}, got {value!r}")
    has_id, has_gk = value.get(id_key) is not None, value.get(gk_key) is not None
    if has_id == has_gk:
        raise R.RecordError(field, f"give exactly one of '{id_key}' and '{gk_key}', got {dict(value)!r}")
    if has_id:
        return R.text(value[id_key], f"{field}.{id_key}"), "id"
    return R.text(value[gk_key], f"{field}.{gk_key}"), "global_key"


def _object_extras(rec: Mapping) -> dict:
    subclasses = [R.subclass_import(c, f"classifications[{i}]")
                  for i, c in enumerate(R.listed(rec.get("classifications"), "classifications"))]
    out = dict(conf=R.confidence(rec.get("confidence"), "confidence"),
               custom=R.custom_metrics(rec.get("customMetrics"), "customMetrics"),
               subclasses=subclasses)
    if rec.get("page") is not None:
        out["page"] = R.integer(rec["page"], "page")
    if rec.get("unit") is not None:
        out["unit"] = R.text(rec["unit"], "unit")
    if rec.get("isBenchmarkReferenceLabel") is not None:
        out[F.IS_BENCHMARK_REFERENCE] = bool(rec["isBenchmarkReferenceLabel"])
    return out


def _geometry(rec: Mapping, ctx, field_prefix: str = "") -> dict | None:
    """The object geometry of an import record (or a video keyframe), or None."""
    p = field_prefix
    if "bbox" in rec:
        return dict(kind="box", bbox=R.box(rec["bbox"], p + "bbox"))
    if "polygon" in rec:
        ring = R.ring_without_closure(R.points(rec["polygon"], p + "polygon", 3))
        if len(ring) < 3:
            raise R.RecordError(p + "polygon", "a polygon needs at least 3 distinct vertices")
        return dict(kind="polygon", polygon=[ring])
    if "line" in rec:
        return dict(kind="line", line=R.points(rec["line"], p + "line", 2))
    if "point" in rec:
        return dict(kind="point", point=R.point_xy(rec["point"], p + "point"))
    if "mask" in rec:
        return dict(kind="mask", mask=_import_mask(rec["mask"], ctx, p + "mask"))
    if "location" in rec:
        loc = rec["location"]
        if not isinstance(loc, Mapping) or "start" not in loc or "end" not in loc:
            raise R.RecordError(p + "location", f"expected {{\"start\", \"end\"}}, got {loc!r}")
        start = R.integer(loc["start"], p + "location.start")
        end = R.integer(loc["end"], p + "location.end")
        if end < start or start < 0:
            raise R.RecordError(p + "location", f"need 0 <= start <= end, got start={start}, end={end}")
        msg = rec.get("messageId")
        return dict(kind="span", start=start, end=end + (ctx.span_end == "inclusive"),
                    span_end=ctx.span_end,
                    message_id=None if msg is None else R.text(msg, "messageId"))
    return None


def _import_mask(value: Any, ctx: _ImportContext, field: str) -> dict:
    if not isinstance(value, Mapping):
        raise R.RecordError(field, f"expected {{\"png\"}} or {{\"instanceURI\", \"colorRGB\"}}, got {value!r}")
    if "png" in value:
        return M.png_mask(value["png"], field + ".png")
    if "instanceURI" in value:
        return ctx.masks.from_uri(value["instanceURI"], value.get("colorRGB"), field, ctx.any_color)
    if "counts" in value and "size" in value:
        if not ctx.allow_rle:
            raise R.RecordError(field, "an RLE mask {size, counts}: pass allow_rle_masks=True to "
                                "read it (platform support is unverified)")
        return M.rle_mask(value, field)
    raise R.RecordError(field, f"expected 'png' or 'instanceURI', got keys {sorted(value)}")


def _import_rows(rec: Mapping, common: dict, ctx: _ImportContext) -> list[dict]:
    if "segments" in rec:
        return _video_object_rows(rec, common, ctx)
    geom = _geometry(rec, ctx)
    if geom is not None:
        return [{**common, **geom, **_object_extras(rec)}]
    if "answer" in rec or isinstance(rec.get("answers"), list):
        row = _import_classification(rec, common)
        if rec.get("frames") is None:
            return [row]
        return [{**row, "frame": f} for f in R.frame_ranges(rec["frames"], "frames")]
    keys = sorted(rec)
    raise R.RecordError("line", f"no annotation key (bbox, polygon, line, point, mask, location, "
                        f"answer, answers, segments) among the keys {keys}")


def _import_classification(rec: Mapping, common: dict) -> dict:
    question = common["name"] if common["name"] is not None else common["schema_id"]
    line_conf = R.confidence(rec.get("confidence"), "confidence")
    custom = R.custom_metrics(rec.get("customMetrics"), "customMetrics")
    msg = rec.get("messageId")
    row = dict(common, question=question, custom=custom,
               message_id=None if msg is None else R.text(msg, "messageId"))
    ans = rec.get("answer", rec.get("answers"))
    if isinstance(ans, str):
        return dict(row, kind="text", answer=ans, conf=line_conf, subclasses=_subs(rec, "classifications"))
    if isinstance(ans, Mapping):
        name = R._answer_name(ans, "answer", "schemaId")
        conf = R.confidence(ans.get("confidence"), "answer.confidence")
        custom.update(R.custom_metrics(ans.get("customMetrics"), "answer.customMetrics"))
        subs = _subs(ans, "classifications", "answer.") + _subs(rec, "classifications")
        return dict(row, kind="radio", answer=name, conf=line_conf if conf is None else conf,
                    subclasses=subs)
    if isinstance(ans, list):
        key = "answer" if "answer" in rec else "answers"
        names, confs, subs = [], [], []
        for i, a in enumerate(ans):
            if not isinstance(a, Mapping):
                raise R.RecordError(f"{key}[{i}]", f"expected an option {{\"name\"}}, got {a!r}")
            names.append(R._answer_name(a, f"{key}[{i}]", "schemaId"))
            confs.append(R.confidence(a.get("confidence"), f"{key}[{i}].confidence"))
            subs.extend(_subs(a, "classifications", f"{key}[{i}]."))
            for m, v in R.custom_metrics(a.get("customMetrics"), f"{key}[{i}].customMetrics").items():
                custom.setdefault(f"{names[-1]}.{m}", v)
        known = [c for c in confs if c is not None]
        conf = line_conf if line_conf is not None else (max(known) if known else None)
        return dict(row, kind="checklist", answers=names, answer_confidences=confs, conf=conf,
                    subclasses=subs + _subs(rec, "classifications"))
    raise R.RecordError("answer", f"expected an object (radio), a list (checklist) or a string "
                        f"(text), got {ans!r}")


def _subs(obj: Mapping, key: str, prefix: str = "") -> list[dict]:
    value = obj.get(key)
    if not value:
        return []
    if not isinstance(value, list):
        raise R.RecordError(prefix + key, f"expected a list of classifications, got {value!r}")
    return [R.subclass_import(c, f"{prefix}{key}[{i}]") for i, c in enumerate(value)]


def _video_object_rows(rec: Mapping, common: dict, ctx: _ImportContext) -> list[dict]:
    segs = rec["segments"]
    if not isinstance(segs, list):
        raise R.RecordError("segments", f"expected a list of {{\"keyframes\": [...]}}, got {segs!r}")
    if not segs:
        raise R.RecordError("segments", "a video object needs at least one segment with keyframes")
    out = []
    for i, seg in enumerate(segs):
        frames = seg.get("keyframes") if isinstance(seg, Mapping) else None
        if not isinstance(frames, list) or not frames:
            raise R.RecordError(f"segments[{i}].keyframes", "expected a non-empty list of keyframes")
        for j, kf in enumerate(frames):
            where = f"segments[{i}].keyframes[{j}]."
            if not isinstance(kf, Mapping):
                raise R.RecordError(where[:-1], f"expected a keyframe object, got {kf!r}")
            geom = _geometry(kf, ctx, where)
            if geom is None:
                raise R.RecordError(where[:-1], f"no bbox, point or line among {sorted(kf)}")
            subs = [R.subclass_import(c, f"{where}classifications[{k}]")
                    for k, c in enumerate(R.listed(kf.get("classifications"),
                                                   f"{where}classifications"))]
            out.append({**common, **geom, "frame": R.integer(kf.get("frame"), where + "frame"),
                        "conf": R.confidence(rec.get("confidence"), "confidence"),
                        "subclasses": subs})
    return out


def _duplicate_uuids(frame: pl.DataFrame, problems: C.Problems) -> pl.DataFrame:
    """uuids must be unique per data row (P13): report the line numbers."""
    if frame.height == 0:
        return frame
    keys = [s.DATA_ROW, s.ID] + ([F.FRAME] if F.FRAME in frame.columns else [])
    dup = frame.select(*keys, F.SOURCE_LINE).filter(
        pl.struct(keys).is_duplicated() & ~pl.col(s.ID).str.starts_with("line:"))
    if dup.height == 0:
        return frame
    groups = (dup.group_by(keys, maintain_order=True)
              .agg(pl.col(F.SOURCE_LINE).unique(maintain_order=True)))
    groups = groups.filter(pl.col(F.SOURCE_LINE).list.len() > 1)
    if groups.height == 0:  # one line expanded to several rows (video classification frames)
        return frame
    if not problems.drop:
        shown = "; ".join(f"data row {r[s.DATA_ROW]!r} uuid {r[s.ID]!r} on lines "
                          f"{r[F.SOURCE_LINE]}" for r in groups.head(5).iter_rows(named=True))
        more = f" (and {groups.height - 5} more)" if groups.height > 5 else ""
        raise FormatError(f"{problems.table}: duplicate uuid within a data row: {shown}{more}. "
                          "A uuid must be unique per data row (a re-import with the same uuid "
                          "overrides the earlier annotation); give each annotation its own uuid, "
                          "or pass on_invalid='drop' to keep the first line of each.")
    first = groups.with_columns(pl.col(F.SOURCE_LINE).list.first().alias("_first"))
    later = (groups.explode(F.SOURCE_LINE)
             .join(first.select(*keys, "_first"), on=keys)
             .filter(pl.col(F.SOURCE_LINE) != pl.col("_first")))
    for r in later.iter_rows(named=True):
        problems.bad(r[F.SOURCE_LINE], "uuid",
                     f"duplicate uuid within the data row (first on line {r['_first']})",
                     r[s.DATA_ROW], r[s.ID])
    drop_lines = later[F.SOURCE_LINE].unique()
    return frame.filter(~pl.col(F.SOURCE_LINE).is_in(drop_lines.implode()))


def _map_global_keys(frame: pl.DataFrame, mapping, problems: C.Problems) -> pl.DataFrame:
    if isinstance(mapping, pl.DataFrame):
        if F.GLOBAL_KEY not in mapping.columns or s.DATA_ROW not in mapping.columns:
            raise ValueError("global_key_map frame needs 'global_key' and 'data_row' columns.")
        table = mapping.select(F.GLOBAL_KEY, s.DATA_ROW).drop_nulls().unique(F.GLOBAL_KEY)
    else:
        table = pl.DataFrame({F.GLOBAL_KEY: list(mapping.keys()),
                              s.DATA_ROW: [str(v) for v in mapping.values()]},
                             schema={F.GLOBAL_KEY: pl.String, s.DATA_ROW: pl.String})
    is_gk = pl.col(F.DATA_ROW_KEY_TYPE) == "global_key"
    with_gk = frame.with_columns(
        pl.when(is_gk).then(pl.col(s.DATA_ROW)).otherwise(
            pl.col(F.GLOBAL_KEY) if F.GLOBAL_KEY in frame.columns else pl.lit(None, pl.String)
        ).alias(F.GLOBAL_KEY))
    joined = with_gk.join(table.rename({s.DATA_ROW: "_mapped"}), on=F.GLOBAL_KEY, how="left",
                          maintain_order="left")
    missing = joined.filter(is_gk & pl.col("_mapped").is_null())
    if missing.height:
        if not problems.drop:
            ex = missing.select(F.GLOBAL_KEY, F.SOURCE_LINE).head(5).rows()
            raise FormatError(f"{problems.table}: {missing.height} line(s) keyed by a globalKey "
                              f"that global_key_map does not know, e.g. {ex} (global key, line). "
                              "Add them to the map (the export's data_rows frame has both keys).")
        for r in missing.iter_rows(named=True):
            problems.bad(r[F.SOURCE_LINE], "dataRow.globalKey",
                         "global key not in global_key_map", r[s.DATA_ROW], r[s.ID])
        joined = joined.filter(~(is_gk & pl.col("_mapped").is_null()))
    return joined.with_columns(
        pl.when(is_gk).then(pl.col("_mapped")).otherwise(pl.col(s.DATA_ROW)).alias(s.DATA_ROW),
        pl.lit("id").alias(F.DATA_ROW_KEY_TYPE),
    ).drop("_mapped")
