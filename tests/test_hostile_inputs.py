"""Hostile input over the public entry points: malformed RLE strings, ragged geometry with empty
parts and short rings, coordinates whose areas overflow or underflow float64, greyscale+alpha
PNGs, huge mask sizes, polygons far outside their image, rings too complex to repair, and the
``.pm`` expressions. Every bad value must end in the library's error naming table, column and
row (or a reject under ``on_invalid="drop"``) — never a crash, a raw polars / numpy / PIL error,
or a silent number.

Crash-prone cases (compiled kernels, GEOS) run in a subprocess: a segfault or abort is a failed
return code, not a dead test runner. Expected values are derived in the test (a naive decoder,
hand counts, pycocotools on an equivalent input).
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import polars_metrics as pm
from polars_metrics.errors import FormatError, InvalidAnnotationError, PolarsMetricsError

ROOT = Path(__file__).resolve().parents[1]
BOX = {"bbox": pl.Array(pl.Float64, 4)}


def isolated(code: str, timeout: float = 300) -> list[dict]:
    """Run ``code`` in a fresh interpreter importing this checkout; it prints one JSON object
    per line. A crash (segfault, abort, heap corruption) fails here, by return code."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba_cache"))
    prelude = textwrap.dedent("""
        import json, sys, warnings
        import numpy as np, polars as pl, polars_metrics as pm
        warnings.simplefilter("ignore")
        def attempt(label, fn):
            try:
                out = fn()
                print(json.dumps({"label": label, "ok": True, "value": out}), flush=True)
            except pm.errors.PolarsMetricsError as e:
                print(json.dumps({"label": label, "ok": False, "error": type(e).__name__,
                                  "library": True, "message": str(e)}), flush=True)
            except Exception as e:
                print(json.dumps({"label": label, "ok": False, "error": type(e).__name__,
                                  "library": False, "message": str(e)}), flush=True)
    """)
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"the process failed (return code {proc.returncode}; < 0 or 134/139: a crash)\n"
        f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-3000:]}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def library_error(result: dict, *needles: str) -> None:
    assert not result["ok"], f"{result['label']}: no error, got {result.get('value')}"
    assert result["library"], f"{result['label']}: raw {result['error']}: {result['message']}"
    for needle in needles:
        assert needle in result["message"], f"{result['label']}: {needle!r} not in {result['message']!r}"


# --- 1. compressed RLE strings ---------------------------------------------------------------------
def naive_decode(text: str) -> tuple[list[int], bool]:
    """COCO's rleFrString written out plainly, with the validity rules: (counts, malformed)."""
    counts: list[int] = []
    bad = any(not 48 <= ord(ch) <= 111 for ch in text)
    p = 0
    while p < len(text):
        x, k, more = 0, 0, True
        while more and p < len(text):
            c = ord(text[p]) - 48
            if k < 7:
                x |= (c & 0x1F) << (5 * k)
            else:
                bad = True
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10) and k <= 7:
                x |= -1 << (5 * k)
        bad |= more
        if len(counts) > 2:
            x += counts[-2]
        if x < 0 or x > 0xFFFFFFFF:
            bad, x = True, 0
        counts.append(x)
    return counts, bad


MALFORMED_RLE = {
    "ends in a continuation char": "0" + "o" * 60,
    "one continuation char": "o",
    "count then continuation": "1o",
    "overlong run": "g" * 7 + "0",
    "negative count": "00O",
    "outside alphabet": "12p",
    "control char": "1\x7f",
}


