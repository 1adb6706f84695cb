"""The data-row table rebuilt from the match events on each read (wave 6, ``h-box2``): a result
keeps the events, not the dense per-row counts and means, and the table's largest columns are
written into spare buffers that a later read reuses once nothing references them any more.

Every frame is compared with the frozen frames of ``tests/data/box_fast/`` (written by the
implementation before the fast path), whichever path built it: fresh buffers, reused buffers,
or fresh buffers because the previous frame (or a numpy view of one of its columns) is alive.
"""
from __future__ import annotations

import gc
import weakref

import numpy as np
import polars as pl
import pytest
from box_fast_cases import CASES, GOLDEN, case

import polars_metrics as pm
from polars_metrics import _memory, _parallel

PLAIN = [c for c in CASES if "on_invalid" not in c[1]]


def _golden_rows(seed: int) -> pl.DataFrame:
    return pl.read_parquet(GOLDEN / f"{seed}_data_rows.parquet")


def _snapshot(frame: pl.DataFrame) -> list[tuple]:
    return frame.rows()  # Python values: no memory shared with the frame


@pytest.fixture
def no_spares(monkeypatch):
    monkeypatch.setattr(_memory, "_spares", {})


@pytest.mark.parametrize(("seed", "kwargs"), PLAIN)
def test_fresh_and_reused_buffers_give_the_frozen_table(seed, kwargs, no_spares):
    gt, pd, data_rows = case(seed)
    ev = pm.evaluate(gt, pd, data_rows=data_rows, **kwargs)
    fresh = ev.data_rows
    assert fresh.equals(_golden_rows(seed)) and fresh.schema == _golden_rows(seed).schema
    spare = weakref.ref(_memory._spares["row_counts"])  # a reference would keep it in use
    del fresh
    gc.collect()
    again = ev.data_rows  # nothing held the first frame: built in the same memory
    assert _memory._spares["row_counts"] is spare()
    assert np.shares_memory(again["tp"].to_numpy(), spare())
    assert again.equals(_golden_rows(seed))


def test_a_frame_still_alive_is_not_overwritten_by_the_next_call(no_spares):
    gt, pd, data_rows = case(0)
    ev = pm.evaluate(gt, pd, data_rows=data_rows)
    first = ev.data_rows
    before = _snapshot(first)
    # a second call on other predictions (every confidence lowered: other counts) while the
    # previous result and its frame are alive
    pd2 = pd.with_columns(pl.col("confidence") * 0.5)
    ev2 = pm.evaluate(gt, pd2, data_rows=data_rows)
    second = ev2.data_rows
    assert not np.shares_memory(first["tp"].to_numpy(), second["tp"].to_numpy())
    assert _snapshot(first) == before and first.equals(_golden_rows(0))
    assert _snapshot(second) != before
    # the second frame equals the one built with fresh buffers only
    _memory._spares.clear()
    alone = pm.evaluate(gt, pd2, data_rows=data_rows).data_rows
    assert second.equals(alone)


def test_a_numpy_view_of_a_column_keeps_its_memory_from_reuse(no_spares):
    gt, pd, data_rows = case(0)
    ev = pm.evaluate(gt, pd, data_rows=data_rows)
    frame = ev.data_rows
    tp, precision = frame["tp"].to_numpy(), frame["precision"].to_numpy()
    tp_before, precision_before = tp.copy(), precision.copy()
    del frame
    gc.collect()
    ev2 = pm.evaluate(gt, pd.with_columns(pl.col("confidence") * 0.5), data_rows=data_rows)
    other = ev2.data_rows  # may not reuse the memory the views read
    assert not np.shares_memory(other["tp"].to_numpy(), tp)
    np.testing.assert_array_equal(tp, tp_before)
    np.testing.assert_array_equal(precision, precision_before)
    assert not np.array_equal(other["tp"].to_numpy(), tp_before)


