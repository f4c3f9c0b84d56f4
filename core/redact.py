"""Keeps secrets out of logs: every registered value is replaced wherever it appears."""

from __future__ import annotations

import logging
from collections.abc import Iterable

MASK = "***"


class RedactingFilter(logging.Filter):
    """A logging filter that masks secret values in messages and their arguments."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        # Very short values would mask ordinary text; real keys are long.
        self._secrets.update(s for s in secrets if s and len(s) >= 6)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True
