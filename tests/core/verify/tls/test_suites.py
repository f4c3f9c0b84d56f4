"""The suite and group registries: complete, consistent, and in agreement with OpenSSL."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from core.verify.tls import groups, suites


def test_registry_holds_the_iana_list_and_the_extras() -> None:
    table = suites.registry()
    iana = [s for s in table.values() if s.registry == "iana"]
    # 352 code points assigned by IANA (the two signalling values and TLS 1.3 AEGIS
    # included), 7 reserved EXPORT1024 suites, 8 SSLv2 specs.
    assert len(iana) == 352
    assert sum(s.registry == "reserved" for s in table.values()) == 7
    assert len(suites.sslv2_specs()) == 8
    assert len({s.name for s in table.values()}) == len(table)  # names are unique
    assert table[0x002F].name == "TLS_RSA_WITH_AES_128_CBC_SHA"
    assert table[0xC02F].openssl == "ECDHE-RSA-AES128-GCM-SHA256"
    assert table[0x000A].openssl == "DES-CBC3-SHA"  # gone from OpenSSL 3, still named


def test_offer_lists_split_by_protocol() -> None:
    legacy = {s.code for s in suites.legacy_suites()}
    tls13 = {s.code for s in suites.tls13_suites()}
    assert {0x1301, 0x1302, 0x1303, 0x1304, 0x1305, 0x00C6, 0xC0B4, 0xC103} <= tls13
    assert not legacy & tls13
    assert 0x00FF not in legacy and 0x5600 not in legacy  # signalling values are not offered
    assert 0xC02F in legacy and 0x0005 in legacy and 0x0062 in legacy


@pytest.mark.parametrize(
    ("code", "kx", "auth", "cipher", "mac", "fs", "aead"),
    [
        (0xC02F, "ECDHE", "RSA", "AES_128_GCM", "AEAD", True, True),
        (0x002F, "RSA", "RSA", "AES_128_CBC", "SHA", False, False),
        (0x0017, "DH", "anon", "RC4_40", "MD5", False, False),
        (0xC0AA, "DHE", "PSK", "AES_128_CCM_8", "AEAD", True, True),
        (0x1303, "any", "any", "CHACHA20_POLY1305", "AEAD", True, True),
        (0xC0B4, "any", "any", "NULL", "SHA256", True, False),
    ],
)
def test_components(
    code: int, kx: str, auth: str, cipher: str, mac: str, fs: bool, aead: bool
) -> None:
    suite = suites.registry()[code]
    assert (suite.kx, suite.auth, suite.cipher, suite.mac) == (kx, auth, cipher, mac)
    assert (suite.forward_secret, suite.aead) == (fs, aead)


def test_export_flag_and_key_exchange_kinds() -> None:
    table = suites.registry()
    assert table[0x0003].export and table[0x0062].export and not table[0x000A].export
    assert table[0xC02F].ephemeral_ec and not table[0xC02F].ephemeral_ff
    assert table[0x009E].ephemeral_ff and table[0xC018].ephemeral_ec  # DHE; anonymous ECDH
    assert not table[0x00AA].ephemeral_ff  # DHE_PSK sends a PSK hint first: not read


def test_lookup_by_either_name() -> None:
    assert suites.by_name("ECDHE-RSA-AES256-GCM-SHA384") is suites.registry()[0xC030]
    assert suites.by_name("TLS_AES_128_GCM_SHA256") is suites.registry()[0x1301]
    assert suites.by_name("RC4-MD5") is suites.registry()[0x0004]  # TLS wins over SSLv2
    assert suites.unknown(0x1234).name == "UNASSIGNED_0x1234"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_every_suite_the_local_openssl_knows_is_registered_under_the_same_names() -> None:
    out = subprocess.run(
        ["openssl", "ciphers", "-V", "-stdname", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    rows = re.findall(r"0x(..),0x(..) - (\S+)\s+- (\S+)", out)
    assert len(rows) > 100
    for high, low, iana, openssl in rows:
        suite = suites.registry()[int(high + low, 16)]
        assert (suite.name, suite.openssl) == (iana, openssl)


def test_groups_registry() -> None:
    table = groups.registry()
    assert table[29].name == "x25519" and table[23].openssl == "prime256v1"
    assert groups.by_name("P-256") is table[23]
    assert groups.by_name("X25519") is table[29]
    assert groups.name(0x9999) == "unassigned_0x9999"
    tls13 = {g.code for g in groups.tls13_groups()}
    assert {23, 24, 25, 29, 30, 256, 4588} <= tls13 and 1 not in tls13
    ec = {g.code for g in groups.tls12_ec_groups()}
    assert {1, 23, 29} <= ec and 256 not in ec and 4588 not in ec
