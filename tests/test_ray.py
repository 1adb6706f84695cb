"""engine="ray" on a real local Ray cluster (2 CPUs): identical frames to the in-memory
evaluation, also when a task dies on its first attempt and Ray retries it."""
from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

ray = pytest.importorskip("ray")

from test_stream import assert_identical  # noqa: E402

import polars_metrics as pm  # noqa: E402
from polars_metrics.distributed.ray import ray_runner  # noqa: E402
from polars_metrics.stream import evaluate_stream  # noqa: E402
from polars_metrics.synthetic import detections  # noqa: E402

ROOT = str(Path(pm.__file__).resolve().parent.parent)


@pytest.fixture(scope="module")
def cluster():
    # the workers import the same polars_metrics as this process
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": ROOT}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def data():
    return detections(150, n_classes=6, seed=5, fp_per_image=12.0)


def crash_first_attempt(marker_dir: str):
    def hook(task):
        marker = os.path.join(marker_dir, task.batch.name)
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)  # the worker process dies mid-task; Ray retries it
    return hook


def test_ray_equals_in_memory(cluster, data, tmp_path):
    gt, pd = data
    whole = pm.evaluate(gt, pd)
    ev = pm.evaluate(gt, pd, engine="ray", batches=4, out=tmp_path / "a")
    assert_identical(ev, whole)
    # the workers ran with their CPU share of threads
    manifests = list((tmp_path / "a" / "batches").glob("*/manifest.json"))
    assert len(manifests) == 4


def test_ray_retry_after_a_killed_task_gives_the_same_numbers(cluster, data, tmp_path):
    gt, pd = data
    whole = pm.evaluate(gt, pd)
    markers = tmp_path / "markers"
    markers.mkdir()
    ev = evaluate_stream(gt, pd, profile=whole.profile, keys=["data_row"], kwargs={},
                         batches=3, out=tmp_path / "b",
                         runner=ray_runner(max_retries=2,
                                           task_hook=crash_first_attempt(str(markers))))
    assert len(list(markers.iterdir())) == 3  # every task died once
    assert_identical(ev, whole)


def test_cli_engine_ray_writes_the_in_memory_frames(cluster, data, tmp_path):
    from polars.testing import assert_frame_equal

    from polars_metrics.cli import main

    gt, pd = data
    gt.write_parquet(tmp_path / "gt.parquet")
    pd.write_parquet(tmp_path / "pd.parquet")
    whole = pm.evaluate(gt, pd)
    assert main(["evaluate", "--ground-truth", str(tmp_path / "gt.parquet"), "--predictions",
                 str(tmp_path / "pd.parquet"), "--out", str(tmp_path / "out"), "--engine",
                 "ray", "--batches", "3", "-q", "--json"]) == 0
    for name in ("cube", "overall", "confusion"):
        assert_frame_equal(pl.read_parquet(tmp_path / "out" / f"{name}.parquet"),
                           getattr(whole, name), check_exact=True)
