"""Altair charts of an :class:`~polars_metrics.result.Evaluation` (``ev.plot.*`` / ``pm.plot.*``).

Each function returns an ``altair.Chart`` built from the evaluation's frames. Altair is imported
on first use (``import polars_metrics`` never loads it). Charts render offline: save them with
:func:`save` (HTML with the Vega JavaScript inlined, PNG and SVG through ``vl-convert``).
"""
from __future__ import annotations

from pathlib import Path

import polars as pl

from polars_metrics import schema as s
from polars_metrics._lazy import lazy

alt = lazy("altair")

MICRO = "all (micro)"
SLICE = "slice"
CURRENT_CONFIDENCE = "current_confidence"  # chart parameters the report moves with its sliders
CURRENT_IOU = "current_iou"
NORMALIZE = (None, "gt", "pd")


def _slice_label(frame: pl.DataFrame, by) -> pl.DataFrame:
    if not by:
        return frame.with_columns(pl.lit("all").alias(SLICE))
    return frame.with_columns(pl.concat_str([pl.col(b).cast(pl.String) for b in by],
                                            separator=" / ").fill_null("null").alias(SLICE))


def pr_curve(ev, iou: float = 0.5, features=None, *, confidence: float | None = None):
    """Precision–recall curves per feature and micro at one IoU threshold, the best-F1 point of
    each marked (diamond) and, with ``confidence=``, the points at that threshold (ring).

    Examples
    --------
    >>> import polars_metrics as pm
    >>> gt, pd = pm.synthetic.detections(n_images=20, n_classes=3, seed=1)
    >>> chart = pm.evaluate(gt, pd).plot.pr_curve(iou=0.5, features=["car"])
    >>> type(chart).__name__, len(chart.to_dict()["layer"])
    ('LayerChart', 2)
    """
    t = ev._threshold(iou, s.IOU_THRESHOLD)
    curve = ev.pr_curve(t).with_columns(pl.col(s.FEATURE).fill_null(MICRO))
    if features is not None:
        for f in features:
            ev._check_feature(f, "feature")
        curve = curve.filter(pl.col(s.FEATURE).is_in([*features, MICRO]))
    curve = _slice_label(curve, ev.by)
    best = _slice_label(ev.best_thresholds(t).with_columns(pl.col(s.FEATURE).fill_null(MICRO)),
                        ev.by).filter(pl.col(s.FEATURE).is_in(curve[s.FEATURE].unique().to_list()))
    c = None if confidence is None else ev._threshold(confidence, s.CONFIDENCE_THRESHOLD)
    if not ev.by:
        return _pr_layers(curve, best, c).properties(title=f"Precision–recall at IoU {t:g}")
    return alt.hconcat(*[
        _pr_layers(curve.filter(pl.col(SLICE) == v), best.filter(pl.col(SLICE) == v), c)
        .properties(title=f"{v}: precision–recall at IoU {t:g}")
        for v in curve[SLICE].unique().sort().to_list()])


