"""The report's analysis sections in a real headless Chromium: error types, calibration and the
label-error queues. The sliders are moved and every number shown is checked against the frames
of ``ev.errors``, ``ev.calibration`` / ``ev.calibration_error``, ``ev.suspects`` and
``ev.uncertain`` at that cell; screenshots go to tests/artifacts/ (git-ignored)."""
from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import polars as pl
import pytest

import polars_metrics as pm
from polars_metrics import schema as s
from tests.test_report_browser import ARTIFACTS, _open, _set

ERROR_TYPES = ["classification", "localization", "both", "duplicate", "background", "missed"]


@pytest.fixture(scope="module")
def evaluation():
    gt, pd = pm.synthetic.detections(n_images=40, n_classes=5, seed=3)
    return gt, pd, pm.evaluate(gt, pd, by="split")


def _close(want, shown) -> bool:
    if want is None or (isinstance(want, float) and math.isnan(want)):
        return shown in ("", None)
    return shown not in ("", None) and math.isclose(float(shown), float(want), rel_tol=1e-12,
                                                     abs_tol=1e-12)


def _check_errors(page, ev, c, t, split=None):
    frame = ev.errors(c, t)
    if split is not None:
        frame = frame.filter(pl.col("split") == split)
    want = {}
    for f, typ, n in frame.select(s.FEATURE, s.ERROR_TYPE, s.COUNT).rows():
        want.setdefault(f or "all features", [0] * 6)[ERROR_TYPES.index(typ)] = n
    shown = page.eval_on_selector_all('[data-testid="error-row"]',
                                      "rs => rs.map(r => [r.dataset.feature, r.dataset.counts])")
    assert {f: [int(x) for x in v.split(",")] for f, v in shown} == want, (c, t)
    assert shown[0][0] == "all features"
    totals = [sum(map(int, v.split(","))) for _, v in shown[1:]]
    assert totals == sorted(totals, reverse=True)
    return frame


def _check_calibration(page, ev, t, split, bins=10):
    summary = ev.calibration_error(t, bins).filter(pl.col("split") == split)
    rows = page.eval_on_selector_all('[data-testid="cal-row"]', """rs => rs.map(r => [r.dataset.feature,
        Object.fromEntries([...r.querySelectorAll('[data-col]')].map(td => [td.dataset.col, td.dataset.value]))])""")
    want = {(f or "all (micro)"): r for f, *r in summary.select(s.FEATURE, s.COUNT, "ece", "mce").rows()}
    assert {f for f, _ in rows} == set(want)
    for f, v in rows:
        n, ece, mce = want[f]
        assert int(v["count"]) == n and _close(ece, v["ece"]) and _close(mce, v["mce"]), (f, t)
    # the diagram (micro): every non-empty bin's count, accuracy and mean confidence
    table = ev.calibration(t, bins).filter(pl.col("split") == split, pl.col(s.FEATURE).is_null(),
                                           pl.col(s.COUNT) > 0)
    bars = page.eval_on_selector_all('[data-testid="cal-bin"]', "bs => bs.map(b => [+b.dataset.bin, "
                                     "+b.dataset.count, b.dataset.accuracy, b.dataset.confidence])")
    assert len(bars) == table.height
    for (b, n, acc, conf), row in zip(bars, table.iter_rows(named=True), strict=True):
        assert (b, n) == (row["bin"], row[s.COUNT])
        assert _close(row["accuracy"], acc) and _close(row["confidence"], conf)
    summ = page.locator('[data-testid="cal-summary"]')
    micro = want["all (micro)"]
    assert _close(micro[1], summ.get_attribute("data-ece")) and _close(micro[2], summ.get_attribute("data-mce"))


def _rows(page, testid):
    return page.eval_on_selector_all(f'[data-testid="{testid}"]', """rs => rs.map(r => [r.dataset.key,
        Object.fromEntries([...r.querySelectorAll('[data-col]')].map(td => [td.dataset.col, td.dataset.value]))])""")


