"""What every portintel command shares: the settings, stderr, error handling, output files.

Known errors become one actionable line on stderr (the traceback too with --debug);
Ctrl-C exits 130; secrets are masked wherever a message could carry one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import TextIO

import typer
from rich.console import Console

from core.config import Settings, load_settings
from core.errors import InputError, PortintelError
from core.redact import RedactingFilter
from core.report.sanitize import printable

err = Console(stderr=True, highlight=False)
redactor = RedactingFilter()


class Exit(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    PARTIAL = 3
    FAILED = 4
    INTERRUPTED = 130


class State:
    """Set by the top-level callback from --config/--db/--cache-dir/--quiet/--debug."""

    settings: Settings | None = None
    debug: bool = False
    quiet: bool = False


state = State()


def settings() -> Settings:
    """The settings the callback loaded (or, for a command run on its own, fresh ones)."""
    if state.settings is None:
        state.settings = load_settings()
    return state.settings


def note(message: str) -> None:
    """A line for the person at the terminal (stderr), unless --quiet."""
    if not state.quiet:
        err.print(printable(redactor.redact(message)), markup=False, soft_wrap=True)


@contextmanager
def guard(code: int = Exit.ERROR) -> Iterator[None]:
    """Known errors become one line on stderr and exit `code`; Ctrl-C exits 130."""
    try:
        yield
    except PortintelError as exc:
        if state.debug:
            err.print_exception()
        err.print(f"error: {printable(redactor.redact(str(exc)))}", markup=False, soft_wrap=True)
        raise typer.Exit(code) from None
    except KeyboardInterrupt:
        err.print("interrupted: what was fetched so far is kept in the store", markup=False)
        raise typer.Exit(Exit.INTERRUPTED) from None


@contextmanager
def output(path: Path | None) -> Iterator[TextIO]:
    """stdout, or the file the user named (a clear error if it cannot be written)."""
    if path is None:
        yield sys.stdout
        return
    try:
        handle = path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}") from exc
    with handle:
        yield handle
