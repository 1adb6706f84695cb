"""What a result keeps, in compact forms (issue 12, target 3: peak RSS with the previous result
alive): the sides' order as runs of consecutive rows, their feature codes narrowed, the pairs'
positions relative to their data row; and the walk's per-row slots in the data-row table's
idle spare. Every view of a kept result is compared with the same evaluation run with nothing
compacted (the arrays a result held before), and the compact helpers with plain numpy."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from box_fast_cases import BOX, CASES, case

import polars_metrics as pm
from polars_metrics import _arrays, _spare, events
from polars_metrics.pairs import Pairs
from polars_metrics.prepare import Side


def _plain(monkeypatch, *args, **kwargs) -> pm.Evaluation:
    """The same evaluation with nothing kept in compact form (``Side.kept`` and ``Pairs.kept``
    leave the arrays as the run made them): what a result held before, the reference."""
    with monkeypatch.context() as mp:
        mp.setattr(Side, "kept", lambda self, frame, npass: Side(frame, self.order, self.off,
                                                                 self.codes, npass))
        mp.setattr(Pairs, "kept", lambda self, gt_off, pd_off: self)
        plain = pm.evaluate(*args, **kwargs)
    d = plain.detail
    assert d.prep.pd.codes.dtype == np.int32 and d.pairs_arrays.gt_start is None
    assert not isinstance(d.prep.pd.order, _arrays.Runs)
    return plain


def _assert_same_views(ev: pm.Evaluation, plain: pm.Evaluation) -> None:
    cs, ts = ev.confidence_thresholds, ev.iou_thresholds
    for c, t in ((cs[0], ts[-2]), (cs[len(cs) // 2], ts[len(ts) // 2]), (cs[-1], ts[-1])):
        for per in ("feature", "annotation"):
            assert ev.errors(c, t, per=per).equals(plain.errors(c, t, per=per))
        assert ev.outcomes(c, t).equals(plain.outcomes(c, t))
        assert ev.suspects(c, t).equals(plain.suspects(c, t))
        assert ev.uncertain(c, t).equals(plain.uncertain(c, t))
        for g, p in (("cat", "cat"), ("cat", "dog"), (None, ev.features[-1]), ("dog", None)):
            assert ev.examples(g, p, confidence=c, iou=t).equals(
                plain.examples(g, p, confidence=c, iou=t))
    assert ev.detail.pairs.equals(plain.detail.pairs)
    assert ev.matches.equals(plain.matches)
    assert ev.data_row_features.equals(plain.data_row_features)
    for name in ("data_rows", "cube", "confusion"):
        assert getattr(ev, name).equals(getattr(plain, name)), name


@pytest.mark.filterwarnings("ignore:on_invalid='drop'")
@pytest.mark.parametrize(("seed", "kwargs"), CASES)
def test_a_kept_result_reads_like_the_plain_arrays(seed, kwargs, monkeypatch):
    gt, pd, data_rows = case(seed)
    ev = pm.evaluate(gt, pd, data_rows=data_rows, **kwargs)
    d = ev.detail
    assert d.prep.pd.codes.dtype == np.uint8 and d.prep.pd.feat.dtype == np.int32
    assert d.pairs_arrays.gt_codes.dtype == d.pairs_arrays.pd_codes.dtype == np.uint8
    assert d.matches_arrays.pairs is d.pairs_arrays  # one copy, shared with the walk
    assert d.matches_arrays.sides[3] is d.prep.pd.codes
    assert d.matches_arrays._in_call is None  # the call's widened copies are not kept
    _assert_same_views(ev, _plain(monkeypatch, gt, pd, data_rows=data_rows, **kwargs))


def _sorted_case(n_rows: int, n_pd_big: int, seed: int = 0):
    """Tables in data-row order (so the kept order is runs), one data row with ``n_pd_big``
    predictions, and a data row with predictions only (dropped: not in the ground truth)."""
    rng = np.random.default_rng(seed)
    gt_rows, pd_rows = [], []
    for r in range(n_rows):
        n_gt = int(rng.integers(1, 5))
        n_pd = n_pd_big if r == 1 else int(rng.integers(1, 9))
        for i in range(n_gt):
            x, y = rng.integers(0, 6, 2)
            gt_rows.append((f"r{r:03d}", 1000 * r + i, ["cat", "dog"][i % 2],
                            [float(x), float(y), x + 3.0, y + 3.0]))
        for i in range(n_pd):
            x, y = rng.integers(0, 6, 2)
            pd_rows.append((f"r{r:03d}", 1000 * r + i, ["cat", "dog"][i % 3 % 2],
                            [float(x), float(y), x + 3.0, y + 3.0], float(rng.random())))
        if r == 2:  # a data row with no ground truth: its predictions are not counted
            pd_rows.append(("r002x", 9, "cat", [0.0, 0, 1, 1], 0.5))
    gt = pl.DataFrame(gt_rows, schema={"data_row": pl.String, "id": pl.Int64,
                                       "feature": pl.String, "bbox": BOX}, orient="row")
    pd = pl.DataFrame(pd_rows, schema={"data_row": pl.String, "id": pl.Int64,
                                       "feature": pl.String, "bbox": BOX,
                                       "confidence": pl.Float64}, orient="row")
    return gt, pd


@pytest.mark.parametrize(("n_pd_big", "code_dtype"), [(40, np.uint8), (300, np.uint16)])
def test_sorted_tables_keep_their_order_as_runs_and_wide_rows_as_uint16(n_pd_big, code_dtype,
                                                                       monkeypatch):
    gt, pd = _sorted_case(60, n_pd_big)
    ev = pm.evaluate(gt, pd, data_row="data_row")
    d = ev.detail
    assert isinstance(d.prep.pd.order, _arrays.Runs)  # the unmatched row broke one run
    assert len(d.prep.pd.order.start) == 2
    assert d.pairs_arrays.pd_codes.dtype == code_dtype
    assert ev.excluded.height == 1
    plain = _plain(monkeypatch, gt, pd, data_row="data_row")
    assert plain.detail.prep.pd.idx.tolist() == [i for i in range(pd.height)
                                                 if pd["data_row"][i] != "r002x"]
    _assert_same_views(ev, plain)


def test_kept_forms_are_smaller():
    gt, pd = _sorted_case(200, 20)
    d = pm.evaluate(gt, pd).detail
    p = d.pairs_arrays
    assert p.gt_codes.nbytes * 4 == p.gt.nbytes and p.pd_codes.nbytes * 4 == p.pd.nbytes
    runs = d.prep.pd.order
    assert runs.start.nbytes + runs.off.nbytes < d.prep.pd.idx.nbytes / 4


@pytest.mark.parametrize("seed", range(6))
def test_runs_give_back_the_positions(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 2000))
    keep = rng.random(n) < (0.999 if seed % 2 else 0.5)
    positions = np.flatnonzero(keep).astype(np.int32 if seed < 3 else np.int64)
    runs = _arrays.Runs.of(positions, min_ratio=1)
    if positions.size == 0:
        assert runs is None
        return
    out = runs.expand()
    assert out.dtype == positions.dtype
    np.testing.assert_array_equal(out, positions)
    n_runs = 1 + int(np.count_nonzero(np.diff(positions) != 1))
    assert runs.start.size == n_runs
    # not worth it (fewer than 8 values a run) or not strictly ascending: no runs
    scattered = np.arange(0, 40, 2, dtype=np.int32)
    assert _arrays.Runs.of(scattered) is None
    assert _arrays.Runs.of(np.array([0, 1, 1, 2], np.int32), min_ratio=1) is None
    assert _arrays.Runs.of(np.array([3, 2], np.int32), min_ratio=1) is None


@pytest.mark.parametrize(("width", "dtype"), [(200, np.uint8), (5000, np.uint16),
                                              (70_000, np.int32)])
def test_row_local_positions_round_trip(width, dtype):
    rng = np.random.default_rng(width)
    n_rows = 5
    side_off = _arrays.offsets_from_lengths(rng.integers(1, width, n_rows))
    side_off[-1] = side_off[-2] + width  # the last row is exactly ``width`` wide
    counts = rng.integers(0, 50, n_rows)
    positions = np.concatenate([rng.integers(side_off[r], side_off[r + 1], counts[r])
                                for r in range(n_rows)]).astype(np.int32)
    positions[-1] = side_off[-1] - 1  # the widest local value occurs
    row_off = _arrays.offsets_from_lengths(counts)
    local = _arrays.row_local(positions, row_off, side_off)
    assert local.dtype == dtype
    back = _arrays.from_row_local(local, row_off, side_off)
    assert back.dtype == np.int32
    np.testing.assert_array_equal(back, positions)


def test_the_walk_keeps_its_slots_in_the_idle_table_spare(monkeypatch):
    """A second run borrows the spare the first run's (dropped) table used; its frames equal a
    run with no spare at all."""
    gt, pd, data_rows = case(0)
    borrowed = []
    real = events.borrow

    def spy(name, nbytes):
        out = real(name, nbytes)
        borrowed.append(out is not None)
        return out

    monkeypatch.setattr(events, "borrow", spy)
    _spare.release_spares()
    first = pm.evaluate(gt, pd, data_rows=data_rows)
    want = {k: getattr(first, k) for k in ("cube", "confusion", "matches")}
    want_rows = first.data_rows.rows()  # copied out: the table itself is dropped
    want_values = first.detail.matches_arrays.iv_val.copy()  # walked again: borrows too
    del first
    again = pm.evaluate(gt, pd, data_rows=data_rows)
    assert borrowed and all(borrowed), borrowed
    for k, frame in want.items():
        assert getattr(again, k).equals(frame), k
    assert again.data_rows.rows() == want_rows
    np.testing.assert_array_equal(again.detail.matches_arrays.iv_val, want_values)
    _spare.release_spares()
    borrowed.clear()
    fresh = pm.evaluate(gt, pd, data_rows=data_rows, confidence_thresholds=[0.5])
    assert borrowed == [True]  # reserved in its match stage, then borrowed
    held = fresh.data_rows  # the table holds the spare: the next walk takes new slots
    walked = fresh.detail.matches_arrays
    walked.drop_values()
    borrowed.clear()
    assert walked.iv_val is not None and borrowed == [False]
    assert held.height > 0
