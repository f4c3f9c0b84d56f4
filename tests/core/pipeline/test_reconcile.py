"""The reconcile rules, one table per rule, plus reconcile_all over a real store."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.models import (
    Colour,
    Conflict,
    Endpoint,
    Evidence,
    Kind,
    Observation,
    PortState,
    Service,
    SourceSeen,
    Status,
    TlsSummary,
    Vuln,
)
from core.pipeline.reconcile import reconcile, reconcile_all
from core.store import Store

EP = Endpoint(ip="192.0.2.10", port=443)
DAY0 = datetime(2026, 1, 1, tzinfo=UTC)

A, IMP, P = Kind.ACTIVE, Kind.IMPORTED, Kind.PASSIVE
OPEN, CLOSED = PortState.OPEN, PortState.CLOSED
FILTERED, OPEN_FILTERED = PortState.FILTERED, PortState.OPEN_FILTERED
WEAK = Evidence.WEAK


def day(n: float) -> datetime:
    return DAY0 + timedelta(days=n)


def o(
    source: str = "shodan",
    kind: Kind = P,
    state: PortState = OPEN,
    at: float | None = 0,
    *,
    fetched: float = 30,
    **fields: object,
) -> Observation:
    """An observation of EP: `at` is the source's day (None: it gives none), `fetched` ours."""
    return Observation.model_validate(
        {
            "endpoint": EP,
            "source": source,
            "kind": kind,
            "state": state,
            "observed_at": None if at is None else day(at),
            "fetched_at": day(fetched),
            **fields,
        }
    )


def probe(state: PortState, at: float, **fields: object) -> Observation:
    return o("verifier", A, state, at, **fields)


# -- state and status -------------------------------------------------------------------

STATUS_CASES = {
    # without any probe
    "passive-open-only": ([o()], OPEN, Status.UNVERIFIED),
    "weak-passive-open": ([o("internetdb", evidence=WEAK, at=None)], OPEN, Status.UNVERIFIED),
    "an-open-claim-beats-a-newer-closed-one": (
        [o(at=1), o(state=CLOSED, at=2)],
        OPEN,
        Status.UNVERIFIED,
    ),
    "no-open-claim-the-newest-state": (
        [o("import:nmap", IMP, CLOSED, 1), o("import:nmap", IMP, FILTERED, 2)],
        FILTERED,
        Status.UNVERIFIED,
    ),
    "cdn-tag-without-probe": ([o(tags=("cdn",)), o("censys")], OPEN, Status.CDN_EDGE),
    "strong-sources-disagree-on-service": (
        [o(service="http"), o("censys", service="ssh")],
        OPEN,
        Status.CONFLICT,
    ),
    "weak-evidence-cannot-make-a-conflict": (
        [o(service="http"), o("internetdb", service="ssh", evidence=WEAK)],
        OPEN,
        Status.UNVERIFIED,
    ),
    "spellings-of-one-service-agree": (
        [o(service="https"), o("censys", service="HTTP")],
        OPEN,
        Status.UNVERIFIED,
    ),
    "only-each-sources-newest-service-counts": (
        [o(service="ssh", at=1), o(service="http", at=2), o("censys", service="http", at=1)],
        OPEN,
        Status.UNVERIFIED,
    ),
    "cdn-wins-over-conflict": (
        [o(service="http", tags=("cdn",)), o("censys", service="ssh")],
        OPEN,
        Status.CDN_EDGE,
    ),
    # with probes
    "probe-open-and-a-provider-agrees": ([o(), probe(OPEN, 5)], OPEN, Status.CONFIRMED),
    "probe-open-and-an-import-agrees": (
        [o("import:nmap", IMP), probe(OPEN, 5)],
        OPEN,
        Status.CONFIRMED,
    ),
    "probe-open-nobody-else-knows": ([probe(OPEN, 5)], OPEN, Status.ACTIVE_ONLY),
    "probe-open-providers-say-closed": (
        [o(state=CLOSED), probe(OPEN, 5)],
        OPEN,
        Status.ACTIVE_ONLY,
    ),
    "probe-closed-refutes-a-provider": ([o(), probe(CLOSED, 5)], CLOSED, Status.REFUTED),
    "probe-closed-refutes-a-newer-claim-too": ([o(at=9), probe(CLOSED, 5)], CLOSED, Status.REFUTED),
    "probe-closed-refutes-an-older-probe": (
        [probe(OPEN, 1), probe(CLOSED, 5)],
        CLOSED,
        Status.REFUTED,
    ),
    "probe-closed-nobody-claimed-open": ([probe(CLOSED, 5)], CLOSED, Status.ACTIVE_ONLY),
    "probe-closed-claims-closed-too": (
        [o(state=CLOSED), probe(CLOSED, 5)],
        CLOSED,
        Status.ACTIVE_ONLY,
    ),
    "newest-probe-decides-open-after-closed": (
        [o(), probe(CLOSED, 1), probe(OPEN, 5)],
        OPEN,
        Status.CONFIRMED,
    ),
    "newest-probe-decides-closed-after-open": (
        [o(), probe(OPEN, 1), probe(CLOSED, 5)],
        CLOSED,
        Status.REFUTED,
    ),
    "probe-filtered-is-inconclusive": ([o(), probe(FILTERED, 5)], FILTERED, Status.UNVERIFIED),
    "probe-open-filtered-is-inconclusive": (
        [probe(OPEN_FILTERED, 5)],
        OPEN_FILTERED,
        Status.UNVERIFIED,
    ),
    "confirmed-on-a-cdn-is-a-cdn-edge": (
        [o(tags=("cdn",)), probe(OPEN, 5)],
        OPEN,
        Status.CDN_EDGE,
    ),
    "cdn-does-not-hide-a-refutation": (
        [o(tags=("cdn",)), probe(CLOSED, 5)],
        CLOSED,
        Status.REFUTED,
    ),
    "cdn-does-not-make-active-only-an-edge": (
        [probe(OPEN, 5, tags=("cdn",))],
        OPEN,
        Status.ACTIVE_ONLY,
    ),
    "a-probe-silences-a-service-conflict": (
        [o(service="http"), o("censys", service="ssh"), probe(OPEN, 5)],
        OPEN,
        Status.CONFIRMED,
    ),
}


