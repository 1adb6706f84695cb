"""``pm.read_labelbox_ndjson`` and ``pm.read_labelbox_export``: every field, round trips through
the SDK's own serializer, errors that name the line and the field, and the export's rules
(P1–P15 of LABELBOX_FORMATS.md)."""
from __future__ import annotations

import io
import json
import warnings

import numpy as np
import polars as pl
import pytest

import polars_metrics as pm

PNG_5x4 = ("iVBORw0KGgoAAAANSUhEUgAAAAUAAAAECAAAAABjWKqcAAAAF0lEQVR4nGNgYGBgYGBkYGRg+M/EgAAADUUBBAostmsAAAAASUVORK5CYII=")
DR = {"id": "cdatarow00000000000000001"}


def line(**fields) -> str:
    return json.dumps({"dataRow": DR, **fields})


def read(lines, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pm.PolarsMetricsWarning)
        return pm.read_labelbox_ndjson(lines, **kw)


def png_of(array: np.ndarray, mode="L") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array.astype(np.uint8), mode=None).save(buf, format="PNG")
    return buf.getvalue()


# --- import: each field -------------------------------------------------------------------------
def test_objects_every_kind():
    lines = [
        line(uuid="b", name="car", confidence=0.91, bbox={"top": 20, "left": 10, "height": 40, "width": 30},
             customMetrics=[{"name": "my_score", "value": 0.4}]),
        line(uuid="p", name="roof", polygon=[{"x": 0, "y": 0}, {"x": 10, "y": 0}, {"x": 10, "y": 10}, {"x": 0, "y": 0}]),
        line(uuid="o", name="roof", polygon=[{"x": 0, "y": 0}, {"x": 10, "y": 0}, {"x": 10, "y": 10}]),
        line(uuid="l", name="lane", line=[{"x": 0, "y": 0}, {"x": 10, "y": 5}, {"x": 20, "y": 5}]),
        line(uuid="n", name="nose", confidence=0.3, point={"x": 5.5, "y": 6.5}),
        line(uuid="m", name="road", mask={"png": PNG_5x4}),
        line(uuid="s", name="person", location={"start": 3, "end": 9}),
        line(uuid="c", name="person", location={"start": 0, "end": 4}, messageId="m-1"),
    ]
    f = read(lines)
    assert f["kind"].to_list() == ["box", "polygon", "polygon", "line", "point", "mask", "span", "span"]
    assert f["id"].to_list() == list("bpolnmsc")
    assert f["bbox"][0].to_list() == [10.0, 20.0, 40.0, 60.0]
    assert f["polygon"][1].to_list() == f["polygon"][2].to_list() == [[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]]
    assert f["line"][3].to_list() == [[0.0, 0.0], [10.0, 5.0], [20.0, 5.0]]
    assert f["point"][4].to_list() == [5.5, 6.5]
    dense = pm.mask_to_array(f["mask"][5])
    assert dense.shape == (4, 5) and dense.sum() == 6  # the test vector: a 3×2 block of 1s
    assert f.select("start", "end", "message_id", "span_end").rows()[6:] == [
        (3, 10, None, "inclusive"), (0, 5, "m-1", "inclusive")]
    assert f["confidence"].to_list()[:5] == [0.91, None, None, None, 0.3]
    assert f["custom_my_score"].to_list()[:2] == [0.4, None]
    assert f["feature"].to_list() == ["car", "roof", "roof", "lane", "nose", "road", "person", "person"]
    assert f["source_line"].to_list() == list(range(1, 9))
    assert f.schema["bbox"] == pm.BBOX_DTYPE and f.schema["polygon"] == pm.POLYGON_DTYPE
    assert f.schema["line"] == pm.LINE_DTYPE and f.schema["mask"] == pm.MASK_DTYPE
    exclusive = read(lines[6:7], span_end="exclusive")
    assert exclusive.select("end", "span_end").row(0) == (9, "exclusive")


def test_classifications_and_confidence_precedence():
    lines = [
        line(uuid="r", name="weather", confidence=0.5, answer={"name": "sunny", "confidence": 0.8}),
        line(uuid="r2", name="time", confidence=0.5, answer={"name": "day"}),
        line(uuid="c", name="tags", answer=[{"name": "indoor", "confidence": 0.2}, {"name": "night"}]),
        line(uuid="c2", name="tags2", answers=[{"name": "indoor"}]),
        line(uuid="t", name="caption", answer="a red car", confidence=0.4),
        line(uuid="s", schemaId="cschema000000000000000001", answer={"schemaId": "canswer00000000000000001"}),
    ]
    f = read(lines)
    assert f["kind"].to_list() == ["radio", "radio", "checklist", "checklist", "text", "radio"]
    assert f["question"].to_list() == ["weather", "time", "tags", "tags2", "caption", "cschema000000000000000001"]
    assert f["answer"].to_list() == ["sunny", "day", None, None, "a red car", "canswer00000000000000001"]
    assert f["answers"].to_list() == [None, None, ["indoor", "night"], ["indoor"], None, None]
    assert f["confidence"].to_list() == [0.8, 0.5, 0.2, None, 0.4, None]
    assert f["answer_confidences"][2].to_list() == [0.2, None]
    assert f["feature"].null_count() == f.height  # the engine derives classification features
    assert f.select("name", "schema_id").row(5) == (None, "cschema000000000000000001")


