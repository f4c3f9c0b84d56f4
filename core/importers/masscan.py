"""masscan's outputs: JSON (-oJ), newline JSON (-oD) and the list format (-oL).

masscan's -oJ output is an array written one record per line, but not quite JSON: older
versions end every record with a comma (the last one too) and close with a `{finished: 1}`
line, newer ones put the comma at the start of the next record. It is therefore read line
by line, commas trimmed, and never as one document. A record names one address, its scan
time (Unix seconds, as a string) and a `ports` list; `--banners` adds records whose port
entry has a `service` instead of a `status`: those carry no open/closed claim of their own
and are counted as ignored. The list format is `<state> <proto> <port> <ip> <time>` per
line, with `#` comments and `banner ...` lines (ignored likewise).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from core.importers import fields
from core.importers.parsed import BadRow, Context, Ignored, Parsed, Row
from core.models import Endpoint, Kind, Observation, PortState

_BANNER = "banner records (service detail from --banners, no open/closed claim)"
_CLOSED_LINES = ("[", "]", "{finished: 1}", "{finished:1}")


def parse_json(lines: Iterable[tuple[int, str]], ctx: Context) -> Iterator[Parsed]:
    for number, text in lines:
        body = text.strip().strip(",").strip()
        if not body or body in _CLOSED_LINES:
            continue
        try:
            record = json.loads(body)
        except json.JSONDecodeError as exc:
            yield BadRow(number, "not JSON", f"not a masscan JSON record: {exc.msg}")
            continue
        if not isinstance(record, dict):
            yield BadRow(number, "not a masscan record", "expected a JSON object per line")
            continue
        if "ports" in record:
            yield from _record(record, number, ctx)
        else:
            yield _ndjson(record, number, ctx)


def _record(record: Mapping[str, Any], line: int, ctx: Context) -> Iterator[Parsed]:
    ports = record.get("ports")
    if not isinstance(ports, list) or not ports:
        yield BadRow(line, "not a masscan record", "a masscan record without a `ports` list")
        return
    for entry in ports:
        if not isinstance(entry, dict):
            yield BadRow(line, "not a masscan record", "a `ports` entry is not an object")
            continue
        if "status" not in entry and "service" in entry:
            yield Ignored(line, _BANNER)
            continue
        values: dict[str, Any] = {"ip": record.get("ip"), "timestamp": record.get("timestamp")}
        values.update(fields.scalars(entry))
        yield _claim(
            line,
            values,
            ctx,
            ip=record.get("ip"),
            port=entry.get("port"),
            proto=entry.get("proto"),
            status=entry.get("status"),
            when=record.get("timestamp"),
        )


def _ndjson(record: Mapping[str, Any], line: int, ctx: Context) -> Parsed:
    """-oD: one port per line, `rec_type` "status" (a claim) or "banner" (detail)."""
    if record.get("rec_type") == "banner":
        return Ignored(line, _BANNER)
    data = record.get("data")
    status = data.get("status") if isinstance(data, dict) else record.get("status")
    values = fields.scalars(record)
    if isinstance(data, dict):
        values.update(fields.scalars(data))
    return _claim(
        line,
        values,
        ctx,
        ip=record.get("ip"),
        port=record.get("port"),
        proto=record.get("proto"),
        status=status,
        when=record.get("timestamp"),
    )


def parse_list(lines: Iterable[tuple[int, str]], ctx: Context) -> Iterator[Parsed]:
    for number, text in lines:
        body = text.strip()
        if not body or body.startswith("#"):
            continue
        parts = body.split()
        if parts[0] == "banner":
            yield Ignored(number, _BANNER)
            continue
        if len(parts) < 4:
            yield BadRow(
                number,
                "not a masscan line",
                f"expected `<state> <proto> <port> <ip> <time>`, got {body[:80]!r}",
            )
            continue
        values = dict(zip(("state", "proto", "port", "ip", "timestamp"), parts, strict=False))
        yield _claim(
            number,
            values,
            ctx,
            ip=parts[3],
            port=parts[2],
            proto=parts[1],
            status=parts[0],
            when=parts[4] if len(parts) > 4 else None,
        )


def _claim(
    line: int,
    values: dict[str, Any],
    ctx: Context,
    *,
    ip: object,
    port: object,
    proto: object,
    status: object,
    when: object,
) -> Parsed:
    try:
        state = fields.state(status)
        if state not in (PortState.OPEN, PortState.CLOSED):
            raise fields.BadValue("bad state", f"masscan state {status!r} is not open or closed")
        endpoint = Endpoint(
            ip=fields.ip(ip), port=fields.port(port), transport=fields.transport(proto)
        )
        seen: datetime | None = fields.when(when)
    except fields.BadValue as exc:
        return BadRow(line, exc.reason, str(exc))
    obs = Observation(
        endpoint=endpoint,
        source=ctx.source,
        kind=Kind.IMPORTED,
        state=state,
        observed_at=seen,
        fetched_at=ctx.fetched_at,
    )
    return Row(line, obs, values)
