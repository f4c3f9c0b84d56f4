"""A Censys Platform API v3 emulator, served from fixtures/providers/censys/.

Reproduces what the connector (and the `censys-platform` SDK) rely on:

- `Authorization: Bearer <token>`; a missing or wrong token gets the v3 401 answer
  (`application/json`, `{"error": {...}}`). An `organization_id` other than the emulator's
  gets a 403 problem document.
- `GET /v3/global/asset/host/{ip}` with the vendor content type; unknown hosts 404 as
  `application/problem+json`. 192.0.2.200 serves the schema-drift variant
  (`host_drift.json`), 192.0.2.201 the broken one (`host_broken.json`).
- `POST /v3/global/search/query` with a CenQL `host.ip: "<cidr>"` query: hits from
  `search_hits.json` inside the block, `page_size` at most 100, opaque `page_token`s and
  `next_page_token: ""` on the last page. Search without an organisation is refused (403).
- `GET /v3/accounts/users/credits` and `/v3/accounts/organizations/{org}/credits`.

Faults: ``429`` (problem+json, `Retry-After: retry_after`), ``500``, ``bad_key`` (the 401),
``no_credits`` (the 422 "insufficient balance" Censys sends from an empty wallet),
``plan_limit`` (403), plus the generic ones of the base class.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import re
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.base import Emulator, Reply, Request

HOST_TYPE = "application/vnd.censys.api.v3.host.v1+json"
PROBLEM = "application/problem+json"
TOKEN = "censys_pat_0123456789abcdef0123456789abcdef"
ORG_ID = "00000000-0000-4000-8000-000000000001"
VARIANTS = {"192.0.2.200": "host_drift.json", "192.0.2.201": "host_broken.json"}

_HOST_PATH = re.compile(r"^/v3/global/asset/host/([^/]+)$")
_ORG_CREDITS = re.compile(r"^/v3/accounts/organizations/([^/]+)/credits$")
_CIDR_QUERY = re.compile(r'^\s*host\.ip\s*:\s*"([0-9a-fA-F:./]+)"\s*$')


def problem(status: int, title: str, detail: str, **extra: Any) -> Reply:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return Reply(status, body, PROBLEM)


class CensysEmulator(Emulator):
    name = "censys"

    def __init__(self, fixtures: Path | None = None) -> None:
        super().__init__(fixtures)
        self.key = TOKEN
        self.org_id = ORG_ID
        self.retry_after = "0"  # seconds, as the header carries it

    def reset(self) -> None:
        """Forget requests, faults and knob settings: a fresh emulator for the next test."""
        with self._lock:
            self._queued.clear()
            self._always = None
        self.requests.clear()
        self.key = TOKEN
        self.org_id = ORG_ID
        self.retry_after = "0"
        self.slow_seconds = 2.0

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        # The client may give up first (a "slow" fault outliving its timeout): nobody to answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super()._handle(handler)

    # -- faults --------------------------------------------------------------------------
    def fault(self, name: str, req: Request) -> Reply:
        if name == "429":
            reply = problem(429, "Too Many Requests", "rate limit exceeded")
            reply.headers["Retry-After"] = self.retry_after
            return reply
        if name == "500":
            return problem(500, "Internal Server Error", "internal error")
        if name == "bad_key":
            return self._unauthorized()
        if name == "no_credits":
            return problem(
                422, "Unprocessable Entity", "Unprocessable Entity",
                errors=[{"message": "insufficient balance"}],
            )  # fmt: skip
        if name == "plan_limit":
            return problem(403, "Forbidden", "your plan does not include this endpoint")
        return super().fault(name, req)

    def _unauthorized(self) -> Reply:
        body = {
            "error": {
                "code": 401,
                "status": "Unauthorized",
                "message": "invalid or expired personal access token",
                "reason": "unauthenticated",
            }
        }
        return Reply(401, body, "application/json")

    # -- routes --------------------------------------------------------------------------
    def route(self, req: Request) -> Reply:
        if req.headers.get("authorization") != f"Bearer {self.key}":
            return self._unauthorized()
        org = req.query.get("organization_id")
        if org is not None and org != self.org_id:
            return problem(403, "Forbidden", "not a member of this organization")
        if match := _HOST_PATH.match(req.path):
            if req.method != "GET":
                return problem(405, "Method Not Allowed", "use GET")
            return self._host(match.group(1))
        if req.path == "/v3/global/search/query":
            if req.method != "POST":
                return problem(405, "Method Not Allowed", "use POST")
            if org is None:
                return problem(403, "Forbidden", "search requires an organization with a paid plan")
            return self._search(req)
        if req.path == "/v3/accounts/users/credits":
            return Reply(200, self.fixture("credits_user.json"))
        if match := _ORG_CREDITS.match(req.path):
            if match.group(1) != self.org_id:
                return problem(403, "Forbidden", "not a member of this organization")
            return Reply(200, self.fixture("credits_org.json"))
        return problem(404, "Not Found", f"no route for {req.path}")

    def _host(self, ip: str) -> Reply:
        if ip in VARIANTS:
            return Reply(200, self.fixture(VARIANTS[ip]), HOST_TYPE)
        path = self.fixtures / "hosts" / f"{ip}.json"
        if not path.is_file():
            return problem(404, "Not Found", f"host {ip} not found")
        return Reply(200, self.fixture("hosts", f"{ip}.json"), HOST_TYPE)

    def _search(self, req: Request) -> Reply:
        try:
            body = req.json()
        except ValueError:
            return problem(400, "Bad Request", "body is not JSON")
        match = _CIDR_QUERY.match(str(body.get("query", "")))
        if not match:
            return problem(
                400, "Bad Request", "invalid query",
                errors=[{"location": "body.query", "message": "unsupported query",
                         "value": body.get("query")}],
            )  # fmt: skip
        network = ipaddress.ip_network(match.group(1), strict=False)
        size = int(body.get("page_size") or 100)
        if not 1 <= size <= 100:
            return problem(400, "Bad Request", "page_size must be between 1 and 100")
        token = str(body.get("page_token") or "")
        try:
            start = int(base64.urlsafe_b64decode(token).decode()) if token else 0
        except ValueError:
            return problem(400, "Bad Request", "invalid page_token")
        hits = [hit for hit in self.fixture("search_hits.json")["hits"] if _in(hit, network)]
        page = hits[start : start + size]
        end = start + size
        result = {
            "hits": page,
            "next_page_token": _token(end) if end < len(hits) else "",
            "previous_page_token": _token(max(0, start - size)) if start else "",
            "query_duration_millis": 12,
            "total_hits": len(hits),
        }
        return Reply(200, {"result": result})


@pytest.fixture(scope="session")
def censys_server() -> Iterator[CensysEmulator]:
    """One emulator for the session: stopping a server costs half a second (its poll)."""
    emulator = CensysEmulator()
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def censys_emulator(censys_server: CensysEmulator) -> Iterator[CensysEmulator]:
    """The started Censys emulator (`.url`, `.key`, `.org_id`), fresh for each test."""
    censys_server.reset()
    yield censys_server
    censys_server.reset()


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def _in(hit: dict[str, Any], network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    for kind in ("host_v1", "webproperty_v1"):
        resource = hit.get(kind, {}).get("resource", {})
        if "ip" in resource:
            return ipaddress.ip_address(resource["ip"]) in network
    return False
