"""The typed ground-truth scanner (io/coco/_gt_scan.py, _kernels/json_gt.py) against the
generic path (msgspec / ``json`` into dicts, then Python).

Every file is read twice by ``read_coco``: as it is (scanner first) and with the scanner
switched off; the frames and rejects must be equal (floats bit for bit) and errors must carry
the same message. Each test also checks whether the scanner really took the file (so a
scanner that always gave up could not pass), and the scanned columns are compared with
``json.loads``' own values.
"""
from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import polars_metrics as pm
from polars_metrics._kernels import aot
from polars_metrics.io.coco import _gt_scan
from polars_metrics.io.coco import gt as gt_mod

FIXTURE = Path(__file__).resolve().parent / "data" / "cocoapi"


def _read(path, res=None, generic=False, **kwargs):
    """``read_coco``'s frames, or the exception it raised (type and message)."""
    orig = gt_mod.scan_gt
    if generic:
        gt_mod.scan_gt = lambda p: None
    try:
        return pm.read_coco(path, res, **kwargs)
    except Exception as e:  # noqa: BLE001 - compared between the two paths
        return (type(e), str(e))
    finally:
        gt_mod.scan_gt = orig


def _frames_equal(a, b) -> None:
    assert type(a) is type(b), (a, b)
    if isinstance(a, tuple) and a and isinstance(a[0], type):
        assert a == b
        return
    for x, y in zip(a, b, strict=True):
        assert_frame_equal(x, y)
        for c in x.columns:  # exact floats: bit patterns (assert_frame_equal has -0.0 == 0.0)
            if x[c].dtype in (pl.Float64, pl.Array(pl.Float64, 4)):
                assert np.array_equal(_float_bits(x[c]), _float_bits(y[c]))


def _float_bits(col: pl.Series) -> np.ndarray:
    if col.dtype != pl.Float64:
        col = col.cast(pl.List(pl.Float64)).explode()
    return col.fill_null(0.0).to_numpy().view(np.uint64)


ALL_MODES = (("drop", "bbox"), ("drop", "segm"), ("raise", "bbox"), ("raise", "segm"))


def _both(path, res=None, *, taken: bool | None = True, modes=ALL_MODES):
    """Both paths on ``path``, with rejects and with errors; ``taken``: the scanner must
    (True) / must not (False) take the file."""
    if taken is not None:
        assert (_gt_scan.scan_gt(path) is not None) == taken
    for on_invalid, iou_type in modes:
        fast = _read(path, res, on_invalid=on_invalid, iou_type=iou_type)
        slow = _read(path, res, generic=True, on_invalid=on_invalid, iou_type=iou_type)
        _frames_equal(fast, slow)
    return _read(path, res, on_invalid="drop")


def _write(tmp_path: Path, text: str | bytes, name: str = "gt.json") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


# --- the real fixture and the benchmark layout ---------------------------------------------------
@pytest.mark.parametrize("res", [None, "fakebbox", "fakesegm"])
def test_fixture(res):
    gt = FIXTURE / "instances_val2014_100.json"
    res_path = None if res is None else FIXTURE / f"instances_val2014_{res}100_results.json"
    out = _both(gt, res_path)
    ref = json.loads(gt.read_text())
    assert out[0]["id"].drop_nulls().len() == len(ref["annotations"])
    assert out[0]["mask"].null_count() < out[0].height  # polygons and RLEs were read


def test_fixture_columns_equal_json_loads():
    gt = FIXTURE / "instances_val2014_100.json"
    ref = json.loads(gt.read_text())
    sc = _gt_scan.scan_gt(gt)
    im, ca, an = sc.images, sc.categories, sc.annotations
    assert im.id.tolist() == [r["id"] for r in ref["images"]]
    assert im.h.tolist() == [r["height"] for r in ref["images"]]
    assert im.w.tolist() == [r["width"] for r in ref["images"]]
    assert ca.id.tolist() == [r["id"] for r in ref["categories"]]
    assert ca.names == [r["name"] for r in ref["categories"]]
    anns = ref["annotations"]
    assert an.id.tolist() == [a["id"] for a in anns]
    assert an.img.tolist() == [a["image_id"] for a in anns]
    assert an.cat.tolist() == [a["category_id"] for a in anns]
    assert np.array_equal(an.box.view(np.uint64), np.array([a["bbox"] for a in anns]).view(np.uint64))
    assert np.array_equal(an.area.view(np.uint64), np.array([a["area"] for a in anns], float).view(np.uint64))
    assert an.crowd.tolist() == [bool(a["iscrowd"]) for a in anns]
    kinds = an.seg.kind.tolist()
    assert kinds == [1 if isinstance(a["segmentation"], list) else 2 for a in anns]
    # polygon coordinates as json.loads reads them (no polygon of 4 numbers or odd length here)
    rows, coords, pptr, _ = an.seg.poly_csr
    polys = [p for i in rows for p in anns[i]["segmentation"]]
    assert all(len(p) != 4 and len(p) % 2 == 0 for p in polys)
    assert np.array_equal(coords.view(np.uint64), np.concatenate(polys).astype(float).view(np.uint64))
    assert np.diff(pptr).tolist() == [len(p) for p in polys]


