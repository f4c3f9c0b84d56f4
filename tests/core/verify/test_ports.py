"""Port specs and portintel's ranked port lists."""

from __future__ import annotations

from importlib import resources

import pytest

from core.models import Transport
from core.verify.ports import (
    PortSpec,
    parse_ports,
    parse_ranked_list,
    ranked,
    top_tcp,
    top_udp,
)
from core.verify.udp import payloads

ALL = tuple(range(1, 65536))


@pytest.mark.parametrize(
    ("spec", "tcp", "udp"),
    [
        ("22,80,443", (22, 80, 443), (22, 80, 443)),
        ("443,22,80,22", (22, 80, 443), (22, 80, 443)),  # sorted, de-duplicated
        ("1-5", (1, 2, 3, 4, 5), (1, 2, 3, 4, 5)),
        ("7-7", (7,), (7,)),
        ("1-3,2-4", (1, 2, 3, 4), (1, 2, 3, 4)),
        ("-", ALL, ALL),
        ("-3", (1, 2, 3), (1, 2, 3)),
        ("65533-", (65533, 65534, 65535), (65533, 65534, 65535)),
        ("T:22,80,U:53,161", (22, 80), (53, 161)),
        ("t:22,u:53", (22,), (53,)),
        ("25,T:22,U:53", (22, 25), (25, 53)),  # unqualified: both transports
        ("U:53,T:1-3", (1, 2, 3), (53,)),
        ("T:-", ALL, ()),
        (" 22 , 80 ,\t443 ", (22, 80, 443), (22, 80, 443)),
        ("T: 22, U : 53", (22,), (53,)),
        ("1 - 3", (1, 2, 3), (1, 2, 3)),
        ("65535", (65535,), (65535,)),
    ],
)
def test_parse_ports(spec: str, tcp: tuple[int, ...], udp: tuple[int, ...]) -> None:
    assert parse_ports(spec) == PortSpec(tcp=tcp, udp=udp)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("0", "bad port entry '0': 0 is outside 1-65535"),
        ("65536", "bad port entry '65536': 65536 is outside 1-65535"),
        ("0-10", "bad port entry '0-10': 0 is outside"),
        ("80-22", r"bad port entry '80-22': range is reversed \(80 > 22\)"),
        ("22,http", "bad port entry 'http': 'http' is not a port number"),
        ("22,,80", "bad port entry '': empty entry"),
        ("22,", "bad port entry '': empty entry"),
        ("S:22", "bad port entry 'S:22': unknown qualifier 'S'"),
        ("T:", "bad port entry 'T:': empty entry"),
        ("1-2-3", "bad port entry '1-2-3': '2-3' is not a port number"),
        ("-5-", "bad port entry '-5-': '5-' is not a port number"),
        ("2²", "'2²' is not a port number"),
        ("+22", "'\\+22' is not a port number"),
        ("", "empty port specification"),
        ("  ", "empty port specification"),
    ],
)
def test_bad_specs_name_the_bad_token(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_ports(spec)


def test_for_transport_picks_the_right_list() -> None:
    spec = parse_ports("T:22,U:53")
    assert spec.for_transport(Transport.TCP) == (22,)
    assert spec.for_transport(Transport.UDP) == (53,)


def test_udp_list_has_exactly_1000_unique_ports_with_the_services_outside_usual_lists() -> None:
    entries = ranked(Transport.UDP)
    assert len(entries) == 1000
    assert len({entry.port for entry in entries}) == 1000
    top = set(top_udp(1000))
    assert {53, 123, 161, 137, 1900, 5353, 500, 4500, 323, 11211} <= top
    # Every payload's port is in the list, and ranked ahead of the unnamed tail.
    named_ports = {entry.port for entry in entries if entry.name}
    assert set(payloads()) <= named_ports


def test_tcp_list_is_ranked_and_unique() -> None:
    entries = ranked(Transport.TCP)
    assert len({entry.port for entry in entries}) == len(entries) == 1000
    assert [entry.rank for entry in entries] == list(range(1, 1001))
    assert entries[0].port == 80
    assert {22, 443, 3306, 6379, 27017, 11211, 2375, 6443} <= set(top_tcp(100))


@pytest.mark.parametrize(("top", "n"), [(top_tcp, 1), (top_tcp, 100), (top_udp, 10)])
def test_top_n_returns_the_n_best_ranked_sorted(top: object, n: int) -> None:
    transport = Transport.TCP if top is top_tcp else Transport.UDP
    result = top(n)  # type: ignore[operator]
    assert len(result) == n
    assert list(result) == sorted(result)
    assert set(result) == {entry.port for entry in ranked(transport)[:n]}


@pytest.mark.parametrize("n", [0, -1, 1001])
def test_top_n_out_of_bounds(n: int) -> None:
    with pytest.raises(ValueError, match="n must be 1-1000"):
        top_udp(n)


@pytest.mark.parametrize("name", ["tcp_ports.txt", "udp_ports.txt", "udp_payloads.toml"])
def test_every_data_file_states_its_provenance_at_the_top(name: str) -> None:
    text = resources.files("core.verify.data").joinpath(name).read_text(encoding="utf-8")
    head = text[:1500]
    assert "Provenance:" in head
    assert "NOT derived from nmap" in head or "None is taken from nmap" in head


def test_ranked_list_parser_rejects_duplicates_and_junk() -> None:
    assert [e.port for e in parse_ranked_list("# c\n80 http\n\n443\n", source="x")] == [80, 443]
    with pytest.raises(ValueError, match="x:2: port 80 is listed twice"):
        parse_ranked_list("80 http\n80 www\n", source="x")
    with pytest.raises(ValueError, match="x:1: expected 'PORT \\[NAME\\]'"):
        parse_ranked_list("80 http extra\n", source="x")
    with pytest.raises(ValueError, match="70000 is outside"):
        parse_ranked_list("70000\n", source="x")
