"""Properties the numbers must have, whatever the data (SPEC §5, DESIGN "Scale").

Counting identities (tp + fn = ground truths, confusion row / column sums, cube = confusion),
the prefix property of the walk (on the naive reference and on the engine), order invariance,
partition invariance through ``pm.partial`` / ``pm.merge`` / ``pm.finalize``, namespace =
function, and ``by=`` slices that add up to the whole.
"""
from __future__ import annotations

import naive
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from strategies import Dataset, datasets, n_examples

import polars_metrics as pm

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.data_too_large])
GRID = ["confidence_threshold", "iou_threshold"]
FRAMES = ("cube", "overall", "confusion", "data_rows", "excluded")


def sort_keys(ds: Dataset, name: str) -> list[str]:
    keys, by = ds.keys, list(ds.kwargs.get("by", []))
    return {
        "cube": [*by, "feature", *GRID],
        "overall": [*by, "average", *GRID],
        "confusion": [*by, *GRID, "gt_feature", "pd_feature"],
        "data_rows": [*keys, *by, *GRID],
        "excluded": keys,
    }[name]


def assert_same_evaluation(a, b, ds: Dataset, *, exact: bool = True) -> None:
    """Every frame identical after sorting (exact floats unless ``exact=False``)."""
    for name in FRAMES:
        fa, fb = getattr(a, name), getattr(b, name)
        order = sort_keys(ds, name)
        assert_frame_equal(
            fa.sort(order, nulls_last=False), fb.sort(order, nulls_last=False),
            check_exact=exact, rel_tol=0, abs_tol=1e-12,
        )


def counted_keys(ds: Dataset) -> pl.DataFrame:
    """Data-row keys present in both tables (the rows that count under `labelbox`)."""
    keys = ds.keys
    return ds.gt.select(keys).unique().join(ds.pd.select(keys).unique(), on=keys, how="semi")


