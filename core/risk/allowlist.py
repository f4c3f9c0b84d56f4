"""The allowlist: services the user expects on an asset or range, which weigh less.

A TOML file (`--allowlist FILE`):

    weight = 0.2                         # what an expected port's points are multiplied by

    [[allow]]
    targets = ["203.0.113.10", "198.51.100.0/28"]
    ports = ["3306", "5432/tcp", "161/udp"]
    services = ["ssh"]
    reason = "replication between our sites"

An open port matches an entry when its address is inside one of the entry's targets and
its port (and transport, when given) or its canonical service is listed. Only the
exposure of the port is lowered: CVEs, weak TLS and bad certificates on an expected
service still count in full.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import ConfigError
from core.models import Service, Transport
from core.naming import canonical_service
from core.risk.addresses import parse_ip

DEFAULT_WEIGHT = 0.2

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class PortSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    port: int = Field(ge=0, le=65535)
    transport: Transport | None = None  # None: either

    @classmethod
    def parse(cls, text: str) -> PortSpec:
        port, _, transport = text.strip().partition("/")
        try:
            return cls(port=int(port), transport=Transport(transport) if transport else None)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a port (22, 22/tcp or 161/udp)") from exc

    def matches(self, port: int, transport: Transport) -> bool:
        return self.port == port and self.transport in (None, transport)

    def __str__(self) -> str:
        return f"{self.port}/{self.transport}" if self.transport else str(self.port)


class AllowEntry(BaseModel):
    """Expected ports or services on some targets."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    targets: tuple[IpNetwork, ...] = Field(min_length=1)
    ports: tuple[PortSpec, ...] = ()
    services: tuple[str, ...] = ()
    reason: str | None = None

    @field_validator("targets", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        return [ipaddress.ip_network(str(item).strip(), strict=False) for item in value]

    @field_validator("ports", mode="before")
    @classmethod
    def _ports(cls, value: Any) -> Any:
        return [item if isinstance(item, PortSpec) else PortSpec.parse(str(item)) for item in value]

    @field_validator("services", mode="before")
    @classmethod
    def _services(cls, value: Any) -> Any:
        names = [canonical_service(str(item)) for item in value]
        return [name for name in names if name]

    def matches(self, service: Service) -> str | None:
        """What in this entry matches `service` (`3306/tcp`, `ssh`), or None."""
        addr = parse_ip(service.endpoint.ip)
        if not any(addr.version == net.version and addr in net for net in self.targets):
            return None
        endpoint = service.endpoint
        for spec in self.ports:
            if spec.matches(endpoint.port, endpoint.transport):
                return str(spec)
        name = canonical_service(service.service)
        if name is not None and name in self.services:
            return name
        return None


class Allowlist(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    weight: float = Field(default=DEFAULT_WEIGHT, ge=0, le=1)
    allow: tuple[AllowEntry, ...] = ()

    def match(self, service: Service) -> str | None:
        """A description of the entry that expects `service`, or None when none does."""
        for entry in self.allow:
            what = entry.matches(service)
            if what is not None:
                targets = ", ".join(str(net) for net in entry.targets)
                reason = f": {entry.reason}" if entry.reason else ""
                return f"allowlist {what} on {targets}{reason}"
        return None


EMPTY = Allowlist()


def load_allowlist(path: Path | None) -> Allowlist:
    """Read an allowlist file; the empty allowlist when `path` is None.

    Raises ConfigError naming the file and the bad entry.
    """
    if path is None:
        return EMPTY
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the allowlist ({exc})") from exc
    try:
        return Allowlist.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{path}: allowlist {where}: {first['msg']}") from exc


def allowlist_from(entries: Sequence[dict[str, Any]], weight: float = DEFAULT_WEIGHT) -> Allowlist:
    """An allowlist from already-parsed entries (tests, or a config section)."""
    return Allowlist.model_validate({"weight": weight, "allow": list(entries)})
