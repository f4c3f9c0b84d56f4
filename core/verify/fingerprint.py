"""The fingerprinting engine: what service, product and version answers on an open port.

Probes run in parallel, each on its own connection, rather than one after another with a
long wait for a greeting (nmap -sV waits 6 s on every port that does not speak first). The
first wave is the null probe (wait for a greeting), HTTP GET, a TLS handshake and the
protocol probes for services likely on that port; the first decisive match wins and the
rest are cancelled. If nothing decisive came back once the first wave has answered (or
after `escalate_after`), every other probe goes out at once: a silent service on an
unusual port costs one more round trip, not a sequence of timeouts. A soft match (the
service is known, more may be learnt) launches that service's probes straight away.

When the TLS handshake succeeds, the plain probes are dropped and the same waves run inside
TLS (SNI = the first known hostname); the detection connection itself becomes the null
probe inside TLS.

Hostile services are ordinary input: every read has a deadline, every response a byte cap
(we ask the socket for at most what is left of the cap), the endpoint a total deadline,
and each probe's outcome is recorded as data. See tests/core/verify/test_hostile.py.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from core.models import (
    BANNER_CAP,
    Endpoint,
    Frozen,
    Kind,
    Observation,
    TlsSummary,
    Transport,
    utcnow,
)
from core.verify.matcher import Match, match_datagram, match_response, parse_http, safe_text
from core.verify.probes import Probe, ProbeDatabase, load_database
from core.verify.tlsinfo import TlsStream, cert_expired

READ_CAP = 8 * BANNER_CAP
"""Most bytes read from one probe's connection; what is stored is capped at BANNER_CAP."""

_RECV_CHUNK = 4096


@dataclass(frozen=True, slots=True)
class Options:
    """Deadlines and limits for one endpoint. Every wait is bounded by `timeout` overall."""

    timeout: float = 5.0  # the whole endpoint
    connect_timeout: float = 2.0
    greeting_wait: float = 2.0  # null probe: how long a service may take to speak first
    reply_wait: float = 2.0  # other probes: time to the first byte of an answer
    tls_wait: float = 3.0  # the TLS handshake
    linger: float = 0.4  # after some data, how long to wait for more
    escalate_after: float = 0.8  # start the second wave if nothing decisive by then
    read_cap: int = READ_CAP
    parallel: int = 12  # connections at once to this endpoint


class ProbeResult(Frozen):
    """What one probe saw: its outcome as data (zgrab-style status), never an exception."""

    probe: str
    tls: bool = False  # sent inside TLS
    outcome: str  # ok, closed, io-timeout, refused, reset, connect-timeout, tls-*, cancelled
    received: int = 0  # bytes of application data read
    rule: str | None = None  # the rule that matched its answer, if any


class MatchEvidence(Frozen):
    probe: str
    rule: str
    tls: bool = False
    excerpt: str  # sanitized, short


class Fingerprint(Frozen):
    """What we learnt about one endpoint by probing it."""

    service: str | None = None  # canonical name (core.naming)
    product: str | None = None
    version: str | None = None  # only what the service revealed; never a guess
    cpe: str | None = None
    extra: str | None = None
    evidence: MatchEvidence | None = None
    banner: str | None = None  # sanitized, at most BANNER_CAP characters
    http_status: int | None = None
    http_server: str | None = None
    http_title: str | None = None
    tls: TlsSummary | None = None
    tls_suspected: bool = False  # answered like TLS but no handshake completed
    probes: tuple[ProbeResult, ...] = ()

    @property
    def cert_expired(self) -> bool | None:
        if self.tls is None or self.tls.cert is None:
            return None
        return cert_expired(self.tls.cert)

    def to_observation(
        self,
        endpoint: Endpoint,
        *,
        fetched_at: datetime | None = None,
        hostnames: Sequence[str] = (),
    ) -> Observation:
        """The verifier's claim about `endpoint`, for the store and reconciliation."""
        now = fetched_at or utcnow()
        return Observation(
            endpoint=endpoint,
            source="verifier",
            kind=Kind.ACTIVE,
            observed_at=now,
            fetched_at=now,
            service=self.service,
            product=self.product,
            version=self.version,
            cpes=(self.cpe,) if self.cpe else (),
            banner=self.banner,
            http_server=self.http_server,
            http_title=self.http_title,
            http_status=self.http_status,
            tls=self.tls,
            hostnames=tuple(hostnames),
        )


class _Stream(Protocol):
    async def send(self, data: bytes) -> None: ...
    async def recv(self, max_bytes: int) -> bytes: ...


class _PlainStream:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._loop = asyncio.get_running_loop()

    async def send(self, data: bytes) -> None:
        await self._loop.sock_sendall(self._sock, data)

    async def recv(self, max_bytes: int) -> bytes:
        return await self._loop.sock_recv(self._sock, max_bytes)


