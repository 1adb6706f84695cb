"""Every kernel called from Python, compiled ahead of time into one extension module.

Why: numba's JIT compiles each kernel in the user's process on first use — seconds per kind
(about 9.5 s on the COCO path with an empty cache) — and costs about 130 MB of resident memory
(LLVM, numba's compiler and its typing registries). The same kernel sources compiled ahead of
time with ``numba.pycc`` load in milliseconds and need neither numba nor LLVM at run time.
The module is built by ``make kernels`` (``python -m polars_metrics._kernels``) and by the
package build (``setup.py``: ``pip install .`` puts it in the wheel). Without it every kernel
runs through numba's JIT as before, with identical results (tests/test_first_call.py compares
the two on every export).

Route: numba.pycc is *pending* deprecation since numba 0.57: in the numba we pin (0.68) importing
it warns ``NumbaPendingDeprecationWarning`` ("Replacement technology is being developed") and no
removal version is set. numba's maintainers state (numba/numba#8509) that removal is
conditional on a replacement being available; the replacement (numba/pixie) is a research
prototype, not a release. So the build uses pycc while it exists and nothing else depends on it:
the kernels are plain numba sources, ``EXPORTS`` is the only list of compiled signatures (what
a successor tool would read), and when a numba without pycc (or no C compiler) makes the build
fail, the package still installs and runs on numba's JIT — slower first calls, same results.

How:
- ``EXPORTS`` lists each compiled kernel with its signature in a small notation: ``f8`` /
  ``f4`` / ``i8`` / ``i4`` / ``i2`` / ``i1`` / ``u8`` / ``u4`` / ``u2`` / ``u1`` / ``b1``
  scalars, ``i8[:]`` / ``f8[:, :]`` C-contiguous arrays, ``void``, a scalar or array, or a
  tuple ``(…, …)`` as the result. One entry per kernel, one signature each: callers pass the
  dtypes of ``polars_metrics._arrays``.
- Kernels are decorated with ``_jit.njit``: a call goes to the compiled function when the
  kernel is exported and the module built, else to numba's JIT (see ``_jit.py``), so callers
  never choose.
- The module's name carries a hash of the kernel sources and ``EXPORTS``: an
  edited kernel never runs stale compiled code, it falls back to the JIT until rebuilt.
- Compiled code checks nothing about its arguments (a wrong dtype is a crash, not an error), so
  :func:`compiled_kernel` wraps every compiled function in a check of dtypes, dimensions and
  contiguity against its signature.
- The compiled functions release the GIL, so ``polars_metrics._parallel`` can run row ranges
  on threads, as numba's ``nogil`` JIT functions do. pycc has no parallel backend (a ``prange``
  loop runs on one thread when compiled), so every kernel with real work per unit takes a
  ``(lo, hi)`` range of its independent units (data rows, groups, masks, tasks) as its last two
  arguments and its caller splits the units over threads with ``_parallel.run_ranges`` by
  cumulative work; the results do not depend on the split. Only linear one-pass measures
  (``rle_area``, ``rle_to_bbox``, ``rle_total``, the dense-mask converters) keep ``prange``.

``POLARS_METRICS_JIT=1`` ignores the compiled module.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

_I8_ROWS = "i8, i8"  # the (lo, hi) range arguments of row-range kernels

EXPORTS: dict[tuple[str, str], str] = {
    ("box", "box_problems"): "i1[:](f8[:, :])",
    ("box", "box_iou_aligned_range"): f"void(f8[:, :], f8[:, :], f8[:], {_I8_ROWS})",
    ("box", "box_pairs_range"):  # boxes, index (empty: identity), offsets; gt then pd
        f"(i4[:], i4[:], f8[:])(f8[:, :], i4[:], i8[:], f8[:, :], i4[:], i8[:], i8[:], {_I8_ROWS})",
    ("matching", "greedy_match_by_iou"):
        "void(i8[:], i8[:], i4[:], i4[:], i4[:], "        # gt_off pd_off gt_feat pd_feat npass
        "i8[:], i4[:], i4[:], f8[:], "                     # pair_off gt pd iou (h-boxmem: i4)
        "i8, b1, "                                         # n_conf class_aware
        "i8[:], i4[:], i8[:], "                            # rf_off rf_feat ev_off
        "i8[:, :], i8[:], "                                # ev_n ev_pair
        "i4[:], i4[:], i8[:, :], i4[:], f8[:], "           # rf_ngt rf_until iv_n iv_rf iv_val
        f"f8[:, :], {_I8_ROWS})",                          # row_iou, chunk range
    ("matching", "row_tables_range"):  # the data-row table from the events (h-box2)
        "void(i8[:], i8[:], i4[:], i4[:], i4[:], "        # gt_off pd_off gt_feat pd_feat npass
        "i8[:], i4[:], i4[:], i4[:], "                     # rf_off rf_feat rf_ngt rf_until
        "i8[:], i4[:], i4[:], "                            # ev_roff ev_c ev_k
        "i4[:], i4[:], f8[:], b1[:], f8[:], "              # pair gt pd iou free, iou_cut
        f"i8[:, :, :, :], f8[:, :, :, :], {_I8_ROWS})",    # row_counts row_means, row range
    ("matching", "greedy_match_by_score"):
        "void(i8[:], i8[:], i4[:], i4[:], f8[:], i4[:], i8, "  # gt_off walk_* n_iou
        f"i8[:], i8[:, :], i8[:], {_I8_ROWS})",             # ev_off ev_n ev_walk, row range
    ("groups", "compact_events"):  # slots, counts, slot pairs, offsets, c, pairs (int32: see
        # events.event_kernel)
        f"void(i8[:], i8[:, :], i8[:], i8[:], i4[:], i4[:], {_I8_ROWS})",
    ("groups", "compact_values"):
        f"void(i8[:], i8[:, :], i4[:], f8[:], i8[:], i4[:], i4[:], f8[:], {_I8_ROWS})",
    ("groups", "stable_group_order"): "i8[:](i8[:], i8)",
    ("groups", "kept_side"):  # keep row feat npass (empty: none), idx feat npass counts
        "i8(b1[:], i8[:], i4[:], i4[:], i4[:], i4[:], i4[:], i8[:])",
    ("groups", "row_feature_counts"):  # gt_off gt_feat pd_off pd_feat n_feat counts, rows
        f"void(i8[:], i4[:], i8[:], i4[:], i8, i8[:], {_I8_ROWS})",
    ("groups", "row_feature_fill"):  # gt_off gt_feat pd_off pd_feat n_feat rf_off rf_feat, rows
        f"void(i8[:], i4[:], i8[:], i4[:], i8, i8[:], i4[:], {_I8_ROWS})",
    ("cube", "accumulate_rectangles"): "i8[:, :, :](i8[:], i8[:], i8[:], i8[:], i8[:], i8, i8, i8)",
    ("cube", "slice_feature_sums"):
        "f8[:, :, :](i8[:], i4[:], i4[:], f8[:], i4[:], i8[:], i8, i8, i8)",
    ("cube", "slice_histogram"): "i8[:, :, :](i8[:], i4[:], i4[:], i8[:], i8, i8, i8)",
    ("cube", "until_histogram"): "i8[:, :, :](i8[:], i4[:], i4[:], i8[:], i8, i8, i8)",
    ("cube", "event_keys"): "i8[:](i4[:], i4[:], i4[:], i8[:], i8[:], i4[:], i4[:], i8)",
    ("cube", "accumulate_events"):  # inv ev_c ev_k, pair iou free, iou_cut, K C T
        "i8[:, :, :](i8[:], i4[:], i4[:], f8[:], b1[:], f8[:], i8, i8, i8)",
    ("cube", "event_key_cells"):  # ev_k ev_c, pair gt pd, gt_row row_slice, feats, W, pair iou free,
        # cut, bounds present diff
        "void(i4[:], i4[:], i4[:], i4[:], i8[:], i8[:], i4[:], i4[:], i8, f8[:], b1[:], f8[:],"
        f" i8[:], b1[:], i4[:, :, :], {_I8_ROWS})",
    ("cube", "emit_confusion"):
        "(i8[:], i8[:], i8[:], i8[:], i8[:], i8[:])"
        "(i8[:], i8[:], i8[:], i8[:, :, :], i8[:, :, :, :], i8[:, :, :, :], i8[:])",
    ("cube", "sequential_segment_sums"): "f8[:](f8[:], i8[:])",
    ("sorting", "count_at_or_below"): "i4[:](f8[:], f8[:])",
    ("sorting", "first_descent"): "i8(i8[:])",
    # --- every other kind's and profile's kernels (issue 12: no compile at user time)
    # clip
    ("clip", "_clip_polygons"):
        "void(f8[:], i8[:], f8[:], f8[:], f8[:], f8[:], b1[:], f8[:], i8[:])",
    # coco
    ("coco", "box_iou_groups"):
        "void(f8[:, :], i8[:], f8[:, :], i8[:], b1[:], i8[:], i8[:], i8[:], i8[:], i8, i8[:], f8[:], i8, i8)",
    ("coco", "coco_accumulate"):
        "void(u4[:, :], f8[:], i8[:], i8[:], i8[:, :], i8[:], f8[:], f8[:, :, :, :, :], "
        "f8[:, :, :, :], f8[:, :, :, :, :], i8, i8)",
    ("coco", "coco_match"):
        "void(f8[:], i8[:], i8[:], i8[:], i8[:], i8[:], i8, f8[:], b1[:], b1[:], b1[:], "
        "i8[:], f8[:], i8[:], i8[:], f8[:], f8[:], f8[:], i8, u4[:, :], i4[:, :], b1[:, :], i8[:], "
        "i8, i8)",
    ("coco", "group_counts"):
        f"void(i8[:], i8[:], i8[:], i8[:], i8[:], i8[:], i8, i8[:, :], {_I8_ROWS})",
    ("coco", "group_fill"):
        "void(i8[:], i8[:], i8[:], i8[:], i8[:], i8[:], i8, i8[:, :], i8[:], i8[:], i8[:], "
        f"{_I8_ROWS})",
    ("coco", "stable_counting_order"): "i8[:](i8[:], i8, i8[:])",
    ("coco", "segment_counting_order"): "i8[:](i8[:], i8[:], i8, i8[:])",
    ("coco", "settle_unmatched"):
        f"void(f8[:], i8[:], f8[:], f8[:], u4, u4[:, :], i8[:], {_I8_ROWS})",
    ("coco_layout", "category_orders"):
        f"void(i8[:], f8[:], i8[:], i8[:], i8[:], i8[:], i8[:], f8[:], i8[:], {_I8_ROWS})",
    ("coco_layout", "evaluation_rows"):
        "(i8[:], i8[:], i8[:], f8[:], f8[:])(i8[:], i8, i8[:], i8[:], i8, i8, b1, f8[:], f8[:])",
    ("coco_layout", "category_ids"): "void(i8[:], i8[:], i8[:])",
    ("coco_layout", "part_counts"):
        f"void(i8[:], i8, i8[:], i8[:], i8, b1, i8[:], i8[:, :], i8[:, :], {_I8_ROWS})",
    ("coco_layout", "part_place"):
        "void(i8[:], i8, i8[:], i8[:], i8, b1, f8[:], f8[:], i8[:], i8[:, :], i8[:], i8[:], "
        f"i8[:], f8[:], f8[:], {_I8_ROWS})",
    ("coco_tables", "coco_cell_counts"):  # per-image counts int32: a result keeps them
        "void(i8[:, :], f8[:], f8[:], i8[:], i8[:], i8[:, :, :], i8[:, :, :], i4[:, :, :], "
        f"i4[:, :, :], {_I8_ROWS})",
    ("coco_tables", "image_rows"):
        "void(i4[:, :, :], i4[:, :, :], i8[:], i8[:], i8[:], i8[:], f8[:], f8[:], f8[:], "
        f"{_I8_ROWS})",
    # disc
    ("disc", "count_disc_pairs"):
        "void(f8[:, :], i8[:], f8[:, :], i8[:], f8, i8[:], i8, i8)",
    ("disc", "disc_iou_aligned"):
        "void(f8[:, :], f8[:, :], f8, f8[:], f8[:], i8, f8[:], i8, i8)",
    # (disc.fill_disc_pairs: replaced by convex_clip.fill_disc_pairs, kept as the tests' reference)
    # convex_clip, line_buffer (kinds.point / kinds.line)
    ("convex_clip", "fill_disc_pairs"):
        "void(f8[:, :], i8[:], f8[:, :], i8[:], f8, f8[:], f8[:], i8, i8[:], i8[:], i8[:], f8[:], "
        "i8, i8)",
    ("convex_clip", "fill_candidates"):
        "void(f8[:, :], f8[:, :], f8[:], i1[:], f8[:, :], i8[:, :], i8[:], f8[:, :], "
        "f8[:, :], f8[:], i1[:], i8[:, :], i8[:], i8[:], i8, i8[:], i8[:], f8[:], i8, i8)",
    ("line_buffer", "segment_buffers"):
        "void(f8[:, :], i8[:], i8[:], f8, i8, f8[:, :], i8[:], i8, i8)",
    ("line_pairs", "segment_pairs_range"):
        "(i8[:], i8[:], f8[:])(f8[:, :], i8[:], i8[:], f8[:, :], i8[:], i8[:], f8, i8[:], b1[:], "
        "i8, i8)",
    # labelbox_sdk
    ("labelbox_sdk", "round_decimals"): "i8(f8[:], f8, f8[:], b1[:])",
    ("labelbox_sdk", "sdk_feature_metrics"):
        "void(i8[:], i8[:], i4[:], i4[:], i8[:], i4[:], i4[:], f8[:], b1[:], i8[:], i4[:], "
        "b1[:], f8, b1, i8[:], i8[:], i8[:], b1[:], i8[:], i8[:], i8[:], b1[:], i8[:], "
        "i8[:], i8[:], f8[:], i8, i8)",
    ("labelbox_sdk", "semantic_mask_iou"):
        "void(u4[:], i8[:], i8[:], i8[:], i8[:], i8[:], i8[:], i8[:], i8, i8)",
    # polygon
    ("polygon", "certainly_valid"):
        "void(f8[:, :], i8[:], i8[:], i8[:], i8, b1[:], i8, i8)",
    ("polygon", "count_candidates"):
        "void(f8[:, :], i8[:], f8[:, :], i8[:], i8[:], i8, i8)",
    ("polygon", "edge_crossings"):
        "void(f8[:, :], i8[:], i8[:], i8[:], i8, i8, i8[:], i8, i8)",
    # (polygon.fill_candidates: replaced by convex_clip.fill_candidates, the tests' reference)
    ("polygon", "indexed_iou"):
        "void(f8[:, :], f8[:, :], f8[:], i1[:], f8[:, :], i8[:, :], f8[:, :], f8[:, :], "
        "f8[:], i1[:], i8[:, :], i8[:], i8[:], i8, f8[:], i8, i8)",
    ("polygon", "rings_with_three_points"):
        "void(f8[:, :], i8[:], b1[:], i8, i8)",
    ("polygon", "shape_measures"):
        "void(f8[:, :], i8[:], i8[:], i8[:], f8[:, :], f8[:], i1[:], f8[:, :], i8[:, :], "
        "i8, i8)",
    # rle
    ("rle", "_compact"):
        "void(i8[:], i8[:], i8[:], i8[:], i8[:], i8, i8)",
    ("rle", "_decode_strings"):
        "void(u1[:], i8[:], i8[:], u4[:], u1[:], i8, i8)",
    ("rle", "_dense_fill"): "void(u1[:, :], i8[:], u4[:])",
    ("rle", "_dense_run_counts"): "i8[:](u1[:, :])",
    ("rle", "_encode_strings"):
        "void(u4[:], i8[:], i8[:], u1[:], i8, i8)",
    ("rle", "_encoded_lengths"):
        "void(u4[:], i8[:], i8[:], i8, i8)",
    ("rle", "_poly_bounds"): "i8[:](f8[:], i8[:], i8[:])",
    ("rle", "_polys_to_rle_chunk"):
        "void(f8[:], i8[:], i8[:], i8[:], i8[:], i8, i8[:], i8[:], i8[:], i8, i8)",
    ("rle", "_string_lengths"):
        "void(u1[:], i8[:], i8[:], i8, i8)",
    ("rle", "rle_area"): "i8[:](u4[:], i8[:])",
    ("rle", "rle_decode_dense"): "u1[:, :](u4[:], i8[:], i8)",
    ("rle", "rle_iou_groups"):
        "void(u4[:], i8[:], i8[:], i8[:], f8[:, :], i8[:], u4[:], i8[:], i8[:], i8[:], "
        "f8[:, :], b1[:], i8[:], i8[:], i8[:], i8[:], i8[:], f8[:], i8, i8)",
    ("rle", "rle_to_bbox"): "f8[:, :](u4[:], i8[:], i8[:], i8[:])",
    ("rle", "rle_total"): "i8[:](u4[:], i8[:])",
    # json_scan (COCO results files, io/coco/_scan.py)
    ("json_scan", "copy_strings"): f"void(u1[:], i8[:], i8[:], i8[:], u1[:], {_I8_ROWS})",
    ("json_scan", "scan_results"):
        "void(u1[:], i8[:], i8[:], i8[:], i8[:], i8[:], f8[:], f8[:, :], i1[:], i8[:, :], "
        f"i8[:, :], u1[:, :], u8[:], f8[:], {_I8_ROWS})",
    # json_gt (COCO ground-truth files, io/coco/_gt_scan.py)
    ("json_gt", "scan_gt"):
        "void(u1[:], i8[:, :], i8[:, :], i8[:, :], f8[:, :], i8[:, :], f8[:], u4[:], i8[:], "
        "u1[:, :], u8[:], f8[:])",
    # rle_pairs
    ("rle_pairs", "mask_iou_indexed"):
        "void(u4[:], i8[:], i8[:], i8[:], i8[:], i8[:], i8[:], u4[:], i8[:], i8[:], i8[:], "
        "i8[:], i8[:], i8[:], i8[:], f8[:], i8, i8)",
    ("rle_pairs", "mask_pair_ious"):
        "void(u4[:], i8[:], i8[:], i8[:], i8[:], i8[:], i8[:], i8[:], u4[:], "
        "i8[:], i8[:], i8[:], i8[:], i8[:], i8[:], i8[:], f8[:], i8, i8)",
    ("rle_pairs", "mask_stats"):
        "void(u4[:], i8[:], i8[:], i8[:], i8[:], i8[:], i8[:], i8, i8)",
    # span
    ("span", "count_span_pairs"):
        "void(i8[:], i8[:], i8[:], i8[:], i8[:], i8[:], i8[:], i8[:], i8[:], i8, i8)",
    ("span", "fill_span_pairs"):
        "void(i8[:], i8[:], i8[:], i8[:], i8[:], i8[:], i8[:], i8[:], i8[:], i8[:], i8[:], f8[:], "
        "i8, i8)",
    ("span", "span_iou_aligned"):
        "void(i8[:], i8[:], i8[:], i8[:], i8[:], i8[:], f8[:], i8, i8)",
}

_HERE = Path(__file__).resolve().parent
_SOURCES = tuple(sorted(p.name for p in _HERE.glob("*.py") if p.name != "__main__.py"))
_DTYPES = {"f8": np.dtype(np.float64), "f4": np.dtype(np.float32), "i8": np.dtype(np.int64),
           "i4": np.dtype(np.int32), "i2": np.dtype(np.int16), "i1": np.dtype(np.int8),
           "u8": np.dtype(np.uint64), "u4": np.dtype(np.uint32), "u2": np.dtype(np.uint16),
           "u1": np.dtype(np.uint8), "b1": np.dtype(np.bool_)}
_SCALARS = {"f8": float, "f4": float, "i8": int, "i4": int, "i2": int, "i1": int, "u8": int,
            "u4": int, "u2": int, "u1": int, "b1": bool}


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

_ARG = re.compile(r"\s*(f8|f4|i8|i4|i2|i1|u8|u4|u2|u1|b1)\s*(\[[\s:,]*\])?\s*")


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
_compiled_lock = threading.Lock()


def compiled_module() -> Any:
    """The compiled module if it is built for these sources, else None. Looked up once, under
    a lock: the first kernel call may come from several ``run_ranges`` threads at once, and a
    thread that saw a half-done lookup would fall back to the JIT (seconds of compiling)."""
    global _compiled
    with _compiled_lock:
        if _compiled is False:
            found = None
            name = f"{__package__}.{module_name()}"
            if (os.environ.get("POLARS_METRICS_JIT", "") in ("", "0")
                    and importlib.util.find_spec(name) is not None):
                found = importlib.import_module(name)
            _compiled = found
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


def compiled_kernel(module: str, name: str) -> Callable | None:
    """The compiled ``<module>.<name>`` (wrapped in its argument check), or None when it is not
    exported or the module is not built for these sources."""
    mod = compiled_module() if (module, name) in EXPORTS else None
    if mod is None:
        return None
    return _checked(getattr(mod, f"{module}__{name}"), f"{module}.{name}", EXPORTS[(module, name)])


def kernel(module: str, name: str) -> Callable:
    """The kernel ``polars_metrics._kernels.<module>.<name>`` (a ``_jit.Kernel``): its calls go
    to the compiled function when built, else to numba's JIT (importing numba then)."""
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