def test_nested_classifications_one_level_deep():
    rec = line(uuid="x", name="car", confidence=0.9, bbox={"top": 1, "left": 2, "height": 3, "width": 4},
               classifications=[
                   {"name": "quality", "answer": {"name": "good", "confidence": 0.7,
                                                  "classifications": [{"name": "note", "answer": "scratched"}]}},
                   {"name": "attrs", "answer": [{"name": "occluded", "confidence": 0.4}, {"name": "truncated"}]},
                   {"name": "note", "answer": "dented", "confidence": 0.2}])
    subs = read([rec])["subclasses"][0].to_list()
    assert [(d["question"], d["kind"], d["answer"], d["answers"], d["confidence"]) for d in subs] == [
        ("quality", "radio", "good", None, 0.7), ("attrs", "checklist", None, ["occluded", "truncated"], None),
        ("note", "text", "dented", None, 0.2)]
    assert json.loads(subs[0]["nested"]) == [{"name": "note", "answer": "scratched"}]


def test_global_key_data_rows_and_map():
    lines = [json.dumps({"dataRow": {"globalKey": "img-1.jpg"}, "name": "car", "point": {"x": 1, "y": 2}}),
             line(name="car", point={"x": 1, "y": 2})]
    f = read(lines)
    assert f.select("data_row", "data_row_key_type").rows() == [
        ("img-1.jpg", "global_key"), ("cdatarow00000000000000001", "id")]
    mapped = read(lines, global_key_map={"img-1.jpg": "cdatarow00000000000000009"})
    assert mapped.select("data_row", "data_row_key_type", "global_key").rows() == [
        ("cdatarow00000000000000009", "id", "img-1.jpg"), ("cdatarow00000000000000001", "id", None)]
    with pytest.raises(pm.FormatError, match="img-1.jpg"):
        read(lines, global_key_map={"other": "x"})


def test_sources_json_array_blank_lines_files_and_chunks(tmp_path):
    lines = [line(uuid=f"u{i}", name="car", bbox={"top": i, "left": 0, "height": 1, "width": 1}) for i in range(7)]
    one = read(lines)
    nd = tmp_path / "a.ndjson"
    nd.write_text("\n" + "\n\n".join(lines) + "\n\n")
    arr = tmp_path / "b.json"
    arr.write_text("  [" + ",".join(lines) + "]")
    from_file = read(str(nd))
    assert from_file.drop("source_line").equals(one.drop("source_line"))
    assert from_file["source_line"].to_list() == [2, 4, 6, 8, 10, 12, 14]  # blank lines count
    assert read(arr).equals(one)
    assert read(nd, chunk_lines=3).equals(from_file)
    assert read(io.StringIO("\n".join(lines))).equals(one)
    assert read([json.loads(x) for x in lines]).equals(one)
    assert read([]).height == 0 and read([]).schema == one.schema


def test_skipped_lines_are_counted():
    lines = [line(name="car", point={"x": 1, "y": 2}),
             json.dumps({"dataRow": DR, "metricValue": 0.5, "metricName": "x"}),
             line(name="rel", relationship={"source": "a", "target": "b", "type": "unidirectional"}),
             line(name="doc", textSelections=[{"tokenIds": ["t"], "groupId": "g", "page": 1}])]
    with pytest.warns(pm.PolarsMetricsWarning, match="skipped 3 .*metric \\(1\\)"):
        f = pm.read_labelbox_ndjson(lines)
    assert f.height == 1


# --- import: errors name the line and the field --------------------------------------------------
@pytest.mark.parametrize("bad, field", [
    ('{"dataRow": {"id": "d"}, "name": "car", "bbox": {"top": 1, "left": 1, "height": -2, "width": 1}}', "bbox"),
    ('{"dataRow": {"id": "d"}, "name": "car", "bbox": {"top": "x", "left": 1, "height": 2, "width": 1}}', "bbox.top"),
    ('{"dataRow": {"id": "d"}, "bbox": {"top": 1, "left": 1, "height": 2, "width": 1}}', "name"),
    ('{"dataRow": {"id": "d", "globalKey": "g"}, "name": "car", "point": {"x": 1, "y": 2}}', "dataRow"),
    ('{"dataRow": {"id": "d"}, "name": "car", "confidence": 1.5, "point": {"x": 1, "y": 2}}', "confidence"),
    ('{"dataRow": {"id": "d"}, "name": "car", "polygon": [{"x": 1, "y": 2}, {"x": 2, "y": 2}]}', "polygon"),
    ('{"dataRow": {"id": "d"}, "name": "car", "location": {"start": 5, "end": 2}}', "location"),
    ('{"dataRow": {"id": "d"}, "name": "car", "weird": 1}', "line"),
    ('{"dataRow": {"id": "d"}, "name": "q", "answer": 3}', "answer"),
    ('{"dataRow": {"id": "d"}, "name": "car", "point": {"x": 1, "y": 2}', "line"),
    ('{"dataRow": {"id": "d"}, "name": "m", "mask": {"png": "not a png"}}', "mask.png"),
])
def test_errors_name_line_and_field(bad, field):
    good = line(name="car", point={"x": 1, "y": 2})
    with pytest.raises(pm.FormatError, match=rf"predictions line 2: {field}"):
        read([good, bad])
    frame, rejects = read([good, bad, good], on_invalid="drop")
    assert frame["source_line"].to_list() == [1, 3]
    assert rejects.select("table", "row", "column").rows() == [("predictions", 2, field)]


