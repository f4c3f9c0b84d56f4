"""Netlas API response shapes: only the fields portintel reads.

Unknown fields are ignored (Netlas adds them freely) except where the field name itself
carries data: a tag keeps its `<name>: {"version": ...}` entry and a response keeps its
protocol section (`ssh`, `smtp`, `dns`, ... holding `banner`), so those two models allow
extras. Required: a response's `ip`, `port` and `prot4`; a host summary's `ip` and each
listed port's `port` and `prot4`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import SchemaError

SOURCE = "netlas"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Tag(_Model):
    """A detected technology; its version sits under a key named after the tag."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    fullname: str | None = None
    category: list[str] = Field(default_factory=list)
    cpe: list[str] = Field(default_factory=list)

    @property
    def version(self) -> str | None:
        own = (self.model_extra or {}).get(self.name)
        value = own.get("version") if isinstance(own, dict) else None
        return str(value) if value not in (None, "") else None


class Cve(_Model):
    name: str
    base_score: float | None = None


class WhoisAsn(_Model):
    number: list[str] = Field(default_factory=list)
    name: str | None = None


class WhoisNet(_Model):
    organization: str | None = None


class Whois(_Model):
    asn: WhoisAsn | None = None
    net: WhoisNet | None = None


class Http(_Model):
    status_code: int | None = None
    title: str | None = None
    # Header names have `-` turned into `_`; every value is a list.
    headers: dict[str, list[str]] = Field(default_factory=dict)


class Validity(_Model):
    start: datetime | None = None
    end: datetime | None = None


class KeyAlgorithm(_Model):
    name: str | None = None


class PublicKeyLength(_Model):
    length: int | None = None


class SubjectKeyInfo(_Model):
    key_algorithm: KeyAlgorithm | None = None
    rsa_public_key: PublicKeyLength | None = None
    ecdsa_public_key: PublicKeyLength | None = None


class Signature(_Model):
    self_signed: bool | None = None


class SubjectAltName(_Model):
    dns_names: list[str] = Field(default_factory=list)


class Extensions(_Model):
    subject_alt_name: SubjectAltName | None = None


class Certificate(_Model):
    subject_dn: str | None = None
    issuer_dn: str | None = None
    names: list[str] = Field(default_factory=list)
    validity: Validity | None = None
    fingerprint_sha256: str | None = None
    subject_key_info: SubjectKeyInfo | None = None
    signature: Signature | None = None
    extensions: Extensions | None = None


class Response(_Model):
    """One service response (`items[].data`): per URI, so one port may repeat."""

    model_config = ConfigDict(extra="allow", frozen=True)

    ip: str
    port: int
    prot4: str
    prot7: str | None = None
    protocol: str | None = None
    host: str | None = None
    host_type: str | None = None
    http: Http | None = None
    certificate: Certificate | None = None
    tag: list[Tag] = Field(default_factory=list)
    cve: list[Cve] = Field(default_factory=list)
    domain: list[str] = Field(default_factory=list)
    ptr: list[str] = Field(default_factory=list)
    whois: Whois | None = None
    isp: str | None = None
    last_updated: datetime | None = None
    timestamp: datetime | None = Field(default=None, alias="@timestamp")

    def section(self, name: str | None) -> dict[str, Any]:
        """A protocol's own section (`ssh`, `dns`, ...), {} when absent."""
        value = (self.model_extra or {}).get(name or "")
        return value if isinstance(value, dict) else {}


class Item(_Model):
    data: Response


class ResponsesPage(_Model):
    """`GET /api/responses/`: up to 20 items; `items: []` past the end."""

    items: list[Item]


class HostPort(_Model):
    port: int
    prot4: str
    prot7: str | None = None
    protocol: str | None = None


class HostSoftware(_Model):
    uri: str | None = None
    tag: list[Tag] = Field(default_factory=list)
    cve: list[Cve] = Field(default_factory=list)


class HostSummary(_Model):
    """`GET /api/host/{ip}/`: ports and software, but no per-port time or banner."""

    ip: str
    ports: list[HostPort] = Field(default_factory=list)
    software: list[HostSoftware] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=list)
    ptr: list[str] = Field(default_factory=list)
    organization: str | None = None
    whois: Whois | None = None


class Plan(_Model):
    name: str | None = None
    is_free: bool | None = None


class CurrentUser(_Model):
    """`GET /api/users/current/`."""

    plan: Plan


class RequestsLeft(_Model):
    limit: int | None = None
    remained: int | None = None
    will_be_updated: datetime | None = None


class Coins(_Model):
    left: float | None = None


class ProfileData(_Model):
    """`GET /api/users/profile_data/`: usage counters; -1 means unlimited."""

    requests_left: RequestsLeft | None = None
    coins: Coins | None = None


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], payload: Any, what: str) -> M:
    """`payload` validated as `model`, or a `SchemaError` saying where it differs."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise SchemaError(
            SOURCE, f"{what} does not match the documented shape: {where}: {first['msg']}"
        ) from exc
