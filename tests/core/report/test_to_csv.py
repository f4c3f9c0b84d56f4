"""The reconciled CSV: fixed leading columns, ISO times, neutralised hostile cells."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from core.models import Endpoint, PortState, Service, SourceSeen, Status, Transport, Vuln
from core.report.sanitize import csv_cell, printable
from core.report.to_csv import COLUMNS, write_csv
from core.report.to_json import SCHEMA_VERSION, write_json

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
T1 = datetime(2026, 6, 2, 9, 14, 27, tzinfo=UTC)


def service(**changes: object) -> Service:
    base = Service(
        endpoint=Endpoint(ip="198.51.100.23", port=443, transport=Transport.TCP),
        state=PortState.OPEN,
        status=Status.UNVERIFIED,
        service="http",
        product="nginx",
        version="1.24.0",
        first_seen=T0,
        last_seen=T1,
        per_source=(
            SourceSeen(source="shodan", first_seen=T0, last_seen=T1, state=PortState.OPEN),
            SourceSeen(source="censys", first_seen=T1, last_seen=T1, state=PortState.OPEN),
        ),
        hostnames=("www.example.com",),
        vulns=(Vuln(cve="CVE-2023-44487", cvss=7.5),),
        tags=("cdn",),
    )
    return base.model_copy(update=changes)


def test_header_order_and_values() -> None:
    out = io.StringIO()
    assert write_csv([service()], out) == 1
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(
        "ip,port,transport,status,service,product,version,sources,first_seen,last_seen,"
    )
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(row) == list(COLUMNS)
    assert row["sources"] == "shodan;censys"
    assert row["first_seen"] == "2026-05-01T08:00:00Z"
    assert row["last_seen"] == "2026-06-02T09:14:27Z"
    assert row["cves"] == "CVE-2023-44487"
    assert row["max_cvss"] == "7.5"
    assert row["hostnames"] == "www.example.com"


def test_formula_cells_and_escape_sequences_are_neutralised() -> None:
    hostile = service(product='=HYPERLINK("http://x")', version="+1", http_title="\x1b[2J@evil")
    out = io.StringIO()
    write_csv([hostile], out)
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["product"] == '\'=HYPERLINK("http://x")'
    assert row["version"] == "'+1"
    assert row["http_title"] == "\\x1b[2J@evil"
    assert "\x1b" not in out.getvalue()


def test_sanitize_helpers() -> None:
    assert csv_cell("-2+3") == "'-2+3"
    assert csv_cell("\tcmd") == "'\tcmd"
    assert csv_cell("nginx") == "nginx"
    assert printable("a\x00b\u202ec") == "a\\x00b\\x202ec"


def test_json_carries_schema_version_and_the_same_data() -> None:
    out = io.StringIO()
    assert write_json([service(), service(banner="<script>alert(1)</script>")], out) == 2
    doc = json.loads(out.getvalue())
    assert doc["schema_version"] == SCHEMA_VERSION
    assert [s["sources"] for s in doc["services"]] == [["shodan", "censys"]] * 2
    assert doc["services"][0]["endpoint"] == {
        "ip": "198.51.100.23",
        "port": 443,
        "transport": "tcp",
    }
    empty = io.StringIO()
    write_json([], empty)
    assert json.loads(empty.getvalue())["services"] == []
