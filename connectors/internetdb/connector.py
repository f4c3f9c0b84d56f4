"""The InternetDB connector: Shodan's free, keyless per-address lookup.

There is no search API, so networks are expanded into addresses and each one is looked up.
A 404 ("No information available") is an answer, cached like any other so a re-run is free.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import httpx

from connectors.base import Account, Connector, ConnectorContext, ConnectorSpec, Job
from connectors.internetdb.normalize import normalize as normalize_record
from core.credits import CostEstimate
from core.errors import SchemaError, ScopeError, SourceError
from core.models import RawRecord
from core.targets import MAX_ADDRESSES

NO_DATA: dict[str, Any] = {"portintel": "no-data"}
"""Cached in place of a 404, so a re-run does not ask about an empty address again."""


class _NoData(SourceError):
    """InternetDB knows nothing about the address (HTTP 404). Not a failure."""


class InternetDBConnector(Connector):
    """`GET {base}/{ip}` per address; weak evidence, no credits, no key."""

    spec = ConnectorSpec(
        name="internetdb",
        default_url="https://internetdb.shodan.io",
        url_env="PORTINTEL_INTERNETDB_URL",
        key_env=(),
        # No published limit: it is free, keyless and throttles abusive clients with 429.
        # One request a second matches Shodan's documented limit for its main API, keeps us
        # a polite client, and the retry policy absorbs an occasional 429.
        rate=1.0,
        per=1.0,
        weak=True,
    )

    normalize = staticmethod(normalize_record)

    def __init__(self, ctx: ConnectorContext) -> None:
        super().__init__(ctx)

    def classify(self, response: httpx.Response) -> SourceError | None:
        if response.status_code == 404:
            return _NoData(self.name, "no information available")
        return None  # the defaults: 429 -> RateLimited, 5xx -> SourceUnavailable, ...

    # -- planning --------------------------------------------------------------------------
    def estimate(self, job: Job) -> CostEstimate:
        return CostEstimate(
            source=self.name,
            requests=len(self._addresses(job)),
            credits=0.0,
            note="keyless: no credits; networks are expanded and each address looked up",
        )

    # -- I/O -------------------------------------------------------------------------------
    async def collect(self, job: Job) -> AsyncIterator[RawRecord]:
        for ip in self._addresses(job):
            fetched = await self.ctx.cached("host", {"ip": ip}, partial(self._lookup, ip))
            if fetched.value == NO_DATA:
                continue
            yield fetched.record(self.name, "host", ip)

    async def account(self) -> Account:
        return Account(detail="keyless; no quota reported")

    async def _lookup(self, ip: str) -> Any:
        try:
            payload = await self.ctx.http.get_json(f"/{ip}")
        except _NoData:
            return NO_DATA
        if not isinstance(payload, dict):
            raise SchemaError(self.name, f"lookup of {ip}: expected a JSON object")
        return payload

    def _addresses(self, job: Job) -> list[str]:
        """Every address of the job once: single IPs, then each network's addresses."""
        limit = int(self.ctx.settings.get("max_addresses") or MAX_ADDRESSES)
        networks = [ipaddress.ip_network(n, strict=False) for n in job.networks]
        total = len(job.ips) + sum(n.num_addresses for n in networks)
        if total > limit:
            raise ScopeError(
                f"internetdb: the job covers {total:,} addresses, more than {limit:,} lookups; "
                "narrow the targets or raise max_addresses in [sources.internetdb]"
            )
        seen: dict[str, None] = {}
        for ip in job.ips:
            seen.setdefault(ipaddress.ip_address(ip).compressed)
        for network in networks:
            for address in network if network.num_addresses > 1 else [network.network_address]:
                seen.setdefault(address.compressed)
        return list(seen)
