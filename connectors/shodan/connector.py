"""The Shodan connector: host lookups and `net:` searches through the official SDK.

The SDK is synchronous and sleeps to rate-limit itself. Each call runs in a worker thread
(`asyncio.to_thread`) inside our limiter and our retry policy, with the SDK's own sleep off,
so Shodan is paced and retried exactly like the httpx-based connectors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

import shodan
from pydantic import ValidationError

from connectors.base import Account, Connector, ConnectorContext, ConnectorSpec, Job
from connectors.shodan.models import ApiInfo, SearchEnvelope
from connectors.shodan.normalize import normalize as normalize_record
from connectors.shodan.sdk import SdkSession, is_no_data, translate
from core.credits import CostEstimate
from core.errors import AuthError, SchemaError
from core.http import with_retries
from core.models import RawRecord

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # banners per search page, fixed by Shodan
CREDITS_PER_PAGE = 1.0  # a `net:` filter makes every page cost one query credit
MAX_PAGES = 50  # hard cap per network (5,000 banners); settings key `max_pages` overrides

NO_DATA: dict[str, Any] = {"portintel": "no-data"}
"""Cached in place of a 404, so a re-run does not ask about an empty address again."""


class ShodanConnector(Connector):
    """Shodan's REST API: `host(ip)` per address (free), `search("net:...")` per network."""

    spec = ConnectorSpec(
        name="shodan",
        default_url="https://api.shodan.io",
        url_env="PORTINTEL_SHODAN_URL",
        key_env=("SHODAN_API_KEY",),
        rate=1.0,  # "1 request/second for all API methods" (developer docs)
        per=1.0,
    )

    normalize = staticmethod(normalize_record)

    def __init__(self, ctx: ConnectorContext) -> None:
        super().__init__(ctx)
        self._sdk: Any = None  # built on first use: a missing key fails the run, not __init__
        self._session: SdkSession | None = None

    # -- planning --------------------------------------------------------------------------
    def estimate(self, job: Job) -> CostEstimate:
        pages = len(job.networks)  # at least one page per network; the rest is unknown
        note = ""
        if job.networks:
            note = (
                f"lower bound: 1 query credit per {PAGE_SIZE} banners of each network "
                "searched; the page count is known only after the first page"
            )
        return CostEstimate(
            source=self.name,
            requests=len(job.ips) + pages,
            credits=pages * CREDITS_PER_PAGE,  # host lookups cost no credits
            note=note,
        )

    # -- I/O -------------------------------------------------------------------------------
    async def collect(self, job: Job) -> AsyncIterator[RawRecord]:
        for ip in job.ips:
            fetched = await self.ctx.cached("host", {"ip": ip}, partial(self._host, ip))
            if fetched.value == NO_DATA:
                continue
            yield fetched.record(self.name, "host", ip)
        for network in job.networks:
            async for record in self._search(f"net:{network}"):
                yield record

    async def account(self) -> Account:
        payload = await self._call("the account info request", lambda api: api.info())
        try:
            info = ApiInfo.model_validate(payload)
        except ValidationError as exc:
            raise SchemaError(self.name, f"api-info response: {_first_error(exc)}") from exc
        return Account(
            plan=info.plan,
            credits_left=float(info.query_credits),
            detail=f"{info.query_credits} query credits, {info.scan_credits} scan credits left",
        )

    async def _host(self, ip: str) -> Any:
        payload = await self._call(f"the host lookup of {ip}", lambda api: api.host(ip))
        if payload is not NO_DATA and not isinstance(payload, dict):
            raise SchemaError(self.name, f"host lookup of {ip}: expected a JSON object")
        return payload

    async def _search(self, query: str) -> AsyncIterator[RawRecord]:
        max_pages = int(self.ctx.settings.get("max_pages") or MAX_PAGES)
        seen = 0
        for page in range(1, max_pages + 1):
            fetched = await self.ctx.cached(
                "search",
                {"query": query, "page": page},
                partial(self._search_page, query, page),
            )
            matches = fetched.value["matches"]
            if not matches:  # past the end
                return
            yield fetched.record(self.name, "search", query)
            seen += len(matches)
            if seen >= fetched.value["total"]:
                return
        log.warning(
            "shodan: stopped %r after %d pages (the page cap); raise max_pages for the rest",
            query,
            max_pages,
        )

    async def _search_page(self, query: str, page: int) -> Any:
        self.ctx.budget.spend(CREDITS_PER_PAGE)  # before the request: refuse, never overspend
        payload = await self._call(
            f"search {query!r} page {page}", lambda api: api.search(query, page=page)
        )
        try:
            SearchEnvelope.model_validate(payload)
        except ValidationError as exc:
            raise SchemaError(
                self.name, f"search {query!r} page {page}: {_first_error(exc)}"
            ) from exc
        return payload

    async def _call(self, what: str, call: Callable[[Any], Any]) -> Any:
        """Run one SDK call in a thread, paced by our limiter, retried by our policy."""
        api, session = self._client()

        def invoke() -> Any:
            exchange = session.begin()
            try:
                return call(api)
            except shodan.APIError as exc:
                message = session.scrub(str(exc))
                if is_no_data(message, exchange):
                    return NO_DATA
                raise translate(self.name, message, exchange, what) from exc

        async def once() -> Any:
            async with self.ctx.http.limiter:
                self.ctx.http.requests += 1
                return await asyncio.to_thread(invoke)

        return await with_retries(self.name, self.ctx.http.policy, once)

    def _client(self) -> tuple[Any, SdkSession]:
        if self._sdk is None or self._session is None:
            key = self.ctx.credentials[0] if self.ctx.credentials else ""
            if not key:
                raise AuthError(self.name, "no API key: set SHODAN_API_KEY")
            api = shodan.Shodan(key)
            api.base_url = self.ctx.base_url.rstrip("/")
            api.api_rate_limit = 0  # our limiter paces requests, not the SDK's sleep loop
            # The SDK sets no timeout: a silent server would hang its thread forever.
            self._session = SdkSession(float(self.ctx.settings.get("timeout") or 30), key)
            api._session = self._session
            self._sdk = api
        return self._sdk, self._session


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    return f"{where}: {first['msg']}"
