"""Enumeration against real servers in a network namespace: the lab's nginx and
`openssl s_server` variants (tests/core/verify/tls/lab_servers.py).

Ground truth is each server's written configuration, confirmed once per server with
`openssl s_client` before enumeration runs. The bar: exactly the configured suites, in the
configured order when the server imposes one, exactly the configured groups and versions.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from core.risk.grading import Grade
from core.verify.tls import enumerate_tls
from core.verify.tls.model import ProbeStatus, TlsProfile
from tests.core.verify.tls.lab_servers import (
    GROUP_IANA,
    TlsServer,
    check_with_s_client,
    stdnames,
    tls_lab,
)
from tests.lab.daemons import DaemonMissing
from tests.lab.netns import Netns, lab_unavailable, require_root_netns

pytestmark = pytest.mark.lab

NAMES = ["legacy", "serverpref", "clientpref", "tls13only", "cbconly", "nginx"]


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[Netns, dict[str, TlsServer], dict[str, TlsProfile]]]:
    require_root_netns()
    for tool in ("openssl", "nginx"):
        if shutil.which(tool) is None:
            lab_unavailable(f"{tool} is not installed")
    try:
        context = tls_lab(base_port=4430)
        ns, servers = context.__enter__()
    except DaemonMissing as exc:
        lab_unavailable(str(exc))
        raise
    try:
        by_name = {s.name: s for s in servers}
        # The truth, confirmed independently before anything else (servers side by side).
        with ThreadPoolExecutor(max_workers=len(servers)) as pool:
            list(pool.map(lambda server: check_with_s_client(ns, server), servers))

        async def everything() -> dict[str, TlsProfile]:
            async with asyncio.TaskGroup() as tg:
                tasks = {
                    s.name: tg.create_task(enumerate_tls("127.0.0.1", s.port, sni=s.sni, timeout=5))
                    for s in servers
                }
            return {name: task.result() for name, task in tasks.items()}

        profiles = ns.call(lambda: asyncio.run(everything()), timeout=120)
        yield ns, by_name, profiles
    finally:
        context.__exit__(None, None, None)


def test_ground_truth_was_checked(lab) -> None:  # type: ignore[no-untyped-def]
    _, servers, _ = lab
    assert set(servers) == set(NAMES)
    assert all(server.checks >= 5 for server in servers.values())


@pytest.mark.parametrize("name", NAMES)
def test_exactly_the_configured_versions_and_suites(lab, name: str) -> None:  # type: ignore[no-untyped-def]
    _, servers, profiles = lab
    server, profile = servers[name], profiles[name]
    iana = stdnames()
    assert profile.outcome == "ok"
    assert profile.versions == server.versions
    for result in profile.protocols:
        if result.version not in server.suites:
            assert result.status is ProbeStatus.REJECTED, result  # SSLv2/SSLv3 included
            assert result.suites == ()
            continue
        expected = [iana[n] for n in server.suites[result.version]]
        got = [s.name for s in result.suites]
        if server.server_order:
            assert got == expected, result.version  # the server's own order
        else:
            assert sorted(got) == sorted(expected), result.version
        assert len(expected) < 2 or result.server_preference is server.server_order
    assert profile.anomalies == ()


@pytest.mark.parametrize("name", NAMES)
def test_exactly_the_configured_groups(lab, name: str) -> None:  # type: ignore[no-untyped-def]
    _, servers, profiles = lab
    server, profile = servers[name], profiles[name]
    assert sorted(profile.groups) == sorted(GROUP_IANA[g] for g in server.groups13)
    assert sorted(profile.groups_tls12) == sorted(GROUP_IANA[g] for g in server.groups12)
    assert profile.dhe_bits == server.dhe_bits


def test_nginx_matches_the_lab_facts(lab) -> None:  # type: ignore[no-untyped-def]
    _, servers, profiles = lab
    profile = profiles["nginx"]
    assert [s.name for s in profile.accepted("TLSv1.2")] == [
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_RSA_WITH_AES_128_CBC_SHA",
    ]
    assert profile.cert is not None and profile.cert.key_type == "RSA"
    assert servers["nginx"].sni in profile.cert.sans
    # The static-RSA CBC suite makes it weak and fails Mozilla intermediate for that alone
    assert profile.grade is Grade.WEAK
    intermediate = next(v for v in profile.mozilla if v.profile == "intermediate")
    assert intermediate.reasons == ("accepts TLS_RSA_WITH_AES_128_CBC_SHA, outside the profile",)


def test_grades_and_verdicts_follow_the_configuration(lab) -> None:  # type: ignore[no-untyped-def]
    _, _, profiles = lab
    # TLS 1.3 only, modern suites and groups, ECDSA P-256: meets both Mozilla profiles
    modern = profiles["tls13only"]
    assert modern.grade is Grade.RECOMMENDED
    assert [v.compliant for v in modern.mozilla] == [True, True]
    assert modern.cert is not None and modern.cert.key_type == "EC"
    # CBC only: every suite weak, the endpoint weak
    assert {s.grade for s in profiles["cbconly"].accepted()} == {Grade.WEAK}
    assert profiles["cbconly"].grade is Grade.WEAK
    # anonymous DH and TLS 1.0 on the legacy server: insecure
    legacy = profiles["legacy"]
    assert legacy.grade is Grade.INSECURE
    assert any("TLS_DH_anon" in reason for reason in legacy.grade_reasons)
    assert not any(v.compliant for v in legacy.mozilla)
