"""CDN data: edge ports and ranges with provenance; edge ports marked, others untouched."""

from __future__ import annotations

import ipaddress
from datetime import date

import pytest

from core.models import PortState, Status, Transport
from core.risk.cdn import Cdn, CdnDatabase, default_cdns, mark_edges
from tests.core.risk.helpers import svc

CLOUDFLARE_PORTS = {80, 8080, 8880, 2052, 2082, 2086, 2095, 443, 2053, 2083, 2087, 2096, 8443}


def test_cloudflare_s_thirteen_proxied_ports() -> None:
    cloudflare = next(c for c in default_cdns().cdns if c.name == "cloudflare")
    assert cloudflare.ports == CLOUDFLARE_PORTS


def test_every_list_has_a_source_and_a_date() -> None:
    cdns = default_cdns().cdns
    assert {"cloudflare", "fastly", "cloudfront", "akamai"} <= {c.name for c in cdns}
    for cdn in cdns:
        assert cdn.ports_source and cdn.ranges_source
        assert date(2020, 1, 1) < cdn.ports_recorded <= date.today()
        assert date(2020, 1, 1) < cdn.ranges_recorded <= date.today()
        for cidr in cdn.ranges:
            net = ipaddress.ip_network(cidr)  # strict: no host bits set
            assert net.is_global, f"{cidr} is not a public range"


def _db() -> CdnDatabase:
    # Test data in documentation space: the lookup logic, not the shipped ranges.
    return CdnDatabase(
        [
            Cdn(
                name="edge-a",
                ports=frozenset({80, 443, 8443}),
                ports_source="test",
                ports_recorded=date(2026, 1, 1),
                ranges=("192.0.2.0/25", "2001:db8:a::/48"),
                ranges_source="test",
                ranges_recorded=date(2026, 1, 1),
            ),
            Cdn(
                name="edge-b",
                ports=frozenset({80, 443, 2052}),
                ports_source="test",
                ports_recorded=date(2026, 1, 1),
                ranges=("192.0.2.128/26",),
                ranges_source="test",
                ranges_recorded=date(2026, 1, 1),
            ),
        ]
    )


@pytest.mark.parametrize(
    ("ip", "cdn"),
    [
        ("192.0.2.0", "edge-a"),  # first address of a range
        ("192.0.2.127", "edge-a"),  # last address
        ("192.0.2.128", "edge-b"),
        ("192.0.2.191", "edge-b"),
        ("192.0.2.192", None),  # just past the last range
        ("198.51.100.1", None),
        ("2001:db8:a::1", "edge-a"),
        ("2001:db8:b::1", None),
        ("0.0.0.0", None),  # before every range
    ],
)
def test_cdn_for(ip: str, cdn: str | None) -> None:
    found = _db().cdn_for(ip)
    assert (found.name if found else None) == cdn


@pytest.mark.parametrize(
    ("ip", "port", "transport", "tags", "edge"),
    [
        ("192.0.2.10", 443, Transport.TCP, (), "edge-a"),
        ("192.0.2.10", 8443, Transport.TCP, (), "edge-a"),
        ("192.0.2.10", 2052, Transport.TCP, (), None),  # edge-b's port, not edge-a's
        ("192.0.2.10", 22, Transport.TCP, (), None),  # the CDN does not answer on 22
        ("192.0.2.10", 443, Transport.UDP, (), None),
        ("198.51.100.7", 2052, Transport.TCP, ("cdn",), "tagged"),  # any CDN's port
        ("198.51.100.7", 3306, Transport.TCP, ("cdn",), None),
        ("198.51.100.7", 443, Transport.TCP, (), None),  # neither in range nor tagged
    ],
)
def test_edge(
    ip: str, port: int, transport: Transport, tags: tuple[str, ...], edge: str | None
) -> None:
    match = _db().edge(svc(ip, port, "http", transport=transport, tags=tags))
    assert (match.cdn if match else None) == edge
    if match:
        assert str(port) in match.reason


def test_mark_edges_keeps_every_port_and_marks_only_open_edges() -> None:
    services = [
        svc("192.0.2.10", 443, "http", status=Status.CONFIRMED),
        svc("192.0.2.10", 22, "ssh", status=Status.CONFIRMED),
        svc("192.0.2.10", 80, "http", state=PortState.CLOSED, status=Status.REFUTED),
    ]
    marked = list(mark_edges(services, _db()))
    assert [s.status for s in marked] == [Status.CDN_EDGE, Status.CONFIRMED, Status.REFUTED]


def test_overlapping_ranges_are_a_data_error() -> None:
    overlapping = [
        Cdn(
            name=name,
            ports=frozenset({443}),
            ports_source="t",
            ports_recorded=date(2026, 1, 1),
            ranges=(cidr,),
            ranges_source="t",
            ranges_recorded=date(2026, 1, 1),
        )
        for name, cidr in (("a", "192.0.2.0/24"), ("b", "192.0.2.64/26"))
    ]
    with pytest.raises(ValueError, match="overlap"):
        CdnDatabase(overlapping)


def test_shipped_ranges_resolve() -> None:
    db = default_cdns()
    # Addresses taken from inside the shipped lists, so a typo in the file fails here.
    for cdn in db.cdns:
        for cidr in cdn.ranges:
            net = ipaddress.ip_network(cidr)
            found = db.cdn_for(str(net.network_address + 1))
            assert found is not None and found.name == cdn.name
