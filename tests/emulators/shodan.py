"""The Shodan REST API on 127.0.0.1 (providers.md §1 and §6), driven by fixtures/providers/shodan.

- auth: query parameter `key`; a bad or missing key gets nginx's 401 HTML page (the SDK's
  "Invalid API key" branch).
- `GET /shodan/host/{ip}` (or `ip1,ip2` -> a list): hosts/<ip>.json (":" spelled "_" in file
  names), else 404 `{"error": "No information available for that IP."}`.
- `GET /shodan/host/search?query=&page=`: banners from search/corpus.json matching the query's
  `net:<cidr>` / `ip:<addr>` / `port:<n>` filters, 100 per page, `matches: []` past the end.
  Each page of a filtered query costs one query credit; at zero the 401 "Insufficient query
  credits" JSON answer comes back.
- `GET /shodan/host/count` and `GET /api-info` (credits reflect what searches spent).

Faults: "429" (the rate-limit JSON; Shodan sends no Retry-After, set `retry_after` to add one),
"500" (HTML), "502" (nginx Bad Gateway), "403" (plan forbids the call), "bad_key",
"no_credits", plus the base class's generic ones.
"""

from __future__ import annotations

import ipaddress
import math
import sys
from http.server import ThreadingHTTPServer
from typing import Any

from tests.emulators.base import Emulator, Reply, Request

PAGE_SIZE = 100
RATE_LIMIT_MESSAGE = (
    "Request rate limit reached (1 request/ second). Please wait a second before trying "
    "again and slow down your API calls."
)
NO_CREDITS_MESSAGE = (
    "Insufficient query credits, please upgrade your API plan or wait for the monthly limit "
    "to reset"
)
NO_INFO_MESSAGE = "No information available for that IP."
UNAUTHORIZED_HTML = (
    "<html>\r\n <head>\r\n  <title>401 Unauthorized</title>\r\n </head>\r\n <body>\r\n"
    "  <h1>401 Unauthorized</h1>\r\n  This server could not verify that you are authorized to "
    "access the document you requested.<br/><br/>\r\n </body>\r\n</html>\r\n"
)
SERVER_ERROR_HTML = "<html><head><title>500 Internal Server Error</title></head></html>\r\n"
BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n"
    "</html>\r\n"
)


def quiet_disconnects(server: ThreadingHTTPServer) -> None:
    """Drop the traceback socketserver prints when a client hung up before the answer (a
    "slow" fault outliving the client's timeout); every other handler error still prints."""
    default = server.handle_error

    def handle_error(request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        default(request, client_address)

    server.handle_error = handle_error  # type: ignore[method-assign]


class ShodanEmulator(Emulator):
    name = "shodan"

    def __init__(self, key: str = "shodan-test-key-0123456789abcdef", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key = key
        self.retry_after: str | None = None  # Shodan sends none; a test may add one
        self.query_credits = 0
        self._corpus: list[dict[str, Any]] = self.fixture("search", "corpus.json")
        self.reset()

    def start(self) -> ShodanEmulator:
        super().start()
        assert self._server is not None
        quiet_disconnects(self._server)
        return self

    def reset(self) -> None:
        """Back to a fresh state, so one server can serve many tests (start/stop is slow)."""
        self.fail_always(None)
        with self._lock:
            self._queued.clear()
        self.requests.clear()
        self.retry_after = None
        self.slow_seconds = 1.0
        self.query_credits = self.fixture("api-info.json")["query_credits"]

    # -- routes ----------------------------------------------------------------------------
    def route(self, req: Request) -> Reply:
        if req.query.get("key") != self.key:
            return self.fault("bad_key", req)
        if req.path == "/api-info":
            info = self.fixture("api-info.json")
            info["query_credits"] = info["unlocked_left"] = self.query_credits
            return Reply(200, info)
        if req.path == "/shodan/host/search":
            return self._search(req)
        if req.path == "/shodan/host/count":
            matches = self._matching(req.query.get("query", ""))
            return Reply(200, {"matches": [], "total": len(matches)})
        if req.path.startswith("/shodan/host/"):
            return self._host(req.path.removeprefix("/shodan/host/"))
        return Reply(404, {"error": "Not Found"})

    def _host(self, ips: str) -> Reply:
        hosts = [self._load_host(ip) for ip in ips.split(",")]
        found = [h for h in hosts if h is not None]
        if not found:
            return Reply(404, {"error": NO_INFO_MESSAGE})
        return Reply(200, found if "," in ips else found[0])

    def _load_host(self, ip: str) -> dict[str, Any] | None:
        path = self.fixtures / "hosts" / f"{ip.replace(':', '_')}.json"
        return self.fixture("hosts", path.name) if path.is_file() else None

    def _search(self, req: Request) -> Reply:
        query = req.query.get("query", "")
        if not query:
            return Reply(400, {"error": "Missing parameter: query"})
        try:
            page = int(req.query.get("page", "1"))
        except ValueError:
            return Reply(400, {"error": "Invalid page"})
        if page < 1:
            return Reply(400, {"error": "Invalid page"})
        # A filter, or any page after the first, costs a query credit.
        if ":" in query or page > 1:
            if self.query_credits <= 0:
                return self.fault("no_credits", req)
            self.query_credits -= 1
        matches = self._matching(query)
        start = (page - 1) * PAGE_SIZE
        body: dict[str, Any] = {
            "matches": matches[start : start + PAGE_SIZE],
            "total": len(matches),
        }
        if req.query.get("facets"):
            body["facets"] = {}
        return Reply(200, body)

    def _matching(self, query: str) -> list[dict[str, Any]]:
        """Banners matching every `net:`, `ip:` and `port:` filter of the query."""
        matches = self._corpus
        for token in query.split():
            name, _, value = token.partition(":")
            if name == "net":
                net = ipaddress.ip_network(value, strict=False)
                matches = [b for b in matches if ipaddress.ip_address(b["ip_str"]) in net]
            elif name == "ip":
                matches = [b for b in matches if b["ip_str"] == value]
            elif name == "port":
                matches = [b for b in matches if str(b["port"]) == value]
        return matches

    def pages_for(self, query: str) -> int:
        """How many pages a client must fetch to see every match of `query`."""
        return max(1, math.ceil(len(self._matching(query)) / PAGE_SIZE))

    # -- faults ----------------------------------------------------------------------------
    def fault(self, name: str, req: Request) -> Reply:
        if name == "429":
            headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
            return Reply(429, {"error": RATE_LIMIT_MESSAGE}, headers=headers)
        if name == "500":
            return Reply(500, SERVER_ERROR_HTML, "text/html")
        if name == "502":
            return Reply(502, BAD_GATEWAY_HTML, "text/html")
        if name == "403":
            return Reply(403, {"error": "Access denied"})
        if name == "bad_key":
            return Reply(401, UNAUTHORIZED_HTML, "text/html")
        if name == "no_credits":
            return Reply(401, {"error": NO_CREDITS_MESSAGE})
        return super().fault(name, req)
