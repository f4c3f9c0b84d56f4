"""Parsed addresses, cached: a report looks up the same few thousand hosts per port.

`ipaddress.ip_address` costs microseconds; scoring, CDN lookups, filters and sorting a
100,000-service inventory would parse each address dozens of times without this.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from core.models import Endpoint

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CACHED = 1 << 17  # addresses kept parsed; more than a large report's distinct hosts


@lru_cache(maxsize=_CACHED)
def parse_ip(ip: str) -> IpAddress:
    return ipaddress.ip_address(ip)


@lru_cache(maxsize=_CACHED)
def ip_sort_key(ip: str) -> tuple[int, int]:
    """(version, integer): IPv4 before IPv6, numeric order within each."""
    addr = ipaddress.ip_address(ip)
    return addr.version, int(addr)


def endpoint_key(endpoint: Endpoint) -> tuple[int, int, int, str]:
    """Endpoint order (address, port, transport) without parsing the address again."""
    version, value = ip_sort_key(endpoint.ip)
    return version, value, endpoint.port, endpoint.transport.value
