from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.errors import InputError
from core.importers import Format, import_file
from core.models import PortState
from tests.core.importers.helpers import FIXTURES, collect, endpoints

NMAP_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE nmaprun>\n'


def test_the_fixture_nmap_wrote_imports_with_service_details() -> None:
    claims, report = collect(FIXTURES / "nmap.xml")
    assert report.format is Format.NMAP_XML and report.source == "import:nmap"
    by_port = {c.observation.endpoint.port: c for c in claims}
    assert sorted(by_port) == [9, 2222, 8080]
    ssh = by_port[2222].observation
    assert (ssh.service, ssh.product, ssh.version) == ("ssh", "OpenSSH", "8.9p1 Ubuntu 3ubuntu0.6")
    assert ssh.cpes == ("cpe:/a:openbsd:openssh:8.9p1", "cpe:/o:linux:linux_kernel")
    assert by_port[2222].values["extrainfo"] == "Ubuntu Linux; protocol 2.0"
    assert by_port[9].observation.state is PortState.CLOSED
    # The host's endtime attribute is when nmap saw the ports.
    assert ssh.observed_at == datetime.fromtimestamp(1795447955, UTC)
    assert by_port[8080].origin.line == 15 and by_port[8080].origin.file.endswith("nmap.xml")
    assert report.imported == 3 and report.complete


def _doc(hosts: str, start: str = "1700000000") -> str:
    return (
        f'{NMAP_HEAD}<nmaprun scanner="nmap" start="{start}" version="7.93" '
        f'xmloutputversion="1.05">\n{hosts}</nmaprun>\n'
    )


def _host(addr: str, ports: str, addrtype: str = "ipv4", times: str = "") -> str:
    return (
        f'<host{times}><status state="up" reason="syn-ack" reason_ttl="0"/>\n'
        f'<address addr="{addr}" addrtype="{addrtype}"/>\n'
        f'<address addr="00:00:5E:00:53:01" addrtype="mac"/>\n'
        f'<hostnames><hostname name="WWW.example.com" type="PTR"/></hostnames>\n'
        f"<ports>{ports}</ports>\n</host>\n"
    )


def _port(number: int | str, state: str = "open", proto: str = "tcp", service: str = "") -> str:
    return (
        f'<port protocol="{proto}" portid="{number}"><state state="{state}" reason="x" '
        f'reason_ttl="0"/>{service}</port>\n'
    )


def test_states_addresses_and_times(tmp_path: Path) -> None:
    ports = (
        _port(53, "open|filtered", "udp")
        + _port(80, "filtered")
        + _port(81, "unfiltered")
        + _port(1, "open", "sctp")
    )
    path = tmp_path / "scan.xml"
    path.write_text(_doc(_host("2001:DB8::0:1", ports, "ipv6")))
    claims, report = collect(path)
    assert endpoints(claims) == ["[2001:db8::1]:53/udp", "[2001:db8::1]:80/tcp"]
    assert [c.observation.state for c in claims] == [PortState.OPEN_FILTERED, PortState.FILTERED]
    assert claims[0].observation.hostnames == ("www.example.com",)
    # No host times: the scan's start stands in.
    assert claims[0].observation.observed_at == datetime.fromtimestamp(1700000000, UTC)
    assert sum(report.ignored.values()) == 2


def test_bad_ports_stop_the_import_unless_skipped(tmp_path: Path) -> None:
    path = tmp_path / "scan.xml"
    path.write_text(_doc(_host("192.0.2.1", _port(22) + _port(70000) + _port(443))))
    with pytest.raises(InputError) as info:
        collect(path)
    assert info.value.file == str(path) and info.value.line == 9
    assert "70000" in str(info.value) and "--skip-bad" in str(info.value)
    claims, report = collect(path, skip_bad=True)
    assert endpoints(claims) == ["192.0.2.1:22/tcp", "192.0.2.1:443/tcp"]
    assert report.skipped["port out of range"].examples[0].line == 9


def _peak_while_importing(path: Path) -> int:
    tracemalloc.start()
    try:
        count = sum(1 for _ in import_file(path))
        return tracemalloc.get_traced_memory()[1] if count else 0
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_as_hosts_grow(tmp_path: Path) -> None:
    # Given scans of 500 and 5,000 hosts
    sizes = {}
    for n in (500, 5_000):
        hosts = "".join(_host(f"2001:db8::{i:x}", _port(80), "ipv6") for i in range(n))
        path = tmp_path / f"scan-{n}.xml"
        path.write_text(_doc(hosts))
        # When each is imported (claims consumed, not kept)
        sizes[n] = _peak_while_importing(path)
    # Then ten times the hosts does not take ten times the memory: read hosts are dropped
    # (the dedupe index grows a little per endpoint; the tree does not).
    assert sizes[5_000] < 3 * sizes[500]


BOMB = """<?xml version="1.0"?>
<!DOCTYPE nmaprun [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
]>
<nmaprun scanner="nmap" version="7.93" xmloutputversion="1.05">&c;</nmaprun>
"""

EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE nmaprun [ <!ENTITY leak SYSTEM "file:///etc/hostname"> ]>
<nmaprun scanner="nmap" version="7.93" xmloutputversion="1.05">
<host><address addr="192.0.2.1" addrtype="ipv4"/><hostnames><hostname name="&leak;"/></hostnames>
<ports><port protocol="tcp" portid="22"><state state="open" reason="x" reason_ttl="0"/></port>
</ports></host>
</nmaprun>
"""


@pytest.mark.parametrize("document", [BOMB, EXTERNAL], ids=["entity-bomb", "external-entity"])
def test_entities_are_refused_with_a_clear_message(tmp_path: Path, document: str) -> None:
    path = tmp_path / "evil.xml"
    path.write_text(document)
    with pytest.raises(InputError) as info:
        collect(path)
    message = str(info.value)
    assert "declares entities" in message and str(path) in message
    claims, report = collect(path, skip_bad=True)
    assert claims == [] and not report.complete and "unsafe XML" in report.skipped


def test_truncated_xml_keeps_the_hosts_before_the_cut_when_skipping(tmp_path: Path) -> None:
    text = _doc(_host("192.0.2.1", _port(22)) + _host("192.0.2.2", _port(23)))
    path = tmp_path / "cut.xml"
    path.write_text(text[: text.index('<address addr="192.0.2.2"')])
    with pytest.raises(InputError, match="ends too early"):
        collect(path)
    claims, report = collect(path, skip_bad=True)
    assert endpoints(claims) == ["192.0.2.1:22/tcp"]
    assert not report.complete


def test_another_xml_root_is_not_nmap(tmp_path: Path) -> None:
    path = tmp_path / "other.xml"
    path.write_text('<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e "1">]>\n<report/>\n')
    with pytest.raises(InputError, match="declares entities"):
        collect(path)
