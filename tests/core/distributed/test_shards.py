"""Splitting a plan into shards: every endpoint once, claims with their shard, stable ids,
and a scope that travels with each shard (no packet is sent by these tests)."""

from __future__ import annotations

import ipaddress
from collections import Counter
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.distributed.shards import Shard, ShardScope, port_ranges, shard_id, split
from core.models import Endpoint, Transport
from core.pipeline.verify import Plan, VerifyOptions, plan_scan
from tests.core.distributed.conftest import scope_of


def ep(ip: str, port: int, transport: Transport = Transport.TCP) -> Endpoint:
    return Endpoint(ip=ip, port=port, transport=transport)


def covered(shards: list[Shard]) -> Counter[tuple[str, int, Transport]]:
    return Counter(
        (host, port, s.transport) for s in shards for host in s.hosts for port in s.port_list()
    )


def planned(plan: Plan) -> set[tuple[str, int, Transport]]:
    tcp = {(ip, p, Transport.TCP) for ip, ports in plan.tcp.items() for p in ports}
    udp = {(ip, p, Transport.UDP) for ip, ports in plan.udp.items() for p in ports}
    return tcp | udp


def test_port_ranges_are_inclusive_runs() -> None:
    assert port_ranges([7, 1, 2, 3, 3, 9, 8]) == ((1, 3), (7, 9))
    assert port_ranges([]) == ()
    assert port_ranges([65535]) == ((65535, 65535),)


def test_a_full_range_host_group_is_hosts_times_port_ranges() -> None:
    # Given 10 hosts, every TCP port, and shards of 4 hosts x 8,192 ports
    scope = scope_of("192.0.2.0/29", "192.0.2.8/31")
    plan = plan_scan(scope, range(1, 65536))
    shards = split(plan, scope, run_id=7, hosts_per_shard=4, ports_per_shard=8192)

    # Then there are 3 host groups x 8 port ranges, and each endpoint is in exactly one
    # (ranges per host, sorted, must tile 1-65535 with no gap and no overlap)
    assert len(shards) == 3 * 8
    per_host: dict[str, list[tuple[int, int]]] = {}
    for shard in shards:
        for host in shard.hosts:
            per_host.setdefault(host, []).extend(shard.ports)
    assert set(per_host) == set(plan.tcp)
    for ranges in per_host.values():
        ranges.sort()
        assert ranges[0][0] == 1 and ranges[-1][1] == 65535
        assert all(prev[1] + 1 == nxt[0] for prev, nxt in pairwise(ranges))
    assert {len(s.hosts) for s in shards} == {4, 2}
    assert all(s.run_id == 7 for s in shards)
    assert shards[0].ports == ((1, 8192),) and shards[7].ports == ((57345, 65535),)


def test_claims_travel_with_the_shard_that_probes_them() -> None:
    scope = scope_of("192.0.2.1", "192.0.2.2")
    claims = [ep("192.0.2.1", 22), ep("192.0.2.2", 9000), ep("192.0.2.1", 53, Transport.UDP)]
    plan = plan_scan(scope, range(1, 10001), [53, 161], claims)
    shards = split(plan, scope, run_id=1, ports_per_shard=5000)

    found = {(ip, port, s.transport): s for s in shards for ip, port in s.claimed}
    assert set(found) == {
        ("192.0.2.1", 22, Transport.TCP),
        ("192.0.2.2", 9000, Transport.TCP),
        ("192.0.2.1", 53, Transport.UDP),
    }
    for (ip, port, _), shard in found.items():
        assert ip in shard.hosts and port in shard.port_list()
        assert Endpoint(ip=ip, port=port, transport=shard.transport) in shard.plan().claimed


def test_hosts_with_different_port_lists_are_not_mixed() -> None:
    # A claim outside the common list gives its host a port list of its own.
    scope = scope_of("192.0.2.1", "192.0.2.2")
    plan = plan_scan(scope, [22, 80], claims=[ep("192.0.2.2", 8443)])
    shards = split(plan, scope, run_id=1)
    assert sorted((s.hosts, s.ports) for s in shards) == [
        (("192.0.2.1",), ((22, 22), (80, 80))),
        (("192.0.2.2",), ((22, 22), (80, 80), (8443, 8443))),
    ]


