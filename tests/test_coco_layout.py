"""The COCO engine's per-category sort orders against numpy's stable sorts."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from polars_metrics._arrays import offsets_from_lengths
from polars_metrics._kernels import coco_layout as L
from polars_metrics._parallel import run_ranges


def _orders(score, cat, img, n_cat, n_img, base):
    by_cat = base[np.argsort(cat[base], kind="stable")]
    cat_ptr = offsets_from_lengths(np.bincount(cat, minlength=n_cat))
    acc, grp, rank, pos = (np.empty(score.size, np.int64) for _ in range(4))
    keys = L.descending_keys((score + 0.0).view(np.uint64))
    run_ranges(L.category_orders, (cat_ptr, by_cat, keys, img, n_img, acc, grp, rank, pos),
               cat_ptr, small=0)
    return acc, grp, rank, pos


@pytest.mark.parametrize(("n", "n_cat", "n_img", "distinct"), [
    (0, 3, 4, 10), (1, 1, 1, 10), (500, 1, 7, 5),  # one category, many ties
    (20_000, 3, 50, 1_000_000),  # long segments: the radix path
    (20_000, 400, 3_000, 20),  # short segments over many images: the merge-sort paths
    (5_000, 10, 40, 3),
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
    # (category, score descending, position in base) and (category, image, score desc, base)
    want_acc = np.lexsort((pos, -(score + 0.0), cat))
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
