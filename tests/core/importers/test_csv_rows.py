from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.errors import InputError
from core.importers import Format
from core.importers.csv_rows import parse_map
from core.models import PortState, Transport
from tests.core.importers.helpers import FIXTURES, collect, endpoints


def test_the_standard_header() -> None:
    claims, report = collect(FIXTURES / "findings.csv")
    assert report.format is Format.CSV
    assert endpoints(claims) == [
        "192.0.2.10:2222/tcp",
        "192.0.2.10:8080/tcp",
        "198.51.100.23:53/udp",
        "[2001:db8::a]:443/tcp",
    ]
    dns = claims[2].observation
    assert (dns.service, dns.product, dns.version) == ("dns", "BIND", "9.18.18")  # domain -> dns
    assert dns.observed_at == datetime.fromtimestamp(1795100000, UTC)
    assert claims[0].observation.hostnames == ("www.example.com",)
    assert claims[3].values["ip"] == "2001:DB8:0:0::A"  # the original, as written
    assert claims[3].origin.line == 5


def test_other_headers_with_a_map() -> None:
    mapping = parse_map(["Host IP=ip", "port number=port", "Proto=transport"])
    claims, _ = collect(FIXTURES / "findings-mapped.csv", column_map=mapping)
    assert endpoints(claims) == ["192.0.2.10:2222/tcp", "203.0.113.10:3389/tcp"]
    assert claims[1].values["Finding"] == 'RDP exposed; "NLA" off'


def test_missing_required_columns_name_the_header_and_the_fix() -> None:
    with pytest.raises(InputError) as info:
        collect(FIXTURES / "findings-mapped.csv")
    message = str(info.value)
    assert info.value.line == 1 and "no ip or port column" in message
    assert "Host IP" in message and "--map" in message


def test_a_map_naming_an_absent_column_is_refused() -> None:
    with pytest.raises(InputError, match=r"names column\(s\) address that the header"):
        collect(FIXTURES / "findings.csv", column_map={"address": "ip"})


@pytest.mark.parametrize("bad", ["ip", "ip=", "Host=colour"])
def test_bad_map_options(bad: str) -> None:
    with pytest.raises(InputError):
        parse_map([bad])


def test_rows_with_problems(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text(
        "ip,port,transport,state\n"
        "192.0.2.1,22,tcp,open\n"
        "192.0.2.1,70000,tcp,open\n"
        "192.0.2.2,,tcp,open\n"
        "192.0.2.3,443/udp,,closed\n"
        "192.0.2.4,80,tcp,open,extra\n"
        "192.0.2.1,22,tcp,open\n"
        "[2001:db8::1],22\n"
    )
    with pytest.raises(InputError) as info:
        collect(path)
    assert info.value.line == 3 and "70000" in str(info.value)
    claims, report = collect(path, skip_bad=True)
    assert endpoints(claims) == ["192.0.2.1:22/tcp", "192.0.2.3:443/udp", "[2001:db8::1]:22/tcp"]
    assert claims[1].observation.state is PortState.CLOSED
    assert claims[1].observation.endpoint.transport is Transport.UDP
    assert {r: [s.line for s in g.examples] for r, g in report.skipped.items()} == {
        "port out of range": [3],
        "missing columns": [4],
        "wrong number of columns": [6],
    }
    assert report.duplicates == 1 and report.duplicate_lines == [7]


def test_semicolons_and_quoted_newlines(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_text('IP;Port;Product\n192.0.2.1;80;"Apache\nhttpd"\n192.0.2.2;81;x\n')
    claims, _ = collect(path)
    assert [c.observation.product for c in claims] == ["Apache\nhttpd", "x"]
    assert [c.origin.line for c in claims] == [3, 4]
