"""InternetDB host records -> Observations. Pure: no I/O, no clock.

InternetDB says which ports were open, not over which transport or when, and its CPEs, CVEs,
hostnames and tags describe the address rather than a port. So every port becomes a weak
observation (tcp assumed and tagged "transport-unknown", no observed_at) that carries the
address-level facts: a hint for the verifier, not a sighting.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError

from connectors.internetdb.models import HostRecord
from core.errors import SchemaError
from core.models import Endpoint, Evidence, Kind, Observation, RawRecord, Transport, Vuln

SOURCE = "internetdb"
TRANSPORT_UNKNOWN = "transport-unknown"


def normalize(raw: RawRecord) -> list[Observation]:
    """One weak observation per port of one InternetDB host record."""
    if raw.endpoint_kind != "host":
        raise SchemaError(SOURCE, f"unknown record kind {raw.endpoint_kind!r}")
    try:
        host = HostRecord.model_validate(raw.payload)
        # The address and each port are checked here, so a bad one is a SchemaError too.
        endpoints = [
            Endpoint(ip=host.ip, port=port, transport=Transport.TCP)
            for port in sorted(set(host.ports))
        ]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise SchemaError(
            SOURCE,
            f"host record for {raw.query!r} does not match the documented shape: "
            f"{where}: {first['msg']}",
        ) from exc
    vulns = tuple(Vuln(cve=cve) for cve in sorted({v.strip().upper() for v in host.vulns if v}))
    cpes = tuple(dict.fromkeys(c.strip() for c in host.cpes if c.strip()))
    hostnames = _unique(host.hostnames)
    tags = _unique([*host.tags, TRANSPORT_UNKNOWN])
    return [
        Observation(
            endpoint=endpoint,
            source=SOURCE,
            kind=Kind.PASSIVE,
            evidence=Evidence.WEAK,
            observed_at=None,  # InternetDB keeps no times
            fetched_at=raw.fetched_at,
            cpes=cpes,
            vulns=vulns,
            hostnames=hostnames,
            tags=tags,
        )
        for endpoint in endpoints
    ]


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    """Lower-cased, stripped, empty values dropped, first occurrence kept."""
    return tuple(dict.fromkeys(v.strip().lower() for v in values if v.strip()))
