"""Numba kernels: arrays and offsets in, arrays out. Never imports polars, never reads globals.

Every kernel is compiled with ``cache=True``. Callers pass C-contiguous, writeable arrays of the
documented dtypes (see ``polars_metrics._arrays``) so each kernel compiles one specialization.
"""
