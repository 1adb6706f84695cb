"""Progress on stderr: one line per stage, drawn by ``rich`` when stderr is a terminal.

Each stage shows a spinner (or a bar when its size is known, e.g. the bytes of a file being
read) and its elapsed time, and leaves one line when it ends. Nothing is drawn with ``-q`` or
when stderr is not a terminal (a pipe, a file, CI logs). The stage times are kept either way:
the summary reports them.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO


class Stage:
    """The handle of one running stage: ``total(n)`` makes it a bar, ``advance(n)`` moves it."""

    def __init__(self, bar: Any = None, task: Any = None) -> None:
        self._bar, self._task = bar, task

    def total(self, n: float) -> None:
        if self._bar is not None:
            self._bar.update(self._task, total=n)

    def advance(self, n: float) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)


class Progress:
    """Stage timings, drawn on ``stream`` when it is a terminal and ``quiet`` is off."""

    def __init__(self, *, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = not quiet and bool(isatty and isatty())
        self.times: dict[str, float] = {}
        self.current: str | None = None

    @contextmanager
    def stage(self, label: str, detail: str = "") -> Iterator[Stage]:
        """Time a stage (and draw it); ``label`` keys the timings, ``detail`` is only shown."""
        self.current = label
        t0 = time.perf_counter()
        bar = _bar(self.stream) if self.enabled else None
        task, text = None, f"{label}{' ' + detail if detail else ''}"
        if bar is not None:
            task = bar.add_task(text, total=None)
            bar.start()
        try:
            yield Stage(bar, task)
        except BaseException:
            if bar is not None:  # the line stays, saying which stage failed (no spinner, no bar)
                bar.columns = bar.columns[1:2] + bar.columns[-1:]
                bar.update(task, description=f"[red]failed[/] {text}")
                bar.stop()
            raise
        self.times[label] = time.perf_counter() - t0
        self.current = None
        if bar is not None:
            total = bar.tasks[0].total or 1
            bar.update(task, description=f"[green]done[/] {text}", total=total, completed=total)
            bar.stop()


def _bar(stream: TextIO):
    # imported only when something is drawn: a pipe or -q never loads rich
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(SpinnerColumn(finished_text=""), TextColumn("{task.description}"),
                    BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                    console=Console(file=stream), transient=False)


class TrackedFile:
    """A text file whose reading advances a stage (the Labelbox readers take open files)."""

    def __init__(self, fh: TextIO, stage: Stage) -> None:
        self._fh, self._stage = fh, stage

    def __iter__(self) -> Iterator[str]:
        for line in self._fh:
            self._stage.advance(len(line))
            yield line

    def read(self, size: int = -1) -> str:
        text = self._fh.read(size)
        self._stage.advance(len(text))
        return text
