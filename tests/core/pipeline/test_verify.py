"""The verify stage's plans and its scope gate (no packet is sent by these tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.errors import ScopeError
from core.models import Endpoint, Transport
from core.pipeline import verify as verify_stage
from core.pipeline.verify import Plan, plan_claims, plan_scan, verify
from core.store import Store
from core.targets import Entry, Scope, build_scope


def scope_of(*targets: str, exclude: tuple[str, ...] = ()) -> Scope:
    return asyncio.run(build_scope([Entry(t) for t in targets], [Entry(x) for x in exclude]))


def ep(ip: str, port: int, transport: Transport = Transport.TCP) -> Endpoint:
    return Endpoint(ip=ip, port=port, transport=transport)


def test_claims_outside_the_scope_are_set_aside_not_planned() -> None:
    scope = scope_of("192.0.2.0/30", exclude=("192.0.2.2",))
    claims = [ep("192.0.2.1", 22), ep("192.0.2.2", 80), ep("198.51.100.9", 443)]
    plan = plan_claims(scope, claims)
    assert plan.tcp == {"192.0.2.1": {22}}
    assert plan.out_of_scope == {ep("192.0.2.2", 80), ep("198.51.100.9", 443)}


def test_a_full_plan_covers_every_in_scope_host_and_every_claim() -> None:
    scope = scope_of("192.0.2.0/31")
    plan = plan_scan(scope, [22, 80], [53], claims=[ep("192.0.2.1", 8443)])
    assert plan.tcp == {"192.0.2.0": {22, 80}, "192.0.2.1": {22, 80, 8443}}
    assert plan.udp == {"192.0.2.0": {53}, "192.0.2.1": {53}}
    assert plan.claimed == {ep("192.0.2.1", 8443)}


def test_the_gate_refuses_a_plan_that_leaves_the_scope(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a plan that names a host outside the targets (a bug, or a tampered shard)
    scope = scope_of("192.0.2.1")
    plan = Plan(tcp={"192.0.2.1": {22}, "203.0.113.5": {22}})
    sent: list[object] = []
    monkeypatch.setattr(verify_stage, "scan_tcp", lambda *a, **k: sent.append(a))
    monkeypatch.setattr(verify_stage, "scan_udp", lambda *a, **k: sent.append(a))
    # When it is verified, then nothing is probed at all
    with Store(f"sqlite:///{tmp_path / 'p.db'}") as store:
        run = store.start_run("verify", ["192.0.2.1/32"])
        with pytest.raises(ScopeError, match=r"203\.0\.113\.5"):
            asyncio.run(verify(store, run, plan, scope))
    assert sent == []