def test_duplicate_uuids_are_reported_with_their_lines():
    lines = [line(uuid="a", name="car", point={"x": 1, "y": 2}),
             line(uuid="b", name="car", point={"x": 1, "y": 2}),
             line(uuid="a", name="car", point={"x": 3, "y": 4}),
             json.dumps({"dataRow": {"id": "other"}, "uuid": "a", "name": "car", "point": {"x": 1, "y": 2}})]
    with pytest.raises(pm.FormatError, match=r"uuid 'a' on lines \[1, 3\]"):
        read(lines)
    frame, rejects = read(lines, on_invalid="drop")
    assert frame["source_line"].to_list() == [1, 2, 4]
    assert rejects.select("row", "column").rows() == [(3, "uuid")]


# --- masks: never over the network ----------------------------------------------------------------
def composite(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[1:3, 1:3] = (255, 0, 0)
    rgb[0, 5] = (0, 0, 255)
    path = tmp_path / "composite.png"
    path.write_bytes(png_of(rgb))
    return path


def test_instance_uri_masks(tmp_path):
    path = composite(tmp_path)
    red = {"instanceURI": str(path), "colorRGB": [255, 0, 0]}
    f = read([line(name="road", mask=red),
              line(name="sky", mask={"instanceURI": path.as_uri(), "colorRGB": [0, 0, 255]})])
    assert pm.mask_to_array(f["mask"][0]).sum() == 4 and pm.mask_to_array(f["mask"][1]).sum() == 1
    url = "https://storage.example.com/masks/composite.png?token=x"
    web = line(name="road", mask={"instanceURI": url, "colorRGB": [255, 0, 0]})
    with pytest.raises(pm.FormatError, match="never fetched over the network"):
        read([web])
    assert read([web], mask_root=tmp_path)["mask"].equals(f["mask"][:1])
    assert read([web], uri_map={url: path})["mask"].equals(f["mask"][:1])
    no_color = line(name="road", mask={"instanceURI": str(path)})
    with pytest.raises(pm.FormatError, match="colorRGB"):
        read([no_color])
    assert pm.mask_to_array(read([no_color], mask_color="any")["mask"][0]).sum() == 5
    rle = line(name="road", mask={"size": [2, 2], "counts": [1, 2, 1]})
    with pytest.raises(pm.FormatError, match="allow_rle_masks"):
        read([rle])
    assert read([rle], allow_rle_masks=True)["mask"].to_list() == [{"height": 2, "width": 2, "counts": [1, 2, 1]}]


# --- round trip through the SDK's own serializer ---------------------------------------------------
def test_round_trip_from_the_sdk_serializer():
    import labelbox.data.annotation_types as lb
    from labelbox.data.annotation_types.data import GenericDataRowData, MaskData
    from labelbox.data.serialization import NDJsonConverter

    mask = np.zeros((6, 7), np.uint8)
    mask[1:4, 2:6] = 1
    sub = [lb.ClassificationAnnotation(name="quality", value=lb.Radio(answer=lb.ClassificationAnswer(name="good"))),
           lb.ClassificationAnnotation(name="attrs", value=lb.Checklist(answer=[lb.ClassificationAnswer(name="occluded")])),
           lb.ClassificationAnnotation(name="note", value=lb.Text(answer="x"))]
    P = lb.Point
    anns = [
        lb.ObjectAnnotation(name="car", confidence=0.7, value=lb.Rectangle(start=P(x=10, y=20), end=P(x=40, y=60)),
                            classifications=sub, custom_metrics=[{"name": "m", "value": 0.25}]),
        lb.ObjectAnnotation(name="roof", value=lb.Polygon(points=[P(x=0, y=0), P(x=10, y=0), P(x=10, y=10)])),
        lb.ObjectAnnotation(name="lane", value=lb.Line(points=[P(x=0, y=0), P(x=10, y=5)])),
        lb.ObjectAnnotation(name="nose", confidence=0.2, value=P(x=5.5, y=6.5)),
        lb.ObjectAnnotation(name="road", value=lb.Mask(mask=MaskData.from_2D_arr(mask), color=(1, 1, 1))),
        lb.ObjectAnnotation(name="person", value=lb.TextEntity(start=3, end=9)),
        lb.ObjectAnnotation(name="person", value=lb.ConversationEntity(start=1, end=2, message_id="m1")),
        lb.ClassificationAnnotation(name="weather", value=lb.Radio(answer=lb.ClassificationAnswer(name="sunny", confidence=0.6))),
        lb.ClassificationAnnotation(name="tags", value=lb.Checklist(answer=[
            lb.ClassificationAnswer(name="indoor", confidence=0.3), lb.ClassificationAnswer(name="night", confidence=0.9)])),
        lb.ClassificationAnnotation(name="caption", value=lb.Text(answer="a red car", confidence=0.5)),
    ]
    label = lb.Label(data=GenericDataRowData(global_key="img-1.jpg"), annotations=anns)
    lines = [json.dumps(d) for d in NDJsonConverter.serialize([label])]  # through JSON text
    f = read(lines)
    assert f["kind"].to_list() == ["box", "polygon", "line", "point", "mask", "span", "span", "radio",
                                   "checklist", "text"]
    assert f.select("data_row", "data_row_key_type").unique().rows() == [("img-1.jpg", "global_key")]
    assert f["id"].to_list() == [str(a._uuid) for a in anns]
    assert f["bbox"][0].to_list() == [10.0, 20.0, 40.0, 60.0]
    assert f["polygon"][1].to_list() == [[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]]
    assert f["line"][2].to_list() == [[0.0, 0.0], [10.0, 5.0]] and f["point"][3].to_list() == [5.5, 6.5]
    assert np.array_equal(pm.mask_to_array(f["mask"][4]), mask.astype(bool))
    assert f.select("start", "end", "message_id").rows()[5:7] == [(3, 10, None), (1, 3, "m1")]
    assert f["confidence"].to_list() == [0.7, None, None, 0.2, None, None, None, 0.6, 0.9, 0.5]
    assert f["answers"][8].to_list() == ["indoor", "night"]
    assert f["answer_confidences"][8].to_list() == [0.3, 0.9]
    assert [(d["question"], d["kind"], d["answer"], d["answers"]) for d in f["subclasses"][0].to_list()] == [
        ("quality", "radio", "good", None), ("attrs", "checklist", None, ["occluded"]), ("note", "text", "x", None)]
    assert f["custom_m"][0] == 0.25


def test_evaluate_runs_on_mixed_kind_frames():
    lines = [line(uuid="b", name="car", bbox={"top": 0, "left": 0, "height": 10, "width": 10}),
             line(uuid="p", name="roof", polygon=[{"x": 0, "y": 0}, {"x": 10, "y": 0}, {"x": 10, "y": 10}]),
             line(uuid="n", name="nose", point={"x": 5.5, "y": 6.5}),
             line(uuid="l", name="lane", line=[{"x": 0, "y": 0}, {"x": 10, "y": 5}]),
             line(uuid="m", name="road", mask={"png": PNG_5x4}),
             line(uuid="s", name="person", location={"start": 3, "end": 9}),
             line(uuid="r", name="weather", answer={"name": "sunny"}),
             line(uuid="c", name="tags", answer=[{"name": "indoor"}]),
             line(uuid="t", name="caption", answer="x")]
    gt = read(lines, role="ground_truth")
    pd = read(lines)
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.0], iou_thresholds=[0.5])
    assert ev.cube["tp"].sum() == 9 and ev.cube["fp"].sum() == 0 and ev.cube["fn"].sum() == 0


