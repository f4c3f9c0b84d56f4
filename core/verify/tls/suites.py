"""The cipher-suite registry (data/suites.csv) as typed, cached lookups.

The data file holds every IANA cipher suite with its components and OpenSSL name (its
header gives the provenance). Enumeration offers suites from here rather than from what
the local OpenSSL knows, so a server accepting a suite OpenSSL 3 dropped (RC4, DES,
3DES, SEED, IDEA, static DH) is still seen. Loaded on first use, never at import.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).with_name("data")
"""The package's data files. A path, not importlib.resources: that import alone costs
about 5 % of `python -m core.verify.tls` on a fast server, and portintel is always
installed as files (pip unpacks wheels), never run from a zip."""

LEGACY = "legacy"  # SSLv3 to TLS 1.2
TLS13 = "tls13"
SSLV2 = "sslv2"
SCSV = "scsv"

# Key exchanges whose keys are ephemeral: a later server key compromise does not expose
# past sessions. TLS 1.3 ("any") always is; ECCPWD (RFC 8492) derives a fresh secret.
_FORWARD_SECRET_KX = frozenset({"DHE", "ECDHE", "any", "ECCPWD"})


@dataclass(frozen=True, slots=True)
class Suite:
    """One cipher suite (or SSLv2 cipher spec) and its components."""

    code: int
    name: str  # the IANA name (SSL_CK_* for SSLv2 specs)
    openssl: str | None
    protocol: str  # legacy, tls13, sslv2, scsv
    kx: str
    auth: str
    cipher: str
    mac: str
    export: bool
    registry: str  # iana, reserved, sslv2

    @property
    def hex(self) -> str:
        width = 6 if self.protocol == SSLV2 else 4
        return f"0x{self.code:0{width}X}"

    @property
    def forward_secret(self) -> bool:
        return self.kx in _FORWARD_SECRET_KX

    @property
    def aead(self) -> bool:
        return self.mac == "AEAD"

    @property
    def ephemeral_ec(self) -> bool:
        """Its ServerKeyExchange names an elliptic-curve group (ECDHE, or anonymous ECDH)."""
        return self.protocol == LEGACY and (
            self.kx == "ECDHE" or (self.kx == "ECDH" and self.auth == "anon")
        )

    @property
    def ephemeral_ff(self) -> bool:
        """Its ServerKeyExchange carries finite-field DH parameters (DHE, or anonymous DH)."""
        return self.protocol == LEGACY and (
            (self.kx == "DHE" and self.auth != "PSK") or (self.kx == "DH" and self.auth == "anon")
        )


def read_table(name: str) -> Iterator[dict[str, str]]:
    """Rows of one of the package's CSV data files; `#` lines are its provenance notes."""
    text = (DATA_DIR / name).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    yield from csv.DictReader(io.StringIO("\n".join(lines)))


@cache
def registry() -> dict[int, Suite]:
    """Every suite by code point, in code point order (SSLv2 specs last)."""
    table: dict[int, Suite] = {}
    for row in read_table("suites.csv"):
        suite = Suite(
            code=int(row["code"], 16),
            name=row["iana_name"],
            openssl=row["openssl_name"] or None,
            protocol=row["protocol"],
            kx=row["kx"],
            auth=row["auth"],
            cipher=row["cipher"],
            mac=row["mac"],
            export=row["export"] == "1",
            registry=row["registry"],
        )
        table[suite.code] = suite
    return table


def lookup(code: int) -> Suite | None:
    return registry().get(code)


@cache
def _by_name() -> dict[str, Suite]:
    names: dict[str, Suite] = {}
    for suite in registry().values():
        names.setdefault(suite.name, suite)
        if suite.openssl:
            names.setdefault(suite.openssl, suite)
    return names


def by_name(name: str) -> Suite | None:
    """A suite by its IANA or OpenSSL name (SSLv2 specs never shadow TLS suites)."""
    return _by_name().get(name)


@cache
def legacy_suites() -> tuple[Suite, ...]:
    """Suites an SSLv3 to TLS 1.2 ClientHello offers: all but TLS 1.3, SSLv2 and SCSVs."""
    return tuple(s for s in registry().values() if s.protocol == LEGACY)


@cache
def tls13_suites() -> tuple[Suite, ...]:
    return tuple(s for s in registry().values() if s.protocol == TLS13)


@cache
def sslv2_specs() -> tuple[Suite, ...]:
    return tuple(s for s in registry().values() if s.protocol == SSLV2)


def unknown(code: int) -> Suite:
    """A stand-in for a code point the registry does not hold (a server may pick one)."""
    return Suite(
        code=code,
        name=f"UNASSIGNED_0x{code:04X}",
        openssl=None,
        protocol=LEGACY,
        kx="",
        auth="",
        cipher="",
        mac="",
        export=False,
        registry="unassigned",
    )
