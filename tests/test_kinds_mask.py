"""Masks (COCO RLE): IoU vs ``pycocotools.mask.iou`` (1e-12) and the dense naive reference,
box = polygon = rasterized mask, the empty and size rules, constructors and checks."""
from __future__ import annotations

import io
import os

import naive_kinds as naive
import numpy as np
import polars as pl
import pycocotools.mask as mask_api  # noqa: E402
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies_kinds import dense_mask

import polars_metrics as pm

SETTINGS = settings(max_examples=int(50 * float(os.environ.get("PM_EXAMPLES_SCALE", "1"))),
                    deadline=None, suppress_health_check=[HealthCheck.too_slow])


def masks(arrays, rows) -> pl.DataFrame:
    return pl.DataFrame({"data_row": rows, "id": list(range(len(arrays))), "feature": ["m"] * len(arrays),
                         "mask": pm.masks_from_arrays(arrays)})


def coco(m):
    return mask_api.encode(np.asfortranarray(m.astype(np.uint8)))


@SETTINGS
@given(st.lists(st.tuples(dense_mask(), st.sampled_from(["a", "b"])), min_size=1, max_size=6),
       st.lists(st.tuples(dense_mask(), st.sampled_from(["a", "b"])), min_size=1, max_size=6))
def test_mask_pairs_match_pycocotools_and_naive(gt, pd):
    g_arr, g_rows = zip(*gt, strict=True)
    p_arr, p_rows = zip(*pd, strict=True)
    got = {(r, g, p): v for r, g, p, v in pm.pairwise_iou(masks(g_arr, list(g_rows)),
                                                           masks(p_arr, list(p_rows))).iter_rows()}
    want = {}
    for g, (gm, gr) in enumerate(gt):
        for p, (pm_, pr) in enumerate(pd):
            if gr != pr:
                continue
            ref = float(mask_api.iou([coco(pm_)], [coco(gm)], [0])[0, 0])
            slow = naive.mask_iou(pm.mask_from_array(gm), pm.mask_from_array(pm_))
            assert ref == pytest.approx(slow, abs=1e-12)
            if ref > 0:
                want[(gr, g, p)] = ref
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert abs(got[k] - v) <= 1e-12


BOX = st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(1, 6), st.integers(1, 6))


