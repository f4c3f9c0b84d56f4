"""CDN edges: which open ports belong to a CDN rather than to the origin behind it.

A host behind Cloudflare answers on Cloudflare's 13 proxied ports whether or not the
origin listens on them. Those ports are kept (status cdn-edge) but not penalised: the
data in `data/cdn.toml` names, per CDN, its edge ports and published ranges, each with
its source and the date it was recorded.
"""

from __future__ import annotations

import bisect
import ipaddress
import itertools
import tomllib
from collections.abc import Collection, Iterable, Iterator
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.models import Endpoint, PortState, Service, Status, Transport, replaced
from core.risk.addresses import ip_sort_key

CDN_TAG = "cdn"
"""The tag providers put on addresses they know to be CDN edges (core.pipeline.reconcile)."""

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Cdn(BaseModel):
    """One CDN: its edge ports and published ranges, each with source and date."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    ports: frozenset[int] = Field(min_length=1)
    ports_source: str
    ports_recorded: date
    ranges: tuple[str, ...] = ()
    ranges_source: str
    ranges_recorded: date

    def networks(self) -> list[IpNetwork]:
        return [ipaddress.ip_network(cidr) for cidr in self.ranges]


class EdgeMatch(BaseModel):
    """Why an endpoint counts as a CDN edge: which CDN (or the tag) and how it was known."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cdn: str  # a CDN's name, or "tagged" when only a provider's cdn tag said so
    reason: str


class CdnDatabase:
    """Address -> CDN lookups over the published ranges, plus each CDN's edge ports."""

    def __init__(self, cdns: Iterable[Cdn]) -> None:
        self.cdns = tuple(cdns)
        self.any_ports = frozenset(port for cdn in self.cdns for port in cdn.ports)
        # One sorted table per IP version: (first address, last address, cdn), so a
        # lookup is a bisect, not a scan of every range for every service.
        table: dict[int, list[tuple[int, int, Cdn]]] = {4: [], 6: []}
        for cdn in self.cdns:
            for net in cdn.networks():
                table[net.version].append(
                    (int(net.network_address), int(net.broadcast_address), cdn)
                )
        self._starts: dict[int, list[int]] = {}
        self._table: dict[int, list[tuple[int, int, Cdn]]] = {}
        for version, rows in table.items():
            rows.sort(key=lambda row: (row[0], row[1]))
            for (_, last, left), (first, _, right) in itertools.pairwise(rows):
                if first <= last:
                    # A lookup must have one answer: overlaps are a data error.
                    raise ValueError(f"CDN ranges overlap: {left.name} and {right.name}")
            self._table[version] = rows
            self._starts[version] = [row[0] for row in rows]

    def cdn_for(self, ip: str) -> Cdn | None:
        """The CDN whose published ranges hold `ip`, or None."""
        version, value = ip_sort_key(ip)
        index = bisect.bisect_right(self._starts[version], value) - 1
        if index < 0:
            return None
        _, last, cdn = self._table[version][index]
        return cdn if value <= last else None

    def edge(self, service: Service) -> EdgeMatch | None:
        """Why `service` is a CDN edge port, or None if it is not one."""
        return self.edge_for(service.endpoint, service.tags)

    def edge_for(self, endpoint: Endpoint, tags: Collection[str]) -> EdgeMatch | None:
        """Why `endpoint` (with its sources' tags) is a CDN edge port, or None."""
        if endpoint.transport is not Transport.TCP:
            return None
        cdn = self.cdn_for(endpoint.ip)
        if cdn is not None:
            if endpoint.port in cdn.ports:
                return EdgeMatch(
                    cdn=cdn.name,
                    reason=f"{endpoint.ip} is in {cdn.name}'s published ranges and "
                    f"{cdn.name} edges answer on {endpoint.port}",
                )
            return None
        if CDN_TAG in tags and endpoint.port in self.any_ports:
            return EdgeMatch(
                cdn="tagged",
                reason=f"a source tagged {endpoint.ip} as a CDN and CDN edges answer "
                f"on {endpoint.port}",
            )
        return None


def mark_edges(services: Iterable[Service], db: CdnDatabase) -> Iterator[Service]:
    """The services with open CDN edge ports marked cdn-edge; the others unchanged.

    A refuted or closed port stays as it is: what our probe found outranks the CDN
    database.
    """
    for service in services:
        if (
            service.state is PortState.OPEN
            and service.status is not Status.CDN_EDGE
            and db.edge(service) is not None
        ):
            yield replaced(service, status=Status.CDN_EDGE)
        else:
            yield service


def load_cdns(data: dict[str, Any]) -> CdnDatabase:
    return CdnDatabase(Cdn.model_validate(entry) for entry in data.get("cdn", []))


@cache
def default_cdns() -> CdnDatabase:
    """The CDN data shipped in the package (parsed once per process)."""
    text = resources.files("core.risk").joinpath("data/cdn.toml").read_text("utf-8")
    return load_cdns(tomllib.loads(text))
