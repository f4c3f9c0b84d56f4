"""Progress bars on stderr, one per source; silent when stderr is not a terminal."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from core.models import RunStatus


class SourceProgress:
    """Implements core.pipeline.ingest.Progress with rich."""

    def __init__(self, console: Console, *, enabled: bool = True) -> None:
        self._progress = Progress(
            TextColumn("{task.description:<11}"),
            BarColumn(),
            TextColumn("{task.fields[records]} records  {task.fields[observations]} obs"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not enabled or not console.is_terminal,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> SourceProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def start(self, source: str, total: int) -> None:
        # Lookups that find nothing yield no record, so records cannot fill a bar of
        # `total` queries: the bar pulses until the source finishes.
        self._tasks[source] = self._progress.add_task(
            source, total=None, records=0, observations=0, status=f"{total} queries"
        )

    def advance(self, source: str, records: int, observations: int) -> None:
        task = self._tasks[source]
        fields = self._progress.tasks[task].fields
        self._progress.update(
            task,
            records=fields["records"] + records,
            observations=fields["observations"] + observations,
        )

    def finish(self, source: str, status: RunStatus) -> None:
        task = self._tasks[source]
        self._progress.update(task, completed=1, total=1, status=status.value)
