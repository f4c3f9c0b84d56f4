"""A real HTTP server on 127.0.0.1 that plays a provider, with knobs to make it misbehave.

Each provider's emulator subclasses `Emulator`, implements `route` (paths, auth, paging,
from fixture files) and `fault` (how that provider shapes a 429, a 5xx, a bad key, ...).
Tests queue faults with `emu.fail_next("429", "500")` or set one forever with
`emu.fail_always("429")`; the generic faults work for every provider:

- ``slow``: answer normally after `slow_seconds`
- ``truncate``: the normal body cut in half (truncated JSON)
- ``garbage``: 200 with an HTML page instead of JSON
- ``reset``: close the connection without answering
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "providers"

GENERIC_FAULTS = {"slow", "truncate", "garbage", "reset"}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes sent as is
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


class Emulator:
    """Subclass and implement `route` and `fault`."""

    name = "provider"

    def __init__(self, fixtures: Path | None = None) -> None:
        self.fixtures = fixtures or FIXTURES / self.name
        self.requests: list[Request] = []
        self.slow_seconds = 2.0
        self._queued: deque[str] = deque()
        self._always: str | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- to implement per provider -------------------------------------------------------
    def route(self, req: Request) -> Reply:
        raise NotImplementedError

    def fault(self, name: str, req: Request) -> Reply:
        raise ValueError(f"{self.name} emulator has no fault {name!r}")

    # -- knobs ---------------------------------------------------------------------------
    def fail_next(self, *faults: str) -> None:
        with self._lock:
            self._queued.extend(faults)

    def fail_always(self, fault: str | None) -> None:
        with self._lock:
            self._always = fault

    def fixture(self, *parts: str) -> Any:
        return json.loads(self.fixtures.joinpath(*parts).read_text())

    def calls(self, path_prefix: str = "") -> list[Request]:
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    # -- server --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start() the emulator first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Emulator:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

            def _serve(self) -> None:
                emulator._handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- plumbing ------------------------------------------------------------------------
    def _next_fault(self) -> str | None:
        with self._lock:
            if self._queued:
                return self._queued.popleft()
            return self._always

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("content-length") or 0)
        req = Request(
            method=handler.command,
            path=split.path,
            query={k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()},
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=handler.rfile.read(length) if length else b"",
        )
        self.requests.append(req)
        fault = self._next_fault()
        if fault == "reset":
            handler.close_connection = True
            handler.connection.close()
            return
        if fault == "slow":
            time.sleep(self.slow_seconds)
            reply = self.route(req)
        elif fault == "garbage":
            reply = Reply(200, "<html><body>Service temporarily moved</body></html>", "text/html")
        elif fault in (None, "truncate"):
            reply = self.route(req)
        else:
            reply = self.fault(fault, req)
        body = reply.encode()
        if fault == "truncate":
            body = body[: max(1, len(body) // 2)]
        handler.send_response(reply.status)
        handler.send_header("Content-Type", reply.content_type)
        handler.send_header("Content-Length", str(len(body)))
        for key, value in reply.headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(body)
