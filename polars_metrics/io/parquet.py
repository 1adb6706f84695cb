"""Result frames to Parquet files, one ``<name>.parquet`` per frame."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import polars as pl


def write_frames(frames: Mapping[str, pl.DataFrame], directory: str | os.PathLike) -> dict[str, Path]:
    """Write each frame as ``<directory>/<name>.parquet`` (the directory is created); return
    the paths by name.

    Examples
    --------
    >>> import tempfile, polars as pl
    >>> directory = tempfile.mkdtemp()
    >>> paths = write_frames({"overall": pl.DataFrame({"tp": [3]})}, directory)
    >>> paths["overall"].name, pl.read_parquet(paths["overall"])["tp"].to_list()
    ('overall.parquet', [3])
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in frames.items():
        paths[name] = out / f"{name}.parquet"
        frame.write_parquet(paths[name])
    return paths
