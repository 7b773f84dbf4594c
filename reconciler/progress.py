"""Progress for long reads and applies: a rich bar on a terminal, plain lines in CI.

Always on stderr, so `--output json|markdown` keeps stdout to the document alone.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from reconciler.secrets import REDACTOR


class Reporter:
    """Reports steps of a known total: a live bar on a TTY, one line per step otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    @contextmanager
    def track(self, description: str, total: int) -> Iterator[Reporter]:
        if not self.interactive:
            yield self
            return
        console = Console(file=self.stream)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=False) as progress:
            self._progress = progress
            self._task = progress.add_task(description, total=total)
            try:
                yield self
            finally:
                self._progress = None
                self._task = None

    def step(self, line: str) -> None:
        """One finished step: printed as a line in CI, above the bar on a terminal."""
        text = REDACTOR.text(line)
        if self._progress is not None and self._task is not None:
            self._progress.console.print(text, markup=False, highlight=False)
            self._progress.advance(self._task)
        else:
            print(text, file=self.stream, flush=True)

    @contextmanager
    def waiting(self, description: str) -> Iterator[Reporter]:
        """Work of unknown length (reading vendors): a spinner with the elapsed time on a
        terminal; in CI one line before and one after, so a slow vendor shows in the log."""
        started = time.monotonic()
        if not self.interactive:
            print(f"{description} ...", file=self.stream, flush=True)
            yield self
            print(f"{description}: done in {time.monotonic() - started:.1f}s",
                  file=self.stream, flush=True)
            return
        console = Console(file=self.stream)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=console, transient=True) as progress:
            progress.add_task(description, total=None)
            yield self
