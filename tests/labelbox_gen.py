"""Random data rows as Labelbox SDK annotation objects, for the differential tests.

The same objects feed the SDK's metric functions and, serialized by the SDK's own
``NDJsonConverter.serialize``, our ``read_labelbox_ndjson``: the comparison covers the reader
and ``pm.labelbox_sdk`` together.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl
from labelbox.data.annotation_types import (  # noqa: E402
    Checklist,
    ClassificationAnnotation,
    ClassificationAnswer,
    Label,
    Line,
    Mask,
    ObjectAnnotation,
    Point,
    Polygon,
    Radio,
    Rectangle,
    Text,
    TextEntity,
)
from labelbox.data.annotation_types.data import GenericDataRowData, MaskData  # noqa: E402
from labelbox.data.metrics import (  # noqa: E402
    confusion_matrix_metric,
    feature_confusion_matrix_metric,
    feature_miou_metric,
    miou_metric,
)
from labelbox.data.serialization import NDJsonConverter  # noqa: E402
from shapely.geometry import Polygon as ShapelyPolygon

import polars_metrics as pm  # noqa: E402

OBJECT_KINDS = ("box", "polygon", "point", "line", "mask", "span")
CLASSIFICATION_KINDS = ("radio", "checklist", "text")
MASK_HW = (20, 24)


# --- geometry --------------------------------------------------------------------------------------
def _box(rng, like=None):
    if like is not None and rng.random() < 0.7:
        x0, y0, x1, y1 = like
        dx, dy = rng.integers(-3, 4, 2) / 2
        dw, dh = rng.integers(-2, 3, 2) / 2
        return (x0 + dx, y0 + dy, max(x0 + dx + 0.5, x1 + dx + dw), max(y0 + dy + 0.5, y1 + dy + dh))
    x0, y0 = rng.integers(0, 30, 2) / 2
    w, h = rng.integers(1, 16, 2) / 2
    return (x0, y0, x0 + w, y0 + h)


def _polygon(rng, like=None):
    if like is not None and rng.random() < 0.7:
        pts = [tuple(map(float, p)) for p in np.asarray(like) + rng.normal(0, 0.8, (len(like), 2))]
        return pts if ShapelyPolygon(pts).is_valid else list(like)
    while True:  # a star polygon around c; valid (simple) ones only: the SDK and we repair differently
        c = rng.uniform(0, 20, 2)
        r = rng.uniform(2, 7)
        k = int(rng.integers(3, 8))
        ang = np.sort(rng.uniform(0, 2 * math.pi, k))
        rad = rng.uniform(0.5 * r, r, k)
        pts = [(float(c[0] + rr * math.cos(a)), float(c[1] + rr * math.sin(a))) for a, rr in zip(ang, rad, strict=True)]
        if ShapelyPolygon(pts).is_valid:
            return pts


def _point(rng, like=None):
    if like is not None and rng.random() < 0.7:
        return (like[0] + float(rng.normal(0, 40)), like[1] + float(rng.normal(0, 40)))
    return tuple(float(v) for v in rng.uniform(0, 300, 2))


def _line(rng, like=None):
    if like is not None and rng.random() < 0.7:
        pts = np.asarray(like) + rng.normal(0, 25, (len(like), 2))
        return [tuple(map(float, p)) for p in pts]
    k = int(rng.integers(2, 5))
    start = rng.uniform(0, 300, 2)
    steps = rng.normal(0, 60, (k - 1, 2))
    pts = np.vstack([start, start + np.cumsum(steps, axis=0)])
    return [tuple(map(float, p)) for p in pts]


def _mask(rng, like=None):
    h, w = MASK_HW
    m = np.zeros((h, w), np.uint8)
    if like is not None and rng.random() < 0.7:
        m = np.roll(like, (int(rng.integers(-2, 3)), int(rng.integers(-2, 3))), axis=(0, 1)).copy()
        if rng.random() < 0.5:
            y, x = rng.integers(0, h), rng.integers(0, w)
            m[y:y + 3, x:x + 3] = 1
    else:
        for _ in range(int(rng.integers(1, 3))):
            y0, x0 = rng.integers(0, h - 2), rng.integers(0, w - 2)
            m[y0:y0 + int(rng.integers(2, 9)), x0:x0 + int(rng.integers(2, 9))] = 1
    if not m.any():
        m[0, 0] = 1
    return m


def _span(rng, like=None):
    if like is not None and rng.random() < 0.7:
        s0 = max(0, like[0] + int(rng.integers(-3, 4)))
        return (s0, max(s0, like[1] + int(rng.integers(-3, 4))))
    s0 = int(rng.integers(0, 50))
    return (s0, s0 + int(rng.integers(0, 12)))


GEOMETRY = {"box": _box, "polygon": _polygon, "point": _point, "line": _line, "mask": _mask,
            "span": _span}


def _value(kind, g):
    if kind == "box":
        return Rectangle(start=Point(x=g[0], y=g[1]), end=Point(x=g[2], y=g[3]))
    if kind == "polygon":
        return Polygon(points=[Point(x=x, y=y) for x, y in g])
    if kind == "point":
        return Point(x=g[0], y=g[1])
    if kind == "line":
        return Line(points=[Point(x=x, y=y) for x, y in g])
    if kind == "mask":
        return Mask(mask=MaskData.from_2D_arr(g), color=(1, 1, 1))
    return TextEntity(start=g[0], end=g[1])


# --- nested classifications ------------------------------------------------------------------------
def _subclasses(rng, p=0.6):
    out = []
    if rng.random() < p:
        out.append(ClassificationAnnotation(name="quality", value=Radio(
            answer=ClassificationAnswer(name=str(rng.choice(["good", "bad"]))))))
    if rng.random() < p * 0.6:
        opts = [o for o in ("occluded", "truncated") if rng.random() < 0.6] or ["occluded"]
        out.append(ClassificationAnnotation(name="attrs", value=Checklist(
            answer=[ClassificationAnswer(name=o) for o in opts])))
    if rng.random() < p * 0.4:
        out.append(ClassificationAnnotation(name="note", value=Text(answer=str(rng.choice(["x", "y"])))))
    return out


# --- data rows -------------------------------------------------------------------------------------
def objects(rng, kind: str, n_gt: int, n_pd: int, n_features: int = 3, subclasses: bool = False,
            dup: float = 0.1):
    """(gt, pd) lists of ObjectAnnotation of one kind on one data row."""
    make = GEOMETRY[kind]
    names = [f"{kind}_{c}" for c in "abcdefgh"[:n_features]]
    gt_geo = [(str(rng.choice(names)), make(rng)) for _ in range(n_gt)]
    pd_geo = []
    for _ in range(n_pd):
        if pd_geo and rng.random() < dup:  # exact duplicate: ties
            pd_geo.append(pd_geo[int(rng.integers(len(pd_geo)))])
            continue
        if gt_geo and rng.random() < 0.7:
            name, g = gt_geo[int(rng.integers(len(gt_geo)))]
            if rng.random() < 0.15:
                name = str(rng.choice(names))
            pd_geo.append((name, make(rng, g)))
        else:
            pd_geo.append((str(rng.choice(names)), make(rng)))

    def ann(name, g):
        return ObjectAnnotation(name=name, value=_value(kind, g),
                                classifications=_subclasses(rng) if subclasses else [])

    return [ann(*x) for x in gt_geo], [ann(*x) for x in pd_geo]


QUESTIONS = {"radio": {"weather": ["sunny", "rainy", "foggy"], "time": ["day", "night"]},
             "checklist": {"tags": ["indoor", "outdoor", "crowded", "empty"]},
             "text": {"caption": ["a car", "two cars", "a bus"], "comment": ["ok", "bad"]}}


def classifications(rng, kind: str, p_gt=0.8, p_pd=0.8):
    def side(p):
        out = []
        for q, answers in QUESTIONS[kind].items():
            if rng.random() >= p:
                continue
            if kind == "radio":
                v = Radio(answer=ClassificationAnswer(name=str(rng.choice(answers))))
            elif kind == "checklist":
                chosen = [a for a in answers if rng.random() < 0.4]
                v = Checklist(answer=[ClassificationAnswer(name=a) for a in chosen])
            else:
                v = Text(answer=str(rng.choice(answers)))
            out.append(ClassificationAnnotation(name=q, value=v))
        return out
    return side(p_gt), side(p_pd)


def dataset(seed: int, kinds, n_rows: int, subclasses: bool = False, max_per_side: int = 6):
    """{row id: (gt annotations, pd annotations)} mixing the given kinds per data row."""
    rng = np.random.default_rng(seed)
    rows = {}
    for r in range(n_rows):
        gt, pd = [], []
        for kind in kinds:
            if kind in CLASSIFICATION_KINDS:
                g, p = classifications(rng, kind)
            else:
                n_g = int(rng.integers(0, max_per_side + 1))
                n_p = int(rng.integers(0, max_per_side + 1))
                g, p = objects(rng, kind, n_g, n_p, subclasses=subclasses)
            gt += g
            pd += p
        rows[f"dr{r:04d}"] = (gt, pd)
    return rows


# --- the two sides of the comparison ----------------------------------------------------------------
def to_frames(rows):
    """Serialize with the SDK's NDJsonConverter, read back with pm.read_labelbox_ndjson."""
    gt_labels = [Label(data=GenericDataRowData(uid=r), annotations=g) for r, (g, _) in rows.items()]
    pd_labels = [Label(data=GenericDataRowData(uid=r), annotations=p) for r, (_, p) in rows.items()]
    gt_lines = list(NDJsonConverter.serialize(gt_labels))
    pd_lines = list(NDJsonConverter.serialize(pd_labels))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gt = pm.read_labelbox_ndjson(gt_lines, role="ground_truth")
        pd = pm.read_labelbox_ndjson(pd_lines)
    return gt, pd


