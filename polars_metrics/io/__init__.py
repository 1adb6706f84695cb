"""Readers and writers of external formats."""
from __future__ import annotations

from polars_metrics.io.coco import read_coco, write_coco_results

__all__ = ["read_coco", "write_coco_results"]
