"""Shodan's InternetDB on 127.0.0.1, driven by fixtures/providers/internetdb.

- keyless: no auth at all (so no "bad_key" or "no_credits" faults: it has neither).
- `GET /{ip}`: hosts/<ip>.json (":" spelled "_" in file names), else 404
  `{"detail": "No information available"}` as JSON, which is how the service answers for an
  address it has never seen. Other paths: 404 `{"detail": "Not Found"}`.

Faults: "429" (a JSON `detail` body with a Retry-After header, default "0"; InternetDB's
exact throttle body is not documented: inferred), "500" (plain-text "Internal Server Error"),
plus the base class's generic ones.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from tests.emulators.base import Emulator, Reply, Request
from tests.emulators.shodan import quiet_disconnects

NO_INFO = {"detail": "No information available"}


class InternetDBEmulator(Emulator):
    name = "internetdb"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key: str | None = None  # keyless: there is no key to accept
        self.retry_after: str | None = "0"
        self.reset()

    def start(self) -> InternetDBEmulator:
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
        self.retry_after = "0"
        self.slow_seconds = 1.0

    def route(self, req: Request) -> Reply:
        ip = req.path.removeprefix("/")
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            return Reply(404, {"detail": "Not Found"})
        path = self.fixtures / "hosts" / f"{ip.replace(':', '_')}.json"
        if not path.is_file():
            return Reply(404, NO_INFO)
        return Reply(200, self.fixture("hosts", path.name))

    def fault(self, name: str, req: Request) -> Reply:
        if name == "429":
            headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
            return Reply(429, {"detail": "Rate limit exceeded"}, headers=headers)
        if name == "500":
            return Reply(500, "Internal Server Error", "text/plain; charset=utf-8")
        return super().fault(name, req)
