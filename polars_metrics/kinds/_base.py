"""What a kind is: one frozen :class:`Kind` value per annotation kind, declared at the end of
its module (``KIND = Kind(...)``) and listed once in the registry (``kinds/__init__.py``).

Everything the engine asks of a kind is a field here, typed, with its default: nothing is
looked up with ``getattr`` on a module, so a kind that forgets a part fails when it is
declared, not in the middle of an evaluation.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import polars as pl

from polars_metrics.profiles import Profile
from polars_metrics.validation import Check

# (pair_off int64 CSR over data rows, pair_gt int64, pair_pd int64, pair_iou float64 in (0, 1]):
# positions in data-row order, gt-major within a data row
PairArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class SideView(Protocol):
    """What a kind reads of a prepared table (``prepare.Side``), in data-row order."""

    frame: pl.DataFrame
    idx: np.ndarray | None
    off: np.ndarray

    def __len__(self) -> int: ...

    @property
    def row(self) -> np.ndarray: ...

    def column(self, name: str) -> pl.Series: ...

    def select(self, *columns: str) -> pl.DataFrame: ...


Normalize = Callable[[pl.DataFrame, str], pl.DataFrame]
Checks = Callable[[str, Sequence[str]], list[Check]]
PairsFn = Callable[[SideView, SideView, "Profile | None"], PairArrays]
Repair = Callable[[pl.DataFrame, str], tuple[pl.DataFrame, pl.DataFrame]]
# IoU of a[i] with b[i] for every i (two Series without nulls) -> float64 array; options are
# keyword arguments of the expression method (``radius=``, ``how=``)
AlignedIou = Callable[..., np.ndarray]
Expand = Callable[[pl.DataFrame], pl.DataFrame]


@dataclass(frozen=True)
class Kind:
    """One annotation kind.

    Attributes
    ----------
    name : the value of the ``kind`` column.
    geometry : the columns the kind needs (besides the data-row key and ``feature``).
    normalize : ``(frame, table) -> frame`` casting the accepted input dtypes to the canonical
        ones (raise :class:`~polars_metrics.errors.SchemaError` otherwise).
    checks : ``(table, keys) -> [Check]`` row checks (SPEC §7), run once at the boundary.
    pairs : ``(gt, pd, profile) -> (off, gt, pd, iou)`` candidate pairs with IoU > 0 per data
        row, gt-major; every kind gets the profile (buffer radius, point IoU, crs) and the
        kinds that do not need it ignore it.
    aligned_iou : ``(a, b, **options) -> ndarray``, the row-aligned IoU of two columns that the
        expression namespace exposes (``pl.col("a").pm.iou(b, kind=...)``); None: no IoU.
    repair : ``(frame, table) -> (frame, repairs)``, run after ``normalize``: geometry fixed at
        load (polygons' ``make_valid``), reported with the result; None: nothing to repair.
    always_match : its pairs match at every IoU threshold (classifications).
    expand : ``frame -> frame`` deriving ``feature`` from other columns after validation (one
        row per checklist option); None: the table carries ``feature``.
    inferred : the kind may be inferred from its geometry columns when a table has no ``kind``
        column (the registry order decides between several).
    pairs_with : other kinds whose rows this kind's ``pairs`` also reads, as one group (the
        polygon kind pairs boxes as rectangles): it pairs them whenever both are present.
    geographic : its ``pairs`` handles (lon, lat) coordinates (``profile.crs``). A kind that
        does not is paired, under a geographic crs, by a kind that lists it in ``pairs_with``.

    Examples
    --------
    >>> from polars_metrics.kinds import kind
    >>> box = kind("box")
    >>> box.name, box.geometry, box.always_match, box.derives_feature
    ('box', ('bbox',), False, False)
    >>> kind("polygon").pairs_with
    ('box',)
    """

    name: str
    geometry: tuple[str, ...]
    normalize: Normalize
    checks: Checks
    pairs: PairsFn
    aligned_iou: AlignedIou | None = None
    repair: Repair | None = None
    always_match: bool = False
    expand: Expand | None = None
    inferred: bool = True
    pairs_with: tuple[str, ...] = ()
    geographic: bool = True

    @property
    def derives_feature(self) -> bool:
        """True when ``feature`` comes from other columns (see ``expand``)."""
        return self.expand is not None

    def __repr__(self) -> str:
        return f"Kind({self.name!r}, geometry={self.geometry})"

