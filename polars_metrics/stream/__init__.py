"""Out-of-core evaluation: data-row-complete batches of Parquet datasets, checkpointed partial
results, merged exactly. Entry: :func:`~polars_metrics.stream.run.evaluate_stream` (through
``pm.evaluate``)."""
from polars_metrics.stream.batches import Batch, parse_bytes
from polars_metrics.stream.checkpoint import Task, run_batch
from polars_metrics.stream.result import StreamedEvaluation
from polars_metrics.stream.run import evaluate_stream, local_runner
from polars_metrics.stream.sources import is_streamable

__all__ = ["Batch", "StreamedEvaluation", "Task", "evaluate_stream", "is_streamable",
           "local_runner", "parse_bytes", "run_batch"]
