"""CSV findings with a header row: `ip` and `port`, and optionally `transport`, `service`,
`product`, `version`, `observed_at`, `hostname` and `state`.

Header names match case-insensitively. Files from elsewhere name their columns otherwise
("Host IP", "Port Number"): `--map "Host IP=ip"` says which column is which field. The
delimiter is whichever of `,` `;` tab occurs most in the header (spreadsheet exports in
many locales use `;`). A port written `443/tcp` carries its transport.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping, Sequence

from core.errors import InputError
from core.importers import fields
from core.importers.parsed import BadRow, Context, Parsed, Row
from core.models import Endpoint, Kind, Observation

FIELDS = (
    "ip",
    "port",
    "transport",
    "service",
    "product",
    "version",
    "observed_at",
    "hostname",
    "state",
)
REQUIRED = ("ip", "port")
_DELIMITERS = (",", ";", "\t")


def parse_map(pairs: Iterable[str]) -> dict[str, str]:
    """`COLUMN=field` pairs (the `--map` option) as {column (lower-case): field}."""
    out: dict[str, str] = {}
    for pair in pairs:
        column, sep, target = pair.rpartition("=")
        column, target = column.strip().lower(), target.strip().lower()
        if not sep or not column or not target:
            raise InputError(f"--map {pair!r}: expected COLUMN=FIELD, e.g. 'Host IP=ip'")
        if target not in FIELDS:
            raise InputError(f"--map {pair!r}: {target!r} is not one of {', '.join(FIELDS)}")
        out[column] = target
    return out


def parse(lines: Iterable[tuple[int, str]], ctx: Context) -> Iterator[Parsed]:
    source = iter(lines)
    current = 0

    def physical() -> Iterator[str]:
        nonlocal current
        for number, text in source:
            current = number
            yield text

    feed = physical()
    header_text = next(feed, "")
    delimiter = max(_DELIMITERS, key=header_text.count)
    header = next(csv.reader([header_text], delimiter=delimiter), [])
    positions = _positions(header, ctx)
    reader = csv.reader(feed, delimiter=delimiter)
    for row in reader:
        if not row or all(not cell.strip() for cell in row):
            continue
        yield _row(row, header, positions, current, ctx)


def _positions(header: Sequence[str], ctx: Context) -> dict[str, int]:
    """field -> column index; InputError if a required field has no column."""
    positions: dict[str, int] = {}
    for index, name in enumerate(header):
        key = name.strip().lower()
        target = ctx.column_map.get(key, key if key in FIELDS else None)
        if target is not None:
            positions.setdefault(target, index)
    unmapped = [c for c in ctx.column_map if c not in {h.strip().lower() for h in header}]
    if unmapped:
        raise InputError(
            f"--map names column(s) {', '.join(unmapped)} that the header does not have "
            f"(it has: {', '.join(h.strip() for h in header)})",
            file=ctx.file,
            line=1,
        )
    missing = [f for f in REQUIRED if f not in positions]
    if missing:
        raise InputError(
            f"the CSV header has no {' or '.join(missing)} column (it has: "
            f"{', '.join(h.strip() for h in header) or 'nothing'}); name them, or map yours "
            f"with --map COLUMN={missing[0]}",
            file=ctx.file,
            line=1,
        )
    return positions


def _row(
    row: Sequence[str], header: Sequence[str], positions: Mapping[str, int], line: int, ctx: Context
) -> Parsed:
    values = {name.strip(): (row[i] if i < len(row) else None) for i, name in enumerate(header)}
    if len(row) > len(header):
        return BadRow(
            line,
            "wrong number of columns",
            f"the row has {len(row)} values for {len(header)} columns (an unquoted delimiter?)",
        )

    def cell(name: str) -> str | None:
        index = positions.get(name)
        return row[index] if index is not None and index < len(row) else None

    missing = [f for f in REQUIRED if not (cell(f) or "").strip()]
    if missing:
        return BadRow(line, "missing columns", f"the row has no {' or '.join(missing)} value")
    port_text = (cell("port") or "").strip()
    transport_text = cell("transport")
    if "/" in port_text:  # 443/tcp
        port_text, _, written = port_text.partition("/")
        transport_text = transport_text or written
    try:
        endpoint = Endpoint(
            ip=fields.ip(cell("ip")),
            port=fields.port(port_text),
            transport=fields.transport(transport_text),
        )
        state = fields.state(cell("state"))
        seen = fields.when(cell("observed_at"))
    except fields.BadValue as exc:
        return BadRow(line, exc.reason, str(exc))
    hostname = fields.text(cell("hostname"))
    obs = Observation(
        endpoint=endpoint,
        source=ctx.source,
        kind=Kind.IMPORTED,
        state=state,
        observed_at=seen,
        fetched_at=ctx.fetched_at,
        service=fields.service(cell("service")),
        product=fields.text(cell("product")),
        version=fields.text(cell("version")),
        hostnames=(hostname.lower(),) if hostname else (),
    )
    return Row(line, obs, values)
