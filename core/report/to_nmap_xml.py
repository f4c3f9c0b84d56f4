"""The reconciled inventory as nmap XML (-oX), for the many tools that read nmap's output.

The document is valid against nmap's DTD (a test checks it with the DTD nmap ships). Each
address becomes a <host>; each Service a <port> with its state, service name, product,
version and CPEs. Our reconciliation status has no nmap attribute of its own: it is the
port state's `reason` (nmap's "why I think so", e.g. syn-ack), and a `portintel` script
element repeats it with the sources and times, where nmap readers show script output.

Nothing here pretends to be a scan: `args` names portintel and `version` is portintel's.
Services are written as they come, one <host> per run of consecutive services of one
address (the store yields them sorted); only one host's ports are held at a time.
Text from banners and providers is made inert: control characters become visible `\\xNN`,
and characters XML cannot carry at all are replaced.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import groupby
from typing import TextIO
from xml.sax.saxutils import escape, quoteattr

from core.models import PortState, Service, utcnow
from core.report.sanitize import printable

PORTINTEL_VERSION = "0.1.0"
# Code points XML 1.0 forbids outright (surrogates, U+FFFE/U+FFFF): `printable` leaves them.
_NOT_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")
_PROBED_BY_US = {"verifier"}


def _clean(text: str) -> str:
    return _NOT_XML.sub("?", printable(text))


def _attr(value: str | int) -> str:
    return quoteattr(_clean(str(value)))


def _stamp(when: datetime) -> str:
    return str(int(when.timestamp()))


def _timestr(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%a %b %d %H:%M:%S %Y UTC")


def write_nmap_xml(
    services: Iterable[Service], out: TextIO, *, generated_at: datetime | None = None
) -> int:
    """Stream services as an nmap XML document; returns the number of ports written."""
    now = generated_at or utcnow()
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE nmaprun>\n')
    out.write(f"<!-- portintel {PORTINTEL_VERSION}: reconciled inventory, not an nmap scan -->\n")
    out.write(
        f'<nmaprun scanner="nmap" args="portintel export --format nmap-xml" '
        f'start="{_stamp(now)}" startstr={_attr(_timestr(now))} '
        f'version="{PORTINTEL_VERSION}" xmloutputversion="1.05">\n'
        '<verbose level="0"/>\n<debugging level="0"/>\n'
    )
    hosts = up = ports = 0
    for _ip, group in groupby(services, key=lambda s: s.endpoint.ip):
        host = list(group)
        hosts += 1
        if any(s.state in (PortState.OPEN, PortState.CLOSED) for s in host):
            up += 1  # it answered (a closed port answers with a reset)
        for chunk in _host(host):
            out.write(chunk)
        ports += len(host)
    summary = f"portintel export: {hosts} address(es), {ports} port(s)"
    out.write(
        f'<runstats><finished time="{_stamp(now)}" timestr={_attr(_timestr(now))} '
        f'elapsed="0" summary={_attr(summary)} exit="success"/>'
        f'<hosts up="{up}" down="0" total="{hosts}"/></runstats>\n</nmaprun>\n'
    )
    return ports


def _host(services: list[Service]) -> Iterator[str]:
    ip = services[0].endpoint.ip
    first = min(s.first_seen for s in services)
    last = max(s.last_seen for s in services)
    answered = any(s.state in (PortState.OPEN, PortState.CLOSED) for s in services)
    yield f'<host starttime="{_stamp(first)}" endtime="{_stamp(last)}">'
    yield (
        f'<status state="{"up" if answered else "unknown"}" reason="portintel" reason_ttl="0"/>\n'
    )
    yield f'<address addr={_attr(ip)} addrtype="{"ipv6" if ":" in ip else "ipv4"}"/>\n'
    names = list(dict.fromkeys(n for s in services for n in s.hostnames))
    if names:
        yield "<hostnames>"
        yield from (f'<hostname name={_attr(n)} type="user"/>' for n in names)
        yield "</hostnames>\n"
    yield "<ports>"
    ordered = sorted(services, key=lambda s: (s.endpoint.transport.value, s.endpoint.port))
    yield from (_port(s) for s in ordered)
    yield "</ports>\n</host>\n"


def _port(svc: Service) -> str:
    ep = svc.endpoint
    parts = [
        f'<port protocol="{ep.transport.value}" portid="{ep.port}">',
        f'<state state="{svc.state.value}" reason={_attr(svc.status.value)} reason_ttl="0"/>',
    ]
    if svc.service or svc.product or svc.version or svc.cpes:
        parts.append(_service(svc))
    detail = (
        f"status={svc.status.value}; sources={','.join(svc.sources) or '-'}; "
        f"first_seen={svc.first_seen.isoformat()}; last_seen={svc.last_seen.isoformat()}"
    )
    parts.append(f'<script id="portintel" output={_attr(detail)}/>')
    parts.append("</port>\n")
    return "".join(parts)


def _service(svc: Service) -> str:
    ours = svc.chosen_from in _PROBED_BY_US or svc.status.value == "confirmed"
    attrs = [f"name={_attr(svc.service or 'unknown')}"]
    if svc.product:
        attrs.append(f"product={_attr(svc.product)}")
    if svc.version:
        attrs.append(f"version={_attr(svc.version)}")
    if svc.tls is not None:
        attrs.append('tunnel="ssl"')
    # Every name we hold came from a probe (ours or a scanner's), never from a port table;
    # conf says how much we trust it: confirmed by our own probe, or a passive claim.
    attrs.append('method="probed"')
    attrs.append(f'conf="{10 if ours else 5}"')
    cpes = "".join(f"<cpe>{escape(_clean(c))}</cpe>" for c in svc.cpes)
    return (
        f"<service {' '.join(attrs)}>{cpes}</service>" if cpes else f"<service {' '.join(attrs)}/>"
    )
