"""The reconciled CSV: one row per (ip, port, transport).

The first ten columns are fixed (scripts read them by position):
ip,port,transport,status,service,product,version,sources,first_seen,last_seen
then the others. Lists are `;`-separated; times ISO 8601 UTC.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import datetime
from typing import TextIO

from core.models import Service
from core.report.sanitize import csv_cell

COLUMNS = (
    "ip",
    "port",
    "transport",
    "status",
    "service",
    "product",
    "version",
    "sources",
    "first_seen",
    "last_seen",
    "state",
    "hostnames",
    "cves",
    "max_cvss",
    "tags",
    "org",
    "chosen_from",
    "conflicts",
    "http_title",
    "tls_versions",
    "tls_cipher",
    "cert_subject",
    "cert_not_after",
    "colour",
)


def iso(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else ""


def row(svc: Service) -> dict[str, str]:
    cvss = [v.cvss for v in svc.vulns if v.cvss is not None]
    cert = svc.tls.cert if svc.tls else None
    values = {
        "ip": svc.endpoint.ip,
        "port": str(svc.endpoint.port),
        "transport": svc.endpoint.transport.value,
        "status": svc.status.value,
        "service": svc.service or "",
        "product": svc.product or "",
        "version": svc.version or "",
        "sources": ";".join(svc.sources),
        "first_seen": iso(svc.first_seen),
        "last_seen": iso(svc.last_seen),
        "state": svc.state.value,
        "hostnames": ";".join(svc.hostnames),
        "cves": ";".join(v.cve for v in svc.vulns),
        "max_cvss": f"{max(cvss):.1f}" if cvss else "",
        "tags": ";".join(svc.tags),
        "org": svc.org or "",
        "chosen_from": svc.chosen_from or "",
        "conflicts": ";".join(
            f"{c.field}:" + ",".join(f"{src}={val}" for src, val in sorted(c.values.items()))
            for c in svc.conflicts
        ),
        "http_title": svc.http_title or "",
        "tls_versions": ";".join(svc.tls.versions) if svc.tls else "",
        "tls_cipher": (svc.tls.cipher or "") if svc.tls else "",
        "cert_subject": (cert.subject or "") if cert else "",
        "cert_not_after": iso(cert.not_after) if cert else "",
        "colour": svc.colour.value if svc.colour else "",
    }
    return {key: csv_cell(value) for key, value in values.items()}


def write_csv(services: Iterable[Service], out: TextIO) -> int:
    """Stream services as CSV rows; returns the number of rows written."""
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for svc in services:
        writer.writerow(row(svc))
        count += 1
    return count
