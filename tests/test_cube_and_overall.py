"""``metrics.cube_and_overall``: the cube and overall frames do not depend on the order the
additive counts come in (a merge, a stream or a Ray run hands them over in any order), bit for
bit, with and without ``by`` slices and ``zero_tn``; micro rows are ratios of summed counts,
macro rows means of the per-feature ratios."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import polars_metrics as pm
from polars_metrics import metrics
from polars_metrics.synthetic import detections

CELL = (pl.col("confidence_threshold") == 0.5) & (pl.col("iou_threshold") == 0.5)


def counts_of(by: tuple[str, ...]) -> pl.DataFrame:
    gt, pd = detections(60, n_classes=6, seed=4, fp_per_image=4.0)
    return pm.partial(gt, pd, by=list(by) or None).counts


@pytest.mark.parametrize(("by", "zero_tn"), [((), False), (("split",), False), (("split",), True)])
def test_any_row_order_of_the_counts_gives_the_same_frames(by, zero_tn):
    counts = counts_of(by)
    assert counts.height > 100 and counts["iou_sum"].sum() > 0  # float sums to reorder
    cube, overall = metrics.cube_and_overall(counts, by, zero_tn)
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(counts.height)
        cube2, overall2 = metrics.cube_and_overall(counts[order], by, zero_tn)
        assert_frame_equal(cube2, cube, check_exact=True)
        assert_frame_equal(overall2, overall, check_exact=True)


def test_micro_is_the_ratio_of_sums_and_macro_the_mean_of_ratios():
    counts = counts_of(())
    cube, overall = metrics.cube_and_overall(counts, (), zero_tn=False)
    rows, per_feature = counts.filter(CELL), cube.filter(CELL)
    tp, gt, pd = (int(rows[c].sum()) for c in ("tp", "gt_count", "pd_count"))
    micro = overall.filter(CELL & (pl.col("average") == "micro")).row(0, named=True)
    macro = overall.filter(CELL & (pl.col("average") == "macro")).row(0, named=True)
    assert (micro["tp"], micro["fp"], micro["fn"]) == (tp, pd - tp, gt - tp)
    assert (macro["tp"], macro["fp"], macro["fn"]) == (tp, pd - tp, gt - tp)
    assert micro["precision"] == pytest.approx(tp / pd, rel=1e-12)
    assert micro["recall"] == pytest.approx(tp / gt, rel=1e-12)
    assert micro["iou"] == pytest.approx(rows["iou_sum"].sum() / rows["iou_rows"].sum(), rel=1e-12)
    for c in ("precision", "recall", "f1", "iou"):
        defined = [v for v in per_feature[c].to_list() if v is not None]
        assert macro[c] == pytest.approx(sum(defined) / len(defined), rel=1e-12), c
    assert macro["precision"] != pytest.approx(micro["precision"], rel=1e-6)  # tells them apart
