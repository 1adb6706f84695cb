"""RLE kernels against pycocotools.mask: rasterization, area, bbox, IoU, string coding."""
from __future__ import annotations

import numpy as np
import pycocotools.mask as mask_utils  # noqa: E402
import pytest

from polars_metrics._kernels import rle as R

pytestmark = [
    pytest.mark.reference,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*"),
]


def _decode_ref(rle: dict) -> np.ndarray:
    """pycocotools' compressed string → our counts (checked separately against decode())."""
    s = rle["counts"]
    s = s.encode() if isinstance(s, str) else s
    counts, _, _ = R.rle_decode_strings(np.frombuffer(s, np.uint8), np.array([0, len(s)]))
    return counts


def _random_objects(rng: np.random.Generator, n: int, h: int, w: int) -> list[list[list[float]]]:
    objs = []
    for _ in range(n):
        polys = []
        for _ in range(int(rng.integers(1, 4))):
            k = int(rng.integers(3, 10))
            cx, cy = rng.uniform(-8, w + 8), rng.uniform(-8, h + 8)
            pts = np.stack([cx + rng.normal(0, 12, k), cy + rng.normal(0, 12, k)], 1).ravel()
            mode = rng.random()
            if mode < 0.3:
                pts = pts.round(0)  # integer vertices: upsampled points land on pixel centres
            elif mode < 0.5:
                pts = pts.round(1)
            if rng.random() < 0.2:
                pts = np.concatenate([pts, pts[:2]])  # explicit closing vertex: a degenerate edge
            if rng.random() < 0.1:
                pts = np.concatenate([pts[:2], pts])  # repeated first vertex
            polys.append(pts.tolist())
        objs.append(polys)
    return objs


def _rasterize(objs, h, w):
    coords = np.concatenate([np.asarray(p, float) for ob in objs for p in ob])
    plen = np.array([len(p) for ob in objs for p in ob])
    pptr = np.concatenate([[0], np.cumsum(plen)]).astype(np.int64)
    optr = np.concatenate([[0], np.cumsum([len(ob) for ob in objs])]).astype(np.int64)
    n = len(objs)
    return R.rle_from_polygons(coords, pptr, optr, np.full(n, h), np.full(n, w))


@pytest.mark.parametrize("seed,h,w", [(0, 60, 80), (1, 37, 23), (2, 120, 5)])
def test_polygons_identical_counts(seed, h, w):
    rng = np.random.default_rng(seed)
    objs = _random_objects(rng, 250, h, w)
    counts, offs = _rasterize(objs, h, w)
    for i, ob in enumerate(objs):
        ref = mask_utils.merge(mask_utils.frPyObjects(ob, h, w))
        np.testing.assert_array_equal(counts[offs[i] : offs[i + 1]], _decode_ref(ref), err_msg=str(i))


def test_decode_matches_dense_masks():
    rng = np.random.default_rng(3)
    h, w = 31, 47
    objs = _random_objects(rng, 60, h, w)
    counts, offs = _rasterize(objs, h, w)
    dense = R.rle_decode_dense(counts, offs, h * w)
    for i, ob in enumerate(objs):
        ref = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(ob, h, w)))
        np.testing.assert_array_equal(dense[i].reshape(w, h).T, ref)


def test_boxes_like_frBbox():
    rng = np.random.default_rng(4)
    h, w = 50, 70
    b = np.stack(
        [rng.uniform(-10, w, 200), rng.uniform(-10, h, 200), rng.uniform(0, 40, 200), rng.uniform(0, 40, 200)], 1
    )
    b[:50] = b[:50].round(0)
    counts, offs = R.rle_from_boxes(b, np.full(200, h), np.full(200, w))
    ref = mask_utils.frPyObjects(b, h, w)
    for i in range(200):
        np.testing.assert_array_equal(counts[offs[i] : offs[i + 1]], _decode_ref(ref[i]))


def test_area_bbox_and_string_round_trip():
    rng = np.random.default_rng(5)
    h, w = 64, 48
    objs = _random_objects(rng, 200, h, w)
    counts, offs = _rasterize(objs, h, w)
    refs = [mask_utils.merge(mask_utils.frPyObjects(ob, h, w)) for ob in objs]
    np.testing.assert_array_equal(R.rle_area(counts, offs), [mask_utils.area(r) for r in refs])
    np.testing.assert_array_equal(
        R.rle_to_bbox(counts, offs, np.full(200, h), np.full(200, w)),
        np.stack([mask_utils.toBbox(r) for r in refs]),
    )
    buf, ptr = R.rle_encode_strings(counts, offs)
    for i, r in enumerate(refs):
        assert bytes(buf[ptr[i] : ptr[i + 1]]) == r["counts"]
    back, boffs, bad = R.rle_decode_strings(buf, ptr)
    assert not bad.any()
    np.testing.assert_array_equal(back, counts)
    np.testing.assert_array_equal(boffs, offs)


def test_string_coding_large_counts_and_encode():
    # long runs exercise multi-character deltas, negative deltas and sign extension
    rng = np.random.default_rng(6)
    h, w = 700, 900
    masks = np.zeros((h, w, 20), np.uint8, order="F")
    for i in range(20):
        y0, x0 = rng.integers(0, h - 1), rng.integers(0, w - 1)
        masks[y0 : y0 + rng.integers(1, 600), x0 : x0 + rng.integers(1, 800), i] = 1
        masks[rng.integers(0, h, 50), rng.integers(0, w, 50), i] = 1
    refs = mask_utils.encode(masks)
    strings = [r["counts"] for r in refs]
    buf = np.frombuffer(b"".join(strings), np.uint8)
    ptr = np.concatenate([[0], np.cumsum([len(s) for s in strings])]).astype(np.int64)
    counts, offs, bad = R.rle_decode_strings(buf, ptr)
    assert not bad.any()
    dense = R.rle_decode_dense(counts, offs, h * w)
    for i in range(20):
        np.testing.assert_array_equal(dense[i].reshape(w, h).T, masks[:, :, i])
    buf2, ptr2 = R.rle_encode_strings(counts, offs)
    assert bytes(buf2) == bytes(buf)
    np.testing.assert_array_equal(ptr2, ptr)