# --- export ---------------------------------------------------------------------------------------
def obj(fid, name, kind, **geo):
    return {"feature_id": fid, "feature_schema_id": "cschema" + fid, "name": name, "value": name.lower(),
            "annotation_kind": kind, "classifications": [], **geo}


def label(lid, objects=(), classifications=(), **extra):
    return {"id": lid, "annotations": {"objects": list(objects), "classifications": list(classifications),
                                       "relationships": []}, **extra}


def export_line(dr, labels=None, media=None, projects=None, experiments=None):
    rec = {"data_row": {"id": dr, "global_key": f"{dr}.jpg"}}
    if media:
        rec["media_attributes"] = media
    if projects is not None:
        rec["projects"] = projects
    elif labels is not None:
        rec["projects"] = {"p1": {"name": "demo", "labels": labels}}
    if experiments is not None:
        rec["experiments"] = experiments
    return json.dumps(rec)


BOX = {"top": 20.0, "left": 10.0, "height": 40.0, "width": 30.0}


def test_project_export():
    radio = {"feature_id": "r", "feature_schema_id": "s", "name": "weather", "value": "weather",
             "radio_answer": {"feature_id": "a", "feature_schema_id": "t", "name": "sunny", "value": "sunny",
                              "classifications": []}}
    check = {"feature_id": "c", "name": "tags", "checklist_answers": [{"feature_id": "o", "name": "indoor"}]}
    text = {"feature_id": "x", "name": "caption", "text_answer": {"content": "a red car"}}
    car = obj("f1", "car", "ImageBoundingBox", bounding_box=BOX, classifications=[radio])
    lines = [
        export_line("d1", [label("l1", [car,
                                        obj("f2", "roof", "ImagePolygon", polygon=[{"x": 0.0, "y": 0.0}, {"x": 4.0, "y": 0.0},
                                                                                  {"x": 4.0, "y": 4.0}, {"x": 0.0, "y": 0.0}]),
                                        obj("f3", "lane", "ImagePolyline", line=[{"x": 0.0, "y": 0.0}, {"x": 1.0, "y": 1.0}]),
                                        obj("f4", "nose", "ImagePoint", point={"x": 1.0, "y": 2.0}),
                                        obj("f5", "person", "TextEntity", location={"start": 112, "end": 128, "token": "research suggests"}),
                                        obj("f6", "person", "ConversationalTextEntity",
                                            conversational_location={"message_id": "m", "location": {"start": 0, "end": 3}}),
                                        obj("f7", "cube", "Cuboid", cuboid={})],
                                 [radio, check, text])],
                    media={"height": 480, "width": 640, "mime_type": "image/jpeg"}),
        export_line("d2", [label("l2")]),            # labeled, nothing there
        export_line("d3", []),                        # labels: [] → not labeled
        export_line("d4", projects={}),               # not in any project
    ]
    with pytest.warns(pm.PolarsMetricsWarning, match="Cuboid"):
        exp = pm.read_labelbox_export(lines)
    gt, pd = exp
    assert exp.mode == "project" and exp.project == "p1" and pd.height == 0
    assert gt.filter(pl.col("data_row") == "d1")["kind"].to_list() == [
        "box", "polygon", "line", "point", "span", "span", "radio", "checklist", "text"]
    d1 = gt.filter(pl.col("data_row") == "d1")
    assert d1["bbox"][0].to_list() == [10.0, 20.0, 40.0, 60.0]
    assert d1["polygon"][1].to_list() == [[[0.0, 0.0], [4.0, 0.0], [4.0, 4.0]]]  # closing vertex dropped
    assert d1.select("start", "end").row(4) == (112, 129)                       # 17 characters, half-open
    assert d1.select("message_id").row(5) == ("m",)
    assert d1["subclasses"][0].to_list()[0]["answer"] == "sunny"
    assert d1.select("question", "answer").row(6) == ("weather", "sunny")
    assert d1["answers"][7].to_list() == ["indoor"] and d1["answer"][8] == "a red car"
    assert d1["feature"][0] == "car" and d1["schema_id"][0] == "cschemaf1" and d1["global_key"][0] == "d1.jpg"
    assert d1["label_id"].unique().to_list() == ["l1"]
    placeholder = gt.filter(pl.col("data_row") == "d2")
    assert placeholder.height == 1 and placeholder["feature"][0] is None and placeholder["bbox"][0] is None
    assert placeholder["kind"][0] == "span"  # the most common kind (two spans): the engine needs one
    assert exp.excluded.select("data_row", "reason").rows() == [
        ("d3", "not labeled (labels: [])"), ("d4", "not labeled in the project")]
    assert exp.data_rows.select("data_row", "height", "width", "labeled").rows() == [
        ("d1", 480, 640, True), ("d2", None, None, True), ("d3", None, None, False), ("d4", None, None, False)]
    # the placeholder makes d2 a counted data row with no ground truth (every prediction a FP)
    pd_frame = pl.DataFrame({"data_row": ["d2"], "feature": ["car"], "bbox": [[0.0, 0, 1, 1]]},
                            schema_overrides={"bbox": pm.BBOX_DTYPE})
    cm = pm.labelbox_sdk.confusion_matrix(gt.filter(pl.col("data_row") == "d2"), pd_frame)
    assert cm.rows() == [("d2", 0, 1, 0, 0)]


