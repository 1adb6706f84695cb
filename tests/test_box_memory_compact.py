"""What a result keeps, compacted (issue 12, target 3, h-boxmem): int32 pair positions, match
events kept as (pair, confidence index) with their ground truth, prediction, IoU, flag and IoU
bin read through the pair. Every frame is compared with an independent computation: the naive
walks of ``tests/naive.py`` per cell, the hand-written IoU test, and the frozen frames of
``tests/data/box_fast/``."""
from __future__ import annotations

import dataclasses

import naive
import numpy as np
import polars as pl
import pytest
from box_fast_cases import CASES, GOLDEN, case

import polars_metrics as pm
from polars_metrics import matching
from polars_metrics.events import Matches
from polars_metrics.matching import matched_at
from polars_metrics.pairs import INDEX_LIMIT, index_dtype, positions32

PLAIN = [c for c in CASES if "on_invalid" not in c[1]]


def test_index_dtype_switches_to_int64_beyond_the_int32_range():
    assert index_dtype(0) is np.int32
    assert index_dtype(2**31 - 1) is np.int32  # positions 0 .. 2**31 - 2 fit
    assert index_dtype(2**31) is np.int64
    assert index_dtype(5 * 2**31) is np.int64
    assert INDEX_LIMIT == np.iinfo(np.int32).max


def test_positions32_refuses_a_position_beyond_int32():
    ok = positions32(np.array([0, 3, 2**31 - 1], dtype=np.int64))
    assert ok.dtype == np.int32 and ok.tolist() == [0, 3, 2**31 - 1]
    with pytest.raises(OverflowError, match="2147483648"):
        positions32(np.array([1, 2**31], dtype=np.int64))
    same = np.array([4, 5], dtype=np.int32)
    assert positions32(same) is same  # no copy


def test_a_result_keeps_events_as_pair_and_confidence_index_only():
    gt, pd, data_rows = case(0)
    ev = pm.evaluate(gt, pd, data_rows=data_rows)
    m, pairs = ev.detail.matches_arrays, ev.detail.pairs_arrays
    stored = {f.name for f in dataclasses.fields(Matches)}
    assert not stored & {"ev_gt", "ev_pd", "ev_iou", "ev_free", "ev_bin"}
    assert m.pairs is pairs  # one copy of the pairs, shared with the detail
    assert pairs.gt.dtype == pairs.pd.dtype == m.ev_k.dtype == np.int32
    assert m.ev_gt.dtype == m.ev_pd.dtype == m.ev_bin.dtype == np.int32
    # the views are the pairs' values at the events
    np.testing.assert_array_equal(m.ev_iou, pairs.iou[m.ev_k])
    np.testing.assert_array_equal(m.ev_gt, pairs.gt[m.ev_k])


def _naive_bin(iou: float, free: bool, thresholds, strict: bool) -> int:
    if free:
        return len(thresholds)
    return sum(naive.passes(iou, t, strict) for t in thresholds)


@pytest.mark.parametrize(("seed", "kwargs"), PLAIN)
def test_event_bins_equal_the_iou_test_by_hand(seed, kwargs):
    gt, pd, data_rows = case(seed)
    ev = pm.evaluate(gt, pd, data_rows=data_rows, **kwargs)
    m = ev.detail.matches_arrays
    strict = kwargs.get("iou_strict", True)
    want = [_naive_bin(v, f, ev.iou_thresholds.tolist(), strict)
            for v, f in zip(m.ev_iou.tolist(), m.ev_free.tolist(), strict=True)]
    assert m.ev_bin.tolist() == want


def _naive_matches(nv: naive.NaiveResult, c: float, t: float) -> list[tuple]:
    out = []
    for row in nv.rows:
        for g_feat, p_feat, g_id, p_id, iou in row.events.get((c, t), []):
            if g_id is not None and p_id is not None:
                out.append((row.key[0], g_id, p_id, g_feat, p_feat, round(iou, 12)))
    return sorted(out)


