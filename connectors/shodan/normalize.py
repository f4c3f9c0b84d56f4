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
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from connectors.shodan.models import HOST, SEARCH_PAGE, Banner, Cert, Host, Ssl
from core.errors import SchemaError
from core.models import (
    BANNER_CAP,
    Evidence,
    Kind,
    Observation,
    RawRecord,
    Transport,
    Vuln,
)
from core.naming import canonical_service

SOURCE = "shodan"
TRANSPORT_UNKNOWN = "transport-unknown"
HOST_WIDE_TAGS = frozenset({"cdn", "honeypot"})

_TIMESTAMP_FORMATS = ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S")
_CERT_DATE_FORMAT = "%Y%m%d%H%M%SZ"
# The exact layouts above, digits for digits (ASCII only: \d would take any script's).
_SHODAN_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{6})?")
_CERT_TIME = re.compile(r"[0-9]{14}Z")
_TRANSPORTS = {t.value: t for t in Transport}
_NEVER = datetime.min.replace(tzinfo=UTC)


def normalize(raw: RawRecord) -> list[Observation]:
    """Every open-port claim in one Shodan record, newest per (ip, port, transport)."""
    try:
        if raw.endpoint_kind == "host":
            observations = _host(HOST.validate_python(raw.payload), raw)
        elif raw.endpoint_kind == "search":
            page = SEARCH_PAGE.validate_python(raw.payload)
            observations = [_banner(b, raw) for b in page["matches"]]
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
    banners = host.get("data", [])
    banner_cves = {cve.upper() for banner in banners for cve in banner.get("vulns", {})}
    # Host-level CVE ids that no banner explains cannot be pinned to a port: every
    # observation of the host carries them (without CVSS), as InternetDB's do.
    host_cves = {v.upper() for v in host.get("vulns", [])}
    orphans = tuple(Vuln(cve=c) for c in sorted(host_cves - banner_cves))
    observations = [_banner(b, raw, host=host, extra_vulns=orphans) for b in banners]
    seen_ports = {b["port"] for b in banners}
    for port in sorted(set(host.get("ports", [])) - seen_ports):
        observations.append(
            _validate(
                {
                    "endpoint": {"ip": host["ip_str"], "port": port, "transport": Transport.TCP},
                    "source": SOURCE,
                    "kind": Kind.PASSIVE,
                    "evidence": Evidence.WEAK,
                    # The host's last_update is not a sighting of this port.
                    "observed_at": None,
                    "fetched_at": raw.fetched_at,
                    "vulns": orphans,
                    "hostnames": _unique(host.get("hostnames", [])),
                    "tags": _unique([*_host_wide(host), TRANSPORT_UNKNOWN]),
                    "org": host.get("org"),
                    "asn": _asn(host.get("asn")),
                }
            )
        )
    return observations


def _banner(
    banner: Banner, raw: RawRecord, *, host: Host | None = None, extra_vulns: Sequence[Vuln] = ()
) -> Observation:
    http, ssl, cloud, meta = (
        banner.get("http"),
        banner.get("ssl"),
        banner.get("cloud"),
        banner.get("_shodan"),
    )
    banner_tags = banner.get("tags", [])
    tags = [*banner_tags, *_host_wide(host)] if host is not None else list(banner_tags)
    if http and http.get("waf"):
        tags.append(f"waf:{http['waf']}")
    if cloud and cloud.get("provider"):
        tags.append(f"cloud:{cloud['provider']}")
    vulns: dict[str, Vuln | dict[str, Any]] = {}
    for cve, vuln in banner.get("vulns", {}).items():
        vulns[cve.upper()] = {"cve": cve.upper(), "cvss": vuln.get("cvss")}
    for orphan in extra_vulns:
        vulns.setdefault(orphan.cve, orphan)
    hostnames = banner.get("hostnames", [])
    if host is not None:
        hostnames = [*hostnames, *host.get("hostnames", [])]
    transport = banner["transport"].lower()
    data = banner.get("data")
    org, asn = banner.get("org"), banner.get("asn")
    if host is not None:  # the banner's own, else the host's
        org, asn = org or host.get("org"), asn or host.get("asn")
    elif not org:
        org = None
    # One validation of plain values (nested ones included) in pydantic's core: building
    # each nested model on its own costs a Python call and a validation apiece.
    return _validate(
        {
            "endpoint": {
                "ip": banner["ip_str"],
                "port": banner["port"],
                # Looked up, not constructed: Transport(...) is called only to word the error.
                "transport": _TRANSPORTS.get(transport) or Transport(transport),
            },
            "source": SOURCE,
            "kind": Kind.PASSIVE,
            "observed_at": _timestamp(banner["timestamp"]),
            "fetched_at": raw.fetched_at,
            "service": canonical_service(meta.get("module") if meta else None),
            "product": banner.get("product") or None,
            "version": banner.get("version") or None,
            "cpes": banner.get("cpe23") or banner.get("cpe", []),
            "banner": data[:BANNER_CAP] if data else None,
            "http_server": http.get("server") if http else None,
            "http_title": http.get("title") if http else None,
            "http_status": http.get("status") if http else None,
            # `is not None`: an empty ssl object still says the port speaks TLS.
            "tls": _tls(ssl, self_signed_tag=_has_tag(banner_tags, "self-signed"))
            if ssl is not None
            else None,
            "vulns": [vulns[cve] for cve in sorted(vulns)] if vulns else (),
            "hostnames": _unique(hostnames),
            "tags": _unique(tags),
            "org": org,
            "asn": _asn(asn),
        }
    )


