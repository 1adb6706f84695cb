"""numpy's transparent-huge-page requests are off once polars_metrics is imported (they stall
first touches of large arrays where the kernel compacts memory on demand, see
``polars_metrics._memory``), unless the user set numpy's own switch ``NUMPY_MADVISE_HUGEPAGE``."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = ("import numpy; from numpy._core import multiarray as m; before = m._set_madvise_hugepage(True); "
         "m._set_madvise_hugepage(before); import polars_metrics; print(before, m._set_madvise_hugepage(False))")


@pytest.mark.parametrize(("env", "after"), [(None, "False"), ("1", "True"), ("0", "False")])
def test_import_turns_numpy_huge_pages_off_unless_the_user_chose(env, after):
    environ = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if env is not None:
        environ["NUMPY_MADVISE_HUGEPAGE"] = env
    out = subprocess.run([sys.executable, "-c", PROBE], env=environ, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    before, now = out.stdout.split()
    # numpy's own default reads the variable at its import; ours only changes an unset choice
    assert before == ("True" if env != "0" else "False") or sys.platform != "linux"
    assert now == after
