"""``python -m polars_metrics._kernels [--if-stale] [--out DIR] [-v]``: compile the kernels ahead
of time (see ``aot.py``). ``--if-stale`` does nothing when the current build exists; ``--out``
writes the module to another directory (the package build's copy of ``_kernels``)."""
import sys
import time
from pathlib import Path

from polars_metrics._kernels import aot

if "--if-stale" in sys.argv and aot.compiled_module() is not None:
    print(f"compiled kernels up to date ({aot.module_name()})")
    sys.exit(0)
out = Path(sys.argv[sys.argv.index("--out") + 1]) if "--out" in sys.argv else None
t0 = time.perf_counter()
try:
    path = aot.build(out) if out is not None else aot.build(verbose="-v" in sys.argv)
except Exception as exc:  # noqa: BLE001 - report any build failure the same way
    sys.exit(
        f"could not compile the kernels ahead of time ({type(exc).__name__}: {exc}).\n"
        "numba.pycc needs a C compiler (gcc or clang) and setuptools. polars_metrics still "
        "works without them, through numba's JIT (slower first calls, more memory)."
    )
print(f"compiled {len(aot.EXPORTS)} kernels into {path.name} in {time.perf_counter() - t0:.1f} s")
