"""The supported-groups registry (data/groups.csv): key-exchange groups by code point."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from core.verify.tls.suites import read_table


@dataclass(frozen=True, slots=True)
class Group:
    code: int
    name: str  # IANA name
    openssl: str | None
    kind: str  # ec, ecx, ffdhe, kem, hybrid, gost, sm2, explicit
    tls12: bool  # usable for (EC)DHE in TLS 1.0-1.2
    tls13: bool  # usable as a TLS 1.3 key_share group
    share_len: int  # TLS 1.3 key_share length, 0 when not fixed or not known


@cache
def registry() -> dict[int, Group]:
    table: dict[int, Group] = {}
    for row in read_table("groups.csv"):
        group = Group(
            code=int(row["code"]),
            name=row["name"],
            openssl=row["openssl"] or None,
            kind=row["kind"],
            tls12=row["tls12"] == "1",
            tls13=row["tls13"] == "1",
            share_len=int(row["share_len"]),
        )
        table[group.code] = group
    return table


def name(code: int) -> str:
    """The IANA name of a group, or its code point when unassigned."""
    group = registry().get(code)
    return group.name if group else f"unassigned_0x{code:04X}"


@cache
def by_name(text: str) -> Group | None:
    """A group by IANA or OpenSSL name, case-insensitively (X25519, prime256v1, P-256...)."""
    key = text.strip().lower()
    aliases = {"p-256": "secp256r1", "p-384": "secp384r1", "p-521": "secp521r1"}
    key = aliases.get(key, key)
    for group in registry().values():
        if key in (group.name.lower(), (group.openssl or "").lower()):
            return group
    return None


@cache
def tls13_groups() -> tuple[Group, ...]:
    return tuple(g for g in registry().values() if g.tls13)


@cache
def tls12_ec_groups() -> tuple[Group, ...]:
    """Groups an ECDHE ServerKeyExchange can name (elliptic curves, not finite fields)."""
    return tuple(g for g in registry().values() if g.tls12 and g.kind in ("ec", "ecx", "gost"))
