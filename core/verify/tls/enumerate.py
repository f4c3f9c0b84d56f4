"""TLS enumeration: every protocol version, suite and group an endpoint accepts.

For each version we offer every suite in the registry, note the server's choice, take it
out and offer the rest again, until the server refuses: n accepted suites cost n + 1
handshakes, whatever the size of the registry. The order the server picked them in is its
preference order if it has one; one more hello with those suites reversed tells whether
it does (a server that follows the client picks our first). Groups are found the same
way (TLS 1.3 from the key_share/HelloRetryRequest, TLS 1.2 from the ServerKeyExchange).

Version probes, group probes and one full handshake by the system OpenSSL (for the
certificate and what a real client negotiates) run concurrently, at most `max_parallel`
connections at a time. Each loop is bounded by the size of its candidate list and the
whole scan by `max_handshakes`; each connection by `timeout`. Whatever a server does
ends up as data in the profile: a refusal, an error outcome, or an anomaly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from core.certificate import CertSummary
from core.verify.sslclient import detection_context
from core.verify.tls import groups, suites
from core.verify.tls.assemble import build_profile, suite_result
from core.verify.tls.handshake import StdlibHandshake, Target, probe, stdlib_handshake
from core.verify.tls.hello import ssl2_client_hello, tls_client_hello
from core.verify.tls.model import ProbeStatus, SuiteResult, TlsProfile, VersionResult
from core.verify.tls.records import (
    KeyExchange,
    Outcome,
    Reply,
    TlsParseError,
    Version,
    Want,
    parse_server_key_exchange,
    version_label,
)
from core.verify.tls.starttls import StartTls

DEFAULT_TIMEOUT = 5.0
DEFAULT_PARALLEL = 4
MAX_HANDSHAKES = 1500  # a full scan of a permissive server takes about 150
CHUNK = 64  # suites per hello when a server refuses the whole list at once

ALL_VERSIONS = tuple(Version)
# Key shares we always send in TLS 1.3 hellos: what nearly every server accepts.
_DEFAULT_SHARES = (29, 23)  # x25519, secp256r1
# Endings of a first hello that may mean "too many suites" rather than "not supported".
# A timeout is not among them: silence costs a full timeout per try, and the one hello
# size known to hang servers (256-511 bytes) is padded away in hello.py.
_CHOKE_OUTCOMES = frozenset({Outcome.CLOSED, Outcome.RESET, Outcome.MALFORMED})
_CHOKE_ALERTS = frozenset(
    {"decode_error", "illegal_parameter", "internal_error", "record_overflow"}
)
_ERROR_OUTCOMES = frozenset(
    {
        Outcome.RESET,
        Outcome.TIMEOUT,
        Outcome.GARBAGE,
        Outcome.MALFORMED,
        Outcome.REFUSED,
        Outcome.UNREACHABLE,
        Outcome.STARTTLS_FAILED,
    }
)


def describe(reply: Reply | None) -> str:
    """One line for how a probe ended: "alert handshake_failure", "timeout: ...", ..."""
    if reply is None:
        return "not sent: handshake budget exhausted"
    if reply.server_hello is not None:
        hello = reply.server_hello
        kind = "hello-retry-request" if hello.is_retry else "server-hello"
        text = f"{kind} {version_label(hello.version)} 0x{hello.cipher_suite:04X}"
        return "; ".join([text, *reply.extra])
    if reply.outcome is Outcome.ALERT and reply.alert is not None:
        return f"alert {reply.alert.name}"
    if reply.outcome is Outcome.GARBAGE:
        return f"garbage: {reply.first_bytes[:8].hex()}"
    detail = f": {reply.detail}" if reply.detail else ""
    return f"{reply.outcome}{detail}"


@dataclass
class _Pick:
    """What one hello got out of the server: its choice, or why there was none."""

    code: int | None
    reply: Reply | None
    anomaly: str | None = None


def judge_suite(reply: Reply | None, version: Version, offered: Sequence[int]) -> _Pick:
    """The suite a reply accepts for `version`, if it accepts one we offered."""
    if reply is None or reply.server_hello is None:
        return _Pick(None, reply)
    hello = reply.server_hello
    if hello.version != version:
        return _Pick(None, reply)  # answered another version: this one is refused
    if hello.cipher_suite not in offered:
        name = _suite(hello.cipher_suite).name
        return _Pick(None, reply, f"{version.label}: chose {name}, which was not offered")
    return _Pick(hello.cipher_suite, reply)


def _suite(code: int) -> suites.Suite:
    return suites.lookup(code) or suites.unknown(code)


@dataclass
class _Tally:
    """Handshakes spent on one version (versions run concurrently: one counter each)."""

    count: int = 0


@dataclass
class _Scan:
    """The state one enumeration shares across its concurrent probes."""

    target: Target
    max_parallel: int
    max_handshakes: int
    handshakes: int = 0
    budget_hit: bool = False
    anomalies: list[str] = field(default_factory=list)
    certificates: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._limit = asyncio.Semaphore(self.max_parallel)

    async def send(
        self,
        hello: bytes,
        want: Want = Want.HELLO,
        *,
        ssl2: bool = False,
        tally: _Tally | None = None,
    ) -> Reply | None:
        """One probe, or None once the handshake budget is spent."""
        if self.handshakes >= self.max_handshakes:
            self.budget_hit = True
            return None
        self.handshakes += 1
        if tally is not None:
            tally.count += 1
        async with self._limit:
            reply = await probe(self.target, hello, want, ssl2=ssl2)
        if reply.certificates and not self.certificates:
            self.certificates.extend(reply.certificates)
        return reply

    def hello(
        self,
        version: Version,
        offer: Sequence[int],
        *,
        groups_offered: Sequence[int] | None = None,
        shares: Sequence[int] = _DEFAULT_SHARES,
    ) -> bytes:
        """A hello for `version` offering `offer`; every group we know unless told."""
        if groups_offered is None:
            tls13 = version == Version.TLS13
            groups_offered = [
                g.code for g in groups.registry().values() if (g.tls13 if tls13 else g.tls12)
            ]
        return tls_client_hello(
            version, offer, sni=self.target.sni, groups=groups_offered, key_share_groups=shares
        )

    # -- suites ---------------------------------------------------------------------------

    async def exhaust(
        self, version: Version, candidates: Sequence[int], tally: _Tally
    ) -> tuple[list[int], _Pick]:
        """Offer, take the server's choice out, offer the rest: until it refuses."""
        accepted: list[int] = []
        remaining = list(candidates)
        last = _Pick(None, None)
        for _ in range(len(candidates)):
            reply = await self.send(self.hello(version, remaining), tally=tally)
            last = judge_suite(reply, version, remaining)
            if last.anomaly:
                self.anomalies.append(last.anomaly)
            if last.code is None:
                break
            accepted.append(last.code)
            remaining.remove(last.code)
            if not remaining:
                break
        return accepted, last

    async def version(self, version: Version) -> VersionResult:
        if version == Version.SSL2:
            return await self.ssl2()
        tally = _Tally()
        pool = suites.tls13_suites() if version == Version.TLS13 else suites.legacy_suites()
        candidates = [s.code for s in pool]
        notes: list[str] = []
        accepted, end = await self.exhaust(version, candidates, tally)
        first_reply = end.reply if not accepted else None
        if not accepted and _chokes(end.reply) and len(candidates) > CHUNK:
            accepted = await self._chunked(version, candidates, tally)
            if accepted:
                notes.append(f"the full list was refused ({describe(end.reply)}); chunked")
        if accepted and end.reply is not None and end.reply.outcome in _ERROR_OUTCOMES:
            notes.append(f"enumeration ended with {describe(end.reply)}")
        preference = await self._preference(version, accepted, notes, tally)
        status, outcome = _status(first_reply, accepted, end)
        ordered = accepted if preference else sorted(accepted)
        return VersionResult(
            version=version.label,
            status=status,
            outcome=outcome,
            suites=tuple(suite_result(_suite(code), version.label) for code in ordered),
            server_preference=preference,
            handshakes=tally.count,
            notes=tuple(notes),
        )

    async def _chunked(
        self, version: Version, candidates: Sequence[int], tally: _Tally
    ) -> list[int]:
        """Enumerate a server that refused the whole list, CHUNK suites at a time.

        The widely deployed suites go in the first chunk: if the server refuses even that
        the same way, the size was not the problem and the version is not there.
        """
        ordered_candidates = sorted(candidates, key=_commonness)
        found: list[int] = []
        for i in range(0, len(ordered_candidates), CHUNK):
            part, end = await self.exhaust(version, ordered_candidates[i : i + CHUNK], tally)
            if i == 0 and not part and _chokes(end.reply):
                return []
            found += part
        if len(found) > 1:  # chunks hide the order across chunks: ask again over the set
            ordered, _ = await self.exhaust(version, found, tally)
            if sorted(ordered) == sorted(found):
                return ordered
        return found

    async def _preference(
        self, version: Version, order: list[int], notes: list[str], tally: _Tally
    ) -> bool | None:
        """Offer the accepted suites reversed: the server's first pick again means it
        imposes its order; our first (its last) means it follows the client."""
        if len(order) < 2:
            return None
        reversed_order = order[::-1]
        reply = await self.send(self.hello(version, reversed_order), tally=tally)
        pick = judge_suite(reply, version, order)
        if pick.code == order[0]:
            return True
        if pick.code == reversed_order[0]:
            return False
        notes.append(f"order check inconclusive: {describe(pick.reply)}")
        return None

    async def ssl2(self) -> VersionResult:
        offered = [s.code for s in suites.sslv2_specs()]
        reply = await self.send(ssl2_client_hello(offered), ssl2=True)
        accepted: list[int] = []
        if reply is not None and reply.ssl2 is not None and reply.ssl2.version == Version.SSL2:
            for spec in reply.ssl2.cipher_specs:
                if spec in offered:
                    accepted.append(spec)
                else:
                    self.anomalies.append(f"SSLv2: listed cipher spec 0x{spec:06X}, not offered")
        if accepted:
            status, outcome = ProbeStatus.ACCEPTED, "ssl2-server-hello"
        elif reply is not None and reply.ssl2 is not None:
            status, outcome = ProbeStatus.REJECTED, "ssl2-server-hello without a common cipher"
        else:
            status, outcome = _status(reply, [], _Pick(None, reply))
        return VersionResult(
            version="SSLv2",
            status=status,
            outcome=outcome,
            suites=tuple(suite_result(_suite(code), "SSLv2") for code in sorted(set(accepted))),
            handshakes=1 if reply is not None else 0,
        )

    # -- groups ---------------------------------------------------------------------------

    async def groups_tls13(self) -> list[int]:
        """TLS 1.3 groups: offer the remaining ones; the key_share of the ServerHello (or
        the group a HelloRetryRequest asks for) is the server's pick."""
        offer = [s.code for s in suites.tls13_suites()]
        remaining = [g.code for g in groups.tls13_groups()]
        found: list[int] = []
        for _ in range(len(remaining)):
            shares = [g for g in _DEFAULT_SHARES if g in remaining]
            hello = self.hello(Version.TLS13, offer, groups_offered=remaining, shares=shares)
            reply = await self.send(hello)
            if reply is None or reply.server_hello is None:
                break
            if reply.server_hello.version != Version.TLS13:
                break
            chosen = reply.server_hello.key_share_group
            if chosen is None or chosen not in remaining:
                self.anomalies.append(
                    f"TLSv1.3: key share for group {_group(chosen)}, which was not offered"
                )
                break
            found.append(chosen)
            remaining.remove(chosen)
            if not remaining:
                break
        return found

    async def groups_ec(self, version: Version) -> list[int]:
        """ECDHE curves for TLS 1.2 and older, read from the ServerKeyExchange."""
        offer = [s.code for s in suites.legacy_suites() if s.ephemeral_ec]
        remaining = [g.code for g in groups.tls12_ec_groups()]
        found: list[int] = []
        for _ in range(len(remaining)):
            reply = await self.send(
                self.hello(version, offer, groups_offered=remaining), Want.KEY_EXCHANGE
            )
            if judge_suite(reply, version, offer).code is None or reply is None:
                break
            chosen = self._key_exchange(reply, finite_field=False)
            if chosen is None:
                break
            if chosen.group is None or chosen.group not in remaining:
                self.anomalies.append(
                    f"{version.label}: ECDHE on group {_group(chosen.group)}, not offered"
                )
                break
            found.append(chosen.group)
            remaining.remove(chosen.group)
            if not remaining:
                break
        return found

    async def dhe_bits(self, version: Version) -> int | None:
        """The size of the finite-field DHE prime the server uses."""
        offer = [s.code for s in suites.legacy_suites() if s.ephemeral_ff]
        reply = await self.send(self.hello(version, offer), Want.KEY_EXCHANGE)
        if judge_suite(reply, version, offer).code is None or reply is None:
            return None
        params = self._key_exchange(reply, finite_field=True)
        return params.dh_bits if params else None

    def _key_exchange(self, reply: Reply, *, finite_field: bool) -> KeyExchange | None:
        if reply.key_exchange is None:
            why = "the server hung up or stalled" if reply.extra else "none was sent"
            self.anomalies.append(f"no ServerKeyExchange after the ServerHello ({why})")
            return None
        try:
            return parse_server_key_exchange(reply.key_exchange, finite_field=finite_field)
        except TlsParseError as exc:
            self.anomalies.append(f"malformed ServerKeyExchange: {exc}")
            return None

    async def certificate(self) -> StdlibHandshake:
        return await stdlib_handshake(self.target, detection_context())

    async def older_key_exchange(
        self, results: Sequence[VersionResult], groups_ec: list[int], dhe: int | None
    ) -> tuple[list[int], int | None]:
        """Curves and DHE size from the newest older version when TLS 1.2 gave none."""
        older = [r for r in results if r.status is ProbeStatus.ACCEPTED]
        older = [r for r in older if _VERSIONS[r.version] < Version.TLS12]
        for result in sorted(older, key=lambda r: _VERSIONS[r.version], reverse=True):
            version = _VERSIONS[result.version]
            taken = [_registered(s) for s in result.suites]
            if not groups_ec and any(s.ephemeral_ec for s in taken):
                groups_ec = await self.groups_ec(version)
            if dhe is None and any(s.ephemeral_ff for s in taken):
                dhe = await self.dhe_bits(version)
        return groups_ec, dhe

    async def certificate_from_hello(self, results: Sequence[VersionResult]) -> bytes | None:
        """The leaf certificate from our own hellos, for servers the system OpenSSL
        cannot complete a handshake with (SSLv3-only, say): one more hello if need be."""
        if not self.certificates:
            legacy = [r for r in results if r.status is ProbeStatus.ACCEPTED]
            legacy = [r for r in legacy if r.version not in ("TLSv1.3", "SSLv2")]
            for result in legacy[-1:]:
                offer = [_registered(s).code for s in result.suites]
                await self.send(self.hello(_VERSIONS[result.version], offer), Want.KEY_EXCHANGE)
        return self.certificates[0] if self.certificates else None