def test_several_projects_need_a_choice():
    two = {"p1": {"name": "a", "labels": [label("l1", [obj("f", "car", "ImageBoundingBox", bounding_box=BOX)])]},
           "p2": {"name": "b", "labels": [label("l2")]}}
    lines = [export_line("d1", projects=two)]
    with pytest.raises(pm.FormatError, match="project="):
        pm.read_labelbox_export(lines)
    assert pm.read_labelbox_export(lines, project="p1").ground_truth["feature"].to_list() == ["car"]
    assert pm.read_labelbox_export(lines, project="b").ground_truth["feature"].to_list() == [None]


def test_model_run_export():
    run = {"labels": [label("l1", [obj("g", "car", "ImageBoundingBox", bounding_box=BOX)])],
           "predictions": [label("p1", [dict(obj("q", "car", "ImageBoundingBox", bounding_box=BOX), confidence=0.8)])]}
    lines = [export_line("d1", experiments={"m1": {"runs": {"r1": run}}}, media={"height": 480, "width": 640}),
             export_line("d2", experiments={"m1": {"runs": {"r1": {"labels": [], "predictions": run["predictions"]}}}})]
    exp = pm.read_labelbox_export(lines)
    gt, pd = exp
    assert exp.mode == "model_run" and exp.model_run == "r1"
    assert gt.select("data_row", "id").rows() == [("d1", "g")]
    assert pd.select("data_row", "id", "confidence").rows() == [("d1", "q", 0.8)]
    assert exp.excluded.select("data_row", "n_predictions").rows() == [("d2", 1)]
    ev = pm.evaluate(gt, pd, confidence_thresholds=[0.5], iou_thresholds=[0.5])
    assert ev.cube.select("tp", "fp", "fn").row(0) == (1, 0, 0)
    two_runs = [export_line("d1", experiments={"m1": {"runs": {"r1": run, "r2": run}}})]
    with pytest.raises(pm.FormatError, match="model_run="):
        pm.read_labelbox_export(two_runs)
    assert pm.read_labelbox_export(two_runs, model_run="r2").predictions.height == 1


def test_label_selection():
    def lab(lid, name, updated, score=None, ref=None):
        perf = {"consensus_score": score} if score is not None else {}
        if ref:
            perf["benchmark_reference_label"] = ref
        return label(lid, [obj("f" + lid, name, "ImageBoundingBox", bounding_box=BOX)],
                     label_details={"updated_at": updated}, performance_details=perf)
    labels = [lab("a", "first", "2024-01-01T00:00:00+00:00", 0.2, ref="b"),
              lab("b", "bench", "2024-01-02T00:00:00+00:00", 0.9),
              lab("c", "late", "2024-03-01T00:00:00Z", 0.5, ref="b")]
    lines = [export_line("d1", labels)]
    with pytest.warns(pm.PolarsMetricsWarning, match="1 data row"):
        assert pm.read_labelbox_export(lines).ground_truth["feature"].to_list() == ["first"]
    for how, name in [("latest", "late"), ("consensus", "bench"), ("benchmark", "bench")]:
        assert pm.read_labelbox_export(lines, label_selection=how).ground_truth["feature"].to_list() == [name]
    with pytest.raises(pm.FormatError, match="3 labels"):
        pm.read_labelbox_export(lines, label_selection="error")
    with pytest.raises(ValueError, match="label_selection"):
        pm.read_labelbox_export(lines, label_selection="newest")


