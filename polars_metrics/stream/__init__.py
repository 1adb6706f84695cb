"""Out-of-core evaluation: data-row-complete batches of Parquet datasets, checkpointed partial
results, merged exactly. Entry: :func:`~polars_metrics.stream.run.evaluate_stream` (through
``pm.evaluate``).

The names below load on first use, so ``import polars_metrics`` (which asks this package only
whether an input is streamable, ``stream.sources``) does not import the streaming machinery.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Batch": "batches", "parse_bytes": "batches", "Task": "checkpoint", "run_batch": "checkpoint",
    "StreamedEvaluation": "result", "evaluate_stream": "run", "local_runner": "run",
    "is_streamable": "sources",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'polars_metrics.stream' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
