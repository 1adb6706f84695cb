"""One module per annotation kind; this registry lists them. Nothing downstream of the pairs
knows about kinds.

Every kind module ends with one ``KIND = Kind(...)`` (see :class:`~polars_metrics.kinds._base.Kind`
for what a kind provides) and is listed once in :data:`REGISTRY`. Adding a kind is its module,
its kernel, and one line here.

The registry order is meaningful, and the one place it is stated:

- it is the category order of :data:`KIND_DTYPE`, the Enum of the ``kind`` column;
- when a table without a ``kind`` column carries the geometry columns of several kinds, the
  first registered one wins (``start`` / ``end`` / ``point`` are common metadata names, so the
  kinds reading them come late; ``bbox`` wins, as it did before the other kinds existed).

The kind names live here, not in ``schema``: ``schema`` sits below the kinds in the layers, so
the Enum is derived from the registry rather than declared twice and kept in step.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

from polars_metrics import schema as s
from polars_metrics.errors import SchemaError, did_you_mean
from polars_metrics.kinds import box, classification, geo, line, mask, point, polygon, span
from polars_metrics.kinds._base import Kind
from polars_metrics.profiles import Profile
from polars_metrics.validation import POS

REGISTRY: tuple[Kind, ...] = (
    box.KIND,
    polygon.KIND,
    mask.KIND,
    line.KIND,
    point.KIND,
    span.KIND,
    classification.RADIO_KIND,
    classification.CHECKLIST_KIND,
    classification.TEXT_KIND,
)
KINDS: dict[str, Kind] = {k.name: k for k in REGISTRY}
KIND_NAMES: tuple[str, ...] = tuple(KINDS)
KIND_DTYPE = pl.Enum(KIND_NAMES)  # the dtype of the ``kind`` column after preparation
assert len(KINDS) == len(REGISTRY), "two registered kinds share a name"


def kind(name: str) -> Kind:
    """The registered kind called ``name``; a SchemaError with the supported names otherwise.

    Examples
    --------
    >>> kind("polygon").geometry
    ('polygon',)
    >>> kind("boxx")
    Traceback (most recent call last):
    ...
    polars_metrics.errors.SchemaError: Unknown or not yet supported kind 'boxx'; supported kinds are ['box', 'checklist', 'line', 'mask', 'point', 'polygon', 'radio', 'span', 'text']. Did you mean "box"?
    """
    try:
        return KINDS[name]
    except KeyError:
        raise SchemaError(
            f"Unknown or not yet supported kind {name!r}; supported kinds are "
            f"{sorted(KINDS)}." + did_you_mean(name, KINDS)
        ) from None


def infer_kind(columns: Sequence[str]) -> str | None:
    """The kind whose geometry columns a table carries, when it has no ``kind`` column.

    Among several geometric kinds the first registered wins; a table that could be both a
    geometric kind and a classification is ambiguous (None), as is one with no geometry.

    Examples
    --------
    >>> infer_kind(["data_row", "feature", "bbox"]), infer_kind(["line", "point"])
    ('box', 'line')
    >>> infer_kind(["data_row", "question", "answer"]), infer_kind(["bbox", "question", "answer"])
    ('radio', None)
    """
    found = [k for k in REGISTRY if k.inferred and all(c in columns for c in k.geometry)]
    if len(found) == 1:
        return found[0].name
    geometric = [k for k in found if not k.always_match]
    return geometric[0].name if found and len(geometric) == len(found) else None


def pair_groups(names: Iterable[str], profile: Profile | None = None) -> dict[str, list[str]]:
    """Group the kinds present by the kind whose ``pairs`` computes them: {handler: kinds}.

    A kind joins a kind that lists it in ``pairs_with`` when that kind is present (boxes pair
    with polygons as rectangles), or — when coordinates are (lon, lat) (``profile.crs``) and
    the kind's own pairs are planar only — always (a box in degrees is not a rectangle on the
    plane). Otherwise a kind pairs only with itself.

    Examples
    --------
    >>> pair_groups(["box", "point"]), pair_groups(["box", "polygon"])
    ({'box': ['box'], 'point': ['point']}, {'polygon': ['box', 'polygon']})
    """
    names = list(names)
    geographic = profile is not None and geo.is_geographic(profile.crs)
    groups: dict[str, list[str]] = {}
    for name in names:
        k = kind(name)
        hosts = [h.name for h in REGISTRY if name in h.pairs_with
                 and (h.name in names or (geographic and not k.geographic))]
        groups.setdefault(hosts[0] if hosts else name, []).append(name)
    return groups


def derive_features(frame: pl.DataFrame) -> pl.DataFrame:
    """``expand`` the rows of every kind that derives its feature (classifications: feature
    from the answer, one row per checklist option); the other rows are kept as they are.

    Rows keep their input position (``_pos``) order, so the tie rule still holds.

    Examples
    --------
    >>> f = pl.DataFrame({"_pos": [0, 1], "kind": ["radio", "checklist"],
    ...                   "question": ["q1", "q2"], "answer": ["yes", None],
    ...                   "answers": [None, ["a", "b"]]})
    >>> derive_features(f).select("_pos", "feature").rows()
    [(0, 'yes'), (1, 'a'), (1, 'b')]
    """
    present = set(frame[s.KIND].cast(pl.String).unique().drop_nulls().to_list())
    todo = [k for k in REGISTRY if k.expand is not None and k.name in present]
    if not todo:
        return frame
    names = [k.name for k in todo]
    rest = frame.filter(~pl.col(s.KIND).is_in(names) | pl.col(s.KIND).is_null())
    parts = [rest] + [k.expand(frame.filter(pl.col(s.KIND) == k.name)) for k in todo]
    return pl.concat(parts, how="diagonal_relaxed").sort(POS, maintain_order=True)


__all__ = ["KINDS", "KIND_DTYPE", "KIND_NAMES", "REGISTRY", "Kind", "derive_features",
           "infer_kind", "kind", "pair_groups"]
