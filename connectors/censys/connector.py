"""Censys Platform API v3: host lookups, CenQL network search, credit balance. I/O only.

Auth is a personal access token (`Authorization: Bearer`) plus an optional organisation
id (`organization_id` query parameter). Without an organisation id Censys bills the
user's free wallet, which may only call lookup endpoints: networks are then expanded and
each address looked up instead of searched. The legacy Search v2 API is not implemented;
a second mode would sit beside this class and share `normalize` only where shapes agree.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx

from connectors.base import Account, Connector, ConnectorContext, ConnectorSpec, Job
from connectors.censys import models as m
from connectors.censys.normalize import normalize as normalize_record
from core.credits import CostEstimate
from core.errors import AuthError, QuotaError, SourceError
from core.models import Observation, RawRecord

log = logging.getLogger(__name__)

HOST_TYPE = "application/vnd.censys.api.v3.host.v1+json"
PAGE_SIZE = 100  # the documented maximum (and default) of search/query
MAX_PAGES = 200  # hard cap per network: 20,000 hosts
# providers.md gives no per-call prices (Censys bills per call, 100 free credits a month):
# count one credit per host lookup and one per search page until Censys publishes them.
LOOKUP_CREDITS = 1.0
SEARCH_PAGE_CREDITS = 1.0


class _NotFound(SourceError):
    """A 404: for a host lookup it means "no data for this address", not a failure."""


def _problem_text(response: httpx.Response) -> str:
    """The human part of a Censys error body (problem+json, or the 401 `error` object)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts: list[str] = [str(body[k]) for k in ("title", "detail") if body.get(k)]
    for item in body.get("errors") or []:
        if isinstance(item, dict) and item.get("message"):
            parts.append(str(item["message"]))
    error = body.get("error")
    if isinstance(error, dict) and error.get("message"):
        parts.append(str(error["message"]))
    text = "; ".join(dict.fromkeys(parts))
    return text[:200]


def read_error(response: httpx.Response) -> SourceError | None:
    """Censys's error answers; None leaves 429 and 5xx to the shared defaults."""
    status = response.status_code
    text = _problem_text(response)
    said = f": {text}" if text else ""
    if status == 404:
        return _NotFound(m.SOURCE, f"not found (HTTP 404){said}")
    if status == 401:
        return AuthError(m.SOURCE, f"token rejected (HTTP 401){said}; check CENSYS_API_TOKEN")
    lowered = text.lower()
    if status == 402 or (status in (403, 422) and ("balance" in lowered or "credit" in lowered)):
        # Censys answers an empty wallet with 422 "insufficient balance".
        return QuotaError(
            m.SOURCE, f"out of credits (HTTP {status}){said}; wait for the reset or buy more"
        )
    if status == 403:
        return AuthError(
            m.SOURCE,
            f"not allowed (HTTP 403){said}; search needs a paid plan and CENSYS_ORG_ID",
        )
    if 400 <= status < 500 and status != 429:
        return SourceError(m.SOURCE, f"request refused (HTTP {status}){said}")
    return None


