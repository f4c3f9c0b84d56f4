"""What a connector is, and what it receives.

A connector is one folder under `connectors/`: its spec (env vars, base URL, rate limit,
cache TTL), its provider response models, a `collect` that only does I/O and paging, and
a pure `normalize(raw) -> list[Observation]`. It reads no globals: everything it may use
comes in its `ConnectorContext`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import httpx

from core.cache import ResponseCache, cache_key
from core.credits import Budget, CostEstimate
from core.errors import SourceError
from core.http import SourceHttp
from core.models import Frozen, Observation, RawRecord, utcnow
from core.targets import Job

__all__ = ["Account", "Connector", "ConnectorContext", "ConnectorSpec", "Job"]


@dataclass(frozen=True)
class ConnectorSpec:
    """A connector's fixed facts, declared in its own folder."""

    name: str
    default_url: str
    url_env: str  # PORTINTEL_<NAME>_URL: emulators, proxies and mirrors
    key_env: tuple[str, ...] = ()  # env vars of its credentials, in order; () = keyless
    rate: float = 1.0  # requests per `per` seconds, as the provider documents
    per: float = 1.0
    cache_ttl: float = 24 * 3600.0
    weak: bool = False  # its claims alone are weak evidence
    search_threshold: int = 16  # networks with more addresses are searched, not looked up


class Account(Frozen):
    """What `portintel sources` shows of an account. Never the key."""

    plan: str | None = None
    credits_left: float | None = None
    detail: str = ""


@dataclass
class ConnectorContext:
    """Everything a connector may use; built by the pipeline, or by a test."""

    spec: ConnectorSpec
    http: SourceHttp
    budget: Budget
    base_url: str
    credentials: tuple[str, ...] = ()  # values of spec.key_env, in order
    cache: ResponseCache | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # the [sources.NAME] table

    async def cached(
        self, call: str, params: dict[str, Any], fetch: Callable[[], Awaitable[Any]]
    ) -> Fetched:
        """`fetch()`'s result, from the cache while fresh, with when it was really fetched.

        `params` identify the query, not the caller: they must not contain credentials.
        A `None` result ("no data") is cached too: asking again would cost again.
        """
        key = cache_key(self.spec.name, call, params)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                when = datetime.fromisoformat(hit["fetched_at"])
                return Fetched(hit["payload"], when, cached=True)
        value = await fetch()
        now = utcnow()
        if self.cache is not None:
            entry = {"fetched_at": now.isoformat(), "payload": value}
            self.cache.set(key, entry, self.spec.cache_ttl)
        return Fetched(value, now, cached=False)


@dataclass(frozen=True)
class Fetched:
    """A provider answer and the time it was fetched (earlier than now when cached)."""

    value: Any
    fetched_at: datetime
    cached: bool

    def record(self, source: str, endpoint_kind: str, query: str) -> RawRecord:
        return RawRecord(
            source=source,
            endpoint_kind=endpoint_kind,
            query=query,
            fetched_at=self.fetched_at,
            payload=self.value,
        )


class Connector(ABC):
    """One provider. Subclasses set `spec` and implement the four methods."""

    spec: ClassVar[ConnectorSpec]

    def __init__(self, ctx: ConnectorContext) -> None:
        self.ctx = ctx
        ctx.http.classify = self.classify

    def classify(self, response: httpx.Response) -> SourceError | None:
        """The provider's own reading of an error response; None keeps the shared defaults
        (429 -> RateLimited, 5xx -> SourceUnavailable, 401/403 -> AuthError, ...)."""
        return None

    # What core.pipeline reads of a source (its PassiveSource protocol).
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def search_threshold(self) -> int:
        return self.spec.search_threshold

    @property
    def credits_spent(self) -> float:
        return self.ctx.budget.spent

    @property
    def requests_sent(self) -> int:
        return self.ctx.http.requests

    @abstractmethod
    def estimate(self, job: Job) -> CostEstimate:
        """What `collect(job)` would send and cost, without sending anything."""

    @abstractmethod
    def collect(self, job: Job) -> AsyncIterator[RawRecord]:
        """Fetch the raw records for a job, paging as needed. I/O only."""

    @abstractmethod
    async def account(self) -> Account:
        """Plan and remaining credits, where the API reports them."""

    @staticmethod
    @abstractmethod
    def normalize(raw: RawRecord) -> list[Observation]:
        """Map one raw record onto observations. Pure: no I/O, no clock, no globals."""
