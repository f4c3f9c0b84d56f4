"""Where a worker probes from: its name and the source address its probes leave from.

Recorded as an observation tag `vantage:<name>/<address>` rather than a new field: tags
already carry per-observation facts (`reason:refused`), they travel in the store's JSON
with no schema change, and reconcile unions them into the Service, so a report shows
which vantage points saw a port. Two workers behind different NATs or in different
networks can disagree about a port; the tag is what lets a reader tell why.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from core.models import Observation

PREFIX = "vantage:"
_ROUTE_PORT = 9  # any port: connect() on a UDP socket only asks the kernel for a route


def source_address(ip: str) -> str:
    """The local address the kernel would send from to reach `ip` ("unknown" if none).

    A UDP socket's connect() picks a route and a source address without sending a
    packet, so this costs nothing on the wire.
    """
    family = socket.AF_INET6 if ipaddress.ip_address(ip).version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((ip, _ROUTE_PORT))
            return str(sock.getsockname()[0])
    except OSError:
        return "unknown"


def vantage_of(name: str, ip: str) -> str:
    """`<name>/<source address>` for probes from this machine to `ip`."""
    return f"{name}/{source_address(ip)}"


def stamp(observations: Iterable[Observation], name: str) -> list[Observation]:
    """The observations with their vantage tag added (one route lookup per address)."""
    by_ip: dict[str, str] = {}
    out: list[Observation] = []
    for obs in observations:
        ip = obs.endpoint.ip
        if ip not in by_ip:
            by_ip[ip] = PREFIX + vantage_of(name, ip)
        out.append(obs.model_copy(update={"tags": (*obs.tags, by_ip[ip])}))
    return out
