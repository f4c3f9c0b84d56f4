from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.errors import InputError
from core.importers import Format
from core.models import PortState
from tests.core.importers.helpers import FIXTURES, collect, endpoints

EXPECTED = ["192.0.2.10:2222/tcp", "192.0.2.10:8080/tcp", "198.51.100.23:53/udp"]


def test_json_with_leading_commas_and_banner_records() -> None:
    claims, report = collect(FIXTURES / "masscan.json")
    assert report.format is Format.MASSCAN_JSON
    assert endpoints(claims) == EXPECTED
    assert claims[0].observation.observed_at == datetime.fromtimestamp(1795447949, UTC)
    assert claims[0].values["reason"] == "syn-ack" and claims[0].origin.line == 2
    assert report.ignored == {
        "banner records (service detail from --banners, no open/closed claim)": 1
    }


def test_old_json_with_trailing_commas_and_finished_marker() -> None:
    claims, report = collect(FIXTURES / "masscan-1.0.json")
    assert endpoints(claims) == [
        "192.0.2.10:2222/tcp",
        "192.0.2.10:8080/tcp",
        "[2001:db8::a]:443/tcp",
    ]
    assert report.skipped_count == 0


def test_list_output() -> None:
    claims, report = collect(FIXTURES / "masscan.txt")
    assert report.format is Format.MASSCAN_LIST
    assert endpoints(claims) == EXPECTED
    assert claims[2].values == {
        "state": "open",
        "proto": "udp",
        "port": "53",
        "ip": "198.51.100.23",
        "timestamp": "1795447951",
    }
    assert sum(report.ignored.values()) == 1


def test_ndjson_output(tmp_path: Path) -> None:
    path = tmp_path / "scan.ndjson"
    path.write_text(
        '{"ip":"192.0.2.1","timestamp":"1700000000","port":80,"proto":"tcp","rec_type":"status",'
        '"data":{"status":"open","reason":"syn-ack","ttl":64}}\n'
        '{"ip":"192.0.2.1","timestamp":"1700000001","port":80,"proto":"tcp","rec_type":"banner",'
        '"data":{"service_name":"http","banner":"HTTP/1.0 200 OK"}}\n'
        '{"ip":"192.0.2.1","timestamp":"1700000002","port":81,"proto":"tcp","rec_type":"status",'
        '"data":{"status":"closed","reason":"rst","ttl":64}}\n'
    )
    claims, report = collect(path)
    assert report.format is Format.MASSCAN_JSON
    assert [(str(c.observation.endpoint), c.observation.state) for c in claims] == [
        ("192.0.2.1:80/tcp", PortState.OPEN),
        ("192.0.2.1:81/tcp", PortState.CLOSED),
    ]


def test_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "scan.txt"
    path.write_text(
        "#masscan\nopen tcp 80 192.0.2.1 1700000000\nopen tcp 99999 192.0.2.1 1700000000\n"
        "open tcp\nopen tcp 22 192.0.2.300 1700000000\n"
    )
    with pytest.raises(InputError) as info:
        collect(path)
    assert info.value.line == 3
    claims, report = collect(path, skip_bad=True)
    assert endpoints(claims) == ["192.0.2.1:80/tcp"]
    assert {r: g.count for r, g in report.skipped.items()} == {
        "port out of range": 1,
        "not a masscan line": 1,
        "bad address": 1,
    }
