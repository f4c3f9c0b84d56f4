"""Netlas exports: responses downloads, saved search pages and host lookups.

A download (`POST /api/responses/download/`, what the Netlas client and web UI save) is one
`{"data": {...}}` document per line, or a JSON array of them; each document is one service
response. A saved search page is `{"items": [{"data": ...}], ...}`; a saved host lookup is
the `/api/host/{ip}/` summary (`{"ip", "type": "ip", "ports": [...]}`). Documents are handed
to the injected Netlas normalizer as the connector's record kinds: "search" (a responses
page, `{"items": [...]}`) and "host". One ip:port can appear several times (one document
per virtual host): the importer keeps the first and counts the rest as duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from core.importers import fields
from core.importers.parsed import BadRow, Context, Parsed, ProviderRow
from core.importers.provider_json import by_endpoint, raw, rows

SOURCE = "netlas"
HOST_KIND = "host"
SEARCH_KIND = "search"


def parse(lines: Iterable[tuple[int, str]], ctx: Context) -> Iterator[Parsed]:
    return rows(lines, ctx, _row)


def parse_lines(lines: Iterable[tuple[int, str]], ctx: Context) -> Iterator[Parsed]:
    """`parse` for lines known to be JSON lines: any run of them parses on its own."""
    return rows(lines, ctx, _row, json_lines=True)


def is_response(record: dict[str, Any]) -> bool:
    data = record.get("data")
    return isinstance(data, dict) and ("prot4" in data or "prot7" in data or "uri" in data)


def is_host(record: dict[str, Any]) -> bool:
    ports = record.get("ports")
    return (
        "ip" in record
        and isinstance(ports, list)
        and any(isinstance(p, dict) and "prot4" in p for p in ports)
    )


def is_page(record: dict[str, Any]) -> bool:
    items = record.get("items")
    return isinstance(items, list) and all(isinstance(i, dict) and "data" in i for i in items)


def _row(record: dict[str, Any], line: int, ctx: Context) -> ProviderRow | BadRow:
    if is_response(record):
        data = record["data"]
        values = fields.scalars(data)
        payload = {"items": [record]}
        return ProviderRow(line, raw(ctx, SOURCE, SEARCH_KIND, line, payload), lambda _e: values)
    if is_page(record):
        docs = [i["data"] for i in record["items"] if isinstance(i.get("data"), dict)]
        lookup = by_endpoint(
            ((d.get("ip"), d.get("port"), d.get("prot4"), fields.scalars(d)) for d in docs), {}
        )
        return ProviderRow(line, raw(ctx, SOURCE, SEARCH_KIND, line, record), lookup)
    if is_host(record):
        ports = [p for p in record["ports"] if isinstance(p, dict)]
        lookup = by_endpoint(
            (
                (
                    record.get("ip"),
                    p.get("port"),
                    p.get("prot4"),
                    {"ip": record.get("ip"), **fields.scalars(p)},
                )
                for p in ports
            ),
            {"ip": record.get("ip")},
        )
        return ProviderRow(line, raw(ctx, SOURCE, HOST_KIND, line, record), lookup)
    return BadRow(
        line,
        "not a Netlas record",
        'expected a Netlas response ({"data": {ip, port, prot4, ...}}) or a host lookup',
    )
