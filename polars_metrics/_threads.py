"""Run small numba work on the calling thread only.

A parallel region costs a wake-up of the worker threads: microseconds on an idle machine, but
milliseconds when the cores are busy (OpenMP workers spin, then sleep, and must be scheduled
again). Work too small to gain from threads runs serially instead; results are identical (the
kernels' parallel loops are over independent rows).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

SMALL = 4096  # items (annotations, pairs) below which one thread is faster


@contextmanager
def serial_if_small(work: int, small: int = SMALL) -> Iterator[None]:
    """Within the block, numba parallel kernels use one thread when ``work < small``."""
    if work >= small:
        yield
        return
    # numba's thread count if numba is loaded; the compiled kernels run on the calling thread
    from polars_metrics._kernels import _jit as numba

    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
