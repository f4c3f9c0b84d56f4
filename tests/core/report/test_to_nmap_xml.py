"""The nmap-XML export: valid against nmap's own DTD, and read back as the same inventory."""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.importers import import_file
from core.models import (
    Endpoint,
    PortState,
    Service,
    SourceSeen,
    Status,
    TlsSummary,
    Transport,
)
from core.report.to_nmap_xml import write_nmap_xml
from tests.lab.netns import lab_unavailable

NMAP_DTD = Path("/usr/share/nmap/nmap.dtd")
T1 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _svc(ip: str, port: int, state: PortState, status: Status, **kw: object) -> Service:
    transport = kw.pop("transport", Transport.TCP)
    return Service(
        endpoint=Endpoint(ip=ip, port=port, transport=transport),
        state=state,
        status=status,
        first_seen=T1,
        last_seen=T2,
        per_source=(SourceSeen(source="shodan", first_seen=T1, last_seen=T2, state=state),),
        **kw,  # type: ignore[arg-type]
    )


INVENTORY = [
    _svc(
        "192.0.2.10",
        22,
        PortState.OPEN,
        Status.CONFIRMED,
        service="ssh",
        product="OpenSSH",
        version="8.9p1 Ubuntu 3ubuntu0.6",
        cpes=("cpe:/a:openbsd:openssh:8.9p1",),
        chosen_from="verifier",
        hostnames=("www.example.com",),
    ),
    _svc(
        "192.0.2.10",
        443,
        PortState.OPEN,
        Status.UNVERIFIED,
        service="http",
        product="nginx",
        version="1.24.0",
        tls=TlsSummary(versions=("TLSv1.3",)),
    ),
    _svc("192.0.2.10", 53, PortState.OPEN_FILTERED, Status.UNVERIFIED, transport=Transport.UDP),
    _svc(
        "192.0.2.10",
        3306,
        PortState.CLOSED,
        Status.REFUTED,
        service="mysql",
        product="MySQL",
        version="8.0.36",
    ),
    _svc("2001:db8::a", 8080, PortState.FILTERED, Status.UNVERIFIED, product="Jetty"),
    # Hostile text from a banner: escapes, markup, a NUL and a character XML cannot carry.
    _svc(
        "203.0.113.10",
        80,
        PortState.OPEN,
        Status.ACTIVE_ONLY,
        service="http",
        product='evil"<product>&\x1b[31m\x00',
        version="1.0\ufffe",
    ),
]


def _export(services: list[Service]) -> str:
    out = io.StringIO()
    write_nmap_xml(services, out, generated_at=T2)
    return out.getvalue()


def test_the_export_is_valid_against_nmaps_dtd(tmp_path: Path) -> None:
    if shutil.which("xmllint") is None:
        lab_unavailable("xmllint (Debian libxml2-utils) is not installed")
    if not NMAP_DTD.exists():
        lab_unavailable("nmap's DTD is not installed (Debian package nmap)")
    path = tmp_path / "inventory.xml"
    path.write_text(_export(INVENTORY), encoding="utf-8")
    result = subprocess.run(
        ["xmllint", "--noout", "--dtdvalid", str(NMAP_DTD), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_dtd_check_would_catch_an_invalid_document(tmp_path: Path) -> None:
    # The validation above is only worth something if xmllint rejects what nmap's DTD forbids.
    if shutil.which("xmllint") is None or not NMAP_DTD.exists():
        lab_unavailable("xmllint or nmap's DTD is not installed")
    broken = _export(INVENTORY).replace('method="probed"', 'method="guessed"', 1)
    path = tmp_path / "broken.xml"
    path.write_text(broken, encoding="utf-8")
    result = subprocess.run(
        ["xmllint", "--noout", "--dtdvalid", str(NMAP_DTD), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0


def test_round_trip_gives_the_same_inventory(tmp_path: Path) -> None:
    # Given our export of an inventory
    path = tmp_path / "inventory.xml"
    path.write_text(_export(INVENTORY), encoding="utf-8")
    # When it is imported again (format detected from content)
    stream = import_file(path)
    claims = list(stream)

    # Then the same endpoints come back with the same states and service details
    def key(ep: Endpoint) -> tuple[str, int, str]:
        return (ep.ip, ep.port, ep.transport.value)

    exported = {key(s.endpoint): (s.state, s.service, s.product, s.version) for s in INVENTORY}
    imported = {
        key(c.observation.endpoint): (
            c.observation.state,
            c.observation.service,
            c.observation.product,
            c.observation.version,
        )
        for c in claims
    }
    hostile = key(INVENTORY[-1].endpoint)
    # Hostile text comes back neutralised, not as it was sent: compare it on its own.
    assert imported.pop(hostile)[2] == 'evil"<product>&\\x1b[31m\\x00'
    exported.pop(hostile)
    assert imported == exported
    assert stream.report.skipped_count == 0 and stream.report.duplicates == 0
    ssh = next(c for c in claims if c.observation.endpoint.port == 22)
    assert ssh.observation.hostnames == ("www.example.com",)
    assert ssh.observation.cpes == ("cpe:/a:openbsd:openssh:8.9p1",)
    assert ssh.observation.observed_at == T2


def test_status_and_sources_travel_in_reason_and_a_script() -> None:
    text = _export(INVENTORY[:1])
    assert 'reason="confirmed"' in text
    assert 'id="portintel" output="status=confirmed; sources=shodan;' in text
    assert 'conf="10"' in text and 'tunnel="ssl"' not in text
    assert 'tunnel="ssl"' in _export(INVENTORY[1:2])
    assert '<hosts up="1" down="0" total="1"/>' in text


def test_an_empty_inventory_is_still_a_document() -> None:
    text = _export([])
    assert text.rstrip().endswith("</nmaprun>")
    assert '<hosts up="0" down="0" total="0"/>' in text


@pytest.mark.parametrize("count", [1, 3])
def test_one_host_element_per_address(count: int) -> None:
    services = [
        _svc("198.51.100.23", 1000 + n, PortState.OPEN, Status.CONFIRMED) for n in range(count)
    ]
    text = _export(services)
    assert text.count("<host ") == 1 and text.count("<port ") == count
