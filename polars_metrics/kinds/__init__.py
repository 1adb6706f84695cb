"""One module per annotation kind. Each turns (ground truth, predictions) into the pairs frame.

A kind module provides:
- ``NAME`` and ``GEOMETRY`` (the columns it needs),
- ``normalize(frame)``: cast accepted input dtypes to the canonical ones,
- ``checks(table, keys)``: row checks (see ``polars_metrics.validation.Check``),
- ``pairs(gt, pd)``: candidate pairs with IoU > 0 between two ``prepare.Side`` views,
  gt-major within a data row,
and optionally ``ALWAYS_MATCH`` (pairs match at every IoU threshold), ``DERIVES_FEATURE``
with ``expand(frame)`` (the feature comes from other columns, after validation), and
``READS_PROFILE`` (then ``pairs(gt, pd, profile)`` receives the ``Profile``: buffer radius,
point IoU, crs).
Kinds that pair with each other form one group whose pairs one module computes
(:func:`pair_groups`): a box pairs with polygons as its rectangle. Every other kind pairs only
with itself. Nothing downstream of the pairs knows about kinds.
"""
from __future__ import annotations

from types import ModuleType

from polars_metrics.errors import SchemaError, did_you_mean
from polars_metrics.kinds import box, classification, geo, line, mask, point, polygon, span

KIND_MODULES: dict[str, ModuleType] = {m.NAME: m for m in (box, polygon, mask, point, line, span)}
KIND_MODULES.update({k.NAME: k for k in classification.KINDS})


def kind_module(name: str) -> ModuleType:
    try:
        return KIND_MODULES[name]
    except KeyError:
        raise SchemaError(
            f"Unknown or not yet supported kind {name!r}; supported kinds are "
            f"{sorted(KIND_MODULES)}." + did_you_mean(name, KIND_MODULES)
        ) from None


# When a table without a ``kind`` column carries the geometry columns of several kinds, the
# first of these wins (``start`` / ``end`` / ``point`` are common metadata names; ``bbox`` wins
# as it did before the other kinds existed). Give a ``kind`` column to say otherwise.
INFERENCE_ORDER = (box.NAME, polygon.NAME, mask.NAME, line.NAME, point.NAME, span.NAME)


def infer_kind(columns: list[str]) -> str | None:
    """The kind whose geometry column a table carries, when it has no ``kind`` column."""
    found = [name for name, mod in KIND_MODULES.items()
             if getattr(mod, "INFERRED", True) and all(c in columns for c in mod.GEOMETRY)]
    if len(found) == 1:
        return found[0]
    geometric = [k for k in INFERENCE_ORDER if k in found]
    return geometric[0] if found and len(geometric) == len(found) else None


def pair_groups(kinds, profile=None) -> dict[str, list[str]]:
    """Group the kinds present by the module that computes their pairs: {handler: kinds}.

    Boxes join the polygon module when polygons are present, or when coordinates are (lon, lat)
    (``profile.crs``): a box in degrees is not a rectangle on the plane. Otherwise boxes keep
    their own kernel.
    """
    geographic = profile is not None and geo.is_geographic(profile.crs)
    groups: dict[str, list[str]] = {}
    for kind in kinds:
        handler = kind
        if kind == box.NAME and (polygon.NAME in kinds or geographic):
            handler = polygon.NAME
        groups.setdefault(handler, []).append(kind)
    return groups


def kind_pairs(handler: str, gt, pd, profile=None):
    """``pairs`` of the handler module, given the profile when the module reads it."""
    mod = kind_module(handler)
    if getattr(mod, "READS_PROFILE", False):
        return mod.pairs(gt, pd, profile)
    return mod.pairs(gt, pd)