def sdk_results(rows, iou: float, include_subclasses: bool, confusion: bool = True):
    """The SDK's four metrics per data row, as frames shaped like pm.labelbox_sdk's."""
    fcm, cm, fmi, mi = [], [], [], []
    for r, (g, p) in rows.items():
        if confusion:
            for m in feature_confusion_matrix_metric(g, p, include_subclasses=include_subclasses, iou=iou):
                fcm.append((r, m.feature_name, *m.value))
            for m in confusion_matrix_metric(g, p, include_subclasses=include_subclasses, iou=iou):
                cm.append((r, *m.value))
        with np.errstate(invalid="ignore"):
            for m in feature_miou_metric(g, p, include_subclasses=include_subclasses):
                fmi.append((r, m.feature_name, float(m.value)))
            for m in miou_metric(g, p, include_subclasses=include_subclasses):
                mi.append((r, float(m.value)))
    counts = {c: pl.Int64 for c in ("tp", "fp", "tn", "fn")}
    return (
        pl.DataFrame(fcm, schema={"data_row": pl.String, "feature": pl.String, **counts}, orient="row"),
        pl.DataFrame(cm, schema={"data_row": pl.String, **counts}, orient="row"),
        pl.DataFrame(fmi, schema={"data_row": pl.String, "feature": pl.String, "iou": pl.Float64},
                     orient="row"),
        pl.DataFrame(mi, schema={"data_row": pl.String, "iou": pl.Float64}, orient="row"),
    )


def assert_same(ours: pl.DataFrame, sdk: pl.DataFrame, keys, tol: float = 1e-9) -> None:
    ours = ours.sort(keys)
    sdk = sdk.sort(keys)
    assert ours.select(keys).equals(sdk.select(keys)), (
        "different (data row, feature) sets:\n"
        f"only ours: {ours.select(keys).join(sdk.select(keys), on=keys, how='anti').head(5)}\n"
        f"only sdk: {sdk.select(keys).join(ours.select(keys), on=keys, how='anti').head(5)}")
    for col in [c for c in sdk.columns if c not in keys]:
        a, b = ours[col].to_numpy(), sdk[col].to_numpy()
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            bad = ~np.isclose(a, b, rtol=0, atol=tol)
        else:
            bad = a != b
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise AssertionError(f"{col} differs on {bad.sum()} rows, first "
                                 f"{ours.select(keys).row(i)}: ours {a[i]!r} vs SDK {b[i]!r}")
