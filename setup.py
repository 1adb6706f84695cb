"""The package build also compiles the kernels ahead of time (``polars_metrics/_kernels/aot.py``).

``pip install .`` runs ``build_py``; after copying the sources it runs the same builder as
``make kernels`` (``python -m polars_metrics._kernels --out <build dir>``) on the copied package,
so the wheel carries the compiled module and no kernel compiles at user time. Without a C
compiler (or if numba.pycc is gone from a future numba) the build warns and the package installs
without it: every kernel then runs through numba's JIT, with identical results.
An editable install (``pip install -e .``) keeps the sources in place: ``make kernels`` builds
the module there.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution


class BuildPyWithKernels(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False) or os.environ.get("POLARS_METRICS_JIT"):
            return
        build_lib = Path(self.build_lib).resolve()
        out = build_lib / "polars_metrics" / "_kernels"
        # The build environment has numpy and numba but not the package's other dependencies
        # (polars ...): stand in an empty ``polars_metrics`` package so that importing
        # ``polars_metrics._kernels`` (numpy and numba only) skips the package's __init__.
        code = ("import runpy, sys, types; pkg = types.ModuleType('polars_metrics'); "
                f"pkg.__path__ = [{str(build_lib / 'polars_metrics')!r}]; "
                "sys.modules['polars_metrics'] = pkg; "
                f"sys.argv = ['polars_metrics._kernels', '--out', {str(out)!r}]; "
                "runpy.run_module('polars_metrics._kernels', run_name='__main__')")
        env = dict(os.environ)
        cmd = [sys.executable, "-c", code]
        self.announce("compiling the kernels ahead of time: " + " ".join(cmd), level=2)
        try:
            done = subprocess.run(cmd, cwd=str(build_lib), env=env, capture_output=True,
                                  text=True, check=False, timeout=3600)
        except (OSError, subprocess.SubprocessError) as exc:
            done, why = None, f"{type(exc).__name__}: {exc}"
        if done is not None and done.returncode == 0:
            print(done.stdout.strip(), file=sys.stderr)
            return
        why = why if done is None else (done.stderr or done.stdout).strip()[-2000:]
        print(f"WARNING: polars_metrics installs without its compiled kernels ({why}). "
              "Everything still works through numba's JIT (the first call of each kernel "
              "compiles it). Install a C compiler and reinstall to get them.", file=sys.stderr)


class BinaryDistribution(Distribution):
    """The wheel holds a compiled module: tag it for this platform and Python."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build_py": BuildPyWithKernels}, distclass=BinaryDistribution)
