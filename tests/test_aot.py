"""The ahead-of-time compiled kernels: built, equal to numba's JIT, guarded, and light.

``make test`` builds the compiled module first; a missing build fails here (with how to build)
rather than silently testing only the JIT.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import polars_metrics as pm
from polars_metrics import _parallel
from polars_metrics._kernels import aot

ROOT = Path(__file__).resolve().parents[1]
FRAMES = ("cube", "overall", "confusion", "data_rows", "data_row_features", "matches")


def _run(code: str, **env: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, **env}, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_compiled_module_is_built_for_these_sources():
    assert not os.environ.get("POLARS_METRICS_JIT"), "the suite runs against the compiled kernels"
    assert aot.compiled_module() is not None, (
        f"no compiled kernels for these sources ({aot.module_name()}); build them with "
        "`python -m polars_metrics._kernels` (make does it)"
    )
    from polars_metrics import events  # resolved its kernels when imported

    assert events.greedy_match_by_iou.resolve().__qualname__ == "matching.greedy_match_by_iou"


def _mixed_inputs(directory: Path) -> None:
    """Boxes (over the parallel threshold), radio classifications and polygons, with a slice."""
    gt, pd = pm.synthetic.detections(n_images=300, seed=11)
    gt.write_parquet(directory / "gt.parquet")
    pd.write_parquet(directory / "pd.parquet")
    radio_gt = pl.DataFrame({"data_row": ["a", "b", "c", "d"], "question": ["weather"] * 4,
                             "answer": ["sun", "rain", "sun", "snow"]})
    radio_pd = radio_gt.filter(pl.col("data_row") != "d").with_columns(
        answer=pl.Series(["sun", "sun", "rain"]), confidence=pl.Series([0.9, 0.4, 0.7]))
    radio_gt.write_parquet(directory / "radio_gt.parquet")
    radio_pd.write_parquet(directory / "radio_pd.parquet")


EVALUATE = """
import sys, polars as pl, polars_metrics as pm
d = sys.argv[1] if len(sys.argv) > 1 else {d!r}
out = {out!r}
gt, pd = pl.read_parquet(d + "/gt.parquet"), pl.read_parquet(d + "/pd.parquet")
ev = pm.evaluate(gt, pd, by="split")
for name in {frames!r}:
    getattr(ev, name).write_parquet(out + "_" + name + ".parquet")
rg, rp = pl.read_parquet(d + "/radio_gt.parquet"), pl.read_parquet(d + "/radio_pd.parquet")
pm.evaluate(rg, rp).cube.write_parquet(out + "_radio.parquet")
from polars_metrics._kernels.aot import compiled_module
print(compiled_module() is not None)
"""


@pytest.mark.slow
def test_compiled_kernels_equal_the_jit(tmp_path):
    _mixed_inputs(tmp_path)
    results = {}
    for label, env in (("aot", {}), ("jit", {"POLARS_METRICS_JIT": "1"})):
        code = EVALUATE.format(d=str(tmp_path), out=str(tmp_path / label), frames=FRAMES)
        results[label] = _run(code, **env).strip()
    assert results == {"aot": "True", "jit": "False"}
    for name in (*FRAMES, "radio"):
        assert_frame_equal(pl.read_parquet(tmp_path / f"aot_{name}.parquet"),
                           pl.read_parquet(tmp_path / f"jit_{name}.parquet"), check_exact=True)


def test_box_evaluation_loads_neither_numba_nor_pyarrow_nor_shapely():
    code = """
