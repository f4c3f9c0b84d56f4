"""A TlsProfile's JSON: what the store keeps and `python -m core.verify.tls --json` prints."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from core.certificate import CertSummary
from core.risk.grading import Grade
from core.verify.tls.model import (
    MozillaVerdict,
    ProbeStatus,
    SuiteResult,
    TlsProfile,
    VersionResult,
    profile_from_json,
    profile_json,
)

SUITE = SuiteResult(
    code="0xC02F",
    name="TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    openssl_name="ECDHE-RSA-AES128-GCM-SHA256",
    version="TLSv1.2",
    kx="ECDHE",
    auth="RSA",
    cipher="AES_128_GCM",
    mac="AEAD",
    grade=Grade.RECOMMENDED,
)
PROFILE = TlsProfile(
    ip="192.0.2.7",
    port=443,
    outcome="ok",
    versions=("TLSv1.2",),
    protocols=(
        VersionResult(
            version="TLSv1.2",
            status=ProbeStatus.ACCEPTED,
            outcome="server-hello",
            suites=(SUITE,),
            handshakes=2,
        ),
    ),
    groups_tls12=("x25519",),
    cert=CertSummary(
        subject="CN=www.example.com",
        sans=("www.example.com",),
        not_after=datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC),
        key_type="RSA",
        key_bits=2048,
    ),
    grade=Grade.RECOMMENDED,
    mozilla=(MozillaVerdict(profile="modern", guidelines="5.7", compliant=False),),
    elapsed=0.05,
)

# A profile as portintel stored it while TlsProfile was a pydantic model (its
# model_dump_json): stores written then must still read.
PYDANTIC_ERA = (
    '{"ip":"192.0.2.7","port":443,"sni":null,"starttls":null,"outcome":"ok",'
    '"versions":["TLSv1.2"],"protocols":[{"version":"TLSv1.2","status":"accepted",'
    '"outcome":"server-hello","suites":[{"code":"0xC02F",'
    '"name":"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",'
    '"openssl_name":"ECDHE-RSA-AES128-GCM-SHA256","version":"TLSv1.2","kx":"ECDHE",'
    '"auth":"RSA","cipher":"AES_128_GCM","mac":"AEAD","grade":"recommended","reasons":[]}],'
    '"server_preference":null,"handshakes":2,"notes":[]}],"groups":[],'
    '"groups_tls12":["x25519"],"dhe_bits":null,"negotiated":null,"negotiated_version":null,'
    '"cert":{"subject":"CN=www.example.com","issuer":null,"sans":["www.example.com"],'
    '"not_before":null,"not_after":"2027-01-02T03:04:05Z","key_type":"RSA","key_bits":2048,'
    '"sha256":null,"self_signed":null},"grade":"recommended","grade_reasons":[],'
    '"mozilla":[{"profile":"modern","guidelines":"5.7","compliant":false,"reasons":[],'
    '"notes":[]}],"anomalies":[],"handshakes":0,"elapsed":0.05}'
)


def test_json_round_trip_keeps_types() -> None:
    back = profile_from_json(profile_json(PROFILE))
    assert back == PROFILE
    assert back.protocols[0].status is ProbeStatus.ACCEPTED
    assert back.cert is not None and PROFILE.cert is not None
    assert back.cert.not_after == PROFILE.cert.not_after
    assert isinstance(back.protocols, tuple) and isinstance(back.cert.sans, tuple)


def test_what_the_pydantic_model_wrote_still_reads() -> None:
    assert profile_from_json(PYDANTIC_ERA) == PROFILE
    assert profile_json(PROFILE) == PYDANTIC_ERA  # and is written the same way


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"port":443', '"port":443,"colour":"red"'),  # an unknown field
        ('"status":"accepted"', '"status":"maybe"'),  # not a ProbeStatus
        ('"key_bits":2048', '"key_bits":2048,"owner":"x"'),  # an unknown certificate field
        ('"port":443', '"port":"https"'),  # not a number
    ],
)
def test_bad_json_is_refused(old: str, new: str) -> None:
    with pytest.raises(ValueError, match="validation error"):
        profile_from_json(PYDANTIC_ERA.replace(old, new, 1))


def test_profiles_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        PROFILE.port = 8443  # type: ignore[misc]
