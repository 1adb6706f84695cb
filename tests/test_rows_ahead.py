"""The data-row table's arrays built ahead (``Matches.start_row_tables``): a pool thread builds
them while the run's cube, confusion and finalize stages go on, and the first read takes them,
its thread joining in for the ranges left (``_parallel.Background``).

Every frame is compared with the frozen frames of ``tests/data/box_fast/`` (written by the
implementation before any fast path), and with the table built on read, without the job.
"""
from __future__ import annotations

import gc
import os
import pickle
import sys
import threading

import numpy as np
import pytest
from box_fast_cases import CASES, GOLDEN, case

import polars_metrics as pm
from polars_metrics import _parallel, _spare, events

PLAIN = [c for c in CASES if "on_invalid" not in c[1]]


def _golden_rows(seed: int):
    import polars as pl

    return pl.read_parquet(GOLDEN / f"{seed}_data_rows.parquet")


@pytest.fixture
def two_threads(monkeypatch):
    """Jobs start whatever the machine's cores (they are skipped on one thread)."""
    monkeypatch.setattr(events, "num_threads", lambda: 2)
    monkeypatch.setattr(_parallel, "num_threads", lambda: 2)


def _walk(ev):
    return ev.detail.matches_arrays


# --- the job itself ----------------------------------------------------------------------


def test_every_range_runs_once_whoever_takes_it():
    seen, lock = [], threading.Lock()
    out = np.zeros(1000, np.int64)

    def kernel(values, lo, hi):
        with lock:
            seen.append((lo, hi, threading.get_ident()))
        values[lo:hi] += 1

    job = _parallel.Background(kernel, (out,), np.arange(1001), parts=16)
    job.wait()
    job.wait()  # a second wait runs nothing again
    assert out.tolist() == [1] * 1000
    assert job._args == ()  # the inputs are let go
    ranges = sorted((lo, hi) for lo, hi, _ in seen)
    assert len(ranges) == 16 and ranges[0][0] == 0 and ranges[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))


def test_the_caller_takes_the_ranges_the_worker_has_not_started():
    started, release = threading.Event(), threading.Event()
    callers = []

    def kernel(values, lo, hi):
        if threading.current_thread() is not threading.main_thread():
            started.set()
            release.wait(10)  # the worker is stuck in its first range
        callers.append(threading.current_thread() is threading.main_thread())
        values[lo:hi] = 1

    out = np.zeros(64, np.int64)
    job = _parallel.Background(kernel, (out,), np.arange(65), parts=8)
    assert started.wait(10)
    threading.Timer(0.2, release.set).start()
    job.wait()
    assert out.tolist() == [1] * 64
    assert callers.count(True) == 7 and callers.count(False) == 1


def test_a_job_nobody_waits_for_lets_its_inputs_go_when_done():
    inputs = np.zeros(100, np.int64)
    out = np.zeros(100, np.int64)

    def kernel(values, result, lo, hi):
        result[lo:hi] = values[lo:hi] + 1

    job = _parallel.Background(kernel, (inputs, out), np.arange(101), parts=4)
    job._worker.result()  # the worker ran every range; nobody waited
    assert job._args == () and sys.getrefcount(inputs) == 2  # (the test's name, the call's)
    assert out.tolist() == [1] * 100


def test_a_cancelled_job_starts_no_more_ranges():
    started, release = threading.Event(), threading.Event()
    ran = []

    def kernel(values, lo, hi):
        ran.append((lo, hi))
        started.set()
        release.wait(10)  # the worker's first range waits

    job = _parallel.Background(kernel, (None,), np.arange(101), parts=4)
    assert started.wait(10)
    threading.Timer(0.2, release.set).start()
    job.cancel()  # waits for the first range, starts none of the other three
    assert len(ran) == 1 and job._args == ()
    job.wait()  # a cancelled job runs nothing more
    assert len(ran) == 1


