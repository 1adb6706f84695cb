"""Import heavy modules on first use.

``import polars_metrics`` and box evaluation need neither numba (when the box kernels are
compiled ahead of time, see ``_kernels/aot.py``) nor pyarrow nor shapely; the other annotation
kinds do. Those modules hold ``numba = lazy("numba")`` instead of ``import numba``: the real
import happens at the first attribute access, so a box-only process never pays for the rest.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for a module; imports it when an attribute is first read."""

    __slots__ = ("_name", "_module")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def _load(self) -> ModuleType:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return self._module

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._load(), attr)

    def __repr__(self) -> str:
        state = "loaded" if self._module is not None else "not loaded yet"
        return f"<lazy module {self._name!r} ({state})>"


def lazy(name: str) -> Any:
    """A :class:`LazyModule` for ``name`` (typed ``Any``: use it as the module itself)."""
    return LazyModule(name)
