"""Streamed evaluation (polars_metrics/stream/): every frame identical to the in-memory
evaluation whatever the batching (1, 4, 64 batches, any order), for Parquet files, globs, hive
directories and LazyFrames; resume and incremental runs reuse finished batches; bad batching
is refused with a clear message."""
from __future__ import annotations

import pickle

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from strategies import datasets, n_examples
from test_classification import radio_tables
from test_kinds_pipeline import random_rows, table

import polars_metrics as pm
from polars_metrics.errors import PolarsMetricsError, ProfileError
from polars_metrics.stream import evaluate_stream, local_runner, parse_bytes
from polars_metrics.stream.batches import BYTES_PER_ANNOTATION
from polars_metrics.stream.combine import BufferedMerge
from polars_metrics.synthetic import detections

FRAMES = ("cube", "overall", "confusion", "data_rows", "excluded", "rejects")
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.data_too_large,
                                                      HealthCheck.function_scoped_fixture])


def assert_identical(streamed, whole, *, matches: bool = True) -> None:
    """Every frame equal, in the same row order, floats bit for bit."""
    for name in FRAMES:
        try:
            assert_frame_equal(getattr(streamed, name), getattr(whole, name), check_exact=True)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
    if matches:
        keys = list(whole.keys)
        assert_frame_equal(streamed.matches.sort(keys, maintain_order=True),
                           whole.matches.sort(keys, maintain_order=True), check_exact=True)


@pytest.fixture(scope="module")
def boxes():
    gt, pd = detections(120, n_classes=8, seed=3, fp_per_image=10.0)
    return gt, pd


def test_paths_globs_hive_and_lazyframes_equal_in_memory(boxes, tmp_path):
    gt, pd = boxes
    whole = pm.evaluate(gt, pd)
    gt.write_parquet(tmp_path / "gt.parquet")
    pd.write_parquet(tmp_path / "pd.parquet")
    # predictions split over hive partitions, one data row across two files
    rows = pd["data_row"].unique().sort()
    split = pd.with_columns(
        part=pl.when(pl.col("data_row") < rows[60]).then(pl.lit("a")).otherwise(pl.lit("b")))
    first = split.filter(pl.col("data_row") == rows[0])
    for name, part in split.filter(pl.col("data_row") != rows[0]).group_by("part"):
        d = tmp_path / "pd_hive" / f"part={name[0]}"
        d.mkdir(parents=True)
        part.drop("part").write_parquet(d / "0.parquet")
    # the first data row's predictions split across two files: still evaluated whole
    first.head(3).drop("part").write_parquet(tmp_path / "pd_hive" / "part=a" / "1.parquet")
    first.tail(-3).drop("part").write_parquet(tmp_path / "pd_hive" / "part=b" / "1.parquet")
    hive = pl.read_parquet(tmp_path / "pd_hive", hive_partitioning=True).drop("part")
    whole_hive = pm.evaluate(gt, hive)
    cases = [
        (str(tmp_path / "gt.parquet"), str(tmp_path / "pd.parquet"), whole),
        (str(tmp_path / "g*.parquet"), tmp_path / "pd.parquet", whole),
        (gt.lazy(), pl.scan_parquet(tmp_path / "pd.parquet"), whole),
        ([str(tmp_path / "gt.parquet")], str(tmp_path / "pd_hive"), whole_hive),
    ]
    for i, (g, p, expected) in enumerate(cases):
        ev = pm.evaluate(g, p, out=tmp_path / f"out{i}", batches=3)
        assert type(ev).__name__ == "StreamedEvaluation"
        assert_identical(ev, expected, matches=expected is whole)
    # the hive column reaches the tables: here it is not constant per data row (row 0 is in
    # both partitions), and by= says so as the in-memory evaluation does
    with pytest.raises(pm.SchemaError, match="several 'part' values"):
        pm.evaluate(gt, str(tmp_path / "pd_hive"), by="part", batches=2)


@pytest.mark.parametrize("n", [1, 4, 64])
def test_batches_and_order_give_identical_frames(boxes, tmp_path, n, monkeypatch):
    from polars_metrics.stream import iou

    monkeypatch.setattr(iou, "CELLS", 300 * n)  # the re-sum in several blocks of groups
    monkeypatch.setattr(BufferedMerge, "ROWS", 1500)  # small tables merged in several piles
    gt, pd = boxes
    whole = pm.evaluate(gt, pd)
    ev = pm.evaluate(gt, pd, batches=n, out=tmp_path / "a")
    assert_identical(ev, whole)
    order = np.random.default_rng(n).permutation(n).tolist()
    ev2 = evaluate_stream(gt, pd, profile=whole.profile, keys=["data_row"],
                          kwargs={}, batches=n, out=tmp_path / "b", batch_order=order)
    assert_identical(ev2, whole)
    assert ev.lazy("data_rows").select(pl.len()).collect().item() == whole.data_rows.height


