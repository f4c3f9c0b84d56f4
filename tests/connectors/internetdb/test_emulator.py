"""The InternetDB emulator itself: the wire details other tests rely on."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.emulators.internetdb import InternetDBEmulator


@pytest.fixture
def client(internetdb_emulator: InternetDBEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=internetdb_emulator.url, trust_env=False, timeout=5) as client:
        yield client


def test_lookup_needs_no_key_and_unknown_addresses_get_404(client: httpx.Client) -> None:
    assert client.get("/192.0.2.7").json()["ports"] == [23, 161, 8443]
    missing = client.get("/192.0.2.99")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/json"
    assert missing.json() == {"detail": "No information available"}
    assert client.get("/docs").json() == {"detail": "Not Found"}


def test_faults(internetdb_emulator: InternetDBEmulator, client: httpx.Client) -> None:
    internetdb_emulator.fail_next("429", "500")
    throttled = client.get("/192.0.2.7")
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "0")
    failed = client.get("/192.0.2.7")
    assert (failed.status_code, failed.text) == (500, "Internal Server Error")
    assert client.get("/192.0.2.7").status_code == 200
    with pytest.raises(ValueError, match="no fault"):
        internetdb_emulator.fault("bad_key", internetdb_emulator.requests[0])
