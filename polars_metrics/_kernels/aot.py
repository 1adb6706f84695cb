"""The box path's kernels, compiled ahead of time into one extension module.

Why: numba's JIT costs about 130 MB of resident memory before the first kernel runs (LLVM,
numba's compiler and its typing registries), more than a whole detection-metrics run needs.
The same kernel sources compiled ahead of time with ``numba.pycc`` load in under 1 MB and need
neither numba nor LLVM at run time. ``make`` builds the module
(``python -m polars_metrics._kernels``); without it every kernel runs through numba's JIT
as before, with identical results (a test compares the two).

How:
- ``EXPORTS`` lists each compiled kernel with its signature in a small notation: ``f8`` /
  ``i8`` / ``i4`` / ``i1`` / ``b1`` scalars, ``i8[:]`` / ``f8[:, :]`` C-contiguous arrays,
  ``void`` or a tuple ``(…, …)`` as the result.
- The module's name carries a hash of the kernel sources and ``EXPORTS``: an
  edited kernel never runs stale compiled code, it falls back to the JIT until rebuilt.
- Compiled code checks nothing about its arguments (a wrong dtype is a crash, not an error), so
  :func:`kernel` wraps every compiled function in a check of dtypes, dimensions and
  contiguity against its signature.
- The compiled functions release the GIL, so ``polars_metrics._parallel`` can run row ranges
  on threads, as numba's ``nogil`` JIT functions do.

``POLARS_METRICS_JIT=1`` ignores the compiled module.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

_I8_ROWS = "i8, i8"  # the (lo, hi) range arguments of row-range kernels

EXPORTS: dict[tuple[str, str], str] = {
    ("box", "box_problems"): "i1[:](f8[:, :])",
    ("box", "box_iou_aligned_range"): f"void(f8[:, :], f8[:, :], f8[:], {_I8_ROWS})",
    ("box", "box_pairs_range"):
        f"(i8[:], i8[:], f8[:])(f8[:, :], i8[:], f8[:, :], i8[:], i8[:], {_I8_ROWS})",
    ("matching", "greedy_match_by_iou"):
        "void(i8[:], i8[:], i4[:], i4[:], i4[:], "        # gt_off pd_off gt_feat pd_feat npass
        "i8[:], i8[:], i8[:], f8[:], b1[:], "              # pair_off gt pd iou always
        "f8[:], i8, b1, "                                  # iou_thr n_conf class_aware
        "i8[:], i4[:], i8[:], "                            # rf_off rf_feat ev_off
        "i8[:, :], i8[:], "                                # ev_n ev_pair
        "i4[:], i4[:], i8[:, :], i4[:], f8[:], "           # rf_ngt rf_until iv_n iv_rf iv_val
        f"i8[:, :, :, :], f8[:, :, :, :], f8[:, :], {_I8_ROWS})",  # row tables, chunk range
    ("matching", "greedy_match_by_score"):
        "void(i8[:], i8[:], i8[:], i8[:], f8[:], i4[:], i8, "  # gt_off walk_* n_iou
        f"i8[:], i8[:, :], i8[:], {_I8_ROWS})",             # ev_off ev_n ev_walk, row range
    ("groups", "compact_events"): f"void(i8[:], i8[:, :], i8[:], i8[:], i4[:], i8[:], {_I8_ROWS})",
    ("groups", "compact_values"):
        f"void(i8[:], i8[:, :], i4[:], f8[:], i8[:], i4[:], i4[:], f8[:], {_I8_ROWS})",
    ("groups", "stable_group_order"): "i8[:](i8[:], i8)",
    ("cube", "accumulate_rectangles"): "i8[:, :, :](i8[:], i8[:], i8[:], i8[:], i8[:], i8, i8, i8)",
    ("cube", "slice_feature_sums"):
        "f8[:, :, :](i8[:], i4[:], i4[:], f8[:], i4[:], i8[:], i8, i8, i8)",
    ("cube", "slice_histogram"): "i8[:, :, :](i8[:], i4[:], i4[:], i8[:], i8, i8, i8)",
    ("cube", "until_histogram"): "i8[:, :, :](i8[:], i4[:], i4[:], i8[:], i8, i8, i8)",
    ("cube", "event_keys"): "i8[:](i4[:], i4[:], i8[:], i8[:], i4[:], i4[:], i8)",
    ("cube", "accumulate_events"): "i8[:, :, :](i8[:], i4[:], i4[:], i8, i8, i8)",
    ("cube", "emit_confusion"):
        "(i8[:], i8[:], i8[:], i8[:], i8[:], i8[:])"
        "(i8[:], i8[:], i8[:], i8[:, :, :], i8[:, :, :, :], i8[:, :, :, :], i8[:])",
    ("cube", "sequential_segment_sums"): "f8[:](f8[:], i8[:])",
}

_HERE = Path(__file__).resolve().parent
_SOURCES = ("box.py", "matching.py", "sorting.py", "groups.py", "cube.py", "aot.py")
_DTYPES = {"f8": np.dtype(np.float64), "i8": np.dtype(np.int64), "i4": np.dtype(np.int32),
           "i1": np.dtype(np.int8), "b1": np.dtype(np.bool_)}
_SCALARS = {"f8": float, "i8": int, "i4": int, "i1": int, "b1": bool}


def source_hash() -> str:
    """Hash of everything the compiled module is built from."""
    h = hashlib.sha256()
    for name in _SOURCES:
        h.update((_HERE / name).read_bytes())
    h.update(repr(sorted(EXPORTS.items())).encode())
    return h.hexdigest()[:12]


def module_name() -> str:
    return f"_aot_{source_hash()}"


# --- the signature notation --------------------------------------------------------------------

_ARG = re.compile(r"\s*(f8|i8|i4|i1|b1)\s*(\[[\s:,]*\])?\s*")


def _split_top(text: str) -> list[str]:
    """Split on commas outside brackets and parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def _parse_type(text: str) -> tuple[str, int]:
    """'f8[:, :]' → ('f8', 2); 'i8' → ('i8', 0)."""
    m = _ARG.fullmatch(text)
    if m is None:
        raise ValueError(f"bad kernel type {text!r}")
    return m.group(1), (m.group(2).count(":") if m.group(2) else 0)


