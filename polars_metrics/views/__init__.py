"""The view layer over an Evaluation: Altair charts (``pm.plot``) and the self-contained HTML
report (``pm.report``). Registered on the Evaluation (``ev.plot``, ``ev.report``) through
``result.evaluation._VIEWS``, so the result layer never imports this one. Nothing here loads
altair, Pillow or the Vega JavaScript until a chart or report is made.
"""
from __future__ import annotations

from polars_metrics.result import evaluation as _evaluation
from polars_metrics.views import plot
from polars_metrics.views.report import report

_evaluation._VIEWS.update(report=report, plot=plot.PlotAccessor)

__all__ = ["plot", "report"]
