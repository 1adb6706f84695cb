"""One measurement in a fresh process: ``python -m benchmarks.worker TASK DATA_DIR OUT_JSON [...]``.

Each tool runs in its own child process that does only that work, so peak RSS and "cold"
(first call in a fresh interpreter) mean what they say. The process:

1. imports polars, loads the Parquet files into memory (not timed as work), then imports the
   tool (timed: ``import_s``, what a fresh process pays before its first call);
2. records ``rss_loaded`` and restarts the high-water mark (VmHWM) from there, so that after
   the work VmHWM is the work's peak (``work_peak_rss``). No thread samples RSS beside the
   timed code: a sampler reading RSS every 2 ms slowed our multi-threaded call by 0-30 ms at
   5k images, more than supervision's single-threaded one. Only where VmHWM cannot be
   restarted (not Linux, or Linux < 4.0) does a sampling thread stand in;
3. does the work, timing each step with ``perf_counter``;
4. writes a JSON result (plus, for peers, their numbers as ``.npz`` so the parent can check
   parity on exactly what was timed).

``peak_rss`` is the whole process's high-water mark, loading included.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


class RssSampler:
    """Max RSS seen by a background thread; catches transient peaks ru_maxrss would mix with
    loading."""

    def __init__(self, interval: float = 0.002) -> None:
        import psutil

        self._proc = psutil.Process()
        self._interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self._interval)

    def rss(self) -> int:
        return int(self._proc.memory_info().rss)

    @contextmanager
    def sampling(self) -> Iterator[None]:
        self.peak = self.rss()
        self._thread.start()
        try:
            yield
        finally:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self.rss())


class WorkPeak:
    """The peak RSS of the work inside :meth:`measuring`, and of the whole process.

    VmHWM is restarted from the resident size when the work starts (``/proc/self/clear_refs``)
    and read when it ends: no thread runs beside the timed code. Where VmHWM cannot be
    restarted, an :class:`RssSampler` stands in (``how`` says which).
    """

    def __init__(self) -> None:
        self.rss_loaded = rss_bytes()
        self.load_peak = peak_rss_bytes()
        self.peak = 0
        self.how = "VmHWM"

    @contextmanager
    def measuring(self) -> Iterator[None]:
        if reset_peak_rss():
            yield
            self.peak = peak_rss_bytes()
            return
        sampler = RssSampler()
        self.how = "sampled every 2 ms"
        with sampler.sampling():
            yield
        self.peak = sampler.peak

    @property
    def process_peak(self) -> int:
        """Loading and work: the process's high-water mark so far."""
        return max(self.load_peak, self.peak)


def _status_bytes(field: str) -> int | None:
    """A ``/proc/self/status`` size field (``VmRSS``, ``VmHWM``) in bytes; None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def rss_bytes() -> int:
    """This process's resident size now."""
    now = _status_bytes("VmRSS")
    if now is None:
        import psutil

        now = int(psutil.Process().memory_info().rss)
    return now


