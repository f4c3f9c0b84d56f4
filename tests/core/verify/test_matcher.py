"""The matcher over response samples in fixtures/banners/ (written for these tests).

Each row names the fixture, how it is judged (our probe's answer, a provider banner, or a
UDP reply), and the exact service/product/version expected. Versions appear only where the
sample reveals one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.verify.matcher import (
    cpe23,
    match_banner,
    match_datagram,
    match_response,
    parse_http,
    safe_text,
)
from core.verify.probes import load_database

BANNERS = Path(__file__).resolve().parents[3] / "fixtures" / "banners"

# (fixture, how, probe, port, service, product, version)
ACTIVE = [
    ("ssh-openssh.txt", "null", 22, "ssh", "OpenSSH", "9.2p1"),
    ("ssh-dropbear.txt", "null", 2222, "ssh", "Dropbear SSH", "2022.83"),
    ("ftp-vsftpd.txt", "null", 21, "ftp", "vsftpd", "3.0.3"),
    ("ftp-proftpd.txt", "null", 21, "ftp", "ProFTPD", None),
    ("ftp-pure-ftpd.txt", "null", 21, "ftp", "Pure-FTPd", None),
    ("smtp-postfix.txt", "null", 25, "smtp", "Postfix", None),
    ("smtp-exim.txt", "null", 25, "smtp", "Exim", "4.96"),
    ("smtp-sendmail.txt", "null", 587, "smtp", "Sendmail", "8.17.1.9"),
    ("imap-dovecot.txt", "null", 143, "imap", "Dovecot", None),
    ("pop3-dovecot.txt", "null", 110, "pop3", "Dovecot", None),
    ("mysql-mariadb.bin", "null", 3306, "mysql", "MariaDB", "10.11.6"),
    ("mysql-oracle.bin", "null", 3306, "mysql", "MySQL", "8.0.35"),
    ("postgresql-ssl-no.bin", "postgres-ssl", 5432, "postgresql", "PostgreSQL", None),
    ("redis-info.txt", "redis", 6379, "redis", "Redis", "7.0.15"),
    ("redis-noauth.txt", "redis", 6379, "redis", "Redis", None),
    ("memcached-version.txt", "memcached", 11211, "memcached", "memcached", "1.6.18"),
    ("dns-dnsmasq-tcp.bin", "dns-version-bind", 53, "dns", "dnsmasq", "2.89"),
    ("dns-unbound-tcp.bin", "dns-version-bind", 53, "dns", "Unbound", "1.17.1"),
    ("http-nginx.txt", "http-get", 80, "http", "nginx", "1.22.1"),
    ("http-apache.txt", "http-get", 80, "http", "Apache httpd", "2.4.57"),
    ("http-lighttpd.txt", "http-get", 8080, "http", "lighttpd", "1.4.69"),
    ("http-caddy.txt", "http-get", 80, "http", "Caddy", None),
    ("http-elasticsearch.txt", "http-get", 9200, "elasticsearch", "Elasticsearch", "8.11.1"),
    ("http-docker.txt", "http-get", 2375, "docker", "Docker", "24.0.7"),
    ("http-kubernetes-version.txt", "http-version", 6443, "kubernetes", "Kubernetes", "1.28.2"),
    ("http-etcd.txt", "http-version", 2379, "etcd", "etcd", "3.5.9"),
    ("rsync.txt", "null", 873, "rsync", "rsync", None),
    ("vnc.txt", "null", 5900, "vnc", None, None),
    ("telnet.bin", "null", 23, "telnet", None, None),
    ("mongodb-buildinfo.bin", "mongodb", 27017, "mongodb", "MongoDB", "6.0.12"),
    ("rdp-confirm.bin", "rdp", 3389, "rdp", None, None),
    ("smb2-negotiate.bin", "smb", 445, "smb", None, None),
    ("ldap-bind.bin", "ldap", 389, "ldap", None, None),
    ("amqp-rabbitmq.bin", "amqp", 5672, "rabbitmq", "RabbitMQ", "3.12.10"),
    ("mqtt-connack.bin", "mqtt", 1883, "mqtt", None, None),
]

# Provider banners: text only, no probe known.
PASSIVE = [
    ("ssh-openssh.txt", 22, "ssh", "OpenSSH", "9.2p1"),
    ("ftp-vsftpd.txt", 21, "ftp", "vsftpd", "3.0.3"),
    ("smtp-exim.txt", 25, "smtp", "Exim", "4.96"),
    ("imap-dovecot.txt", 993, "imap", "Dovecot", None),
    ("http-apache.txt", 443, "http", "Apache httpd", "2.4.57"),
    ("redis-info.txt", 6379, "redis", "Redis", "7.0.15"),
    ("memcached-version.txt", None, "memcached", "memcached", "1.6.18"),
    ("rsync.txt", 873, "rsync", "rsync", None),
]

UDP = [
    ("dns-bind-udp.bin", 53, "dns", "BIND", "9.18.28"),
    ("snmp-net-snmp.bin", 161, "snmp", "net-snmp", None),
    ("ntp-server.bin", 123, "ntp", None, None),
    ("chrony-reply.bin", 323, "chrony", "chrony", None),
    ("memcached-udp.bin", 11211, "memcached", "memcached", "1.6.18"),
    ("ssdp-miniupnpd.txt", 1900, "ssdp", "MiniUPnP", "2.3.3"),
    ("netbios-nbstat.bin", 137, "netbios-ns", None, None),
    ("ike-v1-response.bin", 500, "ike", None, None),
    ("mdns-response.bin", 5353, "mdns", None, None),
]

NO_MATCH = ["unknown-binary.bin"]
SPECIAL = ["http-plain-to-https.txt"]


def sample(name: str) -> bytes:
    return (BANNERS / name).read_bytes()


@pytest.mark.parametrize(("name", "probe", "port", "service", "product", "version"), ACTIVE)
def test_probe_answers_are_named(
    name: str, probe: str, port: int, service: str, product: str | None, version: str | None
) -> None:
    m = match_response(sample(name), probe, port)
    assert m is not None, name
    assert (m.service, m.product, m.version) == (service, product, version)
    assert m.probe == probe
    assert m.excerpt  # evidence of why


@pytest.mark.parametrize(("name", "port", "service", "product", "version"), PASSIVE)
def test_provider_banners_get_the_same_names(
    name: str, port: int | None, service: str, product: str | None, version: str | None
) -> None:
    m = match_banner(sample(name).decode(), port)
    assert m is not None
    assert (m.service, m.product, m.version) == (service, product, version)
    assert m.probe is None


@pytest.mark.parametrize(("name", "port", "service", "product", "version"), UDP)
def test_udp_replies_are_named(
    name: str, port: int, service: str, product: str | None, version: str | None
) -> None:
    m = match_datagram(sample(name), port)
    assert m is not None
    assert (m.service, m.product, m.version) == (service, product, version)


def test_every_fixture_is_used() -> None:
    used = {row[0] for row in ACTIVE + PASSIVE + UDP} | set(NO_MATCH) | set(SPECIAL)
    assert {p.name for p in BANNERS.iterdir()} == used


def test_unknown_bytes_match_nothing() -> None:
    data = sample("unknown-binary.bin")
    assert match_response(data, "null", 4444) is None
    assert match_banner(data.decode("latin-1"), 4444) is None


def test_rsync_protocol_is_not_taken_for_its_version() -> None:
    m = match_response(sample("rsync.txt"), "null", 873)
    assert m is not None
    assert m.version is None
    assert m.extra == "protocol 31.0"


def test_mariadb_is_told_from_mysql_by_its_greeting() -> None:
    maria = match_response(sample("mysql-mariadb.bin"), "null", 3306)
    mysql = match_response(sample("mysql-oracle.bin"), "null", 3306)
    assert maria is not None and mysql is not None
    assert maria.cpe == "cpe:2.3:a:mariadb:mariadb:10.11.6:*:*:*:*:*:*:*"
    assert mysql.cpe == "cpe:2.3:a:oracle:mysql:8.0.35:*:*:*:*:*:*:*"


def test_plain_http_to_a_tls_port_is_a_hint_not_a_verdict() -> None:
    # The answer names nginx too, but deciding on it would cancel the TLS handshake.
    m = match_response(sample("http-plain-to-https.txt"), "http-get", 443)
    assert m is not None
    assert m.tls_hint and not m.decisive
    assert m.service == "http"


def test_postgres_one_byte_answer_is_not_used_on_provider_banners() -> None:
    assert match_banner("N", 5432) is None
    assert match_response(b"N", "null", 5432) is None  # only an answer to SSLRequest counts


def test_port_bound_rules_need_their_port() -> None:
    assert match_datagram(sample("ntp-server.bin"), 9999) is None


def test_unknown_version_gives_a_cpe_for_any_version() -> None:
    m = match_response(sample("smtp-postfix.txt"), "null", 25)
    assert m is not None
    assert m.cpe == "cpe:2.3:a:postfix:postfix:*:*:*:*:*:*:*:*"
    assert m.extra == "host mail.example.com"


def test_cpe_escapes_special_characters() -> None:
    assert cpe23("a:example:thing", "1:2.3+x") == r"cpe:2.3:a:example:thing:1\:2.3\+x:*:*:*:*:*:*:*"


def test_http_status_server_and_title() -> None:
    info = parse_http(sample("http-apache.txt"))
    assert info is not None
    assert (info.status, info.server, info.title) == (
        403,
        "Apache/2.4.57 (Debian)",
        "403 Forbidden",
    )
    assert parse_http(sample("ssh-openssh.txt")) is None


def test_safe_text_escapes_control_bytes_and_caps() -> None:
    text = safe_text(b"\x1b[31mred\x1b[0m\r\n\xff\x00" + b"a" * 5000)
    assert "\x1b" not in text and "\x00" not in text
    assert text.startswith("\\x1b[31mred\\x1b[0m\r\n\\xff\\x00")
    assert len(text) == 2048


def test_the_database_loads_and_every_rule_names_a_service() -> None:
    db = load_database()
    assert {p.name for p in db.probes} >= {"null", "http-get", "redis", "postgres-ssl"}
    assert all(rule.service for rule in db.rules)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600), port=st.integers(min_value=1, max_value=65535))
def test_any_bytes_are_judged_without_error_and_kept_safe(data: bytes, port: int) -> None:
    for probe in ("null", "http-get", "redis", "dns-version-bind"):
        m = match_response(data, probe, port)
        if m is not None:
            assert UNSAFE.search(m.excerpt) is None
            assert m.version is None or UNSAFE.search(m.version) is None
    match_datagram(data, port)  # must not raise
    assert UNSAFE.search(safe_text(data)) is None


UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