@pytest.mark.parametrize("order", ["iou", "score"])
@pytest.mark.parametrize(("seed", "kwargs"), PLAIN)
def test_matches_read_through_the_pairs_equal_the_naive_walk_per_cell(seed, kwargs, order):
    gt, pd, data_rows = case(seed)
    ev = pm.evaluate(gt, pd, data_rows=data_rows, greedy_order=order, **kwargs)
    nv = naive.evaluate(gt, pd, data_rows=data_rows, greedy_order=order, **kwargs)
    strict = kwargs.get("iou_strict", True)
    assert nv.confidence_thresholds == ev.confidence_thresholds.tolist()
    assert nv.iou_thresholds == ev.iou_thresholds.tolist()
    n_cells = 0
    for c in nv.confidence_thresholds:
        for t in nv.iou_thresholds:
            got = matched_at(ev.matches, c, t, strict).select(
                "data_row", "gt_id", "pd_id", "gt_feature", "pd_feature",
                pl.col("iou").round(12)).sort(pl.all()).rows()
            want = _naive_matches(nv, c, t)
            assert got == want, (c, t)
            n_cells += len(want)
    assert n_cells > 20  # the cases do match


@pytest.mark.filterwarnings("ignore:on_invalid='drop'")
@pytest.mark.parametrize(("seed", "kwargs"), CASES)
def test_int64_event_positions_give_the_same_frames(seed, kwargs, monkeypatch):
    """Beyond 2**31 - 1 pairs the events' positions are int64: the same frames (the frozen
    ones) through that path, forced here on small data."""
    monkeypatch.setattr(matching, "index_dtype", lambda n: np.int64)
    gt, pd, data_rows = case(seed)
    ev = pm.evaluate(gt, pd, data_rows=data_rows, **kwargs)
    assert ev.detail.matches_arrays.ev_k.dtype == np.int64
    for name in ("cube", "confusion", "data_rows", "overall"):
        want = pl.read_parquet(GOLDEN / f"{seed}_{name}.parquet")
        assert getattr(ev, name).equals(want), name
    score = pm.evaluate(gt, pd, data_rows=data_rows, greedy_order="score", **kwargs)
    assert score.detail.matches_arrays.ev_k.dtype == np.int64
    monkeypatch.undo()
    again = pm.evaluate(gt, pd, data_rows=data_rows, greedy_order="score", **kwargs)
    for name in ("cube", "confusion", "data_rows", "matches"):
        assert getattr(score, name).equals(getattr(again, name)), name


def _widened(ev: pm.Evaluation) -> pm.Evaluation:
    """The same result with the pairs' and events' positions widened to int64 (what a result
    kept before h-boxmem)."""
    d, m = ev.detail, ev.detail.matches_arrays
    assert m.iv_off is not None  # the values walked again now with the int32 pairs; copied below
    wide = dataclasses.replace(d.pairs_arrays, gt_codes=d.pairs_arrays.gt.astype(np.int64),
                               pd_codes=d.pairs_arrays.pd.astype(np.int64), gt_start=None,
                               pd_start=None)
    detail = dataclasses.replace(d, pairs_arrays=wide, frames={}, matches_arrays=dataclasses.replace(
        m, pairs=wide, ev_k=m.ev_k.astype(np.int64)))
    return dataclasses.replace(ev, detail=detail)


@pytest.mark.parametrize("seed", [0, 1, 5])
def test_analysis_views_are_the_same_on_int32_and_int64_positions(seed):
    """errors(), outcomes(), examples(), suspects(), uncertain() and the pairs frame read the
    int32 pairs as they read int64 ones."""
    gt, pd, data_rows = case(seed)
    ev = pm.evaluate(gt, pd, data_rows=data_rows)
    assert ev.detail.pairs_arrays.gt.dtype == np.int32
    wide = _widened(ev)
    assert wide.detail.matches_arrays.ev_gt.dtype == np.int64
    for c, t in ((0.5, 0.5), (0.2, 0.7)):
        for per in ("feature", "annotation"):
            assert ev.errors(c, t, per=per).equals(wide.errors(c, t, per=per))
        assert ev.outcomes(c, t).equals(wide.outcomes(c, t))
        assert ev.suspects(c, t).equals(wide.suspects(c, t))
        assert ev.uncertain(c, t).equals(wide.uncertain(c, t))
        for g, p in (("cat", "cat"), ("cat", "dog"), (None, "eel"), ("dog", None)):
            assert ev.examples(g, p, confidence=c, iou=t).equals(
                wide.examples(g, p, confidence=c, iou=t))
    assert ev.detail.pairs.equals(wide.detail.pairs)
    assert ev.matches.equals(wide.matches)
    assert ev.data_row_features.equals(wide.data_row_features)


