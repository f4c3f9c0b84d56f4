"""The exception tree. Each class is something a caller handles differently.

    PortintelError                  one actionable line: what, which input, what to do
    ├── ConfigError                 bad setting or config file
    ├── InputError                  bad user input (file, line, value)
    │   └── ScopeError              a target set too large or otherwise refused
    ├── StoreError                  the database could not be opened or migrated
    └── SourceError                 a provider failed; carries the source name
        ├── AuthError               key missing or rejected: never retried
        ├── QuotaError              the provider's credits are used up
        ├── BudgetExhausted         our own --budget would be exceeded
        ├── RateLimited             429; retried while tries and time remain
        ├── SourceUnavailable       5xx, timeouts, connection errors; retried likewise
        └── SchemaError             the response did not parse as documented

Errors raised from a lower layer keep their cause (`raise ... from exc`).
"""

from __future__ import annotations


class PortintelError(Exception):
    """Base of everything portintel raises on purpose."""


class ConfigError(PortintelError):
    pass


class InputError(PortintelError):
    """Bad user input. The message names the file, line and value when known."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        where = f"{file}:{line}: " if file and line else f"{file}: " if file else ""
        super().__init__(f"{where}{message}")
        self.file = file
        self.line = line


class ScopeError(InputError):
    pass


class StoreError(PortintelError):
    pass


class SourceError(PortintelError):
    """A provider failure. `str()` starts with the source name."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.reason = message


class AuthError(SourceError):
    pass


class QuotaError(SourceError):
    pass


class BudgetExhausted(SourceError):
    pass


class RateLimited(SourceError):
    def __init__(self, source: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(source, message)
        self.retry_after = retry_after


class SourceUnavailable(SourceError):
    pass


class SchemaError(SourceError):
    pass


TRANSIENT: tuple[type[SourceError], ...] = (RateLimited, SourceUnavailable)
"""The only failures worth retrying."""
