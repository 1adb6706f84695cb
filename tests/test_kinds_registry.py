"""The kind registry: every registered kind is a complete, typed ``Kind``; the ``kind`` Enum is
the registry; the namespace reaches every kind with an IoU."""
from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import polars_metrics as pm
from polars_metrics import kinds
from polars_metrics.errors import SchemaError
from polars_metrics.kinds import KIND_DTYPE, KIND_NAMES, KINDS, REGISTRY, Kind, infer_kind, kind
from polars_metrics.validation import Check

FIELDS = {"name", "geometry", "normalize", "checks", "pairs", "aligned_iou", "repair",
          "always_match", "expand", "inferred", "pairs_with", "geographic"}


def test_kind_has_the_declared_fields_and_is_frozen():
    assert {f.name for f in dataclasses.fields(Kind)} == FIELDS
    with pytest.raises(dataclasses.FrozenInstanceError):
        kind("box").name = "other"  # type: ignore[misc]


@pytest.mark.parametrize("k", REGISTRY, ids=lambda k: k.name)
def test_every_registered_kind_is_complete(k):
    assert isinstance(k, Kind)
    assert isinstance(k.name, str) and k.name
    assert isinstance(k.geometry, tuple) and k.geometry and all(isinstance(c, str) for c in k.geometry)
    for fn in (k.normalize, k.checks, k.pairs):
        assert callable(fn)
    # every kind's pairs takes the profile (those that do not need it ignore it)
    assert len(inspect.signature(k.pairs).parameters) >= 3
    checks = k.checks("ground_truth", ["data_row"])
    assert checks and all(isinstance(c, Check) for c in checks)
    assert all(c.column in {*k.geometry, pm.schema.QUESTION} for c in checks)
    assert k.aligned_iou is None or callable(k.aligned_iou)
    assert k.repair is None or callable(k.repair)
    assert k.derives_feature == (k.expand is not None)
    assert all(other in KINDS and other != k.name for other in k.pairs_with)
    # classifications match by equality: no IoU, every IoU threshold, feature derived
    assert k.always_match == (k.aligned_iou is None) == k.derives_feature


def test_the_kind_enum_is_the_registry():
    assert KIND_NAMES == tuple(k.name for k in REGISTRY) == tuple(KINDS)
    assert KIND_DTYPE == pl.Enum(KIND_NAMES)
    assert list(KIND_DTYPE.categories) == list(KIND_NAMES)
    assert len(set(KIND_NAMES)) == len(KIND_NAMES)
    assert not hasattr(pm.schema, "KINDS")  # declared once, in the registry


def test_prepared_tables_carry_the_registry_enum():
    from polars_metrics.prepare import KIND_DTYPE as prepared

    assert prepared is KIND_DTYPE


def test_unknown_kind_suggests_the_nearest():
    with pytest.raises(SchemaError, match='Did you mean "polygon"'):
        kind("polgon")
    gt = pl.DataFrame({"data_row": ["a"], "feature": ["x"], "kind": ["polgon"],
                       "polygon": [[[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]]]})
    with pytest.raises(SchemaError, match='Did you mean "polygon"'):
        pm.evaluate(gt, gt)


def test_inference_follows_the_registry_order():
    assert infer_kind(["bbox", "polygon"]) == "box"
    assert infer_kind(["line", "point", "start", "end"]) == "line"
    assert infer_kind(["point", "start", "end"]) == "point"
    assert infer_kind(["question", "answers"]) == "checklist"
    assert infer_kind(["question", "answer"]) == "radio"  # text is never inferred
    assert infer_kind(["bbox", "question", "answer"]) is None
    assert infer_kind(["data_row", "feature"]) is None


def test_pair_groups():
    geo = pm.get_profile("labelbox", crs="EPSG:4326")
    assert kinds.pair_groups(["box", "polygon", "mask"]) == {"polygon": ["box", "polygon"],
                                                             "mask": ["mask"]}
    assert kinds.pair_groups(["box"]) == {"box": ["box"]}
    assert kinds.pair_groups(["box"], geo) == {"polygon": ["box"]}
    assert kinds.pair_groups(["point", "span"], geo) == {"point": ["point"], "span": ["span"]}


@pytest.mark.parametrize("k", [k for k in REGISTRY if k.aligned_iou is not None], ids=lambda k: k.name)
def test_generic_iou_expression_equals_the_named_method(k):
    values = {
        "box": ([0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 3.0, 2.0]),
        "polygon": ([[[0.0, 0.0], [2.0, 0.0], [2.0, 2.0]]], [[[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]]]),
        "mask": (pm.mask_from_array(np.eye(3)), pm.mask_from_array(np.ones((3, 3)))),
        "point": ([0.0, 0.0], [30.0, 0.0]),
        "line": ([[0.0, 0.0], [100.0, 0.0]], [[0.0, 20.0], [100.0, 20.0]]),
        "span": ([0, 10], [5, 15]),
    }[k.name]
    dtypes = {"box": pm.BBOX_DTYPE, "polygon": pm.POLYGON_DTYPE, "mask": pm.MASK_DTYPE,
              "point": pm.POINT_DTYPE, "line": pm.LINE_DTYPE, "span": pl.List(pl.Int64)}
    df = pl.DataFrame({"a": [values[0], None], "b": [values[1], values[1]]},
                      schema={"a": dtypes[k.name], "b": dtypes[k.name]})
    generic = df.select(pl.col("a").pm.iou("b", kind=k.name))
    named = df.select(getattr(pl.col("a").pm, f"{k.name}_iou")("b"))
    assert generic.columns == named.columns == ["iou"]
    assert generic["iou"].to_list() == named["iou"].to_list()
    got = generic["iou"].to_list()
    assert got[1] is None and 0.0 < got[0] < 1.0


def test_classifications_have_no_iou_expression():
    with pytest.raises(ValueError, match="has no IoU"):
        pl.col("a").pm.iou("b", kind="radio")


def test_dataframe_namespace_forwards_to_the_functions():
    gt, pd = pm.synthetic.detections(n_images=10, seed=3)
    ev_ns, ev_fn = gt.pm.evaluate(pd, by="split"), pm.evaluate(gt, pd, by="split")
    assert ev_ns.cube.equals(ev_fn.cube)
    assert gt.pm.pairwise_iou(pd).equals(pm.pairwise_iou(gt, pd))


def test_importing_the_kinds_loads_no_heavy_module():
    code = ("import sys, polars_metrics.kinds, polars_metrics.namespace; "
            "print([m for m in ('numba', 'pyarrow', 'shapely') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"
