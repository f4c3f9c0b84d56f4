"""`CertSummary`: what portintel keeps of a TLS certificate, as a plain frozen dataclass.

It lives apart from core.models, and without pydantic, because TLS enumeration carries it
and `python -m core.verify.tls` is timed as a whole process against sslscan: importing
pydantic's model machinery costs more than the enumeration of a typical server. pydantic
still validates it wherever it is a field of a model (TlsSummary.cert): it reads the
annotations below, and `__pydantic_config__` refuses unknown keys as the models do.
Built directly, it trusts its caller (our certificate parser and the connectors'
already-validated provider data) and only brings times to UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar


def as_utc(value: datetime) -> datetime:
    """`value` in UTC; a naive time is taken as UTC already. (Here, not in core.models,
    so that CertSummary can use it without pydantic; the models' times use it too.)"""
    if value.tzinfo is UTC:
        return value  # the common case: our own times and every parsed provider time
    # Providers omit the zone (Shodan, Criminal IP): their times are UTC by convention.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class CertSummary:
    __pydantic_config__: ClassVar[dict[str, Any]] = {"extra": "forbid"}

    subject: str | None = None
    issuer: str | None = None
    sans: tuple[str, ...] = ()
    not_before: datetime | None = None
    not_after: datetime | None = None
    key_type: str | None = None
    key_bits: int | None = None
    sha256: str | None = None
    self_signed: bool | None = None

    def __post_init__(self) -> None:
        for name in ("not_before", "not_after"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is not UTC:
                object.__setattr__(self, name, as_utc(value))
        if not isinstance(self.sans, tuple):
            object.__setattr__(self, "sans", tuple(self.sans))
