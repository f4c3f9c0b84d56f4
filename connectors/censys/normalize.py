"""Censys Platform v3 host records -> observations. Pure: no I/O, no clock.

One observation per service (`services[]`) of each host in the record, whether the record
is a host lookup (`result.resource`) or a search page (`result.hits[].host_v1.resource`).
Censys quirks handled here:

- `transport_protocol` is lower-case; QUIC runs over UDP, so `quic` becomes `udp`;
  ICMP has no port and is skipped.
- On hosts that answer on huge port ranges (CDN/WAF edges, tarpits) Censys scans one
  port and lists the others in `representative_info.represented_ports`. Those ports get
  weak observations of their own, so a CDN edge's 80/8080/8443 are not lost; a port that
  was really scanned always wins over a represented one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pydantic import ValidationError

from connectors.censys import models as m
from core.errors import SchemaError
from core.models import (
    BANNER_CAP,
    CertSummary,
    Endpoint,
    Evidence,
    Kind,
    Observation,
    RawRecord,
    TlsSummary,
    Transport,
    Vuln,
)
from core.naming import canonical_service

_TRANSPORTS = {"tcp": Transport.TCP, "udp": Transport.UDP, "quic": Transport.UDP}

# Censys spells versions `tlsv1_3`; portintel uses the names OpenSSL and Shodan print.
_TLS_NAMES = {
    "sslv2": "SSLv2",
    "sslv3": "SSLv3",
    "tlsv1_0": "TLSv1",
    "tlsv1": "TLSv1",
    "tlsv1_1": "TLSv1.1",
    "tlsv1_2": "TLSv1.2",
    "tlsv1_3": "TLSv1.3",
}

# representative_info.reason values: Censys names the edge networks it samples.
_EDGE_REASONS = {"incapsula", "zscaler"}
_TARPIT_REASON = "protocol_port_count"


@dataclass(frozen=True)
class _HostFacts:
    """What every observation of one host shares."""

    ip: str
    hostnames: tuple[str, ...]
    org: str | None
    asn: str | None
    tags: tuple[str, ...]


def normalize(raw: RawRecord) -> list[Observation]:
    """Every open-port claim in one Censys record, one per (ip, port, transport)."""
    scanned: dict[Endpoint, Observation] = {}
    represented: dict[Endpoint, Observation] = {}
    try:
        for host in _hosts(raw):
            facts = _facts(host)
            for service in host.services:
                for obs in _observations(facts, service, raw):
                    pool = represented if obs.evidence is Evidence.WEAK else scanned
                    _keep_newest(pool, obs)
    except ValidationError as exc:  # an address or port our own models refuse
        raise SchemaError(m.SOURCE, f"{raw.endpoint_kind} record for {raw.query}: {exc}") from exc
    extra = [obs for key, obs in represented.items() if key not in scanned]
    return [*scanned.values(), *extra]


def _hosts(raw: RawRecord) -> list[m.Host]:
    if raw.endpoint_kind == "host":
        return [m.parse(m.HostResponse, raw.payload, "host lookup").result.resource]
    if raw.endpoint_kind == "search":
        page = m.parse(m.SearchResponse, raw.payload, "search page")
        return [hit.host_v1.resource for hit in page.result.hits if hit.host_v1]
    raise SchemaError(m.SOURCE, f"unknown record kind {raw.endpoint_kind!r}")


def _keep_newest(pool: dict[Endpoint, Observation], obs: Observation) -> None:
    old = pool.get(obs.endpoint)
    if old is None or (obs.observed_at or obs.fetched_at) > (old.observed_at or old.fetched_at):
        pool[obs.endpoint] = obs


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _facts(host: m.Host) -> _HostFacts:
    dns = host.dns or m.Dns()
    reverse = dns.reverse_dns.names if dns.reverse_dns else []
    names = [*dns.names, *reverse, *dns.forward_dns]
    org = host.whois.organization.name if host.whois and host.whois.organization else None
    asys = host.autonomous_system
    return _HostFacts(
        ip=host.ip,
        hostnames=_unique(n.strip().rstrip(".").lower() for n in names),
        org=org or (asys.name if asys else None),
        asn=f"AS{asys.asn}" if asys and asys.asn is not None else None,
        tags=_unique(label.value.lower() for label in host.labels),
    )


def _service_tags(facts: _HostFacts, service: m.Service) -> tuple[str, ...]:
    tags = [*facts.tags, *(label.value.lower() for label in service.labels)]
    reason = service.representative_info.reason if service.representative_info else ""
    if reason in _EDGE_REASONS:
        tags += ["cdn", f"waf:{reason}"]
    elif reason == _TARPIT_REASON:
        # One service sampled for a host answering on a huge number of ports: the tarpit
        # signature, which portintel tags like other honeypots.
        tags.append("honeypot")
    return tuple(sorted(set(tags)))


def _observations(facts: _HostFacts, service: m.Service, raw: RawRecord) -> Iterator[Observation]:
    transport = _TRANSPORTS.get(service.transport_protocol.lower())
    if transport is None:
        return
    tags = _service_tags(facts, service)
    name = canonical_service(service.protocol)
    product, version = _product(service.software)
    http = _http(service.endpoints)
    yield Observation(
        endpoint=Endpoint(ip=facts.ip, port=service.port, transport=transport),
        source=m.SOURCE,
        kind=Kind.PASSIVE,
        observed_at=service.scan_time,
        fetched_at=raw.fetched_at,
        service=name,
        product=product,
        version=version,
        cpes=_unique(sw.cpe for sw in service.software),
        banner=service.banner[:BANNER_CAP] if service.banner else None,
        http_server=_header(http, "server") if http else None,
        http_title=http.html_title if http else None,
        http_status=http.status_code if http else None,
        tls=_tls(service),
        vulns=_vulns(service.vulns),
        hostnames=facts.hostnames,
        tags=tags,
        org=facts.org,
        asn=facts.asn,
    )
    info = service.representative_info
    if info is None:
        return
    skip = {service.port, *info.excluded_ports}
    for port in dict.fromkeys(info.represented_ports):
        if port in skip:
            continue
        # Not scanned, only stood for by the sampled port: a weak claim with no detail.
        yield Observation(
            endpoint=Endpoint(ip=facts.ip, port=port, transport=transport),
            source=m.SOURCE,
            kind=Kind.PASSIVE,
            evidence=Evidence.WEAK,
            observed_at=service.scan_time,
            fetched_at=raw.fetched_at,
            service=name,
            hostnames=facts.hostnames,
            tags=tags,
            org=facts.org,
            asn=facts.asn,
        )


def _product(software: list[m.Software]) -> tuple[str | None, str | None]:
    """The application Censys identified; an OS or hardware entry only as a fallback."""
    named = [sw for sw in software if sw.product]
    apps = [sw for sw in named if sw.part in (None, "a")]
    if not named:
        return None, None
    best = (apps or named)[0]
    return best.product, best.version


def _http(endpoints: list[m.Endpoint]) -> m.Http | None:
    """The HTTP answer for the root path when there is one, else the first HTTP answer."""
    answers = [e for e in endpoints if e.http is not None]
    root = [e for e in answers if e.path in (None, "", "/")]
    chosen = root or answers
    return chosen[0].http if chosen else None


def _header(http: m.Http, name: str) -> str | None:
    for key, value in http.headers.items():
        if key.lower() == name and value.headers:
            return value.headers[0]
    return None


def _tls(service: m.Service) -> TlsSummary | None:
    if service.tls is None and service.cert is None:
        return None
    tls = service.tls or m.Tls()
    offered = [v.version for v in tls.versions]
    if tls.version_selected:
        offered.append(tls.version_selected)
    return TlsSummary(
        versions=_unique(_TLS_NAMES.get(v.lower(), v) for v in offered),
        cipher=tls.cipher_selected,
        cert=_cert(service.cert) if service.cert else None,
    )


def _cert(cert: m.Cert) -> CertSummary:
    parsed = cert.parsed or m.ParsedCert()
    validity = parsed.validity_period or m.ValidityPeriod()
    key = parsed.subject_key_info or m.SubjectKeyInfo()
    sized = key.rsa_public_key or key.ecdsa_public_key
    self_signed = parsed.signature.self_signed if parsed.signature else None
    if self_signed is None and parsed.subject_dn and parsed.issuer_dn:
        # Censys does not always say; a leaf naming itself as issuer is self-signed.
        self_signed = parsed.subject_dn == parsed.issuer_dn
    return CertSummary(
        subject=parsed.subject_dn,
        issuer=parsed.issuer_dn,
        sans=_unique(name.lower() for name in cert.names),
        not_before=validity.not_before,
        not_after=validity.not_after,
        key_type=key.key_algorithm.name if key.key_algorithm else None,
        key_bits=sized.length if sized else None,
        sha256=cert.fingerprint_sha256.lower() if cert.fingerprint_sha256 else None,
        self_signed=self_signed,
    )


def _vulns(vulns: list[m.Vuln]) -> tuple[Vuln, ...]:
    found: dict[str, Vuln] = {}
    for vuln in vulns:
        cve = vuln.id.strip().upper()
        if not cve.startswith("CVE-") or cve in found:
            continue  # exposures and misconfigurations have no CVE id
        metrics = vuln.metrics or m.VulnMetrics()
        # CVSS 3.1 first: it is what the other sources report, so scores compare.
        scores = (metrics.cvss_v31, metrics.cvss_v30, metrics.cvss_v40)
        cvss = next((s.score for s in scores if s and s.score is not None), None)
        found[cve] = Vuln(cve=cve, cvss=cvss)
    return tuple(found.values())
