"""Netlas records -> observations. Pure: no I/O, no clock.

Two record kinds:

- ``search``: a page of `/api/responses/` items, one per service *response*. HTTP is
  scanned per URI and per virtual host, so one (ip, port, transport) repeats; the newest
  response is kept and the hostnames of all of them are merged into it.
- ``host``: the `/api/host/{ip}/` summary. Its ports carry no time, banner or
  certificate; product, CPEs and CVEs come from the `software[]` entry whose URI names
  the same port.

Netlas gives CPEs as 2.2 URIs (`cpe:/a:nginx:nginx`); they are rewritten as 2.3 strings
so they compare with the other sources', with the tag's version filled in when the URI
has none (a version-less CPE would match every release).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from pydantic import ValidationError

from connectors.netlas import models as m
from core.errors import SchemaError
from core.models import (
    BANNER_CAP,
    CertSummary,
    Endpoint,
    Kind,
    Observation,
    RawRecord,
    TlsSummary,
    Transport,
    Vuln,
)
from core.naming import canonical_service

_TRANSPORTS = {"tcp": Transport.TCP, "udp": Transport.UDP}

# Tag names of CDN edges seen in Netlas data; a tag in the "CDN" category counts too.
_CDN_TAGS = {"cloudflare", "amazon_cloudfront", "akamai", "fastly", "incapsula", "sucuri"}
_CLOUD_CATEGORIES = {"paas", "iaas"}


def normalize(raw: RawRecord) -> list[Observation]:
    """Every open-port claim in one Netlas record, one per (ip, port, transport)."""
    try:
        if raw.endpoint_kind == "search":
            page = m.parse(m.ResponsesPage, raw.payload, "search page")
            return _dedupe(_response(item.data, raw) for item in page.items)
        if raw.endpoint_kind == "host":
            host = m.parse(m.HostSummary, raw.payload, "host lookup")
            return _dedupe(_host_port(host, port, raw) for port in host.ports)
    except ValidationError as exc:  # an address or port our own models refuse
        raise SchemaError(m.SOURCE, f"{raw.endpoint_kind} record for {raw.query}: {exc}") from exc
    raise SchemaError(m.SOURCE, f"unknown record kind {raw.endpoint_kind!r}")


def _dedupe(observations: Iterable[Observation | None]) -> list[Observation]:
    kept: dict[Endpoint, Observation] = {}
    for obs in observations:
        if obs is None:
            continue
        old = kept.get(obs.endpoint)
        if old is None:
            kept[obs.endpoint] = obs
            continue
        newer, other = (obs, old) if obs.seen_at > old.seen_at else (old, obs)
        names = _unique([*newer.hostnames, *other.hostnames])
        kept[obs.endpoint] = newer.model_copy(update={"hostnames": names})
    return list(kept.values())


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _names(values: Iterable[str]) -> tuple[str, ...]:
    return _unique(v.strip().rstrip(".").lower() for v in values)


def _asn(whois: m.Whois | None) -> str | None:
    numbers = whois.asn.number if whois and whois.asn else []
    if not numbers:
        return None
    number = numbers[0].strip().upper().removeprefix("AS")
    return f"AS{number}" if number.isdigit() else None


def _tags(tags: list[m.Tag]) -> tuple[str, ...]:
    found: set[str] = set()
    for tag in tags:
        name = tag.name.lower()
        categories = {c.lower() for c in tag.category}
        if name == "honeypot" or "honeypot" in categories:
            found.add("honeypot")
        if name in _CDN_TAGS or "cdn" in categories:
            found.add("cdn")
        if "waf" in categories:
            found.add(f"waf:{name}")
        if categories & _CLOUD_CATEGORIES:
            found.add(f"cloud:{name}")
    return tuple(sorted(found))


def _product(tags: list[m.Tag], server: str | None) -> m.Tag | None:
    """The tag naming the service itself, not a library or framework found on it."""
    if not tags:
        return None
    if server:
        # The HTTP Server header names the daemon (nginx, Apache): prefer its tag.
        lowered = server.lower()
        for tag in tags:
            if any(n.lower() in lowered for n in (tag.name, tag.fullname) if n):
                return tag
    return next((tag for tag in tags if tag.version), tags[0])


def _cpe23(uri: str, version: str | None) -> str:
    """A CPE 2.2 URI as a 2.3 formatted string; anything else is returned unchanged."""
    if not uri.startswith("cpe:/") or "~" in uri or "%" in uri:
        return uri  # already 2.3, or packed/escaped 2.2 we do not unpick
    fields = uri[len("cpe:/") :].split(":")
    fields += [""] * (11 - len(fields))
    if version and not fields[3]:
        fields[3] = version
    return "cpe:2.3:" + ":".join(f or "*" for f in fields[:11])


def _cpes(tags: list[m.Tag]) -> tuple[str, ...]:
    return _unique(_cpe23(uri, tag.version) for tag in tags for uri in tag.cpe)


def _vulns(cves: Iterable[m.Cve]) -> tuple[Vuln, ...]:
    found: dict[str, Vuln] = {}
    for cve in cves:
        name = cve.name.strip().upper()
        if name.startswith("CVE-") and name not in found:
            found[name] = Vuln(cve=name, cvss=cve.base_score)
    return tuple(found.values())


def _cert(cert: m.Certificate) -> CertSummary:
    validity = cert.validity or m.Validity()
    key = cert.subject_key_info or m.SubjectKeyInfo()
    sized = key.rsa_public_key or key.ecdsa_public_key
    sans = cert.names
    if not sans and cert.extensions and cert.extensions.subject_alt_name:
        sans = cert.extensions.subject_alt_name.dns_names
    self_signed = cert.signature.self_signed if cert.signature else None
    if self_signed is None and cert.subject_dn and cert.issuer_dn:
        # Netlas does not say; a certificate naming itself as issuer is self-signed.
        self_signed = cert.subject_dn == cert.issuer_dn
    return CertSummary(
        subject=cert.subject_dn,
        issuer=cert.issuer_dn,
        sans=_names(sans),
        not_before=validity.start,
        not_after=validity.end,
        key_type=key.key_algorithm.name if key.key_algorithm else None,
        key_bits=sized.length if sized else None,
        sha256=cert.fingerprint_sha256.lower() if cert.fingerprint_sha256 else None,
        self_signed=self_signed,
    )


def _response(data: m.Response, raw: RawRecord) -> Observation | None:
    transport = _TRANSPORTS.get(data.prot4.lower())
    if transport is None:
        return None
    http = data.http
    server = next(iter(http.headers.get("server", [])), None) if http else None
    product = _product(data.tag, server)
    banner = data.section(data.prot7).get("banner") or data.section(data.protocol).get("banner")
    hostnames = [*data.domain, *data.ptr]
    if data.host_type == "domain" and data.host:
        hostnames.insert(0, data.host)  # the virtual host this response was asked for
    return Observation(
        endpoint=Endpoint(ip=data.ip, port=data.port, transport=transport),
        source=m.SOURCE,
        kind=Kind.PASSIVE,
        observed_at=data.last_updated or data.timestamp,
        fetched_at=raw.fetched_at,
        service=canonical_service(data.prot7 or data.protocol),
        product=product.name if product else None,
        version=product.version if product else None,
        cpes=_cpes(data.tag),
        banner=banner[:BANNER_CAP] if isinstance(banner, str) and banner else None,
        http_server=server,
        http_title=http.title if http else None,
        http_status=http.status_code if http else None,
        # Netlas reports the certificate but neither TLS versions nor the cipher.
        tls=TlsSummary(cert=_cert(data.certificate)) if data.certificate else None,
        vulns=_vulns(data.cve),
        hostnames=_names(hostnames),
        tags=_tags(data.tag),
        org=(data.whois.net.organization if data.whois and data.whois.net else None) or data.isp,
        asn=_asn(data.whois),
    )


def _software_for(host: m.HostSummary, port: int) -> list[m.HostSoftware]:
    matched = []
    for software in host.software:
        try:
            uri_port = urlsplit(software.uri or "").port
        except ValueError:
            continue  # a URI with a malformed port says nothing about this one
        if uri_port == port:
            matched.append(software)
    return matched


def _host_port(host: m.HostSummary, port: m.HostPort, raw: RawRecord) -> Observation | None:
    transport = _TRANSPORTS.get(port.prot4.lower())
    if transport is None:
        return None
    software = _software_for(host, port.port)
    tags = [tag for entry in software for tag in entry.tag]
    product = _product(tags, None)
    whois_org = host.whois.net.organization if host.whois and host.whois.net else None
    return Observation(
        endpoint=Endpoint(ip=host.ip, port=port.port, transport=transport),
        source=m.SOURCE,
        kind=Kind.PASSIVE,
        observed_at=None,  # the summary does not say when a port was seen
        fetched_at=raw.fetched_at,
        service=canonical_service(port.prot7 or port.protocol),
        product=product.name if product else None,
        version=product.version if product else None,
        cpes=_cpes(tags),
        vulns=_vulns(cve for entry in software for cve in entry.cve),
        hostnames=_names([*host.domains, *host.ptr]),
        tags=_tags(tags),
        org=host.organization or whois_org,
        asn=_asn(host.whois),
    )
