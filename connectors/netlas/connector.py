"""Netlas: host summaries, responses search over a network, account counters. I/O only.

Plain httpx through `ctx.http` (the Netlas Python SDK is licensed non-commercial). The
key goes in the `X-API-Key` header. Every call counts against the plan's daily request
quota, which is what this connector spends from the budget: one per request.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx

from connectors.base import Account, Connector, ConnectorContext, ConnectorSpec, Job
from connectors.netlas import models as m
from connectors.netlas.normalize import normalize as normalize_record
from core.credits import CostEstimate
from core.errors import AuthError, QuotaError, SourceError
from core.models import Observation, RawRecord

log = logging.getLogger(__name__)

PAGE_SIZE = 20  # fixed by Netlas; `start` is the offset
MAX_PAGES = 200  # 4,000 results: the deepest any plan lets search reach
REQUEST_CREDITS = 1.0  # each call uses one request of the daily quota


class _NotFound(SourceError):
    """A 404 on a host lookup: no data for that address."""


def _error_text(response: httpx.Response) -> str:
    """The human part of a Netlas error body (`title`/`detail`, or the older `error`)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts = [str(body[k]) for k in ("title", "detail", "error") if body.get(k)]
    return "; ".join(dict.fromkeys(parts))[:200]


def read_error(response: httpx.Response) -> SourceError | None:
    """Netlas's error answers; None leaves 429 and 5xx to the shared defaults.

    Netlas reports most refusals as 400 and tells them apart only by the message: a bad
    key ("API key not found"), the daily query limit ("Exceeded Maximum Allowed
    Queries"), a feature outside the plan. None of them is worth retrying.
    """
    status = response.status_code
    text = _error_text(response)
    said = f": {text}" if text else ""
    lowered = text.lower()
    if status == 404:
        return _NotFound(m.SOURCE, f"not found (HTTP 404){said}")
    if status == 401 or (status == 400 and "api key" in lowered):
        return AuthError(m.SOURCE, f"key rejected (HTTP {status}){said}; check NETLAS_API_KEY")
    if status == 402 or (status == 400 and ("exceeded" in lowered or "coins" in lowered)):
        return QuotaError(
            m.SOURCE, f"quota used up (HTTP {status}){said}; wait for the daily reset"
        )
    if status == 403 or (status == 400 and "plan" in lowered):
        return AuthError(m.SOURCE, f"not allowed on this plan (HTTP {status}){said}")
    if 400 <= status < 500 and status != 429:
        return SourceError(m.SOURCE, f"request refused (HTTP {status}){said}")
    return None


class NetlasConnector(Connector):
    """Netlas (X-API-Key)."""

    spec = ConnectorSpec(
        name=m.SOURCE,
        default_url="https://app.netlas.io",
        url_env="PORTINTEL_NETLAS_URL",
        key_env=("NETLAS_API_KEY",),
        rate=60.0,  # documented: 60 requests a minute for general API calls
        per=60.0,
        cache_ttl=24 * 3600.0,
    )

    def __init__(self, ctx: ConnectorContext) -> None:
        super().__init__(ctx)
        self._key = ctx.credentials[0] if ctx.credentials else ""

    def classify(self, response: httpx.Response) -> SourceError | None:
        return read_error(response)

    @staticmethod
    def normalize(raw: RawRecord) -> list[Observation]:
        return normalize_record(raw)

    # -- requests ------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        if not self._key:
            raise AuthError(m.SOURCE, "no API key; set NETLAS_API_KEY")
        return {"X-API-Key": self._key, "Accept": "application/json"}

    async def _lookup(self, ip: str) -> RawRecord | None:
        headers = self._headers()

        async def fetch() -> Any:
            self.ctx.budget.spend(REQUEST_CREDITS)
            try:
                payload = await self.ctx.http.get_json(f"/api/host/{ip}/", headers=headers)
            except _NotFound:
                return None
            host = m.parse(m.HostSummary, payload, f"host lookup of {ip}")
            # Netlas answers an address it knows nothing about with 200 and no ports.
            return payload if host.ports else None

        fetched = await self.ctx.cached("host", {"ip": ip}, fetch)
        return fetched.record(m.SOURCE, "host", ip) if fetched.value is not None else None

    async def _search(self, network: str) -> AsyncIterator[RawRecord]:
        query = f'ip:"{network}"'
        headers = self._headers()
        for page_number in range(MAX_PAGES):
            params = {"q": query, "start": page_number * PAGE_SIZE}

            async def fetch(params: dict[str, Any] = params) -> Any:
                self.ctx.budget.spend(REQUEST_CREDITS)
                payload = await self.ctx.http.get_json(
                    "/api/responses/", params=params, headers=headers
                )
                m.parse(m.ResponsesPage, payload, f"search page for {network}")
                return payload

            fetched = await self.ctx.cached("search", params, fetch)
            page = m.parse(m.ResponsesPage, fetched.value, f"search page for {network}")
            if not page.items:
                return
            yield fetched.record(m.SOURCE, "search", query)
            if len(page.items) < PAGE_SIZE:
                return  # a short page is the last: asking for the next would waste a request
        log.warning("netlas: stopped after %d pages for %s; results are cut", MAX_PAGES, network)

    # -- the Connector interface ---------------------------------------------------------
    def estimate(self, job: Job) -> CostEstimate:
        requests = len(job.ips) + len(job.networks)
        note = ""
        if job.networks:
            note = f"at least: each network costs one more request per {PAGE_SIZE} responses"
        return CostEstimate(
            source=m.SOURCE, requests=requests, credits=requests * REQUEST_CREDITS, note=note
        )

    async def collect(self, job: Job) -> AsyncIterator[RawRecord]:
        for ip in job.ips:
            record = await self._lookup(ip)
            if record is not None:
                yield record
        for network in job.networks:
            async for record in self._search(network):
                yield record

    async def account(self) -> Account:
        # Not cached: the counters must be current, and asking for them costs nothing.
        headers = self._headers()
        user = m.parse(
            m.CurrentUser,
            await self.ctx.http.get_json("/api/users/current/", headers=headers),
            "current user",
        )
        usage = m.parse(
            m.ProfileData,
            await self.ctx.http.get_json("/api/users/profile_data/", headers=headers),
            "profile data",
        )
        left = usage.requests_left or m.RequestsLeft()
        unlimited = left.remained is not None and left.remained < 0  # Netlas writes -1
        details = []
        if unlimited:
            details.append("unlimited requests")
        elif left.remained is not None:
            of = f" of {left.limit}" if left.limit is not None and left.limit >= 0 else ""
            details.append(f"{left.remained}{of} requests left")
        if left.will_be_updated:
            details.append(f"resets {left.will_be_updated.isoformat()}")
        if usage.coins and usage.coins.left is not None:
            details.append(f"{usage.coins.left:g} coins left")
        remained = left.remained
        return Account(
            plan=user.plan.name,
            credits_left=float(remained) if remained is not None and not unlimited else None,
            detail="; ".join(details),
        )
