"""ev.plot charts save offline (HTML with inlined JS, PNG, SVG); the CLI writes the report."""
from __future__ import annotations

from pathlib import Path

import pytest

import polars_metrics as pm
from polars_metrics.cli import main

ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture(scope="module")
def ev():
    gt, pd = pm.synthetic.detections(n_images=40, n_classes=5, seed=3)
    return pm.evaluate(gt, pd, by="split")


@pytest.mark.parametrize("name", ["pr_curve", "confusion_matrix", "cube", "distribution"])
def test_plots_save_offline(ev, name, tmp_path):
    chart = getattr(ev.plot, name)()
    html = pm.plot.save(chart, tmp_path / f"{name}.html").read_text()
    assert "<script src=" not in html and "cdn.jsdelivr" not in html
    ARTIFACTS.mkdir(exist_ok=True)
    png = pm.plot.save(chart, ARTIFACTS / f"plot_{name}.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert pm.plot.save(chart, tmp_path / f"{name}.svg").read_text().lstrip().startswith("<svg")


def test_plot_arguments(ev):
    assert ev.plot.confusion_matrix(0.5, 0.5, normalize="pd") is not None
    with pytest.raises(ValueError, match="normalize"):
        ev.plot.confusion_matrix(normalize="rows")
    with pytest.raises(ValueError, match="metric"):
        ev.plot.cube("accuracy")
    ev.plot.distribution("recall", by="feature")


def test_cli_report(tmp_path):
    gt, pd = pm.synthetic.detections(n_images=10, n_classes=3, seed=1)
    gt.write_parquet(tmp_path / "gt.parquet")
    pd.write_parquet(tmp_path / "pd.parquet")
    out = tmp_path / "r.html"
    assert main(["report", "--ground-truth", str(tmp_path / "gt.parquet"), "--predictions",
                 str(tmp_path / "pd.parquet"), "-o", str(out), "--by", "split", "-q"]) == 0
    assert 'data-testid="data-row-table"' in out.read_text()
    assert main(["evaluate", "--ground-truth", str(tmp_path / "gt.parquet"), "--predictions",
                 str(tmp_path / "pd.parquet"), "--out", str(tmp_path / "o"), "--report",
                 str(tmp_path / "r2.html"), "-q"]) == 0
    assert (tmp_path / "r2.html").exists()


def test_the_report_is_reproducible(tmp_path):
    """The same evaluation (or a new evaluation of the same tables) writes the same bytes."""
    gt, pd = pm.synthetic.detections(60, seed=2)
    ev = pm.evaluate(gt, pd, by="split", class_aware=True)
    first = pm.report(ev, tmp_path / "a.html").read_bytes()
    assert pm.report(ev, tmp_path / "b.html").read_bytes() == first
    again = pm.evaluate(gt, pd, by="split", class_aware=True)
    assert pm.report(again, tmp_path / "c.html").read_bytes() == first
