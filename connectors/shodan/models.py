"""Shodan response shapes (providers.md §1.5, §1.8): only what normalize and paging read.

Shodan adds fields freely, so every model ignores unknown ones; a field is required only
when the docs call it required and we cannot do without it (a banner's port, transport,
timestamp and address). Everything else is optional and may be missing or null.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ShodanMeta(_Lenient):
    module: str | None = None  # the crawler's protocol module: http, https, dns-udp, auto...


class Http(_Lenient):
    status: int | None = None
    title: str | None = None
    server: str | None = None
    waf: str | None = None


class Cipher(_Lenient):
    name: str | None = None
    version: str | None = None
    bits: int | None = None


class Fingerprint(_Lenient):
    sha256: str | None = None


class PubKey(_Lenient):
    type: str | None = None
    bits: int | None = None


class Extension(_Lenient):
    name: str | None = None
    data: str | None = None


class Cert(_Lenient):
    subject: dict[str, str] = Field(default_factory=dict)
    issuer: dict[str, str] = Field(default_factory=dict)
    issued: str | None = None  # YYYYMMDDHHMMSSZ
    expires: str | None = None
    fingerprint: Fingerprint | None = None
    pubkey: PubKey | None = None
    extensions: list[Extension] = Field(default_factory=list)


class Ssl(_Lenient):
    cipher: Cipher | None = None
    versions: list[str] = Field(default_factory=list)  # "-TLSv1" = NOT supported
    cert: Cert | None = None


class BannerVuln(_Lenient):
    cvss: float | None = None


class Cloud(_Lenient):
    provider: str | None = None


class Banner(_Lenient):
    """One service on one port: an element of a host's `data[]` or a search's `matches[]`."""

    ip_str: str
    port: int
    transport: str
    timestamp: str  # "2026-06-02T09:14:27.512093", UTC without a zone
    data: str | None = None
    shodan: ShodanMeta | None = Field(default=None, alias="_shodan")
    product: str | None = None
    version: str | None = None
    cpe: list[str] = Field(default_factory=list)  # CPE 2.2 URIs (deprecated)
    cpe23: list[str] = Field(default_factory=list)
    http: Http | None = None
    ssl: Ssl | None = None
    vulns: dict[str, BannerVuln] = Field(default_factory=dict)
    hostnames: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    cloud: Cloud | None = None
    org: str | None = None
    asn: str | None = None


class Host(_Lenient):
    """`GET /shodan/host/{ip}`: the host envelope with its banners."""

    ip_str: str
    ports: list[int] = Field(default_factory=list)  # may name ports with no banner in data
    hostnames: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    vulns: list[str] = Field(default_factory=list)  # CVE ids only (a dict at banner level)
    org: str | None = None
    asn: str | None = None
    data: list[Banner] = Field(default_factory=list)


class SearchPage(_Lenient):
    """`GET /shodan/host/search`: one page of up to 100 banners."""

    matches: list[Banner]
    total: int


class SearchEnvelope(_Lenient):
    """What paging needs of a page, checked before the page is cached: banners stay raw."""

    matches: list[dict[str, Any]]
    total: int


class ApiInfo(_Lenient):
    """`GET /api-info`."""

    plan: str
    query_credits: int
    scan_credits: int | None = None
    unlocked_left: int | None = None
