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