def test_a_streamed_result_pickles(boxes, tmp_path):
    """Its per-annotation loaders are partials of module functions, not closures: the result
    pickles and, unpickled, reads the same frames (matches and data rows from its batch files)."""
    gt, pd = boxes
    whole = pm.evaluate(gt, pd)
    ev = pickle.loads(pickle.dumps(pm.evaluate(gt, pd, batches=3, out=tmp_path)))
    assert type(ev).__name__ == "StreamedEvaluation"
    assert_identical(ev, whole)
    assert ev.lazy("data_rows").select(pl.len()).collect().item() == whole.data_rows.height


@settings(max_examples=n_examples(25), **SETTINGS)
@given(ds=datasets(ids=("int", "str")), n=st.sampled_from([1, 4, 64]), data=st.data())
def test_streamed_equals_in_memory_property(ds, n, data, tmp_path_factory):
    whole = pm.evaluate(ds.gt, ds.pd, **ds.kwargs)
    order = data.draw(st.permutations(range(n)))
    kwargs = {k: v for k, v in ds.kwargs.items() if k != "data_rows"}
    keys = [kwargs.pop("data_row")] if isinstance(kwargs.get("data_row"), str) else \
        list(kwargs.pop("data_row", ["data_row"]))
    if "data_row" in ds.kwargs:
        kwargs["data_row"] = ds.kwargs["data_row"]
    ev = evaluate_stream(ds.gt, ds.pd, profile=whole.profile, keys=keys, kwargs=kwargs,
                         data_rows=ds.kwargs.get("data_rows"), batches=n,
                         out=tmp_path_factory.mktemp("s"), batch_order=order)
    assert_identical(ev, whole)


@pytest.mark.parametrize("seed", range(2))
def test_every_kind_and_classifications_stream_identically(tmp_path, seed):
    rng = np.random.default_rng(seed)
    gt = table(random_rows(rng, 40, 4, False), False)
    pd = table(random_rows(rng, 40, 5, True), True)
    whole = pm.evaluate(gt, pd)
    for n in (1, 4, 64):
        assert_identical(pm.evaluate(gt, pd, batches=n, out=tmp_path / f"k{n}"), whole)
    y = rng.choice(["cloudy", "rain", "snow", "sunny"], 50).tolist()
    y_pred = rng.choice(["cloudy", "rain", "snow", "sunny"], 50).tolist()
    cgt, cpd = radio_tables(y, y_pred, conf=(rng.integers(0, 11, 50) / 10).tolist())
    split = pl.Series("split", rng.choice(["train", "val"], 50).tolist())
    cgt, cpd = cgt.with_columns(split), cpd.with_columns(split)
    opts = ["a", "b", "c", "d", "e"]

    def picks(n):
        return [sorted(set(rng.choice(opts, rng.integers(0, 3)).tolist())) for _ in range(n)]

    rows = cgt["data_row"].to_list()
    kgt = pl.DataFrame({"data_row": rows, "question": ["tags"] * 50, "answers": picks(50),
                        "split": split})
    kpd = pl.DataFrame({"data_row": rows, "question": ["tags"] * 50, "answers": picks(50),
                        "split": split, "confidence": (rng.integers(0, 11, 50) / 10).tolist()})
    radio, checklist = pl.lit("radio").alias("kind"), pl.lit("checklist").alias("kind")
    mixed = [pl.concat([a.with_columns(radio), b.with_columns(checklist)], how="diagonal")
             for a, b in ((cgt, kgt), (cpd, kpd))]
    for g, p, kw in ((cgt, cpd, {}), (cgt, cpd, {"by": "split"}), (*mixed, {"by": "split"})):
        whole = pm.evaluate(g, p, **kw)
        assert whole.cube["tn"].drop_nulls().sum() > 0
        for n in (1, 4, 64):
            assert_identical(pm.evaluate(g, p, batches=n, out=tmp_path / f"c{n}", **kw), whole)


