"""The four views over reconciled services, and the filters applied before them."""

from __future__ import annotations

import pytest

from core.models import Colour, Endpoint, PortState, Service, Status, Transport, Vuln
from core.report.views import (
    ServiceFilter,
    ciphers_view,
    columns,
    list_view,
    products_view,
    summary_view,
)
from core.risk.grading import Grade, OfferedSuite
from core.risk.prevalence import Prevalence
from core.risk.scoring import annotate, score_assets
from tests.core.risk.helpers import NOW, T0, svc, tls

A, B, C = "198.51.100.7", "203.0.113.5", "2001:db8::10"


def inventory() -> list[Service]:
    return list(
        annotate(
            [
                svc(
                    A,
                    22,
                    "ssh",
                    product="OpenSSH",
                    version="9.6p1",
                    hostnames=("a.example.com",),
                    org="Example Org",
                ),
                svc(
                    A,
                    443,
                    "http",
                    product="nginx",
                    version="1.24.0",
                    tls=tls(cipher="TLS_AES_128_GCM_SHA256"),
                    org="Example Org",
                ),
                svc(
                    A,
                    3306,
                    "mysql",
                    product="MySQL",
                    version="8.0.36",
                    sources=("censys", "shodan"),
                ),
                svc(
                    B,
                    443,
                    "https",
                    product="nginx",
                    version="1.24.0",
                    tls=tls(versions=("TLSv1", "TLSv1.2"), cipher="DES-CBC3-SHA"),
                    hostnames=("b.example.net", "api.example.net"),
                ),
                svc(B, 8080, "http", product="Nginx", version="1.22.1"),
                svc(B, 9999, None, sources=("internetdb",)),
                svc(
                    B,
                    5432,
                    "postgresql",
                    product="PostgreSQL",
                    state=PortState.CLOSED,
                    status=Status.REFUTED,
                ),
                svc(
                    C,
                    161,
                    "snmp",
                    transport=Transport.UDP,
                    vulns=(Vuln(cve="CVE-2024-0001", cvss=9.8),),
                ),
            ]
        )
    )


def test_columns_are_stable() -> None:
    assert columns("summary")[:3] == ("target", "name", "hostnames")
    assert columns("list")[:6] == ("ip", "port", "transport", "service", "product", "version")
    assert columns("products") == ("product", "version", "instances", "targets")
    assert columns("ciphers") == ("suite", "grade", "endpoints", "targets", "protocols")


def test_summary_per_target_highest_score_first() -> None:
    services = inventory()
    risks = score_assets(services, now=NOW)
    rows = summary_view(services, risks)
    assert [r.target for r in rows] == [C, A, B]  # 2+25+15 > 6+25 > 6+5+3+5 (+2 legacy TLS)
    by_target = {r.target: r for r in rows}
    a = by_target[A]
    assert (a.name, a.org, a.open_ports, a.green, a.yellow, a.red) == (
        "a.example.com",
        "Example Org",
        3,
        2,
        0,
        1,
    )
    assert a.ports == ("22/tcp", "443/tcp", "3306/tcp")
    assert a.score == risks[A].score == 6 + 25
    b = by_target[B]
    assert b.name == "api.example.net" and b.hostnames == ("api.example.net", "b.example.net")
    assert (b.open_ports, b.green, b.yellow, b.red) == (3, 2, 1, 0)  # 5432 was refuted
    assert b.ports == ("443/tcp", "8080/tcp", "9999/tcp")
    assert by_target[C].ports == ("161/udp",)


def test_list_every_port_with_prevalence_and_first_detected() -> None:
    prevalence = Prevalence({(443, Transport.TCP): 600, (22, Transport.TCP): 4000})
    rows = list_view(reversed(inventory()), prevalence)
    assert [(r.ip, r.port) for r in rows] == [
        (A, 22),
        (A, 443),
        (A, 3306),
        (B, 443),
        (B, 5432),
        (B, 8080),
        (B, 9999),
        (C, 161),
    ]
    first = rows[0]
    assert (first.service, first.product, first.version, first.colour) == (
        "ssh",
        "OpenSSH",
        "9.6p1",
        "green",
    )
    assert (first.prevalence, first.instances) == ("very common", 4000)
    assert rows[1].prevalence == "somewhat common"
    assert rows[2].prevalence == "rare" and rows[2].instances == 0
    assert rows[2].sources == ("censys", "shodan")
    assert rows[4].status == "refuted" and rows[4].state == "closed"
    assert rows[7].cves == ("CVE-2024-0001",) and rows[7].max_cvss == 9.8
    assert first.first_seen == T0
    cells = first.cells()
    assert cells["first_seen"] == "2026-05-01T08:00:00Z"
    assert cells["sources"] == "shodan"
    assert cells["max_cvss"] == "" and rows[7].cells()["max_cvss"] == "9.8"