def _bench_gt(n_images: int, seed: int) -> dict:
    """The benchmark's layout (benchmarks/coco.py): images with file names, boxes, areas."""
    rng = np.random.default_rng(seed)
    images = [{"id": i, "width": 640, "height": 480, "file_name": f"{i}.jpg"}
              for i in range(1, n_images + 1)]
    anns = []
    for i in range(1, n_images + 1):
        for _ in range(int(rng.integers(0, 9))):
            x, y = rng.random(2) * 600
            w, h = rng.random(2) * 100 + 1
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(rng.integers(1, 81)),
                         "bbox": [x, y, w, h], "area": w * h, "iscrowd": int(rng.random() < 0.01)})
    cats = [{"id": c, "name": f"class_{c:02d}"} for c in range(1, 81)]
    return {"images": images, "categories": cats, "annotations": anns}


def test_benchmark_layout(tmp_path):
    doc = _bench_gt(300, seed=5)
    p = _write(tmp_path, json.dumps(doc, separators=(",", ":")))
    gt = _both(p)[0]
    assert gt["id"].drop_nulls().to_list() == [a["id"] for a in doc["annotations"]]


def test_more_rows_than_the_first_guess(tmp_path):
    """Tiny images and tiny polygons: more rows than the first guess of capacity (from the
    file's length), so the scanner runs a second time with room for every row."""
    segs = [[[0, 0, 2, 0, 2, 2]] + [[k % 7, 1] for k in range(6000)], [[1, 2, 5, 6]] * 500]
    doc = {"images": [{"id": i} for i in range(3000)] + [{"id": 5000, "height": 9, "width": 9}],
           "categories": [{"id": 1, "name": "a"}],
           "annotations": [{"id": k, "image_id": 5000, "category_id": 1, "segmentation": g}
                           for k, g in enumerate(segs)]}
    p = _write(tmp_path, json.dumps(doc, separators=(",", ":")))
    size = p.stat().st_size
    n_im, _, _, n_poly, _, _ = _gt_scan._capacities(size, False)
    assert n_im < len(doc["images"]) and n_poly < 6501
    gt, _, rejects = _both(p)
    assert rejects.height == 0 and gt.height == 2 + 3000  # the placeholder rows of empty images
    assert gt["mask"].drop_nulls().len() == 2


def test_polygons_of_every_shape(tmp_path):
    """Polygons of 4 numbers (boxes), odd lengths, empty polygons, several per annotation,
    uncompressed RLE next to them."""
    rng = random.Random(3)
    anns = []
    for i in range(400):
        shape = rng.choice(["box", "odd", "many", "empty", "none", "crowd"])
        seg = {"box": [[1, 2, 5, 6]], "odd": [[1, 1, 8, 1, 8, 9, 3]],
               "many": [[0, 0, 9, 0, 9, 9], [1.5, 1.5, 3, 1.5, 3, 3.25, 2, 2]],
               "empty": [[]], "none": [],
               "crowd": {"size": [20, 30], "counts": [5, 10, 585]}}[shape]
        anns.append({"id": i, "image_id": 1 + i % 3, "category_id": 1, "segmentation": seg,
                     "bbox": [0, 0, 1, 1]})
    anns.append({"id": 999, "image_id": 1, "category_id": 1,
                 "segmentation": [[1, 2, 5, 6], [1, 2, 3, 4, 5, 6]]})  # box then not a box: bad
    doc = {"images": [{"id": i, "height": 20, "width": 30} for i in (1, 2, 3)],
           "categories": [{"id": 1, "name": "a"}], "annotations": anns}
    p = _write(tmp_path, json.dumps(doc, separators=(",", ":")))
    gt, _, rejects = _both(p)
    assert rejects["reason"].to_list() == ["is not a list of polygons (lists of x, y numbers)"]