def test_spare_buffer_sizes_and_replacement(no_spares):
    a = _memory.spare_buffer("t", (4, 5), np.int64)
    assert a.shape == (4, 5) and a.dtype == np.int64
    base = weakref.ref(_memory._spares["t"])
    in_use = _memory.spare_buffer("t", (4, 5), np.int64)  # ``a`` holds the spare: new
    assert in_use.base is not base() and not np.shares_memory(a, in_use)
    del a, in_use
    base = weakref.ref(_memory._spares["t"])
    smaller = _memory.spare_buffer("t", (3, 5), np.int64)  # fits: reused
    assert smaller.base is base() and smaller.shape == (3, 5)
    del smaller
    other_dtype = _memory.spare_buffer("t", (3, 5), np.float64)  # another dtype: new
    assert other_dtype.base is not base() and other_dtype.dtype == np.float64
    del other_dtype
    larger = _memory.spare_buffer("t", (2000, 5), np.float64)  # too small: new
    assert larger.size == 10_000 and _memory._spares["t"].size == 10_000
    del larger
    tiny = _memory.spare_buffer("t", (1,), np.float64)  # far too large to pin: new
    assert _memory._spares["t"].size == 1 and tiny.size == 1


def test_a_result_keeps_no_dense_per_row_tables():
    gt, pd, data_rows = case(0)
    ev = pm.evaluate(gt, pd, data_rows=data_rows)
    m = ev.detail.matches_arrays
    n_rows, C = m.row_iou.shape
    dense = n_rows * C * m.n_iou  # cells of one per-row table
    kept = [v for v in vars(m).values() if isinstance(v, np.ndarray)]
    assert m.score_rows is None
    assert all(a.size < dense for a in kept)  # (3, n_rows, C, T) tables are not kept
    counts, means = m.row_tables()
    assert counts.shape == means.shape == (3, n_rows, C, m.n_iou)


@pytest.mark.parametrize("greedy_order", ["iou", "score"])
def test_row_tables_sum_to_the_cube(greedy_order):
    """tp / fp / fn of the data-row table summed over rows equal the cube's (an independent
    path: the cube counts come from the events' rectangles per feature)."""
    gt, pd, data_rows = case(1)
    ev = pm.evaluate(gt, pd, data_rows=data_rows, greedy_order=greedy_order)
    keys = ["confidence_threshold", "iou_threshold"]
    rows = ev.data_rows.group_by(keys).agg(pl.col("tp", "fp", "fn").sum()).sort(keys)
    cube = ev.cube.group_by(keys).agg(pl.col("tp", "fp", "fn").sum()).sort(keys)
    assert rows.equals(cube)


def test_pairs_and_joined_boxes_in_spares_stay_with_a_live_result(monkeypatch, no_spares):
    """Two threads' pair parts are joined into spare buffers and a chunked box column into
    another: the frames equal the frozen ones, the first result's pairs survive a second call
    made while it is alive, and that call equals one made with fresh buffers only."""
    monkeypatch.setattr(_parallel, "SMALL", 0)
    monkeypatch.setattr(_parallel, "num_threads", lambda: 2)
    gt, pd, data_rows = case(0)
    chunked = pl.concat([pd[: pd.height // 2], pd[pd.height // 2:]], rechunk=False)
    assert chunked["bbox"].n_chunks() == 2
    ev = pm.evaluate(gt, chunked, data_rows=data_rows)
    assert {"pair_gt", "pair_pd", "pair_iou", "pd_boxes"} <= set(_memory._spares)
    pairs = ev.detail.pairs_arrays
    assert np.shares_memory(pairs.gt, _memory._spares["pair_gt"])
    kept = (pairs.gt.copy(), pairs.pd.copy(), pairs.iou.copy())
    assert ev.data_rows.equals(_golden_rows(0))
    pd2 = chunked.with_columns(pl.col("bbox").arr.eval(pl.element() * 0.9))  # other pairs
    ev2 = pm.evaluate(gt, pd2, data_rows=data_rows)
    assert not np.shares_memory(ev2.detail.pairs_arrays.gt, pairs.gt)
    for got, want in zip((pairs.gt, pairs.pd, pairs.iou), kept, strict=True):
        np.testing.assert_array_equal(got, want)
    assert ev.data_rows.equals(_golden_rows(0))
    _memory.release_spares()
    alone = pm.evaluate(gt, pd2.rechunk(), data_rows=data_rows)
    assert ev2.data_rows.equals(alone.data_rows)
    assert ev2.detail.pairs.equals(alone.detail.pairs)
    assert not ev2.detail.pairs.equals(ev.detail.pairs)
