"""The loop shared by provider-shaped imports: JSON records in, provider rows out.

Each provider module says how one JSON record becomes a `RawRecord` for that provider's
normalizer (and where a claim's original values are in it); this turns a file's records
into rows, bad JSON into bad rows, and keeps the record count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from core.importers import fields
from core.importers.jsonstream import JsonError, json_records, ndjson_records
from core.importers.parsed import BadRow, Context, Parsed, ProviderRow
from core.importers.records import Values
from core.models import Endpoint, RawRecord, trusted

ToRow = Callable[[dict[str, Any], int, Context], ProviderRow | BadRow]


def rows(
    lines: Iterable[tuple[int, str]], ctx: Context, to_row: ToRow, *, json_lines: bool = False
) -> Iterator[Parsed]:
    """One item per record. `json_lines`: the caller knows the file is JSON lines (it may
    be handed a run of lines from the middle of one), so the shape is not guessed."""
    records = ndjson_records(lines) if json_lines else json_records(lines)
    for number, record in records:
        if isinstance(record, JsonError):
            yield BadRow(number, "not JSON", str(record), resumable=record.resumable)
        elif not isinstance(record, dict):
            yield BadRow(number, "not a record", "expected a JSON object")
        else:
            yield to_row(record, number, ctx)


def raw(ctx: Context, source: str, kind: str, line: int, payload: Any) -> RawRecord:
    """The record as the provider's API would have returned it; `query` says where it was."""
    # Built from our own parse with a UTC time: validation would only re-check that.
    return trusted(
        RawRecord,
        {
            "source": source,
            "endpoint_kind": kind,
            "query": f"{ctx.file}:{line}",
            "fetched_at": ctx.fetched_at,
            "payload": payload,
        },
    )


def by_endpoint(
    entries: Iterable[tuple[str | None, object, object, dict[str, Any]]],
    fallback: Values,
    transports: dict[str, str] | None = None,
) -> Callable[[Endpoint], Values]:
    """A lookup of original values by endpoint, from (ip, port, transport, values) entries.

    Built only when a claim asks for it: most records hold one service.
    """
    table: dict[tuple[str, int, str], Values] = {}
    for ip, port, transport, values in entries:
        try:
            key_ip = fields.ip(ip) if ip else ""
            key_port = fields.port(port)
        except fields.BadValue:
            continue
        name = str(transport or "tcp").lower()
        name = (transports or {}).get(name, name)
        table.setdefault((key_ip, key_port, name), values)

    def lookup(endpoint: Endpoint) -> Values:
        key = (endpoint.ip, endpoint.port, endpoint.transport.value)
        found = table.get(key) or table.get(("", endpoint.port, endpoint.transport.value))
        if found is not None:
            return found
        # A port the record names without detail (Shodan's `ports`, Censys's represented
        # ports): the record's own values, and which endpoint was meant.
        where = {} if "ip" in fallback or "ip_str" in fallback else {"ip": endpoint.ip}
        return {**fallback, **where, "port": endpoint.port}

    return lookup
