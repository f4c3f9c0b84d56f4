"""naabu's JSON lines (-json): one open port per line.

A line is `{"host", "ip", "port", "protocol", "tls", "timestamp"}`; older releases wrote
only `ip` and `port`. `host` is the target as given (a name or an address) and `ip` what it
resolved to. naabu reports open ports only, so every claim is `open`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from core.importers import fields
from core.importers.jsonstream import JsonError, json_lines
from core.importers.parsed import BadRow, Context, Parsed, Row
from core.models import Endpoint, Kind, Observation


def parse(lines: Iterable[tuple[int, str]], ctx: Context) -> Iterator[Parsed]:
    for number, record in json_lines(lines):
        if isinstance(record, JsonError):
            yield BadRow(number, "not JSON", str(record))
        elif not isinstance(record, dict):
            yield BadRow(number, "not a naabu record", "expected a JSON object per line")
        else:
            yield _row(record, number, ctx)


def _row(record: dict[str, Any], line: int, ctx: Context) -> Parsed:
    host = fields.text(record.get("host"))
    port = record.get("port")
    if isinstance(port, dict):  # some releases nest it: {"Port": 443, "Protocol": ..., "TLS": ...}
        port = port.get("Port", port.get("port"))
    try:
        ip = fields.ip(record.get("ip") or host)
        endpoint = Endpoint(
            ip=ip, port=fields.port(port), transport=fields.transport(record.get("protocol"))
        )
        seen = fields.when(record.get("timestamp"))
    except fields.BadValue as exc:
        return BadRow(line, exc.reason, str(exc))
    name = host.lower() if host and not _is_ip(host) else None
    obs = Observation(
        endpoint=endpoint,
        source=ctx.source,
        kind=Kind.IMPORTED,
        observed_at=seen,
        fetched_at=ctx.fetched_at,
        hostnames=(name,) if name else (),
    )
    return Row(line, obs, fields.scalars(record))


def _is_ip(text: str) -> bool:
    try:
        fields.ip(text)
    except fields.BadValue:
        return False
    return True
