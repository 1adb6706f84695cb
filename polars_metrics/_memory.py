"""Give freed heap memory back to the operating system.

numpy's large temporaries come from glibc's malloc. After the first large free, glibc raises
its mmap threshold (up to 32 MB), so later arrays of an evaluation live in the heap; once
freed, they stay resident as free heap space that the next evaluation only partly reuses.
Repeated evaluations in one process (a notebook, a benchmark loop) then creep upwards in
resident memory. ``malloc_trim(0)`` returns those free pages (about 1 ms). Elsewhere than glibc
this does nothing.
"""
from __future__ import annotations

import sys
from collections.abc import Callable

_trim: Callable[[int], int] | None | bool = False  # False: not looked up yet


def _lookup() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        fn = ctypes.CDLL("libc.so.6").malloc_trim  # glibc's soname; musl has no malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def release_free_heap() -> None:
    global _trim
    if _trim is False:
        _trim = _lookup()
    if _trim is not None:
        _trim(0)