@pytest.mark.parametrize(
    ("observations", "state", "status"), STATUS_CASES.values(), ids=STATUS_CASES.keys()
)
def test_state_and_status(
    observations: list[Observation], state: PortState, status: Status
) -> None:
    service = reconcile(observations)
    assert (service.state, service.status) == (state, status)


def test_a_refutation_keeps_every_claim_and_its_time() -> None:
    service = reconcile([o(at=1), o("censys", at=3), probe(CLOSED, 5)])
    assert service.status is Status.REFUTED
    assert service.per_source == (
        SourceSeen(source="censys", first_seen=day(3), last_seen=day(3), state=OPEN),
        SourceSeen(source="shodan", first_seen=day(1), last_seen=day(1), state=OPEN),
        SourceSeen(source="verifier", first_seen=day(5), last_seen=day(5), state=CLOSED),
    )


# -- per source -------------------------------------------------------------------------

PER_SOURCE_CASES = {
    "one-sighting": ([o(at=2)], [("shodan", 2, 2, OPEN)]),
    "first-last-and-newest-state": (
        [o(at=3, state=CLOSED), o(at=1), o(at=2)],
        [("shodan", 1, 3, CLOSED)],
    ),
    "no-source-time-uses-fetch-time": (
        [o("internetdb", at=None, fetched=7, evidence=WEAK), o(at=2)],
        [("internetdb", 7, 7, OPEN), ("shodan", 2, 2, OPEN)],
    ),
    "sources-in-name-order": (
        [o("shodan"), o("censys"), o("netlas")],
        [("censys", 0, 0, OPEN), ("netlas", 0, 0, OPEN), ("shodan", 0, 0, OPEN)],
    ),
    "same-instant-prefers-open": (
        [o(at=4, state=CLOSED, fetched=9), o(at=4, state=OPEN, fetched=9)],
        [("shodan", 4, 4, OPEN)],
    ),
}


@pytest.mark.parametrize(
    ("observations", "expected"), PER_SOURCE_CASES.values(), ids=PER_SOURCE_CASES.keys()
)
def test_per_source(
    observations: list[Observation], expected: list[tuple[str, float, float, PortState]]
) -> None:
    assert reconcile(observations).per_source == tuple(
        SourceSeen(source=s, first_seen=day(first), last_seen=day(last), state=state)
        for s, first, last, state in expected
    )


# -- the chosen service -----------------------------------------------------------------

