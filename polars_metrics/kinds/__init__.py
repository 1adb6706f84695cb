"""One module per annotation kind. Each turns (ground truth, predictions) into the pairs frame.

A kind module provides:
- ``NAME`` and ``GEOMETRY`` (the columns it needs),
- ``normalize(frame)``: cast accepted input dtypes to the canonical ones,
- ``checks(table, keys)``: row checks (see ``polars_metrics.validation.Check``),
- ``pairs(gt, pd)``: candidate pairs with IoU > 0 between two ``prepare.Side`` views,
  gt-major within a data row,
and optionally ``ALWAYS_MATCH`` (pairs match at every IoU threshold) and ``DERIVES_FEATURE``
with ``expand(frame)`` (the feature comes from other columns, after validation).
Nothing downstream of the pairs knows about kinds.
"""
from __future__ import annotations

from types import ModuleType

from polars_metrics.errors import SchemaError, did_you_mean
from polars_metrics.kinds import box, classification

KIND_MODULES: dict[str, ModuleType] = {box.NAME: box}
KIND_MODULES.update({k.NAME: k for k in classification.KINDS})


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
    found = [name for name, mod in KIND_MODULES.items()
             if getattr(mod, "INFERRED", True) and all(c in columns for c in mod.GEOMETRY)]
    return found[0] if len(found) == 1 else None
