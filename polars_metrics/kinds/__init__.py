"""One module per annotation kind. Each turns (ground truth, predictions) into the pairs frame.

A kind module provides:
- ``NAME`` and ``GEOMETRY`` (the columns it needs),
- ``normalize(frame)``: cast accepted input dtypes to the canonical ones,
- ``checks(table)``: row checks (see ``polars_metrics.validation.Check``),
- ``pairs(gt, pd, gt_off, pd_off)``: candidate pairs with IoU > 0, gt-major within a data row.
Nothing downstream of the pairs knows about kinds.
"""
from __future__ import annotations

from types import ModuleType

from polars_metrics.errors import SchemaError, did_you_mean
from polars_metrics.kinds import box

KIND_MODULES: dict[str, ModuleType] = {box.NAME: box}


def kind_module(name: str) -> ModuleType:
    try:
        return KIND_MODULES[name]
    except KeyError:
        raise SchemaError(
            f"Unknown or not yet supported kind {name!r}; supported kinds are "
            f"{sorted(KIND_MODULES)}." + did_you_mean(name, KIND_MODULES)
        ) from None


def infer_kind(columns: list[str]) -> str | None:
    """The kind whose geometry column a table carries, when it has no ``kind`` column."""
    found = [name for name, mod in KIND_MODULES.items() if all(c in columns for c in mod.GEOMETRY)]
    return found[0] if len(found) == 1 else None