CHOICE_CASES = {
    "probe-beats-a-newer-provider": (
        [o(service="http", product="nginx", at=9), probe(OPEN, 1, service="ssh", product="x")],
        ("ssh", "x", None, "verifier"),
    ),
    "import-beats-a-newer-provider": (
        [o(service="http", at=9), o("import:nmap", IMP, service="ssh", at=1)],
        ("ssh", None, None, "import:nmap"),
    ),
    "strong-beats-weak-of-the-same-kind": (
        [o("internetdb", service="ssh", evidence=WEAK, at=9), o(service="http", at=1)],
        ("http", None, None, "shodan"),
    ),
    "the-newest-within-a-rank": (
        [o(product="nginx", version="1", at=1), o("censys", product="Apache", version="2", at=2)],
        (None, "Apache", "2", "censys"),
    ),
    "a-product-alone-is-a-candidate": (
        [o(), o("censys", product="OpenSSH")],
        (None, "OpenSSH", None, "censys"),
    ),
    "nothing-named-chooses-nothing": ([o(), probe(OPEN, 3)], (None, None, None, None)),
    "a-version-fills-in-when-service-and-product-agree": (
        [
            probe(OPEN, 5, service="http", product="nginx"),
            o(service="HTTP", product="NGINX", version="1.24.0", at=1),
        ],
        ("http", "nginx", "1.24.0", "verifier"),
    ),
    "no-fill-from-another-product": (
        [
            probe(OPEN, 5, service="http", product="nginx"),
            o(service="http", product="Apache httpd", version="2.4.58", at=1),
        ],
        ("http", "nginx", None, "verifier"),
    ),
    "no-fill-from-another-service": (
        [
            probe(OPEN, 5, service="http", product="nginx"),
            o(service="smtp", product="nginx", version="1.24.0", at=1),
        ],
        ("http", "nginx", None, "verifier"),
    ),
    "no-fill-when-the-winner-names-no-product": (
        [probe(OPEN, 5, service="http"), o(service="http", product="nginx", version="1", at=1)],
        ("http", None, None, "verifier"),
    ),
    "the-fill-comes-from-the-best-ranked-agreeing-one": (
        [
            probe(OPEN, 5, service="http", product="nginx"),
            o(service="http", product="nginx", version="1.20", at=9),
            o("import:nmap", IMP, service="http", product="nginx", version="1.24", at=1),
        ],
        ("http", "nginx", "1.24", "verifier"),
    ),
}


@pytest.mark.parametrize(("observations", "chosen"), CHOICE_CASES.values(), ids=CHOICE_CASES.keys())
def test_chosen_service(
    observations: list[Observation], chosen: tuple[str | None, str | None, str | None, str | None]
) -> None:
    service = reconcile(observations)
    assert (service.service, service.product, service.version, service.chosen_from) == chosen


# -- conflicts --------------------------------------------------------------------------

CONFLICT_CASES = {
    "agreement-is-no-conflict": ([o(product="nginx"), o("censys", product="NGINX")], ()),
    "products-differ": (
        [o(product="nginx"), o("censys", product="Apache")],
        (Conflict(field="product", values={"censys": "Apache", "shodan": "nginx"}),),
    ),
    "only-each-sources-newest-value": (
        [o(product="Apache", at=1), o(product="nginx", at=2), o("censys", product="nginx")],
        (),
    ),
    "nulls-are-not-values": (
        [o(product="nginx", at=1), o(at=2), o("censys", product="nginx")],
        (),
    ),
    "every-field-in-order": (
        [
            o(service="http", product="nginx", version="1"),
            probe(OPEN, 5, service="ssh", product="OpenSSH", version="9"),
        ],
        (
            Conflict(field="service", values={"shodan": "http", "verifier": "ssh"}),
            Conflict(field="product", values={"shodan": "nginx", "verifier": "OpenSSH"}),
            Conflict(field="version", values={"shodan": "1", "verifier": "9"}),
        ),
    ),
    "three-sources-two-values": (
        [o(version="1.2"), o("censys", version="1.2"), o("netlas", version="1.3")],
        (Conflict(field="version", values={"censys": "1.2", "netlas": "1.3", "shodan": "1.2"}),),
    ),
}


@pytest.mark.parametrize(
    ("observations", "conflicts"), CONFLICT_CASES.values(), ids=CONFLICT_CASES.keys()
)
def test_conflicts(observations: list[Observation], conflicts: tuple[Conflict, ...]) -> None:
    assert reconcile(observations).conflicts == conflicts


# -- first and last seen ----------------------------------------------------------------

