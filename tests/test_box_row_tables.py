"""The data-row table rebuilt from the match events on each read (wave 6, ``h-box2``): a result
keeps the events, not the dense per-row counts and means (48 bytes per data row and threshold
cell), and those are written into spare buffers that a later read reuses once nothing
references them any more (``polars_metrics._spare``); the pairs stage frees a chunked box
column's join and each column's thread parts before joining the next.

Every frame is compared with the frozen frames of ``tests/data/box_fast/`` (written by the
implementation before the fast path), whichever way it was built.
"""
from __future__ import annotations

import gc
import weakref

import numpy as np
import polars as pl
import pytest
from box_fast_cases import CASES, GOLDEN, case

import polars_metrics as pm
from polars_metrics import _parallel, _spare
from polars_metrics.kinds import box

PLAIN = [c for c in CASES if "on_invalid" not in c[1]]


def _golden_rows(seed: int) -> pl.DataFrame:
    return pl.read_parquet(GOLDEN / f"{seed}_data_rows.parquet")


@pytest.fixture
def no_spares(monkeypatch):
    monkeypatch.setattr(_spare, "_spares", {})


@pytest.mark.parametrize(("seed", "kwargs"), PLAIN)
def test_fresh_and_reused_buffers_give_the_frozen_table(seed, kwargs, no_spares):
    gt, pd, data_rows = case(seed)
    ev = pm.evaluate(gt, pd, data_rows=data_rows, **kwargs)
    fresh = ev.data_rows
    assert fresh.equals(_golden_rows(seed)) and fresh.schema == _golden_rows(seed).schema
    spare = weakref.ref(_spare._spares["row_counts"])  # a reference would keep it in use
    del fresh
    gc.collect()
    again = ev.data_rows  # nothing held the first frame: built in the same memory
    assert _spare._spares["row_counts"] is spare()
    assert np.shares_memory(again["tp"].to_numpy(), spare())
    assert again.equals(_golden_rows(seed))


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


def test_a_held_table_keeps_its_threshold_key_and_iou_columns(no_spares):
    """The threshold, key and IoU columns are spares too: a table still held is not written
    over by the next table (other thresholds, other data rows), and a table built in reused
    memory equals one built in fresh memory."""
    # integer data-row keys: the key column is repeated into a spare as well
    as_int = pl.col("data_row").str.slice(1).cast(pl.Int64)
    gt, pd, data_rows = (f.with_columns(as_int) for f in case(0))
    held = pm.evaluate(gt, pd, data_rows=data_rows).data_rows
    assert held["data_row"].dtype == pl.Int64
    before = held.rows()
    ev2 = pm.evaluate(gt.tail(40), pd.tail(300).with_columns(pl.col("confidence") * 0.5),
                      confidence_thresholds=[0.2, 0.7], iou_thresholds=[0.3, 0.6, 0.9])
    second = ev2.data_rows
    assert held.rows() == before
    for name in ("data_row", "confidence_threshold", "iou_threshold", "iou"):
        assert not np.shares_memory(second[name].to_numpy(), held[name].to_numpy())
    reused_rows = second.rows()
    del second, held
    gc.collect()
    again = ev2.data_rows  # nothing holds either table: built in a spare's memory
    for name, spare in (("iou_threshold", "row_iou_thr"), ("data_row", "row_key_data_row")):
        assert np.shares_memory(again[name].to_numpy(), _spare._spares[spare])
    assert again.rows() == reused_rows
    _spare.release_spares()
    gc.collect()
    assert ev2.data_rows.rows() == reused_rows  # fresh memory: the same table


def test_spare_buffer_sizes_and_replacement(no_spares):
    a = _spare.spare_buffer("t", (4, 5), np.int64)
    assert a.shape == (4, 5) and a.dtype == np.int64
    base = weakref.ref(_spare._spares["t"])
    in_use = _spare.spare_buffer("t", (4, 5), np.int64)  # ``a`` holds the spare: new
    assert in_use.base is not base() and not np.shares_memory(a, in_use)
    del a, in_use
    base = weakref.ref(_spare._spares["t"])
    smaller = _spare.spare_buffer("t", (3, 5), np.int64)  # fits: reused
    assert smaller.base is base() and smaller.shape == (3, 5)
    del smaller
    other_dtype = _spare.spare_buffer("t", (3, 5), np.float64)  # another dtype: new
    assert other_dtype.base is not base() and other_dtype.dtype == np.float64
    del other_dtype
    larger = _spare.spare_buffer("t", (2000, 5), np.float64)  # too small: new
    assert larger.size == 10_000 and _spare._spares["t"].size == 10_000
    del larger
    tiny = _spare.spare_buffer("t", (1,), np.float64)  # far too large to pin: new
    assert _spare._spares["t"].size == 1 and tiny.size == 1
    assert _spare.release_spares() == 8 and not _spare._spares


def test_large_spares_with_a_size_limit_are_not_kept(no_spares):
    small = _spare.spare_buffer("s", (10,), np.float64, keep_below=100)  # 80 bytes: kept
    large = _spare.spare_buffer("l", (20,), np.float64, keep_below=100)  # 160 bytes: not
    assert "s" in _spare._spares and "l" not in _spare._spares
    assert small.shape == (10,) and large.shape == (20,)


