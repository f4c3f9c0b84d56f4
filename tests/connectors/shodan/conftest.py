"""The `shodan_emulator` fixture: a started Shodan emulator with `.url` and `.key`.

One server runs for the whole session (stopping one takes half a second); each test gets it
back in a fresh state: no queued faults, no recorded requests, full credits.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulators.shodan import ShodanEmulator

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(scope="session")
def shodan_server() -> Iterator[ShodanEmulator]:
    with ShodanEmulator() as emulator:
        assert isinstance(emulator, ShodanEmulator)
        yield emulator


@pytest.fixture
def shodan_emulator(
    shodan_server: ShodanEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ShodanEmulator]:
    # The SDK's requests session honours proxy variables: traffic must stay on 127.0.0.1.
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SHODAN_API_URL", raising=False)
    shodan_server.reset()
    yield shodan_server
    shodan_server.reset()
