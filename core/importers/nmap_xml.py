"""nmap's XML output (-oX): one claim per <port> of every <host>.

Parsed with defusedxml, so a document that declares entities (the "billion laughs" bomb)
or refers to external ones is refused before any expansion. The parser is fed line by
line, incrementally (ElementTree's pull parser, which is what iterparse is built on): we
learn at which line each port ended, and every <host> is dropped from the tree once it is
read, so memory stays flat however many hosts the scan covered.

Times: a host's endtime (else its starttime, else the scan's start) is when nmap saw its
ports. States map onto portintel's; "unfiltered" (an ACK scan: reachable, open or not
unknown) is no claim and is ignored, as are SCTP and IP-protocol "ports".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder, XMLPullParser

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from core.importers import fields
from core.importers.parsed import BadRow, Context, Ignored, Parsed, Row
from core.models import Endpoint, Kind, Observation, Transport

_UNSAFE = (
    "the XML declares entities or refers to external ones ({exc}); portintel refuses such "
    "files (an entity bomb or an attempt to read local files): nmap never writes them"
)


def parse(lines: Iterable[tuple[int, str]], ctx: Context) -> Iterator[Parsed]:
    parser: XMLPullParser[Element] = XMLPullParser(
        events=("start", "end"),
        _parser=DefusedXMLParser(target=TreeBuilder(), forbid_dtd=False),
    )
    root: Element | None = None
    scan_start: datetime | None = None
    port_lines: dict[int, int] = {}  # id(<port>) -> the line it ended on, until its host is read
    number = 0
    depth = 0  # 1 = inside <nmaprun>: its finished children are dropped
    for number, text in lines:
        try:
            parser.feed(text)
            events = list(_events(parser))
        except DefusedXmlException as exc:
            yield BadRow(number, "unsafe XML", _UNSAFE.format(exc=exc), resumable=False)
            return
        except ParseError as exc:
            yield BadRow(number, "broken XML", f"not well-formed XML: {exc}", resumable=False)
            return
        for event, elem in events:
            if event == "start":
                depth += 1
                if root is None:
                    root = elem
                    if elem.tag != "nmaprun":
                        yield BadRow(
                            number,
                            "not nmap XML",
                            f"the XML root is <{elem.tag}>, not nmap's <nmaprun>",
                            resumable=False,
                        )
                        return
                    scan_start = _time(elem.get("start"))
                continue
            depth -= 1
            if elem.tag == "port":
                port_lines[id(elem)] = number
            elif elem.tag == "host":
                yield from _host(elem, number, port_lines, scan_start, ctx)
                port_lines.clear()
            if depth == 1 and root is not None:
                root.remove(elem)  # a finished child of <nmaprun>: keep the tree from growing
    try:
        parser.close()
    except ParseError as exc:
        yield BadRow(number, "broken XML", f"the XML ends too early: {exc}", resumable=False)


def _events(parser: XMLPullParser[Element]) -> Iterator[tuple[str, Element]]:
    """(event, element) pairs: only start/end were asked for, so each carries an element."""
    for item in parser.read_events():
        if len(item) == 2 and isinstance(item[1], Element):  # always, for start/end events
            yield str(item[0]), item[1]


def _time(value: str | None) -> datetime | None:
    try:
        return fields.when(value)
    except fields.BadValue:
        return None  # a scan time we cannot read leaves the claim undated, not wrong


def _host(
    host: Element, end_line: int, port_lines: dict[int, int], start: datetime | None, ctx: Context
) -> Iterator[Parsed]:
    ports = [p for holder in host.findall("ports") for p in holder.findall("port")]
    if not ports:
        return
    address = next(
        (a for a in host.findall("address") if a.get("addrtype") in ("ipv4", "ipv6")), None
    )
    if address is None:
        yield BadRow(end_line, "no address", "an nmap <host> with ports has no IP <address>")
        return
    try:
        ip = fields.ip(address.get("addr"))
    except fields.BadValue as exc:
        yield BadRow(end_line, exc.reason, str(exc))
        return
    seen = _time(host.get("endtime")) or _time(host.get("starttime")) or start
    names = tuple(
        dict.fromkeys(
            n.get("name", "").strip().lower()
            for n in host.iter("hostname")
            if n.get("name", "").strip()
        )
    )
    for port in ports:
        yield _port(port, port_lines.get(id(port), end_line), ip, names, seen, ctx)


def _port(
    port: Element,
    line: int,
    ip: str,
    names: tuple[str, ...],
    seen: datetime | None,
    ctx: Context,
) -> Parsed:
    state_el = port.find("state")
    service_el = port.find("service")
    values = _values(ip, port, state_el, service_el)
    protocol = port.get("protocol", "")
    if protocol not in ("tcp", "udp"):
        return Ignored(line, f"{protocol or 'unknown'}-protocol ports (portintel tracks tcp/udp)")
    raw_state = state_el.get("state", "") if state_el is not None else ""
    if raw_state == "unfiltered":
        return Ignored(line, "'unfiltered' ports (an ACK scan cannot tell open from closed)")
    try:
        number = fields.port(port.get("portid"))
        state = fields.state(raw_state or None)
    except fields.BadValue as exc:
        return BadRow(line, exc.reason, str(exc))
    service = product = version = None
    cpes: tuple[str, ...] = ()
    if service_el is not None:
        service = fields.service(service_el.get("name"))
        product = fields.text(service_el.get("product"))
        version = fields.text(service_el.get("version"))
        cpes = tuple(c.text.strip() for c in service_el.findall("cpe") if c.text and c.text.strip())
    obs = Observation(
        endpoint=Endpoint(ip=ip, port=number, transport=Transport(protocol)),
        source=ctx.source,
        kind=Kind.IMPORTED,
        state=state,
        observed_at=seen,
        fetched_at=ctx.fetched_at,
        service=service,
        product=product,
        version=version,
        cpes=cpes,
        hostnames=names,
    )
    return Row(line, obs, values)


def _values(
    ip: str, port: Element, state_el: Element | None, service_el: Element | None
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "addr": ip,
        "protocol": port.get("protocol"),
        "portid": port.get("portid"),
    }
    if state_el is not None:
        values["state"] = state_el.get("state")
        if state_el.get("reason"):
            values["reason"] = state_el.get("reason")
    if service_el is not None:
        for key in ("name", "product", "version", "extrainfo", "ostype", "tunnel", "method"):
            if service_el.get(key):
                values["service" if key == "name" else key] = service_el.get(key)
        cpes = [c.text for c in service_el.findall("cpe") if c.text]
        if cpes:
            values["cpe"] = " ".join(cpes)
    return values
