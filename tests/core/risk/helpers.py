"""Building reconciled services for risk and report tests (documentation addresses only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.models import (
    CertSummary,
    Endpoint,
    PortState,
    Service,
    SourceSeen,
    Status,
    TlsSummary,
    Transport,
)

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
T1 = datetime(2026, 6, 2, 9, 14, 27, tzinfo=UTC)
NOW = datetime(2026, 7, 1, tzinfo=UTC)


def svc(
    ip: str = "198.51.100.7",
    port: int = 22,
    service: str | None = "ssh",
    *,
    transport: Transport = Transport.TCP,
    state: PortState = PortState.OPEN,
    status: Status = Status.CONFIRMED,
    sources: tuple[str, ...] = ("shodan",),
    **changes: Any,
) -> Service:
    """One reconciled service; keyword arguments override any other field."""
    base = Service(
        endpoint=Endpoint(ip=ip, port=port, transport=transport),
        state=state,
        status=status,
        service=service,
        first_seen=T0,
        last_seen=T1,
        per_source=tuple(
            SourceSeen(source=s, first_seen=T0, last_seen=T1, state=state) for s in sources
        ),
    )
    return base.model_copy(update=changes) if changes else base


def tls(
    versions: tuple[str, ...] = ("TLSv1.2", "TLSv1.3"),
    cipher: str | None = "TLS_AES_128_GCM_SHA256",
    **cert: Any,
) -> TlsSummary:
    """A TLS summary; certificate fields as keywords (none: a valid, CA-signed cert)."""
    fields: dict[str, Any] = {
        "subject": "CN=www.example.com",
        "issuer": "CN=Example CA",
        "not_before": datetime(2026, 1, 1, tzinfo=UTC),
        "not_after": datetime(2027, 1, 1, tzinfo=UTC),
        "key_type": "RSA",
        "key_bits": 2048,
        "self_signed": False,
    }
    fields.update(cert)
    return TlsSummary(versions=versions, cipher=cipher, cert=CertSummary(**fields))