@settings(SETTINGS, max_examples=max(1, SETTINGS.max_examples // 3))
@given(st.lists(st.tuples(BOX, BOX), min_size=1, max_size=25))
def test_box_polygon_and_rasterized_mask_agree(cases):
    """Integer boxes (x, y, w, h): box IoU = IoU of the same rectangles as polygons = IoU of the
    rasterized masks. One data row per case, one call per kind."""
    rows = [str(i) for i in range(len(cases))]

    def frame(col, values, dtype):
        return pl.DataFrame({"data_row": rows, "feature": ["f"] * len(rows), col: values},
                            schema_overrides={col: dtype})

    def as_box(x, y, w, h):
        return [float(x), float(y), float(x + w), float(y + h)]

    def as_polygon(x, y, w, h):
        return [[[x, y], [x + w, y], [x + w, y + h], [x, y + h]]]

    def as_mask(x, y, w, h):
        m = np.zeros((16, 16), bool)
        m[y:y + h, x:x + w] = True
        return pm.mask_from_array(m)

    def ious(col, make, dtype):
        out = pm.pairwise_iou(frame(col, [make(*a) for a, _ in cases], dtype),
                              frame(col, [make(*b) for _, b in cases], dtype))
        got = dict(zip(out["data_row"], out["iou"], strict=True))
        return [got.get(r, 0.0) for r in rows]

    box = ious("bbox", as_box, pm.BBOX_DTYPE)
    np.testing.assert_allclose(ious("polygon", as_polygon, pm.POLYGON_DTYPE), box, atol=1e-12, rtol=0)
    np.testing.assert_allclose(ious("mask", as_mask, pm.MASK_DTYPE), box, atol=1e-12, rtol=0)


def test_empty_masks_have_iou_zero():
    empty = np.zeros((4, 5), bool)
    full = np.ones((4, 5), bool)
    got = pm.pairwise_iou(masks([empty, full], ["r", "r"]), masks([empty], ["r"]))
    assert got.height == 0
    assert mask_api.iou([coco(empty)], [coco(empty)], [0])[0, 0] == 0.0
    df = pl.DataFrame({"a": pm.masks_from_arrays([empty, full]), "b": pm.masks_from_arrays([empty, full])})
    assert df.select(pl.col("a").pm.mask_iou("b")).to_series().to_list() == [0.0, 1.0]


def test_masks_of_different_sizes_name_both_ids():
    gt = masks([np.ones((4, 5), bool)], ["r"]).with_columns(pl.lit("g-7").alias("id"))
    pd = masks([np.ones((5, 4), bool)], ["r"]).with_columns(pl.lit("p-9").alias("id"))
    with pytest.raises(pm.InvalidAnnotationError, match=r"id='g-7' is 4×5.*id='p-9' is 5×4"):
        pm.pairwise_iou(gt, pd)
    # different sizes in different data rows are fine
    pd_other_row = pd.with_columns(pl.lit("s").alias("data_row"))
    assert pm.pairwise_iou(gt, pd_other_row).height == 0


def test_rle_that_does_not_cover_the_image_fails_the_check():
    bad = pl.DataFrame({"data_row": ["r"], "feature": ["m"], "mask": [{"height": 2, "width": 2, "counts": [1, 2]}]},
                       schema_overrides={"mask": pm.MASK_DTYPE})
    with pytest.raises(pm.InvalidAnnotationError, match="do not sum to height × width"):
        pm.pairwise_iou(bad, bad)
    ev = pm.evaluate(bad, bad, on_invalid="drop", confidence_thresholds=[0.0], iou_thresholds=[0.5])
    assert ev.rejects["reason"].to_list() == ["mask RLE counts do not sum to height × width"] * 2


def test_coco_compressed_and_size_counts_structs():
    rng = np.random.default_rng(5)
    arrays = [rng.random((6, 7)) < 0.4 for _ in range(3)]
    compressed = [coco(a) for a in arrays]
    as_strings = pl.DataFrame({"data_row": ["r"] * 3, "feature": ["m"] * 3,
                               "mask": [{"size": c["size"], "counts": c["counts"].decode()} for c in compressed]})
    as_lists = pl.DataFrame({"data_row": ["r"] * 3, "feature": ["m"] * 3,
                             "mask": [{"size": [6, 7], "counts": pm.mask_from_array(a)["counts"]} for a in arrays]})
    reference = masks(arrays, ["r"] * 3).drop("id")
    want = pm.pairwise_iou(reference, reference)
    assert pm.pairwise_iou(as_strings, reference).equals(want)
    assert pm.pairwise_iou(as_lists, as_strings).equals(want)


def test_dense_and_png_constructors(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(2)
    a = rng.random((9, 11)) < 0.5
    value = pm.mask_from_array(a)
    assert np.array_equal(pm.mask_to_array(value), a)
    # the same runs as pycocotools' encoder (compressed string decoded by the loader)
    from polars_metrics.kinds.mask import normalize

    loaded = normalize(pl.DataFrame({"mask": [{"size": [9, 11], "counts": coco(a)["counts"].decode()}]}), "t")
    assert loaded["mask"].to_list() == [value]
    # binary PNG, 0/1 (the platform's) and 0/255, from bytes, a path and a file:// URL
    for scale in (1, 255):
        buf = io.BytesIO()
        Image.fromarray(a.astype(np.uint8) * scale).save(buf, format="PNG")
        assert pm.mask_from_png(buf.getvalue()) == value
    path = tmp_path / "m.png"
    Image.fromarray(a.astype(np.uint8)).save(path)
    assert pm.mask_from_png(path) == value == pm.mask_from_png(f"file://{path}")
    # composite colour mask: one instance per RGB colour
    b = rng.random((9, 11)) < 0.3
    rgb = np.zeros((9, 11, 3), np.uint8)
    rgb[a] = (255, 0, 0)
    rgb[b & ~a] = (0, 128, 255)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    assert pm.mask_from_png(buf.getvalue(), color=(255, 0, 0)) == value
    assert pm.mask_from_png(buf.getvalue(), color=[0, 128, 255]) == pm.mask_from_array(b & ~a)
    assert pm.mask_from_png(buf.getvalue()) == pm.mask_from_array(a | b)


def test_platform_png_test_vector():
    # LABELBOX_FORMATS.md §2.2: a 5×4 (w×h) image with a 3×2 block of 1s
    import base64

    png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAUAAAAECAAAAABjWKqcAAAAF0lEQVR4nGNgYGBgYGBkYGRg+M/EgAAADUUBBAostmsAAAAASUVORK5CYII=")
    m = pm.mask_to_array(pm.mask_from_png(png))
    assert m.shape == (4, 5) and m.sum() == 6
