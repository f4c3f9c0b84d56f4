"""The golden JSON report must keep loading into the models as the schema evolves.

fixtures/reports/inventory-v1.json was written by core/report/to_json.py over the
synthetic inventory below. Do not regenerate it to make this test pass: a failure means
a report users already have would no longer load. Add a reader for the old shape (or a
new golden file next to this one) instead. To write a new golden file on purpose:

    python -m tests.core.report.test_golden_report fixtures/reports/inventory-v2.json
"""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.models import (
    CertSummary,
    Colour,
    Conflict,
    Endpoint,
    PortState,
    Run,
    RunStatus,
    Service,
    SourceRun,
    SourceSeen,
    Status,
    TlsSummary,
    Transport,
    Vuln,
)
from core.report.to_html import render_html
from core.report.to_json import write_json
from core.report.views import ciphers_view, list_view, products_view, summary_view
from core.risk.scoring import annotate, score_assets

GOLDEN = Path(__file__).resolve().parents[3] / "fixtures" / "reports" / "inventory-v1.json"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
T1 = datetime(2026, 6, 1, 12, 30, tzinfo=UTC)
NOW = datetime(2026, 6, 2, tzinfo=UTC)


def _seen(*sources: str, state: PortState = PortState.OPEN) -> tuple[SourceSeen, ...]:
    return tuple(SourceSeen(source=s, first_seen=T0, last_seen=T1, state=state) for s in sources)


def synthetic_inventory() -> tuple[Run, list[Service]]:
    """Every status, both transports, both IP versions, TLS, CVEs, conflicts and tags."""
    run = Run(
        id=3,
        started_at=T1,
        finished_at=T1,
        command="enrich",
        targets=("192.0.2.0/28", "198.51.100.0/28", "2001:db8::/64"),
        status=RunStatus.PARTIAL,
        sources=(
            SourceRun(
                source="shodan",
                status=RunStatus.OK,
                requests=3,
                records=3,
                observations=9,
                credits_spent=3,
            ),
            SourceRun(
                source="censys", status=RunStatus.FAILED, errors=("censys: 503 after 3 tries",)
            ),
        ),
    )
    cert = CertSummary(
        subject="CN=www.example.com",
        issuer="CN=Example CA",
        sans=("www.example.com", "example.com"),
        not_before=datetime(2026, 1, 1, tzinfo=UTC),
        not_after=datetime(2026, 5, 1, tzinfo=UTC),
        key_type="RSA",
        key_bits=2048,
        sha256="9f" * 32,
        self_signed=False,
    )
    base: dict[str, Any] = {"first_seen": T0, "last_seen": T1}
    services = [
        Service(
            endpoint=Endpoint(ip="192.0.2.10", port=22),
            state=PortState.OPEN,
            status=Status.CONFIRMED,
            service="ssh",
            product="OpenSSH",
            version="9.6p1",
            chosen_from="verifier",
            per_source=_seen("shodan", "verifier"),
            hostnames=("host.example.com",),
            org="Example Org",
            banner="SSH-2.0-OpenSSH_9.6p1 Debian-3",
            **base,
        ),
        Service(
            endpoint=Endpoint(ip="192.0.2.10", port=443),
            state=PortState.OPEN,
            status=Status.CONFLICT,
            service="http",
            product="nginx",
            version="1.24.0",
            chosen_from="shodan",
            conflicts=(
                Conflict(field="product", values={"censys": "Apache httpd", "shodan": "nginx"}),
            ),
            per_source=_seen("censys", "shodan"),
            vulns=(Vuln(cve="CVE-2023-44487", cvss=7.5), Vuln(cve="CVE-2024-0001")),
            tls=TlsSummary(
                versions=("TLSv1.0", "TLSv1.2"), cipher="TLS_RSA_WITH_3DES_EDE_CBC_SHA", cert=cert
            ),
            http_title="Welcome",
            **base,
        ),
        Service(
            endpoint=Endpoint(ip="192.0.2.10", port=3306),
            state=PortState.CLOSED,
            status=Status.REFUTED,
            service="mysql",
            product="MySQL",
            chosen_from="shodan",
            per_source=_seen("shodan", "verifier"),
            **base,
        ),
        Service(
            endpoint=Endpoint(ip="198.51.100.3", port=6379),
            state=PortState.OPEN,
            status=Status.ACTIVE_ONLY,
            service="redis",
            product="Redis key-value store",
            version="7.2.4",
            chosen_from="verifier",
            per_source=_seen("verifier"),
            **base,
        ),
        Service(
            endpoint=Endpoint(ip="198.51.100.3", port=9999),
            state=PortState.OPEN,
            status=Status.UNVERIFIED,
            per_source=_seen("internetdb"),
            **base,
        ),
        Service(
            endpoint=Endpoint(ip="198.51.100.9", port=8443),
            state=PortState.OPEN,
            status=Status.CDN_EDGE,
            service="http",
            per_source=_seen("shodan"),
            tags=("cdn",),
            **base,
        ),
        Service(
            endpoint=Endpoint(ip="2001:db8::7", port=161, transport=Transport.UDP),
            state=PortState.OPEN_FILTERED,
            status=Status.UNVERIFIED,
            service="snmp",
            per_source=_seen("import:nmap", state=PortState.OPEN_FILTERED),
            **base,
        ),
        Service(
            endpoint=Endpoint(ip="203.0.113.50", port=80),
            state=PortState.OPEN,
            status=Status.OUT_OF_SCOPE,
            service="http",
            product="lighttpd",
            per_source=_seen("shodan"),
            **base,
        ),
    ]
    return run, list(annotate(services))


