"""Readers and writers of external formats (imported on first use: they need pyarrow)."""
from __future__ import annotations

__all__ = ["read_coco", "write_coco_results"]


def __getattr__(name: str):
    if name in __all__:
        from polars_metrics.io import coco

        return getattr(coco, name)
    raise AttributeError(f"module 'polars_metrics.io' has no attribute {name!r}")
