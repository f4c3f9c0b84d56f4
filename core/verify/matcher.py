"""Matching service answers and provider banners against the probe database.

One matcher for both halves of portintel: `match_response` judges what our own probes got
back, `match_banner` judges the banners Shodan/Censys/Netlas return, so passive and active
sources name a service the same way (canonical names from core.naming).

Responses are untrusted bytes. They are matched as latin-1 text (one character per byte,
so binary protocols can be matched with \\xNN), and everything we keep from them (banners,
evidence excerpts, titles) goes through `safe_text`: undecodable bytes and control
characters become visible escapes, never raw terminal control sequences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.models import BANNER_CAP, Transport
from core.naming import canonical_service
from core.verify.probes import ProbeDatabase, Rule, load_database

EXCERPT_CAP = 160
"""Evidence excerpts are short: enough to show why a rule matched."""

_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CPE_SPECIAL = re.compile(r"([^A-Za-z0-9._-])")
_GROUP_REF = re.compile(r"\$(\d)")
_VERSION_CAP = 64


@dataclass(frozen=True, slots=True)
class Match:
    """What a rule concluded from one response or banner."""

    rule: str  # the rule id: evidence of why
    probe: str | None  # the probe whose answer matched (None for provider banners)
    service: str
    product: str | None = None
    version: str | None = None
    cpe: str | None = None
    extra: str | None = None
    excerpt: str = ""  # the matched text, sanitized and capped
    soft: bool = False  # the service is known but more may be learnt
    tls_hint: bool = False  # the answer says this port expects TLS

    @property
    def decisive(self) -> bool:
        return not self.soft


@dataclass(frozen=True, slots=True)
class HttpInfo:
    status: int
    server: str | None = None
    title: str | None = None


def safe_text(data: bytes | str, cap: int = BANNER_CAP) -> str:
    """Text that is safe to store and show: escapes instead of control bytes, at most `cap`.

    Bytes are decoded as UTF-8 with undecodable bytes written as \\xNN. Tab, CR and LF are
    kept (banners are multi-line); every other control character, and the Unicode
    direction overrides, become \\xNN / \\uNNNN text.
    """
    text = data.decode("utf-8", "backslashreplace") if isinstance(data, bytes) else data
    text = _UNSAFE.sub(_escape_char, text)
    return text[:cap]


def _escape_char(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _expand(template: str | None, m: re.Match[str], *, partial: bool) -> str | None:
    """Fill $N references. A missing group voids the field, unless `partial` (free text)."""
    if template is None:
        return None
    missing = False

    def group(ref: re.Match[str]) -> str:
        nonlocal missing
        value = m.group(int(ref.group(1)))
        if value is None or not value.strip():
            missing = True
            return ""
        return value.strip()

    out = _GROUP_REF.sub(group, template)
    if missing and not partial:
        return None
    out = " ".join(safe_text(out, 200).split())
    return out or None


def cpe23(prefix: str, version: str | None) -> str:
    """A CPE 2.3 formatted string for part:vendor:product, version ANY when unknown."""
    ver = _CPE_SPECIAL.sub(r"\\\1", version) if version else "*"
    return f"cpe:2.3:{prefix}:{ver}:*:*:*:*:*:*:*"


def _conclude(rule: Rule, m: re.Match[str], probe: str | None, raw_bytes: bool) -> Match:
    version = _expand(rule.version, m, partial=False)
    if version is not None:
        version = version[:_VERSION_CAP]
    matched = m.group(0)
    excerpt_src: bytes | str = matched.encode("latin-1") if raw_bytes else matched
    return Match(
        rule=rule.id,
        probe=probe,
        service=canonical_service(rule.service) or rule.service,
        product=_expand(rule.product, m, partial=False),
        version=version,
        cpe=cpe23(rule.cpe, version) if rule.cpe else None,
        extra=_expand(rule.extra, m, partial=True),
        excerpt=safe_text(excerpt_src, EXCERPT_CAP),
        soft=rule.soft,
        tls_hint=rule.tls_hint,
    )


def _best(rules: tuple[Rule, ...], text: str, probe: str | None, raw_bytes: bool) -> Match | None:
    """The first decisive rule that matches, else the first soft one (database order).

    A TLS hint ("plain HTTP sent to an HTTPS port") outranks everything: the same answer
    names the web server too, but deciding on it would cancel the TLS handshake.
    """
    fallback: Match | None = None
    for rule in rules:
        m = rule.pattern.search(text)
        if m is None:
            continue
        if rule.tls_hint:
            return _conclude(rule, m, probe, raw_bytes)
        if not rule.soft:
            return _conclude(rule, m, probe, raw_bytes)
        if fallback is None:
            fallback = _conclude(rule, m, probe, raw_bytes)
    return fallback


def match_response(
    data: bytes, probe: str, port: int | None = None, db: ProbeDatabase | None = None
) -> Match | None:
    """Judge the bytes one of our probes got back."""
    if not data:
        return None
    db = db or load_database()
    rules = tuple(r for r in db.rules if r.applies(probe, port))
    return _best(rules, data.decode("latin-1"), probe, raw_bytes=True)


def match_banner(
    text: str, port: int | None = None, db: ProbeDatabase | None = None
) -> Match | None:
    """Judge a banner a provider returned (Shodan `data`, a Censys banner, ...).

    We do not know what the provider sent to get it, so probe restrictions are ignored;
    rules too weak for free text (`passive = false`) and rules tied to other ports are not
    used.
    """
    if not text:
        return None
    db = db or load_database()
    rules = tuple(
        r for r in db.rules if r.passive and (not r.ports or (port is not None and port in r.ports))
    )
    return _best(rules, text, None, raw_bytes=False)


def match_datagram(data: bytes, port: int, db: ProbeDatabase | None = None) -> Match | None:
    """Judge a UDP reply, whatever the UDP scanner sent to get it."""
    if not data:
        return None
    db = db or load_database()
    udp = {p.name for p in db.for_transport(Transport.UDP)}
    rules = tuple(
        r
        for r in db.rules
        if (r.probes is None or r.probes & udp) and (not r.ports or port in r.ports)
    )
    return _best(rules, data.decode("latin-1"), None, raw_bytes=True)


_STATUS = re.compile(r"\AHTTP/\d(?:\.\d)? (\d{3})\b")
_SERVER = re.compile(r"(?im)^Server:[ \t]*([^\r\n]*)")
_TITLE = re.compile(r"(?is)<title[^>]*>(.*?)</title")


def parse_http(data: bytes | str) -> HttpInfo | None:
    """Status, Server header and page title of an HTTP response, if it is one."""
    text = data.decode("utf-8", "backslashreplace") if isinstance(data, bytes) else data
    status = _STATUS.match(text)
    if status is None:
        return None
    head, _, body = text.partition("\r\n\r\n")
    if not body:
        head, _, body = text.partition("\n\n")
    server = _SERVER.search(head)
    title = _TITLE.search(body)
    server_text = safe_text(server.group(1).strip(), 200) if server else ""
    title_text = " ".join(safe_text(title.group(1), 512).split())[:256] if title else ""
    return HttpInfo(
        status=int(status.group(1)),
        server=server_text or None,
        title=title_text or None,
    )
