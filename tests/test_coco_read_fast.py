"""The typed results scanner (io/coco/_scan.py, _kernels/json_scan.py) against the generic path.

Every file is read twice: by ``read_coco`` as it is (scanner first) and with the scanner
switched off (msgspec / ``json``, the reader the scanner replaces); the frames must be equal,
exact floats included, and malformed files must raise the same errors. The scanner's columns
are also compared bit for bit with ``json.loads``' values (Python's correctly rounded
``float()``), and a test checks that the scanner really took each file it is meant to take.
"""
from __future__ import annotations

import json
import math
import random
import struct
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import polars_metrics as pm
from polars_metrics.errors import FormatError
from polars_metrics.io.coco import _scan
from polars_metrics.io.coco import results as results_mod

FIXTURE = Path(__file__).resolve().parent / "data" / "cocoapi"

GT = {
    "images": [{"id": i, "height": 20, "width": 30} for i in (1, 2, 3)],
    "categories": [{"id": 1, "name": "a"}, {"id": 7, "name": "b"}],
    "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "area": 12}],
}


def _generic(monkeypatch, *args, **kwargs):
    with monkeypatch.context() as m:
        m.setattr(results_mod, "scan_results", lambda path: None)
        return pm.read_coco(*args, **kwargs)


def _both(monkeypatch, gt, res, **kwargs):
    fast = pm.read_coco(gt, res, **kwargs)
    slow = _generic(monkeypatch, gt, res, **kwargs)
    for a, b in zip(fast, slow, strict=True):
        assert_frame_equal(a, b)
        # exact floats: compare bit patterns too (assert_frame_equal treats -0.0 == 0.0)
        for c in a.columns:
            if a[c].dtype == pl.Float64:
                assert np.array_equal(a[c].to_numpy().view(np.uint64), b[c].to_numpy().view(np.uint64),
                                      equal_nan=False) or a[c].null_count() > 0
    return fast


def _write(tmp_path: Path, text: str, name: str = "res.json") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def _bits(values) -> np.ndarray:
    return np.array(values, np.float64).view(np.uint64)


# --- the fixture and the benchmark layout --------------------------------------------------------
@pytest.mark.parametrize("kind", ["bbox", "segm"])
def test_fixture_files(monkeypatch, kind):
    gt = FIXTURE / "instances_val2014_100.json"
    res = FIXTURE / f"instances_val2014_fake{kind}100_results.json"
    assert isinstance(_scan.scan_results(res), _scan.Scanned)  # the scanner takes it
    for iou_type in ("bbox", "segm"):
        gt_f, pd_f = _both(monkeypatch, gt, res, iou_type=iou_type)
        assert pd_f.height == len(json.loads(res.read_text()))


def test_columns_equal_json_loads_on_fixture():
    res = FIXTURE / "instances_val2014_fakebbox100_results.json"
    ref = json.loads(res.read_text())
    sc = _scan.scan_results(res)
    assert sc.img.tolist() == [r["image_id"] for r in ref]
    assert sc.cat.tolist() == [r["category_id"] for r in ref]
    assert np.array_equal(sc.score.view(np.uint64), _bits([r["score"] for r in ref]))
    assert np.array_equal(sc.box.view(np.uint64), _bits([r["bbox"] for r in ref]))


# --- numbers --------------------------------------------------------------------------------------
NASTY = [
    "0.30000000000000004", "0.1", "0.2", "1e-7", "1E+3", "1e3", "-0.0", "0", "-0", "5", "5.0",
    "5.000", "9007199254740993", "9007199254740992", "18446744073709551615",
    "123456789012345678901234567890", "1.7976931348623157e308", "2.2250738585072014e-308",
    "2.2250738585072011e-308", "5e-324", "4.9406564584124654e-324", "1e-400", "0.000001",
    "123.456e-2", "0.0029687881469726562", "238.109375",
    "9.999999999999999e22", "1e22", "1e23", "8.5e22",
    "0.1e1", "100000000000000000000000", "3.14159265358979323846264338327950288",
    "7.2057594037927933e16", "2.0000000000000004", "1.0000000000000002", "0.5", "-1.5e-10",
    "4503599627370496.5", "4503599627370497.5", "1e-5", "12345678901234567", "0e10", "0.0e-5",
]


