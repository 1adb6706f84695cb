"""``engine="ray"``: the batches of a streamed evaluation as Ray tasks.

Why tasks, not Ray Data: the batches are already data-row complete (hash buckets written by
one streaming pass, or the input's own partitions), so each is one ``ray.remote`` call on a
list of Parquet files — no Ray Data shuffle of raw rows. Each task writes its checkpoint under
``out=`` (a path every node can reach: a shared filesystem) and returns the batch's small
tables; the driver merges them with a tree reduce as they arrive. A task that dies (node lost,
OOM kill, ``os._exit``) is retried by Ray (``max_retries``); a batch's result does not depend on
which attempt wrote it, so the numbers are the same.

Ray is found with ``ray.init()``: the cluster named by ``RAY_ADDRESS`` (or an existing
``ray.init`` in this process), else a new local one. Each task reserves ``cpus_per_task`` CPUs
and runs numba and Polars with that many threads.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from polars_metrics.errors import PolarsMetricsError
from polars_metrics.stream import Task, run_batch
from polars_metrics.stream._malloc import keep_reusing_memory


def _batch_on_worker(task: Task, threads: int, hook: Callable | None) -> dict[str, Any]:
    os.environ["POLARS_MAX_THREADS"] = str(threads)  # for Polars' pool if not started yet
    try:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # pragma: no cover
        pass
    if hook is not None:
        hook(task)
    keep_reusing_memory()  # a worker runs batch after batch: each reuses the last one's memory
    return run_batch(task)


def ray_runner(cpus_per_task: int = 1, max_retries: int = 3,
               task_hook: Callable[[Task], None] | None = None):
    """A runner for :func:`polars_metrics.stream.evaluate_stream` that uses Ray.

    ``task_hook`` runs in the worker before each task (tests use it to kill a first attempt).
    ``pm.evaluate(..., engine="ray")`` uses ``ray_runner()``.

    Examples
    --------
    >>> run = ray_runner(cpus_per_task=2)  # Ray starts (or connects) on the first run
    >>> callable(run)
    True
    """
    try:
        import ray
    except ImportError as exc:
        raise PolarsMetricsError(
            "engine='ray' needs Ray: pip install 'ray[default]' (or 'polars_metrics[ray]').") from exc

    def run(tasks: list[Task], progress: bool) -> Iterator[tuple[int, dict[str, Any]]]:
        if not ray.is_initialized():
            ray.init()
        env = {"NUMBA_NUM_THREADS": str(cpus_per_task), "POLARS_MAX_THREADS": str(cpus_per_task),
               "OMP_NUM_THREADS": str(cpus_per_task)}
        remote = ray.remote(_batch_on_worker).options(
            num_cpus=cpus_per_task, max_retries=max_retries, retry_exceptions=False,
            runtime_env={"env_vars": env})
        refs = [remote.remote(t, cpus_per_task, task_hook) for t in tasks]
        index = {r: i for i, r in enumerate(refs)}
        pending = list(refs)
        bar = _bar(len(refs), progress)
        while pending:  # the driver merges each result as it arrives
            done, pending = ray.wait(pending, num_returns=1)
            for r in done:
                bar(1)
                yield index[r], ray.get(r)
        bar(0, close=True)

    return run


def _bar(total: int, enabled: bool):
    if not enabled:
        return lambda n, close=False: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="batches (ray)", unit="batch")

    def update(n: int, close: bool = False) -> None:
        bar.update(n)
        if close:
            bar.close()

    return update
