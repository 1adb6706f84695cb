"""What an evaluation keeps and touches (issue 12, target 3): the data-row table built on
first read from the match arrays and cached weakly, the pairs kernel's outputs, the row
features found without concatenated temporaries. Every frame equals the frozen frames of
``tests/data/box_fast/`` (written by the implementation before the fast path)."""
from __future__ import annotations

import gc
import pickle

import numpy as np
import polars as pl
import pytest
from box_fast_cases import CASES, GOLDEN, case

import polars_metrics as pm
from polars_metrics import matching
from polars_metrics._kernels import box as box_kernels
from polars_metrics.kinds.box import box_pairs
from polars_metrics.state import PartialResult, RowTable

PLAIN = [c for c in CASES if "on_invalid" not in c[1]]


def _golden_rows(seed: int) -> pl.DataFrame:
    return pl.read_parquet(GOLDEN / f"{seed}_data_rows.parquet")


@pytest.mark.parametrize(("seed", "kwargs"), PLAIN)
def test_the_data_row_table_is_built_on_read_and_equals_the_frozen_one(seed, kwargs):
    gt, pd, data_rows = case(seed)
    ev = pm.evaluate(gt, pd, data_rows=data_rows, **kwargs)
    # the result keeps the builder, not the frame
    assert isinstance(ev.__dict__["data_rows"], RowTable)
    first = ev.data_rows
    assert first.equals(_golden_rows(seed)) and first.schema == _golden_rows(seed).schema
    assert ev.data_rows is first  # held by the caller: the same frame
    del first
    gc.collect()
    again = ev.data_rows  # dropped: built again, equal
    assert again.equals(_golden_rows(seed))


def test_a_pickled_or_merged_partial_carries_the_same_data_row_table():
    gt, pd, data_rows = case(0)
    part = pm.partial(gt, pd, data_rows=data_rows)
    assert isinstance(PartialResult.data_rows.raw(part), RowTable)
    back = pickle.loads(pickle.dumps(part))
    assert isinstance(PartialResult.data_rows.raw(back), pl.DataFrame)  # stored as the frame
    assert back.data_rows.equals(_golden_rows(0))
    assert pm.finalize(back).data_rows.equals(_golden_rows(0))
    # two halves by data row, merged: the frame of one evaluation
    keys = data_rows["data_row"].to_list()
    halves = [set(keys[::2]), set(keys[1::2])]
    parts = [pm.partial(gt.filter(pl.col("data_row").is_in(h)), pd.filter(pl.col("data_row").is_in(h)),
                        data_rows=data_rows.filter(pl.col("data_row").is_in(h))) for h in halves]
    assert pm.finalize(pm.merge(parts)).data_rows.equals(_golden_rows(0))


def test_row_table_rebuilds_only_when_nobody_holds_the_frame():
    calls = []

    def build():
        calls.append(1)
        return pl.DataFrame({"a": [len(calls)]})

    table = RowTable(build)
    f = table.frame()
    assert table.frame() is f and len(calls) == 1
    del f
    gc.collect()
    assert table.frame()["a"].to_list() == [2] and len(calls) == 2


@pytest.mark.parametrize("seed", [0, 1, 5])
def test_row_features_match_unique_codes_and_sets(seed):
    gt, pd, data_rows = case(seed)
    part = pm.partial(gt, pd, data_rows=data_rows)
    prep = part.detail.prep
    got = matching.row_features(prep, prep.gt.feat, prep.pd.feat)
    # the distinct (row, feature) codes, as np.unique orders them
    n_feat = len(prep.features)
    code = np.unique(np.concatenate([prep.gt.row * n_feat + prep.gt.feat,
                                     prep.pd.row * n_feat + prep.pd.feat]))
    want = (np.searchsorted(code // n_feat, np.arange(prep.n_rows + 1)), code % n_feat)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    # and a plain set per data row
    n_rows = prep.n_rows
    rows = [set() for _ in range(n_rows)]
    for side in (prep.gt, prep.pd):
        for r, f in zip(side.row.tolist(), side.feat.tolist(), strict=True):
            rows[r].add(f)
    off, feat = got
    assert [feat[off[r]:off[r + 1]].tolist() for r in range(n_rows)] == [sorted(x) for x in rows]


def _random_rows(seed: int, n_rows: int):
    rng = np.random.default_rng(seed)
    n_gt, n_pd = rng.integers(0, 6, n_rows), rng.integers(0, 30, n_rows)
    g_off, p_off = np.r_[0, np.cumsum(n_gt)], np.r_[0, np.cumsum(n_pd)]

    def boxes(n):
        xy = rng.integers(0, 10, (n, 2)).astype(np.float64)
        return np.ascontiguousarray(np.hstack([xy, xy + rng.integers(1, 5, (n, 2))]))

    return boxes(int(g_off[-1])), g_off.astype(np.int64), boxes(int(p_off[-1])), p_off.astype(np.int64)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_joined_parts_copied_on_threads_equal_their_concatenation(monkeypatch, threads):
    """``_joined`` copies the parts into each joined column on threads (pieces split across
    part boundaries): the columns equal numpy's concatenation, and the parts are emptied."""
    from polars_metrics import _parallel
    from polars_metrics.kinds import box as box_kind

    monkeypatch.setattr(_parallel, "num_threads", lambda: threads)
    monkeypatch.setattr(box_kind, "JOIN_THREADS_PAIRS", 0)
    rng = np.random.default_rng(threads)
    sizes = [0, 5, 1, 17, 3]
    parts = [[rng.integers(0, 99, n).astype(np.int32), rng.integers(0, 99, n).astype(np.int32),
              rng.random(n)] for n in sizes]
    want = [np.concatenate([p[i] for p in parts]) for i in range(3)]
    off = np.array([0, sum(sizes)], np.int64)
    got = box_kind._joined(off, parts)
    assert got[0] is off
    for a, b in zip(got[1:], want, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert all(x is None for p in parts for x in p)


def test_box_pairs_kernel_growth_path_gives_the_same_pairs(monkeypatch):
    """Ranges whose grid exceeds PAIR_CAP grow their outputs between data rows: the pure
    Python kernel with a tiny cap lists the pairs of the compiled one (full cap)."""
    g, g_off, p, p_off = _random_rows(3, 300)
    n = g_off.shape[0] - 1
    empty = np.zeros(0, np.int32)
    counts_a, counts_b = np.zeros(n, np.int64), np.zeros(n, np.int64)
    want = box_pairs(g, None, g_off, p, None, p_off)
    monkeypatch.setattr(box_kernels, "PAIR_CAP", 7)
    got = box_kernels.box_pairs_range.py_func(g, empty, g_off, p, empty, p_off, counts_a, 0, n)
    for a, b in zip(got, want[1:], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.r_[0, np.cumsum(counts_a)], want[0])
    # rows split into ranges (threads) concatenate to the same arrays
    parts = [box_kernels.box_pairs_range.py_func(g, empty, g_off, p, empty, p_off, counts_b, lo, hi)
             for lo, hi in ((0, 1), (1, 120), (120, n))]
    for i in range(3):
        np.testing.assert_array_equal(np.concatenate([x[i] for x in parts]), want[1 + i])
    np.testing.assert_array_equal(counts_b, counts_a)