def peak_rss_bytes() -> int:
    """This process's RSS high-water mark.

    VmHWM belongs to the address space created by exec, so it is this interpreter's own peak;
    ``ru_maxrss`` is not: Linux carries the forking parent's high-water mark across exec.
    """
    peak = _status_bytes("VmHWM")
    if peak is None:
        peak = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # KiB on Linux
    return peak


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def timed_cpu(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds of the whole process (all threads), result. On a shared
    machine CPU time is barely inflated by other processes, wall time is."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def _load(data_dir: Path) -> tuple[Any, Any, tuple[str, ...]]:
    from benchmarks.generate import class_names, read_parquet

    gt, pd = read_parquet(data_dir)
    meta = json.loads((data_dir / "meta.json").read_text())
    return gt, pd, class_names(meta["config"]["n_classes"])


def run_ours(data_dir: Path, repeat: int) -> dict[str, Any]:
    import polars as pl

    from benchmarks import peers

    gt, pd, classes = _load(data_dir)
    t_import, _ = timed(lambda: __import__("polars_metrics"))
    from polars_metrics._kernels.aot import compiled_module
    from polars_metrics._parallel import num_threads

    peak = WorkPeak()
    out: dict[str, Any] = {
        "import_s": t_import,
        # not numba.config: importing numba here would add its memory to ours
        "kernel_threads": num_threads(),
        "kernels": "ahead-of-time" if compiled_module() is not None else "numba JIT",
        "polars_threads": int(pl.thread_pool_size()),
        "numba_cache_dir": os.environ.get("NUMBA_CACHE_DIR", ""),
        "rss_loaded": peak.rss_loaded,
    }
    with peak.measuring():
        first_s, (ev, _, _) = timed(lambda: peers.ours_evaluate_timed(gt, pd))
        out["first_call_s"] = first_s
        out["first_timings"] = dict(ev.timings)
        runs, cpu, stages = [], [], []
        for _ in range(repeat):
            ev = None  # a user holds one result at a time: free the previous one first
            s, c, (ev, call_s, frames_s) = timed_cpu(lambda: peers.ours_evaluate_timed(gt, pd))
            runs.append(s)
            cpu.append(c)
            stages.append({**ev.timings, "evaluate_call": call_s, "materialize_frames": frames_s})
    grid = peers.DEFAULT_THRESHOLDS
    counts = peers.ours_counts(ev.cube, classes, grid, grid)
    conf = peers.ours_confusion(ev.confusion, classes, grid, grid)
    out["work_peak_rss"], out["rss_peak_how"] = peak.peak, peak.how
    out["peak_rss"] = max(peak.process_peak, peak_rss_bytes())
    # A user who re-runs without dropping the last result holds two: the previous Evaluation
    # stays alive through one more call. VmHWM is reset first (Linux clear_refs), so this
    # peak is that call's, on top of the loaded tables and the live result.
    alive_reset = reset_peak_rss()
    s_alive, (ev2, _, _) = timed(lambda: peers.ours_evaluate_timed(gt, pd))
    out["previous_alive_s"] = s_alive
    out["peak_rss_previous_alive"] = peak_rss_bytes() if alive_reset else None
    del ev2
    out["iou_floor_s"] = iou_floor_seconds(gt, pd, repeat)
    out.update(
        warm_s=runs,
        warm_median_s=statistics.median(runs) if runs else None,
        warm_cpu_s=cpu,
        warm_cpu_median_s=statistics.median(cpu) if cpu else None,
        warm_timings=stages,
        warm_stage_median_s={
            k: statistics.median(st[k] for st in stages) for k in (stages[0] if stages else {})
        },
        rows={
            "cube": ev.cube.height,
            "confusion": ev.confusion.height,
            "data_rows": ev.data_rows.height,
        },
        digest=digest(counts, conf),
    )
    return out


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0); False if not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def iou_floor_seconds(gt: Any, pd: Any, repeat: int) -> float:
    """The IoU floor: seconds to compute the IoU of every (ground truth, prediction) cell of each
    data row's grid once — the work no evaluation can skip — with ours' box kernel on boxes
    already sorted by data row (no validation, no output tables), on the same threads.
    Median of ``max(repeat, 1)`` runs."""
    import polars as pl

    from polars_metrics.kinds.box import box_pairs

    keys = pl.concat([gt.select("data_row"), pd.select("data_row")]).unique().sort("data_row")

    def sorted_side(frame: Any) -> tuple[np.ndarray, np.ndarray]:
        f = frame.select("data_row", "bbox").sort("data_row", maintain_order=True)
        starts = f["data_row"].search_sorted(keys["data_row"], side="left")
        off = np.append(starts.to_numpy().astype(np.int64), f.height)
        boxes = np.ascontiguousarray(f["bbox"].to_numpy().reshape(-1, 4), dtype=np.float64)
        return boxes, off

    (gb, go), (pb, po) = sorted_side(gt), sorted_side(pd)
    runs = []
    for _ in range(max(repeat, 1)):
        s, _ = timed(lambda: box_pairs(gb, None, go, pb, None, po))
        runs.append(s)
    return statistics.median(runs)


