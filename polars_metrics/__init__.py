"""polars_metrics: model-prediction metrics as Polars frames.

>>> import polars_metrics as pm
>>> sorted(pm.PROFILES)
['coco', 'labelbox', 'labelbox-sdk']
"""
from __future__ import annotations

import os as _os

# numba's OpenMP workers spin while they wait; on a busy machine every parallel call then pays
# milliseconds of rescheduling. Passive waiting costs nothing measurable here (set before numba
# starts its thread pool; an explicit setting by the user wins).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# polars imports numpy.ma the first time it makes a Series from a numpy array (np.ma.getmask),
# which every evaluation does: 10-12 ms of module setup (numpy.ma parses the text signatures of
# numpy's builtins). Imported here, with everything else an evaluation needs, so that a
# process's first evaluation does not pay for it.
import numpy.ma as _numpy_ma  # noqa: E402, F401

from polars_metrics import _memory, state
from polars_metrics import namespace as _namespace  # noqa: F401  (registers `.pm`)
from polars_metrics._memory import release_memory
from polars_metrics.compare import Comparison, compare  # eager: a subpackage of that name
from polars_metrics.errors import (
    FormatError,
    InvalidAnnotationError,
    PolarsMetricsError,
    PolarsMetricsWarning,
    ProfileError,
    SchemaError,
    ThresholdError,
)
from polars_metrics.evaluate import evaluate
from polars_metrics.iou import pairwise_iou
from polars_metrics.kinds.box import bbox_from_tlhw, bbox_from_xywh
from polars_metrics.kinds.mask import (
    mask_from_array,
    mask_from_png,
    mask_to_array,
    masks_from_arrays,
)
from polars_metrics.kinds.polygon import polygons_from_shapely
from polars_metrics.pipeline import partial
from polars_metrics.profiles import PROFILES, CocoOptions, Profile, SdkOptions, get_profile
from polars_metrics.result import FINE_CONFIDENCE_THRESHOLDS, Evaluation, finalize
from polars_metrics.result import evaluation as _evaluation
from polars_metrics.result.coco import CocoEvaluation
from polars_metrics.schema import (
    BBOX_DTYPE,
    LINE_DTYPE,
    MASK_DTYPE,
    MULTIPOLYGON_DTYPE,
    POINT_DTYPE,
    POLYGON_DTYPE,
)
from polars_metrics.state import PartialResult, merge


class _ViewsOnFirstUse(dict):
    """``ev.report`` / ``ev.plot`` look their view up here; the first lookup imports
    ``polars_metrics.views`` (which registers them), so ``import polars_metrics`` does not."""

    def __missing__(self, key: str):
        import polars_metrics.views  # noqa: F401  (registers report and plot)

        return dict.__getitem__(self, key)


_evaluation._VIEWS = _ViewsOnFirstUse(_evaluation._VIEWS)

__version__ = "0.1.0"

# Imported on first use: they need numba's JIT or pyarrow, which box evaluation does not.
_LAZY = {
    "labelbox_sdk": ("polars_metrics.labelbox_sdk", None),
    "CocoResult": ("polars_metrics.coco", "CocoResult"),
    "evaluate_coco": ("polars_metrics.coco", "evaluate_coco"),
    "read_coco": ("polars_metrics.io.coco", "read_coco"),
    "write_coco_results": ("polars_metrics.io.coco", "write_coco_results"),
    "read_labelbox_export": ("polars_metrics.io.labelbox", "read_labelbox_export"),
    "read_labelbox_ndjson": ("polars_metrics.io.labelbox", "read_labelbox_ndjson"),
    # the views (Altair charts, the HTML report): registered on Evaluation when first used
    "plot": ("polars_metrics.views", "plot"),
    # runs that disagree, generated data: not needed to evaluate
    "uncertain_across": ("polars_metrics.result.queues", "uncertain_across"),
    "synthetic": ("polars_metrics.synthetic", None),
    "report": ("polars_metrics.views", "report"),
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'polars_metrics' has no attribute {name!r}")
    import importlib

    module, attr = _LAZY[name]
    value = importlib.import_module(module)
    value = value if attr is None else getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    # evaluate, and the additive contract behind streaming / distribution
    "evaluate", "compare", "Comparison", "partial", "merge", "finalize", "Evaluation",
    "CocoEvaluation", "PartialResult", "uncertain_across",
    "FINE_CONFIDENCE_THRESHOLDS", "pairwise_iou", "state", "synthetic",
    # the memory kept between evaluations for the next one, given back
    "release_memory",
    # views: Altair charts and the self-contained HTML report
    "plot", "report",
    # profiles
    "PROFILES", "Profile", "CocoOptions", "SdkOptions", "get_profile",
    # errors
    "FormatError", "InvalidAnnotationError", "PolarsMetricsError", "PolarsMetricsWarning",
    "ProfileError", "SchemaError", "ThresholdError",
    # annotation kinds: column dtypes and constructors
    "BBOX_DTYPE", "LINE_DTYPE", "MASK_DTYPE", "MULTIPOLYGON_DTYPE", "POINT_DTYPE", "POLYGON_DTYPE",
    "bbox_from_tlhw", "bbox_from_xywh", "mask_from_array", "mask_from_png", "mask_to_array",
    "masks_from_arrays", "polygons_from_shapely",
    # formats (loaded on first use) and the SDK's metric functions
    "read_coco", "write_coco_results", "evaluate_coco", "CocoResult",
    "read_labelbox_export", "read_labelbox_ndjson", "labelbox_sdk",
]

# numpy's huge-page requests make first touches of large arrays stall on kernels that compact
# memory on demand; off unless NUMPY_MADVISE_HUGEPAGE says otherwise. glibc's heap thresholds
# start where its own adjustment ends, unless the user set them (see _memory)
_memory.use_small_pages()
_memory.settle_heap_thresholds()