def counting(calls: list):
    def run(tasks, progress):
        calls.extend(t.batch.name for t in tasks)
        yield from local_runner(tasks, progress)
    return run


def test_resume_after_a_failure_and_incremental_runs(boxes, tmp_path):
    gt, pd = boxes
    whole = pm.evaluate(gt, pd)
    kw = dict(profile=whole.profile, keys=["data_row"], kwargs={}, batches=8, out=tmp_path)

    def dies_after_three(tasks, progress):
        for i, t in enumerate(tasks):
            if i == 3:
                raise KeyboardInterrupt("killed mid-run")
            yield from ((i, small) for _, small in local_runner([t], False))

    with pytest.raises(KeyboardInterrupt):
        evaluate_stream(gt, pd, runner=dies_after_three, **kw)
    calls: list = []
    ev = evaluate_stream(gt, pd, runner=counting(calls), **kw)
    assert len(calls) == 8 - 3  # the three finished batches are reused
    assert_identical(ev, whole)
    calls.clear()
    assert_identical(evaluate_stream(gt, pd, runner=counting(calls), **kw), whole)
    assert calls == []  # nothing changed: nothing recomputed
    # replacing one data row's predictions recomputes only its batch
    row = pd["data_row"][0]
    changed = pd.with_columns(confidence=pl.when(pl.col("data_row") == row)
                              .then(pl.col("confidence") / 2).otherwise(pl.col("confidence")))
    ev = evaluate_stream(gt, changed, runner=counting(calls), **kw)
    assert len(calls) == 1
    assert_identical(ev, pm.evaluate(gt, changed))


def test_a_resumed_run_over_files_reuses_the_bucketing_pass(boxes, tmp_path):
    gt, pd = boxes
    gt.write_parquet(tmp_path / "gt.parquet")
    pd.write_parquet(tmp_path / "pd.parquet")
    args = (str(tmp_path / "gt.parquet"), str(tmp_path / "pd.parquet"))
    pm.evaluate(*args, batches=4, out=tmp_path / "o")
    bucket_file = next((tmp_path / "o" / "_buckets" / "gt").rglob("*.parquet"))
    before = bucket_file.stat().st_mtime_ns
    ev = pm.evaluate(*args, batches=4, out=tmp_path / "o")
    assert bucket_file.stat().st_mtime_ns == before  # not written again
    assert_identical(ev, pm.evaluate(gt, pd))
    pd.head(pd.height - 5).write_parquet(tmp_path / "pd.parquet")  # the input changed
    ev = pm.evaluate(*args, batches=4, out=tmp_path / "o")
    assert_identical(ev, pm.evaluate(gt, pd.head(pd.height - 5)))


def test_new_partitions_merge_only_their_partials(boxes, tmp_path):
    gt, pd = boxes
    rows = gt["data_row"].unique().sort()
    for side, frame in (("gt", gt), ("pd", pd)):
        for k, chunk in enumerate((rows[:40], rows[40:80])):
            d = tmp_path / side / f"batch={k}"
            d.mkdir(parents=True)
            frame.filter(pl.col("data_row").is_in(chunk.implode())).write_parquet(d / "x.parquet")
    calls: list = []
    kw = dict(profile=pm.get_profile("labelbox"), keys=["data_row"], kwargs={},
              assume_bucketed=True, out=tmp_path / "out", runner=counting(calls))
    evaluate_stream(str(tmp_path / "gt"), str(tmp_path / "pd"), **kw)
    assert len(calls) == 2
    for side, frame in (("gt", gt), ("pd", pd)):  # new data rows arrive as a new partition
        d = tmp_path / side / "batch=2"
        d.mkdir()
        frame.filter(pl.col("data_row").is_in(rows[80:].implode())).write_parquet(d / "x.parquet")
    calls.clear()
    ev = evaluate_stream(str(tmp_path / "gt"), str(tmp_path / "pd"), **kw)
    assert calls == ["batch=2"]
    assert_identical(ev, pm.evaluate(gt, pd), matches=False)


def test_a_data_row_in_two_batches_is_refused_under_assume_bucketed(boxes, tmp_path):
    gt, pd = boxes
    for side, frame in (("gt", gt), ("pd", pd)):
        for k in range(2):  # both halves hold every data row
            d = tmp_path / side / f"b={k}"
            d.mkdir(parents=True)
            frame[k::2].write_parquet(d / "x.parquet")
    with pytest.raises(PolarsMetricsError, match="more than one batch.*assume_bucketed=False"):
        pm.evaluate(str(tmp_path / "gt"), str(tmp_path / "pd"), assume_bucketed=True,
                    out=tmp_path / "o")