# --- documents the scanner takes -----------------------------------------------------------------
TAKEN = {
    "unicode and escapes": '{"images": [{"id": 1, "file_name": "caf\\u00e9 \\"x\\"\\\\/\\n.jpg",'
                           ' "height": 4, "width": 5, "coco_url": "é/ü/漢字"}], "categories": '
                           '[{"id": 2, "name": "d\\u00e9j\\u00e0 \\t vu", "supercategory": "ä"},'
                           ' {"id": 3, "name": "漢字"}], "annotations": [{"id": 1, "image_id": 1,'
                           ' "category_id": 3, "bbox": [0, 0, 2, 2]}]}',
    "nulls and missing": '{"info": {"a": [1, {"b": null}]}, "licenses": [], "images": [{"id": 1,'
                         ' "height": null}, {"id": 2, "width": 3, "height": 3}], "categories": '
                         '[{"id": 1, "name": "a"}, {"id": 2}], "annotations": [{"id": 1, '
                         '"image_id": 2, "category_id": 1, "bbox": null, "area": null, '
                         '"iscrowd": null, "segmentation": null}, {"image_id": 2, "category_id":'
                         ' 1, "bbox": [1, 1, 1, 1]}, {"id": 3, "image_id": 2, "category_id": 1, '
                         '"bbox": [], "ignore": true}]}',
    "exponents": '{"images": [{"id": 1, "height": 480, "width": 640}], "categories": [{"id": 1,'
                 ' "name": "a"}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, '
                 '"bbox": [1e1, 2.5E-1, 3.0e+2, -0.0], "area": 1.7976931348623157e308, '
                 '"iscrowd": 0.0}, {"id": 2, "image_id": 1, "category_id": 1, "bbox": '
                 '[0.30000000000000004, 1e-7, 123456789012345678901234567890, 5e-324], "area": '
                 '-0, "iscrowd": 2, "ignore": 0}]}',
    "rle": '{"annotations": [{"id": 5, "image_id": 1, "category_id": 1, "iscrowd": 1, '
           '"segmentation": {"counts": [2, 3, 1], "size": [2, 3]}}, {"id": 6, "image_id": 1, '
           '"category_id": 1, "segmentation": {"size": [2, 3], "counts": "1\\\\1", "x": [1]}},'
           ' {"id": 7, "image_id": 1, "category_id": 1, "segmentation": {"size": [2, 3], '
           '"counts": "\\u0030\\/"}}], "images": [{"id": 1, "height": 2, "width": 3}], '
           '"categories": [{"id": 1, "name": "a"}]}',
    "no annotations key": '{"images": [{"id": 1}], "categories": []}',
    "empty objects": '{"images": [{}, {"id": 1}], "categories": [{}], "annotations": [{}]}',
    "rejects": '{"images": [{"id": 1, "height": -3, "width": 5}, {"id": 1}, {"id": 2, "height":'
               ' 10, "width": 10}], "categories": [{"id": 1, "name": "a"}, {"id": 1, "name": '
               '"b"}, {"id": 4, "name": "a"}], "annotations": [{"id": 1, "image_id": 9, '
               '"category_id": 1, "bbox": [0, 0, 1, 1]}, {"id": 2, "image_id": 2, "category_id":'
               ' 3, "bbox": [0, 0, 1, 1]}, {"id": 3, "image_id": 2, "category_id": 4, "bbox": '
               '[0, 0, -1, 1]}, {"id": 3, "image_id": 2, "category_id": 4}, {"id": 4, '
               '"image_id": 2, "category_id": 4, "segmentation": [[1, 1, 5, 1, 5, 5]]}, {"id": '
               '5, "image_id": 2, "category_id": 4, "segmentation": {"size": [2, 2], "counts": '
               '[1, 1]}}, {"id": 6, "image_id": 2, "category_id": 4, "segmentation": {"size": '
               '[10, 10], "counts": "~~"}}]}',
    "whitespace": ' \n{ "images" : [ { "id" : 1 , "height" : 2 , "width" : 2 } ] ,\r\n\t'
                  '"categories" : [ ] , "annotations" : [ ] }\n ',
}


@pytest.mark.parametrize("name", sorted(TAKEN))
def test_taken_same_frames(tmp_path, name):
    _both(_write(tmp_path, TAKEN[name]))


def test_rejects_and_error_messages_match(tmp_path):
    p = _write(tmp_path, TAKEN["rejects"])
    _, _, rejects = _both(p)
    assert set(rejects["table"]) == {"images", "categories", "annotations"}
    err = _read(p)
    assert err[0] is pm.errors.FormatError and err == _read(p, generic=True)
    assert 'images[0]: "height" is negative' in err[1]


