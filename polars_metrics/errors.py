"""One exception hierarchy. Specific errors also subclass the builtin a caller would catch."""
from __future__ import annotations

from collections.abc import Iterable


class PolarsMetricsError(Exception):
    """Base class of every error raised by polars_metrics."""


class SchemaError(PolarsMetricsError, ValueError):
    """A table is missing a column, or a column has the wrong type."""


class InvalidAnnotationError(PolarsMetricsError, ValueError):
    """A row of an input table holds a value the metrics cannot use (NaN, x1 < x0, ...)."""


class ThresholdError(PolarsMetricsError, ValueError):
    """A confidence or IoU threshold list is not usable."""


class ProfileError(PolarsMetricsError, ValueError):
    """An unknown profile or switch name."""


class FormatError(PolarsMetricsError, ValueError):
    """A file in an external format (COCO JSON, NDJSON, ...) is malformed."""


class PolarsMetricsWarning(UserWarning):
    """Something was repaired or left out; the result says what."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean "x"?' for the closest choice, or '' when nothing is close."""
    import difflib  # only when a message needs a suggestion

    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f' Did you mean "{close[0]}"?' if close else ""
