"""The service catalogue: colours per service, product overrides, yellow for the unknown."""

from __future__ import annotations

import pytest

from core.models import Colour
from core.naming import canonical_service
from core.risk.catalogue import Catalogue, default_catalogue


@pytest.mark.parametrize(
    ("service", "product", "colour", "entry"),
    [
        ("ssh", None, Colour.GREEN, "service:ssh"),
        ("https", "nginx", Colour.GREEN, "service:http"),  # spelled as Shodan does
        ("HTTP", None, Colour.GREEN, "service:http"),  # and as Censys does
        ("domain", None, Colour.GREEN, "service:dns"),
        ("smtp", None, Colour.GREEN, "service:smtp"),
        ("mysql", "MySQL", Colour.RED, "service:mysql"),
        ("mariadb", None, Colour.RED, "service:mysql"),
        ("postgres", None, Colour.RED, "service:postgresql"),
        ("ms-wbt-server", None, Colour.RED, "service:rdp"),
        ("rfb", None, Colour.RED, "service:vnc"),
        ("telnet", None, Colour.RED, "service:telnet"),
        ("microsoft-ds", None, Colour.RED, "service:smb"),
        ("netbios-ssn", None, Colour.RED, "service:smb"),
        ("redis", None, Colour.RED, "service:redis"),
        ("memcache", None, Colour.RED, "service:memcached"),
        ("elastic", None, Colour.RED, "service:elasticsearch"),
        ("mongodb", None, Colour.RED, "service:mongodb"),
        ("docker-api", None, Colour.RED, "service:docker"),
        ("kubernetes-api", None, Colour.RED, "service:kubernetes"),
        ("etcd", None, Colour.RED, "service:etcd"),
        ("snmp-udp", None, Colour.RED, "service:snmp"),
        # a red service behind a green protocol is recognised by its product
        ("http", "Elasticsearch REST API", Colour.RED, "product:elasticsearch"),
        ("https", "Kubernetes", Colour.RED, "product:kubernetes"),
        ("http", "Docker", Colour.RED, "product:docker"),
        # whole words only: no red for a product that merely contains a red name
        ("http", "Redistributor httpd", Colour.GREEN, "service:http"),
        (None, None, Colour.YELLOW, "unidentified"),
        ("unknown", None, Colour.YELLOW, "unidentified"),
        ("tcpwrapped", None, Colour.YELLOW, "unidentified"),
        ("minecraft", None, Colour.YELLOW, "unlisted:minecraft"),
    ],
)
def test_classify(service: str | None, product: str | None, colour: Colour, entry: str) -> None:
    verdict = default_catalogue().classify(service, product)
    assert (verdict.colour, verdict.entry) == (colour, entry)
    assert verdict.why


def test_every_entry_is_canonical_and_explained() -> None:
    catalogue = default_catalogue()
    assert len(catalogue.services) > 40
    for name, entry in catalogue.services.items():
        assert canonical_service(name) == name, f"{name} is not the canonical spelling"
        assert entry.colour in (Colour.GREEN, Colour.RED)
        assert len(entry.why) > 20, f"{name} needs a real rationale"
    assert all(rule.why and rule.match == rule.match.lower() for rule in catalogue.products)


@pytest.mark.parametrize(
    "required",
    [
        "mysql",
        "postgresql",
        "rdp",
        "vnc",
        "telnet",
        "smb",
        "redis",
        "memcached",
        "elasticsearch",
        "mongodb",
        "docker",
        "kubernetes",
        "etcd",
        "snmp",
    ],
)
def test_the_brief_s_red_services_are_red(required: str) -> None:
    assert default_catalogue().services[required].colour is Colour.RED


@pytest.mark.parametrize("required", ["ssh", "http", "smtp", "imap", "pop3", "dns"])
def test_the_brief_s_green_services_are_green(required: str) -> None:
    assert default_catalogue().services[required].colour is Colour.GREEN


def test_a_yellow_entry_is_refused() -> None:
    with pytest.raises(ValueError, match="yellow"):
        Catalogue({"service": {"foo": {"colour": "yellow", "why": "no"}}})