# --- documents left to the generic path ----------------------------------------------------------
LEFT = [
    "",  # empty file
    "[]",
    '{"images": [], "categories": []} x',
    '{"images": [], "categories": [], }',
    '{"images": null, "categories": []}',
    '{"images": [], "categories": [], "annotations": null}',
    '{"images": [], "categories": [], "annotations": {}}',
    '{"categories": []}',
    '{"images": [1], "categories": []}',
    '{"images": [{"id": 1}], "categories": [], "annotations": [5]}',
    '{"images": [{"id": 1.0}], "categories": []}',
    '{"images": [{"id": "1"}], "categories": []}',
    '{"images": [{"id": true}], "categories": []}',
    '{"images": [{"id": 12345678901234567890}], "categories": []}',
    '{"images": [{"id": 1, "id": 2}], "categories": []}',
    '{"images": [{"id": 1}], "images": [], "categories": []}',
    '{"\\u0069mages": [{"id": 1}], "categories": []}',
    '{"images": [{"id": 1, "height": 2.5}], "categories": []}',
    '{"images": [{"id": 1}], "categories": [{"id": 1, "name": 5}]}',
    '{"images": [{"id": 1}], "categories": [], "annotations": [{"id": 1, "bbox": [1, 2, 3]}]}',
    '{"images": [{"id": 1}], "categories": [], "annotations": [{"id": 1, "bbox": [1, 2, 3, NaN]}]}',
    '{"images": [{"id": 1}], "categories": [], "annotations": [{"id": 1, "bbox": [true, 2, 3, 4]}]}',
    '{"images": [{"id": 1}], "categories": [], "annotations": [{"id": 1, "area": "3"}]}',
    '{"images": [{"id": 1}], "categories": [], "annotations": [{"id": 1, "area": 1e400}]}',
    '{"images": [{"id": 1}], "categories": [], "annotations": [{"id": 1, "iscrowd": "0"}]}',
    '{"images": [{"id": 1}], "categories": [], "annotations": [{"id": 1, "segmentation": 3}]}',
    '{"images": [{"id": 1}], "categories": [], "annotations": [{"id": 1, "segmentation": [1, 2]}]}',
    '{"images": [{"id": 1}], "categories": [], "annotations": [{"id": 1, "segmentation": [[[1, 2]]]}]}',
    '{"images": [{"id": 1}], "categories": [], "annotations": [{"id": 1, "segmentation": {"size": [1, 1]}}]}',
    '{"images": [{"id": 1}], "categories": [], "annotations": [{"id": 1, "segmentation": '
    '{"size": [1, -1], "counts": "0"}}]}',
    '{"images": [{"id": 1}], "categories": [], "annotations": [{"id": 1, "segmentation": '
    '{"size": [1, 1, 1], "counts": "0"}}]}',
    '{"images": [{"id": 1}], "categories": [], "annotations": [{"id": 1, "segmentation": '
    '{"size": [1, 1], "counts": [1, -1]}}]}',
    '{"images": [{"id": 1}], "categories": [], "annotations": [{"id": 1, "segmentation": '
    '{"size": [1, 1], "counts": [1.0]}}]}',
    '{"images": [{"id": 1}], "categories": [], "annotations": [{"id": 1, "segmentation": '
    '{"size": [1, 1], "counts": "é"}}]}',
    '{"images": [{"id": 1}], "categories": [], "annotations": [{"id": 1, "x": [1, 2}]}',
    '{"images": [{"id": 1, "file_name": "a\x01b"}], "categories": []}',
    '{"images": [{"id": 1, "file_name": "a\\qb"}], "categories": []}',
    '{"images": [{"id": 1}], "categories": [], "annotations": [{"id": 01}]}',
    '{"images": [{"id": 1}], "categories": [], "annotations": [',
    '\ufeff{"images": [], "categories": []}',
]


@pytest.mark.parametrize("text", LEFT)
def test_left_to_generic_same_errors(tmp_path, text):
    p = _write(tmp_path, text)
    _both(p, taken=False)


def test_bad_utf8_left_to_generic(tmp_path):
    p = _write(tmp_path, b'{"images": [{"id": 1, "file_name": "\xff"}], "categories": []}')
    _both(p, taken=False)
    err = _read(p)
    assert err[0] is pm.errors.FormatError and "not valid JSON" in err[1]


# --- random documents ----------------------------------------------------------------------------
_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=6)
_float = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=64),
                   st.integers(-10**6, 10**6), st.sampled_from([0.0, -0.0, 0.1, 1e-7, 2.5e300]))
_small = st.integers(0, 40)