_VERSIONS = {v.label: v for v in Version}


def _group(code: int | None) -> str:
    return "none" if code is None else groups.name(code)


def _commonness(code: int) -> tuple[int, int]:
    """Sort key: suites OpenSSL has a name for (widely implemented), forward secret AEAD
    first."""
    suite = _suite(code)
    known = suite.openssl is not None and suite.registry == "iana"
    return (-(known + suite.forward_secret + suite.aead), code)


def _chokes(reply: Reply | None) -> bool:
    if reply is None or reply.server_hello is not None:
        return False
    if reply.outcome is Outcome.ALERT and reply.alert is not None:
        return reply.alert.name in _CHOKE_ALERTS
    return reply.outcome in _CHOKE_OUTCOMES


def _status(first: Reply | None, accepted: list[int], end: _Pick) -> tuple[ProbeStatus, str]:
    if accepted:
        return ProbeStatus.ACCEPTED, "server-hello"
    reply = first if first is not None else end.reply
    if reply is None:
        return ProbeStatus.SKIPPED, describe(None)
    if end.anomaly:
        return ProbeStatus.ERROR, end.anomaly
    if reply.server_hello is not None:
        return ProbeStatus.REJECTED, f"answered with {version_label(reply.server_hello.version)}"
    if reply.outcome in _ERROR_OUTCOMES:
        return ProbeStatus.ERROR, describe(reply)
    return ProbeStatus.REJECTED, describe(reply)


