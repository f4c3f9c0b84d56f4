"""Benchmark: report generation (risk, views, HTML) for a large synthetic inventory.

    python bench/report.py [--services 100000] [--out report.html] [--tracemalloc]

Generates reconciled services on documentation addresses (192.0.2.0/24, 198.51.100.0/24,
203.0.113.0/24, then 2001:db8::/32), about ten ports per host, with TLS on the HTTPS
ports, CVEs, weak ciphers, CDN-tagged hosts and a few hostile banners; then times each
stage of `portintel report`: colour and CDN marking, scoring every asset, prevalence,
the four views, and the self-contained HTML file. Prints seconds per stage, peak RSS
(and with --tracemalloc the peak of Python allocations, slower) and the HTML size.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from core.models import (
    CertSummary,
    Endpoint,
    PortState,
    Service,
    SourceSeen,
    Status,
    TlsSummary,
    Transport,
    Vuln,
)
from core.report.to_html import render_html
from core.report.views import ciphers_view, list_view, products_view, summary_view
from core.risk.prevalence import count_instances
from core.risk.scoring import annotate, score_assets

T = TypeVar("T")
NOW = datetime(2026, 6, 1, tzinfo=UTC)
V4_NETS = ("192.0.2.", "198.51.100.", "203.0.113.")
PORTS_PER_HOST = 10

# port -> (service, product, versions): what internet scans keep finding.
PORTS: dict[int, tuple[str | None, str | None, tuple[str, ...]]] = {
    22: ("ssh", "OpenSSH", ("8.9p1", "9.2p1", "9.6p1")),
    25: ("smtp", "Postfix smtpd", ("",)),
    53: ("dns", "dnsmasq", ("2.89", "2.90")),
    80: ("http", "nginx", ("1.18.0", "1.22.1", "1.24.0")),
    443: ("http", "nginx", ("1.18.0", "1.22.1", "1.24.0")),
    3306: ("mysql", "MySQL", ("8.0.36", "5.7.44")),
    3389: ("rdp", "Microsoft Terminal Services", ("",)),
    5432: ("postgresql", "PostgreSQL", ("15.6", "16.2")),
    6379: ("redis", "Redis key-value store", ("7.2.4",)),
    8080: ("http", "Apache httpd", ("2.4.57", "2.4.58")),
    8443: ("http", "Jetty", ("9.4.53",)),
    9200: ("http", "Elasticsearch REST API", ("8.12.2",)),
    9999: (None, None, ("",)),
}
CIPHERS = (
    "TLS_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "ECDHE-RSA-AES256-SHA",
)


def address(host: int) -> str:
    if host < 768:
        net, last = divmod(host, 256)
        return f"{V4_NETS[net]}{last}"
    n = host - 768
    return f"2001:db8:{n >> 16 & 0xFFFF:x}:{n & 0xFFFF:x}::1"


def synthetic(count: int, seed: int = 5) -> Iterator[Service]:
    """`count` services, PORTS_PER_HOST per address, deterministic for a seed."""
    rng = random.Random(seed)
    ports = list(PORTS)
    for index in range(count):
        host, slot = divmod(index, PORTS_PER_HOST)
        ip = address(host)
        port = ports[(host + slot) % len(ports)] if slot < len(ports) else 10000 + slot
        service, product, versions = PORTS.get(port, (None, None, ("",)))
        first = NOW - timedelta(days=rng.randrange(1, 400))
        tls = None
        if port in (443, 8443):
            tls = TlsSummary(
                versions=("TLSv1.2", "TLSv1.3") if rng.random() < 0.8 else ("TLSv1", "TLSv1.2"),
                cipher=rng.choice(CIPHERS),
                cert=CertSummary(
                    subject=f"CN=h{host}.example.com",
                    issuer="CN=Example CA",
                    not_after=NOW + timedelta(days=rng.randrange(-60, 365)),
                    key_type="RSA",
                    key_bits=2048 if rng.random() < 0.95 else 1024,
                    self_signed=rng.random() < 0.1,
                ),
            )
        vulns = (
            (Vuln(cve=f"CVE-2024-{rng.randrange(1000, 9999)}", cvss=round(rng.uniform(2, 10), 1)),)
            if rng.random() < 0.05
            else ()
        )
        banner = f"{product or 'unknown'} banner {index}"
        if index % 5000 == 0:
            banner = "</script><script>alert(1)</script>"  # hostile input is normal input
        yield Service(
            endpoint=Endpoint(ip=ip, port=port, transport=Transport.TCP),
            state=PortState.OPEN if rng.random() < 0.97 else PortState.CLOSED,
            status=Status.CONFIRMED,
            service=service,
            product=product,
            version=rng.choice(versions) or None,
            first_seen=first,
            last_seen=NOW,
            per_source=(
                SourceSeen(source="shodan", first_seen=first, last_seen=NOW, state=PortState.OPEN),
            ),
            hostnames=(f"h{host}.example.com",),
            org=f"Example Org {host % 7}",
            vulns=vulns,
            tags=("cdn",) if host % 50 == 0 else (),
            banner=banner,
            tls=tls,
        )


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def timed(label: str, fn: Callable[[], T], times: list[tuple[str, float]]) -> T:
    start = time.perf_counter()
    result = fn()
    times.append((label, time.perf_counter() - start))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=100_000)
    parser.add_argument("--out", type=Path, help="keep the HTML here (default: a temp file)")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations")
    args = parser.parse_args()
    if args.tracemalloc:
        tracemalloc.start()

    times: list[tuple[str, float]] = []
    raw = timed("generate (not part of the report)", lambda: list(synthetic(args.services)), times)
    rss_inventory = peak_rss_mib()
    services = timed("annotate: colours, CDN edges", lambda: list(annotate(raw)), times)
    risks = timed("score every asset", lambda: score_assets(services, now=NOW), times)
    prevalence = timed("prevalence", lambda: count_instances(services), times)

    with tempfile.TemporaryDirectory() as tmp:
        path = args.out or Path(tmp) / "report.html"

        def write() -> None:
            with path.open("w", encoding="utf-8") as out:
                render_html(out, services, risks, generated_at=NOW, prevalence=prevalence)

        timed("HTML report (four views + file)", write, times)
        size = path.stat().st_size
    in_report = len(times)
    # The terminal and CSV outputs render one view at a time: timed on their own.
    timed("summary view alone", lambda: summary_view(services, risks), times)
    timed("list view alone", lambda: list_view(services, prevalence), times)
    timed("products view alone", lambda: products_view(services), times)
    timed("ciphers view alone", lambda: ciphers_view(services), times)

    report_seconds = sum(seconds for _, seconds in times[1:in_report])
    print(f"{args.services:,} services on {len(risks):,} assets")
    for label, seconds in times:
        print(f"  {label:<36} {seconds:8.2f} s")
    print(f"  {'HTML report total (annotate to file)':<36} {report_seconds:8.2f} s")
    print(f"HTML size: {size / 2**20:.1f} MiB")
    print(
        f"peak RSS: {peak_rss_mib():.0f} MiB (after generating the inventory: {rss_inventory:.0f})"
    )
    if args.tracemalloc:
        _, peak = tracemalloc.get_traced_memory()
        print(f"peak Python allocations (tracemalloc): {peak / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