def test_a_kernel_error_reaches_the_reader():
    def kernel(values, lo, hi):
        if lo == 0:
            raise ValueError("planted")

    job = _parallel.Background(kernel, (None,), np.arange(11), parts=2)
    with pytest.raises(ValueError, match="planted"):
        job.wait()


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform != "linux", reason="fork")
def test_a_forked_child_runs_every_range_itself():
    release = threading.Event()

    def kernel(values, lo, hi):
        if threading.current_thread() is not threading.main_thread():
            release.wait(10)
        values[lo:hi] = np.arange(lo, hi)

    out = np.zeros(100, np.int64)
    job = _parallel.Background(kernel, (out,), np.arange(101), parts=4)
    while job._next == 0:  # until the worker took its first range
        threading.Event().wait(0.001)
    pid = os.fork()  # the worker is stuck: the child has no thread for its range
    if pid == 0:
        try:
            job.wait()
            os._exit(0 if out.tolist() == list(range(100)) else 1)
        except BaseException:
            os._exit(2)
    release.set()
    job.wait()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert out.tolist() == list(range(100))


# --- the data-row table ------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "kwargs"), CASES)
def test_tables_built_ahead_equal_the_frozen_ones(seed, kwargs, two_threads):
    gt, pd, data_rows = case(seed)
    ev = pm.evaluate(gt, pd, data_rows=data_rows, **kwargs)
    assert _walk(ev)._ahead is not None  # the job was started, not yet taken
    rows = ev.data_rows
    assert _walk(ev)._ahead is None
    assert rows.equals(_golden_rows(seed)) and rows.schema == _golden_rows(seed).schema


def test_without_the_job_the_table_is_the_same(monkeypatch):
    gt, pd, data_rows = case(1)
    ahead = pm.evaluate(gt, pd, data_rows=data_rows, class_aware=True).data_rows
    monkeypatch.setattr(events.Matches, "start_row_tables", lambda self: None)
    on_read = pm.evaluate(gt, pd, data_rows=data_rows, class_aware=True)
    assert on_read.detail.matches_arrays._ahead is None
    assert on_read.data_rows.equals(ahead)


def test_the_next_run_lets_an_unread_table_go_and_reuses_its_memory(two_threads, monkeypatch):
    monkeypatch.setattr(_spare, "_spares", {})
    (gt0, pd0, rows0), (gt5, pd5, rows5) = case(0), case(5)
    first = pm.evaluate(gt0, pd0, data_rows=rows0)
    address = _walk(first)._ahead[1].ctypes.data  # not a reference: that would keep it in use
    second = pm.evaluate(gt5, pd5, data_rows=rows5)  # `first` was never read
    assert _walk(first)._ahead is None
    assert _walk(second)._ahead[1].ctypes.data == address  # its spare, reused
    assert first.data_rows.equals(_golden_rows(0))  # built again, on read
    assert second.data_rows.equals(_golden_rows(5))


def test_a_result_pickles_while_its_table_is_built(two_threads):
    gt, pd, data_rows = case(2)
    ev = pm.evaluate(gt, pd, data_rows=data_rows, confidence_thresholds=[0.25, 0.5, 0.75],
                     iou_thresholds=[0.1, 0.5, 0.9])
    assert _walk(ev)._ahead is not None
    copy = pickle.loads(pickle.dumps(ev))
    assert copy.data_rows.equals(_golden_rows(2))
    assert ev.data_rows.equals(_golden_rows(2))
    part = pm.partial(gt, pd, data_rows=data_rows, confidence_thresholds=[0.25, 0.5, 0.75],
                      iou_thresholds=[0.1, 0.5, 0.9])
    assert pickle.loads(pickle.dumps(part)).data_rows.equals(_golden_rows(2))


def test_on_one_thread_nothing_is_built_ahead(monkeypatch):
    monkeypatch.setattr(events, "num_threads", lambda: 1)
    gt, pd, data_rows = case(0)
    ev = pm.evaluate(gt, pd, data_rows=data_rows)
    assert _walk(ev)._ahead is None
    gc.collect()
    assert ev.data_rows.equals(_golden_rows(0))