def test_a_shard_rebuilds_its_plan_and_round_trips_as_json() -> None:
    scope = scope_of("192.0.2.0/30", "2001:db8::1", exclude=("192.0.2.2",))
    scope.hostnames["192.0.2.1"] = ["www.example.com"]
    options = VerifyOptions(timeout=0.5, retries=2, rate=100.0, fingerprint=False)
    plan = plan_scan(scope, [22, 443], [53], claims=[ep("192.0.2.1", 25)])
    for shard in split(plan, scope, run_id=3, options=options):
        again = Shard.model_validate(shard.model_dump(mode="json"))
        assert again == shard
        assert again.options == options
        rebuilt = again.plan()
        table = rebuilt.tcp if shard.transport is Transport.TCP else rebuilt.udp
        assert table == {host: set(shard.port_list()) for host in shard.hosts}


def test_ids_are_stable_and_distinct() -> None:
    scope = scope_of("192.0.2.0/28")
    plan = plan_scan(scope, range(1, 2001), range(1, 101))
    first = split(plan, scope, run_id=1, hosts_per_shard=3, ports_per_shard=500)
    second = split(plan, scope, run_id=1, hosts_per_shard=3, ports_per_shard=500)
    assert [s.shard_id for s in first] == [s.shard_id for s in second]
    assert len({s.shard_id for s in first}) == len(first)
    # The id names the work: the same hosts and ports in any order give the same id.
    assert shard_id(Transport.TCP, ["192.0.2.2", "192.0.2.1"], [(1, 9)]) == shard_id(
        Transport.TCP, ["192.0.2.1", "192.0.2.2"], [(1, 9)]
    )
    assert shard_id(Transport.TCP, ["192.0.2.1"], [(1, 9)]) != shard_id(
        Transport.UDP, ["192.0.2.1"], [(1, 9)]
    )


def test_a_shard_carries_only_the_scope_covering_its_hosts() -> None:
    # Given a scope of two blocks, with an exclude inside the first
    scope = scope_of("192.0.2.0/29", "198.51.100.0/30", exclude=("192.0.2.3",))
    scope.hostnames.update({"192.0.2.1": ["a.example.com"], "198.51.100.1": ["b.example.com"]})

    # When a shard of the first block's hosts is given its scope
    part = ShardScope.covering(scope, ["192.0.2.1", "192.0.2.2"])

    # Then it holds that block, its exclude and its hosts' names, and nothing else
    assert part.include == ("192.0.2.0/29",)
    assert part.exclude == ("192.0.2.3/32",)
    assert part.hostnames == {"192.0.2.1": ("a.example.com",)}
    rebuilt = part.to_scope()
    assert "192.0.2.1" in rebuilt and "192.0.2.3" not in rebuilt
    assert "198.51.100.1" not in rebuilt  # in the job's scope, but not this shard's


def test_a_shard_rejects_unknown_fields() -> None:
    scope = scope_of("192.0.2.1")
    shard = split(plan_scan(scope, [22]), scope, run_id=1)[0]
    data = shard.model_dump(mode="json") | {"command": "rm -rf /"}
    with pytest.raises(ValueError, match="command"):
        Shard.model_validate(data)


def test_bad_shard_sizes_are_refused() -> None:
    scope = scope_of("192.0.2.1")
    with pytest.raises(ValueError):
        split(plan_scan(scope, [22]), scope, run_id=1, ports_per_shard=0)


addresses = st.integers(min_value=0, max_value=15).map(
    lambda n: str(ipaddress.ip_address("192.0.2.0") + n)
)


@settings(max_examples=60, deadline=None)
@given(
    tcp=st.dictionaries(addresses, st.sets(st.integers(1, 300), max_size=40), max_size=8),
    udp=st.dictionaries(addresses, st.sets(st.integers(1, 300), max_size=10), max_size=4),
    hosts_per_shard=st.integers(1, 5),
    ports_per_shard=st.integers(1, 50),
)
def test_any_plan_is_covered_exactly_once(
    tcp: dict[str, set[int]],
    udp: dict[str, set[int]],
    hosts_per_shard: int,
    ports_per_shard: int,
) -> None:
    scope = scope_of("192.0.2.0/28")
    plan = Plan(tcp=tcp, udp=udp)
    for table, transport in ((tcp, Transport.TCP), (udp, Transport.UDP)):
        for ip, ports in table.items():
            plan.claimed.update(ep(ip, p, transport) for p in sorted(ports)[:2])
    shards = split(plan, scope, 1, hosts_per_shard=hosts_per_shard, ports_per_shard=ports_per_shard)
    counts = covered(shards)
    assert set(counts) == planned(plan)
    assert set(counts.values()) <= {1}
    assert all(len(s.hosts) <= hosts_per_shard for s in shards)
    assert all(len(s.port_list()) <= ports_per_shard for s in shards)
    claims = Counter(
        Endpoint(ip=ip, port=port, transport=s.transport) for s in shards for ip, port in s.claimed
    )
    assert set(claims) == plan.claimed and set(claims.values()) <= {1}