def test_export_masks_and_video(tmp_path):
    path = composite(tmp_path)
    url = "https://api.labelbox.com/masks/abc"
    m = obj("m", "road", "ImageSegmentationMask", composite_mask={"url": url, "color_rgb": [255, 0, 0]})
    lines = [export_line("d1", [label("l", [m])], media={"height": 4, "width": 6})]
    with pytest.raises(pm.FormatError, match="never fetched"):
        pm.read_labelbox_export(lines)
    gt = pm.read_labelbox_export(lines, uri_map={url: str(path)}).ground_truth
    assert pm.mask_to_array(gt["mask"][0]).sum() == 4
    wrong = [export_line("d1", [label("l", [m])], media={"height": 5, "width": 6})]
    with pytest.raises(pm.FormatError, match="media_attributes"):
        pm.read_labelbox_export(wrong, uri_map={url: str(path)})
    video = {"id": "v", "label_kind": "Video", "annotations": {
        "frames": {"3": {"objects": {"f1": obj("f1", "car", "VideoBoundingBox", bounding_box=BOX)}, "classifications": []},
                   "1": {"objects": {"f1": obj("f1", "car", "VideoBoundingBox", bounding_box=BOX)}, "classifications": []}},
        "segments": {"f1": [[1, 3]]}, "classifications": []}}
    gt = pm.read_labelbox_export([export_line("v1", [video])]).ground_truth
    assert gt.select("frame", "id").rows() == [(1, "f1"), (3, "f1")]


def test_export_errors_name_the_line():
    bad = export_line("d2", [label("l", [obj("f", "car", "ImageBoundingBox", bounding_box={"top": 1})])])
    lines = [export_line("d1", [label("l1")]), bad]
    with pytest.raises(pm.FormatError, match=r"export line 2: objects\[0\]\.bounding_box"):
        pm.read_labelbox_export(lines)
    exp = pm.read_labelbox_export(lines, on_invalid="drop")
    assert exp.rejects.select("row", "data_row").rows() == [(2, "d2")]
    assert exp.ground_truth["data_row"].to_list() == ["d1"]


# --- issue 10: every input line accounted for ----------------------------------------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-3, 12), st.floats(allow_nan=False),
                       st.sampled_from(["", "x", "car", "0"]))
_JSON = st.recursive(_JSON_LEAF, lambda c: st.one_of(st.lists(c, max_size=3),
                                                     st.dictionaries(st.sampled_from(["x", "y", "name", "start", "end", "top"]), c, max_size=3)),
                     max_leaves=6)
_BOX = st.fixed_dictionaries({"top": st.integers(0, 5), "left": st.integers(0, 5),
                              "height": st.integers(-1, 5), "width": st.integers(0, 5)})
_ANNOTATION = st.one_of(
    st.fixed_dictionaries({"bbox": st.one_of(_BOX, _JSON)}),
    st.fixed_dictionaries({"point": st.one_of(st.fixed_dictionaries({"x": st.integers(0, 9), "y": st.integers(0, 9)}), _JSON)}),
    st.fixed_dictionaries({"location": st.one_of(st.fixed_dictionaries({"start": st.integers(-1, 5), "end": st.integers(0, 9)}), _JSON)}),
    st.fixed_dictionaries({"answer": st.one_of(st.fixed_dictionaries({"name": st.sampled_from(["a", "b"])}), st.just("free text"),
                                               st.lists(st.fixed_dictionaries({"name": st.sampled_from(["a", "b", "c"])}), max_size=3), _JSON)},
                          optional={"frames": st.lists(st.fixed_dictionaries({"start": st.integers(-1, 4), "end": st.integers(-1, 6)}), max_size=2)}),
    st.fixed_dictionaries({"answer": st.fixed_dictionaries({"name": st.just("a")}),
                           "frames": st.lists(st.fixed_dictionaries({"start": st.integers(0, 4), "end": st.integers(0, 4)}), max_size=2)}),
    st.fixed_dictionaries({"answers": st.lists(st.one_of(st.fixed_dictionaries({"name": st.just("a")}), _JSON), max_size=2)}),
    st.fixed_dictionaries({"segments": st.lists(st.fixed_dictionaries({"keyframes": st.lists(
        st.fixed_dictionaries({"frame": st.integers(0, 3), "bbox": _BOX}), max_size=2)}), max_size=2)}),
    st.fixed_dictionaries({"metricValue": st.floats(0, 1)}),
    st.fixed_dictionaries({"relationship": _JSON}),
    st.fixed_dictionaries({"textSelections": _JSON}),
    st.dictionaries(st.sampled_from(["foo", "bar"]), _JSON, max_size=2),
)
_RECORD = st.builds(
    lambda dr, name, uuid, conf, ann: {k: v for k, v in {"dataRow": dr, "name": name, "uuid": uuid,
                                                         "confidence": conf, **ann}.items()
                                       if v is not None},
    # mostly valid envelopes, so that the annotation keys decide
    st.sampled_from([{"id": "d1"}, {"id": "d2"}, {"globalKey": "g"}, {"id": "d1"}, {"id": "d2"},
                     {}, {"id": "d1", "globalKey": "g"}, 7]),
    st.sampled_from(["car", "car", "car", None, 2]),
    st.one_of(st.none(), st.sampled_from(["u1", "u2", "u3"])),
    st.one_of(st.none(), st.floats(-0.5, 1.5), st.just(float("nan"))),
    _ANNOTATION)
