"""Passive banners named by our own matcher: the same product string as our probes use."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.models import Endpoint, Kind, Observation
from core.pipeline.harmonize import harmonize

T = datetime(2026, 6, 1, tzinfo=UTC)


def claim(port: int, banner: str | None, **fields: object) -> Observation:
    return Observation.model_validate(
        {
            "endpoint": Endpoint(ip="192.0.2.1", port=port),
            "source": "shodan",
            "kind": Kind.PASSIVE,
            "fetched_at": T,
            "banner": banner,
            **fields,
        }
    )


@pytest.mark.parametrize(
    ("port", "banner", "given", "expected"),
    [
        # The provider's label differs from ours: ours wins, with the banner's version
        (22, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", ("ssh", "openssh", None),
         ("ssh", "OpenSSH", "9.2p1")),
        # A provider version is kept when the banner names none but the product agrees
        (25, "220 mail.example.com ESMTP Postfix (Debian/GNU)\r\n", ("smtp", "Postfix", "3.7"),
         ("smtp", "Postfix", "3.7")),
        # No banner: the provider's names stay as they are
        (443, None, ("http", "ExampleCDN", "1"), ("http", "ExampleCDN", "1")),
        # A banner our matcher does not know: the provider's names stay
        (9999, "\x00\x01binary", ("unknown-x", "Thing", "2"), ("unknown-x", "Thing", "2")),
    ],
)  # fmt: skip
def test_harmonize(
    port: int,
    banner: str | None,
    given: tuple[str, str, str | None],
    expected: tuple[str, str, str | None],
) -> None:
    service, product, version = given
    out = harmonize(claim(port, banner, service=service, product=product, version=version))
    assert (out.service, out.product, out.version) == expected
