"""Target parsing, resolution, scope and the refusal of huge scopes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.errors import InputError, ScopeError
from core.targets import Entry, build_scope, gather_entries, parse_entry


async def fake_resolver(name: str) -> list[str]:
    table = {"www.example.com": ["192.0.2.10", "2001:db8::10"], "api.example.com": ["192.0.2.11"]}
    if name not in table:
        raise OSError(f"[Errno -2] Name or service not known: {name}")
    return table[name]


def scope_of(*values: str, exclude: tuple[str, ...] = (), **kwargs):
    return asyncio.run(
        build_scope(
            [Entry(v) for v in values],
            [Entry(v) for v in exclude],
            resolver=fake_resolver,
            **kwargs,
        )
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("192.0.2.1", ["192.0.2.1/32"]),
        ("2001:db8::1", ["2001:db8::1/128"]),
        ("[2001:db8::1]", ["2001:db8::1/128"]),
        ("198.51.100.0/30", ["198.51.100.0/30"]),
        ("198.51.100.5/30", ["198.51.100.4/30"]),  # host bits set: the block, as nmap does
        ("198.51.100.10-198.51.100.13", ["198.51.100.10/31", "198.51.100.12/31"]),
        ("198.51.100.10-13", ["198.51.100.10/31", "198.51.100.12/31"]),
        ("www.example.com", None),
    ],
)
def test_parse_entry_forms(value: str, expected: list[str] | None) -> None:
    nets = parse_entry(value)
    assert (None if nets is None else [n.with_prefixlen for n in nets]) == expected


@pytest.mark.parametrize(
    "value", ["192.0.2.300", "198.51.100.0/33", "198.51.100.20-198.51.100.10", "bad_host!", "-x"]
)
def test_parse_entry_rejects_malformed(value: str) -> None:
    with pytest.raises(ValueError):
        parse_entry(value)


def test_malformed_line_names_file_line_and_value(tmp_path: Path) -> None:
    assets = tmp_path / "assets.txt"
    assets.write_text("# our hosts\n192.0.2.1\n\n198.51.100.999  # typo\n")
    with pytest.raises(InputError) as caught:
        asyncio.run(build_scope(list(gather_entries([str(assets)])), resolver=fake_resolver))
    message = str(caught.value)
    assert f"{assets}:4:" in message
    assert "198.51.100.999" in message
    assert "--skip-bad" in message


def test_skip_bad_keeps_the_good_entries_and_reports_the_rest(tmp_path: Path) -> None:
    assets = tmp_path / "assets.txt"
    assets.write_text("192.0.2.1, 192.0.2.2\n198.51.100.999\nnx.example.com\n")
    scope = asyncio.run(
        build_scope(list(gather_entries([str(assets)])), resolver=fake_resolver, skip_bad=True)
    )
    assert list(scope.addresses()) == ["192.0.2.1", "192.0.2.2"]
    reasons = [str(s) for s in scope.skipped]
    assert any(f"{assets}:2:" in r and "198.51.100.999" in r for r in reasons)
    assert any(f"{assets}:3:" in r and "does not resolve" in r for r in reasons)


def test_hostnames_resolve_to_every_address_and_are_remembered() -> None:
    scope = scope_of("www.example.com", "192.0.2.1")
    assert sorted(scope.addresses()) == ["192.0.2.1", "192.0.2.10", "2001:db8::10"]
    assert scope.hostnames["192.0.2.10"] == ["www.example.com"]


def test_unresolvable_hostname_is_a_clear_error() -> None:
    with pytest.raises(InputError, match=r"nx\.example\.com.*does not resolve"):
        scope_of("nx.example.com")


def test_excludes_take_the_same_forms() -> None:
    scope = scope_of("192.0.2.8/29", exclude=("192.0.2.9", "192.0.2.12-13", "api.example.com"))
    assert list(scope.addresses()) == ["192.0.2.8", "192.0.2.10", "192.0.2.14", "192.0.2.15"]
    assert "192.0.2.9" not in scope
    assert "192.0.2.10" in scope
    assert "203.0.113.1" not in scope
    assert "not-an-ip" not in scope


def test_more_than_65536_addresses_needs_force() -> None:
    with pytest.raises(ScopeError, match="--force"):
        scope_of("10.0.0.0/15")  # parsed only: nothing is sent anywhere
    assert scope_of("10.0.0.0/16").include[0].num_addresses == 65_536
    assert scope_of("10.0.0.0/15", force=True).include


def test_no_targets_is_an_error() -> None:
    with pytest.raises(InputError, match="no targets"):
        scope_of()


def test_job_searches_large_clean_blocks_and_looks_up_the_rest() -> None:
    scope = scope_of("198.51.100.0/27", "203.0.113.0/28", "192.0.2.7", exclude=("203.0.113.5",))
    job = scope.job(search_threshold=16)
    assert job.networks == ["198.51.100.0/27"]
    assert "192.0.2.7" in job.ips
    assert "203.0.113.5" not in job.ips
    assert len(job.ips) == 1 + 15
    assert all(not ip.startswith("198.51.100.") for ip in job.ips)


def test_csv_asset_list_reads_the_named_column(tmp_path: Path) -> None:
    assets = tmp_path / "assets.csv"
    assets.write_text("name,Address,owner\nweb,192.0.2.1,ops\ndb,192.0.2.300,dba\n")
    entries = gather_entries([str(assets)], csv_column="address")
    assert [(e.value, e.line) for e in entries] == [("192.0.2.1", 2), ("192.0.2.300", 3)]
    with pytest.raises(InputError, match="no column 'ip'"):
        gather_entries([str(assets)])


def test_sources_are_not_asked_about_addresses_no_scanner_can_see() -> None:
    scope = scope_of("127.0.0.1", "10.0.0.0/24", "192.168.1.5", "fe80::1", "198.51.100.0/28")
    job = scope.job(search_threshold=8)
    assert job.networks == ["198.51.100.0/28"]
    assert job.ips == []
    assert "10.0.0.7" in scope  # still in scope for our own probes
