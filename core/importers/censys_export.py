"""Censys exports: Platform API v3 host records, saved or downloaded.

Accepted, one per line or as one document (a JSON array is streamed element by element):
a host lookup answer (`{"result": {"resource": Host}}`), a search answer
(`{"result": {"hits": [...]}}`), a single search hit (`{"host_v1": {...}}`), a bulk
element (`{"resource": Host}`) or a bare Host (`{"ip", "services": [...]}`), which is
what an export of hosts holds. Each is handed to the injected Censys normalizer as the
connector's own record kinds: "host" (a lookup answer) or "search" (a search page).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from core.importers import fields
from core.importers.parsed import BadRow, Context, Parsed, ProviderRow
from core.importers.provider_json import by_endpoint, raw, rows

SOURCE = "censys"
HOST_KIND = "host"
SEARCH_KIND = "search"
_TRANSPORTS = {"quic": "udp"}


def parse(lines: Iterable[tuple[int, str]], ctx: Context) -> Iterator[Parsed]:
    return rows(lines, ctx, _row)


def parse_lines(lines: Iterable[tuple[int, str]], ctx: Context) -> Iterator[Parsed]:
    """`parse` for lines known to be JSON lines: any run of them parses on its own."""
    return rows(lines, ctx, _row, json_lines=True)


def is_host(record: dict[str, Any]) -> bool:
    return "ip" in record and isinstance(record.get("services"), list)


def looks_like(record: dict[str, Any]) -> bool:
    """Is this any of the Censys shapes above? (For format detection.)"""
    result = record.get("result")
    if isinstance(result, dict) and ("resource" in result or "hits" in result):
        return True
    if isinstance(record.get("host_v1"), dict) or isinstance(record.get("resource"), dict):
        return True
    return is_host(record) and "transport_protocol" in str(record.get("services"))[:4096]


def _row(record: dict[str, Any], line: int, ctx: Context) -> ProviderRow | BadRow:
    result = record.get("result")
    if isinstance(result, dict) and isinstance(result.get("resource"), dict):
        kind, payload, hosts = HOST_KIND, record, [result["resource"]]
    elif isinstance(result, dict) and isinstance(result.get("hits"), list):
        kind, payload = SEARCH_KIND, record
        hosts = [_hit_host(h) for h in result["hits"]]
    elif isinstance(record.get("host_v1"), dict):
        kind, payload = SEARCH_KIND, {"result": {"hits": [record], "next_page_token": ""}}
        hosts = [_hit_host(record)]
    elif isinstance(record.get("resource"), dict):
        kind, payload, hosts = HOST_KIND, {"result": record}, [record["resource"]]
    elif is_host(record):
        kind, payload, hosts = HOST_KIND, {"result": {"resource": record}}, [record]
    else:
        return BadRow(
            line,
            "not a Censys record",
            "expected a Censys v3 host (ip, services[]) or a host/search API answer",
        )
    entries = [
        (host.get("ip"), svc.get("port"), svc.get("transport_protocol"), _values(host, svc))
        for host in hosts
        if host
        for svc in host.get("services") or ()
        if isinstance(svc, dict)
    ]
    fallback = {"ip": hosts[0].get("ip")} if len(hosts) == 1 and hosts[0] else {}
    lookup = by_endpoint(entries, fallback, _TRANSPORTS)
    return ProviderRow(line, raw(ctx, SOURCE, kind, line, payload), lookup)


def _hit_host(hit: Any) -> dict[str, Any]:
    host_v1 = hit.get("host_v1") if isinstance(hit, dict) else None
    resource = host_v1.get("resource") if isinstance(host_v1, dict) else None
    return resource if isinstance(resource, dict) else {}


def _values(host: dict[str, Any], service: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {"ip": host.get("ip")}
    values.update(fields.scalars(service))
    software = service.get("software")
    if isinstance(software, list) and software and isinstance(software[0], dict):
        values["product"] = software[0].get("product")
        values["version"] = software[0].get("version")
    return values