def write_golden(path: Path) -> None:
    run, services = synthetic_inventory()
    with path.open("w", encoding="utf-8") as out:
        write_json(services, out, run)


def load(path: Path) -> tuple[int, Run, list[Service]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    services = []
    for item in data["services"]:
        derived = item.pop("sources")  # written for readers; Service derives it
        service = Service.model_validate(item)
        assert list(service.sources) == derived
        services.append(service)
    return data["schema_version"], Run.model_validate(data["run"]), services


def test_golden_report_still_loads() -> None:
    version, run, services = load(GOLDEN)
    assert version == 1
    assert (run.id, run.status, [s.source for s in run.sources]) == (
        3,
        RunStatus.PARTIAL,
        ["shodan", "censys"],
    )
    assert len(services) == 8
    assert {s.status for s in services} == set(Status)
    assert {s.endpoint.transport for s in services} == {Transport.TCP, Transport.UDP}
    assert {s.colour for s in services} == {Colour.GREEN, Colour.YELLOW, Colour.RED}
    https = services[1]
    assert https.tls is not None and https.tls.cert is not None
    assert https.tls.cert.not_after == datetime(2026, 5, 1, tzinfo=UTC)
    assert https.conflicts[0].values == {"censys": "Apache httpd", "shodan": "nginx"}
    assert [v.cvss for v in https.vulns] == [7.5, None]


def test_golden_report_feeds_the_views_and_the_html_report() -> None:
    _, run, services = load(GOLDEN)
    risks = score_assets(services, now=NOW)
    assert summary_view(services, risks)[0].target == "192.0.2.10"
    assert len(list_view(services)) == 8
    assert products_view(services)[0].product in {
        "OpenSSH",
        "nginx",
        "Redis key-value store",
        "lighttpd",
    }
    assert [row.suite for row in ciphers_view(services)] == ["TLS_RSA_WITH_3DES_EDE_CBC_SHA"]
    out = io.StringIO()
    render_html(out, services, risks, generated_at=NOW, run=run)
    assert "Run 3 (enrich, partial)" in out.getvalue()


def test_the_exporter_still_writes_what_the_golden_file_holds(tmp_path: Path) -> None:
    # Not byte equality (fields may be added); every golden field must still be written.
    fresh = tmp_path / "fresh.json"
    write_golden(fresh)
    old = json.loads(GOLDEN.read_text(encoding="utf-8"))
    new = json.loads(fresh.read_text(encoding="utf-8"))

    def missing(a: Any, b: Any, where: str) -> list[str]:
        if isinstance(a, dict):
            return [
                m
                for k in a
                for m in (missing(a[k], b.get(k), f"{where}.{k}") if k in b else [f"{where}.{k}"])
            ]
        if isinstance(a, list):
            return [
                m
                for i, (x, y) in enumerate(zip(a, b, strict=False))
                for m in missing(x, y, f"{where}[{i}]")
            ]
        return []

    assert missing(old, new, "$") == []


if __name__ == "__main__":
    write_golden(Path(sys.argv[1]) if len(sys.argv) > 1 else GOLDEN)