@dataclass(slots=True)
class _Record:
    """A probe in flight: its buffer survives cancellation, so a deadline keeps what it saw."""

    probe: Probe
    tls: bool
    data: bytearray = field(default_factory=bytearray)
    outcome: str = "cancelled"
    match: Match | None = None

    @property
    def key(self) -> str:
        return f"tls:{self.probe.name}" if self.tls else self.probe.name


_TLS_DETECT = Probe(name="tls-handshake", transport=Transport.TCP, payload=b"", always=True)


class _Run:
    """One endpoint's fingerprinting: the waves, their tasks, and what they found."""

    def __init__(
        self, ip: str, port: int, hostnames: Sequence[str], opts: Options, db: ProbeDatabase
    ) -> None:
        self.ip = ipaddress.ip_address(ip).compressed
        self.port = port
        self.opts = opts
        self.db = db
        self.sni = _ascii_hostname(hostnames[0]) if hostnames else None
        name = self.sni or (f"[{self.ip}]" if ":" in self.ip else self.ip)
        self.host = name if port in (80, 443) else f"{name}:{port}"
        self.tcp_probes = db.for_transport(Transport.TCP)
        self.records: dict[str, _Record] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.decisive: Match | None = None
        self.decisive_key: str | None = None
        self.tls: TlsSummary | None = None
        self.tls_suspected = False
        self.escalated = {False: False, True: False}  # per mode: plain, inside TLS
        self.done = asyncio.Event()
        self.sem = asyncio.Semaphore(opts.parallel)
        self.tg: asyncio.TaskGroup | None = None

    # -- scheduling -------------------------------------------------------------------

    @property
    def in_tls(self) -> bool:
        return self.tls is not None

    def _launch(self, probe: Probe, tls: bool) -> None:
        record = _Record(probe, tls)
        if record.key in self.records or self.done.is_set() or self.tg is None:
            return
        job = self._job(record)
        try:
            task = self.tg.create_task(job)
        except RuntimeError:  # the group is shutting down (the endpoint's deadline)
            job.close()
            return
        self.records[record.key] = record
        self.tasks[record.key] = task

    def _wave(self, tls: bool, first: bool) -> None:
        for probe in self.tcp_probes:
            if tls and not probe.tls:
                continue
            if tls and probe.name == "null":
                continue  # the detection connection is the null probe inside TLS
            if probe.likely_on(self.port) == first:
                self._launch(probe, tls)

    def _escalate(self) -> None:
        mode = self.in_tls
        if not self.escalated[mode] and not self.done.is_set() and self.decisive is None:
            self.escalated[mode] = True
            self._wave(mode, first=False)
        self._check_finished()

    def _running(self, tls: bool) -> list[str]:
        # The detection connection counts in both modes: after the handshake it is the
        # null probe inside TLS. A job asking from its own `finally` is as good as done.
        me = asyncio.current_task()
        return [
            key
            for key, task in self.tasks.items()
            if not task.done()
            and task is not me
            and (self.records[key].tls == tls or key == "tls-handshake")
        ]

    def _check_finished(self) -> None:
        if self.done.is_set():
            return
        if self.decisive is not None:  # held for the handshake (_on_match): nothing else
            if not self._tls_undecided():
                self.done.set()
            return
        mode = self.in_tls
        running = self._running(mode)
        waiting_on_greeting = {"null", "tls-handshake"}
        if not self.escalated[mode] and set(running) <= waiting_on_greeting:
            # The first wave answered without deciding: no need to wait for the timer.
            self.escalated[mode] = True
            self._wave(mode, first=False)
            running = self._running(mode)
        if not running and self.escalated[mode]:
            self.done.set()

    def _on_match(self, record: _Record, match: Match) -> None:
        if match.decisive and self.decisive is None:
            self.decisive, self.decisive_key = match, record.key
            if not record.tls and _http_400(record.data) and self._tls_undecided():
                # What a TLS port (nginx, Apache, Go) answers to any probe sent in plain,
                # decisive as it names the server: yet whether and how the port speaks
                # TLS is half the answer. Hold the decision until the handshake settles
                # (_check_finished ends it); on a plain port that takes one failed hello.
                return
            self.done.set()
            return
        # A soft match: run that service's own probes now rather than waiting for wave 2.
        for probe in self.tcp_probes:
            if match.service in probe.services and (probe.tls or not record.tls):
                self._launch(probe, record.tls)

    def _tls_undecided(self) -> bool:
        """Is the TLS handshake still going (asked from any other task)?"""
        task = self.tasks.get(_TLS_DETECT.name)
        return (
            self.tls is None
            and task is not None
            and not task.done()
            and task is not asyncio.current_task()
        )

    def _on_tls(self, summary: TlsSummary) -> None:
        self.tls = summary
        if self.decisive_key is not None and not self.records[self.decisive_key].tls:
            # A held plain answer: the probes inside TLS will say what really runs there
            # (the plain one stays among the soft matches, should they find nothing).
            self.decisive = self.decisive_key = None
        for key, task in self.tasks.items():
            if not self.records[key].tls and key != "tls-handshake":
                task.cancel()  # plain probes to a TLS port learn nothing more
        self._wave(tls=True, first=True)

    # -- probes -----------------------------------------------------------------------

    async def _connect(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.ip else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(self.opts.connect_timeout):
                await asyncio.get_running_loop().sock_connect(sock, (self.ip, self.port))
        except BaseException:
            sock.close()
            raise
        return sock

    async def _job(self, record: _Record) -> None:
        try:
            async with self.sem:
                if record.probe is _TLS_DETECT:
                    await self._tls_job(record)
                else:
                    await self._probe_job(record)
        except (TimeoutError, ConnectionRefusedError) as exc:
            record.outcome = "refused" if isinstance(exc, ConnectionRefusedError) else "timeout"
        except (ConnectionResetError, BrokenPipeError):
            record.outcome = "reset"
        except ssl.SSLError as exc:
            record.outcome = f"tls-error: {safe_text(exc.reason or str(exc), 80)}"
        except OSError as exc:
            record.outcome = f"error: {safe_text(exc.strerror or str(exc), 80)}"
        except Exception as exc:  # a bug of ours must not lose the other probes' results
            record.outcome = f"internal-error: {type(exc).__name__}"
        finally:
            if record.match is not None:
                self._on_match(record, record.match)
            self._check_finished()

    async def _probe_job(self, record: _Record) -> None:
        try:
            sock = await self._connect()
        except TimeoutError:
            record.outcome = "connect-timeout"
            return
        try:
            stream: _Stream = _PlainStream(sock)
            if record.tls:
                tls_stream = TlsStream(sock, self.sni)
                try:
                    async with asyncio.timeout(self.opts.tls_wait):
                        await tls_stream.handshake()
                except TimeoutError:
                    record.outcome = "tls-timeout"
                    return
                stream = tls_stream
            wait = self.opts.greeting_wait if record.probe.name == "null" else self.opts.reply_wait
            await self._exchange(stream, record, record.probe.render(self.host), wait)
        finally:
            sock.close()

    async def _tls_job(self, record: _Record) -> None:
        try:
            sock = await self._connect()
        except TimeoutError:
            record.outcome = "connect-timeout"
            return
        try:
            stream = TlsStream(sock, self.sni)
            try:
                async with asyncio.timeout(self.opts.tls_wait):
                    await stream.handshake()
            except TimeoutError:
                record.outcome = "tls-timeout"
                self.tls_suspected = stream.looks_like_tls
                return
            except (ssl.SSLError, ConnectionResetError):
                self.tls_suspected = stream.looks_like_tls
                raise
            record.outcome = "ok"
            self._on_tls(stream.summary())
            # The same connection now waits for a greeting inside TLS (IMAPS, POP3S, ...).
            inner = _Record(self.db.probe("null"), tls=True)
            self.records[inner.key] = inner
            try:
                await self._exchange(stream, inner, b"", self.opts.greeting_wait)
            except (ssl.SSLError, OSError):
                inner.outcome = "reset"
            if inner.match is not None:
                self._on_match(inner, inner.match)
        finally:
            sock.close()

    async def _exchange(
        self, stream: _Stream, record: _Record, payload: bytes, wait: float
    ) -> None:
        """Send, then read until EOF, the cap, a decisive match, or a quiet `linger`."""
        if payload:
            await stream.send(payload)
        cap = self.opts.read_cap
        while len(record.data) < cap:
            try:
                async with asyncio.timeout(wait):
                    chunk = await stream.recv(min(_RECV_CHUNK, cap - len(record.data)))
            except TimeoutError:
                record.outcome = "ok" if record.data else "io-timeout"
                return
            if not chunk:
                record.outcome = "ok" if record.data else "closed"
                return
            record.data += chunk
            match = match_response(bytes(record.data), record.probe.name, self.port, self.db)
            if match is not None:
                record.match = match
                if match.decisive and not _page_incomplete(record.data):
                    record.outcome = "ok"
                    return
                if not match.decisive:
                    self._on_match(record, match)
            wait = self.opts.linger
        record.outcome = "ok"  # the cap: we read no more

    async def _timer(self) -> None:
        await asyncio.sleep(self.opts.escalate_after)
        self._escalate()

    # -- the run ----------------------------------------------------------------------

    async def execute(self) -> Fingerprint:
        try:
            async with asyncio.timeout(self.opts.timeout), asyncio.TaskGroup() as tg:
                self.tg = tg
                timer = tg.create_task(self._timer())
                self._wave(tls=False, first=True)
                self.records[_TLS_DETECT.name] = _Record(_TLS_DETECT, tls=False)
                self.tasks[_TLS_DETECT.name] = tg.create_task(
                    self._job(self.records[_TLS_DETECT.name])
                )
                await self.done.wait()
                timer.cancel()
                for task in self.tasks.values():
                    task.cancel()
        except TimeoutError:
            pass  # the endpoint's deadline: report what the probes saw so far
        return self._result()

    def _result(self) -> Fingerprint:
        records = list(self.records.values())
        chosen = self.decisive
        source = self.records.get(self.decisive_key or "")
        if chosen is None:
            soft = [r for r in records if r.match is not None]
            # Inside TLS beats plain; a named product beats none.
            soft.sort(key=lambda r: (not r.tls, r.match is None or r.match.product is None))
            if soft:
                source, chosen = soft[0], soft[0].match
        return Fingerprint(
            service=chosen.service if chosen else None,
            product=chosen.product if chosen else None,
            version=chosen.version if chosen else None,
            cpe=chosen.cpe if chosen else None,
            extra=chosen.extra if chosen else None,
            evidence=MatchEvidence(
                probe=source.probe.name, rule=chosen.rule, tls=source.tls, excerpt=chosen.excerpt
            )
            if chosen and source
            else None,
            banner=self._banner(source),
            **self._http(source),
            tls=self.tls,
            tls_suspected=self.tls_suspected and self.tls is None,
            probes=tuple(
                ProbeResult(
                    probe=r.probe.name,
                    tls=r.tls,
                    outcome=r.outcome,
                    received=len(r.data),
                    rule=r.match.rule if r.match else None,
                )
                for r in records
            ),
        )

    def _banner(self, source: _Record | None) -> str | None:
        order: list[_Record | None] = [source]
        order += [self.records.get(k) for k in ("tls:null", "null", "tls:http-get", "http-get")]
        order += list(self.records.values())
        for record in order:
            if record is not None and record.data:
                return safe_text(bytes(record.data), BANNER_CAP)
        return None

    def _http(self, source: _Record | None) -> dict[str, object]:
        keys = ("tls:http-get", "http-get", "tls:http-version", "http-version")
        order = [source] + [self.records.get(k) for k in keys]
        for record in order:
            if record is not None and record.data:
                info = parse_http(bytes(record.data))
                if info is not None:
                    return {
                        "http_status": info.status,
                        "http_server": info.server,
                        "http_title": info.title,
                    }
        return {}


def _http_400(data: bytearray) -> bool:
    """An HTTP 400 Bad Request: among others, a TLS port's answer to plain bytes."""
    return data.startswith(b"HTTP/") and b" 400 " in data[:16]


def _page_incomplete(data: bytearray) -> bool:
    """An HTTP answer whose title may still be coming: read on (we asked it to close)."""
    return data.startswith(b"HTTP/") and b"</title" not in data.lower()


def _ascii_hostname(name: str) -> str | None:
    """The ASCII (punycode) form used for SNI and Host, or None if it is no hostname."""
    try:
        return name.strip().rstrip(".").encode("idna").decode("ascii") or None
    except UnicodeError:
        return None


async def fingerprint(
    ip: str,
    port: int,
    *,
    hostnames: Sequence[str] = (),
    timeout: float | None = None,  # noqa: ASYNC109 (the pipeline's per-endpoint budget)
    options: Options | None = None,
    db: ProbeDatabase | None = None,
) -> Fingerprint:
    """Identify the TCP service on ip:port. Never raises for anything the server does.

    `timeout` bounds the whole endpoint (it overrides `options.timeout`).
    """
    opts = options or Options()
    if timeout is not None:
        opts = replace(opts, timeout=timeout)
    return await _Run(ip, port, hostnames, opts, db or load_database()).execute()


def identify_udp(port: int, reply: bytes, db: ProbeDatabase | None = None) -> Fingerprint | None:
    """Name the service behind a UDP reply the UDP scanner collected (None: no rule knows it)."""
    match = match_datagram(reply, port, db)
    if match is None:
        return None
    return Fingerprint(
        service=match.service,
        product=match.product,
        version=match.version,
        cpe=match.cpe,
        extra=match.extra,
        evidence=MatchEvidence(probe="udp", rule=match.rule, excerpt=match.excerpt),
        banner=safe_text(reply, BANNER_CAP),
    )
