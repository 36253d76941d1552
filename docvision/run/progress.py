"""A progress bar with ETA on stderr, only when stderr is a terminal and there is more than one source."""

from __future__ import annotations

import sys
from pathlib import Path


class Progress:
    """Counts finished sources; ``enabled=None`` decides from the terminal and the batch size."""

    def __init__(self, total: int, enabled: bool | None = None):
        if enabled is None:
            enabled = total > 1 and sys.stderr.isatty()
        self.total, self.enabled = total, enabled
        self._bar = None
        self._task = None

    def __enter__(self) -> "Progress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar
            from rich.progress import TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=True,
                            redirect_stdout=sys.stdout.isatty(), redirect_stderr=True)
            self._bar.__enter__()
            self._task = self._bar.add_task("starting", total=self.total)
        return self

    def advance(self, source: str) -> None:
        if self._bar is not None:
            name = Path(source).name or source
            self._bar.update(self._task, advance=1, description=name[:40])

    def describe(self, text: str) -> bool:
        """Show ``text`` (a live status) as the bar's description until the next source; False: no bar."""
        if self._bar is None:
            return False
        self._bar.update(self._task, description=text[:60])
        return True

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
