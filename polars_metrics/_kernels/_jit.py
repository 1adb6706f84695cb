"""numba's ``njit`` and ``prange``, loaded only when a kernel really needs the JIT.

Every kernel module decorates its kernels with this module's :func:`njit` instead of numba's.
The result, a :class:`Kernel`, is called like the numba function. On its first call it picks,
once: the ahead-of-time compiled function (``aot.py``) when the kernel is in ``aot.EXPORTS`` and
the compiled module is built for these sources, else numba's JIT dispatcher (importing numba
then). So importing a kernel module costs nothing, and with the compiled module built no
evaluation imports numba or compiles anything.

Inside other kernels (numba compiling a caller, numba.pycc building the module) a
:class:`Kernel` is typed as its numba dispatcher (registered with numba's ``typeof`` when numba
is first imported here), so kernels call kernels as before, inlining included. ``prange`` is a
plain ``range`` until numba is loaded; then every loaded kernel module's ``prange`` global is
replaced by ``numba.prange`` before anything compiles.
"""
from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable
from typing import Any

_numba: Any = None


def prange(*args: int) -> range:
    """Stands for ``numba.prange`` until numba is loaded (then replaced, see above)."""
    return range(*args)


def numba_module() -> Any:
    """Import numba (once), register :class:`Kernel` with its typing, and point every loaded
    kernel module's ``prange`` at ``numba.prange``."""
    global _numba
    if _numba is None:
        import numba
        from numba.core.typing.typeof import typeof_impl

        @typeof_impl.register(Kernel)
        def _typeof_kernel(val: Kernel, c: Any) -> Any:
            return typeof_impl(val.dispatcher, c)

        _numba = numba
    for name, mod in list(sys.modules.items()):
        if (name.startswith("polars_metrics._kernels.") and mod is not None
                and getattr(mod, "prange", None) is prange and name != __name__):
            mod.prange = _numba.prange
    return _numba


class Kernel:
    """A kernel: the compiled function when built, else numba's JIT (see the module doc)."""

    def __init__(self, py_func: Callable, options: dict[str, Any]) -> None:
        self.py_func = py_func
        self.options = options
        self._dispatcher: Any = None
        self._call: Callable | None = None
        self.__name__ = py_func.__name__
        self.__qualname__ = py_func.__qualname__
        self.__doc__ = py_func.__doc__
        self.__module__ = py_func.__module__

    @property
    def dispatcher(self) -> Any:
        """numba's JIT dispatcher for this kernel (imports numba)."""
        if self._dispatcher is None:
            self._dispatcher = numba_module().njit(**self.options)(self.py_func)
        return self._dispatcher

    @property
    def key(self) -> tuple[str, str]:
        """``(module, name)`` as in ``aot.EXPORTS``."""
        return self.py_func.__module__.rsplit(".", 1)[-1], self.py_func.__name__

    def resolve(self) -> Callable:
        """The function calls go to: compiled when available, else the JIT dispatcher."""
        if self._call is None:
            from polars_metrics._kernels import aot

            self._call = aot.compiled_kernel(*self.key) or self.dispatcher
        return self._call

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        fn = self._call or self.resolve()
        if kwargs:
            args = inspect.signature(self.py_func).bind(*args, **kwargs).args
        return fn(*args)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") or attr in ("_dispatcher", "_call", "py_func", "options"):
            raise AttributeError(attr)
        return getattr(self.dispatcher, attr)

    def __repr__(self) -> str:
        return f"<kernel {'.'.join(self.key)}>"


# Kernels declared ``_nrt=False``: compiled without numba's reference counts (no atomic update
# per array argument and call). Such a function must allocate nothing (numba refuses to compile
# it otherwise) and must return no array: its caller, compiled with reference counts, would
# release a reference it was never given. tests/test_no_refcount_kernels.py checks the second.
# (A helper inlined with ``inline="always"`` is compiled into its caller, under the caller's
# setting: not listed.)
WITHOUT_REFCOUNTS: list[Kernel] = []


def njit(*args: Any, **options: Any) -> Any:
    """``@njit`` / ``@njit(cache=True, ...)`` as numba's, returning a :class:`Kernel`."""
    if args and callable(args[0]) and not options:
        return Kernel(args[0], {})

    def make(fn: Callable) -> Kernel:
        k = Kernel(fn, options)
        if options.get("_nrt", True) is False and options.get("inline") != "always":
            WITHOUT_REFCOUNTS.append(k)
        return k

    return make


# --- numba's thread count, without importing numba for it ---------------------------------------

_threads_wanted: int | None = None


def get_num_threads() -> int:
    """numba's thread count when numba is loaded, else the threads the compiled kernels'
    callers use (``polars_metrics._parallel.num_threads``)."""
    if "numba" in sys.modules:
        return sys.modules["numba"].get_num_threads()
    if _threads_wanted is not None:
        return _threads_wanted
    return default_threads()


def default_threads() -> int:
    """``NUMBA_NUM_THREADS`` when set (the knob numba users already know), else the CPUs this
    process may run on."""
    env = os.environ.get("NUMBA_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def set_num_threads(n: int) -> None:
    """numba's ``set_num_threads`` when numba is loaded; else remembered (the compiled
    kernels run on the calling thread)."""
    global _threads_wanted
    if "numba" in sys.modules:
        sys.modules["numba"].set_num_threads(n)
    else:
        _threads_wanted = int(n)
