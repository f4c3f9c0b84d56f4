"""Shodan host and search records -> Observations. Pure: no I/O, no clock.

A host lookup gives one Observation per banner in `data[]`, plus a weak one for each port
the host envelope lists without a banner (Shodan knows it is open but the key cannot see the
banner, so its transport is unknown: we assume tcp and say so in a tag). A search page gives
one Observation per match. Shodan's quirks handled here: host-level `vulns` is a list of ids
while banner-level `vulns` is a dict with CVSS; `ssl.versions` entries starting with "-" are
versions the server refused; banner times carry no zone (UTC); cert dates are YYYYMMDDHHMMSSZ.
"""

from __future__ import annotations

import codecs
import ipaddress
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from pydantic import ValidationError

from connectors.shodan.models import Banner, Cert, Host, SearchPage, Ssl
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

SOURCE = "shodan"
TRANSPORT_UNKNOWN = "transport-unknown"
HOST_WIDE_TAGS = frozenset({"cdn", "honeypot"})

_TIMESTAMP_FORMATS = ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S")
_CERT_DATE_FORMAT = "%Y%m%d%H%M%SZ"


def normalize(raw: RawRecord) -> list[Observation]:
    """Every open-port claim in one Shodan record, newest per (ip, port, transport)."""
    try:
        if raw.endpoint_kind == "host":
            observations = _host(Host.model_validate(raw.payload), raw)
        elif raw.endpoint_kind == "search":
            page = SearchPage.model_validate(raw.payload)
            observations = [_banner(b, raw) for b in page.matches]
        else:
            raise SchemaError(SOURCE, f"unknown record kind {raw.endpoint_kind!r}")
    except ValidationError as exc:
        raise SchemaError(SOURCE, _describe(raw, exc)) from exc
    except ValueError as exc:  # a malformed address or time inside an otherwise valid record
        raise SchemaError(SOURCE, f"{raw.endpoint_kind} record for {raw.query!r}: {exc}") from exc
    return _newest(observations)


