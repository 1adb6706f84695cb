"""The COCO engine's per-category sort orders against numpy's stable sorts."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from polars_metrics._arrays import offsets_from_lengths
from polars_metrics._kernels import coco_layout as L
from polars_metrics._parallel import run_ranges


def _orders(score, cat, img, n_cat, n_img, base):
    """category_orders on the rows numbered (category, image, base position), as the engine
    numbers them; the outputs mapped back to the original row numbers."""
    pos_in_base = np.empty(score.size, np.int64)
    pos_in_base[base] = np.arange(score.size)
    by = np.lexsort((pos_in_base, img, cat))  # evaluation number -> row
    cat_ptr = offsets_from_lengths(np.bincount(cat, minlength=n_cat))
    acc, grp, rank, pos, rank_acc = (np.empty(score.size, np.int64) for _ in range(5))
    score_acc = np.empty(score.size)
    s = score[by] + 0.0
    run_ranges(L.category_orders, (cat_ptr, s, np.ascontiguousarray(img[by]), acc, grp, rank, pos,
                                   score_acc, rank_acc), cat_ptr, small=0)
    np.testing.assert_array_equal(score_acc, s[acc])
    np.testing.assert_array_equal(rank_acc, rank[acc])
    row_rank, row_pos = np.empty_like(rank), np.empty_like(pos)
    row_rank[by], row_pos[by] = rank, pos
    return by[acc], by[grp], row_rank, row_pos


@pytest.mark.parametrize(("n", "n_cat", "n_img", "distinct"), [
    (0, 3, 4, 10), (1, 1, 1, 10), (500, 1, 7, 5),  # one category, many ties
    (20_000, 3, 50, 1_000_000),  # long segments and long groups: the radix and merge paths
    (20_000, 400, 3_000, 20),  # short segments over many images: the merge-sort paths
    (5_000, 10, 40, 3),
    (3_000, 2, 1_000, 4),  # groups of ~1-3 rows: the insertion sort
])
def test_category_orders_match_numpy_stable_sorts(n, n_cat, n_img, distinct):
    rng = np.random.default_rng(n + n_cat)
    score = rng.integers(0, distinct, n) / distinct  # ties when distinct is small
    score[rng.random(n) < 0.05] *= -1  # negative scores and -0.0 sort by value too
    cat = rng.integers(0, n_cat, n).astype(np.int64)
    img = rng.integers(0, n_img, n).astype(np.int64)
    base = rng.permutation(n).astype(np.int64)  # the order ties keep
    acc, grp, rank, pos_in_acc = _orders(score, cat, img, n_cat, n_img, base)
    pos = np.empty(n, np.int64)
    pos[base] = np.arange(n)
    # (category, score descending, image, position in base) and (category, image, score
    # desc, base): pycocotools' accumulate order and its evaluateImg groups
    want_acc = np.lexsort((pos, img, -(score + 0.0), cat))
    want_grp = np.lexsort((pos, -(score + 0.0), img, cat))
    np.testing.assert_array_equal(acc, want_acc)
    np.testing.assert_array_equal(grp, want_grp)
    np.testing.assert_array_equal(pos_in_acc[want_acc], np.arange(n))
    # rank: how many rows of the same (category, image) come before in the group order
    want_rank, seen = np.empty(n, np.int64), Counter()
    for row in want_grp:
        want_rank[row] = seen[cat[row], img[row]]
        seen[cat[row], img[row]] += 1
    np.testing.assert_array_equal(rank, want_rank)


@pytest.mark.parametrize("by_category", [True, False])
@pytest.mark.parametrize("image_sorted", [True, False])
def test_evaluation_rows_number_detections_by_category_then_image(by_category, image_sorted):
    rng = np.random.default_rng(7)
    n, n_img, n_cat = 3_000, 40, 6
    img = rng.integers(-2, n_img + 3, n)  # below 0 and from n_img on: images absent from gt
    cat = rng.integers(-1, n_cat, n)  # -1: unknown category
    if image_sorted:  # results files usually come image by image: the one-pass path
        img = np.sort(img)
    # image i has id 3 * i + 10; the table maps id - 10 to the image (n_img: no such image)
    table = np.full(3 * n_img, n_img)
    table[3 * np.arange(n_img)] = np.arange(n_img)
    score = rng.normal(size=n)
    score[np.flatnonzero((img >= 0) & (img < n_img) & (cat >= 0))[:5]] = -0.0
    for area in (rng.random(n), np.empty(0)):
        rows, d_img, d_cat, d_score, d_area = L.evaluation_rows(
            3 * img + 10, 10, table, cat, n_img, n_cat, by_category, score, area)
        np.testing.assert_array_equal(d_area, area[rows] if area.size else area)
    np.testing.assert_array_equal(d_score, score[rows])
    assert (d_score == 0).sum() == 5 and not np.signbit(d_score[d_score == 0]).any()  # as 0.0
    ok = np.flatnonzero((img >= 0) & (img < n_img) & (cat >= 0))
    keys = (ok, img[ok], cat[ok]) if by_category else (ok, cat[ok], img[ok])
    want = ok[np.lexsort(keys)]
    assert 0 < want.size < n
    np.testing.assert_array_equal(rows, want)
    np.testing.assert_array_equal(d_img, img[want])
    np.testing.assert_array_equal(d_cat, cat[want])


def test_category_ids_last_row_wins_like_numpy():
    rng = np.random.default_rng(3)
    k = rng.integers(-1, 5, 200)
    cid = rng.integers(-1, 90, 200)
    out = np.full(6, -1, np.int64)
    L.category_ids(k, cid, out)
    want = np.full(6, -1, np.int64)
    for r in range(200):  # the loop the kernel replaces, written out
        if k[r] >= 0 and cid[r] >= 0:
            want[k[r]] = cid[r]
    np.testing.assert_array_equal(out, want)


def test_descending_keys_order_floats_like_their_values():
    v = np.array([np.inf, 1.0, 0.5, 1e-300, 0.0, -1e-300, -0.5, -np.inf])
    keys = L.descending_keys(v.view(np.uint64))
    assert (np.diff(keys.astype(object)) > 0).all()  # ascending keys = descending scores
    zeros = L.descending_keys((np.array([0.0, -0.0]) + 0.0).view(np.uint64))
    assert zeros[0] == zeros[1]  # -0.0 folded into 0.0 (the caller adds 0.0): a tie


def test_dt_rank_is_the_naive_rank_in_image_and_category():
    """``CocoResult.dt_rank`` (built on first access from the evaluated rows' ranks) against a
    naive per-(image, category) ranking: score descending, ties in row order; -1 beyond the
    largest maxDet and for predictions on images absent from the ground truth."""
    import warnings

    import polars as pl

    import polars_metrics as pm

    rng = np.random.default_rng(5)
    n = 400
    box = pl.Array(pl.Float64, 4)
    xy = rng.integers(0, 50, (n, 2)).astype(float)
    pd = pl.DataFrame({"data_row": rng.integers(0, 6, n), "feature": rng.choice(["a", "b"], n),
                       "bbox": np.hstack([xy, xy + 5]).tolist(),
                       "confidence": rng.integers(0, 8, n) / 8},  # many ties
                      schema_overrides={"bbox": box})
    gt = pl.DataFrame({"data_row": [0, 1, 2, 3, 4], "feature": ["a", "b", "a", "b", "a"],
                       "bbox": [[0.0, 0, 9, 9]] * 5}, schema_overrides={"bbox": box})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # image 5 is not in gt: its predictions are left out
        res = pm.evaluate_coco(gt, pd, max_dets=(1, 7))
    expected = np.full(n, -1, np.int64)
    img, feat, conf = pd["data_row"].to_list(), pd["feature"].to_list(), pd["confidence"].to_list()
    for key in set(zip(img, feat, strict=True)):
        if key[0] == 5:
            continue
        rows = [i for i in range(n) if (img[i], feat[i]) == key]
        rows.sort(key=lambda i: -conf[i])  # stable: ties keep row order
        for r, i in enumerate(rows[:7]):
            expected[i] = r
    assert (expected == -1).sum() > 0 and (expected == 6).sum() > 0
    np.testing.assert_array_equal(res.dt_rank, expected)
    assert res.dt_rank.dtype == np.int64
    # a result alive while the next evaluation runs adds to its peak: the index arrays it keeps
    # for dt_match, dt_rank and the cube are narrowed (the ranks here fit a byte)
    kept = [a for a in (*res._match_inputs[0], *res._row_code_of) if isinstance(a, np.ndarray)]
    assert kept and all(a.dtype.itemsize <= 4 for a in kept if a.dtype.kind in "iu")
    assert res._row_code_of[1].dtype == np.uint8


@pytest.mark.parametrize("by_category", [True, False])
@pytest.mark.parametrize("layout", ["image_sorted", "shuffled", "one_part_out_of_order"])
def test_evaluation_rows_on_threads_equal_the_serial_kernel(monkeypatch, by_category, layout):
    """The two-pass version over parts of the rows (threads) gives the serial kernel's arrays,
    and falls back to it when the rows are not in secondary order (within or across parts)."""
    from polars_metrics import _parallel
    from polars_metrics.coco import threaded

    monkeypatch.setattr(_parallel, "num_threads", lambda: 3)
    rng = np.random.default_rng(11)
    n, n_img, n_cat = 30_000, 500, 9
    img = np.sort(rng.integers(0, n_img + 5, n))  # some images absent from gt
    if layout == "shuffled":
        img = rng.permutation(img)
    elif layout == "one_part_out_of_order":  # the last part starts before the middle one ends
        img[2 * n // 3:] = np.sort(rng.integers(0, n_img // 2, n - 2 * n // 3))
    cat = rng.integers(-1, n_cat, n)
    table = np.arange(n_img)
    score, area = rng.normal(size=n), rng.random(n)
    got = threaded.evaluation_rows(img, 0, table, cat, n_img, n_cat, by_category, score, area)
    want = L.evaluation_rows(img, 0, table, cat, n_img, n_cat, by_category, score, area)
    ok = np.flatnonzero((img < n_img) & (cat >= 0))
    keys = (ok, img[ok], cat[ok]) if by_category else (ok, cat[ok], img[ok])
    np.testing.assert_array_equal(want[0], ok[np.lexsort(keys)])  # the serial kernel is right
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("n_cat", [1, 7])
def test_group_pointers_are_the_union_of_both_sides_groups(monkeypatch, n_cat):
    """Groups per (category, image) holding a detection or a ground truth, in key order, with
    their CSR pointers: against a dictionary built from the keys."""
    from polars_metrics import _parallel
    from polars_metrics.coco import threaded

    monkeypatch.setattr(_parallel, "num_threads", lambda: 2)
    rng = np.random.default_rng(n_cat)
    nd, ng, n_img = 9_000, 3_000, 300
    d_cat, g_cat = np.sort(rng.integers(0, n_cat, nd)), np.sort(rng.integers(0, n_cat, ng))
    d_img, g_img = rng.integers(0, n_img, nd), rng.integers(0, n_img, ng)
    d_grp = np.lexsort((d_img, d_cat))  # by category, then image: the engine's group order
    g_grp = np.lexsort((g_img, g_cat))
    d_ptr = offsets_from_lengths(np.bincount(d_cat, minlength=n_cat))
    g_ptr = offsets_from_lengths(np.bincount(g_cat, minlength=n_cat))
    max_det = 3
    dt_ptr, gt_ptr, iou_ptr = threaded.group_pointers(d_ptr, d_img, d_grp, g_ptr, g_img, g_grp,
                                                      max_det)
    cells = np.minimum(np.diff(dt_ptr), max_det) * np.diff(gt_ptr)  # min(D, maxDet) x G blocks
    np.testing.assert_array_equal(iou_ptr, np.concatenate([[0], np.cumsum(cells)]))
    pairs = lambda c, i: set(zip(c.tolist(), i.tolist(), strict=True))  # noqa: E731
    keys = sorted(pairs(d_cat, d_img) | pairs(g_cat, g_img))
    assert dt_ptr.size == gt_ptr.size == len(keys) + 1
    for g, key in enumerate(keys):
        d = d_grp[dt_ptr[g]:dt_ptr[g + 1]]
        j = g_grp[gt_ptr[g]:gt_ptr[g + 1]]
        assert pairs(d_cat[d], d_img[d]) <= {key} and pairs(g_cat[j], g_img[j]) <= {key}
        assert d.size + j.size > 0
    assert dt_ptr[-1] == nd and gt_ptr[-1] == ng
