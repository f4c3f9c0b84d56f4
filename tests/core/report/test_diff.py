"""Diff between two runs: opened, closed, changed, and what neither run looked at."""

from __future__ import annotations

from core.models import CertSummary, Colour, PortState, Status, TlsSummary
from core.report.diff import ROW_COLUMNS, Change, diff_services, parse_scope
from tests.core.risk.helpers import svc, tls

A, B = "198.51.100.7", "203.0.113.5"


def test_opened_closed_changed() -> None:
    before = [
        svc(A, 22, "ssh", product="OpenSSH", version="8.9p1"),
        svc(A, 80, "http", product="nginx", version="1.22.1"),
        svc(A, 443, "http", product="nginx", tls=tls(cipher="TLS_AES_128_GCM_SHA256")),
        svc(A, 8080, "http"),
    ]
    after = [
        svc(A, 22, "ssh", product="OpenSSH", version="9.6p1"),  # version changed
        svc(A, 80, "http", product="nginx", version="1.22.1"),  # unchanged
        svc(
            A,
            443,
            "http",
            product="nginx",
            tls=tls(cipher="ECDHE-RSA-AES128-SHA", versions=("TLSv1.0", "TLSv1.2")),
        ),
        svc(A, 3306, "mysql", product="MySQL", colour=Colour.RED),  # opened
        # 8080 absent from the later run: closed (A was targeted)
    ]
    diff = diff_services(
        before, after, before_targets=[A + "/32"], after_targets=["198.51.100.0/24"]
    )
    assert [(e.change, e.port) for e in diff.opened] == [(Change.OPENED, 3306)]
    assert diff.opened[0].colour == "red" and diff.opened[0].fields == ()
    assert [(e.change, e.port) for e in diff.closed] == [(Change.CLOSED, 8080)]
    assert [e.port for e in diff.changed] == [22, 443]
    assert [(f.field, f.before, f.after) for f in diff.changed[0].fields] == [
        ("version", "8.9p1", "9.6p1")
    ]
    assert [(f.field, f.before, f.after) for f in diff.changed[1].fields] == [
        ("cipher", "TLS_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-SHA"),
        ("tls_versions", "TLSv1.2,TLSv1.3", "TLSv1.0,TLSv1.2"),
    ]
    assert diff.unscanned == 0


def test_service_product_and_certificate_changes() -> None:
    old_cert = TlsSummary(cert=CertSummary(sha256="AA11", subject="CN=a"))
    new_cert = TlsSummary(cert=CertSummary(sha256="bb22", subject="CN=a"))
    before = [svc(A, 8443, "http", product="Jetty", tls=old_cert)]
    after = [svc(A, 8443, "elasticsearch", product="Elasticsearch", tls=new_cert)]
    (entry,) = diff_services(before, after).changed
    assert [(f.field, f.before, f.after) for f in entry.fields] == [
        ("service", "http", "elasticsearch"),
        ("product", "Jetty", "Elasticsearch"),
        ("certificate", "sha256:aa11", "sha256:bb22"),
    ]


def test_certificate_without_fingerprint_compares_subject_issuer_and_expiry() -> None:
    before = [svc(A, 443, "http", tls=tls())]
    after = [svc(A, 443, "http", tls=tls(issuer="CN=Other CA"))]
    (entry,) = diff_services(before, after).changed
    (change,) = entry.fields
    assert change.field == "certificate"
    assert change.before == "CN=www.example.com by CN=Example CA until 2027-01-01"


def test_case_and_spelling_differences_are_not_changes() -> None:
    before = [svc(A, 443, "https", product="NGINX")]
    after = [svc(A, 443, "http", product="nginx")]
    assert diff_services(before, after).changed == ()


def test_refuted_port_is_closed_with_the_state_change() -> None:
    before = [svc(A, 3306, "mysql")]
    after = [svc(A, 3306, "mysql", state=PortState.CLOSED, status=Status.REFUTED)]
    diff = diff_services(before, after)
    (entry,) = diff.closed
    assert [(f.field, f.before, f.after) for f in entry.fields] == [
        ("state", "open", "closed"),
        ("status", "confirmed", "refuted"),
    ]


def test_endpoints_outside_the_other_run_s_targets_are_unscanned() -> None:
    before = [svc(A, 22, "ssh"), svc(B, 22, "ssh")]
    after = [svc(A, 22, "ssh"), svc("2001:db8::5", 22, "ssh")]
    diff = diff_services(
        before,
        after,
        before_targets=[f"{A}/32", f"{B}/32"],
        after_targets=[f"{A}/32", "2001:db8::/64"],
    )
    assert diff.entries == ()
    assert diff.unscanned == 2


def test_unknown_scope_means_everything_was_covered() -> None:
    assert parse_scope([]) is None
    assert parse_scope(["www.example.com"]) is None
    diff = diff_services([svc(B, 22, "ssh")], [svc("2001:db8::5", 22, "ssh")])
    assert (len(diff.opened), len(diff.closed), diff.unscanned) == (1, 1, 0)


def test_rows_flatten_one_per_changed_field() -> None:
    before = [svc(A, 22, "ssh", product="OpenSSH", version="8.9p1")]
    after = [svc(A, 22, "ssh", product="Dropbear", version="2022.83"), svc(A, 23, "telnet")]
    rows = diff_services(before, after, run_a=1, run_b=2).rows()
    assert all(tuple(row) == ROW_COLUMNS for row in rows)
    assert [(r["change"], r["port"], r["field"]) for r in rows] == [
        ("opened", "23", ""),
        ("changed", "22", "product"),
        ("changed", "22", "version"),
    ]
