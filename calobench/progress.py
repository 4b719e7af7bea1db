"""One progress bar per long stage, alike everywhere (rich.progress on stderr).

    with stage("cls-high: run 1/3", total=6000) as bar:
        for step in ...:
            bar.advance(loss=f"{loss:.4f}")

On a terminal (stderr is a TTY) each stage is a bar with its count, elapsed time and status text
(the keyword arguments of ``advance``/``update``, e.g. the current loss or accuracy); stages
started while another runs share its display. Without a terminal there are no bars: each stage
writes one line when it starts (its description, through ``log`` when given, else plainly on
stderr), and nothing more; ``line=False`` stages (a detail of a stage whose caller already logged
a line) write nothing. ``enabled=False`` shows and writes nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_active: dict = {"progress": None, "depth": 0}


def is_terminal() -> bool:
    """True when stderr is an interactive terminal (bars are drawn there)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _status(fields: dict) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in fields.items())


class Bar:
    """A stage's handle: ``advance(n, **status)`` and ``update(completed=, total=, **status)``;
    a no-op where nothing is drawn."""

    def __init__(self, progress=None, task=None) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: float = 1, **status) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=n, **({"status": _status(status)} if status else {}))

    def update(self, completed: float | None = None, total: float | None = None, **status) -> None:
        if self._progress is not None:
            kwargs = {"status": _status(status)} if status else {}
            if total is not None:
                kwargs["total"] = total
            if completed is not None:
                kwargs["completed"] = completed
            self._progress.update(self._task, **kwargs)


def _console():
    """Where bars are drawn: a rich Console on stderr."""
    from rich.console import Console

    return Console(stderr=True)


def _new_progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("{task.fields[status]}"), console=_console(), transient=False)


@contextmanager
def stage(description: str, total: float | None = None, *, enabled: bool = True, line: bool = True,
          log: Callable[[str], None] | None = None, terminal: bool | None = None) -> Iterator[Bar]:
    """A progress bar for one stage of ``total`` steps (None: unknown); see the module docstring.

    terminal: draw bars (default: whether stderr is a terminal).
    """
    if not enabled:
        yield Bar()
        return
    if not (is_terminal() if terminal is None else terminal):
        if line:
            (log or (lambda m: print(m, file=sys.stderr, flush=True)))(description)
        yield Bar()
        return
    if _active["progress"] is None:
        _active["progress"] = _new_progress()
        _active["progress"].start()
    progress = _active["progress"]
    _active["depth"] += 1
    task = progress.add_task(description, total=total, status="")
    try:
        yield Bar(progress, task)
    finally:
        if total is None:  # an unknown length ends full
            done = next((t.completed for t in progress.tasks if t.id == task), 0)
            progress.update(task, total=done)
        _active["depth"] -= 1
        if _active["depth"] == 0:
            progress.stop()
            _active["progress"] = None


def log_enabled(log) -> bool:
    """Whether a progress Log writes anything (a ProgressLog's ``enabled``; None: no)."""
    return log is not None and bool(getattr(log, "enabled", True))


__all__ = ["Bar", "is_terminal", "log_enabled", "stage"]
