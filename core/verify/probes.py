"""Loading the probe/match database (core/verify/data/probes.toml) into typed, compiled rules.

The database is data, not code: what to send (probes) and how to read the answers
(matches). This module only parses and validates it, so a typo in the file fails loudly at
load time with the rule's id, not silently during a scan. The file's header documents the
format.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.models import Transport

DATABASE = Path(__file__).parent / "data" / "probes.toml"

_PROBE_KEYS = {
    "name",
    "transport",
    "payload",
    "payload_hex",
    "pad_to",
    "ports",
    "always",
    "tls",
    "services",
}
_MATCH_KEYS = {
    "id",
    "probe",
    "pattern",
    "service",
    "product",
    "version",
    "cpe",
    "extra",
    "soft",
    "tls_hint",
    "passive",
    "ports",
}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|[rnt0\\])")
_SIMPLE_ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\"}
_GROUP_REF = re.compile(r"\$(\d)")


@dataclass(frozen=True, slots=True)
class Probe:
    """Something sent on a fresh connection (or datagram) to make a service answer."""

    name: str
    transport: Transport
    payload: bytes  # may contain the {host} placeholder, filled by `render`
    ports: frozenset[int] = frozenset()
    always: bool = False  # first wave on every port
    tls: bool = False  # also sent inside TLS
    services: tuple[str, ...] = ()

    def render(self, host: str) -> bytes:
        """The bytes to send, with the Host/SNI name filled in."""
        return self.payload.replace(b"{host}", host.encode("ascii", "replace"))

    def likely_on(self, port: int) -> bool:
        return self.always or port in self.ports


@dataclass(frozen=True, slots=True)
class Rule:
    """One match: a pattern over a response and what it tells when it hits."""

    id: str
    pattern: re.Pattern[str]
    service: str
    probes: frozenset[str] | None = None  # None: any probe's response
    product: str | None = None  # templates with $N capture references
    version: str | None = None
    cpe: str | None = None  # part:vendor:product
    extra: str | None = None
    soft: bool = False
    tls_hint: bool = False
    passive: bool = True
    ports: frozenset[int] = field(default_factory=frozenset)

    def applies(self, probe: str | None, port: int | None) -> bool:
        """Whether this rule may judge a response to `probe` on `port` (None: unknown)."""
        if self.probes is not None and probe not in self.probes:
            return False
        return not self.ports or port in self.ports


@dataclass(frozen=True, slots=True)
class ProbeDatabase:
    probes: tuple[Probe, ...]
    rules: tuple[Rule, ...]

    def probe(self, name: str) -> Probe:
        for probe in self.probes:
            if probe.name == name:
                return probe
        raise KeyError(name)

    def for_transport(self, transport: Transport) -> tuple[Probe, ...]:
        return tuple(p for p in self.probes if p.transport is transport)


def decode_payload(text: str) -> bytes:
    """Our payload escapes (\\r \\n \\t \\0 \\\\ \\xNN) to bytes; other text is taken as UTF-8.

    TOML 1.0 basic strings have no \\x escape, so payloads are literal strings decoded here.
    """
    out = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(text):
        out += text[pos : m.start()].encode()
        code = m.group(1)
        out += bytes([int(code[1:], 16)]) if code[0] == "x" else _SIMPLE_ESCAPES[code]
        pos = m.end()
    out += text[pos:].encode()
    return bytes(out)


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{DATABASE.name}: {where}: {message}")


def _ports(raw: Any, where: str) -> frozenset[int]:
    if not isinstance(raw, list) or not all(isinstance(p, int) and 0 < p < 65536 for p in raw):
        raise _fail(where, "ports must be a list of port numbers")
    return frozenset(raw)


def _probe(raw: dict[str, Any]) -> Probe:
    name = raw.get("name")
    where = f"probe {name!r}"
    if not isinstance(name, str) or not name:
        raise _fail(where, "a probe needs a name")
    if unknown := set(raw) - _PROBE_KEYS:
        raise _fail(where, f"unknown keys {sorted(unknown)}")
    if ("payload" in raw) == ("payload_hex" in raw):
        raise _fail(where, "give exactly one of payload and payload_hex")
    try:
        payload = (
            decode_payload(raw["payload"])
            if "payload" in raw
            else bytes.fromhex(raw["payload_hex"])
        )
        transport = Transport(raw.get("transport", "tcp"))
    except ValueError as exc:
        raise _fail(where, str(exc)) from exc
    pad_to = int(raw.get("pad_to", 0))
    payload = payload.ljust(pad_to, b"\0")
    return Probe(
        name=name,
        transport=transport,
        payload=payload,
        ports=_ports(raw.get("ports", []), where),
        always=bool(raw.get("always", False)),
        tls=bool(raw.get("tls", False)),
        services=tuple(raw.get("services", ())),
    )


def _rule(raw: dict[str, Any], probe_names: set[str]) -> Rule:
    rule_id = raw.get("id")
    where = f"match {rule_id!r}"
    if not isinstance(rule_id, str) or not rule_id:
        raise _fail(where, "a match needs an id")
    if unknown := set(raw) - _MATCH_KEYS:
        raise _fail(where, f"unknown keys {sorted(unknown)}")
    for key in ("pattern", "service"):
        if not isinstance(raw.get(key), str):
            raise _fail(where, f"{key} is required")
    try:
        pattern = re.compile(raw["pattern"])
    except re.error as exc:
        raise _fail(where, f"pattern does not compile: {exc}") from exc
    probe = raw.get("probe", "*")
    probes = None if probe == "*" else frozenset([probe] if isinstance(probe, str) else probe)
    if probes is not None and (missing := probes - probe_names):
        raise _fail(where, f"names unknown probes {sorted(missing)}")
    templates = {k: raw.get(k) for k in ("product", "version", "cpe", "extra")}
    for key, template in templates.items():
        refs = [int(g) for g in _GROUP_REF.findall(template or "")]
        if any(g > pattern.groups for g in refs):
            raise _fail(where, f"{key} refers to a group the pattern does not have")
    cpe = templates["cpe"]
    if cpe is not None and len(cpe.split(":")) != 3:
        raise _fail(where, "cpe must be part:vendor:product")
    return Rule(
        id=rule_id,
        pattern=pattern,
        service=raw["service"],
        probes=probes,
        product=templates["product"],
        version=templates["version"],
        cpe=cpe,
        extra=templates["extra"],
        soft=bool(raw.get("soft", False)),
        tls_hint=bool(raw.get("tls_hint", False)),
        passive=bool(raw.get("passive", True)),
        ports=_ports(raw.get("ports", []), where),
    )


def parse_database(text: str) -> ProbeDatabase:
    """Parse and validate database text (the shipped file, or a test's own)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _fail("syntax", str(exc)) from exc
    probes = tuple(_probe(raw) for raw in data.get("probe", []))
    names = [p.name for p in probes]
    if len(set(names)) != len(names):
        raise _fail("probes", "duplicate probe names")
    rules = tuple(_rule(raw, set(names)) for raw in data.get("match", []))
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise _fail("matches", "duplicate match ids")
    return ProbeDatabase(probes=probes, rules=rules)


@cache
def load_database() -> ProbeDatabase:
    """The shipped database, parsed once per process."""
    return parse_database(DATABASE.read_text(encoding="utf-8"))
