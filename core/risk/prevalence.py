"""Port prevalence: how common an open port is across every run in the store.

A rarely open port may be a legitimate service on a non-standard port, but it deserves a
second look. The count for a (port, transport) is the number of distinct addresses seen
with it open in any run: an endpoint reconciled again in every later run is one
instance, not one per run. Buckets (the brief's, with the shared boundaries assigned):

    more than 3000       very common
    500 to 3000          somewhat common    (500 and 3000 included)
    50 to 499            less common        (50 included)
    fewer than 50        rare
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum
from typing import Protocol

from core.models import PortState, Run, Service, Transport

VERY_COMMON_ABOVE = 3000
SOMEWHAT_COMMON_FROM = 500
LESS_COMMON_FROM = 50


class Bucket(StrEnum):
    VERY_COMMON = "very common"
    SOMEWHAT_COMMON = "somewhat common"
    LESS_COMMON = "less common"
    RARE = "rare"


def bucket(count: int) -> Bucket:
    """The prevalence bucket of a port open on `count` instances."""
    if count > VERY_COMMON_ABOVE:
        return Bucket.VERY_COMMON
    if count >= SOMEWHAT_COMMON_FROM:
        return Bucket.SOMEWHAT_COMMON
    if count >= LESS_COMMON_FROM:
        return Bucket.LESS_COMMON
    return Bucket.RARE


PortKey = tuple[int, Transport]


class Prevalence:
    """Instance counts per (port, transport), with their buckets."""

    def __init__(self, counts: Mapping[PortKey, int]) -> None:
        self.counts = dict(counts)

    def count(self, port: int, transport: Transport = Transport.TCP) -> int:
        return self.counts.get((port, transport), 0)

    def bucket(self, port: int, transport: Transport = Transport.TCP) -> Bucket:
        return bucket(self.count(port, transport))

    def by_bucket(self) -> dict[Bucket, int]:
        """How many distinct open ports fall in each bucket (for the report's chart)."""
        totals = dict.fromkeys(Bucket, 0)
        for value in self.counts.values():
            totals[bucket(value)] += 1
        return totals


def count_instances(services: Iterable[Service]) -> Prevalence:
    """Distinct addresses with each (port, transport) open, over `services` of any runs."""
    seen: set[tuple[str, int, Transport]] = set()
    for svc in services:
        if svc.state is PortState.OPEN:
            seen.add((svc.endpoint.ip, svc.endpoint.port, svc.endpoint.transport))
    return Prevalence(Counter((port, transport) for _, port, transport in seen))


class RunHistory(Protocol):
    """What prevalence needs of a store (core.store.Store provides it)."""

    def runs(self) -> list[Run]: ...

    def services(self, run_id: int) -> Iterator[Service]: ...


def store_prevalence(store: RunHistory) -> Prevalence:
    """Prevalence over every run in the store, streamed one run at a time."""
    return count_instances(svc for run in store.runs() for svc in store.services(run.id))
