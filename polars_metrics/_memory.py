"""Give freed heap memory back to the operating system.

numpy's large temporaries come from glibc's malloc. After the first large free, glibc raises
its mmap threshold (up to 32 MB), so later arrays of an evaluation live in the heap; once
freed, they stay resident as free heap space that the next evaluation only partly reuses.
Repeated evaluations in one process (a notebook, a benchmark loop) then creep upwards in
resident memory. ``malloc_trim(0)`` returns those free pages (about 2 ms). Elsewhere than glibc
this does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

_trim = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _trim = _libc.malloc_trim
        _trim.argtypes = [ctypes.c_size_t]
        _trim.restype = ctypes.c_int
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        _trim = None


def release_free_heap() -> None:
    if _trim is not None:
        _trim(0)