def test_nasty_numbers_bit_exact(tmp_path, monkeypatch):
    recs = []
    for i, text in enumerate(NASTY):
        box = f"[{text}, {NASTY[(i + 1) % len(NASTY)]}, 1, 2]"
        recs.append(f'{{"image_id": 1, "category_id": 7, "bbox": {box}, "score": {text}}}')
    p = _write(tmp_path, "[" + ",\n".join(recs) + "]")
    sc = _scan.scan_results(p)
    assert isinstance(sc, _scan.Scanned)
    ref = json.loads(p.read_text())
    assert np.array_equal(sc.score.view(np.uint64), _bits([float(r["score"]) for r in ref]))
    assert np.array_equal(sc.box.view(np.uint64), _bits([[float(v) for v in r["bbox"]] for r in ref]))
    # -0.0 as a float, but the integer -0 is 0
    assert math.copysign(1, sc.score[NASTY.index("-0.0")]) == -1
    assert math.copysign(1, sc.score[NASTY.index("-0")]) == 1
    _both(monkeypatch, GT, p, on_invalid="drop")


@pytest.mark.parametrize("text", ["1.00000000000000011102230246251565",
                                  "1.00000000000000011102230246251566"])
def test_undecidable_after_19_digits_uses_generic(tmp_path, monkeypatch, text):
    """20+ digits within a hair of a halfway point: the first 19 digits cannot decide, the
    scanner hands the file to the generic reader (Python's float()), which rounds exactly."""
    p = _write(tmp_path, f'[{{"image_id": 1, "category_id": 7, "bbox": [0, 0, 1, 1], "score": {text}}}]')
    assert _scan.scan_results(p) is None
    pd = pm.read_coco(GT, p)[1]
    assert pd["confidence"].item() == float(text)
    _same_outcome(monkeypatch, p)


def test_random_floats_bit_exact(tmp_path):
    rng = random.Random(7)
    vals = []
    for _ in range(4000):
        bits = rng.getrandbits(64)
        v = struct.unpack("<d", struct.pack("<Q", bits))[0]
        if math.isfinite(v):
            vals.append(v)
        vals.append(rng.random() * 10 ** rng.randint(-30, 30))
        vals.append(float(np.float32(rng.random())))
    forms = [repr, lambda v: f"{v:.20e}", lambda v: f"{v:.25g}", lambda v: f"{v:.3f}",
             lambda v: f"{v:.17E}"]
    recs = []
    texts = []
    for i, v in enumerate(vals):
        t = forms[i % len(forms)](v)
        texts.append(t)
        recs.append(f'{{"image_id":1,"category_id":1,"bbox":[0,0,1,1],"score":{t}}}')
    p = _write(tmp_path, "[" + ",".join(recs) + "]")
    sc = _scan.scan_results(p)
    assert isinstance(sc, _scan.Scanned)
    assert np.array_equal(sc.score.view(np.uint64), _bits([float(t) for t in texts]))


