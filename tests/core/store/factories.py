"""Model builders for the store tests (documentation addresses only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from core.models import (
    CertSummary,
    Endpoint,
    Evidence,
    Kind,
    Observation,
    PortState,
    TlsSummary,
    Transport,
    Vuln,
)

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def full_observation(raw_id: int | None = None) -> Observation:
    """An observation with every field set to something other than its default."""
    return Observation(
        endpoint=Endpoint(ip="2001:db8::10", port=8443, transport=Transport.TCP),
        source="import:nmap",
        kind=Kind.IMPORTED,
        evidence=Evidence.WEAK,
        state=PortState.OPEN_FILTERED,
        # Given in +02:00: the store must keep the instant and hand it back in UTC.
        observed_at=datetime(2026, 2, 3, 4, 5, 6, 789, tzinfo=timezone(timedelta(hours=2))),
        fetched_at=T0,
        service="http",
        product="nginx",
        version="1.24.0",
        cpes=("cpe:2.3:a:f5:nginx:1.24.0:*:*:*:*:*:*:*", "cpe:/a:nginx:nginx"),
        banner="HTTP/1.1 200 OK\r\nServer: nginx\r\n\x1b[31m",
        http_server="nginx",
        http_title="Welcome \u2603",
        http_status=200,
        tls=TlsSummary(
            versions=("TLSv1.2", "TLSv1.3"),
            cipher="TLS_AES_256_GCM_SHA384",
            cert=CertSummary(
                subject="CN=www.example.com",
                issuer="CN=Example CA",
                sans=("www.example.com", "example.com"),
                not_before=datetime(2026, 1, 1, tzinfo=UTC),
                not_after=datetime(2027, 1, 1, tzinfo=UTC),
                key_type="ec",
                key_bits=256,
                sha256="ab" * 32,
                self_signed=False,
            ),
        ),
        vulns=(Vuln(cve="CVE-2021-23017", cvss=7.7), Vuln(cve="CVE-2099-0001")),
        hostnames=("www.example.com",),
        tags=("cdn", "waf:example"),
        org="Example Org",
        asn="AS64500",
        raw_id=raw_id,
    )


def observation(
    ip: str = "192.0.2.1",
    port: int = 443,
    source: str = "shodan",
    *,
    at: datetime = T0,
    transport: Transport = Transport.TCP,
    **fields: object,
) -> Observation:
    """A small passive observation; `fields` override anything."""
    values: dict[str, object] = {
        "endpoint": Endpoint(ip=ip, port=port, transport=transport),
        "source": source,
        "kind": Kind.PASSIVE,
        "observed_at": at,
        "fetched_at": at,
    }
    values.update(fields)
    return Observation.model_validate(values)