# --- building ------------------------------------------------------------------------------------


def _numba_type(code: str, ndim: int):
    from numba import types

    scalar = {"f8": types.float64, "f4": types.float32, "i8": types.int64, "i4": types.int32,
              "i2": types.int16, "i1": types.int8, "u8": types.uint64, "u4": types.uint32,
              "u2": types.uint16, "u1": types.uint8, "b1": types.boolean}[code]
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
    from polars_metrics._kernels import _jit

    functions = {key: getattr(importlib.import_module(f"{__package__}.{key[0]}"), key[1])
                 for key in EXPORTS}
    _jit.numba_module()  # after the imports: their prange globals become numba.prange
    for (module, fn_name), sig in EXPORTS.items():
        fn = functions[(module, fn_name)]
        cc.export(f"{module}__{fn_name}", _numba_signature(sig))(fn.py_func)
    # pycc compiles every export with one set of flags; a kernel declared ``_nrt=False``
    # (no allocation inside, no reference counting: see json_scan) is compiled without NRT
    no_nrt = {functions[key].py_func for key in EXPORTS
              if functions[key].options.get("_nrt", True) is False}
    compile_extra = pycc_compiler.compile_extra

    def _compile_extra(typingctx, targetctx, func, args, return_type, flags, *a, **kw):
        if func in no_nrt:
            flags = flags.copy()
            flags.nrt = False
        return compile_extra(typingctx, targetctx, func, args, return_type, flags, *a, **kw)

    original = pycc_compiler.Flags
    pycc_compiler.Flags = _NoGilFlags
    pycc_compiler.compile_extra = _compile_extra
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumbaPendingDeprecationWarning)
            cc.compile()
    finally:
        pycc_compiler.Flags = original
        pycc_compiler.compile_extra = compile_extra
    built = next(output_dir.glob(f"{name}.*"))
    for old in output_dir.glob("_aot_*"):
        if not old.name.startswith(name + "."):
            old.unlink()
    return built
