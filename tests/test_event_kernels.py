"""Kernels that read match events through their pairs, and prepare's shortcuts for clean
tables: each against the numpy computation it replaces."""
from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest

from polars_metrics.cube import accumulate_events, event_keys
from polars_metrics.events import Matches, event_bins
from polars_metrics.pairs import Pairs, constant_flags
from polars_metrics.prepare import _ascend_strictly


def _random_events(seed: int, free: str):
    rng = np.random.default_rng(seed)
    n_pairs, n_ev, n_keys, C = 300, 200, 7, 4
    # IoUs on and around the thresholds, where the strict and the non-strict tests differ
    thr = np.array([0.1, 0.5, 0.75, 1.0])
    iou = rng.choice(np.r_[thr, thr + 1e-12, thr - 1e-12, rng.uniform(0, 1, 20)], n_pairs)
    iou = np.clip(iou, 1e-9, 1.0)
    always = {"some": rng.random(n_pairs) < 0.2, "none": constant_flags(False, n_pairs),
              "all": constant_flags(True, n_pairs)}[free]
    pairs = Pairs(np.array([0, n_pairs]), rng.integers(0, 50, n_pairs).astype(np.int32),
                  rng.integers(0, 60, n_pairs).astype(np.int32), iou, always)
    ev_k = rng.integers(0, n_pairs, n_ev).astype(np.int32)
    ev_c = rng.integers(0, C, n_ev).astype(np.int32)
    inv = rng.integers(0, n_keys, n_ev).astype(np.int64)
    return pairs, ev_k, ev_c, inv, thr, n_keys, C


def _matches(pairs, ev_k, ev_c, thr, strict):
    """A walk holding only what ``through_pairs`` reads."""
    return Matches(ev_k=ev_k, pairs=pairs, rf_off=np.zeros(1, np.int64), narrow={"ev_c": ev_c},
                   values=None, class_aware=True, row_iou=np.zeros((0, 1)),
                   gt_row=np.zeros(0, np.int64), ev_roff=np.zeros(1, np.int64),
                   sides=(), iou_thr=thr, iou_strict=strict)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("free", ["some", "none", "all"])
def test_accumulate_events_bins_each_pair_as_event_bins_does(seed, strict, free):
    pairs, ev_k, ev_c, inv, thr, n_keys, C = _random_events(seed, free)
    m = _matches(pairs, ev_k, ev_c, thr, strict)
    k, _, _, pair_iou, pair_free, cut = m.through_pairs()
    got = accumulate_events(inv, ev_c, k, pair_iou, pair_free, cut, n_keys, C, thr.shape[0])
    # the reference: each event's bin from the numpy path, counted cell by cell
    bins = event_bins(pairs, ev_k, thr, strict)
    want = np.zeros((n_keys, C, thr.shape[0]), np.int64)
    for key, c, b in zip(inv.tolist(), ev_c.tolist(), bins.tolist(), strict=True):
        want[key, c, :b] += 1
    np.testing.assert_array_equal(got, want)
    if free != "some":  # one flag for every pair reaches the kernel as one entry
        assert pair_free.shape == (1,)


@pytest.mark.parametrize(("dense", "positions"),
                         [(True, np.int32), (False, np.int32), (True, np.int64)])
@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_event_cells_count_each_event_at_its_key_and_cells(monkeypatch, seed, threads, dense,
                                                            positions):
    """``cube.event_cells`` against events counted one by one at (key, c, t < bin), the key
    and the bin taken the numpy way: the one-pass path (many events; int64 event positions,
    beyond 2**31 pairs, through numba's JIT) and the keys-array one."""
    from polars_metrics import _parallel, cube

    monkeypatch.setattr(_parallel, "num_threads", lambda: threads)
    monkeypatch.setattr(_parallel, "SMALL", 0)
    monkeypatch.setattr(cube, "DENSE_CELL_BYTES" if not dense else "MMAP_THRESHOLD", 0)
    pairs, ev_k, ev_c, _, thr, _, C = _random_events(seed, "some")
    rng = np.random.default_rng(seed)
    n_slices, n_feat = 3, 4
    gt_row = np.sort(rng.integers(0, 6, 50)).astype(np.int64)
    row_slice = rng.integers(0, n_slices, 6).astype(np.int64)
    gt_feat = rng.integers(0, n_feat + 1, 50).astype(np.int32)
    pd_feat = rng.integers(0, n_feat + 1, 60).astype(np.int32)
    m = dataclasses.replace(_matches(pairs, ev_k.astype(positions), ev_c, thr, False),
                            gt_row=gt_row)
    uniq, matched = cube.event_cells(m, row_slice, gt_feat, pd_feat, n_slices=n_slices,
                                     n_features=n_feat, n_conf=C)
    W = n_feat + 1
    g, p = pairs.gt[ev_k], pairs.pd[ev_k]
    keys = (row_slice[gt_row[g]] * W + gt_feat[g]) * W + pd_feat[p]
    bins = event_bins(pairs, ev_k, thr, False)
    want_keys = sorted(set(keys.tolist()))
    want = np.zeros((len(want_keys), C, thr.shape[0]), np.int64)
    for key, c, b in zip(keys.tolist(), ev_c.tolist(), bins.tolist(), strict=True):
        want[want_keys.index(key), c, :b] += 1
    assert uniq.tolist() == want_keys and len(want_keys) > 10
    np.testing.assert_array_equal(matched, want)