def test_malformed_rle_strings_are_rejected_not_crashing():
    """Before: a string ending in a continuation char wrote one count past the allocation
    (heap corruption / SIGABRT); now every malformed string is a row error or a reject."""
    code = f"MALFORMED = {MALFORMED_RLE!r}\n" + textwrap.dedent("""
    for label, text in MALFORMED.items():
        gt = pl.DataFrame({"data_row": ["a", "a"], "feature": ["x", "x"], "id": [7, 8],
                           "mask": [{"size": [2, 2], "counts": "04"}, {"size": [4, 4], "counts": text}]})
        attempt("evaluate " + label, lambda: pm.evaluate(gt, gt.head(1)).summary().height)
        attempt("drop " + label, lambda: pm.evaluate(gt, gt.head(1), on_invalid="drop").rejects.rows())
        coco = {"images": [{"id": 1, "height": 4, "width": 4}], "categories": [{"id": 1, "name": "c"}],
                "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 1.0,
                                 "bbox": [0, 0, 1, 1], "segmentation": {"size": [4, 4], "counts": text}}]}
        attempt("read_coco " + label, lambda: pm.read_coco(coco)[0].height)
        attempt("read_coco drop " + label, lambda: pm.read_coco(coco, on_invalid="drop")[2].rows())
        df = pl.DataFrame({"a": [{"size": [4, 4], "counts": "04"}, {"size": [4, 4], "counts": text}]})
        attempt("mask_iou " + label, lambda: df.select(pl.col("a").pm.mask_iou("a")).to_series().to_list())
        attempt("mask_to_array " + label, lambda: pm.mask_to_array({"size": [4, 4], "counts": text}).sum())
    """)
    out = {r["label"]: r for r in isolated(code)}
    assert len(out) == 6 * len(MALFORMED_RLE)
    for label in MALFORMED_RLE:
        library_error(out["evaluate " + label], "ground_truth.mask", "row 1", "id=8",
                      "not a valid compressed COCO RLE string")
        rejects = out["drop " + label]["value"]
        assert [(r[0], r[1], r[3]) for r in rejects] == [("ground_truth", 1, "8")]
        library_error(out["read_coco " + label], "annotations[0]", "segmentation",
                      "not a valid compressed RLE string")
        assert [r[:2] for r in out["read_coco drop " + label]["value"]] == [["annotations", 0]]
        library_error(out["mask_iou " + label], "a.mask", "row 1")
        library_error(out["mask_to_array " + label], "not a valid compressed COCO RLE")


def test_rle_decoder_matches_a_naive_decoder_on_random_strings():
    """Hypothesis over arbitrary strings of COCO's alphabet (and a few bytes outside it): the
    kernel never writes out of bounds (run in a subprocess) and agrees with a plain decoder
    on the counts of valid strings and on which strings are malformed."""
    code = textwrap.dedent(inspect_source(naive_decode)) + textwrap.dedent("""
    from hypothesis import given, settings, strategies as st
    from polars_metrics.kinds._rle import decode_strings
    alphabet = st.sampled_from([chr(c) for c in range(48, 112)] + ["/", "p", "~"])
    checked = [0]
    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(st.lists(st.text(alphabet, max_size=40), min_size=1, max_size=8))
    def prop(texts):
        counts, offsets, bad = decode_strings(texts)
        for i, t in enumerate(texts):
            ref, ref_bad = naive_decode(t)
            assert bool(bad[i]) == ref_bad, (t, bad[i], ref_bad)
            if not ref_bad:
                assert counts[offsets[i]:offsets[i + 1]].tolist() == ref, t
        checked[0] += 1
    prop()
    print(json.dumps({"label": "hypothesis", "ok": True, "value": checked[0]}))
    """)
    out = isolated(code)
    assert out[-1]["value"] >= 100


def inspect_source(fn) -> str:
    import inspect
    return inspect.getsource(fn)


