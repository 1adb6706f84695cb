"""No compiling at user time, and a light ``import polars_metrics``.

With the kernels compiled ahead of time (``make kernels`` or ``pip install .``), evaluating any
kind or profile in a fresh process with an empty numba cache imports no numba at all (so
nothing can compile), and every exported kernel gives exactly what numba's JIT gives on the
same inputs. Not timings: the figures are in ``benchmarks/first_call.py``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.first_call import CHILD, PATHS, write_inputs
from polars_metrics._kernels import aot

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numba", "llvmlite", "pyarrow", "shapely", "PIL", "altair", "rich",
         "polars_metrics.views", "polars_metrics.cli", "polars_metrics.coco",
         "polars_metrics.labelbox_sdk", "polars_metrics.io.coco", "polars_metrics.io.labelbox")


def _python(code: str, *args: str, **env: str) -> str:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, **env}, check=False, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("first_call")
    write_inputs(40, d)
    return d


def test_import_loads_none_of_the_heavy_modules():
    code = ("import sys, json, polars_metrics; "
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    assert json.loads(_python(code)) == []


@pytest.mark.parametrize("path", PATHS)
def test_first_call_compiles_nothing(path, inputs, tmp_path):
    """A fresh process, an empty numba cache: the call never imports numba."""
    assert aot.compiled_module() is not None, "build the kernels: python -m polars_metrics._kernels"
    out = json.loads(_python(CHILD, path, str(inputs),
                             NUMBA_CACHE_DIR=str(tmp_path / "numba_cache")).splitlines()[-1])
    assert (out["numba_loaded"], out["compiled"]) == (False, [])


def test_first_box_evaluation_imports_nothing_but_the_compiled_kernels(inputs, tmp_path):
    """``import polars_metrics`` imports what a box evaluation needs (numpy.ma too, which polars
    imports on its first Series from a numpy array): a process's first call sets up no module
    but the compiled kernels, loaded on first use."""
    out = json.loads(_python(CHILD, "boxes", str(inputs),
                             NUMBA_CACHE_DIR=str(tmp_path / "numba_cache")).splitlines()[-1])
    assert out["imported"], "the compiled kernels are loaded on first use: the probe sees imports"
    assert [m for m in out["imported"] if not m.startswith(f"{aot.__package__}._aot_")] == []


# Installed before anything runs: the first call of each exported kernel is also run, on copies
# of its arguments, compiled and through numba's JIT; ``seen`` says whether results and
# written arrays were equal.
RECORD = r"""
import json, sys
import numpy as np
from polars_metrics._kernels import _jit, aot

seen = {}
original = _jit.Kernel.__call__

def _copy(args):
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]

def _same(a, b):
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    return a == b or (a != a and b != b)

def recording(self, *args, **kwargs):
    key = ".".join(self.key)
    if key not in seen and self.key in aot.EXPORTS:
        compiled = aot.compiled_kernel(*self.key)
        assert compiled is not None
        # one snapshot, copied: other threads may be writing their ranges of shared outputs
        a = _copy(args)
        b = _copy(a)
        got, want = compiled(*a), self.dispatcher(*b)
        seen[key] = bool(_same(got, want) and all(_same(x, y) for x, y in zip(a, b)))
    return original(self, *args, **kwargs)

_jit.Kernel.__call__ = recording
"""
# the other entry points and options (pairwise IoU columns, score order, merge, masks to
# arrays, the SDK on masks, hostile geometry): some of their tests, in the same recorder
OTHER_TESTS = ["tests/test_hostile_inputs.py", "tests/test_score_order.py",
               "tests/test_partition_independence.py", "tests/test_labelbox_sdk.py",
               "tests/test_rle.py", "tests/test_kinds_polygon.py",
               "tests/test_kinds_span.py::test_expression_span_iou",
               "tests/test_kinds_point_line.py::test_expressions_match_pairwise",
               "tests/test_kinds_mask.py::test_empty_masks_have_iou_zero",
               # the one-pass event cells run from 4M match events (100,000 images) only
               "tests/test_event_kernels.py::test_event_cells_count_each_event_at_its_key_and_cells"]


@pytest.mark.slow
def test_every_exported_kernel_equals_the_jit(inputs):
    """Each exported kernel, on the inputs real evaluations give it: the compiled result and
    the arrays it writes equal numba's JIT exactly; every export is reached."""
    reached: dict[str, bool] = {}
    for path in PATHS:
        code = RECORD + CHILD + "\nprint(json.dumps(seen))\n"
        reached.update(json.loads(_python(code, path, str(inputs)).splitlines()[-1]))
    code = (RECORD + "import pytest\n"
            f"code = pytest.main({[*OTHER_TESTS, '-q', '-p', 'no:cacheprovider', '-p', 'no:xdist']!r})\n"
            "print(json.dumps(seen))\n")
    reached.update(json.loads(_python(code).splitlines()[-1]))
    assert {k for k, ok in reached.items() if not ok} == set()
    assert {f"{m}.{n}" for m, n in aot.EXPORTS} - set(reached) == set()
