"""Progress of a bulk submit: a rich progress bar (tasks/s, ETA) on a terminal, plain lines otherwise
(a log file or a CI job gets a readable line every few seconds, not a stream of escape codes)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO


class _Silent:
    def __call__(self, n: int, result: Any) -> None:
        pass

    def close(self) -> None:
        pass


class _Callback(_Silent):
    def __init__(self, fn: Callable[[int, Any], None]) -> None:
        self.fn = fn
        self.done = 0

    def __call__(self, n: int, result: Any) -> None:
        self.done += n
        self.fn(self.done, result)


class _Lines(_Silent):
    """``tasks 12000/100000 (8,100/s, ETA 11 s)`` at most every ``every`` seconds, and at the end."""

    def __init__(self, total: int | None, stream: TextIO, every: float = 2.0, start: int = 0) -> None:
        self.total, self.stream, self.every = total, stream, every
        self.done = start
        self.start_done = start
        self.t0 = self.last = time.monotonic()

    def _line(self) -> str:
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        rate = (self.done - self.start_done) / elapsed
        text = f"tasks {self.done}" + (f"/{self.total}" if self.total else "") + f" ({rate:,.0f}/s"
        if self.total and rate > 0:
            text += f", ETA {max(0.0, (self.total - self.done) / rate):.0f} s"
        return text + ")"

    def __call__(self, n: int, result: Any) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            print(self._line(), file=self.stream, flush=True)

    def close(self) -> None:
        print(self._line(), file=self.stream, flush=True)


class _Bar(_Silent):
    def __init__(self, total: int | None, stream: TextIO, start: int = 0) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("submitting"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[rate]} tasks/s"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), console=Console(file=stream), transient=False,
        )
        self.task = self.progress.add_task("submit", total=total, completed=start, rate="-")
        self.start_done = start
        self.done = start
        self.t0 = time.monotonic()
        self.progress.start()

    def __call__(self, n: int, result: Any) -> None:
        self.done += n
        rate = (self.done - self.start_done) / max(time.monotonic() - self.t0, 1e-9)
        self.progress.update(self.task, advance=n, rate=f"{rate:,.0f}")

    def close(self) -> None:
        self.progress.stop()


def reporter(progress: bool | Callable[[int, Any], None], total: int | None = None,
             stream: TextIO | None = None, start: int = 0) -> _Silent:
    """The progress sink for a bulk submit: nothing, a callback, a bar (terminal) or lines."""
    if callable(progress):
        return _Callback(progress)
    if not progress:
        return _Silent()
    stream = stream or sys.stderr
    if stream.isatty():
        return _Bar(total, stream, start)
    return _Lines(total, stream, start=start)
