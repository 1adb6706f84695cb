"""``read_labelbox_export``: the Labelbox export (one data row per line) into the engine's
frames; see :mod:`polars_metrics.io.labelbox` for the columns."""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import polars as pl

from polars_metrics import schema as s
from polars_metrics.errors import PolarsMetricsWarning
from polars_metrics.io import frames as F
from polars_metrics.io.frames import LABELBOX, check_frame
from polars_metrics.io.labelbox import _common as C
from polars_metrics.io.labelbox import masks as M
from polars_metrics.io.labelbox import records as R

LABEL_SELECTIONS = ("first", "latest", "benchmark", "consensus", "error")


EXCLUDED_SCHEMA = {s.DATA_ROW: pl.String, F.GLOBAL_KEY: pl.String, s.REASON: pl.String,
                   "n_labels": pl.Int64, "n_predictions": pl.Int64}
DATA_ROWS_SCHEMA = {s.DATA_ROW: pl.String, F.GLOBAL_KEY: pl.String, "external_id": pl.String,
                    F.HEIGHT: pl.Int64, F.WIDTH: pl.Int64, "mime_type": pl.String,
                    "labeled": pl.Boolean, "n_labels": pl.Int64, F.LABEL_ID: pl.String,
                    F.SOURCE_LINE: pl.Int64}


@dataclass
class LabelboxExport:
    """What :func:`read_labelbox_export` read.

    Attributes
    ----------
    ground_truth, predictions : annotation frames (see :mod:`polars_metrics.io.labelbox`). A project
        export fills the side named by ``role`` and leaves the other empty; a model-run export
        fills both (``labels`` → ground truth, ``predictions`` → predictions).
    data_rows : one row per data row of the file: ``data_row``, ``global_key``,
        ``external_id``, ``height``, ``width``, ``mime_type`` (``media_attributes``; null when
        the export has none), ``labeled``, ``n_labels``, ``label_id`` (the selected label),
        ``source_line``. Pass it as ``global_key_map`` to :func:`read_labelbox_ndjson`, or as
        ``data_rows=`` to ``pm.evaluate``.
    excluded : data rows left out because they are not labeled (``projects: {}``,
        ``labels: []``, or not in the chosen project / model run; P6): ``data_row``,
        ``global_key``, ``reason``, ``n_labels``, ``n_predictions`` (predictions dropped with
        them). A label whose annotations are empty is *labeled, nothing there*: it gives a
        placeholder row (null feature, id and geometry; its ``kind`` is the frame's most common
        kind), not an exclusion.
    rejects : bad records with ``on_invalid="drop"`` (``row`` = line number).
    mode : "project" or "model_run"; project, model_run : the ids read.

    Unpacks as ``gt, pd = read_labelbox_export(...)``.
    """

    ground_truth: pl.DataFrame
    predictions: pl.DataFrame
    data_rows: pl.DataFrame
    excluded: pl.DataFrame
    rejects: pl.DataFrame
    mode: str
    project: str | None = None
    model_run: str | None = None
    n_multiple_labels: int = 0
    skipped: dict = field(default_factory=dict)

    def __iter__(self):
        return iter((self.ground_truth, self.predictions))