def test_list_without_prevalence() -> None:
    row = list_view(inventory())[0]
    assert row.prevalence is None and row.cells()["prevalence"] == ""


def test_products_count_instances_and_targets() -> None:
    rows = products_view(inventory())
    assert [(r.product, r.version, r.instances, r.targets) for r in rows] == [
        ("nginx", "1.24.0", 2, 2),
        ("MySQL", "8.0.36", 1, 1),
        ("Nginx", "1.22.1", 1, 1),
        ("OpenSSH", "9.6p1", 1, 1),
        # PostgreSQL is only on a refuted (closed) port: not a product in use
    ]
    merged = products_view(inventory(), with_versions=False)
    assert (merged[0].product, merged[0].version, merged[0].instances, merged[0].targets) == (
        "nginx",
        None,
        3,
        2,
    )


def test_ciphers_from_negotiated_suites() -> None:
    rows = ciphers_view(inventory())
    assert [(r.suite, r.grade, r.endpoints, r.targets, r.protocols) for r in rows] == [
        ("DES-CBC3-SHA", "weak", 1, 1, ("TLSv1.0", "TLSv1.2")),
        ("TLS_AES_128_GCM_SHA256", "recommended", 1, 1, ("TLSv1.2", "TLSv1.3")),
    ]


def test_ciphers_take_enumerated_suites_with_grades() -> None:
    suites = {
        Endpoint(ip=A, port=443): [
            OfferedSuite(name="TLS_AES_256_GCM_SHA384", version="TLSv1.3"),
            OfferedSuite(name="TLS_RSA_WITH_RC4_128_SHA", version="TLSv1.0"),
        ],
        Endpoint(ip=B, port=443): [
            OfferedSuite(name="TLS_AES_256_GCM_SHA384", version="TLSv1.3"),
            OfferedSuite(name="VENDOR_X", version="TLSv1.2", grade=Grade.SECURE),
        ],
    }
    rows = ciphers_view(inventory(), suites)
    assert [(r.suite, r.grade, r.endpoints, r.targets, r.protocols) for r in rows] == [
        ("TLS_RSA_WITH_RC4_128_SHA", "insecure", 1, 1, ("TLSv1.0",)),
        ("VENDOR_X", "secure", 1, 1, ("TLSv1.2",)),
        ("TLS_AES_256_GCM_SHA384", "recommended", 2, 2, ("TLSv1.3",)),
    ]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (ServiceFilter(), 8),
        (ServiceFilter(targets=(A,)), 3),
        (ServiceFilter(targets=("203.0.113.0/24",)), 4),
        (ServiceFilter(targets=("2001:db8::/32", A)), 4),
        (ServiceFilter(targets=("b.example.net.",)), 1),  # hostname, trailing dot
        (ServiceFilter(colours=(Colour.RED,)), 3),  # mysql, postgresql (refuted), snmp
        (ServiceFilter(colours=(Colour.RED,), open_only=True), 2),
        (ServiceFilter(statuses=(Status.REFUTED,)), 1),
        (ServiceFilter(sources=("censys",)), 1),
        (ServiceFilter(sources=("internetdb", "censys")), 2),
        (ServiceFilter(ports=(443,)), 2),
        (ServiceFilter(ports=(443, 161)), 3),
        (ServiceFilter(products=("NGINX",)), 3),
        (ServiceFilter(products=("nginx",), ports=(8080,)), 1),
        (ServiceFilter(services=("https",)), 3),  # canonical: http
        (ServiceFilter(targets=(A,), colours=(Colour.YELLOW,)), 0),
    ],
)
def test_filters(flt: ServiceFilter, expected: int) -> None:
    assert len(list(flt.apply(inventory()))) == expected


def test_summary_after_a_colour_filter_still_describes_the_whole_asset() -> None:
    services = inventory()
    risks = score_assets(services, now=NOW)
    rows = summary_view(ServiceFilter(colours=(Colour.RED,), open_only=True).apply(services), risks)
    assert [r.target for r in rows] == [C, A]
    assert rows[1].open_ports == 3 and rows[1].score == risks[A].score