def test_iou_with_crowd_to_1e12():
    rng = np.random.default_rng(7)
    h, w = 40, 60
    objs = _random_objects(rng, 120, h, w)
    counts, offs = _rasterize(objs, h, w)
    refs = [mask_utils.merge(mask_utils.frPyObjects(ob, h, w)) for ob in objs]
    d, g = slice(0, 70), slice(70, 120)
    crowd = rng.random(50) < 0.4
    hh, ww = np.full(120, h), np.full(120, w)
    dc, do = counts[offs[0] : offs[70]], offs[:71]
    gc, go = counts[offs[70] : offs[120]], offs[70:121] - offs[70]
    ours = R.rle_iou_matrix(dc, do, hh[d], ww[d], gc, go, hh[g], ww[g], crowd)
    ref = mask_utils.iou(refs[d], refs[g], crowd.astype(np.uint8).tolist())
    np.testing.assert_allclose(ours, ref, atol=1e-12, rtol=0)
    # self IoU (diagonal 1 unless empty), and empty masks have IoU 0 with everything
    self_iou = R.rle_iou_matrix(counts, offs, hh, ww, counts, offs, hh, ww)
    area = R.rle_area(counts, offs)
    np.testing.assert_array_equal(np.diag(self_iou), np.where(area > 0, 1.0, 0.0))


def test_two_empty_masks_iou_zero_and_size_mismatch_flagged():
    empty = np.array([12], np.uint32)
    offs = np.array([0, 1], np.int64)
    iou = R.rle_iou_matrix(empty, offs, np.array([3]), np.array([4]), empty, offs, np.array([3]), np.array([4]))
    assert iou[0, 0] == 0.0
    full = np.array([0, 12], np.uint32)
    offs2 = np.array([0, 2], np.int64)
    other = np.array([0, 12], np.uint32)
    iou = R.rle_iou_matrix(full, offs2, np.array([3]), np.array([4]), other, offs2, np.array([4]), np.array([3]))
    assert iou[0, 0] == -1.0  # different sizes: the caller raises


def test_uncompressed_rle_kept_verbatim_like_frPyObjects():
    # frUncompressedRLE keeps the counts as given (only re-encoded); our reader keeps them too
    counts = [3, 0, 2, 5, 2]
    ref = mask_utils.frPyObjects({"size": [3, 4], "counts": counts}, 3, 4)
    np.testing.assert_array_equal(_decode_ref(ref), counts)


def test_encode_dense_like_rleEncode():
    rng = np.random.default_rng(8)
    h, w = 23, 17
    masks = (rng.random((h, w, 12)) < rng.random(12)).astype(np.uint8)
    masks[:, :, 0] = 0
    masks[:, :, 1] = 1
    masks = np.asfortranarray(masks)
    refs = mask_utils.encode(masks)
    dense = np.stack([masks[:, :, i].ravel(order="F") for i in range(12)])
    counts, offs = R.rle_encode_dense(dense)
    for i in range(12):
        np.testing.assert_array_equal(counts[offs[i] : offs[i + 1]], _decode_ref(refs[i]))


def test_polygons_far_outside_are_clipped_close_to_pycocotools():
    """Polygons reaching beyond the image by more than its size are clipped before rasterizing
    (bounded memory); the mask stays within a pixel per image column of pycocotools'."""
    rng = np.random.default_rng(7)
    clipped = 0
    for _ in range(200):
        k = int(rng.integers(3, 8))
        h, w = int(rng.integers(5, 40)), int(rng.integers(5, 40))
        xy = rng.uniform(-150, 200, 2 * k)
        margin = max(h, w) + 8
        clipped += bool(((xy[0::2] < -margin) | (xy[0::2] > w + margin)
                         | (xy[1::2] < -margin) | (xy[1::2] > h + margin)).any())
        counts, offs = R.rle_from_polygons(xy, np.array([0, 2 * k]), np.array([0, 1]),
                                           np.array([h]), np.array([w]))
        ours = R.rle_decode_dense(counts, offs, h * w)[0].reshape(w, h).T
        ref = mask_utils.decode(mask_utils.frPyObjects([xy.tolist()], h, w)[0])
        assert (ours != ref).sum() <= w + h
    assert clipped > 100


def test_rle_total_is_exact_above_uint32():
    counts = np.full(8, 2**32 - 1, np.uint32)  # summed in int64, never in the counts' uint32
    assert R.rle_total(counts, np.array([0, 8]))[0] == 8 * (2**32 - 1)


def test_decoder_flags_malformed_strings_without_writing_past_them():
    texts = [b"0" + b"o" * 60, b"1o", b"g" * 7 + b"0", b"00O", b"13"]
    buf = np.frombuffer(b"".join(texts), np.uint8)
    ptr = np.concatenate([[0], np.cumsum([len(t) for t in texts])]).astype(np.int64)
    counts, offs, bad = R.rle_decode_strings(buf, ptr)
    assert bad.tolist() == [True, True, True, True, False]
    assert counts[offs[4]:offs[5]].tolist() == [1, 3]
    assert offs[-1] == counts.size  # every count was allocated for
    with pytest.raises(ValueError, match="str_ptr"):
        R.rle_decode_strings(buf, np.array([0, 5, 3]))
