"""A Netlas emulator, served from fixtures/providers/netlas/.

Reproduces what the connector (and the official client) rely on:

- The key in `X-API-Key` (any case; `Authorization: Bearer` is accepted too, as a
  published schema documents). A wrong key gets 400 "API key not found"; no key at all
  gets a 401 in the framework's default shape (Netlas runs Django REST framework; this
  answer is inferred, not observed).
- `GET /api/host/{ip}/` and `/api/host/{ip}` (the client drops the slash): the summary
  from `hosts/<ip>.json`; an address with no fixture gets 200 with no ports, as Netlas
  answers for hosts it knows nothing about. 192.0.2.200 serves the schema-drift variant,
  192.0.2.201 the broken one.
- `GET /api/responses/?q=...&start=N`: items from `responses.json` matching
  `ip:"<cidr>"`, `ip:<addr>` or `host:<addr>`, 20 per page, `items: []` past the end.
- `GET /api/users/current/` and `/api/users/profile_data/`.

Faults: ``429`` (`Retry-After: retry_after` and the `request_was_throttled` body),
``500`` (an HTML error page, as the proxy in front sends), ``bad_key`` (the 400),
``no_credits`` (400 "Exceeded Maximum Allowed Queries", the daily quota), ``plan_limit``
(403), plus the generic ones of the base class.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.base import Emulator, Reply, Request

API_KEY = "netlas0123456789abcdef0123456789ab"
PAGE_SIZE = 20
VARIANTS = {"192.0.2.200": "host_drift.json", "192.0.2.201": "host_broken.json"}

_HOST_PATH = re.compile(r"^/api/host/([^/]+)/?$")
_QUERY = re.compile(r'^\s*(ip|host)\s*:\s*"?([0-9a-fA-F:./]+)"?\s*$')


def error(status: int, title: str, detail: str | None = None, kind: str = "error") -> Reply:
    return Reply(status, {"type": kind, "title": title, "detail": detail or title})


class NetlasEmulator(Emulator):
    name = "netlas"

    def __init__(self, fixtures: Path | None = None) -> None:
        super().__init__(fixtures)
        self.key = API_KEY
        self.retry_after = "0"  # seconds, as the header carries it

    def reset(self) -> None:
        """Forget requests, faults and knob settings: a fresh emulator for the next test."""
        with self._lock:
            self._queued.clear()
            self._always = None
        self.requests.clear()
        self.key = API_KEY
        self.retry_after = "0"
        self.slow_seconds = 2.0

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        # The client may give up first (a "slow" fault outliving its timeout): nobody to answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super()._handle(handler)

    # -- faults --------------------------------------------------------------------------
    def fault(self, name: str, req: Request) -> Reply:
        if name == "429":
            reply = error(
                429,
                "Request was throttled.",
                "Request was throttled. Expected available in 1 second.",
                kind="request_was_throttled",
            )
            reply.headers["Retry-After"] = self.retry_after
            return reply
        if name == "500":
            page = "<html><head><title>500 Internal Server Error</title></head></html>"
            return Reply(500, page, "text/html")
        if name == "bad_key":
            return error(400, "API key not found")
        if name == "no_credits":
            return error(400, "Exceeded Maximum Allowed Queries")
        if name == "plan_limit":
            return error(403, "Feature Not Available in Current Subscription Plan")
        return super().fault(name, req)

    # -- routes --------------------------------------------------------------------------
    def _key_of(self, req: Request) -> str | None:
        if "x-api-key" in req.headers:
            return req.headers["x-api-key"]
        auth = req.headers.get("authorization", "")
        return auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None

    def route(self, req: Request) -> Reply:
        key = self._key_of(req)
        if key is None:
            return Reply(401, {"detail": "Authentication credentials were not provided."})
        if key != self.key:
            return error(400, "API key not found")
        if req.method != "GET":
            return Reply(405, {"detail": f'Method "{req.method}" not allowed.'})
        if match := _HOST_PATH.match(req.path):
            return self._host(match.group(1))
        if req.path == "/api/responses/":
            return self._responses(req)
        if req.path == "/api/users/current/":
            return Reply(200, self.fixture("users_current.json"))
        if req.path == "/api/users/profile_data/":
            return Reply(200, self.fixture("profile_data.json"))
        return Reply(404, {"detail": "Not found."})

    def _host(self, ip: str) -> Reply:
        if ip in VARIANTS:
            return Reply(200, self.fixture(VARIANTS[ip]))
        if (self.fixtures / "hosts" / f"{ip}.json").is_file():
            return Reply(200, self.fixture("hosts", f"{ip}.json"))
        return Reply(200, {**self.fixture("host_empty.json"), "ip": ip})

    def _responses(self, req: Request) -> Reply:
        match = _QUERY.match(req.query.get("q", ""))
        if not match:
            return error(400, "Request Parsing Error", "query could not be parsed")
        try:
            network = ipaddress.ip_network(match.group(2), strict=False)
            start = int(req.query.get("start", "0"))
        except ValueError:
            return error(400, "Request Parsing Error", "bad address or start")
        items = [i for i in self.fixture("responses.json")["items"] if _in(i, network)]
        page = items[start : start + PAGE_SIZE] if start >= 0 else []
        return Reply(200, {"items": page, "took": 7, "timestamp": 1741000000})


def _in(item: dict[str, Any], network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return ipaddress.ip_address(item["data"]["ip"]) in network


@pytest.fixture(scope="session")
def netlas_server() -> Iterator[NetlasEmulator]:
    """One emulator for the session: stopping a server costs half a second (its poll)."""
    emulator = NetlasEmulator()
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def netlas_emulator(netlas_server: NetlasEmulator) -> Iterator[NetlasEmulator]:
    """The started Netlas emulator (`.url`, `.key`), fresh for each test."""
    netlas_server.reset()
    yield netlas_server
    netlas_server.reset()