def _pr_layers(curve: pl.DataFrame, best: pl.DataFrame, c: float | None):
    color = alt.Color(f"{s.FEATURE}:N", title="feature")
    tip = [s.FEATURE, s.CONFIDENCE_THRESHOLD, alt.Tooltip(s.PRECISION, format=".3f"),
           alt.Tooltip(s.RECALL, format=".3f"), alt.Tooltip(s.F1, format=".3f")]
    base = alt.Chart(curve).encode(
        x=alt.X(f"{s.RECALL}:Q", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y(f"{s.PRECISION}:Q", scale=alt.Scale(domain=[0, 1])), color=color, tooltip=tip,
        order=alt.Order(f"{s.CONFIDENCE_THRESHOLD}:Q"))  # a curve walks the thresholds
    layers = [base.mark_line(point=True, strokeWidth=1.5),
              alt.Chart(best).mark_point(shape="diamond", size=120, filled=True).encode(
                  x=s.RECALL, y=s.PRECISION, color=color, tooltip=tip)]
    if c is not None:
        layers.append(base.transform_filter(alt.datum[s.CONFIDENCE_THRESHOLD] == c)
                      .mark_point(size=160, strokeWidth=2.5, filled=False, color="black"))
    return alt.layer(*layers).properties(width=320, height=280)


def confusion_matrix(ev, confidence: float = 0.5, iou: float = 0.5, normalize: str | None = None):
    """The confusion matrix heatmap at one cell (None row and column last). ``normalize="gt"``
    divides each row by its total (recall-like), ``"pd"`` each column (precision-like).

    Examples
    --------
    >>> import polars_metrics as pm
    >>> gt, pd = pm.synthetic.detections(n_images=20, n_classes=3, seed=1)
    >>> chart = pm.evaluate(gt, pd).plot.confusion_matrix(0.5, 0.5, normalize="gt")
    >>> chart.to_dict()["mark"]["type"] if isinstance(chart.to_dict()["mark"], dict) else "rect"
    'rect'
    """
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize must be one of {NORMALIZE}, got {normalize!r}.")
    dense = ev.confusion_matrix(confidence, iou)
    labels = dense[s.GT_FEATURE].to_list()
    long = dense.unpivot(index=s.GT_FEATURE, variable_name=s.PD_FEATURE, value_name=s.COUNT)
    if normalize is not None:
        along = s.GT_FEATURE if normalize == "gt" else s.PD_FEATURE
        total = pl.col(s.COUNT).sum().over(along)
        long = long.with_columns((pl.col(s.COUNT) / pl.when(total > 0).then(total)).alias("share"))
    value = "share" if normalize else s.COUNT
    order = alt.Sort(labels)
    chart = alt.Chart(long).mark_rect().encode(
        x=alt.X(f"{s.PD_FEATURE}:N", sort=order, title="prediction"),
        y=alt.Y(f"{s.GT_FEATURE}:N", sort=order, title="ground truth"),
        color=alt.Color(f"{value}:Q", scale=alt.Scale(scheme="blues")),
        tooltip=[s.GT_FEATURE, s.PD_FEATURE, s.COUNT] + (["share"] if normalize else []))
    side = max(200, min(900, 16 * len(labels)))
    return chart.properties(width=side, height=side, title=(
        f"Confusion at confidence {ev._threshold(confidence, s.CONFIDENCE_THRESHOLD):g}, "
        f"IoU {ev._threshold(iou, s.IOU_THRESHOLD):g} (None = unmatched)"))


def cube(ev, metric: str = "f1", feature: str | None = None):
    """The confidence × IoU heatmap of one metric, for one feature or micro (``feature=None``).

    Examples
    --------
    >>> import polars_metrics as pm
    >>> gt, pd = pm.synthetic.detections(n_images=20, n_classes=3, seed=1)
    >>> pm.evaluate(gt, pd).plot.cube("recall", feature="car").to_dict()["layer"][0]["encoding"]["color"]["field"]
    'recall'
    """
    if metric not in s.METRIC_COLUMNS:
        raise ValueError(f"metric must be one of {s.METRIC_COLUMNS}, got {metric!r}.")
    ev._check_feature(feature, "feature")
    if feature is None:
        frame = ev.overall.filter(pl.col(s.AVERAGE) == "micro")
    else:
        frame = ev.cube.filter(pl.col(s.FEATURE) == feature)
    frame = _slice_label(frame, ev.by)
    chart = alt.Chart(frame).mark_rect().encode(
        x=alt.X(f"{s.IOU_THRESHOLD}:O", title="IoU threshold"),
        y=alt.Y(f"{s.CONFIDENCE_THRESHOLD}:O", title="confidence threshold", sort="descending"),
        color=alt.Color(f"{metric}:Q", scale=alt.Scale(scheme="viridis")),
        tooltip=[s.CONFIDENCE_THRESHOLD, s.IOU_THRESHOLD, alt.Tooltip(metric, format=".4f")])
    text = chart.mark_text(fontSize=9).encode(
        text=alt.Text(f"{metric}:Q", format=".2f"),
        color=alt.condition(alt.datum[metric] > 0.6, alt.value("black"), alt.value("white")))
    out = alt.layer(chart, text).properties(
        width=330, height=330, title=f"{metric} — {feature or 'all features (micro)'}")
    return out.facet(column=alt.Column(f"{SLICE}:N", title=None)) if ev.by else out


def distribution(ev, metric: str = "f1", by: str | None = "split", *, confidence: float = 0.5,
                 iou: float = 0.5, bins: int = 20):
    """Histograms of a per-data-row metric at one cell, one per value of ``by`` (a ``by``
    column of the evaluation, or ``"feature"`` for one per class over ``ev.data_row_features``;
    ``None`` or a column the evaluation has not: one histogram).

    Examples
    --------
    >>> import polars_metrics as pm
    >>> gt, pd = pm.synthetic.detections(n_images=20, n_classes=3, seed=1)
    >>> chart = pm.evaluate(gt, pd, by="split").plot.distribution("f1", by="split")
    >>> chart.to_dict()["mark"]["type"]
    'bar'
    """
    c = ev._threshold(confidence, s.CONFIDENCE_THRESHOLD)
    t = ev._threshold(iou, s.IOU_THRESHOLD)
    source = ev.data_row_features if by == s.FEATURE else ev.data_rows
    frame = source.filter((pl.col(s.CONFIDENCE_THRESHOLD) == c) & (pl.col(s.IOU_THRESHOLD) == t))
    group = by if by == s.FEATURE or by in ev.by else None
    cols = [metric] + ([group] if group else [])
    enc = dict(x=alt.X(f"{metric}:Q", bin=alt.Bin(maxbins=bins), title=metric),
               y=alt.Y("count():Q", title="data rows"))
    if group:
        enc["color"] = alt.Color(f"{group}:N")
        enc["row"] = alt.Row(f"{group}:N", title=None)
    return alt.Chart(frame.select(cols)).mark_bar().encode(**enc).properties(
        width=360, height=90 if group else 220,
        title=f"Per-data-row {metric} at confidence {c:g}, IoU {t:g}")


def save(chart, path: str | Path, *, scale_factor: float = 1.0) -> Path:
    """Save a chart by the file's suffix: ``.html`` (Vega JavaScript inlined — opens offline),
    ``.png`` / ``.svg`` (rendered by vl-convert) or ``.json`` (the Vega-Lite spec).

    Examples
    --------
    >>> import tempfile, polars_metrics as pm
    >>> gt, pd = pm.synthetic.detections(n_images=10, n_classes=2, seed=1)
    >>> p = pm.plot.save(pm.evaluate(gt, pd).plot.cube(), tempfile.mkdtemp() + "/cube.html")
    >>> "https://" in p.read_text().split("<script")[1][:200]
    False
    """
    path = Path(path)
    if path.suffix == ".html":
        chart.save(path, inline=True)
    elif path.suffix in (".png", ".svg"):
        chart.save(path, scale_factor=scale_factor)
    else:
        chart.save(path)
    return path


def offline() -> str:
    """Render charts in Jupyter with the Vega JavaScript inlined into each output (Altair's
    ``html`` renderer, ``inline`` template, bundles from ``vl-convert``), so a notebook shows
    them with no network. Altair's default renderer loads the JavaScript from a CDN.
    Returns the renderer's name.

    Examples
    --------
    >>> import polars_metrics as pm
    >>> pm.plot.offline()
    'html'
    """
    alt.renderers.enable("html", template="inline")
    return alt.renderers.active


class PlotAccessor:
    """``ev.plot``: the chart functions of this module bound to one evaluation.

    Examples
    --------
    >>> import polars_metrics as pm
    >>> gt, pd = pm.synthetic.detections(n_images=10, n_classes=2, seed=1)
    >>> pm.evaluate(gt, pd).plot
    <plots of <Evaluation profile='labelbox' data_rows=10 ...>: pr_curve, confusion_matrix, cube, distribution>
    """

    def __init__(self, ev) -> None:
        self._ev = ev

    def __repr__(self) -> str:
        return f"<plots of {self._ev!r}: pr_curve, confusion_matrix, cube, distribution>"

    def pr_curve(self, iou: float = 0.5, features=None, *, confidence: float | None = None):
        """See :func:`polars_metrics.views.plot.pr_curve`."""
        return pr_curve(self._ev, iou, features, confidence=confidence)

    def confusion_matrix(self, confidence: float = 0.5, iou: float = 0.5,
                         normalize: str | None = None):
        """See :func:`polars_metrics.views.plot.confusion_matrix`."""
        return confusion_matrix(self._ev, confidence, iou, normalize)

    def cube(self, metric: str = "f1", feature: str | None = None):
        """See :func:`polars_metrics.views.plot.cube`."""
        return cube(self._ev, metric, feature)

    def distribution(self, metric: str = "f1", by: str | None = "split", **kwargs):
        """See :func:`polars_metrics.views.plot.distribution`."""
        return distribution(self._ev, metric, by, **kwargs)
