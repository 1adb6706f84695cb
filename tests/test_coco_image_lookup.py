"""Image ids to positions on the image axis (``coco.inputs``): through a lookup table when the
ids' span allows it, else a binary search; both must give what a dictionary gives."""
from __future__ import annotations

import numpy as np
import pytest

from polars_metrics.coco.inputs import _lookup_table, image_lookup, positions


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("spread", [1, 100, 10**7])  # dense, COCO-like, too sparse for a table
def test_positions_and_lookups_equal_a_dictionary(seed, spread):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 300))
    ids = np.sort(rng.choice(spread * n, size=n, replace=False) + 1).astype(np.int64)
    # ~60 detections an image: known ids, unknown ids in between, ids outside on both sides
    values = np.concatenate([rng.choice(ids, 60 * n), rng.integers(-5, spread * n + 10, 200)])
    rng.shuffle(values)
    index = {int(v): i for i, v in enumerate(ids)}
    expected = np.array([index.get(int(v), n) for v in values])
    np.testing.assert_array_equal(positions(ids, values), expected)
    keys, lo, table = image_lookup(ids, values)
    inside = (keys - lo >= 0) & (keys - lo < table.size)
    got = np.where(inside, table[np.where(inside, keys - lo, 0)], n)
    np.testing.assert_array_equal(got, expected)
    # a table for dense and COCO-like ids (100x their number), a binary search beyond
    assert (_lookup_table(ids, values) is not None) == (spread <= 100)
