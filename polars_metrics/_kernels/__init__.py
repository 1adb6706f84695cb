"""Numba kernels: arrays and offsets in, arrays out. Never imports polars, never reads globals.

Every kernel is compiled with ``cache=True``. Callers pass C-contiguous arrays of the
documented dtypes (see ``polars_metrics._arrays``) so each kernel compiles one specialization.
The kernels of the box path are also compiled ahead of time (``aot.py``); callers get them
through ``aot.kernel(module, name)``, which returns the compiled function when it is built and
the JIT one otherwise.
"""