# --- 2. ragged geometry ------------------------------------------------------------------------------
SQUARE = [[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]]
BAD_POLYGONS = {  # multipolygon values: (value, words of the reason)
    "multipolygon with an empty part": ([[SQUARE], []], "part with no ring"),
    "only empty parts": ([[], []], "part with no ring"),
    "ring of 2 points": ([[[[0.0, 0.0], [1.0, 1.0]]]], "fewer than 3 distinct points"),
    "empty ring": ([[SQUARE, []]], "fewer than 3 distinct points"),
    "closed ring of 2 distinct points": ([[[[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]]], "fewer than 3"),
    "NaN coordinate": ([[[[0.0, 0.0], [float("nan"), 0.0], [1.0, 1.0]]]], "NaN or infinite"),
    "infinite coordinate": ([[[[0.0, 0.0], [float("inf"), 0.0], [1.0, 1.0]]]], "NaN or infinite"),
    "coordinate 1e200": ([[[[0.0, 0.0], [1e200, 0.0], [1.0, 1.0]]]], "beyond ±1e150"),
    "area underflows": ([[[[0.0, 0.0], [1e-200, 0.0], [1e-200, 1e-200]]]], "underflows"),
}


def test_bad_polygons_rejected_by_evaluate_pairwise_parquet_and_expression(tmp_path):
    """Before: a multipolygon with an empty part segfaulted in shapely.from_ragged_array (during
    the make_valid repair, also from Parquet and the CLI). Every ragged problem is now one row
    error naming table, column, row and id — or a reject — before any kernel or GEOS call."""
    bowtie = [[[[0.0, 0.0], [4.0, 4.0], [4.0, 0.0], [0.0, 4.0]]]]  # invalid: triggers the repair
    cases = {k: v[0] for k, v in BAD_POLYGONS.items()}
    code = 'nan, inf = float("nan"), float("inf")\n' + f"CASES = {cases!r}\nBOWTIE = {bowtie!r}\nTMP = {str(tmp_path)!r}\n" + textwrap.dedent("""
    dtype = pl.List(pl.List(pl.List(pl.Array(pl.Float64, 2))))
    for label, value in CASES.items():
        gt = pl.DataFrame({"data_row": ["a"] * 3, "feature": ["x"] * 3, "id": [10, 11, 12],
                           "kind": ["polygon"] * 3, "polygon": [BOWTIE, value, BOWTIE]},
                          schema_overrides={"polygon": dtype})
        attempt("evaluate " + label, lambda: pm.evaluate(gt, gt.head(1)).summary().height)
        attempt("drop " + label, lambda: pm.evaluate(gt, gt.head(1), on_invalid="drop").rejects.rows())
        attempt("pairwise " + label, lambda: pm.pairwise_iou(gt, gt).height)
        path = f"{TMP}/gt.parquet"
        gt.write_parquet(path)
        attempt("parquet " + label, lambda: pm.evaluate(pl.read_parquet(path), gt.head(1)).summary().height)
        df = pl.DataFrame({"p": [BOWTIE, value], "q": [BOWTIE, BOWTIE]}, schema={"p": dtype, "q": dtype})
        attempt("expr " + label, lambda: df.select(pl.col("p").pm.polygon_iou("q")).to_series().to_list())
    """)
    out = {r["label"]: r for r in isolated(code)}
    for label, (_, words) in BAD_POLYGONS.items():
        for entry in ("evaluate ", "pairwise ", "parquet "):
            library_error(out[entry + label], "ground_truth.polygon", "row 1", "id=11", words)
        assert [(r[0], r[1], r[3]) for r in out["drop " + label]["value"]] == [("ground_truth", 1, "11")]
        library_error(out["expr " + label], "p.polygon", "row 1", words)


def naive_polygon_bad(value) -> bool:
    """Independent statement of the ragged rules for one multipolygon value."""
    for part in value:
        if len(part) == 0:
            return True
        for ring in part:
            pts = [tuple(p) for p in ring]
            if any(not np.isfinite(c) or abs(c) > 1e150 for p in pts for c in p):
                return True
            if len(pts) >= 2 and pts[0] == pts[-1]:
                pts = pts[:-1]
            if len(set(pts)) < 3:
                return True
    return False


def test_random_ragged_polygons_accounted_for():
    """Hypothesis (in a subprocess): random multipolygons with empty parts, empty / short rings,
    NaN / inf / huge coordinates. ``on_invalid="drop"`` never crashes, and exactly the rows the
    naive rules call bad are rejected (every row accounted for)."""
    code = textwrap.dedent(inspect_source(naive_polygon_bad)) + textwrap.dedent("""
    from hypothesis import given, settings, HealthCheck, strategies as st
    coord = st.one_of(st.integers(-3, 3).map(float), st.sampled_from([float("nan"), float("inf"), 1e200]))
    ring = st.lists(st.tuples(coord, coord).map(list), max_size=5)
    multipolygon = st.lists(st.lists(ring, max_size=2), max_size=3)
    dtype = pl.List(pl.List(pl.List(pl.Array(pl.Float64, 2))))
    runs = [0]
    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(multipolygon, min_size=1, max_size=6))
    def prop(values):
        n = len(values)
        gt = pl.DataFrame({"data_row": ["a"] * n, "feature": ["x"] * n, "kind": ["polygon"] * n,
                           "polygon": values}, schema_overrides={"polygon": dtype})
        ev = pm.evaluate(gt, gt, on_invalid="drop")
        got = sorted(ev.rejects.filter(pl.col("table") == "ground_truth")["row"].unique().to_list())
        want = [i for i, v in enumerate(values) if naive_polygon_bad(v)]
        assert got == want, (values, got, want)
        runs[0] += 1
    prop()
    print(json.dumps({"label": "hypothesis", "ok": True, "value": runs[0]}))
    """)
    assert isolated(code, timeout=600)[-1]["value"] >= 30


def test_lines_points_spans_rejected_with_row():
    code = """
    nan = float("nan")
    line = pl.DataFrame({"data_row": ["a"] * 3, "feature": ["x"] * 3, "id": [1, 2, 3],
                         "line": [[[0.0, 0.0], [5.0, 0.0]], [[0.0, 0.0]], [[0.0, 0.0], [1e200, 1.0]]]})
    attempt("line evaluate", lambda: pm.evaluate(line, line.head(1)).summary().height)
    attempt("line drop", lambda: pm.evaluate(line, line.head(1), on_invalid="drop").rejects.rows())
    attempt("line expr", lambda: line.select(pl.col("line").pm.line_iou("line", radius=1.0)).to_series().to_list())
    pt = pl.DataFrame({"data_row": ["a"] * 2, "feature": ["x"] * 2, "id": [1, 2],
                       "point": [[0.0, 0.0], [nan, 1.0]]})
    attempt("point expr", lambda: pt.select(pl.col("point").pm.point_iou("point")).to_series().to_list())
    sp = pl.DataFrame({"a": [[0, 4], [5, 3]], "b": [[1, 2], [0, 1]]})
    attempt("span expr", lambda: sp.select(pl.col("a").pm.span_iou("b")).to_series().to_list())
    sp3 = pl.DataFrame({"a": [[0, 4], [5]], "b": [[1, 2], [0, 1]]})
    attempt("span expr short", lambda: sp3.select(pl.col("a").pm.span_iou("b")).to_series().to_list())
    """
    out = {r["label"]: r for r in isolated(code)}
    library_error(out["line evaluate"], "ground_truth.line", "row 2", "id=3", "beyond ±1e150")
    assert sorted((r[1], r[5]) for r in out["line drop"]["value"]) == [
        (1, "line has fewer than 2 points"),
        (2, "line has a coordinate beyond ±1e150: areas would overflow float64")]
    library_error(out["line expr"], "line.line", "row 2", "beyond ±1e150")
    library_error(out["point expr"], "point.point", "row 1", "NaN or infinite")
    library_error(out["span expr"], "a.end", "row 1", "end < start")
    library_error(out["span expr short"], "row 1", "expected (start, end)")


# --- 3. areas that overflow or underflow float64 -----------------------------------------------------
@pytest.mark.parametrize("scale,verdict", [
    (1e154, "beyond ±1e150"),         # (2e154)² overflows: identical boxes scored FP + FN
    (1e-200, "underflows"),             # (1e-200)² underflows to 0: the same
    (1e149, 1.0), (1e-140, 1.0), (1.0, 1.0),
])
def test_identical_boxes_score_one_or_are_rejected(scale, verdict):
    gt = pl.DataFrame({"data_row": ["a"], "feature": ["x"], "id": [3],
                       "bbox": [[scale, scale, 2 * scale, 2 * scale]]}, schema_overrides=BOX)
    expr = pl.DataFrame({"a": gt["bbox"], "b": gt["bbox"]})
    if isinstance(verdict, str):
        for call in (lambda: pm.evaluate(gt, gt), lambda: pm.pairwise_iou(gt, gt),
                     lambda: expr.select(pl.col("a").pm.box_iou("b"))):
            with pytest.raises(InvalidAnnotationError, match=verdict) as err:
                call()
            assert "row 0" in str(err.value) and "bbox" in str(err.value)
        assert pm.evaluate(gt, gt, on_invalid="drop").rejects.height == 2
    else:
        assert pm.pairwise_iou(gt, gt)["iou"].to_list() == [verdict]
        assert expr.select(pl.col("a").pm.box_iou("b")).item() == verdict
        s = pm.evaluate(gt, gt).summary(confidence=0.5, iou=0.5)
        assert s.filter(pl.col("feature") == "x").select("tp", "fp", "fn").row(0) == (1, 0, 0)


@settings(max_examples=60, deadline=None)
@given(st.integers(-140, 149), st.floats(1.0, 9.0), st.floats(1.0, 9.0))
def test_identical_boxes_at_any_accepted_scale_score_one(exponent, w, h):
    s = 10.0 ** exponent
    b = [[s, -s, s * (1 + w), s * (h - 1)]]
    df = pl.DataFrame({"a": b, "b": b}, schema={"a": BOX["bbox"], "b": BOX["bbox"]})
    assert df.select(pl.col("a").pm.box_iou("b")).item() == pytest.approx(1.0, rel=1e-12)


def test_polygon_overflow_and_underflow():
    for scale, words in ((1e154, "beyond ±1e150"), (1e-200, "underflows")):
        sq = [[[x * scale, y * scale] for x, y in SQUARE]]
        gt = pl.DataFrame({"data_row": ["a"], "feature": ["x"], "kind": ["polygon"], "polygon": [sq]})
        with pytest.raises(InvalidAnnotationError, match=words):
            pm.evaluate(gt, gt)
    sq = [[[x * 1e149, y * 1e149] for x, y in SQUARE]]
    gt = pl.DataFrame({"data_row": ["a"], "feature": ["x"], "kind": ["polygon"], "polygon": [sq]})
    assert pm.pairwise_iou(gt, gt)["iou"].to_list() == [1.0]


# --- 4. PNG masks ------------------------------------------------------------------------------------
def png(arr: np.ndarray, mode: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, format="PNG")
    return buf.getvalue()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_png_modes_of_one_picture_agree(h, w, seed):
    """Before: a greyscale+alpha PNG read its alpha channel as foreground. L, LA, RGB, RGBA
    (any alpha) and palette versions of one picture now give one mask: its nonzero pixels."""
    rng = np.random.default_rng(seed)
    grey = (rng.random((h, w)) < 0.4).astype(np.uint8) * rng.integers(1, 256, (h, w)).astype(np.uint8)
    alpha = rng.integers(0, 256, (h, w)).astype(np.uint8)
    expected = {"height": h, "width": w,
                "counts": pm.mask_from_array(grey != 0)["counts"]}  # hand: nonzero grey pixels
    rgb = np.stack([grey] * 3, axis=2)
    pal = Image.fromarray(grey, "L").convert("P")
    buf = io.BytesIO()
    pal.save(buf, format="PNG")
    for data in (png(grey, "L"), png(np.stack([grey, alpha], 2), "LA"), png(rgb, "RGB"),
                 png(np.concatenate([rgb, alpha[..., None]], 2), "RGBA"), buf.getvalue()):
        assert pm.mask_from_png(data) == expected


def test_png_and_mask_to_array_errors_are_library_errors(tmp_path):
    good = png(np.eye(3, dtype=np.uint8) * 255, "L")
    for source in (b"not a png", good[: len(good) // 2], b"", 12, None):
        with pytest.raises(FormatError, match="mask_from_png"):
            pm.mask_from_png(source)
    for color in ((1, 2), (0, 0, 300), "red"):
        with pytest.raises(FormatError, match="color"):
            pm.mask_from_png(good, color=color)
    bad_values = {
        "negative count": ({"height": 2, "width": 2, "counts": [-1, 5]}, "negative"),
        "missing width": ({"height": 2, "counts": [4]}, "fields"),
        "sum": ({"height": 2, "width": 2, "counts": [5]}, "do not sum"),
        "not a dict": (3, "expects a mask dict"),
        "huge": ({"height": 2**32, "width": 2**32, "counts": [0]}, "larger than"),
        "count above uint32": ({"height": 1, "width": 1, "counts": [2**40]}, "above 2\\*\\*32"),
        "fractional size": ({"height": 2.5, "width": 2, "counts": [5]}, "missing or negative"),
    }
    for _label, (value, words) in bad_values.items():
        with pytest.raises(PolarsMetricsError, match=words):
            pm.mask_to_array(value)


# --- 5. mask sizes ------------------------------------------------------------------------------------
def test_mask_sizes_exact_and_bounded():
    """Before: sizes were compared through h * 2**31 + w (colliding), and h * w overflowed, so
    a 2**32 x 2**32 mask with counts [0] passed the sum check."""
    huge = pl.DataFrame({"data_row": ["a"], "feature": ["x"], "id": [4],
                         "mask": [{"height": 2**32, "width": 2**32, "counts": [0]}]})
    with pytest.raises(InvalidAnnotationError, match="row 0.*id=4") as err:
        pm.evaluate(huge, huge)
    assert "larger than 2,147,483,647 pixels a side" in str(err.value)
    # transposed sizes (3x5 vs 5x3) have one pixel count: compared per dimension, they differ
    a = pl.DataFrame({"data_row": ["a"], "feature": ["x"], "mask": [{"height": 3, "width": 5, "counts": [15]}]})
    b = pl.DataFrame({"data_row": ["a"], "feature": ["x"], "mask": [{"height": 5, "width": 3, "counts": [15]}]})
    with pytest.raises(InvalidAnnotationError, match="mask sizes differ"):
        pm.evaluate(a, b)
    # a run above 2**32 - 1, a negative run, a fractional size: row rejects, not cast errors
    odd = pl.DataFrame({"data_row": ["a"] * 4, "feature": ["x"] * 4, "id": [1, 2, 3, 4],
                        "mask": [{"height": 2, "width": 2, "counts": [4]},
                                 {"height": 2, "width": 2, "counts": [2**33, 0]},
                                 {"height": 2, "width": 2, "counts": [-1, 5]},
                                 {"height": 2, "width": 2, "counts": [4]}]})
    ev = pm.evaluate(odd, odd.head(1), on_invalid="drop")
    assert sorted(ev.rejects.filter(pl.col("table") == "ground_truth")["row"].to_list()) == [1, 2]
    frac = pl.DataFrame({"data_row": ["a"], "feature": ["x"], "mask": [{"height": 2.5, "width": 2.0, "counts": [5]}]})
    with pytest.raises(InvalidAnnotationError, match="height or width is missing"):
        pm.evaluate(frac, frac)


# --- 6. unbounded work: polygons far outside the image, rings too complex to repair ---------------------
def test_coco_polygon_far_outside_the_image_is_bounded():
    """Before: a 4-vertex polygon reaching x = 1e7 on a 10 x 10 image allocated 3.3 GB in the
    rasterizer. It is clipped to the image (plus a margin) first; the mask equals pycocotools'
    for the same polygon cut at x = 30 (outside the image either way)."""
    import pycocotools.mask as mu

    code = """
    import resource
    def gt(poly):
        return {"images": [{"id": 1, "height": 10, "width": 10}], "categories": [{"id": 1, "name": "c"}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 1.0,
                                 "bbox": [0, 0, 1, 1], "segmentation": [poly]}]}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    attempt("far", lambda: pm.read_coco(gt([0, 0, 1e7, 0, 1e7, 5, 0, 5]))[0]["mask"].to_list())
    attempt("very far", lambda: pm.read_coco(gt([-1e300, -1e300, 1e300, 0, 1e300, 5, 0, 5]))[0]["mask"].to_list())
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps({"label": "rss", "ok": True, "value": grown}))
    """
    out = {r["label"]: r for r in isolated(code, timeout=120)}
    ref = mu.frPyObjects([[0, 0, 30, 0, 30, 5, 0, 5]], 10, 10)[0]
    ref_counts = [int(c) for c in _py_decode(ref["counts"])]
    assert out["far"]["value"][0]["counts"] == ref_counts
    assert out["very far"]["ok"]
    assert out["rss"]["value"] < 300 * 1024  # kB: far below the 3.3 GB it took


def _py_decode(s: bytes) -> list[int]:
    return naive_decode(s.decode())[0]


def test_rings_too_complex_to_repair_are_rejected_quickly():
    """Before: make_valid on one self-intersecting ring of 600 random vertices took minutes and
    5,000 vertices exhausted memory. A sweep counts edge crossings first: above 200 the row is
    rejected as too complex; a bowtie is still repaired."""
    code = """
    import time
    rng = np.random.default_rng(0)
    for n in (600, 5000):
        ring = rng.uniform(0, 100, (n, 2)).tolist()
        gt = pl.DataFrame({"data_row": ["a", "a"], "feature": ["x", "x"], "id": [1, 2], "kind": ["polygon"] * 2,
                           "polygon": [[ring], [[[0.0, 0.0], [2.0, 2.0], [2.0, 0.0], [0.0, 2.0]]]]})
        t = time.perf_counter()
        attempt(f"evaluate {n}", lambda: pm.evaluate(gt, gt.tail(1)).summary().height)
        attempt(f"drop {n}", lambda: [pm.evaluate(gt, gt.tail(1), on_invalid="drop").rejects.rows(),
                                      time.perf_counter() - t])
        df = pl.DataFrame({"p": [[ring]]})
        attempt(f"expr {n}", lambda: df.select(pl.col("p").pm.polygon_iou("p")).to_series().to_list())
    """
    out = {r["label"]: r for r in isolated(code, timeout=240)}
    for n in (600, 5000):
        library_error(out[f"evaluate {n}"], "ground_truth.polygon", "row 0", "id=1", "too complex to repair")
        rejects, seconds = out[f"drop {n}"]["value"]
        assert [(r[1], r[3]) for r in rejects] == [(0, "1")]
        assert seconds < 30
        library_error(out[f"expr {n}"], "p.polygon", "row 0", "too complex")


# --- 7. the expression namespace ----------------------------------------------------------------------
def test_box_iou_expression_validates_like_evaluate():
    """Before: .pm.box_iou scored NaN and reversed boxes; it now raises evaluate's errors,
    naming the column and the frame row; a null box gives a null IoU (documented)."""
    nan = float("nan")
    df = pl.DataFrame({"a": [[0.0, 0.0, 1.0, 1.0], None, [0.0, 0.0, nan, 1.0]],
                       "b": [[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]},
                      schema={"a": BOX["bbox"], "b": BOX["bbox"]})
    with pytest.raises(InvalidAnnotationError, match=r"a\.bbox: 1 row\(s\) invalid: bbox has a NaN") as err:
        df.select(pl.col("a").pm.box_iou("b"))
    assert "row 2" in str(err.value)
    rev = df.with_columns(pl.Series("b", [[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0], [2.0, 0.0, 1.0, 1.0]],
                                    dtype=BOX["bbox"]))
    with pytest.raises(InvalidAnnotationError, match="b.bbox.*x1 < x0"):
        rev.head(1).vstack(rev.tail(1).with_columns(a=pl.lit([0.0, 0.0, 1.0, 1.0], dtype=BOX["bbox"]))
                           ).select(pl.col("a").pm.box_iou("b"))
    assert df.head(2).select(pl.col("a").pm.box_iou("b")).to_series().to_list() == [1.0, None]


# --- 8. JSON numbers beyond int64 / float64 in COCO files --------------------------------------------
HUGE_INT, BEYOND_FLOAT = 10**20, 10**400  # JSON integers have no size limit

COCO_GT = {"images": [{"id": 1, "height": 20, "width": 30}], "categories": [{"id": 1, "name": "c"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "area": 12}]}
COCO_RES = [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}]
# (label, file, path to the value, value, table, column, reason)
OVERSIZED = [
    ("image id", "gt", ("images", 0, "id"), HUGE_INT, "images", "id", "not a 64-bit integer"),
    ("image height", "gt", ("images", 0, "height"), HUGE_INT, "images", "height", "not a 64-bit integer"),
    ("category id", "gt", ("categories", 0, "id"), HUGE_INT, "categories", "id", "not a 64-bit integer"),
    ("annotation id", "gt", ("annotations", 0, "id"), -HUGE_INT, "annotations", "id", "not a 64-bit integer"),
    ("annotation image", "gt", ("annotations", 0, "image_id"), HUGE_INT, "annotations", "image_id",
     "not a 64-bit integer"),
    ("annotation area", "gt", ("annotations", 0, "area"), BEYOND_FLOAT, "annotations", "area", "finite"),
    ("annotation bbox", "gt", ("annotations", 0, "bbox", 2), BEYOND_FLOAT, "annotations", "bbox", "finite"),
    ("polygon", "gt", ("annotations", 0, "segmentation"), [[1, 2, BEYOND_FLOAT, 2, 4, 6]], "annotations",
     "segmentation", "not a list of polygons"),
    ("rle size", "gt", ("annotations", 0, "segmentation"), {"size": [HUGE_INT, 30], "counts": [600]},
     "annotations", "segmentation", "RLE size"),
    ("result image", "res", (0, "image_id"), HUGE_INT, "results", "image_id", "not a 64-bit integer"),
    ("result score", "res", (0, "score"), BEYOND_FLOAT, "results", "score", "finite"),
    ("result bbox", "res", (0, "bbox", 0), -BEYOND_FLOAT, "results", "bbox", "finite"),
    ("result rle size", "res", (0, "segmentation"), {"size": [20, HUGE_INT], "counts": "0j01N2"},
     "results", "segmentation", "RLE size"),
]


def _with(doc, path, value):
    doc = json.loads(json.dumps(doc))
    *parents, last = path
    node = doc
    for key in parents:
        node = node[key]
    node[last] = value
    return doc


@pytest.mark.parametrize("case", OVERSIZED, ids=[c[0] for c in OVERSIZED])
def test_numbers_beyond_int64_or_float64_are_row_errors(tmp_path, case):
    """Before: an integer beyond int64 (an id, a height, an RLE size) or beyond float64 (a
    coordinate, an area, a score) in a COCO file raised Python's raw OverflowError ("Python int
    too large to convert to C long"). Now each is the reader's error naming table, row and
    column, read from a file (typed scanner, which leaves such files to the generic reader) and
    from parsed JSON alike, and a reject under ``on_invalid="drop"``."""
    label, side, path, value, table, column, reason = case
    gt = _with(COCO_GT, path, value) if side == "gt" else COCO_GT
    res = _with(COCO_RES, path, value) if side == "res" else COCO_RES
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(res))
    for source in ((tmp_path / "gt.json", tmp_path / "res.json"), (gt, res)):
        for iou_type in ("bbox", "segm"):
            with pytest.raises(FormatError) as err:
                pm.read_coco(*source, iou_type=iou_type)
            message = str(err.value)
            assert f'{table}[0]: "{column}"' in message and reason in message, message
            *_, rejects = pm.read_coco(*source, iou_type=iou_type, on_invalid="drop")
            # (a dropped image also drops the annotations and results on it, each with its reason)
            assert (table, 0, column) in rejects.select("table", "row", "column").rows()