def _chunked(frame: pl.DataFrame, n: int) -> pl.DataFrame:
    """The frame in ``n`` chunks (as a Parquet file read in row groups)."""
    step = -(-frame.height // n)
    return pl.concat([frame.slice(i, step) for i in range(0, frame.height, step)], rechunk=False)


@pytest.mark.filterwarnings("ignore:on_invalid='drop'")
@pytest.mark.parametrize("block", [1, 7, 1 << 18])
@pytest.mark.parametrize(("seed", "kwargs"), CASES)
def test_chunked_box_columns_pair_by_blocks_like_one_array(seed, kwargs, block, monkeypatch):
    """A box column in several chunks is paired by blocks of data rows, each block's boxes
    gathered from the chunks: the same pairs as the whole column in one array, and the frozen
    frames. The cases list data rows out of order and drop rows (``on_invalid``), so the
    blocks gather through the sides' row order."""
    from polars_metrics.kinds import box as box_kind

    gt, pd, data_rows = case(seed)
    one = pm.evaluate(gt, pd, data_rows=data_rows, **kwargs)
    calls = []
    real = box_kind._block_parts
    monkeypatch.setattr(box_kind, "_block_parts", lambda g, p: calls.append(1) or real(g, p))
    monkeypatch.setattr(box_kind, "BLOCK_BOXES", block)
    cg, cp = _chunked(gt, 4), _chunked(pd, 5)
    assert cg["bbox"].n_chunks() == 4 and cp["bbox"].n_chunks() == 5
    ev = pm.evaluate(cg, cp, data_rows=data_rows, **kwargs)
    assert calls  # the block path ran
    a, b = one.detail.pairs_arrays, ev.detail.pairs_arrays
    for x, y in ((a.off, b.off), (a.gt, b.gt), (a.pd, b.pd), (a.iou, b.iou)):
        np.testing.assert_array_equal(x, y)
    assert b.gt.dtype == b.pd.dtype == np.int32
    for name in ("cube", "confusion", "data_rows", "overall"):
        want = pl.read_parquet(GOLDEN / f"{seed}_{name}.parquet")
        assert getattr(ev, name).equals(want), name


def test_block_boxes_gather_across_chunks_in_row_order():
    """_Chunks.boxes against a plain gather of the joined column, through a shuffled order."""
    from polars_metrics.kinds.box import _Chunks
    from polars_metrics.prepare import Side

    rng = np.random.default_rng(0)
    boxes = rng.random((50, 4))
    frame = _chunked(pl.DataFrame({"bbox": boxes}, schema={"bbox": pl.Array(pl.Float64, 4)}), 6)
    order = rng.permutation(50).astype(np.int32)
    side = Side(frame, order, np.array([0, 50]), np.zeros(50, np.int32), None)
    chunks = _Chunks(side, 30)
    for a, b in ((0, 30), (30, 50), (7, 8), (10, 10)):
        np.testing.assert_array_equal(chunks.boxes(a, b), boxes[order[a:b]])
    plain = _Chunks(Side(frame, None, np.array([0, 50]), np.zeros(50, np.int32), None), 50)
    np.testing.assert_array_equal(plain.boxes(3, 41), boxes[3:41])
    # rows left out of a frame already in data-row order: ascending, copied chunk by chunk
    kept = np.sort(rng.choice(50, 31, replace=False)).astype(np.int32)
    subset = _Chunks(Side(frame, kept, np.array([0, 31]), np.zeros(31, np.int32), None), 31)
    assert subset.ascending and not chunks.ascending
    for a, b in ((0, 31), (4, 19), (30, 31), (9, 9)):
        np.testing.assert_array_equal(subset.boxes(a, b), boxes[kept[a:b]])


@pytest.mark.filterwarnings("ignore:on_invalid='drop'")
@pytest.mark.parametrize("order", ["iou", "score"])
@pytest.mark.parametrize(("seed", "kwargs"), CASES)
def test_a_finished_result_walks_its_iou_values_again_to_the_same_bits(seed, kwargs, order):
    """pm.evaluate's result drops the walk's sparse IoU-metric values and walks again on
    first read: the same arrays as the partial result's (which keeps them), and the same
    iou_values / data_row_features frames."""
    gt, pd, data_rows = case(seed)
    part = pm.partial(gt, pd, data_rows=data_rows, greedy_order=order, **kwargs)
    assert part.detail.matches_arrays.values is not None
    kept = tuple(a.copy() for a in part.detail.matches_arrays.values)
    iou_values = part.detail.iou_values  # from the walk's own values
    row_features = part.detail.data_row_features(part.profile.zero_tn)
    ev = pm.finalize(part)
    m = ev.detail.matches_arrays
    assert m.values is None  # dropped by the finished result (and its data-row builder)
    for a, b in zip((m.iv_off, m.iv_c, m.iv_rf, m.iv_val), kept, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert m.values is not None  # walked once, kept
    fresh = pm.evaluate(gt, pd, data_rows=data_rows, greedy_order=order, **kwargs)
    assert fresh.detail.matches_arrays.values is None
    assert fresh.detail.iou_values.equals(iou_values)
    assert fresh.data_row_features.equals(row_features)
    assert fresh.data_rows.equals(ev.data_rows)


def test_narrowed_arrays_read_back_as_the_same_int32_values():
    from polars_metrics.events import narrowed, widened

    cases = {"u8": np.array([0, 7, 255], np.int32), "u16": np.array([0, 256, 65535], np.int32),
             "wide": np.array([1, 65536], np.int32), "neg": np.array([-1, 3], np.int32),
             "empty": np.zeros(0, np.int32)}
    got = narrowed(**cases)
    assert [got[k].dtype.name for k in cases] == ["uint8", "uint16", "int32", "int32", "uint8"]
    for k, a in cases.items():
        back = widened(got[k])
        assert back.dtype == np.int32 and back.tolist() == a.tolist()
    assert widened(cases["wide"]) is cases["wide"]  # int32 already: no copy


@pytest.mark.parametrize(("seed", "kwargs"), PLAIN)
def test_narrowed_walk_arrays_equal_hand_counts(seed, kwargs):
    """npass, rf_feat, rf_ngt and rf_until kept narrowed read back as the values counted by
    hand from the inputs; the result's prepared view shares the walk's npass; a single-kind
    run's classification flags take no memory."""
    gt, pd, data_rows = case(seed)
    ev = pm.evaluate(gt, pd, data_rows=data_rows, **kwargs)
    prep, m = ev.detail.prep, ev.detail.matches_arrays
    assert {a.dtype.name for a in m.narrow.values()} == {"uint8"}
    assert prep.pd.npass is m.narrow["npass"]
    conf = prep.pd.column("confidence").to_list()
    thr = ev.confidence_thresholds.tolist()
    assert m.npass.dtype == np.int32
    assert m.npass.tolist() == [sum(c >= t for t in thr) for c in conf]
    gt_row, gt_feat = prep.gt.row.tolist(), prep.gt.feat.tolist()
    rows = m.rf_row.tolist()
    feats = m.rf_feat.tolist()
    assert m.rf_ngt.tolist() == [sum(1 for r, f in zip(gt_row, gt_feat, strict=True)
                                     if (r, f) == (row, feat))
                                 for row, feat in zip(rows, feats, strict=True)]
    pd_row, pd_feat = prep.pd.row.tolist(), prep.pd.feat.tolist()
    present = {(r, f) for r, f in zip(gt_row + pd_row, gt_feat + pd_feat, strict=True)}
    assert list(zip(rows, feats, strict=True)) == sorted(present)
    assert ((m.rf_until >= 0) & (m.rf_until <= len(thr))).all()
    assert ev.detail.pairs_arrays.always.strides == (0,)