def parse_signature(sig: str) -> tuple[list[tuple[str, int]] | None, list[tuple[str, int]]]:
    """'ret(args)' → (result types or None for void, argument types)."""
    depth = 0
    for i, ch in enumerate(sig):  # the argument list starts at the last top-level '('
        if ch in "[(":
            if ch == "(" and depth == 0 and i > 0:
                split = i
            depth += 1
        elif ch in "])":
            depth -= 1
    ret, args = sig[:split].strip(), sig[split + 1:-1]
    arg_types = [_parse_type(a) for a in _split_top(args)]
    if ret == "void":
        return None, arg_types
    if ret.startswith("("):
        return [_parse_type(r) for r in _split_top(ret[1:-1])], arg_types
    return [_parse_type(ret)], arg_types


# --- loading -------------------------------------------------------------------------------------

_compiled: Any = False  # False: not looked up yet; None: not available


def compiled_module() -> Any:
    """The compiled module if it is built for these sources, else None."""
    global _compiled
    if _compiled is False:
        _compiled = None
        if os.environ.get("POLARS_METRICS_JIT", "") not in ("", "0"):
            return None
        name = f"{__package__}.{module_name()}"
        if importlib.util.find_spec(name) is not None:
            _compiled = importlib.import_module(name)
    return _compiled


def _checked(fn: Callable, qualname: str, sig: str) -> Callable:
    _, arg_types = parse_signature(sig)
    n_args = len(arg_types)

    def call(*args: Any) -> Any:
        if len(args) != n_args:
            raise TypeError(f"{qualname} takes {n_args} arguments, got {len(args)}")
        fixed = []
        for i, (a, (code, ndim)) in enumerate(zip(args, arg_types, strict=True)):
            if ndim == 0:
                fixed.append(_SCALARS[code](a))
                continue
            if not (isinstance(a, np.ndarray) and a.dtype == _DTYPES[code] and a.ndim == ndim
                    and a.flags.c_contiguous):
                got = (f"{a.dtype}, {a.ndim}-D, C-contiguous={a.flags.c_contiguous}"
                       if isinstance(a, np.ndarray) else type(a).__name__)
                raise TypeError(
                    f"{qualname} argument {i}: expected a C-contiguous {ndim}-D "
                    f"{_DTYPES[code]} array, got {got}"
                )
            fixed.append(a)
        return fn(*fixed)

    call.__name__ = qualname.rsplit(".", 1)[-1]
    call.__qualname__ = qualname
    call.__doc__ = getattr(fn, "__doc__", None)
    return call


def kernel(module: str, name: str) -> Callable:
    """The kernel ``polars_metrics._kernels.<module>.<name>``: the compiled one when built,
    else numba's JIT function (importing numba then)."""
    mod = compiled_module() if (module, name) in EXPORTS else None
    if mod is not None:
        return _checked(getattr(mod, f"{module}__{name}"), f"{module}.{name}",
                        EXPORTS[(module, name)])
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


# --- building ------------------------------------------------------------------------------------


def _numba_type(code: str, ndim: int):
    from numba import types

    scalar = {"f8": types.float64, "i8": types.int64, "i4": types.int32, "i1": types.int8,
              "b1": types.boolean}[code]
    return types.Array(scalar, ndim, "C") if ndim else scalar


def _numba_signature(sig: str):
    from numba import types

    ret, args = parse_signature(sig)
    arg_t = [_numba_type(*a) for a in args]
    if ret is None:
        return types.void(*arg_t)
    ret_t = [_numba_type(*r) for r in ret]
    return (ret_t[0] if len(ret_t) == 1 and not sig.lstrip().startswith("(") else
            types.Tuple(ret_t))(*arg_t)


def build(output_dir: Path = _HERE, *, verbose: bool = False) -> Path:
    """Compile ``EXPORTS`` into ``output_dir``; remove modules built from older sources."""
    import warnings

    from numba.core.errors import NumbaPendingDeprecationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaPendingDeprecationWarning)
        import numba.pycc.compiler as pycc_compiler
        from numba.pycc import CC

    class _NoGilFlags(pycc_compiler.Flags):
        # pycc's wrappers hold the GIL by default; the kernels touch no Python objects
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.release_gil = True

    name = module_name()
    cc = CC(name)
    cc.output_dir = str(output_dir)
    cc.verbose = verbose
    # pycc's default target is the generic CPU of this architecture: the module also runs where
    # the venv is copied or shared (a host-tuned build measured 3% faster and could crash with an
    # illegal instruction on an older CPU)
    for (module, fn_name), sig in EXPORTS.items():
        fn = getattr(importlib.import_module(f"{__package__}.{module}"), fn_name)
        cc.export(f"{module}__{fn_name}", _numba_signature(sig))(fn.py_func)
    original = pycc_compiler.Flags
    pycc_compiler.Flags = _NoGilFlags
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumbaPendingDeprecationWarning)
            cc.compile()
    finally:
        pycc_compiler.Flags = original
    built = next(output_dir.glob(f"{name}.*"))
    for old in output_dir.glob("_aot_*"):
        if not old.name.startswith(name + "."):
            old.unlink()
    return built
