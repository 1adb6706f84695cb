"""polars_metrics: model-prediction metrics as Polars frames.

>>> import polars_metrics as pm
>>> sorted(pm.PROFILES)
['coco', 'labelbox', 'labelbox-sdk']
"""
from __future__ import annotations

from polars_metrics import namespace as _namespace  # noqa: F401  (registers `.pm`)
from polars_metrics import state, synthetic
from polars_metrics.errors import (
    FormatError,
    InvalidAnnotationError,
    PolarsMetricsError,
    PolarsMetricsWarning,
    ProfileError,
    SchemaError,
    ThresholdError,
)
from polars_metrics.evaluate import Evaluation, evaluate
from polars_metrics.iou import pairwise_iou
from polars_metrics.kinds.box import bbox_from_tlhw, bbox_from_xywh
from polars_metrics.profiles import PROFILES, Profile, get_profile

__version__ = "0.1.0"

__all__ = [
    "PROFILES", "Evaluation", "FormatError", "InvalidAnnotationError", "PolarsMetricsError",
    "PolarsMetricsWarning", "Profile", "ProfileError", "SchemaError", "ThresholdError",
    "bbox_from_tlhw", "bbox_from_xywh", "evaluate", "get_profile", "pairwise_iou", "state", "synthetic",
]