class CensysConnector(Connector):
    """Censys Platform v3 (bearer token + optional organisation id)."""

    spec = ConnectorSpec(
        name=m.SOURCE,
        default_url="https://api.platform.censys.io",
        url_env="PORTINTEL_CENSYS_URL",
        key_env=("CENSYS_API_TOKEN", "CENSYS_ORG_ID"),
        # Censys shows each token's limits on its settings page and publishes none; free
        # accounts are reported to get a single concurrent request. One per second is safe.
        rate=1.0,
        per=1.0,
        cache_ttl=24 * 3600.0,
    )

    def __init__(self, ctx: ConnectorContext) -> None:
        super().__init__(ctx)
        creds = (*ctx.credentials, "", "")
        self._token = creds[0]
        self._org = creds[1].strip()

    def classify(self, response: httpx.Response) -> SourceError | None:
        return read_error(response)

    @staticmethod
    def normalize(raw: RawRecord) -> list[Observation]:
        return normalize_record(raw)

    # -- requests ------------------------------------------------------------------------
    def _headers(self, accept: str = "application/json") -> dict[str, str]:
        if not self._token:
            raise AuthError(m.SOURCE, "no API token; set CENSYS_API_TOKEN")
        return {"Authorization": f"Bearer {self._token}", "Accept": accept}

    @property
    def _params(self) -> dict[str, str]:
        # Free accounts have no organisation: the parameter is left out, not sent empty.
        return {"organization_id": self._org} if self._org else {}

    async def _lookup(self, ip: str) -> RawRecord | None:
        headers = self._headers(HOST_TYPE)

        async def fetch() -> Any:
            self.ctx.budget.spend(LOOKUP_CREDITS)
            try:
                payload = await self.ctx.http.get_json(
                    f"/v3/global/asset/host/{ip}", params=self._params, headers=headers
                )
            except _NotFound:
                return None  # cached too: asking again would cost again
            m.parse(m.HostResponse, payload, f"host lookup of {ip}")
            return payload

        fetched = await self.ctx.cached("host", {"ip": ip}, fetch)
        return fetched.record(m.SOURCE, "host", ip) if fetched.value is not None else None

    async def _search(self, network: str) -> AsyncIterator[RawRecord]:
        query = f'host.ip: "{network}"'
        headers = self._headers()
        token = ""
        for _ in range(MAX_PAGES):
            body: dict[str, Any] = {"query": query, "page_size": PAGE_SIZE}
            if token:
                body["page_token"] = token

            async def fetch(body: dict[str, Any] = body) -> Any:
                self.ctx.budget.spend(SEARCH_PAGE_CREDITS)
                payload = await self.ctx.http.post_json(
                    "/v3/global/search/query", params=self._params, json=body, headers=headers
                )
                m.parse(m.SearchResponse, payload, f"search page for {network}")
                return payload

            key = {"query": query, "page_size": PAGE_SIZE, "page_token": token}
            fetched = await self.ctx.cached("search", key, fetch)
            page = m.parse(m.SearchResponse, fetched.value, f"search page for {network}")
            if not page.result.hits:
                return
            yield fetched.record(m.SOURCE, "search", query)
            token = page.result.next_page_token
            if not token:
                return
        log.warning("censys: stopped after %d pages for %s; results are cut", MAX_PAGES, network)

    # -- the Connector interface ---------------------------------------------------------
    def _expanded(self, job: Job) -> list[str]:
        """Networks to look up address by address (no organisation: no search)."""
        if self._org:
            return []
        return [
            addr.compressed
            for net in job.networks
            for addr in ipaddress.ip_network(net, strict=False)
        ]

    def estimate(self, job: Job) -> CostEstimate:
        lookups = len(job.ips) + len(self._expanded(job))
        pages = len(job.networks) if self._org else 0
        note = ""
        if pages:
            note = f"at least: each network costs one more page per {PAGE_SIZE} hosts found"
        elif job.networks:
            note = "no CENSYS_ORG_ID: networks are looked up address by address"
        return CostEstimate(
            source=m.SOURCE,
            requests=lookups + pages,
            credits=lookups * LOOKUP_CREDITS + pages * SEARCH_PAGE_CREDITS,
            note=note,
        )

    async def collect(self, job: Job) -> AsyncIterator[RawRecord]:
        for ip in [*job.ips, *self._expanded(job)]:
            record = await self._lookup(ip)
            if record is not None:
                yield record
        if self._org:
            for network in job.networks:
                async for record in self._search(network):
                    yield record

    async def account(self) -> Account:
        # Not cached: the balance must be current, and asking for it costs nothing.
        headers = self._headers()
        if self._org:
            path = f"/v3/accounts/organizations/{quote(self._org, safe='')}/credits"
            org = m.parse(
                m.OrgCreditsResponse,
                await self.ctx.http.get_json(path, headers=headers),
                "organisation credits",
            ).result
            expiries = sorted(e.expires_at for e in org.credit_expirations if e.expires_at)
            detail = f"next credits expire {expiries[0].isoformat()}" if expiries else ""
            return Account(plan="organization", credits_left=org.balance, detail=detail)
        user = m.parse(
            m.UserCreditsResponse,
            await self.ctx.http.get_json("/v3/accounts/users/credits", headers=headers),
            "user credits",
        ).result
        detail = f"free wallet; resets {user.resets_at.isoformat()}" if user.resets_at else ""
        return Account(plan="free", credits_left=user.balance, detail=detail)
