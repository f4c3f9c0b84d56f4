"""Prevalence buckets (every boundary) and instance counting across runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.models import PortState, Run, Service, Transport
from core.risk.prevalence import Bucket, bucket, count_instances, store_prevalence
from tests.core.risk.helpers import T0, svc


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, Bucket.RARE),
        (1, Bucket.RARE),
        (49, Bucket.RARE),
        (50, Bucket.LESS_COMMON),
        (51, Bucket.LESS_COMMON),
        (499, Bucket.LESS_COMMON),
        (500, Bucket.SOMEWHAT_COMMON),
        (501, Bucket.SOMEWHAT_COMMON),
        (2999, Bucket.SOMEWHAT_COMMON),
        (3000, Bucket.SOMEWHAT_COMMON),
        (3001, Bucket.VERY_COMMON),
        (1_000_000, Bucket.VERY_COMMON),
    ],
)
def test_bucket_boundaries(count: int, expected: Bucket) -> None:
    assert bucket(count) is expected


def test_counts_distinct_open_addresses_per_port_and_transport() -> None:
    services = [
        svc("198.51.100.1", 443, "http"),
        svc("198.51.100.1", 443, "http"),  # the same endpoint in a later run
        svc("198.51.100.2", 443, "http"),
        svc("198.51.100.3", 443, "http", state=PortState.CLOSED),
        svc("198.51.100.1", 161, "snmp", transport=Transport.UDP),
        svc("2001:db8::1", 443, "http"),
    ]
    prevalence = count_instances(services)
    assert prevalence.count(443) == 3
    assert prevalence.count(443, Transport.UDP) == 0
    assert prevalence.count(161, Transport.UDP) == 1
    assert prevalence.bucket(443) is Bucket.RARE
    assert prevalence.by_bucket() == {
        Bucket.VERY_COMMON: 0,
        Bucket.SOMEWHAT_COMMON: 0,
        Bucket.LESS_COMMON: 0,
        Bucket.RARE: 2,
    }


class _History:
    def __init__(self, runs: dict[int, list[Service]]) -> None:
        self._runs = runs

    def runs(self) -> list[Run]:
        return [Run(id=i, started_at=T0, command="enrich") for i in self._runs]

    def services(self, run_id: int) -> Iterator[Service]:
        return iter(self._runs[run_id])


def test_store_prevalence_spans_every_run() -> None:
    # 60 addresses with 8443 open, split over two runs: less common, not rare.
    first = [svc(f"203.0.113.{i}", 8443, "http") for i in range(30)]
    second = [svc(f"203.0.113.{i}", 8443, "http") for i in range(20, 60)]
    prevalence = store_prevalence(_History({1: first, 2: second}))
    assert prevalence.count(8443) == 60
    assert prevalence.bucket(8443) is Bucket.LESS_COMMON