def _describe(raw: RawRecord, exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    return (
        f"{raw.endpoint_kind} record for {raw.query!r} does not match the documented shape: "
        f"{where}: {first['msg']} ({exc.error_count()} problem(s))"
    )


def _host(host: Host, raw: RawRecord) -> list[Observation]:
    banner_cves = {cve.upper() for banner in host.data for cve in banner.vulns}
    # Host-level CVE ids that no banner explains cannot be pinned to a port: every
    # observation of the host carries them (without CVSS), as InternetDB's do.
    orphans = tuple(Vuln(cve=c) for c in sorted({v.upper() for v in host.vulns} - banner_cves))
    observations = [_banner(b, raw, host=host, extra_vulns=orphans) for b in host.data]
    seen_ports = {b.port for b in host.data}
    for port in sorted(set(host.ports) - seen_ports):
        observations.append(
            Observation(
                endpoint=Endpoint(ip=host.ip_str, port=port, transport=Transport.TCP),
                source=SOURCE,
                kind=Kind.PASSIVE,
                evidence=Evidence.WEAK,
                observed_at=None,  # the host's last_update is not a sighting of this port
                fetched_at=raw.fetched_at,
                vulns=orphans,
                hostnames=_unique(host.hostnames),
                tags=_unique([*_host_wide(host), TRANSPORT_UNKNOWN]),
                org=host.org,
                asn=_asn(host.asn),
            )
        )
    return observations


def _banner(
    banner: Banner, raw: RawRecord, *, host: Host | None = None, extra_vulns: Sequence[Vuln] = ()
) -> Observation:
    http = banner.http
    tags = [*banner.tags, *_host_wide(host)]
    if http and http.waf:
        tags.append(f"waf:{http.waf}")
    if banner.cloud and banner.cloud.provider:
        tags.append(f"cloud:{banner.cloud.provider}")
    vulns = {cve.upper(): Vuln(cve=cve.upper(), cvss=v.cvss) for cve, v in banner.vulns.items()}
    for vuln in extra_vulns:
        vulns.setdefault(vuln.cve, vuln)
    return Observation(
        endpoint=Endpoint(
            ip=banner.ip_str, port=banner.port, transport=Transport(banner.transport.lower())
        ),
        source=SOURCE,
        kind=Kind.PASSIVE,
        observed_at=_timestamp(banner.timestamp),
        fetched_at=raw.fetched_at,
        service=canonical_service(banner.shodan.module if banner.shodan else None),
        product=banner.product or None,
        version=banner.version or None,
        cpes=tuple(banner.cpe23 or banner.cpe),
        banner=banner.data[:BANNER_CAP] if banner.data else None,
        http_server=http.server if http else None,
        http_title=http.title if http else None,
        http_status=http.status if http else None,
        tls=_tls(banner.ssl, self_signed_tag=_has_tag(banner.tags, "self-signed"))
        if banner.ssl
        else None,
        vulns=tuple(vulns[cve] for cve in sorted(vulns)),
        hostnames=_unique([*banner.hostnames, *(host.hostnames if host else ())]),
        tags=_unique(tags),
        org=banner.org or (host.org if host else None),
        asn=_asn(banner.asn or (host.asn if host else None)),
    )


def _host_wide(host: Host | None) -> list[str]:
    """Host-level tags are the union of the banners' (a "database" tag belongs to one port):
    only the ones that describe the whole address are carried onto each of its ports."""
    return [t for t in (host.tags if host else ()) if t.strip().lower() in HOST_WIDE_TAGS]


def _tls(ssl: Ssl, *, self_signed_tag: bool) -> TlsSummary:
    return TlsSummary(
        versions=tuple(v for v in ssl.versions if v and not v.startswith("-")),
        cipher=ssl.cipher.name if ssl.cipher else None,
        cert=_cert(ssl.cert, self_signed_tag) if ssl.cert else None,
    )


def _cert(cert: Cert, self_signed_tag: bool) -> CertSummary:
    subject, issuer = _dn(cert.subject), _dn(cert.issuer)
    if self_signed_tag:
        self_signed: bool | None = True
    elif subject and issuer:
        self_signed = cert.subject == cert.issuer
    else:
        self_signed = None
    san = next((e.data for e in cert.extensions if e.name == "subjectAltName" and e.data), None)
    return CertSummary(
        subject=subject,
        issuer=issuer,
        sans=_sans(san) if san else (),
        not_before=_cert_date(cert.issued),
        not_after=_cert_date(cert.expires),
        key_type=cert.pubkey.type if cert.pubkey else None,
        key_bits=cert.pubkey.bits if cert.pubkey else None,
        sha256=cert.fingerprint.sha256.lower()
        if cert.fingerprint and cert.fingerprint.sha256
        else None,
        self_signed=self_signed,
    )


def _dn(parts: dict[str, str]) -> str | None:
    """Shodan gives a DN as {"C": .., "O": .., "CN": ..}: render it as written, comma-joined."""
    return ", ".join(f"{k}={v}" for k, v in parts.items()) or None


def _sans(data: str) -> tuple[str, ...]:
    """DNS names and addresses from Shodan's escaped DER of a subjectAltName extension.

    Shodan prints the extension's raw DER with Python-style escapes ("0\\x1f\\x82\\x0b...").
    Anything we cannot read yields no SANs rather than an error: the rest of the cert is fine.
    """
    try:
        der = codecs.decode(data, "unicode_escape").encode("latin-1")
    except (UnicodeError, ValueError):
        return ()
    outer = _tlv(der, 0)
    if outer is None or outer[0] != 0x30:
        return ()
    names: list[str] = []
    body, pos = outer[1], 0
    while (item := _tlv(body, pos)) is not None:
        tag, value, pos = item
        if tag == 0x82:  # [2] dNSName
            names.append(value.decode("ascii", "replace").lower())
        elif tag == 0x87 and len(value) in (4, 16):  # [7] iPAddress
            names.append(ipaddress.ip_address(value).compressed)
    return _unique(names)


def _tlv(buf: bytes, pos: int) -> tuple[int, bytes, int] | None:
    """One DER tag-length-value at `pos`: (tag, value, next position), None past the end."""
    if pos + 2 > len(buf):
        return None
    tag, length, pos = buf[pos], buf[pos + 1], pos + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(buf):
            return None
        length, pos = int.from_bytes(buf[pos : pos + count], "big"), pos + count
    if pos + length > len(buf):
        return None
    return tag, buf[pos : pos + length], pos + length


def _timestamp(value: str) -> datetime:
    for fmt in _TIMESTAMP_FORMATS:
        try:
            parsed = datetime.strptime(value, fmt)
        except ValueError:
            continue
        return parsed.replace(tzinfo=UTC)
    raise ValueError(f"banner timestamp {value!r} is not in Shodan's format")


def _cert_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, _CERT_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None  # a certificate field, not the claim itself: do not reject the record


def _lower(value: str | None) -> str | None:
    return value.lower() if value else None


def _has_tag(tags: Iterable[str], wanted: str) -> bool:
    return any(tag.strip().lower() == wanted for tag in tags)


def _asn(value: str | None) -> str | None:
    if not value:
        return None
    text = value.strip().upper()
    return text if text.startswith("AS") else f"AS{text}"


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    """Lower-cased, stripped, empty values dropped, first occurrence kept."""
    out: dict[str, None] = {}
    for value in values:
        text = value.strip().lower()
        if text:
            out.setdefault(text)
    return tuple(out)


def _newest(observations: list[Observation]) -> list[Observation]:
    """One observation per endpoint: the newest (a claim with a time beats one without)."""
    best: dict[Endpoint, Observation] = {}
    for obs in observations:
        current = best.get(obs.endpoint)
        if current is None or _rank(obs) > _rank(current):
            best[obs.endpoint] = obs
    return list(best.values())


def _rank(obs: Observation) -> tuple[bool, datetime]:
    when = obs.observed_at
    return (when is not None, when or datetime.min.replace(tzinfo=UTC))
