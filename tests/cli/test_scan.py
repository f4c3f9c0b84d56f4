"""`portintel scan` and `verify` end to end inside the lab namespace, against real daemons.

Ground truth is the lab itself: the ports it started daemons on and dpkg's versions.
The CLI runs in-process on a thread that joined the lab's namespace (its forked scan
workers inherit it), so its 127.0.0.1 holds only the lab's daemons.
"""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.app import app
from core.models import Endpoint, Kind, Observation, Transport
from core.store import Store
from tests.lab.daemons import RunningLab

CLOSED_PORT = 9  # discard: nothing in the lab listens there
CLAIM_TIME = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def invoke(lab: RunningLab, args: list[str]) -> Any:
    return lab.ns.call(lambda: CliRunner().invoke(app, args), timeout=240)


def claim(ip: str, port: int, source: str = "shodan", product: str | None = None) -> Observation:
    return Observation(
        endpoint=Endpoint(ip=ip, port=port, transport=Transport.TCP),
        source=source,
        kind=Kind.PASSIVE,
        observed_at=CLAIM_TIME,
        fetched_at=CLAIM_TIME + timedelta(days=30),
        product=product,
    )


def tcp_lab_ports(lab: RunningLab) -> dict[int, str]:
    return {p.port: svc.name for svc in lab for p in svc.ports if p.transport == Transport.TCP}


def by_endpoint(doc: dict[str, Any]) -> dict[tuple[str, int, str], dict[str, Any]]:
    return {
        (s["endpoint"]["ip"], s["endpoint"]["port"], s["endpoint"]["transport"]): s
        for s in doc["services"]
    }


@pytest.fixture
def home(isolated: Path) -> Path:
    return isolated


def test_full_scan_finds_every_lab_port_and_names_it(lab: RunningLab, home: Path) -> None:
    # When the whole TCP range of the namespace's loopback is scanned, probes only
    result = invoke(lab, ["scan", "127.0.0.1", "--no-passive", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    found = by_endpoint(json.loads(result.stdout))
    expected = tcp_lab_ports(lab)
    # Then exactly the lab's TCP ports are open, each active-only (no provider knows them)
    assert {port for (_, port, t) in found if t == "tcp"} == set(expected)
    for port, name in expected.items():
        svc = found[("127.0.0.1", port, "tcp")]
        assert svc["status"] == "active-only", (name, svc)
        assert svc["sources"] == ["verifier"]
    # And the products are right, with the dpkg version where the service reveals it
    for svc in lab:
        for p in svc.ports:
            if p.transport != Transport.TCP:
                continue
            got = found[("127.0.0.1", p.port, "tcp")]
            assert (got["product"] or "").lower() == svc.product.lower(), (svc.name, got)
            if svc.version_revealed:
                assert got["version"] == svc.upstream_version, (svc.name, got)


def test_verify_confirms_refutes_and_never_leaves_scope(lab: RunningLab, home: Path) -> None:
    # Given stored provider claims: one true, one stale, and one for an address outside
    # the targets (where a listener counts whether anyone knocked)
    nginx = lab["nginx"].port("http")
    db = f"sqlite:///{home / 'portintel.db'}"
    with Store(db) as store:
        run = store.start_run("enrich", ["127.0.0.1/32"])
        store.add_observations(
            run,
            [
                claim("127.0.0.1", nginx, product="nginx"),
                claim("127.0.0.1", CLOSED_PORT, product="Exim"),
                claim("127.0.0.2", nginx),
            ],
        )

    def trap() -> socket.socket:
        sock = socket.socket()
        sock.bind(("127.0.0.2", nginx))
        sock.listen(16)
        sock.setblocking(False)
        return sock

    outside = lab.ns.call(trap)
    try:
        # When the claims for 127.0.0.1 are verified (no provider is asked)
        result = invoke(lab, ["verify", "127.0.0.1", "--source", "internetdb", "--format", "json"])
        # Then the true claim is confirmed and the stale one refuted, keeping its age
        found = by_endpoint(json.loads(result.stdout))
        ok = found[("127.0.0.1", nginx, "tcp")]
        assert ok["status"] == "confirmed", ok
        assert set(ok["sources"]) >= {"shodan", "verifier"}
        stale = found[("127.0.0.1", CLOSED_PORT, "tcp")]
        assert stale["status"] == "refuted", stale
        assert stale["state"] == "closed"
        shodan_seen = next(s for s in stale["per_source"] if s["source"] == "shodan")
        assert shodan_seen["last_seen"].startswith("2026-06-01")
        # And nothing outside the targets was reported or touched
        assert all(ip == "127.0.0.1" for ip, _, _ in found)
        with pytest.raises(BlockingIOError):
            outside.accept()
    finally:
        outside.close()


def test_udp_services_are_found_and_named(lab: RunningLab, home: Path) -> None:
    udp = {p.port: svc for svc in lab for p in svc.ports if p.transport == Transport.UDP}
    spec = "U:" + ",".join(str(p) for p in sorted(udp)) + f",{CLOSED_PORT}"
    result = invoke(lab, ["scan", "127.0.0.1", "--no-passive", "-p", spec, "-f", "json"])
    assert result.exit_code == 0, result.stderr
    found = by_endpoint(json.loads(result.stdout))
    assert {port for (_, port, t) in found if t == "udp"} == set(udp)
    memcached = found[("127.0.0.1", lab["memcached"].port("memcached", Transport.UDP), "udp")]
    assert memcached["product"] == "memcached"
    assert memcached["version"] == lab["memcached"].upstream_version
    dns = found[("127.0.0.1", lab["dnsmasq"].port("dns", Transport.UDP), "udp")]
    assert dns["service"] == "dns"


def test_tls_suites_are_enumerated_into_the_ciphers_view(lab: RunningLab, home: Path) -> None:
    # Given nginx configured with known TLS 1.2 and 1.3 suites (the lab wrote them)
    nginx = lab["nginx"]
    assert nginx.tls is not None
    https = nginx.port("https")
    # When its HTTPS port is scanned, then the Ciphers view lists exactly those suites
    scanned = invoke(lab, ["scan", "127.0.0.1", "--no-passive", "-p", str(https)])
    assert scanned.exit_code == 0, scanned.stderr
    view = invoke(lab, ["report", "ciphers", "--format", "json"])
    assert view.exit_code == 0, view.stderr
    rows = json.loads(view.stdout)
    rows = rows["rows"] if isinstance(rows, dict) else rows
    expected = set(nginx.tls.tls12_ciphers) | set(nginx.tls.tls13_ciphersuites)
    assert {row["suite"] for row in rows} == expected
    # And the inventory carries every accepted version
    listed = invoke(lab, ["scan", "127.0.0.1", "--no-passive", "-p", str(https), "-f", "json"])
    svc = by_endpoint(json.loads(listed.stdout))[("127.0.0.1", https, "tcp")]
    assert set(svc["tls"]["versions"]) == {"TLSv1.2", "TLSv1.3"}