def _host_wide(host: Host | None) -> list[str]:
    """Host-level tags are the union of the banners' (a "database" tag belongs to one port):
    only the ones that describe the whole address are carried onto each of its ports."""
    if host is None:
        return []
    return [t for t in host.get("tags", []) if t.strip().lower() in HOST_WIDE_TAGS]


def _tls(ssl: Ssl, *, self_signed_tag: bool) -> dict[str, Any]:
    """The TlsSummary's values (validated with the Observation they belong to)."""
    cipher, cert = ssl.get("cipher"), ssl.get("cert")
    return {
        "versions": [v for v in ssl.get("versions", []) if v and not v.startswith("-")],
        "cipher": cipher.get("name") if cipher else None,
        "cert": _cert(cert, self_signed_tag) if cert is not None else None,
    }


def _cert(cert: Cert, self_signed_tag: bool) -> dict[str, Any]:
    """The CertSummary's values."""
    subject_parts, issuer_parts = cert.get("subject", {}), cert.get("issuer", {})
    subject, issuer = _dn(subject_parts), _dn(issuer_parts)
    if self_signed_tag:
        self_signed: bool | None = True
    elif subject and issuer:
        self_signed = subject_parts == issuer_parts
    else:
        self_signed = None
    san = next(
        (
            e.get("data")
            for e in cert.get("extensions", [])
            if e.get("name") == "subjectAltName" and e.get("data")
        ),
        None,
    )
    pubkey, fingerprint = cert.get("pubkey"), cert.get("fingerprint")
    sha256 = fingerprint.get("sha256") if fingerprint else None
    return {
        "subject": subject,
        "issuer": issuer,
        "sans": _sans(san) if san else (),
        "not_before": _cert_date(cert.get("issued")),
        "not_after": _cert_date(cert.get("expires")),
        "key_type": pubkey.get("type") if pubkey else None,
        "key_bits": pubkey.get("bits") if pubkey else None,
        "sha256": sha256.lower() if sha256 else None,
        "self_signed": self_signed,
    }


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
    # Shodan's own layout goes to fromisoformat (C, some 40x cheaper than strptime); the
    # pattern admits nothing strptime would read differently. Anything else takes the
    # strptime formats, which accept and reject exactly as they always did.
    if _SHODAN_TIME.fullmatch(value):
        try:
            return datetime.fromisoformat(value + "+00:00")
        except ValueError:
            pass  # 2026-02-30 and the like: strptime words the error
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
    if _CERT_TIME.fullmatch(value):  # YYYYMMDDHHMMSSZ, read by slicing (strptime is slow)
        try:
            return datetime(
                int(value[0:4]),
                int(value[4:6]),
                int(value[6:8]),
                int(value[8:10]),
                int(value[10:12]),
                int(value[12:14]),
                tzinfo=UTC,
            )
        except ValueError:
            pass  # out of range: let strptime decide, as before
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


_OBSERVATION = Observation.__pydantic_validator__


def _validate(values: dict[str, Any]) -> Observation:
    # The model's validator itself: model_validate only wraps it in Python (a few per cent
    # of a Shodan import, a million of these per million lines).
    observation: Observation = _OBSERVATION.validate_python(values)
    return observation


def _newest(observations: list[Observation]) -> list[Observation]:
    """One observation per endpoint: the newest (a claim with a time beats one without)."""
    if len(observations) < 2:  # one banner per record: what a Shodan download holds
        return observations
    best: dict[tuple[str, int, Transport], Observation] = {}
    for obs in observations:
        endpoint = obs.endpoint
        # Keyed by plain values: hashing the model runs Python code per field.
        key = (endpoint.ip, endpoint.port, endpoint.transport)
        current = best.get(key)
        if current is None or _rank(obs) > _rank(current):
            best[key] = obs
    return list(best.values())


def _rank(obs: Observation) -> tuple[bool, datetime]:
    when = obs.observed_at
    return (when is not None, when or _NEVER)