def run_supervision(data_dir: Path, repeat: int, npz: Path) -> dict[str, Any]:
    from benchmarks import peers

    gt, pd, classes = _load(data_dir)
    # outside the measured work; timed as what a fresh process pays before its first cell
    t_import, _ = timed(lambda: __import__("supervision"))

    peak = WorkPeak()
    out: dict[str, Any] = {"import_s": t_import, "rss_loaded": peak.rss_loaded}
    c, t = 0.5, 0.5
    with peak.measuring():
        out["convert_s"], (targets, preds) = timed(lambda: peers.to_supervision(gt, pd, classes))
        runs, cpu = [], []
        for _ in range(max(repeat, 1)):
            s, cs, matrix = timed_cpu(
                lambda: peers.supervision_confusion(targets, preds, classes, c, t)
            )
            runs.append(s)
            cpu.append(cs)
    np.savez(npz, matrix=matrix)
    out.update(
        cell=[c, t],
        cell_s=runs,
        cell_median_s=statistics.median(runs),
        cell_cpu_median_s=statistics.median(cpu),
        digest=digest(matrix),
        work_peak_rss=peak.peak,
        rss_peak_how=peak.how,
        peak_rss=max(peak.process_peak, peak_rss_bytes()),
    )
    return out


def run_valor(data_dir: Path, repeat: int, npz: Path) -> dict[str, Any]:
    from benchmarks import peers

    gt, pd, classes = _load(data_dir)
    # outside the measured work; timed as what a fresh process pays before its first call
    t_import, _ = timed(lambda: __import__("valor_lite.object_detection"))

    grid = peers.DEFAULT_THRESHOLDS
    peak = WorkPeak()
    out: dict[str, Any] = {"import_s": t_import, "rss_loaded": peak.rss_loaded}
    ingest, pr_s, cm_s, cpu = [], [], [], []
    with peak.measuring():
        out["convert_s"], detections = timed(lambda: peers.to_valor(gt, pd))
        for _ in range(max(repeat, 1)):
            c0, t0 = time.process_time(), time.perf_counter()
            evaluator = peers.valor_ingest(detections)
            t1 = time.perf_counter()
            pr = evaluator.compute_precision_recall(
                iou_thresholds=list(grid), score_thresholds=list(grid)
            )
            t2 = time.perf_counter()
            cm = evaluator.compute_confusion_matrix(
                iou_thresholds=list(grid), score_thresholds=list(grid)
            )
            t3 = time.perf_counter()
            cpu.append(time.process_time() - c0)
            ingest.append(t1 - t0)
            pr_s.append(t2 - t1)
            cm_s.append(t3 - t2)
            del evaluator  # one cache alive at a time, as a user re-running would have
    counts, conf = peers.valor_arrays(pr, cm, classes, grid, grid)
    np.savez(npz, counts=counts, confusion=conf)
    out.update(
        ingest_s=ingest,
        pr_s=pr_s,
        cm_s=cm_s,
        ingest_median_s=statistics.median(ingest),
        pr_median_s=statistics.median(pr_s),
        cm_median_s=statistics.median(cm_s),
        cpu_median_s=statistics.median(cpu),
        digest=digest(counts, conf),
        work_peak_rss=peak.peak,
        rss_peak_how=peak.how,
        peak_rss=max(peak.process_peak, peak_rss_bytes()),
    )
    return out


def main(argv: list[str]) -> None:
    task, data_dir, out_json = argv[0], Path(argv[1]), Path(argv[2])
    repeat = int(argv[3]) if len(argv) > 3 else 1
    npz = out_json.with_suffix(".npz")
    if task == "ours":
        result = run_ours(data_dir, repeat)
    elif task == "supervision":
        result = run_supervision(data_dir, repeat, npz)
    elif task == "valor":
        result = run_valor(data_dir, repeat, npz)
    else:
        raise SystemExit(f"unknown task {task!r}; expected ours, supervision or valor")
    result["task"] = task
    out_json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
