"""The Shodan emulator itself: the wire details other tests rely on."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.emulators.shodan import NO_CREDITS_MESSAGE, ShodanEmulator


@pytest.fixture
def client(shodan_emulator: ShodanEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shodan_emulator.url, trust_env=False, timeout=5) as client:
        yield client


def test_missing_or_wrong_key_gets_nginx_html_401(
    shodan_emulator: ShodanEmulator, client: httpx.Client
) -> None:
    for params in ({}, {"key": "nope"}):
        response = client.get("/api-info", params=params)
        assert response.status_code == 401
        assert response.headers["content-type"] == "text/html"
        assert response.text.startswith("<html>")


def test_host_lookup_single_list_and_missing(
    shodan_emulator: ShodanEmulator, client: httpx.Client
) -> None:
    key = {"key": shodan_emulator.key}
    assert client.get("/shodan/host/192.0.2.7", params=key).json()["ip_str"] == "192.0.2.7"
    both = client.get("/shodan/host/192.0.2.7,203.0.113.10", params=key).json()
    assert [h["ip_str"] for h in both] == ["192.0.2.7", "203.0.113.10"]
    missing = client.get("/shodan/host/192.0.2.99", params=key)
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": "No information available for that IP."},
    )


def test_search_pages_count_and_credits(
    shodan_emulator: ShodanEmulator, client: httpx.Client
) -> None:
    params = {"key": shodan_emulator.key, "query": "net:198.51.100.0/24"}
    assert client.get("/shodan/host/count", params=params).json()["total"] == 155
    pages = [
        client.get("/shodan/host/search", params={**params, "page": p}).json() for p in (1, 2, 3)
    ]
    assert [len(p["matches"]) for p in pages] == [100, 55, 0]
    assert {p["total"] for p in pages} == {155}
    only_ssh = client.get(
        "/shodan/host/search", params={**params, "query": "net:198.51.100.0/24 port:22"}
    ).json()
    assert only_ssh["total"] == 76 and {m["port"] for m in only_ssh["matches"]} == {22}
    info = client.get("/api-info", params={"key": shodan_emulator.key}).json()
    assert info["query_credits"] == 93 - 4  # count is free, each filtered page costs one


def test_credits_run_out(shodan_emulator: ShodanEmulator, client: httpx.Client) -> None:
    shodan_emulator.query_credits = 0
    response = client.get(
        "/shodan/host/search", params={"key": shodan_emulator.key, "query": "net:192.0.2.0/24"}
    )
    assert (response.status_code, response.json()) == (401, {"error": NO_CREDITS_MESSAGE})


def test_429_has_no_retry_after_unless_asked(
    shodan_emulator: ShodanEmulator, client: httpx.Client
) -> None:
    shodan_emulator.fail_next("429")
    response = client.get("/api-info", params={"key": shodan_emulator.key})
    assert response.status_code == 429 and "retry-after" not in response.headers
    assert response.json()["error"].startswith("Request rate limit reached")
    shodan_emulator.retry_after = "1"
    shodan_emulator.fail_next("429")
    assert client.get("/api-info").headers["retry-after"] == "1"
