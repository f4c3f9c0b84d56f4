"""The score: every rule in a table, the CVSS boundaries, allowlist, CDN edges and caps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.models import Colour, Endpoint, PortState, Service, Status, Vuln
from core.risk.allowlist import allowlist_from
from core.risk.grading import Grade, OfferedSuite
from core.risk.scoring import RULES, annotate, score_asset, score_assets, vuln_rule
from tests.core.risk.helpers import NOW, svc, tls

IP = "198.51.100.7"
CF_IP = "104.16.0.10"  # inside Cloudflare's published 104.16.0.0/13: a CDN address


def rules_of(services: list[Service], **kwargs: object) -> list[tuple[str, int]]:
    risk = score_asset(IP, services, now=NOW, **kwargs)  # type: ignore[arg-type]
    return [(f.rule, f.points) for f in risk.findings]


https = svc(IP, 443, "http", product="nginx", tls=tls())


@pytest.mark.parametrize(
    ("services", "expected"),
    [
        ([svc(IP, 22, "ssh")], [("exposure.open-ports", 2)]),
        ([svc(IP, 3306, "mysql")], [("exposure.open-ports", 2), ("port.red", 25)]),
        ([svc(IP, 3389, "ms-wbt-server")], [("exposure.open-ports", 2), ("port.red", 25)]),
        ([svc(IP, 9999, None)], [("exposure.open-ports", 2), ("port.yellow", 5)]),
        ([svc(IP, 9999, "minecraft")], [("exposure.open-ports", 2), ("port.yellow", 5)]),
        (
            [svc(IP, 9200, "http", product="Elasticsearch")],
            [("exposure.open-ports", 2), ("port.red", 25)],
        ),
        ([https], [("exposure.open-ports", 2)]),
        (
            [https.model_copy(update={"tls": tls(versions=("SSLv3", "TLSv1.2"))})],
            [("exposure.open-ports", 2), ("tls.protocol.ssl", 15)],
        ),
        (
            [https.model_copy(update={"tls": tls(versions=("TLSv1", "TLSv1.1", "TLSv1.2"))})],
            [("exposure.open-ports", 2), ("tls.protocol.legacy", 5)],
        ),
        (
            [https.model_copy(update={"tls": tls(versions=("SSLv2", "TLSv1.0"))})],
            [("exposure.open-ports", 2), ("tls.protocol.ssl", 15), ("tls.protocol.legacy", 5)],
        ),
        (
            [https.model_copy(update={"tls": tls(versions=("-SSLv3", "TLSv1.2"))})],
            [("exposure.open-ports", 2)],  # "-SSLv3": Shodan saying it was refused
        ),
        (
            [https.model_copy(update={"tls": tls(cipher="TLS_RSA_WITH_RC4_128_SHA")})],
            [("exposure.open-ports", 2), ("tls.cipher.insecure", 10)],
        ),
        (
            [https.model_copy(update={"tls": tls(cipher="EXP-RC4-MD5")})],
            [("exposure.open-ports", 2), ("tls.cipher.insecure", 10)],
        ),
        (
            [https.model_copy(update={"tls": tls(cipher="TLS_RSA_WITH_NULL_SHA")})],
            [("exposure.open-ports", 2), ("tls.cipher.insecure", 10)],
        ),
        (
            [https.model_copy(update={"tls": tls(cipher="DES-CBC3-SHA")})],
            [("exposure.open-ports", 2), ("tls.cipher.weak", 3)],
        ),
        (
            [https.model_copy(update={"tls": tls(not_after=datetime(2026, 6, 30, tzinfo=UTC))})],
            [("exposure.open-ports", 2), ("cert.expired", 10)],
        ),
        (
            [https.model_copy(update={"tls": tls(not_before=datetime(2026, 7, 2, tzinfo=UTC))})],
            [("exposure.open-ports", 2), ("cert.not-yet-valid", 5)],
        ),
        (
            [https.model_copy(update={"tls": tls(self_signed=True)})],
            [("exposure.open-ports", 2), ("cert.self-signed", 5)],
        ),
        (
            [https.model_copy(update={"tls": tls(key_type="RSA", key_bits=1024)})],
            [("exposure.open-ports", 2), ("cert.weak-key", 5)],
        ),
        (
            [https.model_copy(update={"tls": tls(key_type="EC", key_bits=256)})],
            [("exposure.open-ports", 2)],
        ),
        (
            [https.model_copy(update={"tls": tls(key_type="EC", key_bits=160)})],
            [("exposure.open-ports", 2), ("cert.weak-key", 5)],
        ),
        (
            [https.model_copy(update={"tls": tls(key_type="Ed25519", key_bits=256)})],
            [("exposure.open-ports", 2)],
        ),
        (
            [svc(IP, 80, "http", vulns=(Vuln(cve="CVE-2021-41773", cvss=7.5),))],
            [("exposure.open-ports", 2), ("vuln.high", 10)],
        ),
        # closed and refuted ports are not exposure
        ([svc(IP, 3306, "mysql", state=PortState.CLOSED, status=Status.REFUTED)], []),
        # a CDN edge port is listed, with zero points, and nothing on it counts
        (
            [
                svc(
                    CF_IP,
                    8443,
                    "http",
                    tls=tls(versions=("TLSv1",), self_signed=True),
                    vulns=(Vuln(cve="CVE-2023-44487", cvss=7.5),),
                )
            ],
            [("port.cdn-edge", 0)],
        ),
        # a CDN address on a port no CDN answers on is penalised as usual
        ([svc(CF_IP, 3306, "mysql")], [("exposure.open-ports", 2), ("port.red", 25)]),
        ([svc(IP, 2083, "http", tags=("cdn",))], [("port.cdn-edge", 0)]),
        ([svc(IP, 6379, "redis", tags=("cdn",))], [("exposure.open-ports", 2), ("port.red", 25)]),
    ],
)
def test_rule_table(services: list[Service], expected: list[tuple[str, int]]) -> None:
    ip = services[0].endpoint.ip
    risk = score_asset(ip, services, now=NOW)
    assert [(f.rule, f.points) for f in risk.findings] == expected
    for finding in risk.findings:
        assert finding.rule in RULES
        assert finding.evidence and finding.rationale


@pytest.mark.parametrize(
    ("cvss", "rule", "points"),
    [
        (10.0, "vuln.critical", 15),
        (9.0, "vuln.critical", 15),
        (8.9, "vuln.high", 10),
        (7.0, "vuln.high", 10),
        (6.9, "vuln.medium", 4),
        (4.0, "vuln.medium", 4),
        (3.9, "vuln.low", 1),
        (0.1, "vuln.low", 1),
        (0.0, "vuln.none", 0),
        (None, "vuln.unscored", 4),
    ],
)
def test_cvss_boundaries(cvss: float | None, rule: str, points: int) -> None:
    assert vuln_rule(cvss) == rule
    assert RULES[rule].points == points
    found = rules_of([svc(IP, 80, "http", vulns=(Vuln(cve="CVE-2024-0001", cvss=cvss),))])
    assert found == [("exposure.open-ports", 2), (rule, points)]


def test_one_cve_on_two_ports_counts_once_at_its_worst() -> None:
    services = [
        svc(IP, 80, "http", vulns=(Vuln(cve="CVE-2024-0001", cvss=None),)),
        svc(IP, 443, "http", vulns=(Vuln(cve="CVE-2024-0001", cvss=9.8),)),
    ]
    risk = score_asset(IP, services, now=NOW)
    vulns = [f for f in risk.findings if f.rule.startswith("vuln.")]
    assert [(f.rule, f.points) for f in vulns] == [("vuln.critical", 15)]
    assert "80/tcp, 443/tcp" in vulns[0].evidence


def test_exposure_is_capped_and_says_so() -> None:
    services = [svc(IP, 8000 + i, "http") for i in range(15)]
    risk = score_asset(IP, services, now=NOW)
    (exposure,) = risk.findings
    assert (exposure.rule, exposure.points) == ("exposure.open-ports", 20)
    assert "15 open ports" in exposure.evidence and "capped at 20" in exposure.evidence


def test_score_is_capped_at_100_but_the_points_add_up() -> None:
    services = [
        svc(IP, port, name)
        for port, name in [
            (3306, "mysql"),
            (3389, "rdp"),
            (445, "smb"),
            (6379, "redis"),
            (23, "telnet"),
        ]
    ]
    risk = score_asset(IP, services, now=NOW)
    assert risk.points == 10 + 5 * 25
    assert risk.score == 100
    assert sum(f.points for f in risk.findings) == risk.points


def test_colour_counts() -> None:
    services = [
        svc(IP, 22, "ssh"),
        svc(IP, 443, "http"),
        svc(IP, 3306, "mysql"),
        svc(IP, 9999, None),
        svc(IP, 5432, "postgresql", state=PortState.CLOSED, status=Status.REFUTED),
    ]
    risk = score_asset(IP, services, now=NOW)
    assert (risk.open_ports, risk.green, risk.yellow, risk.red) == (4, 2, 1, 1)
    assert risk.colours == {Colour.GREEN: 2, Colour.YELLOW: 1, Colour.RED: 1}
    assert risk.score == 8 + 25 + 5


def test_allowlist_lowers_exposure_and_colour_but_not_cves() -> None:
    mysql = svc(IP, 3306, "mysql", vulns=(Vuln(cve="CVE-2024-0002", cvss=7.5),))
    allow = allowlist_from([{"targets": ["198.51.100.0/24"], "ports": ["3306/tcp"]}], weight=0.2)
    plain = score_asset(IP, [mysql], now=NOW)
    lowered = score_asset(IP, [mysql], now=NOW, allowlist=allow)
    assert [(f.rule, f.points) for f in plain.findings] == [
        ("exposure.open-ports", 2),
        ("port.red", 25),
        ("vuln.high", 10),
    ]
    assert [(f.rule, f.points) for f in lowered.findings] == [
        ("exposure.open-ports", 0),  # 2 x 0.2 = 0.4, rounds to 0
        ("port.red", 5),  # 25 x 0.2
        ("vuln.high", 10),  # a CVE on an expected service still counts in full
    ]
    red = lowered.findings[1]
    assert (red.base_points, red.weight) == (25, 0.2)
    assert red.allowlist is not None and "3306/tcp" in red.allowlist
    assert "1 expected by the allowlist" in lowered.findings[0].evidence


def test_weight_rounds_half_up() -> None:
    # 25 x 0.5 = 12.5: half up gives 13 (round() would give 12).
    allow = allowlist_from([{"targets": [IP], "services": ["mysql"]}], weight=0.5)
    risk = score_asset(IP, [svc(IP, 3306, "mysql")], now=NOW, allowlist=allow)
    assert [(f.rule, f.points) for f in risk.findings] == [
        ("exposure.open-ports", 1),
        ("port.red", 13),
    ]


def test_enumerated_suites_are_scored_with_their_grade() -> None:
    suites = {
        Endpoint(ip=IP, port=443): [
            OfferedSuite(name="TLS_AES_128_GCM_SHA256", version="TLSv1.3"),
            OfferedSuite(name="TLS_RSA_WITH_3DES_EDE_CBC_SHA", version="TLSv1.2"),
            OfferedSuite(name="VENDOR_SPECIAL", grade=Grade.INSECURE),
        ]
    }
    risk = score_asset(IP, [https], now=NOW, suites=suites)
    cipher = [f for f in risk.findings if f.rule.startswith("tls.cipher")]
    assert [(f.rule, f.points) for f in cipher] == [("tls.cipher.insecure", 10)]
    assert "VENDOR_SPECIAL" in cipher[0].evidence


def test_annotate_sets_colour_and_cdn_edge() -> None:
    services = [
        svc(IP, 3306, "mysql"),
        svc(IP, 22, "ssh"),
        svc(IP, 9999, None),
        svc(CF_IP, 443, "http", status=Status.CONFIRMED),
    ]
    out = list(annotate(services))
    assert [s.colour for s in out] == [Colour.RED, Colour.GREEN, Colour.YELLOW, Colour.GREEN]
    assert [s.status for s in out] == [Status.CONFIRMED] * 3 + [Status.CDN_EDGE]


def test_score_assets_groups_by_address() -> None:
    services = [svc(IP, 22, "ssh"), svc("203.0.113.5", 3306, "mysql"), svc(IP, 80, "http")]
    risks = score_assets(services, now=NOW)
    assert set(risks) == {IP, "203.0.113.5"}
    assert (risks[IP].score, risks["203.0.113.5"].score) == (4, 27)


def test_every_rule_is_documented_in_the_module() -> None:
    import core.risk.scoring as scoring

    assert scoring.__doc__ is not None
    for rule in RULES.values():
        assert rule.id in scoring.__doc__
        assert f"{rule.points}" in scoring.__doc__