def test_event_keys_read_ground_truth_and_prediction_through_the_pair():
    pairs, ev_k, ev_c, _, thr, _, _ = _random_events(3, "some")
    rng = np.random.default_rng(3)
    gt_row = np.sort(rng.integers(0, 5, 50)).astype(np.int64)
    row_slice = rng.integers(0, 2, 5).astype(np.int64)
    gt_feat = rng.integers(0, 3, 50).astype(np.int32)
    pd_feat = rng.integers(0, 3, 60).astype(np.int32)
    got = event_keys(ev_k, pairs.gt, pairs.pd, gt_row, row_slice, gt_feat, pd_feat, 4)
    g, p = pairs.gt[ev_k], pairs.pd[ev_k]
    np.testing.assert_array_equal(got, (row_slice[gt_row[g]] * 4 + gt_feat[g]) * 4 + pd_feat[p])


@pytest.mark.parametrize("values, chunks, expected", [
    ([1, 2, 3, 10], [2], True),
    ([1, 2, 2, 10], [2], False),         # equal across the chunk boundary
    ([1, 2, 5, 4], [1, 3], False),       # a descent inside a chunk
    ([5], [], True),
    ([], [], True),
    ([3, 1], [], False),
])
def test_ascending_ids_are_known_distinct_across_chunks(values, chunks, expected):
    cuts = [0, *chunks, len(values)]
    parts = [pl.Series("id", values[a:b], dtype=pl.Int64) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    ids = pl.concat(parts, rechunk=False) if parts else pl.Series("id", [], dtype=pl.Int64)
    assert ids.n_chunks() == max(1, len(parts))
    assert _ascend_strictly(ids) is expected
    if expected:  # never claims distinct ids that are not
        assert ids.n_unique() == ids.len()


def test_only_int64_ids_without_nulls_take_the_ascending_shortcut():
    assert not _ascend_strictly(pl.Series([1, None, 3], dtype=pl.Int64))
    assert not _ascend_strictly(pl.Series([1, 2, 3], dtype=pl.Int32))  # hashed as before
    assert not _ascend_strictly(pl.Series(["a", "b"]))


@pytest.mark.parametrize("seed", range(5))
def test_ascending_shortcut_agrees_with_hashing_on_random_ids(seed):
    rng = np.random.default_rng(seed)
    # odd seeds: steps of 0 make duplicates; even seeds: every step up (distinct)
    values = np.cumsum(rng.integers(1 if seed % 2 == 0 else 0, 3, 200))
    ids = pl.concat([pl.Series(values[a:a + 50]) for a in range(0, 200, 50)], rechunk=False)
    assert _ascend_strictly(ids) is (seed % 2 == 0)
    assert _ascend_strictly(ids) == (ids.n_unique() == ids.len())


def test_string_columns_hashed_in_parts_equal_one_cast(monkeypatch):
    from polars_metrics import _parallel
    from polars_metrics import prepare as P

    monkeypatch.setattr(_parallel, "num_threads", lambda: 2)  # parts even on one core
    rng = np.random.default_rng(0)
    names = np.array(["cat", "dog", "zebra", "ant"])
    values = names[rng.integers(0, 4, P.STRING_PART_ROWS * 3)].astype(object)
    values[rng.random(values.shape[0]) < 0.01] = None
    column = pl.Series("feature", values, dtype=pl.String)
    features = ("ant", "cat", "dog", "zebra")
    assert P._distinct(column) == set(features)
    want = column.cast(pl.Enum(features)).to_physical().fill_null(0).to_numpy()
    codes, outside = P._feature_codes(column, features)
    np.testing.assert_array_equal(codes, want)
    assert outside is None
    # names outside the features (a non-strict cast, in parts): their rows are marked
    fewer = ("cat", "dog")
    codes, outside = P._feature_codes(column, fewer, strict=False)
    known = ~column.is_in(["ant", "zebra"]).fill_null(False).to_numpy()
    np.testing.assert_array_equal(outside, ~known)
    np.testing.assert_array_equal(
        codes[known], column.filter(known).cast(pl.Enum(fewer)).to_physical().fill_null(0))
    # the axis of both sides: predictions naming features the ground truth does not
    gt = column.head(1000).replace({"zebra": "cat"})
    for pd in (column, gt.tail(500)):  # names outside the ground truth's, and none outside
        axis, g, p = P._feature_axis(gt, pd)
        assert axis == tuple(sorted(P._distinct(gt) | P._distinct(pd)))
        for side, got in ((gt, g), (pd, p)):
            np.testing.assert_array_equal(
                got, side.cast(pl.Enum(axis)).to_physical().fill_null(0).to_numpy())


@pytest.mark.parametrize("cuts", [[], [3], [1, 4], [4, 4, 6]])
def test_integer_key_runs_across_chunks_equal_the_expression_path(cuts):
    from polars_metrics.prepare import _key_runs

    keys = [5, 5, 5, 7, 7, 2, 2, 9]  # runs continue across some chunk boundaries
    bounds = [0, *cuts, len(keys)]
    parts = [pl.DataFrame({"k": keys[a:b]}, schema={"k": pl.Int64})
             for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    chunked = pl.concat(parts, rechunk=False)
    got_keys, got_lengths = _key_runs(chunked, ["k"])
    # the expression path (a string key) on the same values
    want_keys, want_lengths = _key_runs(chunked.with_columns(pl.col("k").cast(pl.String)), ["k"])
    assert got_keys["k"].cast(pl.String).to_list() == want_keys["k"].to_list() == ["5", "7", "2", "9"]
    np.testing.assert_array_equal(got_lengths, want_lengths)
    np.testing.assert_array_equal(got_lengths, [3, 2, 2, 1])