SEEN_CASES = {
    "over-open-claims": ([o(at=2), o("censys", at=4), o(state=CLOSED, at=9)], (2, 4)),
    "a-refuting-probe-is-not-a-sighting": ([o(at=2), probe(CLOSED, 6)], (2, 2)),
    "all-when-none-claims-open": ([probe(CLOSED, 3), probe(FILTERED, 7)], (3, 7)),
    "fetch-time-when-the-source-gives-none": (
        [o("internetdb", at=None, fetched=12, evidence=WEAK), o(at=2)],
        (2, 12),
    ),
}


@pytest.mark.parametrize(("observations", "seen"), SEEN_CASES.values(), ids=SEEN_CASES.keys())
def test_first_and_last_seen(observations: list[Observation], seen: tuple[float, float]) -> None:
    service = reconcile(observations)
    assert (service.first_seen, service.last_seen) == (day(seen[0]), day(seen[1]))


# -- unions and the newest of the rest --------------------------------------------------

TLS_OLD = TlsSummary(versions=("TLSv1",), cipher="TLS_RSA_WITH_RC4_128_SHA")
TLS_NEW = TlsSummary(versions=("TLSv1.3",), cipher="TLS_AES_128_GCM_SHA256")

UNION_CASES = {
    "hostnames-cpes-tags-sorted-unions": (
        [
            o(hostnames=("b.example.com",), cpes=("cpe:/a:x",), tags=("cloud",)),
            o("censys", hostnames=("a.example.com", "b.example.com"), tags=("cdn", "cloud")),
        ],
        {
            "hostnames": ("a.example.com", "b.example.com"),
            "cpes": ("cpe:/a:x",),
            "tags": ("cdn", "cloud"),
        },
    ),
    "vulns-keep-the-highest-cvss": (
        [
            o(vulns=(Vuln(cve="CVE-2024-2"), Vuln(cve="CVE-2024-1", cvss=5.0))),
            o("censys", vulns=(Vuln(cve="CVE-2024-1", cvss=9.8), Vuln(cve="CVE-2024-2"))),
            o("netlas", vulns=(Vuln(cve="CVE-2024-1", cvss=4.0), Vuln(cve="CVE-2024-2", cvss=3.1))),
        ],
        {"vulns": (Vuln(cve="CVE-2024-1", cvss=9.8), Vuln(cve="CVE-2024-2", cvss=3.1))},
    ),
    "org-title-tls-from-the-newest-that-has-one": (
        [
            o(org="Old Org", http_title="Old", tls=TLS_OLD, at=1),
            o("censys", org="New Org", at=3),
            o("netlas", tls=TLS_NEW, http_title="New", at=2),
            o("internetdb", at=9, evidence=WEAK),
        ],
        {"org": "New Org", "http_title": "New", "tls": TLS_NEW},
    ),
    "the-winners-banner-is-preferred": (
        [o(banner="newest banner", at=9), probe(OPEN, 1, service="ssh", banner="SSH-2.0-x")],
        {"banner": "SSH-2.0-x"},
    ),
    "else-the-newest-banner": (
        [o(banner="old", at=1), o("censys", banner="new", at=2), probe(OPEN, 5, service="ssh")],
        {"banner": "new"},
    ),
    "colour-is-left-to-the-risk-engine": ([o()], {"colour": None}),
}


@pytest.mark.parametrize(("observations", "fields"), UNION_CASES.values(), ids=UNION_CASES.keys())
def test_unions_and_newest_values(
    observations: list[Observation], fields: dict[str, object]
) -> None:
    service = reconcile(observations)
    assert {name: getattr(service, name) for name in fields} == fields


# -- whole-function properties ----------------------------------------------------------


def test_the_result_does_not_depend_on_the_order_of_the_observations() -> None:
    observations = [
        o(service="http", product="nginx", version="1.20", at=1, tags=("cloud",)),
        o("censys", service="http", product="nginx", at=2, banner="b1"),
        o("censys", state=CLOSED, at=2, banner="b2"),  # same instant as the one above
        probe(OPEN, 3, service="http", product="nginx", tls=TLS_NEW),
        o("internetdb", at=None, fetched=4, evidence=WEAK, vulns=(Vuln(cve="CVE-2024-1"),)),
    ]
    expected = reconcile(observations)
    for order in itertools.permutations(observations):
        assert reconcile(list(order)) == expected