def read_labelbox_export(path, *, project: str | None = None, model_run: str | None = None,
                         label_selection: Literal["first", "latest", "benchmark", "consensus",
                                                  "error"] = "first",
                         role: C.Role = "ground_truth",
                         span_end: Literal["inclusive", "exclusive"] = "inclusive",
                         mask_root=None, uri_map=None,
                         mask_color: Literal["exact", "any"] = "exact",
                         on_invalid: Literal["raise", "drop"] = "raise",
                         chunk_lines: int = C.CHUNK_LINES // 10) -> LabelboxExport:
    """Read a Labelbox export (``export()`` / export v2): one data row per line.

    Parameters
    ----------
    path : path, open file, or an iterable of lines / dicts (a JSON array is read too).
    project : the project id (or name) whose labels to read. Required when the file holds
        labels of several projects; data rows without a label in it are excluded (P6).
    model_run : the model run id to read from ``experiments`` (model-run exports, P9).
        Required when the file holds several runs. A model-run export gives both sides:
        ``labels`` → ``ground_truth`` and ``predictions`` → ``predictions``.
        Which one the file is: ``project=`` → project labels; ``model_run=`` → the run; neither
        → a model-run export when the first data row has ``experiments``, else a project export.
    label_selection : which label to use when a data row has several (P8): "first" (list
        order; the default, with a warning counting the data rows concerned), "latest" (max
        ``label_details.updated_at``), "benchmark" (the benchmark label: the one other labels
        reference as ``benchmark_reference_label``), "consensus" (max
        ``performance_details.consensus_score``), "error" (fail).
    role : project exports only: which side the labels are ("ground_truth", default, or
        "predictions").
    span_end, mask_root, uri_map, mask_color, on_invalid : as in :func:`read_labelbox_ndjson`.
        Mask URLs in exports need an API key and expire: map them to local files.

    Returns
    -------
    :class:`LabelboxExport` — ``ground_truth``, ``predictions``, ``data_rows`` (media size),
    ``excluded`` (not labeled), ``rejects``; unpacks as ``gt, pd``.

    Examples
    --------
    >>> import polars_metrics as pm
    >>> line = ('{"data_row": {"id": "dr1"}, "media_attributes": {"height": 480, "width": 640},'
    ...         ' "projects": {"p1": {"labels": [{"id": "l1", "annotations": {"objects": [{'
    ...         '"feature_id": "f1", "name": "car", "annotation_kind": "ImageBoundingBox",'
    ...         ' "bounding_box": {"top": 20.0, "left": 10.0, "height": 40.0, "width": 30.0},'
    ...         ' "classifications": []}], "classifications": []}}]}}}')
    >>> exp = pm.read_labelbox_export([line])
    >>> exp.ground_truth.select("data_row", "feature", "bbox").rows()
    [('dr1', 'car', [10.0, 20.0, 40.0, 60.0])]
    >>> exp.data_rows.select("data_row", "height", "width").rows()
    [('dr1', 480, 640)]
    """
    C.check_choice("label_selection", label_selection, LABEL_SELECTIONS)
    C.check_choice("role", role, (s.PREDICTIONS, s.GROUND_TRUTH))
    C.check_choice("span_end", span_end, C.SPAN_ENDS)
    C.check_choice("mask_color", mask_color, C.MASK_COLORS)
    problems = C.Problems("export", on_invalid)
    ctx = _ExportContext(span_end=span_end, masks=M.MaskSource(mask_root, uri_map),
                         any_color=mask_color == "any", problems=problems, project=project,
                         model_run=model_run, selection=label_selection)
    for n, rec, err in C.iter_records(path):
        if err is not None:
            problems.bad(n, "line", err)
            continue
        _export_record(rec, n, ctx)
        if ctx.gt.n + ctx.pd.n >= chunk_lines:
            ctx.flush()
    ctx.flush()
    if ctx.n_multiple and label_selection == "first":
        warnings.warn(f"export: {ctx.n_multiple} data row(s) have several labels; the first of "
                      "each was used (label_selection='first'). Choose with label_selection="
                      "'latest' | 'benchmark' | 'consensus', or 'error'.",
                      PolarsMetricsWarning, stacklevel=2)
    problems.warn_skipped()
    gt = check_frame(C.placeholder_kind(R.concat_frames(ctx.gt_frames)), LABELBOX)
    pd = check_frame(C.placeholder_kind(R.concat_frames(ctx.pd_frames)), LABELBOX)
    if ctx.mode == "project" and role == s.PREDICTIONS:
        gt, pd = pd, gt
    return LabelboxExport(
        ground_truth=gt, predictions=pd,
        data_rows=pl.DataFrame(ctx.data_rows, schema=DATA_ROWS_SCHEMA, orient="row"),
        excluded=pl.DataFrame(ctx.excluded, schema=EXCLUDED_SCHEMA, orient="row"),
        rejects=problems.frame(), mode=ctx.mode or "project", project=ctx.chosen_project,
        model_run=ctx.chosen_run, n_multiple_labels=ctx.n_multiple,
        skipped=dict(problems.skipped))


@dataclass
class _ExportContext:
    span_end: str
    masks: M.MaskSource
    any_color: bool
    problems: C.Problems
    project: str | None
    model_run: str | None
    selection: str
    mode: str | None = None
    chosen_project: str | None = None
    chosen_run: str | None = None
    n_multiple: int = 0
    gt: R.RowBuffer = field(default_factory=R.RowBuffer)
    pd: R.RowBuffer = field(default_factory=R.RowBuffer)
    gt_frames: list = field(default_factory=list)
    pd_frames: list = field(default_factory=list)
    data_rows: list = field(default_factory=list)
    excluded: list = field(default_factory=list)

    def flush(self) -> None:
        for name in ("gt", "pd"):
            buf = getattr(self, name)
            if buf.n or not getattr(self, f"{name}_frames"):
                getattr(self, f"{name}_frames").append(buf.frame())
            setattr(self, name, R.RowBuffer())


def _export_record(rec: Any, n: int, ctx: _ExportContext) -> None:
    bad = ctx.problems.bad
    if not isinstance(rec, Mapping):
        bad(n, "line", f"expected a JSON object (one data row), got {type(rec).__name__}")
        return
    dr = rec.get("data_row")
    if not isinstance(dr, Mapping) or not isinstance(dr.get("id"), str):
        bad(n, "data_row.id", f"every export line needs data_row.id, got {dr!r}")
        return
    data_row = dr["id"]
    media = rec.get("media_attributes") or {}
    try:
        size = _check_data_row(dr, media)
    except R.RecordError as exc:
        bad(n, exc.field, exc.problem, data_row)
        return
    global_key = dr.get("global_key")
    if ctx.mode is None:
        ctx.mode = ("project" if ctx.project is not None else "model_run" if ctx.model_run is not None
                    else "model_run" if rec.get("experiments") else "project")
    try:
        if ctx.mode == "project":
            labels, preds, reason = _project_labels(rec, ctx), None, "not labeled in the project"
        else:
            labels, preds, reason = *_run_labels(rec, ctx), "not labeled in the model run"
    except R.RecordError as exc:
        bad(n, exc.field, exc.problem, data_row)
        return
    n_pred_labels = 0 if preds is None else len(preds)
    if labels is None or len(labels) == 0:
        try:
            n_pd_ann = sum(_count_annotations(p, f"predictions[{i}]") for i, p in enumerate(preds or []))
        except R.RecordError as exc:
            bad(n, exc.field, exc.problem, data_row)
            return
        ctx.excluded.append((data_row, global_key, reason if labels is None else
                             "not labeled (labels: [])", 0, n_pd_ann))
        ctx.data_rows.append(_data_row_entry(dr, media, size, False, 0, None, n))
        return
    try:
        label = _select_label(labels, ctx)
    except R.RecordError as exc:
        bad(n, exc.field, exc.problem, data_row)
        return
    if len(labels) > 1:
        ctx.n_multiple += 1
    common = dict(data_row=data_row, key_type="id", source_line=n, global_key=global_key)
    try:
        gt_rows = _label_rows(label, common, size, ctx)
        pd_rows = [] if preds is None else [r for p in preds for r in _label_rows(p, common, size, ctx)]
    except R.RecordError as exc:
        bad(n, exc.field, exc.problem, data_row)
        return
    ctx.data_rows.append(_data_row_entry(dr, media, size, True, len(labels), label.get("id"), n))
    _emit(ctx.gt, gt_rows, common, label.get("id"))
    if preds is not None:
        _emit(ctx.pd, pd_rows, common, preds[0].get("id") if n_pred_labels == 1 else None)


def _emit(buf: R.RowBuffer, rows: list[dict], common: dict, label_id) -> None:
    if not rows:  # labeled, nothing there: a placeholder row says the data row exists
        buf.add(**common, ident=None, kind=None, label_id=label_id)
        return
    for row in rows:
        row.setdefault("label_id", label_id)
        buf.add(**row)


def _check_data_row(dr: Mapping, media: Any) -> tuple[int | None, int | None]:
    """Check the fields of a line's ``data_row`` and ``media_attributes`` that the
    ``data_rows`` table holds; returns the image (height, width), None where not given."""
    for name in ("global_key", "external_id"):
        R.optional_text(dr.get(name), f"data_row.{name}")
    R.optional_text(R.mapping(media, "media_attributes").get("mime_type"), "media_attributes.mime_type")
    size = []
    for name in ("height", "width"):
        side = media.get(name)
        if side is not None:
            side = R.integer(side, f"media_attributes.{name}")
            if side < 0:
                raise R.RecordError(f"media_attributes.{name}", f"is negative, got {side}")
        size.append(side)
    return size[0], size[1]


def _data_row_entry(dr: Mapping, media: Mapping, size: tuple, labeled: bool, n_labels: int,
                    label_id, n: int):
    return (dr["id"], dr.get("global_key"), dr.get("external_id"), *size, media.get("mime_type"),
            labeled, n_labels, label_id, n)


def _count_annotations(label: Any, field: str) -> int:
    """The annotations of a label that is not read (a model run's predictions on a data row
    without ground truth), for the ``excluded`` table."""
    ann = R.mapping(R.mapping(label, field).get("annotations") or {}, f"{field}.annotations")
    if isinstance(ann.get("frames"), Mapping):
        frames = [R.mapping(f or {}, f"{field}.annotations.frames[{k!r}]") for k, f in ann["frames"].items()]
        return sum(len(_objects(f.get("objects"), f"{field}.annotations.frames.objects"))
                   + len(R.listed(f.get("classifications"), f"{field}.annotations.frames.classifications"))
                   for f in frames)
    return (len(R.listed(ann.get("objects"), f"{field}.annotations.objects"))
            + len(R.listed(ann.get("classifications"), f"{field}.annotations.classifications")))


def _objects(value: Any, field: str) -> list:
    """A frame's objects: a list, or an object keyed by feature id (video exports)."""
    return list(value.values()) if isinstance(value, Mapping) else R.listed(value, field)


def _project_labels(rec: Mapping, ctx: _ExportContext):
    projects = rec.get("projects")
    if not projects:
        return None
    if not isinstance(projects, Mapping):
        raise R.RecordError("projects", f"expected an object keyed by project id, got {projects!r}")
    if ctx.project is not None:
        proj = projects.get(ctx.project)
        if proj is None:  # allow the project's name
            proj = next((p for p in projects.values()
                         if isinstance(p, Mapping) and p.get("name") == ctx.project), None)
        ctx.chosen_project = ctx.project
    else:
        ids = list(projects)
        if len(ids) > 1 or (ctx.chosen_project is not None and ids[0] != ctx.chosen_project):
            seen = sorted(set(ids) | ({ctx.chosen_project} if ctx.chosen_project else set()))
            raise R.RecordError("projects", f"labels of several projects {seen}; choose one with "
                                "project=<id or name>")
        ctx.chosen_project = ids[0]
        proj = projects[ids[0]]
    if proj is None:
        return None
    labels = R.mapping(proj, f"projects[{ctx.chosen_project!r}]").get("labels")
    if labels is None:
        return None
    if not isinstance(labels, list):
        raise R.RecordError("projects.labels", f"expected a list of labels, got {labels!r}")
    return labels


def _run_labels(rec: Mapping, ctx: _ExportContext):
    experiments = rec.get("experiments")
    if not experiments:
        return None, []
    if not isinstance(experiments, Mapping):
        raise R.RecordError("experiments", f"expected an object keyed by model id, got {experiments!r}")
    runs = {}
    for model_id, model in experiments.items():
        model = R.mapping(model or {}, f"experiments[{model_id!r}]")
        for run_id, run in R.mapping(model.get("runs") or {}, f"experiments[{model_id!r}].runs").items():
            runs[run_id] = R.mapping(run, f"experiments[{model_id!r}].runs[{run_id!r}]")
    if ctx.model_run is not None:
        run = runs.get(ctx.model_run)
        ctx.chosen_run = ctx.model_run
    else:
        ids = list(runs)
        if len(ids) > 1 or (ids and ctx.chosen_run is not None and ids[0] != ctx.chosen_run):
            seen = sorted(set(ids) | ({ctx.chosen_run} if ctx.chosen_run else set()))
            raise R.RecordError("experiments", f"several model runs {seen}; choose one with "
                                "model_run=<run id>")
        if not ids:
            return None, []
        ctx.chosen_run = ids[0]
        run = runs[ids[0]]
    if run is None:
        return None, []
    labels, preds = run.get("labels"), run.get("predictions") or []
    if labels is not None and not isinstance(labels, list):
        raise R.RecordError("experiments.labels", f"expected a list of labels, got {labels!r}")
    if not isinstance(preds, list):
        raise R.RecordError("experiments.predictions", f"expected a list of labels, got {preds!r}")
    for i, pred in enumerate(preds):
        R.mapping(pred, f"experiments.predictions[{i}]")
    return labels, preds


def _benchmark_ref(label: Mapping):
    perf = label.get("performance_details") or {}
    return label.get("benchmark_reference_label", perf.get("benchmark_reference_label"))


def _select_label(labels: list, ctx: _ExportContext) -> Mapping:
    for i, lab in enumerate(labels):
        if not isinstance(lab, Mapping):
            raise R.RecordError(f"labels[{i}]", f"expected a label object, got {lab!r}")
    if len(labels) == 1:
        return labels[0]
    how = ctx.selection
    if how == "first":
        return labels[0]
    if how == "error":
        raise R.RecordError("labels", f"{len(labels)} labels on one data row; choose one with "
                            "label_selection='first' | 'latest' | 'benchmark' | 'consensus'")
    if how == "latest":
        def updated(i):
            value = (labels[i].get("label_details") or {}).get("updated_at")
            if not isinstance(value, str):
                raise R.RecordError(f"labels[{i}].label_details.updated_at",
                                    "missing: export with label_details to select the latest label")
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        return labels[max(range(len(labels)), key=updated)]
    if how == "consensus":
        def score(i):
            value = (labels[i].get("performance_details") or {}).get("consensus_score")
            if value is None:
                raise R.RecordError(f"labels[{i}].performance_details.consensus_score",
                                    "missing: export with performance_details to select by consensus")
            return R.number(value, "consensus_score")
        return labels[max(range(len(labels)), key=score)]
    refs = {_benchmark_ref(lab) for lab in labels} - {None}
    hit = [lab for lab in labels if lab.get("id") in refs]
    if len(hit) != 1:
        hit = [lab for lab in labels if _benchmark_ref(lab) is None] if refs else []
    if len(hit) != 1:
        raise R.RecordError("labels", "cannot tell the benchmark label: no label is referenced "
                            "by the others' benchmark_reference_label (export with "
                            "performance_details)")
    return hit[0]


EXPORT_GEOMETRY = ("bounding_box", "polygon", "line", "point", "composite_mask", "mask",
                   "conversational_location", "location")


def _label_rows(label: Mapping, common: dict, size, ctx: _ExportContext) -> list[dict]:
    ann = label.get("annotations")
    if ann is None:
        return []
    if not isinstance(ann, Mapping):
        raise R.RecordError("annotations", f"expected {{objects, classifications}}, got {ann!r}")
    rows: list[dict] = []
    lid = R.optional_text(label.get("id"), "label.id")
    if isinstance(ann.get("frames"), Mapping):  # video: frames → objects keyed by feature_id
        rows.extend(_frame_rows(ann["frames"], "frames", common, size, ctx))
    elif isinstance(ann.get("groups"), Mapping):  # DICOM: groups.<Axial|...>.frames
        for group, value in ann["groups"].items():
            frames = value.get("frames") if isinstance(value, Mapping) else None
            if not isinstance(frames, Mapping):
                raise R.RecordError(f"groups.{group}", f"expected {{\"frames\": {{...}}}}, got {value!r}")
            rows.extend(dict(r, group=str(group))
                        for r in _frame_rows(frames, f"groups.{group}.frames", common, size, ctx))
    else:
        for i, obj in enumerate(R.listed(ann.get("objects"), "objects")):
            rows.extend(_export_object(obj, f"objects[{i}]", common, size, ctx))
    for i, c in enumerate(R.listed(ann.get("classifications"), "classifications")):
        rows.append(_export_global_classification(c, f"classifications[{i}]", common))
    for r in rows:
        r["label_id"] = lid
    return rows


def _frame_rows(frames: Mapping, field: str, common: dict, size, ctx: _ExportContext) -> list[dict]:
    """Video / DICOM frames ``{"<frame>": {"objects": {feature_id: obj}, "classifications"}}``:
    one row per (frame, annotation), the frame number in ``frame``. Exports list every frame
    an annotation is on, so nothing is expanded here; a data row may hold at most
    ``MAX_FRAMES`` frames."""
    if len(frames) > R.MAX_FRAMES:
        raise R.RecordError(field, f"{len(frames):,} frames, more than the {R.MAX_FRAMES:,} one "
                            "data row may hold")
    numbered = []
    for key in frames:
        try:
            numbered.append((R.integer(int(str(key)), f"{field}[{key!r}]"), key))
        except ValueError:
            raise R.RecordError(f"{field}[{key!r}]", "frame keys are frame numbers") from None
    rows: list[dict] = []
    for frame_no, key in sorted(numbered):
        fr = frames[key] or {}
        if not isinstance(fr, Mapping):
            raise R.RecordError(f"{field}[{key}]", f"expected {{objects, classifications}}, got {fr!r}")
        for i, obj in enumerate(_objects(fr.get("objects"), f"{field}[{key}].objects")):
            rows.extend(dict(r, frame=frame_no)
                        for r in _export_object(obj, f"{field}[{key}].objects[{i}]", common, size, ctx))
        for i, c in enumerate(R.listed(fr.get("classifications"), f"{field}[{key}].classifications")):
            rows.append(dict(_export_global_classification(c, f"{field}[{key}].classifications[{i}]",
                                                           common), frame=frame_no))
    return rows


def _export_object(obj: Any, field: str, common: dict, size, ctx: _ExportContext) -> list[dict]:
    if not isinstance(obj, Mapping):
        raise R.RecordError(field, f"expected an object annotation, got {obj!r}")
    key = next((k for k in EXPORT_GEOMETRY if k in obj), None)
    kind_name = obj.get("annotation_kind", key)
    if key is None or (key == "location" and isinstance(obj["location"], Mapping)
                       and "groups" in obj["location"]):
        ctx.problems.skipped[f"{kind_name or 'unknown'} object"] += 1
        return []
    name = R.optional_text(obj.get("name"), f"{field}.name")
    schema_id = R.optional_text(obj.get("feature_schema_id"), f"{field}.feature_schema_id")
    if name is None and schema_id is None:
        raise R.RecordError(field, "an object needs 'name' or 'feature_schema_id'")
    f = f"{field}.{key}"
    feature_id = R.optional_text(obj.get("feature_id"), f"{field}.feature_id")
    row = dict(common, ident=feature_id or f"line:{common['source_line']}:{field}",
               name=name, schema_id=schema_id,
               conf=R.confidence(obj.get("confidence"), f"{field}.confidence"),
               subclasses=[R.subclass_export(c, f"{field}.classifications[{i}]")
                           for i, c in enumerate(R.listed(obj.get("classifications"),
                                                          f"{field}.classifications"))])
    value = obj[key]
    if key == "bounding_box":
        row.update(kind="box", bbox=R.box(value, f))
        if obj.get("page_number") is not None:
            row["page"] = R.integer(obj["page_number"], f"{field}.page_number")
    elif key == "polygon":
        ring = R.ring_without_closure(R.points(value, f, 3))
        if len(ring) < 3:
            raise R.RecordError(f, "a polygon needs at least 3 distinct vertices")
        row.update(kind="polygon", polygon=[ring])
    elif key == "line":
        row.update(kind="line", line=R.points(value, f, 2))
    elif key == "point":
        row.update(kind="point", point=R.point_xy(value, f))
    elif key in ("composite_mask", "mask"):
        if not isinstance(value, Mapping) or "url" not in value:
            raise R.RecordError(f, f"expected {{\"url\", \"color_rgb\"}}, got {value!r}")
        color = value.get("color_rgb") if key == "composite_mask" else None
        mask = ctx.masks.from_uri(value["url"], color, f,
                                  any_color=ctx.any_color or key == "mask")
        h, w = size
        if h is not None and w is not None and (mask["height"], mask["width"]) != (h, w):
            raise R.RecordError(f, f"mask is {mask['height']}×{mask['width']} (height×width) but "
                                f"media_attributes say the image is {h}×{w}")
        row.update(kind="mask", mask=mask)
    else:
        loc = R.mapping(value, f).get("location") if key == "conversational_location" else value
        if not isinstance(loc, Mapping) or "start" not in loc or "end" not in loc:
            raise R.RecordError(f, f"expected {{\"start\", \"end\"}}, got {value!r}")
        start, end = R.integer(loc["start"], f + ".start"), R.integer(loc["end"], f + ".end")
        if end < start or start < 0:
            raise R.RecordError(f, f"need 0 <= start <= end, got start={start}, end={end}")
        msg = (R.optional_text(value.get("message_id"), f"{f}.message_id")
               if key == "conversational_location"
               else R.optional_text(obj.get("message_id"), f"{field}.message_id"))
        row.update(kind="span", start=start, end=end + (ctx.span_end == "inclusive"),
                   span_end=ctx.span_end, message_id=msg)
    return [row]


def _export_global_classification(elem: Any, field: str, common: dict) -> dict:
    c = R.export_classification(elem, field)
    subs = [R.subclass_export(x, f"{field}.classifications[{i}]") for i, x in enumerate(c["nested"])]
    conf = c["confidence"]
    if c["kind"] == "checklist" and conf is None:
        known = [x for x in c["option_confidences"] if x is not None]
        conf = max(known) if known else None
    return dict(common, ident=c["feature_id"] or f"line:{common['source_line']}:{field}",
                name=c["question"], schema_id=c["schema_id"], kind=c["kind"], conf=conf,
                question=c["question"], answer=c["answer"], answers=c["answers"],
                answer_confidences=c["option_confidences"], subclasses=subs,
                message_id=c["message_id"])