import sys, json, polars as pl, polars_metrics as pm
gt, pd = pm.synthetic.detections(n_images=50, seed=1)
ev = pm.evaluate(gt, pd, by="split")
ev.cube, ev.confusion, ev.data_rows, ev.data_row_features, ev.pr_curve(), ev.best_thresholds()
f = ev.features[0]
ev.examples(f, f)
pm.pairwise_iou(gt, pd)
gt.select(pl.col("bbox").pm.box_iou(pl.col("bbox")))
print(json.dumps(sorted(m for m in ("numba", "llvmlite", "pyarrow", "shapely") if m in sys.modules)))
"""
    assert json.loads(_run(code)) == []


def test_checked_wrapper_refuses_what_would_crash_compiled_code():
    fn = aot.kernel("groups", "stable_group_order")
    codes = np.array([2, 0, 1, 0], dtype=np.int64)
    assert fn(codes, 3).tolist() == [1, 3, 2, 0]
    with pytest.raises(TypeError, match="argument 0: expected a C-contiguous 1-D int64 array, got int32"):
        fn(codes.astype(np.int32), 3)
    with pytest.raises(TypeError, match="C-contiguous=False"):
        fn(np.arange(8, dtype=np.int64)[::2], 8)
    with pytest.raises(TypeError, match="got list"):
        fn([0, 1], 2)
    with pytest.raises(TypeError, match="takes 2 arguments, got 1"):
        fn(codes)


def test_signature_notation():
    assert aot.parse_signature("i1[:](f8[:, :])") == ([("i1", 1)], [("f8", 2)])
    assert aot.parse_signature("void(i8[:], b1, f8)") == (None, [("i8", 1), ("b1", 0), ("f8", 0)])
    assert aot.parse_signature("(f8[:, :, :], i8[:])(i4[:], i8)") == (
        [("f8", 3), ("i8", 1)], [("i4", 1), ("i8", 0)])
    assert aot.parse_signature("i8(u1[:, :], u4[:], f4)") == (
        [("i8", 0)], [("u1", 2), ("u4", 1), ("f4", 0)])
    with pytest.raises(ValueError, match="bad kernel type"):
        aot.parse_signature("void(c16[:])")


def test_every_export_matches_its_python_signature():
    import inspect

    for (module, name), sig in aot.EXPORTS.items():
        fn = aot.kernel(module, name)
        _, args = aot.parse_signature(sig)
        import importlib

        py = getattr(importlib.import_module(f"polars_metrics._kernels.{module}"), name).py_func
        assert len(inspect.signature(py).parameters) == len(args), (module, name)
        assert callable(fn)


# --- the thread driver ----------------------------------------------------------------------------


def test_split_covers_every_item_once_and_balances_work():
    cum = np.concatenate([[0], np.cumsum([100, 1, 1, 1, 1, 1, 1, 100, 1, 1])])
    ranges = _parallel.split(cum, 2)
    assert ranges[0][0] == 0 and ranges[-1][1] == 10
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    work = [int(cum[b] - cum[a]) for a, b in ranges]
    assert max(work) <= 110  # total 208: no range takes both heavy items
    assert _parallel.split(np.array([0]), 4) == []
    assert _parallel.split(np.zeros(6, dtype=np.int64), 3) == [(0, 5)]
    for parts in (1, 2, 3, 7, 20):
        r = _parallel.split(np.arange(6) * 5, parts)
        assert [i for a, b in r for i in range(a, b)] == list(range(5))


@pytest.mark.parametrize("threads", [1, 2, 3, 7])
def test_results_do_not_depend_on_the_thread_count(monkeypatch, threads):
    gt, pd = pm.synthetic.detections(n_images=120, seed=4)
    base = pm.evaluate(gt, pd)
    monkeypatch.setattr(_parallel, "num_threads", lambda: threads)
    monkeypatch.setattr(_parallel, "SMALL", 0)
    ev = pm.evaluate(gt, pd)
    for name in ("cube", "confusion", "data_rows"):
        assert_frame_equal(getattr(ev, name), getattr(base, name), check_exact=True)


def test_kernel_errors_in_threads_propagate():
    def boom(lo, hi):
        if lo > 0:
            raise ValueError("range failed")

    monkey_threads = _parallel.num_threads
    try:
        _parallel.num_threads = lambda: 2
        with pytest.raises(ValueError, match="range failed"):
            _parallel.run_ranges(boom, (), np.arange(10, dtype=np.int64), small=0)
    finally:
        _parallel.num_threads = monkey_threads


def test_lazy_module_imports_on_first_attribute():
    from polars_metrics._lazy import lazy

    code = """
import sys
from polars_metrics._lazy import lazy
m = lazy("colorsys")
before = "colorsys" in sys.modules
print(before, repr(m).endswith("(not loaded yet)>"), m.rgb_to_hsv(1.0, 0.0, 0.0), "colorsys" in sys.modules)
"""
    assert _run(code).split() == ["False", "True", "(0.0,", "1.0,", "1.0)", "True"]
    missing = lazy("polars_metrics_no_such_module")
    with pytest.raises(ModuleNotFoundError):
        _ = missing.anything


def test_a_forked_child_runs_ranges_on_its_own_threads():
    """A forked child inherits the pool object but not its threads: it must start its own
    rather than wait forever. (polars itself does not survive a fork — its docs say to use the
    "spawn" start method — so this checks the kernel threads alone.)"""
    code = """
import os, numpy as np
from polars_metrics import _parallel
_parallel.num_threads = lambda: 2
seen = []
def work(lo, hi):
    seen.extend(range(lo, hi))
_parallel.run_ranges(work, (), np.arange(9), small=0)  # starts the parent's pool
pid = os.fork()
if pid == 0:
    seen.clear()
    _parallel.run_ranges(work, (), np.arange(9), small=0)
    os._exit(0 if sorted(seen) == list(range(8)) else 1)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0"]


def test_chunk_size_agrees_with_the_kernel():
    """The driver splits work by chunks of the kernel's size (kept apart so that importing
    the driver does not import numba)."""
    from polars_metrics import events
    from polars_metrics._kernels import matching as kernels

    assert events.ROWS_PER_CHUNK == kernels.ROWS_PER_CHUNK