def _check_queues(page, ev, c, t, split, k=50):
    sus = ev.suspects(c, t).filter(pl.col("split") == split).head(k)
    shown = _rows(page, "suspect-row")
    assert len(shown) == sus.height, (c, t)
    for (key, v), row in zip(shown, sus.iter_rows(named=True), strict=True):
        assert key == row[s.DATA_ROW] and v["reason"] == row[s.REASON], (c, t)
        assert _close(row["score"], v["score"]) and _close(row[s.CONFIDENCE], v["conf"])
        assert _close(row[s.IOU], v["iou"])
        assert v["gt"] == ("" if row[s.GT_ID] is None else str(row[s.GT_ID]))
        assert v["pd"] == ("" if row[s.PD_ID] is None else str(row[s.PD_ID]))
        assert (v["gf"] or None, v["pf"] or None) == (row[s.GT_FEATURE], row[s.PD_FEATURE])
    unc = ev.uncertain(c, t).filter(pl.col("split") == split).head(k)
    shown = _rows(page, "uncertain-row")
    assert len(shown) == unc.height
    for (key, v), row in zip(shown, unc.iter_rows(named=True), strict=True):
        assert key == row[s.DATA_ROW] and v["pd"] == str(row[s.PD_ID])
        assert _close(row["margin"], v["margin"]) and _close(row[s.CONFIDENCE], v["conf"])
        assert v["tp"] == ("" if row["tp"] is None else str(row["tp"]).lower())
    return sus.height, unc.height


def test_analysis_sections_follow_the_sliders(browser, evaluation, tmp_path):
    gt, pd, ev = evaluation
    page, requested, errors = _open(browser, ev.report(tmp_path / "a.html", analysis="all"))
    split = page.locator('[data-testid="slice"] option:checked').inner_text()
    sizes = []
    for c, t in [(0.5, 0.5), (0.3, 0.7), (0.8, 0.2), (0.0, 0.9), (0.1, 0.1)]:
        _set(page, "confidence-threshold", c)
        _set(page, "iou-threshold", t)
        frame = _check_errors(page, ev, c, t, split)
        # the types sum to the cell's FP + FN (issue's property), as shown
        cube = ev.cube.filter(pl.col(s.CONFIDENCE_THRESHOLD) == c, pl.col(s.IOU_THRESHOLD) == t,
                              pl.col("split") == split)
        assert frame.filter(pl.col(s.FEATURE).is_not_null())[s.COUNT].sum() <= \
            cube[s.FP].sum() + cube[s.FN].sum()
        _check_calibration(page, ev, t, split)
        sizes.append(_check_queues(page, ev, c, t, split))
    assert all(a > 0 and b > 0 for a, b in sizes[:2]), sizes  # the checks compared rows
    page.locator('[data-testid="slice"]').select_option("1")  # another slice
    split = page.locator('[data-testid="slice"] option:checked').inner_text()
    _check_errors(page, ev, 0.1, 0.1, split)
    _check_queues(page, ev, 0.1, 0.1, split)
    _set(page, "iou-threshold", 0.0)  # below the background IoU: said, not drawn
    assert page.locator('[data-testid="error-row"]').count() == 0
    assert "background IoU" in page.locator("#err-note").inner_text()
    assert not requested and not errors


def test_default_takes_queues_at_the_start_cell_and_error_types_on_its_row_and_column(
        browser, evaluation, tmp_path):
    """analysis=True (the default) bounds the report's cost: the queues at the start cell,
    error types at its confidence row and IoU column, calibration at every IoU; elsewhere the
    page says what is not taken and how to take it."""
    gt, pd, ev = evaluation
    page, requested, errors = _open(browser, ev.report(tmp_path / "b.html", confidence=0.4,
                                                       iou=0.6, queue_size=5, calibration_bins=4))
    split = page.locator('[data-testid="slice"] option:checked').inner_text()
    _check_queues(page, ev, 0.4, 0.6, split, k=5)
    _check_errors(page, ev, 0.4, 0.6, split)
    _set(page, "iou-threshold", 0.3)  # same confidence row: error types taken, queues not
    _check_errors(page, ev, 0.4, 0.3, split)
    _check_calibration(page, ev, 0.3, split, bins=4)
    assert page.locator('[data-testid="suspect-row"]').count() == 0
    assert "Not taken at this cell" in page.locator("#sus-note").inner_text()
    _set(page, "confidence-threshold", 0.7)  # off the row and column: said
    assert page.locator('[data-testid="error-row"]').count() == 0
    assert "not taken at this cell" in page.locator("#err-not-taken").inner_text()
    assert not requested and not errors


