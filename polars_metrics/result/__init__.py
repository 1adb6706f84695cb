"""Result types: frames plus the views over them (one per engine)."""
from __future__ import annotations

from polars_metrics.result.evaluation import (
    FINE_CONFIDENCE_THRESHOLDS,
    NONE_LABEL,
    Evaluation,
    finalize,
)

__all__ = ["FINE_CONFIDENCE_THRESHOLDS", "NONE_LABEL", "Evaluation", "finalize"]
