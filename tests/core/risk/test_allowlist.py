"""The allowlist file: targets, ports and services; errors name the file and entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from core.models import Transport
from core.risk.allowlist import DEFAULT_WEIGHT, load_allowlist
from tests.core.risk.helpers import svc

ALLOWLIST = """
weight = 0.25

[[allow]]
targets = ["198.51.100.0/28", "2001:db8::/64"]
ports = ["3306", "161/udp"]
services = ["ssh"]
reason = "replication"

[[allow]]
targets = "203.0.113.9"
services = ["postgres"]
"""


@pytest.fixture
def allowlist_file(tmp_path: Path) -> Path:
    path = tmp_path / "allow.toml"
    path.write_text(ALLOWLIST)
    return path


@pytest.mark.parametrize(
    ("ip", "port", "service", "transport", "expected"),
    [
        ("198.51.100.5", 3306, "mysql", Transport.TCP, "allowlist 3306 on"),
        ("198.51.100.5", 3306, None, Transport.UDP, "allowlist 3306 on"),  # no transport: both
        ("198.51.100.5", 161, "snmp", Transport.UDP, "allowlist 161/udp on"),
        ("198.51.100.5", 161, "snmp", Transport.TCP, None),  # wrong transport
        ("198.51.100.5", 2222, "ssh", Transport.TCP, "allowlist ssh on"),  # by service
        ("198.51.100.16", 3306, "mysql", Transport.TCP, None),  # outside the /28
        ("2001:db8::5", 22, "ssh", Transport.TCP, "allowlist ssh on"),
        ("203.0.113.9", 5432, "postgresql", Transport.TCP, "allowlist postgresql on"),
        ("203.0.113.9", 5432, "pgsql", Transport.TCP, "allowlist postgresql on"),  # canonical
        ("203.0.113.10", 5432, "postgresql", Transport.TCP, None),
    ],
)
def test_matches(
    allowlist_file: Path,
    ip: str,
    port: int,
    service: str | None,
    transport: Transport,
    expected: str | None,
) -> None:
    allowlist = load_allowlist(allowlist_file)
    assert allowlist.weight == 0.25
    found = allowlist.match(svc(ip, port, service, transport=transport))
    if expected is None:
        assert found is None
    else:
        assert found is not None and found.startswith(expected)


def test_reason_is_part_of_the_match(allowlist_file: Path) -> None:
    found = load_allowlist(allowlist_file).match(svc("198.51.100.5", 3306, "mysql"))
    assert found == "allowlist 3306 on 198.51.100.0/28, 2001:db8::/64: replication"


def test_no_file_is_the_empty_allowlist() -> None:
    allowlist = load_allowlist(None)
    assert allowlist.weight == DEFAULT_WEIGHT
    assert allowlist.match(svc()) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[allow]]\ntargets = ["not-an-ip"]\n', "allow.0.targets"),
        ('[[allow]]\ntargets = ["192.0.2.1"]\nports = ["http"]\n', "allow.0.ports"),
        ("weight = 2\n", "weight"),
        ('[[allow]]\ntargets = ["192.0.2.1"]\ncolour = "red"\n', "allow.0.colour"),
        ("[[allow]\n", "cannot read"),
    ],
)
def test_bad_files_name_the_file_and_entry(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_allowlist(path)
    assert str(path) in str(caught.value)
