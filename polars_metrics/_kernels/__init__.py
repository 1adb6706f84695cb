"""Numba kernels: arrays and offsets in, arrays out. Never imports polars, never reads globals.

Kernels are decorated with ``_jit.njit`` (numba's ``njit`` options, ``cache=True``). Callers
pass C-contiguous arrays of the documented dtypes (see ``polars_metrics._arrays``) so each
kernel compiles one specialization. Every kernel called from Python is also compiled ahead of
time (``aot.py``, built by ``make kernels`` and by ``pip install .``); a call then goes to the
compiled function and numba is never imported. Without the build, calls go to numba's JIT.
"""