def test_many_chunks(tmp_path, monkeypatch):
    """Force small chunks (threads) on a file with braces inside strings: same columns."""
    recs = [{"image_id": i % 3 + 1, "category_id": 7, "bbox": [i, 1.5, 2, 3], "score": i / 7,
             "note": "},{" * (i % 4), "extra": {"a": [1, {"b": "}, {"}]}}
            for i in range(3000)]
    p = _write(tmp_path, json.dumps(recs))
    monkeypatch.setattr(_scan, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(_scan, "num_threads", lambda: 16)
    sc = _scan.scan_results(p)
    assert isinstance(sc, _scan.Scanned)
    assert np.array_equal(sc.score, [r["score"] for r in recs])
    assert np.array_equal(sc.box, [r["bbox"] for r in recs])
    _both(monkeypatch, GT, p)


# --- layouts --------------------------------------------------------------------------------------
RECORDS = [
    {"image_id": 1, "category_id": 7, "bbox": [1.25, 2, 3.5, 4], "score": 0.9},
    {"score": 0.1, "bbox": [0, 0, 5, 5], "category_id": 1, "image_id": 2},
    {"image_id": 3, "extra": {"x": [1, 2, {"y": None}], "s": "a\"b\\c\u00e9\n"}, "category_id": 1,
     "bbox": [1e-7, 1e3, 2, 2], "score": 1, "flag": True, "z": [], "w": {}},
]


@pytest.mark.parametrize("dump", [
    lambda r: json.dumps(r),
    lambda r: json.dumps(r, indent=2),
    lambda r: json.dumps(r, indent="\t", ensure_ascii=False),
    lambda r: json.dumps(r, separators=(",", ":")),
    lambda r: "\r\n  " + json.dumps(r, indent=1).replace("\n", "\r\n") + " \n\n",
])
def test_layouts(tmp_path, monkeypatch, dump):
    p = _write(tmp_path, dump(RECORDS))
    assert isinstance(_scan.scan_results(p), _scan.Scanned)
    _both(monkeypatch, GT, p)


def test_segm_with_escapes(tmp_path, monkeypatch):
    from polars_metrics.kinds._rle import encode_strings

    rng = np.random.default_rng(3)
    recs = []
    for i in range(40):
        runs = rng.integers(0, 40, size=9).astype(np.uint32)
        runs[-1] = 600 - runs[:-1].sum() if runs[:-1].sum() <= 600 else 0
        if runs[:-1].sum() > 600:
            runs = np.array([600], np.uint32)
        s = encode_strings(runs, np.array([0, runs.size])).to_list()[0]
        recs.append({"image_id": 1 + i % 3, "category_id": 7, "score": 0.5 + i / 100,
                     "segmentation": {"size": [20, 30], "counts": s, "extra": [1]}})
    text = json.dumps(recs)
    first = recs[0]["segmentation"]["counts"]
    escaped = "".join(f"\\u{ord(ch):04x}" for ch in first)  # every character as \u00XX
    text = text.replace(json.dumps(first), '"' + escaped + '"', 1)
    p = _write(tmp_path, text)
    assert isinstance(_scan.scan_results(p), _scan.Scanned)
    assert json.loads(text) == recs
    for iou_type in ("bbox", "segm"):
        _both(monkeypatch, GT, p, iou_type=iou_type, on_invalid="drop")


def test_segmentations_only_past_the_probed_start(tmp_path, monkeypatch):
    """The scanner looks for "segmentation" keys in the file's first bytes only; one further
    on makes it give up and scan again with room for them: the same frames as the generic
    reader, the RLE included, and the scanner (not the generic path) read the file."""
    from polars_metrics.kinds._rle import encode_strings

    pad = "x" * (_scan.SEG_PROBE_BYTES // 20)  # objects long enough to push the RLE past the probe
    recs = [{"image_id": 1 + i % 3, "category_id": 1, "score": 0.5, "bbox": [1, 2, 3, 4],
             "note": pad} for i in range(40)]
    counts = encode_strings(np.array([100, 500], np.uint32), np.array([0, 2])).to_list()[0]
    recs.append({"image_id": 2, "category_id": 7, "score": 0.25, "bbox": [0, 0, 5, 5],
                 "segmentation": {"size": [20, 30], "counts": counts}})
    text = json.dumps(recs)
    assert text.find('"segmentation"') > _scan.SEG_PROBE_BYTES
    p = _write(tmp_path, text)
    scanned = _scan.scan_results(p)
    assert isinstance(scanned, _scan.Scanned) and scanned.seg is not None
    for iou_type in ("bbox", "segm"):
        _both(monkeypatch, GT, p, iou_type=iou_type, on_invalid="drop")


def test_segm_escaped_backslash(tmp_path, monkeypatch):
    # counts "\\1" style strings: COCO's alphabet contains the backslash (92)
    recs = [{"image_id": 1, "category_id": 7, "score": 0.5,
             "segmentation": {"size": [20, 30], "counts": "0\\" + "0" * 2}},
            {"image_id": 2, "category_id": 7, "score": 0.6,
             "segmentation": {"counts": "\\/", "size": [20, 30]}}]
    p = _write(tmp_path, json.dumps(recs).replace("\\\\/", "\\\\\\/"))
    assert isinstance(_scan.scan_results(p), _scan.Scanned)
    _both(monkeypatch, GT, p, on_invalid="drop", iou_type="segm")


# --- what the scanner leaves to the generic path --------------------------------------------------
TAKEN_BY_GENERIC = [
    '[{"image_id": 1.0, "category_id": 7, "bbox": [1, 2, 3, 4], "score": 0.5}]',
    '[{"image_id": 1, "category_id": 7, "bbox": null, "score": 0.5}]',
    '[{"image_id": 1, "category_id": 7, "bbox": [1, 2, 3], "score": 0.5}]',
    '[{"image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4]}]',
    '[{"image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4], "score": NaN}]',
    '[{"image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4], "score": Infinity}]',
    '[{"image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4], "score": 1e400}]',
    '[{"image_id": 1, "image_id": 2, "category_id": 7, "bbox": [1, 2, 3, 4], "score": 0.5}]',
    '[{"image\\u005fid": 1, "category_id": 7, "bbox": [1, 2, 3, 4], "score": 0.5}]',
    '[{"image_id": "1", "category_id": 7, "bbox": [1, 2, 3, 4], "score": 0.5}]',
    '[{"image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4], "score": 0.5, "segmentation": [[1, 2, 3, 4, 5, 6]]}]',
    '[{"image_id": 1, "category_id": 7, "score": 0.5, "segmentation": {"size": [20, 30], "counts": [600]}}]',
    '[{"image_id": 99, "category_id": 7, "bbox": [1, 2, 3, 4], "score": 0.5}, 3]',
    '{"image_id": 1}',
]


@pytest.mark.parametrize("text", TAKEN_BY_GENERIC)
def test_left_to_generic(tmp_path, monkeypatch, text):
    p = _write(tmp_path, text)
    assert _scan.scan_results(p) is None
    _same_outcome(monkeypatch, p)


def _same_outcome(monkeypatch, p):
    for on_invalid in ("raise", "drop"):
        try:
            fast = pm.read_coco(GT, p, on_invalid=on_invalid)
        except FormatError as e:
            with pytest.raises(FormatError) as e2:
                _generic(monkeypatch, GT, p, on_invalid=on_invalid)
            assert str(e) == str(e2.value)
            continue
        slow = _generic(monkeypatch, GT, p, on_invalid=on_invalid)
        for a, b in zip(fast, slow, strict=True):
            assert_frame_equal(a, b)


MALFORMED = [
    '[{"image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4], "score": 0.5}',
    '[{"image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4], "score": 0.5}] x',
    '[{"image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4], "score": 0.5},]',
    '[{"image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4], "score": 05}]',
    '[{"image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4], "score": .5}]',
    '[{"image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4], "score": 1.}]',
    '[{"image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4], "score": 0.5, "x": "\\q"}]',
    '[{"image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4], "score": 0.5, "x": [1 2]}]',
    '[{"image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4], "score": 0.5, "x": tru}]',
    '[{"image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4], "score": 0.5, "x": "a\tb"}]',
    '[{"image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4], "score": -}]',
    '[{"image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4], "score": 1e}]',
    '[{"image_id": 1, "category_id": 7 "bbox": [1, 2, 3, 4], "score": 0.5}]',
    "[",
    "",
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_same_errors(tmp_path, monkeypatch, text):
    p = _write(tmp_path, text)
    assert _scan.scan_results(p) is None
    with pytest.raises(FormatError) as fast:
        pm.read_coco(GT, p)
    with pytest.raises(FormatError) as slow:
        _generic(monkeypatch, GT, p)
    assert str(fast.value) == str(slow.value)


def test_bad_utf8_and_truncated_segm(tmp_path, monkeypatch):
    good = '[{"image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4], "score": 0.5, "x": "'
    p = _write(tmp_path, good.encode() + b"\xff\xfe" + b'"}]')
    assert _scan.scan_results(p) is None
    with pytest.raises(FormatError):
        pm.read_coco(GT, p)
    seg = '[{"image_id": 1, "category_id": 7, "score": 0.5, "segmentation": {"size": [20, 30], "counts": "0\\'
    p = _write(tmp_path, seg)
    assert _scan.scan_results(p) is None


def test_rejects_same_as_generic(tmp_path, monkeypatch):
    """Rows the checks reject (unknown image / category, negative width, bad RLE) read the same."""
    recs = [
        {"image_id": 99, "category_id": 7, "bbox": [1, 2, 3, 4], "score": 0.5},
        {"image_id": 1, "category_id": 5, "bbox": [1, 2, 3, 4], "score": 0.5},
        {"image_id": 1, "category_id": 7, "bbox": [1, 2, -3, 4], "score": 0.5},
        {"image_id": 1, "category_id": 7, "bbox": [], "score": 0.5},
        {"image_id": 2, "category_id": 1, "bbox": [0.5, 0.25, 3, 4], "score": 1e-300},
    ]
    p = _write(tmp_path, json.dumps(recs))
    assert isinstance(_scan.scan_results(p), _scan.Scanned)
    _both(monkeypatch, GT, p, on_invalid="drop")
    _same_outcome(monkeypatch, p)


# --- property: any json.dumps of records reads as json.loads reads ---------------------------------
_num = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                 st.floats(min_value=0, max_value=1e4), st.sampled_from([0.1, 1e-7, 5e-324, -0.0]))
_json = st.recursive(st.none() | st.booleans() | _num | st.text(max_size=5),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
                     max_leaves=6)
_record = st.fixed_dictionaries(
    {"image_id": st.sampled_from([1, 2, 3, 4]), "category_id": st.sampled_from([1, 7, 8]),
     "score": _num, "bbox": st.one_of(st.just([]), st.lists(_num, min_size=4, max_size=4))},
    optional={"extra": _json, "segmentation2": _json})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recs=st.lists(_record, min_size=1, max_size=8), indent=st.sampled_from([None, 1, "\t"]))
def test_property_json_dumps(tmp_path, monkeypatch, recs, indent):
    p = _write(tmp_path, json.dumps(recs, indent=indent), "prop.json")
    sc = _scan.scan_results(p)
    ref = json.loads(p.read_text())
    if isinstance(sc, _scan.Scanned):
        assert sc.img.tolist() == [r["image_id"] for r in ref]
        assert np.array_equal(sc.score.view(np.uint64), _bits([float(r["score"]) for r in ref]))
        four = [len(r["bbox"]) == 4 for r in ref]
        assert sc.box_missing.tolist() == [not f for f in four]
        got = sc.box[np.array(four)]
        want = [[float(v) for v in r["bbox"]] for r in ref if len(r["bbox"]) == 4]
        assert np.array_equal(got.view(np.uint64), _bits(want).reshape(-1, 4))
    else:  # what may send a json.dumps file away: a key written with escapes, a huge number
        text = p.read_text()
        assert "\\" in text or "e+" in text or any(
            abs(v) > 1e300 for r in ref for v in r["bbox"] + [r["score"]] if isinstance(v, float))
    _same_outcome(monkeypatch, p)


def test_file_bytes_are_mapped_writable_and_checked_for_utf8(tmp_path):
    """The scanners' input: a writable copy-on-write map of the file (the compiled kernels take
    writable arrays; writing must not reach the file), a bytearray for what cannot be mapped
    (an empty file, a pipe), and the UTF-8 check without a copy for ASCII."""
    import mmap as _mmap
    import os as _os

    from polars_metrics.io.coco._scan import is_utf8, read_bytes

    p = tmp_path / "a.json"
    p.write_bytes(b'[{"x": 1}]')
    data = read_bytes(p)
    assert isinstance(data, _mmap.mmap) and data[:] == b'[{"x": 1}]'
    arr = np.frombuffer(data, np.uint8)
    assert arr.flags.writeable
    arr[0] = ord("{")
    assert p.read_bytes() == b'[{"x": 1}]'  # copy-on-write: the file is untouched
    (tmp_path / "empty.json").write_bytes(b"")
    assert read_bytes(tmp_path / "empty.json") == bytearray()
    r, w = _os.pipe()
    _os.write(w, b"[]")
    _os.close(w)
    try:
        assert read_bytes(Path(f"/proc/self/fd/{r}")) == bytearray(b"[]")
    finally:
        _os.close(r)
    assert is_utf8(bytearray(b"plain")) and is_utf8(bytearray("é 漢字".encode()))
    assert not is_utf8(bytearray(b"ok \xff\xfe")) and is_utf8(bytearray())
