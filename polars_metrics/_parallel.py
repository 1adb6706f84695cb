"""Run a row-range kernel on a few threads.

The box-path kernels (pairs, matching, event compaction) process a range ``[lo, hi)`` of data
rows and release the GIL, so Python threads run them in parallel — the same whether the kernel
is the ahead-of-time compiled one or numba's JIT (see ``_kernels/aot.py``). Ranges are split by
cumulative work, not by row count: a few crowded data rows must not land on one thread.

Threads: ``NUMBA_NUM_THREADS`` when set (the knob numba users already know), else the CPUs this
process may run on. Work below ``SMALL`` units runs on the calling thread: waking a thread costs
more than it saves there, and results are identical either way (rows are independent).
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for

import numpy as np

from polars_metrics._kernels._jit import default_threads

SMALL = 4096  # work units (pairs, annotations) below which one thread is faster

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def num_threads() -> int:
    return default_threads()


def _executor(n: int) -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < n:
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="polars_metrics")
        return _pool


class _Call:
    """``fn(*args)`` for the pool that lets go of ``fn`` and ``args`` before its future
    completes. A pool thread drops its work item (which holds them) only when it takes the
    next one: that may be after the caller has returned and given back its free heap
    (``_memory.gives_back_free_heap``), and arrays freed then would stay resident.

    >>> call = _Call(sum, ([1, 2],))
    >>> call(), call.args
    (3, None)
    """

    __slots__ = ("fn", "args")

    def __init__(self, fn: Callable, args: tuple) -> None:
        self.fn, self.args = fn, args

    def __call__(self):
        fn, args = self.fn, self.args
        self.fn = self.args = None
        return fn(*args)


def _submit(threads: int, fn: Callable, *args):
    return _executor(threads).submit(_Call(fn, args))


def _forget_pool_after_fork() -> None:
    # a forked child inherits the pool object but none of its threads: start a new one
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def split(cum_work: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """Split items ``0..n`` into at most ``parts`` contiguous ranges of about equal work.

    ``cum_work`` has n + 1 entries: ``cum_work[i]`` is the work of items ``0..i`` (CSR offsets
    are exactly this). Empty ranges are dropped.
    """
    n = cum_work.shape[0] - 1
    total = int(cum_work[-1] - cum_work[0])
    if n <= 0:
        return []
    if parts <= 1 or total <= 0:
        return [(0, n)]
    targets = cum_work[0] + total * np.arange(1, parts) / parts
    cuts = np.searchsorted(cum_work, targets, side="left").clip(0, n)
    # cum_work never decreases, so the bounds ascend; equal ones give the empty ranges dropped
    bounds = [0, *cuts.tolist(), n]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def even_parts(n: int) -> np.ndarray:
    """Bounds (``parts + 1`` entries) of one part per thread over ``n`` uniform items, for
    kernels that take parts ``[lo, hi)`` of them as ``bounds[lo]:bounds[hi]``: ``bounds`` is
    also the ``cum_work`` of :func:`run_ranges`.

    >>> even_parts(10).tolist() if num_threads() == 2 else [0, 5, 10]
    [0, 5, 10]
    """
    parts = max(1, min(num_threads(), n))
    return (np.arange(parts + 1, dtype=np.int64) * n) // parts


def run_ranges(kernel: Callable[..., None], args: tuple, cum_work: np.ndarray,
               small: int | None = None) -> None:
    """Call ``kernel(*args, lo, hi)`` over ranges covering every item, on up to
    :func:`num_threads` threads (one range per thread); serially below ``small`` (default
    ``SMALL``) units of work."""
    small = SMALL if small is None else small
    n = cum_work.shape[0] - 1
    if n <= 0:
        return
    threads = num_threads()
    if threads <= 1 or int(cum_work[-1] - cum_work[0]) < small:
        kernel(*args, 0, n)
        return
    ranges = split(cum_work, threads)
    if len(ranges) == 1:
        kernel(*args, *ranges[0])
        return
    futures = [_submit(threads, kernel, *args, lo, hi) for lo, hi in ranges[1:]]
    kernel(*args, *ranges[0])  # the calling thread takes the first range
    for f in futures:
        f.result()


def map_ranges(kernel: Callable[..., object], args: tuple, cum_work: np.ndarray,
               small: int | None = None) -> list:
    """As :func:`run_ranges`, for kernels that return their range's result: the results in
    range order (one range below ``small`` units of work or on one thread).

    >>> parts = map_ranges(lambda values, lo, hi: int(values[lo:hi].sum()), (np.arange(10),),
    ...                    np.arange(11), small=0)
    >>> sum(parts)  # one result per range, whatever the number of threads
    45
    """
    small = SMALL if small is None else small
    n = cum_work.shape[0] - 1
    if n <= 0:
        return []
    threads = num_threads()
    if threads <= 1 or int(cum_work[-1] - cum_work[0]) < small:
        return [kernel(*args, 0, n)]
    ranges = split(cum_work, threads)
    futures = [_submit(threads, kernel, *args, lo, hi) for lo, hi in ranges[1:]]
    first = kernel(*args, *ranges[0])  # the calling thread takes the first range
    return [first, *(f.result() for f in futures)]


BACKGROUND_PARTS = 16  # ranges of a background job: the caller joining in late finds some left


class Background:
    """A row-range kernel run over all its items on one pool thread while the caller goes on;
    :meth:`wait` joins in: the calling thread takes the ranges the worker has not started,
    then waits for the worker's current one. The kernel's outputs are complete once
    :meth:`wait` returns (the same as :func:`run_ranges`: every range is run exactly once).

    One worker, not all: the caller's own next stages use the pool too. In a process forked
    while the job ran, the worker thread does not exist: :meth:`wait` runs every range again
    on the calling thread (ranges write only their own items, so this is the same result).

    >>> out = np.zeros(10, np.int64)
    >>> def fill(values, lo, hi):
    ...     values[lo:hi] = np.arange(lo, hi)
    >>> job = Background(fill, (out,), np.arange(11))
    >>> job.wait()
    >>> out.tolist()
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    """

    def __init__(self, kernel: Callable[..., None], args: tuple, cum_work: np.ndarray,
                 parts: int = BACKGROUND_PARTS) -> None:
        self._kernel, self._args = kernel, args
        self._ranges = split(cum_work, parts)
        self._next = 0
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._done = False
        self._finished = 0
        self._worker = _executor(max(num_threads(), 1)).submit(self._drain)

    def _take(self) -> tuple[int, int] | None:
        with self._lock:
            if self._next >= len(self._ranges):
                return None
            self._next += 1
            return self._ranges[self._next - 1]

    def _drain(self) -> None:
        while (r := self._take()) is not None:
            try:
                self._kernel(*self._args, *r)
            finally:
                with self._lock:
                    self._finished += 1
                    if self._finished == len(self._ranges):
                        # every range ran: the inputs go (a job nobody waits for keeps only
                        # its outputs)
                        self._args = ()

    def cancel(self) -> None:
        """Start no more ranges and wait for the worker's current one: the outputs are left
        incomplete (for a job whose outputs nobody will read)."""
        if self._done:
            return
        if os.getpid() == self._pid:
            with self._lock:
                self._next = len(self._ranges)
            # not .result(): an error of outputs nobody reads is not the caller's (a read
            # builds them again, and meets it there)
            wait_for([self._worker])
        self._done, self._args = True, ()

    def wait(self) -> None:
        if self._done:
            return
        if os.getpid() != self._pid:  # forked: nobody runs the worker's ranges here
            if self._finished < len(self._ranges):  # (no lock: a thread may have held it)
                for r in self._ranges:
                    self._kernel(*self._args, *r)
        else:
            self._drain()
            self._worker.result()  # its last range; re-raises the kernel's error, if any
        self._done, self._args = True, ()


def run_pieces(fn: Callable[[np.ndarray, int], None], arrays: list[np.ndarray],
               small: int | None = None) -> None:
    """``fn(piece, start)`` over contiguous pieces covering ``arrays`` in order — ``start`` is
    the piece's position in their concatenation — on up to :func:`num_threads` threads with
    about equal lengths each (serially below ``small`` items). The arrays are split, never
    copied: a column read in many chunks (a Parquet file's row groups) is processed in place.

    >>> out = np.zeros(7, np.int64)
    >>> def double(piece, start):
    ...     out[start:start + piece.shape[0]] = 2 * piece
    >>> run_pieces(double, [np.arange(3), np.arange(3, 7)], small=0)
    >>> out.tolist()
    [0, 2, 4, 6, 8, 10, 12]
    """
    starts = np.zeros(len(arrays) + 1, np.int64)
    np.cumsum([a.shape[0] for a in arrays], out=starts[1:])
    total = int(starts[-1])
    small = SMALL if small is None else small
    bounds = even_parts(total) if total >= small else np.array([0, total], np.int64)

    def parts(lo: int, hi: int) -> None:
        for p in range(lo, hi):
            a, b = int(bounds[p]), int(bounds[p + 1])
            i = int(np.searchsorted(starts, a, side="right")) - 1
            while i < len(arrays) and starts[i] < b:
                s0, s1 = max(a, int(starts[i])), min(b, int(starts[i + 1]))
                if s1 > s0:
                    fn(arrays[i][s0 - starts[i]:s1 - starts[i]], s0)
                i += 1

    run_ranges(parts, (), np.arange(bounds.shape[0], dtype=np.int64), small=0)
