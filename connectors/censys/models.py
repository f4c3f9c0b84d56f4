"""Censys Platform API v3 response shapes: only the fields portintel reads.

Every model ignores unknown fields (Censys adds them freely) and makes everything optional
except what a record cannot mean anything without: the host's `ip`, and each service's
`port` and `transport_protocol`. A response missing those fails validation, which the
connector reports as a `SchemaError`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import SchemaError

SOURCE = "censys"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Software(_Model):
    vendor: str | None = None
    product: str | None = None
    version: str | None = None
    cpe: str | None = None
    part: str | None = None


class Label(_Model):
    value: str


class CvssScore(_Model):
    score: float | None = None


class VulnMetrics(_Model):
    cvss_v40: CvssScore | None = None
    cvss_v31: CvssScore | None = None
    cvss_v30: CvssScore | None = None


class Vuln(_Model):
    id: str
    metrics: VulnMetrics | None = None


class HeaderValues(_Model):
    headers: list[str] = Field(default_factory=list)


class Http(_Model):
    status_code: int | None = None
    html_title: str | None = None
    headers: dict[str, HeaderValues] = Field(default_factory=dict)


class Endpoint(_Model):
    endpoint_type: str | None = None
    path: str | None = None
    http: Http | None = None


class TlsVersion(_Model):
    version: str


class Tls(_Model):
    version_selected: str | None = None
    cipher_selected: str | None = None
    versions: list[TlsVersion] = Field(default_factory=list)


class ValidityPeriod(_Model):
    not_before: datetime | None = None
    not_after: datetime | None = None


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


class ParsedCert(_Model):
    subject_dn: str | None = None
    issuer_dn: str | None = None
    validity_period: ValidityPeriod | None = None
    subject_key_info: SubjectKeyInfo | None = None
    signature: Signature | None = None


class Cert(_Model):
    fingerprint_sha256: str | None = None
    names: list[str] = Field(default_factory=list)
    parsed: ParsedCert | None = None


class RepresentativeInfo(_Model):
    """Censys scans one port to stand for many on hosts that answer everywhere."""

    reason: str = ""
    sampled_port: int | None = None
    represented_ports: list[int] = Field(default_factory=list)
    excluded_ports: list[int] = Field(default_factory=list)


class Service(_Model):
    port: int
    transport_protocol: str
    protocol: str | None = None
    scan_time: datetime | None = None
    banner: str | None = None
    software: list[Software] = Field(default_factory=list)
    endpoints: list[Endpoint] = Field(default_factory=list)
    tls: Tls | None = None
    cert: Cert | None = None
    vulns: list[Vuln] = Field(default_factory=list)
    labels: list[Label] = Field(default_factory=list)
    representative_info: RepresentativeInfo | None = None


class AutonomousSystem(_Model):
    asn: int | None = None
    name: str | None = None


class WhoisOrganization(_Model):
    name: str | None = None


class Whois(_Model):
    organization: WhoisOrganization | None = None


class ReverseDns(_Model):
    names: list[str] = Field(default_factory=list)


class Dns(_Model):
    names: list[str] = Field(default_factory=list)
    reverse_dns: ReverseDns | None = None
    forward_dns: dict[str, object] = Field(default_factory=dict)


class Host(_Model):
    ip: str
    services: list[Service] = Field(default_factory=list)
    autonomous_system: AutonomousSystem | None = None
    whois: Whois | None = None
    dns: Dns | None = None
    labels: list[Label] = Field(default_factory=list)


class HostAsset(_Model):
    resource: Host


class HostResponse(_Model):
    """`GET /v3/global/asset/host/{ip}`."""

    result: HostAsset


class SearchHit(_Model):
    # A hit is a union; only host hits carry ports. Web-property and certificate hits
    # (`webproperty_v1`, `certificate_v1`) are ignored.
    host_v1: HostAsset | None = None


class SearchResult(_Model):
    hits: list[SearchHit]
    next_page_token: str = ""
    total_hits: int | None = None


class SearchResponse(_Model):
    """`POST /v3/global/search/query`."""

    result: SearchResult


class UserCredits(_Model):
    balance: float
    resets_at: datetime | None = None


class UserCreditsResponse(_Model):
    """`GET /v3/accounts/users/credits`: the free wallet of the token's user."""

    result: UserCredits


class CreditExpiration(_Model):
    balance: float | None = None
    expires_at: datetime | None = None


class OrgCredits(_Model):
    uid: str | None = None
    balance: float
    credit_expirations: list[CreditExpiration] = Field(default_factory=list)


class OrgCreditsResponse(_Model):
    """`GET /v3/accounts/organizations/{org}/credits`."""

    result: OrgCredits


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
