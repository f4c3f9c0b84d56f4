"""The shodan SDK made safe to drive from asyncio: a timeout, honest errors, no key leaks.

The SDK is synchronous, sets no request timeout, and turns every failure into
`shodan.APIError(message)`; whatever broke the connection, it says only "Unable to connect
to Shodan". `SdkSession` replaces the SDK's requests session: it adds a timeout, remembers
per thread what the wire showed (status, Retry-After, the transport failure), and scrubs the
key out of transport errors (requests quotes the whole URL, `?key=...` included). `translate`
reads an APIError together with that record and picks the `core.errors` exception.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

import requests

from core.errors import (
    AuthError,
    QuotaError,
    RateLimited,
    SchemaError,
    SourceError,
    SourceUnavailable,
)
from core.http import parse_retry_after

_KEY_PARAM = re.compile(r"(key=)[^&\s'\"]+", re.IGNORECASE)


@dataclass
class Exchange:
    """What the wire showed during one SDK call."""

    status: int | None = None
    retry_after: str | None = None
    failure: str | None = None  # transport failure, key scrubbed
    timed_out: bool = False


class TransportFailure(Exception):
    """A requests failure re-raised with the key scrubbed, so the SDK's APIError can chain it."""


class SdkSession(requests.Session):
    """The SDK's HTTP session: with a timeout, a record of each call, and no key in errors."""

    def __init__(self, timeout: float, secret: str) -> None:
        super().__init__()
        self.timeout = timeout
        self._secret = secret
        self._local = threading.local()  # each asyncio.to_thread call runs in its own thread

    def begin(self) -> Exchange:
        """Start recording one SDK call made from the current thread."""
        exchange = Exchange()
        self._local.exchange = exchange
        return exchange

    def scrub(self, text: str) -> str:
        text = _KEY_PARAM.sub(r"\1***", text)
        return text.replace(self._secret, "***") if self._secret else text

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        exchange: Exchange = getattr(self._local, "exchange", None) or Exchange()
        try:
            response = super().request(*args, **kwargs)
        except requests.RequestException as exc:
            exchange.timed_out = isinstance(exc, requests.Timeout)
            exchange.failure = f"{type(exc).__name__}: {self.scrub(str(exc))}"
        else:
            exchange.status = response.status_code
            exchange.retry_after = response.headers.get("Retry-After")
            return response
        # Raised outside the except block on purpose: the original exception, whose message
        # holds the URL and so the key, must not ride along as __context__.
        raise TransportFailure(exchange.failure)


def is_no_data(message: str, exchange: Exchange) -> bool:
    """Shodan's 404 "No information available for that IP.": an answer, not a failure."""
    return exchange.status == 404 or message.startswith("No information available")


def translate(source: str, message: str, exchange: Exchange, what: str) -> SourceError:
    """The `core.errors` exception for an SDK failure during `what` (e.g. "search page 2")."""
    status = exchange.status
    http = f"HTTP {status}" if status is not None else "no HTTP status"
    if exchange.failure is not None:
        if exchange.timed_out:
            return SourceUnavailable(source, f"{what} timed out ({exchange.failure})")
        return SourceUnavailable(source, f"cannot connect for {what} ({exchange.failure})")
    if "insufficient query credits" in message.lower():
        return QuotaError(
            source,
            f"out of query credits for {what} ({http}); wait for the monthly reset or "
            "upgrade the API plan",
        )
    if status == 403 or message.startswith("Access denied (403"):
        return AuthError(
            source,
            f"the plan of this API key does not allow {what} (HTTP 403); upgrade the plan, "
            "or look up single addresses instead of searching networks",
        )
    if status == 401 or message == "Invalid API key":
        return AuthError(
            source, f"API key rejected for {what} ({http}: {message}); check SHODAN_API_KEY"
        )
    if status == 429 or "rate limit reached" in message.lower():
        return RateLimited(
            source,
            f"rate limited during {what} ({http}): {message}",
            retry_after=parse_retry_after(exchange.retry_after),
        )
    if (status is not None and status >= 500) or message.startswith("Bad Gateway"):
        return SourceUnavailable(source, f"server error during {what} ({http})")
    if message.startswith("Unable to connect"):  # a failure the session did not see
        return SourceUnavailable(source, f"cannot connect for {what}")
    if message.startswith("Unable to parse JSON"):
        return SchemaError(source, f"the response to {what} is not valid JSON ({http})")
    return SourceError(source, f"{what} refused ({http}): {message[:200]}")
