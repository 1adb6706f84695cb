"""``StreamedEvaluation``: an :class:`~polars_metrics.result.Evaluation` whose large frames
(``data_rows``, ``matches``, the annotations behind ``examples()``) stay in Parquet under the
run's ``out=`` directory until first read.

``ev.lazy("data_rows")`` is the LazyFrame over them (nothing read); ``ev.data_rows`` collects it
once, sorted as the in-memory evaluation's frame is.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from polars_metrics import schema as s
from polars_metrics.result import Evaluation


class _Lazy:
    """A frame attribute that may hold a LazyFrame, collected on first read."""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name]
        if isinstance(value, pl.LazyFrame):
            value = value.collect()
            obj.__dict__[self.name] = value
        return value

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.name] = value
        obj.__dict__.setdefault("_lazy_sources", {})[self.name] = value


class LazyFrames(dict):
    """``Detail.frames`` whose entries are built by a loader on first access."""

    def __init__(self, loaders: dict[str, Callable[[], object]]) -> None:
        super().__init__()
        self.loaders = loaders

    def __contains__(self, name) -> bool:
        return dict.__contains__(self, name) or name in self.loaders

    def __missing__(self, name):
        if name not in self.loaders:
            raise KeyError(name)
        self[name] = value = self.loaders[name]()
        return value


class StreamedEvaluation(Evaluation):
    """An Evaluation computed batch by batch; see the module docstring.

    ``out`` is the directory holding the checkpoints and the large frames.

    Examples
    --------
    >>> import tempfile, polars as pl, polars_metrics as pm
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"data_row": ["a", "b"], "feature": ["cat"] * 2,
    ...                    "bbox": [[0.0, 0, 10, 10]] * 2}, schema_overrides={"bbox": box})
    >>> ev = pm.evaluate(gt.lazy(), gt.with_columns(confidence=pl.lit(0.8)).lazy(),
    ...                  confidence_thresholds=[0.5], iou_thresholds=[0.5], out=tempfile.mkdtemp())
    >>> type(ev).__name__, ev.lazy("data_rows").select(pl.len()).collect().item()
    ('StreamedEvaluation', 2)
    >>> ev.data_rows.select("data_row", "tp").rows()
    [('a', 1), ('b', 1)]
    """

    data_rows = _Lazy()

    def lazy(self, name: str) -> pl.LazyFrame:
        """``"data_rows"`` or ``"matches"`` as a LazyFrame over the batch files (in batch
        order, not sorted: sort by the data-row key if the order matters)."""
        if name == "data_rows":
            return self.__dict__["_lazy_sources"]["data_rows"]
        if name == "matches":
            return self.detail.frames.loaders["_matches_lazy"]()
        raise KeyError(f"{name!r} is not a large frame; use ev.{name}.")

    @property
    def out(self) -> Path:
        return self.__dict__["_out"]

    def __repr__(self) -> str:
        cells = len(self.confidence_thresholds) * len(self.iou_thresholds)
        rows = self.lazy("data_rows").select(pl.len()).collect().item() // max(1, cells)
        return (f"<{type(self).__name__} profile={self.profile.name!r} data_rows={rows} "
                f"excluded={self.excluded.height} features={self.features} "
                f"cells={len(self.confidence_thresholds)}x{len(self.iou_thresholds)} "
                f"out={str(self.out)!r}>")


def sorted_rows(lf: pl.LazyFrame, keys) -> pl.LazyFrame:
    """A per-data-row frame in key order (stable: a row's own order is kept)."""
    names = lf.collect_schema().names()
    order = [c for c in (*keys, s.CONFIDENCE_THRESHOLD, s.IOU_THRESHOLD) if c in names]
    return lf.sort(order, maintain_order=True) if order else lf
