"""Why a model fails: error decomposition, calibration and label-error queues.

Each module takes the frames and the :class:`polars_metrics.state.Detail` of one evaluation and
returns Polars frames; :class:`polars_metrics.result.Evaluation` exposes them as methods.
"""

BACKGROUND_IOU = 0.1  # TIDE's default background threshold (here: no module to load for it)
