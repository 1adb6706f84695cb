"""Kernels compiled without numba's reference counts (``_nrt=False``, see ``_kernels/_jit.py``)
return no array: a caller compiled with reference counts would release a reference it was
never given (a crash, or memory freed under a live array). Every such kernel is compiled by
numba's JIT on the paths that use it — boxes, the COCO readers and the COCO engine — in a fresh
process, and its compiled return types are checked."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT.parent / "shared" / "data" / "cocoapi"

SCRIPT = r"""
import json, sys
import numpy as np, polars as pl
import polars_metrics as pm
from polars_metrics._kernels import _jit
from numba.core import types

box = pl.Array(pl.Float64, 4)
rng = np.random.default_rng(0)
rows = [(f"r{i % 7}", i, ["cat", "dog"][i % 2], [float(i % 5), 0.0, i % 5 + 3.0, 3.0])
        for i in range(60)]
gt = pl.DataFrame(rows, schema={"data_row": pl.String, "id": pl.Int64, "feature": pl.String,
                                "bbox": box}, orient="row")
pd = gt.with_columns(confidence=pl.Series(rng.random(60)))
ev = pm.evaluate(gt, pd)
_ = (ev.data_rows, ev.detail.matches_arrays.iv_val)
gt_path, res_path = sys.argv[1], sys.argv[2]
g, p = pm.read_coco(gt_path, res_path)
_ = pm.evaluate(g, p, profile="coco").coco_summary

from polars_metrics._kernels import aot
for k in _jit.WITHOUT_REFCOUNTS:  # exported kernels a path did not reach: their export signature
    if k.key in aot.EXPORTS and not k.dispatcher.overloads:
        k.dispatcher.compile(aot._numba_signature(aot.EXPORTS[k.key]))

def has_array(t):
    if isinstance(t, types.Array):
        return True
    return isinstance(t, types.BaseTuple) and any(has_array(x) for x in t.types)

out = {}
for k in _jit.WITHOUT_REFCOUNTS:
    d = k._dispatcher
    sigs = [] if d is None else [str(c.signature.return_type) for c in d.overloads.values()]
    out[".".join(k.key)] = {"returns": sigs, "array": any(
        has_array(c.signature.return_type) for c in ([] if d is None else d.overloads.values()))}
print(json.dumps(out))
"""


def test_kernels_without_refcounts_return_no_array(tmp_path):
    gt = FIXTURE / "instances_val2014_100.json"
    res = FIXTURE / "instances_val2014_fakebbox100_results.json"
    env = dict(os.environ, POLARS_METRICS_JIT="1", NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(gt), str(res)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(found) >= 10  # the COCO scanners and helpers, the walk's row, the sort, COCO's groups
    never = sorted(k for k, v in found.items() if not v["returns"])
    assert not never, f"not compiled on these paths, so not checked: {never}"
    returning = {k: v["returns"] for k, v in found.items() if v["array"]}
    assert not returning, f"return arrays without reference counts: {returning}"