async def enumerate_tls(
    ip: str,
    port: int,
    *,
    sni: str | None = None,
    starttls: StartTls | str | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (bounds each connection, not the call)
    max_parallel: int = DEFAULT_PARALLEL,
    max_handshakes: int = MAX_HANDSHAKES,
    versions: Iterable[Version] = ALL_VERSIONS,
    cert: CertSummary | None = None,
) -> TlsProfile:
    """Enumerate one endpoint's TLS: versions, suites and order, groups, certificate, grades.

    `sni` is sent in every hello (none for a bare IP). `starttls` names the plaintext
    protocol to upgrade first (smtp, imap, pop3, ftp, postgres). `timeout` bounds each
    connection; `max_parallel` the connections open at once (the per-host limit);
    `max_handshakes` the whole scan. `cert` is the certificate the caller already read
    (the verifier's): it is reused, not fetched and parsed again. Never raises for
    anything the server does.
    """
    started = time.monotonic()
    protocol = StartTls(starttls) if starttls is not None else None
    target = Target(ip, port, sni=sni, starttls=protocol, timeout=timeout)
    scan = _Scan(target, max(1, max_parallel), max_handshakes)
    wanted = sorted(set(versions))
    async with asyncio.TaskGroup() as tg:
        version_tasks = [tg.create_task(scan.version(v)) for v in wanted]
        tls13_task = tg.create_task(scan.groups_tls13()) if Version.TLS13 in wanted else None
        ec_task = tg.create_task(scan.groups_ec(Version.TLS12)) if Version.TLS12 in wanted else None
        dhe_task = tg.create_task(scan.dhe_bits(Version.TLS12)) if Version.TLS12 in wanted else None
        std_task = tg.create_task(scan.certificate())
    results = [task.result() for task in version_tasks]
    groups13 = tls13_task.result() if tls13_task else []
    groups_ec = ec_task.result() if ec_task else []
    dhe = dhe_task.result() if dhe_task else None
    std = std_task.result()

    groups_ec, dhe = await scan.older_key_exchange(results, groups_ec, dhe)
    if cert is None:
        der = std.der or await scan.certificate_from_hello(results)
        cert = _summarize(der) if der else None
    return build_profile(
        target,
        results,
        groups13=groups13,
        groups_ec=groups_ec,
        dhe_bits=dhe,
        stdlib=std,
        cert=cert,
        anomalies=scan.anomalies,
        handshakes=scan.handshakes + 1,  # the system OpenSSL's handshake counts too
        budget_hit=scan.budget_hit,
        elapsed=time.monotonic() - started,
    )


def _summarize(der: bytes) -> CertSummary | None:
    # cryptography is imported on first use, not with this module: the pipeline hands
    # over the verifier's certificate and never needs it, and `python -m core.verify.tls`
    # starts its handshakes without waiting for that import.
    from core.verify.certificates import summarize_certificate

    return summarize_certificate(der)


def _registered(result: SuiteResult) -> suites.Suite:
    return _suite(int(result.code, 16))
