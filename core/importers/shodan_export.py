"""Shodan exports: `shodan download` files and saved host lookups.

A download (`.json.gz`, or plain) holds one banner per line: the shape of a search match
(Datapedia). A saved `shodan host` / `GET /shodan/host/{ip}` answer is one host object with
its banners in `data[]`; a saved search page has them in `matches[]`. Each becomes the
`RawRecord` the Shodan connector itself produces (a banner is handed over as a one-match
search page), so the injected Shodan normalizer maps imports and live data alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from core.importers import fields
from core.importers.parsed import BadRow, Context, Parsed, ProviderRow
from core.importers.provider_json import by_endpoint, raw, rows
from core.importers.records import Values

SOURCE = "shodan"
HOST_KIND = "host"
SEARCH_KIND = "search"


def parse(lines: Iterable[tuple[int, str]], ctx: Context) -> Iterator[Parsed]:
    return rows(lines, ctx, _row)


def parse_lines(lines: Iterable[tuple[int, str]], ctx: Context) -> Iterator[Parsed]:
    """`parse` for lines known to be JSON lines: any run of them parses on its own."""
    return rows(lines, ctx, _row, json_lines=True)


def is_banner(record: dict[str, Any]) -> bool:
    has_ip = "ip_str" in record or "ipv6" in record
    return "port" in record and has_ip and not isinstance(record.get("data"), list)


def is_host(record: dict[str, Any]) -> bool:
    return "ip_str" in record and isinstance(record.get("data"), list)


def _banner_values(banner: dict[str, Any]) -> Values:
    values = fields.scalars(banner)
    meta = banner.get("_shodan")
    if isinstance(meta, dict) and isinstance(meta.get("module"), str):
        values["module"] = meta["module"]
    return values


def _row(record: dict[str, Any], line: int, ctx: Context) -> ProviderRow | BadRow:
    if is_host(record):
        banners = [b for b in record["data"] if isinstance(b, dict)]
        lookup = by_endpoint(
            (
                (b.get("ip_str"), b.get("port"), b.get("transport"), dict(_banner_values(b)))
                for b in banners
            ),
            fields.scalars(record),
        )
        return ProviderRow(line, raw(ctx, SOURCE, HOST_KIND, line, record), lookup)
    if isinstance(record.get("matches"), list):
        banners = [b for b in record["matches"] if isinstance(b, dict)]
        lookup = by_endpoint(
            (
                (b.get("ip_str"), b.get("port"), b.get("transport"), dict(_banner_values(b)))
                for b in banners
            ),
            {},
        )
        return ProviderRow(line, raw(ctx, SOURCE, SEARCH_KIND, line, record), lookup)
    if is_banner(record):
        payload = {"matches": [record], "total": 1}
        return ProviderRow(
            line, raw(ctx, SOURCE, SEARCH_KIND, line, payload), lambda _e: _banner_values(record)
        )
    return BadRow(
        line,
        "not a Shodan record",
        "expected a Shodan banner (ip_str, port, transport) or host (ip_str, data[])",
    )
