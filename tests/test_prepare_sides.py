"""``prepare._side``: the kept annotations of a table in (data row, input) order. Kept rows are
packed, counted per data row and checked for order in one kernel pass (``groups.kept_side``);
the reference here is the plain numpy construction (positions of the kept rows, a stable sort
by data row, gathers) on random tables: every mix of kept rows, rows in and out of order,
with and without confidence-threshold counts."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from polars_metrics import prepare as P


def _reference(keep, row, feat, npass, n_rows):
    positions = np.flatnonzero(keep)
    order = positions[np.argsort(row[positions], kind="stable")]
    off = np.searchsorted(row[order], np.arange(n_rows + 1))
    identity = order.size == keep.size and (order == np.arange(keep.size)).all()
    return (None if identity else order, off, feat[order],
            None if npass is None else npass[order])


@pytest.mark.parametrize("seed", range(12))
def test_side_equals_the_numpy_construction(seed):
    rng = np.random.default_rng(seed)
    n, n_rows = int(rng.integers(0, 400)), int(rng.integers(1, 30))
    row = rng.integers(0, n_rows, n)
    if seed % 3 == 0:
        row = np.sort(row)  # a table in data-row order
    keep = rng.random(n) < (1.0 if seed % 4 == 1 else 0.3 if seed % 4 == 2 else 0.8)
    names = ("cat", "dog", "eel")
    # codes converted to int32 by _side (packed in place when most are kept), or given as
    # int32 (the caller's arrays: packed into new ones, never overwritten)
    feat = rng.integers(0, 3, n).astype(np.int32 if seed % 5 == 0 else np.int64)
    npass = rng.integers(0, 12, n).astype(np.int32 if seed % 2 else np.int8) if seed % 3 else None
    given = (feat.copy(), None if npass is None else npass.copy())
    frame = pl.DataFrame({"feature": pl.Series([names[f] for f in feat], dtype=pl.String)})
    side = P._side(frame, keep, row, feat, npass, n_rows)
    assert np.array_equal(feat, given[0]) and (npass is None or np.array_equal(npass, given[1]))
    # arrays the caller gives up may be overwritten: the same side
    up = P._side(frame, keep, row, feat.copy(), None if npass is None else npass.copy(), n_rows,
                 given_up=True)
    assert up.off.tolist() == side.off.tolist() and up.feat.tolist() == side.feat.tolist()
    assert (up.idx is None) == (side.idx is None)
    assert up.idx is None or up.idx.tolist() == side.idx.tolist()
    assert (up.npass is None) == (side.npass is None)
    assert up.npass is None or up.npass.tolist() == side.npass.tolist()
    idx, off, f, p = _reference(keep, row, feat, npass, n_rows)
    assert (side.idx is None) == (idx is None)
    if idx is not None:
        assert side.idx.dtype == np.int32 and side.idx.tolist() == idx.tolist()
    assert side.off.tolist() == off.tolist()
    assert side.feat.dtype == np.int32 and side.feat.tolist() == f.tolist()
    if npass is None:
        assert side.npass is None
    else:
        assert side.npass.dtype == np.int32 and side.npass.tolist() == p.tolist()