def test_analysis_false_and_bad_options(evaluation, tmp_path):
    gt, pd, ev = evaluation
    html = ev.report(tmp_path / "c.html", analysis=False).read_text()
    data = json.loads(html.split("const PM_DATA = ", 1)[1].split(";</script>", 1)[0])
    assert data["runs"][0]["analysis"] is None
    for kwargs in ({"analysis": "some"}, {"analysis": 1}, {"calibration_bins": 0},
                   {"queue_size": 2.5}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            ev.report(tmp_path / "d.html", **kwargs)


def test_coco_error_types_and_delta_ap(browser, evaluation, tmp_path):
    gt, pd, _ = evaluation
    ev = pm.evaluate(gt, pd, profile="coco", errors=True)
    page, requested, errors = _open(browser, ev.report(tmp_path / "coco.html"))
    for c, t in [(0.5, 0.5), (0.0, 0.5), (0.5, 0.75)]:  # the start cell's row and column
        _set(page, "confidence-threshold", c)
        _set(page, "iou-threshold", t)
        frame = _check_errors(page, ev, c, t)
        dap = dict(frame.filter(pl.col(s.FEATURE).is_null()).select(s.ERROR_TYPE, s.DELTA_AP).rows())
        shown = page.eval_on_selector_all('[data-testid="dap-bar"]',
                                          "bs => bs.map(b => [b.dataset.type, b.dataset.value])")
        assert len(shown) == 6
        for typ, v in shown:
            assert _close(dap[typ], v), (typ, c, t)
    assert "COCO engine" in page.locator("#cal-note").inner_text()  # said, not failed
    assert "COCO engine" in page.locator("#sus-note").inner_text()
    page.screenshot(path=str(ARTIFACTS / "report_errors_coco.png"), full_page=True)
    assert not requested and not errors


def test_suspects_with_thumbnails(browser, evaluation, tmp_path):
    from PIL import Image

    gt, pd, ev = evaluation
    for key in gt[s.DATA_ROW].unique().to_list():
        Image.new("RGB", (640, 480), (200, 210, 225)).save(tmp_path / f"{key}.png")
    path = ev.report(tmp_path / "m.html", media=str(tmp_path), ground_truth=gt, predictions=pd)
    page, requested, errors = _open(browser, path)
    assert page.locator('[data-testid="suspect-row"] img').count() > 0
    page.locator("#queue-section").screenshot(path=str(ARTIFACTS / "report_suspects.png"))
    assert not requested and not errors


@pytest.mark.slow
def test_analysis_at_5000_images(browser, tmp_path):
    """5,000 images, 80 classes, by split: measures (not asserts) write time, size and open time
    with and without the analysis sections into tests/artifacts/report_analysis_scale.json."""
    gt, pd = pm.synthetic.detections(5000)
    ev = pm.evaluate(gt, pd, by="split")
    figures = {}
    for name, analysis in (("without", False), ("with", True)):
        t0 = time.perf_counter()
        path = ev.report(tmp_path / f"{name}.html", analysis=analysis)
        write_s = time.perf_counter() - t0
        page, requested, errors = _open(browser, path)
        figures[name] = {"file_mb": path.stat().st_size / 1e6, "write_s": write_s,
                         "open_ms": page.evaluate("window.pmReadyMs")}
        assert not requested and not errors
    split = page.locator('[data-testid="slice"] option:checked').inner_text()
    _check_queues(page, ev, 0.5, 0.5, split)
    _set(page, "iou-threshold", 0.7)
    _check_errors(page, ev, 0.5, 0.7, split)
    _check_calibration(page, ev, 0.7, split)
    ARTIFACTS.mkdir(exist_ok=True)
    for sec in ("errors-section", "cal-section", "queue-section"):
        page.locator(f"#{sec}").screenshot(path=str(ARTIFACTS / f"report_5k_{sec}.png"))
    figures["load_average"] = [round(x, 1) for x in os.getloadavg()]
    (ARTIFACTS / "report_analysis_scale.json").write_text(json.dumps(figures, indent=1))
    print(figures)


def test_report_of_a_comparison(browser, evaluation, tmp_path):
    """pm.report(pm.compare(...)): each Δ shown is cmp.deltas' delta with its interval and
    p-value; the flip table counts cmp.flips; the gallery's per-data-row deltas equal
    cmp.data_rows and sort."""
    gt, pd, _ = evaluation
    rng = np.random.default_rng(0)
    pd_b = pd.filter(pl.Series(rng.random(pd.height) < 0.85))
    cmp = pm.compare(gt, {"A": pd, "B": pd_b}, by="split", n_resamples=200, seed=0)
    page, requested, errors = _open(browser, pm.report(cmp, tmp_path / "cmp.html"))
    split = page.locator('[data-testid="slice"] option:checked').inner_text()
    for c, t in [(0.5, 0.5), (0.5, 0.8), (0.2, 0.5)]:  # the start cell's row and column
        _set(page, "confidence-threshold", c)
        _set(page, "iou-threshold", t)
        d = cmp.deltas.filter(pl.col("run") == "B", pl.col("split") == split,
                              pl.col(s.CONFIDENCE_THRESHOLD) == c, pl.col(s.IOU_THRESHOLD) == t)
        want = {((f or f"all ({a})"), m): r for f, a, m, *r in d.select(
            s.FEATURE, s.AVERAGE, pl.col("metric").cast(pl.String), "delta", "ci_low", "ci_high",
            "p_value").rows()}
        shown = page.eval_on_selector_all('[data-testid="compare-row"] td[data-lo]', """ts => ts.map(t =>
            [t.closest('tr').dataset.feature, t.dataset.delta, t.dataset.value, t.dataset.lo, t.dataset.hi, t.dataset.p])""")
        assert len(shown) == 3 * (len(cmp.evaluations["A"].features) + 2)
        checked = 0
        for f, m, *vals in shown:
            if (f, m) not in want:  # a feature absent from this slice: nothing to show
                assert all(v == "" for v in vals), (f, m, vals)
                continue
            for w, v in zip(want[(f, m)], vals, strict=True):
                assert _close(w, v), (f, m, c, t, w, v)
            checked += 1
        assert checked >= 3
        all_flips = cmp.flips(c, t)
        flips = all_flips.join(gt.select(s.DATA_ROW, "split").unique(), on=s.DATA_ROW).filter(
            pl.col("split") == split)
        labels = flips["category"].dtype.categories.to_list()
        expect = {}
        for f, cat in flips.select(s.FEATURE, pl.col("category").cast(pl.String)).rows():
            for key in (f, "all features"):
                expect.setdefault(key, [0] * 4)[labels.index(cat)] += 1
        rows = page.eval_on_selector_all('[data-testid="flip-row"]', "rs => rs.map(r => [r.dataset.feature, r.dataset.counts])")
        assert {f: [int(x) for x in v.split(",")] for f, v in rows} == expect
        assert sum(expect["all features"]) == flips.height > 0  # sums to the ground truths
        assert cmp.flip_counts(c, t).filter(pl.col(s.FEATURE).is_null())["total"].item() == all_flips.height
    # per-data-row deltas in the gallery (run B selected), sorted by Δ f1
    page.locator('[data-testid="run"]').select_option("1")
    page.locator('[data-testid="data-row-table"] th[data-sort="delta_f1"]').click()
    dr = {r[s.DATA_ROW]: r for r in cmp.data_rows(0.2, 0.5).iter_rows(named=True)}
    shown = page.eval_on_selector_all('[data-testid="data-row"]', """rs => rs.map(r => [r.dataset.key,
        r.querySelector('[data-metric="delta_f1"]').dataset.value, r.querySelector('[data-metric="delta_recall"]').dataset.value])""")
    assert shown
    for key, f1, rec in shown:
        assert _close(dr[key]["delta_f1"], f1) and _close(dr[key]["delta_recall"], rec), key
    vals = [float(v) for _, v, _ in shown if v != ""]
    assert vals == sorted(vals, reverse=True)
    page.locator("#compare-section").screenshot(path=str(ARTIFACTS / "report_comparison.png"))
    assert not requested and not errors