def filter_keys(frame: pl.DataFrame, keys_frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return frame.join(keys_frame, on=keys, how="semi", maintain_order="left")


# --------------------------------------------------------------------------------------------
# Counting identities
# --------------------------------------------------------------------------------------------


@settings(max_examples=n_examples(80), **SETTINGS)
@given(ds=datasets())
def test_counting_identities(ds: Dataset) -> None:
    ev = pm.evaluate(ds.gt, ds.pd, **ds.kwargs)
    by = list(ds.kwargs.get("by", []))
    keys = ds.keys
    counted = counted_keys(ds)
    gt = filter_keys(ds.gt, counted, keys)
    pd = filter_keys(ds.pd, counted, keys).with_columns(pl.col("confidence").fill_null(1.0))
    slice_of = None
    if by:  # attach the slice to every annotation
        meta = ds.kwargs.get("data_rows")
        if meta is None:
            meta = pl.concat([ds.gt.select(*keys, *by), ds.pd.select(*keys, *by)]).unique()
        gt = gt.drop(by, strict=False).join(meta, on=keys, how="left")
        pd = pd.drop(by, strict=False).join(meta, on=keys, how="left")
        slice_of = by

    cube = ev.cube
    # tp + fn = number of ground truths of the feature (counted rows), at every (c, t)
    n_gt = gt.group_by([*(slice_of or []), "feature"]).len("n_gt")
    check = cube.join(n_gt, on=[*by, "feature"], how="left").with_columns(
        pl.col("n_gt").fill_null(0))
    bad = check.filter(pl.col("tp") + pl.col("fn") != pl.col("n_gt"))
    assert bad.is_empty(), bad

    # tp + fp = number of kept predictions of the feature at c
    kept = (
        cube.select(*by, "feature", "confidence_threshold").unique()
        .join(pd.select(*by, "feature", "confidence"), on=[*by, "feature"], how="left")
        .group_by(*by, "feature", "confidence_threshold")
        .agg((pl.col("confidence") >= pl.col("confidence_threshold")).sum().alias("n_pd"))
    )
    check = cube.join(kept, on=[*by, "feature", "confidence_threshold"], how="left")
    bad = check.filter(pl.col("tp") + pl.col("fp") != pl.col("n_pd"))
    assert bad.is_empty(), bad

    # tn is null for boxes; ratios in [0, 1] and null exactly when 0/0
    assert cube["tn"].null_count() == cube.height
    for name, den in [("precision", pl.col("tp") + pl.col("fp")),
                      ("recall", pl.col("tp") + pl.col("fn")),
                      ("f1", 2 * pl.col("tp") + pl.col("fp") + pl.col("fn"))]:
        bad = cube.filter(pl.col(name).is_null() != (den == 0))
        assert bad.is_empty(), (name, bad)
        assert cube.filter((pl.col(name) < 0) | (pl.col(name) > 1)).is_empty()

    # confusion: row sums = ground truths per feature; column sums = kept predictions
    conf = ev.confusion
    rows = (conf.filter(pl.col("gt_feature").is_not_null())
            .group_by(*by, *GRID, "gt_feature").agg(pl.col("count").sum()))
    cube_rows = cube.filter((pl.col("tp") + pl.col("fn")) > 0).select(
        *by, *GRID, pl.col("feature").alias("gt_feature"), (pl.col("tp") + pl.col("fn")).alias("count"))
    assert_frame_equal(rows.sort(pl.all()), cube_rows.sort(pl.all()), check_column_order=False)
    cols = (conf.filter(pl.col("pd_feature").is_not_null())
            .group_by(*by, *GRID, "pd_feature").agg(pl.col("count").sum()))
    cube_cols = cube.filter((pl.col("tp") + pl.col("fp")) > 0).select(
        *by, *GRID, pl.col("feature").alias("pd_feature"), (pl.col("tp") + pl.col("fp")).alias("count"))
    assert_frame_equal(cols.sort(pl.all()), cube_cols.sort(pl.all()), check_column_order=False)
    assert (conf["count"] > 0).all()
    assert conf.filter(pl.col("gt_feature").is_null() & pl.col("pd_feature").is_null()).is_empty()

    # the cube is the confusion matrix: tp = M[f, f]
    diag = conf.filter(pl.col("gt_feature") == pl.col("pd_feature")).select(
        *by, *GRID, pl.col("gt_feature").alias("feature"), pl.col("count").alias("diag"))
    check = cube.join(diag, on=[*by, *GRID, "feature"], how="left").with_columns(
        pl.col("diag").fill_null(0))
    assert (check["tp"] == check["diag"]).all()

    # overall counts are sums over features; micro and macro rows carry the same counts
    sums = cube.group_by(*by, *GRID).agg(pl.col("tp", "fp", "fn").sum())
    for average in ("micro", "macro"):
        got = ev.overall.filter(pl.col("average") == average).select(*by, *GRID, "tp", "fp", "fn")
        assert_frame_equal(got.sort(pl.all()), sums.sort(pl.all()), check_column_order=False)
    # data-row counts add up to the overall counts
    per_row = ev.data_rows.group_by(*by, *GRID).agg(pl.col("tp", "fp", "fn").sum())
    assert_frame_equal(per_row.sort(pl.all()), sums.sort(pl.all()), check_column_order=False)

    # monotone: matches only disappear as t rises; kept predictions only as c rises
    mono = cube.sort([*by, "feature", *GRID]).with_columns(
        pl.col("tp").diff().over([*by, "feature", "confidence_threshold"]).alias("d_tp"))
    assert mono.filter(pl.col("d_tp") > 0).is_empty()
    kept_c = cube.sort([*by, "feature", "iou_threshold", "confidence_threshold"]).with_columns(
        (pl.col("tp") + pl.col("fp")).diff().over([*by, "feature", "iou_threshold"]).alias("d"))
    assert kept_c.filter(pl.col("d") > 0).is_empty()

    # every input data row is accounted for: counted, or excluded with its reason
    frames = [ds.gt.select(keys), ds.pd.select(keys)]
    if ds.kwargs.get("data_rows") is not None:
        frames.append(ds.kwargs["data_rows"].select(keys))
    all_keys = set(pl.concat(frames).unique().rows())
    excluded_keys = ev.excluded.select(keys).rows()
    counted_rows = set(counted.rows())
    assert len(excluded_keys) == len(set(excluded_keys))  # each row listed once
    assert set(excluded_keys) | counted_rows == all_keys
    assert not set(excluded_keys) & counted_rows
    assert set(ev.data_rows.select(keys).unique().rows()) == counted_rows


# --------------------------------------------------------------------------------------------
# The prefix property (SPEC §5)
# --------------------------------------------------------------------------------------------


@settings(max_examples=n_examples(150), **SETTINGS)
@given(ds=datasets(max_rows=4, max_gt=6, max_pd=7, with_thresholds=False))
def test_prefix_property_naive(ds: Dataset) -> None:
    """The walk at t keeps exactly the t=0 walk's matches with iou > t, in the same order."""
    keys = ds.keys
    gts, pds = naive._read(ds.gt, keys, False), naive._read(ds.pd, keys, True)
    for key in {a.key for a in gts}:
        row_gts = [g for g in gts if g.key == key]
        for c in (0.0, 0.5, 1.0):
            kept = [p for p in pds if p.key == key and p.confidence >= c]
            at_zero = naive.greedy_walk(row_gts, kept, 0.0)
            for t in naive.normalize_thresholds(None) + [0.25, 1 / 3, 0.75]:
                assert naive.greedy_walk(row_gts, kept, t) == [m for m in at_zero if m[2] > t]


def engine_matches(ev, c: float, t: float, keys: list[str]) -> set[tuple]:
    """(*key, gt_id, pd_id) of every matched pair at (c, t), through ev.examples."""
    cells = ev.confusion.filter(
        (pl.col("confidence_threshold") == c) & (pl.col("iou_threshold") == t)
        & pl.col("gt_feature").is_not_null() & pl.col("pd_feature").is_not_null()
    ).select("gt_feature", "pd_feature").unique().rows()
    out = set()
    for g, p in cells:
        ex = ev.examples(gt_feature=g, pd_feature=p, confidence=c, iou=t)
        out |= {tuple(r) for r in ex.select(*keys, "gt_id", "pd_id", "iou").rows()}
    return out


@settings(max_examples=n_examples(40), **SETTINGS)
@given(ds=datasets(max_rows=4, max_gt=6, max_pd=7, with_thresholds=False, by_modes=("none",)))
def test_prefix_property_engine(ds: Dataset) -> None:
    ts = [0.0, 0.3, 0.5, 0.7, 1.0]
    cs = [0.0, 0.5]
    ev = pm.evaluate(ds.gt, ds.pd, confidence_thresholds=cs, iou_thresholds=ts,
                     **{k: v for k, v in ds.kwargs.items() if k == "data_row"})
    for c in cs:
        at_zero = engine_matches(ev, c, 0.0, ds.keys)
        for t in ts:
            got = engine_matches(ev, c, t, ds.keys)
            assert got == {m for m in at_zero if m[-1] > t}, (c, t)
    assert not engine_matches(ev, 0.0, 1.0, ds.keys)  # strict test: nothing matches at 1.0


# --------------------------------------------------------------------------------------------
# Order invariance
# --------------------------------------------------------------------------------------------


def shuffle_as_blocks(frame: pl.DataFrame, keys: list[str], rank: dict) -> pl.DataFrame:
    """Reorder whole data rows, keeping each row's annotations in their relative order."""
    return (
        frame.with_row_index("_pos")
        .with_columns(pl.struct(keys).map_elements(lambda k: rank[tuple(k.values())],
                                                   return_dtype=pl.Int64).alias("_rank"))
        .sort("_rank", "_pos").drop("_rank", "_pos")
    )


@settings(max_examples=n_examples(60), **SETTINGS)
@given(ds=datasets(ids=("int", "str")), data=st.data())
def test_data_row_order_does_not_matter(ds: Dataset, data) -> None:
    keys = ds.keys
    all_keys = pl.concat([ds.gt.select(keys), ds.pd.select(keys)]).unique().rows()
    order = data.draw(st.permutations(all_keys))
    rank = {k: i for i, k in enumerate(order)}
    gt2, pd2 = (shuffle_as_blocks(f, keys, rank) if f.height else f for f in (ds.gt, ds.pd))
    a = pm.evaluate(ds.gt, ds.pd, **ds.kwargs)
    b = pm.evaluate(gt2, pd2, **ds.kwargs)
    assert_same_evaluation(a, b, ds)


@settings(max_examples=n_examples(40), **SETTINGS)
@given(ds=datasets(coordinates="continuous", ids=("int", "str"), max_gt=6, max_pd=8),
       data=st.data())
def test_full_shuffle_does_not_matter_without_ties(ds: Dataset, data) -> None:
    """On tie-free data even the order inside a data row cannot matter."""
    gt2 = ds.gt.sample(fraction=1.0, shuffle=True, seed=data.draw(st.integers(0, 1000)))
    pd2 = ds.pd.sample(fraction=1.0, shuffle=True, seed=data.draw(st.integers(0, 1000)))
    a = pm.evaluate(ds.gt, ds.pd, **ds.kwargs)
    b = pm.evaluate(gt2, pd2, **ds.kwargs)
    assert_same_evaluation(a, b, ds)
    for c in a.cube["confidence_threshold"].unique().to_list()[:2]:
        for t in a.cube["iou_threshold"].unique().to_list()[:3]:
            assert engine_matches(a, c, t, ds.keys) == engine_matches(b, c, t, ds.keys)


# --------------------------------------------------------------------------------------------
# Partition invariance (state.py)
# --------------------------------------------------------------------------------------------


def split_by_data_row(ds: Dataset, chosen: list[bool]) -> tuple[Dataset, Dataset]:
    keys = ds.keys
    frames = [ds.gt.select(keys), ds.pd.select(keys)]
    meta = ds.kwargs.get("data_rows")
    if meta is not None:
        frames.append(meta.select(keys))
    universe = pl.concat(frames).unique().sort(keys)
    mask = pl.Series(chosen[: universe.height] + [False] * (universe.height - len(chosen)),
                     dtype=pl.Boolean)
    halves = []
    for side in (universe.filter(mask), universe.filter(~mask)):
        kwargs = dict(ds.kwargs)
        if meta is not None:
            kwargs["data_rows"] = filter_keys(meta, side, keys)
        halves.append(Dataset(filter_keys(ds.gt, side, keys), filter_keys(ds.pd, side, keys),
                              kwargs))
    return halves[0], halves[1]


@settings(max_examples=n_examples(60), **SETTINGS)
@given(ds=datasets(ids=("int", "str")), chosen=st.lists(st.booleans(), max_size=8))
def test_partial_merge_equals_whole(ds: Dataset, chosen) -> None:
    whole = pm.evaluate(ds.gt, ds.pd, **ds.kwargs)
    a, b = split_by_data_row(ds, chosen)
    pa = pm.partial(a.gt, a.pd, **a.kwargs)
    pb = pm.partial(b.gt, b.pd, **b.kwargs)
    assert_same_evaluation(pm.finalize(pm.merge(pa, pb)), whole, ds)
    assert_same_evaluation(pm.finalize(pa.merge(pb)), whole, ds)
    assert_same_evaluation(pm.finalize(pm.merge(pb, pa)), whole, ds)
    merged = pm.finalize(pm.merge(pa, pb))
    for c in whole.cube["confidence_threshold"].unique().to_list()[:2]:
        for t in whole.cube["iou_threshold"].unique().to_list()[:2]:
            assert engine_matches(merged, c, t, ds.keys) == engine_matches(whole, c, t, ds.keys)


@settings(max_examples=n_examples(30), **SETTINGS)
@given(ds=datasets(ids=("int",)), chosen=st.lists(st.sampled_from([0, 1, 2]), max_size=8))
def test_three_way_merge_is_associative(ds: Dataset, chosen) -> None:
    whole = pm.evaluate(ds.gt, ds.pd, **ds.kwargs)
    first, rest = split_by_data_row(ds, [x == 0 for x in chosen])
    second, third = split_by_data_row(rest, [x == 1 for x in chosen if x != 0])
    parts = [pm.partial(d.gt, d.pd, **d.kwargs) for d in (first, second, third)]
    left = pm.merge(pm.merge(parts[0], parts[1]), parts[2])
    right = pm.merge(parts[0], pm.merge(parts[1], parts[2]))
    assert_same_evaluation(pm.finalize(left), whole, ds)
    assert_same_evaluation(pm.finalize(right), whole, ds)


# --------------------------------------------------------------------------------------------
# Namespace and slices
# --------------------------------------------------------------------------------------------


@settings(max_examples=n_examples(25), **SETTINGS)
@given(ds=datasets())
def test_namespace_equals_function(ds: Dataset) -> None:
    a = pm.evaluate(ds.gt, ds.pd, **ds.kwargs)
    b = ds.gt.pm.evaluate(ds.pd, **ds.kwargs)
    for name in FRAMES:
        assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)