def test_coco_reads_paths_whole_or_streams_with_a_batching_keyword(boxes, tmp_path):
    gt, pd = boxes
    gt.write_parquet(tmp_path / "gt.parquet")
    pd.write_parquet(tmp_path / "pd.parquet")
    whole = pm.evaluate(gt, pd, profile="coco")
    ev = pm.evaluate(str(tmp_path / "gt.parquet"), pl.scan_parquet(tmp_path / "pd.parquet"),
                     profile="coco")
    assert_frame_equal(ev.cube, whole.cube, check_exact=True)
    assert type(ev).__name__ == "CocoEvaluation"  # no batching keyword: read whole
    # with one, streamed (tests/test_stream_coco.py checks every frame and array)
    streamed = pm.evaluate(str(tmp_path / "gt.parquet"), str(tmp_path / "pd.parquet"),
                           profile="coco", batches=4, out=tmp_path / "s")
    assert_frame_equal(streamed.cube, whole.cube, check_exact=True)


def test_batch_knobs(boxes, tmp_path):
    assert parse_bytes("2GB") == 2 * 10**9 and parse_bytes("1KiB") == 1024
    with pytest.raises(PolarsMetricsError, match="not a size"):
        parse_bytes("two gigs")
    gt, pd = boxes
    n_ann = gt.height + pd.height
    pm.evaluate(gt, pd, batch_size=n_ann // 5 + 1, out=tmp_path / "a")
    assert len(list((tmp_path / "a" / "batches").iterdir())) == 5
    pm.evaluate(gt, pd, memory_limit=BYTES_PER_ANNOTATION * (n_ann // 3 + 1), out=tmp_path / "b")
    assert len(list((tmp_path / "b" / "batches").iterdir())) == 3
    with pytest.raises(ProfileError, match="engine="):
        pm.evaluate(gt, pd, engine="spark")


def test_pile_merge_sums_like_pairwise_merges(boxes, tmp_path):
    """The small tables merged in piles of any size equal a merge of the batches two by two."""
    from polars_metrics.stream import combine, run

    gt, pd = boxes
    seen: list = []
    kw = dict(profile=pm.evaluate(gt.head(0), pd.head(0)).profile, keys=["data_row"], kwargs={})

    def keep(tasks, progress):
        for i, small in local_runner(tasks, progress):
            seen.append(small)
            yield i, small

    evaluate_stream(gt, pd, batches=9, out=tmp_path, runner=keep, **kw)
    pairwise = combine.tree_reduce(seen, lambda a, b: combine.merge_small(a, b, ()))
    expected = combine.finish_small(pairwise, (), ["data_row"])
    for rows in (1, 1000, 10**9):
        m = combine.BufferedMerge((), rows=rows)
        for small in seen:
            m.push(small)
        got = combine.finish_small(m.result(), (), ["data_row"])
        for name in ("counts", "confusion", "excluded", "rejects"):
            assert_frame_equal(got[name].drop("iou_sum", strict=False),
                               expected[name].drop("iou_sum", strict=False), check_exact=True)
    assert run.local_runner is local_runner


def test_a_failed_write_stops_the_run_and_the_written_batches_are_reused(boxes, tmp_path,
                                                                           monkeypatch):
    """The pipelined runner: an error in the writer thread reaches the caller; the batches
    whose write finished are checkpointed and reused, the others computed again."""
    from polars_metrics.stream import run

    gt, pd = boxes
    whole = pm.evaluate(gt, pd)
    kw = dict(profile=whole.profile, keys=["data_row"], kwargs={}, batches=6, out=tmp_path)
    real, writes = run.write_batch, []

    def fails_fourth(task, written):
        writes.append(task.batch.name)
        if len(writes) == 4:
            raise OSError("disk full")
        real(task, written)

    monkeypatch.setattr(run, "write_batch", fails_fourth)
    with pytest.raises(OSError, match="disk full"):
        evaluate_stream(gt, pd, **kw)
    monkeypatch.setattr(run, "write_batch", real)
    done = sorted(p.name for p in (tmp_path / "batches").iterdir()
                  if (p / "manifest.json").exists())
    assert done == sorted(writes[:3])
    calls: list = []
    assert_identical(evaluate_stream(gt, pd, runner=counting(calls), **kw), whole)
    assert len(calls) == 6 - 3
