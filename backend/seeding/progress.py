"""A rich progress bar on stderr for long loads; silent when disabled or not on a terminal."""

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress


class Progress:
    """Per-table tasks; `enabled=False` (tests, pipes) makes every call a no-op."""

    def __init__(self, *, enabled: bool) -> None:
        console = Console(stderr=True)
        self._bar: RichProgress | None = None
        if enabled and console.is_terminal:
            self._bar = RichProgress(
                TextColumn("{task.description:<24}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
            )

    def __enter__(self) -> "Progress":
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def task(self, description: str, total: int) -> TaskID | None:
        if self._bar is None:
            return None
        return self._bar.add_task(description, total=total)

    def advance(self, task: TaskID | None, amount: int = 1) -> None:
        if self._bar is not None and task is not None:
            self._bar.advance(task, amount)