@settings(max_examples=n_examples(50), **SETTINGS)
@given(ds=datasets(by_modes=("table", "data_rows")))
def test_slices_add_up_to_the_whole(ds: Dataset) -> None:
    by = ds.kwargs["by"]
    sliced = pm.evaluate(ds.gt, ds.pd, **ds.kwargs)
    plain_kwargs = {k: v for k, v in ds.kwargs.items() if k not in ("by", "data_rows")}
    whole = pm.evaluate(ds.gt.drop(by, strict=False), ds.pd.drop(by, strict=False),
                        **plain_kwargs)
    keys = ds.keys
    for frame in (sliced.cube, sliced.overall, sliced.confusion, sliced.data_rows):
        assert frame.columns[: len(by)] == by or frame.columns[len(keys): len(keys) + len(by)] == by

    summed = sliced.cube.group_by("feature", *GRID).agg(pl.col("tp", "fp", "fn").sum())
    assert_frame_equal(summed.sort(pl.all()),
                       whole.cube.select("feature", *GRID, "tp", "fp", "fn").sort(pl.all()),
                       check_column_order=False)
    summed = sliced.confusion.group_by(*GRID, "gt_feature", "pd_feature").agg(pl.col("count").sum())
    assert_frame_equal(summed.sort(pl.all()), whole.confusion.sort(pl.all()),
                       check_column_order=False)
    # a data row's own numbers do not depend on the slicing
    assert_frame_equal(sliced.data_rows.drop(by).sort(keys + GRID),
                       whole.data_rows.sort(keys + GRID), check_exact=True)
    # rows listed only in a data_rows= frame are extra exclusions of the sliced run
    assert_frame_equal(
        sliced.excluded.filter(pl.col("reason") != naive.REASON_NO_ANNOTATIONS)
        .select(whole.excluded.columns).sort(keys),
        whole.excluded.sort(keys),
    )


@settings(max_examples=n_examples(50), **SETTINGS)
@given(ds=datasets(by_modes=("none", "table", "data_rows")))
def test_frames_come_sorted(ds: Dataset) -> None:
    """The confusion frame is emitted in (by, c, t, gt, pd) order, None last, without a sort;
    the cube and data-row frames are in their key order too."""
    ev = pm.evaluate(ds.gt, ds.pd, **ds.kwargs)
    for name in ("cube", "confusion", "data_rows"):
        frame = getattr(ev, name)
        assert_frame_equal(frame, frame.sort(sort_keys(ds, name), nulls_last=True,
                                             maintain_order=True), check_exact=True)
