"""Readers and writers of external formats, one package or module per format.

``coco/`` (COCO JSON), ``labelbox/`` (Labelbox NDJSON import and export files, custom-metric
NDJSON), ``parquet`` (result frames), ``frames`` (the schema every reader returns). This is the
only lazy registry: a name below is imported on first use, so ``import polars_metrics`` and a
box evaluation load neither pyarrow nor the readers.
"""
from __future__ import annotations

import importlib

_REGISTRY = {
    "read_coco": "polars_metrics.io.coco",
    "write_coco_results": "polars_metrics.io.coco",
    "read_labelbox_ndjson": "polars_metrics.io.labelbox",
    "read_labelbox_export": "polars_metrics.io.labelbox",
    "LabelboxExport": "polars_metrics.io.labelbox",
    "write_labelbox_metrics": "polars_metrics.io.labelbox",
    "write_frames": "polars_metrics.io.parquet",
}
__all__ = sorted(_REGISTRY)


def __getattr__(name: str):
    if name in _REGISTRY:
        return getattr(importlib.import_module(_REGISTRY[name]), name)
    raise AttributeError(f"module 'polars_metrics.io' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