_LINE = st.one_of(_RECORD.map(lambda r: json.dumps(r)), st.just("   "), st.just("{not json"),
                  st.just("[1, 2"), _JSON.map(json.dumps), st.just('{"dataRow": {"id": "d1"}, "name": "n", "bbox": {"top": 1e999, "left": 0, "height": 1, "width": 1}}'))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_LINE, min_size=1, max_size=12))
def test_every_ndjson_line_is_a_row_a_reject_or_a_counted_skip(lines):
    """lines in = lines with rows out + rejected lines + skipped non-annotation lines; no line
    is in two of them and none is lost (issue 10, item 3)."""
    text = "\n".join(lines)
    if text.lstrip().startswith("["):  # a JSON array file is one record: not this property
        text = "\n" + text.replace("[", "{", 1)
    nonblank = [i for i, ln in enumerate(text.split("\n"), start=1) if ln.strip()]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame, rejects = pm.read_labelbox_ndjson(io.StringIO(text), on_invalid="drop")
    skipped = sum(int(str(w.message).split("skipped ")[1].split(" ")[0]) for w in caught
                  if "the metrics cannot use" in str(w.message))
    with_rows = set(frame["source_line"].to_list())
    rejected = set(rejects["row"].to_list())
    assert not with_rows & rejected
    assert with_rows | rejected <= set(nonblank)
    assert len(with_rows) + len(rejected) + skipped == len(nonblank)


def test_frame_ranges_are_bounded_checked_and_not_dropped():
    ok = line(name="weather", answer={"name": "sunny"}, frames=[{"start": 2, "end": 4}, {"start": 3, "end": 5}])
    assert read([ok])["frame"].to_list() == [2, 3, 4, 5]  # inclusive, each frame once
    huge = line(name="weather", answer={"name": "sunny"}, frames=[{"start": 0, "end": 10**9}])
    with pytest.raises(pm.FormatError, match=r"line 1: frames: .*1,000,000,001 frames.*100,000"):
        read([huge])
    for frames, what in (([{"start": 5, "end": 2}], "start <= end"), ([7], "start"),
                         ([{"start": 0, "end": float("inf")}], "integer"),
                         ([], "non-empty")):
        with pytest.raises(pm.FormatError, match=what):
            read([json.dumps({"dataRow": DR, "name": "w", "answer": "t", "frames": frames})
                  .replace("Infinity", "1e999")])
    for segs in ([], [{"keyframes": []}]):
        with pytest.raises(pm.FormatError, match="segment|keyframes"):
            read([line(name="car", segments=segs)])


def test_unreadable_bytes_and_deep_nesting_are_rejects_not_crashes():
    lines = [b"\xff\xfe{", "[" * 100_000 + "]" * 100_000, line(name="car", bbox={"top": 0, "left": 0, "height": 1, "width": 1})]
    frame, rejects = read(lines, on_invalid="drop")
    assert frame["source_line"].to_list() == [3]
    assert rejects["row"].to_list() == [1, 2]
    assert "UTF-8" in rejects["reason"][0]


# --- issue 10: read_labelbox_export reads every data type --------------------------------------
_RADIO = {"feature_id": "c1", "feature_schema_id": "s1", "name": "weather",
          "radio_answer": {"feature_id": "a1", "name": "sunny", "classifications": []}}
_CHECK = {"feature_id": "c2", "name": "tags", "checklist_answers": [{"feature_id": "a2", "name": "indoor"},
                                                                    {"feature_id": "a3", "name": "night"}]}
_TEXT = {"feature_id": "c3", "name": "caption", "text_answer": {"content": "a red car"}}


def _export_line(dr, annotations, label_kind="Default"):
    return json.dumps({"data_row": {"id": dr}, "projects": {"p1": {"labels": [
        {"label_kind": label_kind, "id": f"l-{dr}", "annotations": annotations}]}}})


def _rows(frame, *cols):
    return frame.select(*cols).rows()


@pytest.mark.parametrize("data_type", ["Audio", "HTML", "JSON", "Text", "Conversational"])
def test_export_classification_only_data_types(data_type):
    exp = pm.read_labelbox_export([_export_line("d", {"objects": [], "classifications": [_RADIO, _CHECK, _TEXT],
                                                      "relationships": []}, data_type)])
    g = exp.ground_truth
    assert _rows(g, "kind", "question", "answer", "answers", "id") == [
        ("radio", "weather", "sunny", None, "c1"), ("checklist", "tags", None, ["indoor", "night"], "c2"),
        ("text", "caption", "a red car", None, "c3")]
    ev = pm.evaluate(g, g, confidence_thresholds=[0.5], iou_thresholds=[0.5])
    # hand count: sunny, indoor, night and the caption all agree with themselves
    assert _rows(ev.cube.sort("feature"), "feature", "tp", "fp", "fn") == [
        ("caption", 1, 0, 0), ("indoor", 1, 0, 0), ("night", 1, 0, 0), ("sunny", 1, 0, 0)]