_polygon = st.lists(st.floats(-5, 60, allow_nan=False), max_size=9)
_rle_string = st.text(st.sampled_from("0123456789:;<=>?@ABCOPQ[\\]^_`abcno"), max_size=8)
_segmentation = st.one_of(
    st.lists(_polygon, max_size=3),
    st.builds(lambda h, w, c: {"size": [h, w], "counts": c}, st.integers(0, 6), st.integers(0, 6),
              st.one_of(_rle_string, st.lists(st.integers(0, 20), max_size=6))),
)
_image = st.fixed_dictionaries({}, optional={
    "id": st.one_of(st.integers(-3, 12), st.none()), "height": st.one_of(st.integers(-1, 40), st.none()),
    "width": st.one_of(st.integers(-1, 40), st.none()), "file_name": _text,
    "extra": st.lists(st.one_of(st.booleans(), _text, st.none()), max_size=2)})
_category = st.fixed_dictionaries({}, optional={
    "id": st.one_of(st.integers(0, 5), st.none()), "name": st.one_of(_text, st.none()),
    "supercategory": _text})
_annotation = st.fixed_dictionaries({}, optional={
    "id": st.one_of(st.integers(0, 30), st.none()), "image_id": st.one_of(st.integers(-1, 12), st.none()),
    "category_id": st.one_of(st.integers(0, 5), st.none()),
    "bbox": st.one_of(st.lists(_float, min_size=4, max_size=4), st.just([]), st.none()),
    "area": st.one_of(_float, st.none()), "iscrowd": st.one_of(st.sampled_from([0, 1, 2]), st.booleans(), st.none()),
    "ignore": st.one_of(st.sampled_from([0, 1, 0.0, 0.5]), st.booleans(), st.none()),
    "segmentation": st.one_of(_segmentation, st.none()), "meta": st.dictionaries(_text, _float, max_size=2)})


def _dump(value, rnd: random.Random) -> str:
    """JSON text with random spacing, escapes and number spellings (exponents, trailing 0s)."""
    sp = rnd.choice(["", " ", "\n  "])
    if isinstance(value, dict):
        return "{" + sp + ("," + sp).join(_dump(k, rnd) + sp + ":" + sp + _dump(v, rnd)
                                          for k, v in value.items()) + sp + "}"
    if isinstance(value, list):
        return "[" + ("," + sp).join(_dump(v, rnd) for v in value) + "]"
    if isinstance(value, float):
        if value == 0 or not math.isfinite(value):
            return json.dumps(value)
        return rnd.choice([repr(value), f"{value:.17e}", f"{value:.17E}".replace("E+", "E"),
                           f"{value:.17g}"])
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=rnd.random() < 0.5)
    return json.dumps(value)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images=st.lists(_image, max_size=6), cats=st.lists(_category, max_size=4),
       anns=st.lists(_annotation, max_size=8), seed=st.integers(0, 2**16),
       with_anns=st.booleans())
def test_property_random_documents(images, cats, anns, seed, with_anns):
    doc = {"info": {"v": 1}, "images": images, "categories": cats}
    if with_anns or anns:
        doc["annotations"] = anns
    rnd = random.Random(seed)
    keys = list(doc)
    rnd.shuffle(keys)
    text = _dump({k: doc[k] for k in keys}, rnd)
    assert json.loads(text) == json.loads(json.dumps({k: doc[k] for k in keys}))  # a faithful dump
    with tempfile.TemporaryDirectory() as d:
        p = _write(Path(d), text)
        _both(p, taken=True, modes=(("drop", "segm"), ("raise", "bbox")))


# --- the compiled module, looked up from several threads at once -----------------------------------
RACE = r"""
import sys, threading
from polars_metrics._kernels import aot, json_gt, json_scan
barrier = threading.Barrier(8)
def first_call(kernel):
    barrier.wait()
    kernel.resolve()
threads = [threading.Thread(target=first_call, args=(k,))
           for k in [json_scan.scan_results, json_scan.copy_strings, json_gt.scan_gt] * 2
           + [json_scan.scan_results] * 2]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("numba" in sys.modules, aot.compiled_module() is not None)
"""


def test_first_kernel_calls_from_threads_use_the_compiled_module():
    """The first kernel calls of a process may come from several ``run_ranges`` threads at
    once; every one must get the compiled function (a thread that saw the module lookup half
    done used to fall back to numba's JIT: seconds of compiling on a first call)."""
    assert aot.compiled_module() is not None, "build the kernels: python -m polars_metrics._kernels"
    root = Path(__file__).resolve().parents[1]
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True,
                             cwd=root, env=os.environ, check=True, timeout=300)
        assert out.stdout.split() == ["False", "True"], out.stdout + out.stderr