ALL_CASES = [
    case[0]
    for table in (
        STATUS_CASES,
        PER_SOURCE_CASES,
        CHOICE_CASES,
        CONFLICT_CASES,
        SEEN_CASES,
        UNION_CASES,
    )
    for case in table.values()
]


@pytest.mark.parametrize("observations", ALL_CASES)
def test_the_service_is_what_validating_its_values_would_build(
    observations: list[Observation],
) -> None:
    # reconcile builds the Service without validating it again (core.models.trusted):
    # validating what it built must give an equal model, with the fields in declaration
    # order and the same fields counted as set.
    service = reconcile(observations)
    values = {name: getattr(service, name) for name in Service.model_fields if name != "colour"}
    validated = Service.model_validate(values)
    assert service == validated
    assert list(service.__dict__) == list(Service.model_fields)
    assert service.model_fields_set == validated.model_fields_set
    for seen in service.per_source:
        assert seen == SourceSeen.model_validate(seen.__dict__)
    for conflict in service.conflicts:
        assert conflict == Conflict.model_validate(conflict.__dict__)
    assert service.model_dump_json() == validated.model_dump_json()


def test_nothing_to_reconcile_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        reconcile([])


def test_observations_of_different_endpoints_are_not_merged() -> None:
    other = o().model_copy(update={"endpoint": Endpoint(ip="192.0.2.11", port=443)})
    with pytest.raises(ValueError, match=r"192\.0\.2\.11"):
        reconcile([o(), other])


# -- reconcile_all ----------------------------------------------------------------------


def _at(ip: str, port: int, source: str, when: float, **fields: object) -> Observation:
    return o(source, at=when, **fields).model_copy(update={"endpoint": Endpoint(ip=ip, port=port)})


def test_reconcile_all_merges_the_whole_history_into_the_run(tmp_path: Path) -> None:
    # Given two runs: passive claims first, then a run with our probes
    with Store(f"sqlite:///{tmp_path / 'p.db'}") as store:
        first = store.start_run("enrich", ["192.0.2.0/24"])
        store.add_observations(
            first,
            [
                _at("192.0.2.1", 22, "shodan", 1, service="ssh"),
                _at("192.0.2.1", 80, "shodan", 1),
                _at("192.0.2.2", 443, "censys", 1),
            ],
        )
        second = store.start_run("verify", ["192.0.2.0/24"])
        store.add_observations(
            second,
            [
                _at("192.0.2.1", 22, "verifier", 5, kind=A, service="ssh"),
                _at("192.0.2.1", 80, "verifier", 5, kind=A, state=CLOSED),
            ],
        )

        # When the second run is reconciled
        saved = reconcile_all(store, second)

        # Then every endpoint ever seen gets a service in that run, from all its history
        services = {str(s.endpoint): s for s in store.services(second)}
        assert saved == 3
        assert services["192.0.2.1:22/tcp"].status is Status.CONFIRMED
        assert services["192.0.2.1:80/tcp"].status is Status.REFUTED
        assert services["192.0.2.2:443/tcp"].status is Status.UNVERIFIED
        assert list(store.services(first)) == []
        stored = list(store.services(second))
        expected = [reconcile(group) for _, group in store.iter_endpoint_observations()]
        # Stored services carry the risk colour the scoring step adds; the rest is reconcile's.
        assert [s.model_copy(update={"colour": None}) for s in stored] == expected
        assert {str(s.endpoint): s.colour for s in stored}["192.0.2.1:22/tcp"] is Colour.GREEN

        # And a re-run limited to some addresses only replaces those
        store.add_observations(second, [_at("192.0.2.2", 443, "verifier", 6, kind=A)])
        assert reconcile_all(store, second, ips={"192.0.2.2"}) == 1
        services = {str(s.endpoint): s for s in store.services(second)}
        assert len(services) == 3
        assert services["192.0.2.2:443/tcp"].status is Status.CONFIRMED


def test_a_cdn_tag_makes_only_cdn_edge_ports_edges() -> None:
    # A provider tags the whole address as a CDN; MySQL on it is not something a CDN
    # edge answers on, so it keeps its own status (and its risk).
    mysql = Endpoint(ip="192.0.2.10", port=3306)
    claims = [
        o(tags=("cdn",)).model_copy(update={"endpoint": mysql}),
        o("censys", tags=("cdn",)).model_copy(update={"endpoint": mysql}),
    ]
    assert reconcile(claims).status is Status.UNVERIFIED
    assert reconcile([o(tags=("cdn",))]).status is Status.CDN_EDGE  # 443 is an edge port