def test_export_video_frames_and_global_classifications():
    video = {"frames": {
        "2": {"objects": {"o1": {"feature_id": "o1", "name": "car", "annotation_kind": "VideoBoundingBox",
                                 "bounding_box": {"top": 0, "left": 0, "height": 2, "width": 2}, "classifications": []}},
              "classifications": [dict(_RADIO, feature_id="f1")]},
        "10": {"objects": {}, "classifications": [dict(_RADIO, feature_id="f1")]},
        "1": {"objects": {}, "classifications": []}},
        "segments": {"o1": [[2, 2]]}, "classifications": [_CHECK]}
    g = pm.read_labelbox_export([_export_line("v", video, "Video")]).ground_truth
    assert _rows(g, "kind", "frame", "id") == [("box", 2, "o1"), ("radio", 2, "f1"), ("radio", 10, "f1"),
                                              ("checklist", None, "c2")]
    # per frame: key (data_row, frame) on the frame rows; per video: the global rows
    per_frame = g.filter(pl.col("frame").is_not_null())
    ev = pm.evaluate(per_frame, per_frame, data_row=["data_row", "frame"],
                     confidence_thresholds=[0.5], iou_thresholds=[0.5])
    assert ev.data_rows.select("data_row", "frame").unique().sort("frame").rows() == [("v", 2), ("v", 10)]
    per_video = g.filter(pl.col("frame").is_null())
    ev = pm.evaluate(per_video, per_video, confidence_thresholds=[0.5], iou_thresholds=[0.5])
    assert _rows(ev.cube.sort("feature"), "feature", "tp") == [("indoor", 1), ("night", 1)]


def test_export_document_pages_conversation_messages_and_dicom_groups():
    doc = {"objects": [{"feature_id": "b1", "name": "table", "annotation_kind": "DocumentBoundingBox",
                        "bounding_box": {"top": 1, "left": 1, "height": 2, "width": 2}, "page_number": 2,
                        "page_dimensions": {"height": 792, "width": 612}, "classifications": []}],
           "classifications": [_RADIO]}
    conv = {"objects": [{"feature_id": "e1", "name": "person", "annotation_kind": "ConversationalTextEntity",
                         "conversational_location": {"message_id": "m1", "location": {"start": 0, "end": 3}},
                         "classifications": []}],
            "classifications": [{"feature_id": "c9", "name": "intent", "message_id": "m2",
                                 "conversational_radio_answer": {"name": "buy"}}]}
    dicom = {"groups": {"Axial": {"frames": {"3": {"objects": {}, "classifications": [_RADIO]}}},
                        "Coronal": {"frames": {"1": {"objects": {}, "classifications": [_TEXT]}}}},
             "classifications": [_CHECK]}
    exp = pm.read_labelbox_export([_export_line("doc", doc), _export_line("conv", conv),
                                   _export_line("dicom", dicom, "DICOM")])
    g = exp.ground_truth
    assert _rows(g.filter(data_row="doc"), "kind", "bbox", "page") == [("box", [1.0, 1.0, 3.0, 3.0], 2), ("radio", None, None)]
    assert _rows(g.filter(data_row="conv"), "kind", "start", "end", "message_id", "answer") == [
        ("span", 0, 4, "m1", None), ("radio", None, None, "m2", "buy")]
    assert _rows(g.filter(data_row="dicom"), "kind", "group", "frame") == [
        ("radio", "Axial", 3), ("text", "Coronal", 1), ("checklist", None, None)]


def test_export_bad_frame_keys_are_rejects():
    video = {"frames": {"one": {"objects": {}, "classifications": [_RADIO]}}}
    exp = pm.read_labelbox_export([_export_line("v", video, "Video")], on_invalid="drop")
    assert _rows(exp.rejects, "row", "column") == [(1, "frames['one']")]


def test_media_attributes_are_checked_not_truncated_or_stringified():
    """An image size of 640.5 was truncated to 640 and a numeric mime type turned into "5",
    silently; an infinite size raised OverflowError. Now each is the line's error naming the
    field, or a reject; an integral float (640.0) still reads as 640."""
    def exported(**media):
        return [export_line("d1", [label("l1")], media={"height": 480, "width": 640, **media})]

    assert pm.read_labelbox_export(exported(width=640.0)).data_rows["width"].to_list() == [640]
    for media, field, problem in [({"width": 640.5}, "media_attributes.width", "expected an integer"),
                                  ({"width": float("inf")}, "media_attributes.width", "expected an integer"),
                                  ({"height": -1}, "media_attributes.height", "is negative"),
                                  ({"mime_type": 5}, "media_attributes.mime_type", "expected a string")]:
        with pytest.raises(pm.FormatError, match=f"export line 1: {field}: {problem}"):
            pm.read_labelbox_export(exported(**media))
        exp = pm.read_labelbox_export(exported(**media), on_invalid="drop")
        assert exp.rejects.select("row", "column").rows() == [(1, field)]
        assert exp.data_rows.height == 0