def test_spares_stay_within_their_budget(monkeypatch, no_spares):
    monkeypatch.setattr(_spare, "SPARE_BYTES", 1000)
    kept = _spare.spare_buffer("a", (100,), np.float64)  # 800 bytes: kept
    assert "a" in _spare._spares
    over = _spare.spare_buffer("b", (100,), np.float64)  # would make 1,600: not kept
    assert "b" not in _spare._spares and over.shape == (100,)
    del kept, over


@pytest.mark.parametrize(("seed", "kwargs"), PLAIN)
def test_every_read_of_the_rebuilt_table_equals_the_frozen_one(seed, kwargs, no_spares):
    gt, pd, data_rows = case(seed)
    ev = pm.evaluate(gt, pd, data_rows=data_rows, **kwargs)
    first = ev.data_rows
    assert first.equals(_golden_rows(seed)) and first.schema == _golden_rows(seed).schema
    before = first.rows()  # Python values: no memory shared with the frame
    del first
    gc.collect()
    # a second evaluation on other predictions in between: the first result's table is built
    # from its own events
    other = pm.evaluate(gt, pd.with_columns(pl.col("confidence") * 0.5), data_rows=data_rows,
                        **kwargs).data_rows
    again = ev.data_rows
    assert again.equals(_golden_rows(seed)) and again.rows() == before
    assert other.rows() != before


def test_a_frame_alive_keeps_its_values_through_the_next_call(no_spares):
    gt, pd, data_rows = case(0)
    ev = pm.evaluate(gt, pd, data_rows=data_rows)
    first = ev.data_rows
    tp, precision = first["tp"].to_numpy(), first["precision"].to_numpy()
    tp_before, precision_before = tp.copy(), precision.copy()
    ev2 = pm.evaluate(gt, pd.with_columns(pl.col("confidence") * 0.5), data_rows=data_rows)
    second = ev2.data_rows
    assert not np.shares_memory(first["tp"].to_numpy(), second["tp"].to_numpy())
    np.testing.assert_array_equal(tp, tp_before)
    np.testing.assert_array_equal(precision, precision_before)
    assert first.equals(_golden_rows(0))
    assert not np.array_equal(second["tp"].to_numpy(), tp_before)


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


def test_pairs_joined_from_thread_parts_of_a_chunked_box_column(monkeypatch):
    """Two threads' pair parts joined column by column (their parts freed as they go) from a
    chunked box column (as a Parquet file reads): the same pairs and frames as one range."""
    gt, pd, data_rows = case(0)
    chunked = pl.concat([pd[: pd.height // 2], pd[pd.height // 2:]], rechunk=False)
    assert chunked["bbox"].n_chunks() == 2
    one = pm.evaluate(gt, pd, data_rows=data_rows)
    monkeypatch.setattr(_parallel, "SMALL", 0)
    monkeypatch.setattr(_parallel, "num_threads", lambda: 2)
    parts = []
    real = box._joined
    monkeypatch.setattr(box, "_joined", lambda off, p: parts.append(len(p)) or real(off, p))
    two = pm.evaluate(gt, chunked, data_rows=data_rows)
    assert parts == [2]  # the pairs came in two parts
    assert two.data_rows.equals(_golden_rows(0))
    assert two.detail.pairs.equals(one.detail.pairs)
    for a, b in zip((one.detail.pairs_arrays.gt, one.detail.pairs_arrays.pd,
                     one.detail.pairs_arrays.iou),
                    (two.detail.pairs_arrays.gt, two.detail.pairs_arrays.pd,
                     two.detail.pairs_arrays.iou), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_run_reserves_the_table_spare_and_the_read_uses_it(no_spares):
    gt, pd, data_rows = case(0)
    ev = pm.evaluate(gt, pd, data_rows=data_rows)
    reserved = weakref.ref(_spare._spares["row_counts"])  # made in the match stage
    frame = ev.data_rows
    assert np.shares_memory(frame["tp"].to_numpy(), reserved())
    assert frame.equals(_golden_rows(0))
    scored = pm.evaluate(gt, pd, data_rows=data_rows, greedy_order="score")
    assert _spare._spares["row_counts"] is reserved()  # in use: score order reserves none
    del scored


@pytest.mark.parametrize(("seed", "kwargs"), PLAIN)
def test_generated_columns_made_on_threads_give_the_frozen_table(seed, kwargs, monkeypatch):
    """Tables of a million rows and more make their threshold and IoU columns on threads."""
    from polars_metrics import metrics

    monkeypatch.setattr(metrics, "GRID_THREADS_ROWS", 0)
    monkeypatch.setattr(_parallel, "num_threads", lambda: 2)
    gt, pd, data_rows = case(seed)
    rows = pm.evaluate(gt, pd, data_rows=data_rows, **kwargs).data_rows
    assert rows.equals(_golden_rows(seed)) and rows.schema == _golden_rows(seed).schema
