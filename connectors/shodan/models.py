"""Shodan response shapes (providers.md §1.5, §1.8): only what normalize and paging read.

Shodan adds fields freely, so every shape ignores unknown ones; a field is required only
when the docs call it required and we cannot do without it (a banner's port, transport,
timestamp and address). Everything else is optional and may be missing or null.
"""

from __future__ import annotations

from typing import Any, Required

from pydantic import BaseModel, ConfigDict, TypeAdapter

# pydantic reads TypedDicts only from typing_extensions before Python 3.12 (it is one of
# pydantic's own dependencies).
from typing_extensions import TypedDict


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# -- what normalize reads: TypedDicts --------------------------------------------------------
#
# A million banners can pass through normalize in one import. pydantic validates a
# TypedDict into a plain dict, about half the cost of building a model instance per
# nested object, and normalize only reads them. Unknown keys are ignored (pydantic's
# default), a missing optional key is simply absent, and required ones are `Required`.


class ShodanMeta(TypedDict, total=False):
    module: str | None  # the crawler's protocol module: http, https, dns-udp, auto...


class Http(TypedDict, total=False):
    status: int | None
    title: str | None
    server: str | None
    waf: str | None


class Cipher(TypedDict, total=False):
    name: str | None
    version: str | None
    bits: int | None


class Fingerprint(TypedDict, total=False):
    sha256: str | None


class PubKey(TypedDict, total=False):
    type: str | None
    bits: int | None


class Extension(TypedDict, total=False):
    name: str | None
    data: str | None


class Cert(TypedDict, total=False):
    subject: dict[str, str]
    issuer: dict[str, str]
    issued: str | None  # YYYYMMDDHHMMSSZ
    expires: str | None
    fingerprint: Fingerprint | None
    pubkey: PubKey | None
    extensions: list[Extension]


class Ssl(TypedDict, total=False):
    cipher: Cipher | None
    versions: list[str]  # "-TLSv1" = NOT supported
    cert: Cert | None


class BannerVuln(TypedDict, total=False):
    cvss: float | None


class Cloud(TypedDict, total=False):
    provider: str | None


class Banner(TypedDict, total=False):
    """One service on one port: an element of a host's `data[]` or a search's `matches[]`."""

    ip_str: Required[str]
    port: Required[int]
    transport: Required[str]
    timestamp: Required[str]  # "2026-06-02T09:14:27.512093", UTC without a zone
    data: str | None
    _shodan: ShodanMeta | None
    product: str | None
    version: str | None
    cpe: list[str]  # CPE 2.2 URIs (deprecated)
    cpe23: list[str]
    http: Http | None
    ssl: Ssl | None
    vulns: dict[str, BannerVuln]
    hostnames: list[str]
    tags: list[str]
    cloud: Cloud | None
    org: str | None
    asn: str | None


class Host(TypedDict, total=False):
    """`GET /shodan/host/{ip}`: the host envelope with its banners."""

    ip_str: Required[str]
    ports: list[int]  # may name ports with no banner in data
    hostnames: list[str]
    tags: list[str]
    vulns: list[str]  # CVE ids only (a dict at banner level)
    org: str | None
    asn: str | None
    data: list[Banner]


class SearchPage(TypedDict):
    """`GET /shodan/host/search`: one page of up to 100 banners."""

    matches: list[Banner]
    total: int


HOST: TypeAdapter[Host] = TypeAdapter(Host)
SEARCH_PAGE: TypeAdapter[SearchPage] = TypeAdapter(SearchPage)


# -- what paging and the account check read: models ------------------------------------------


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
