"""`python -m core.verify.tls HOST PORT [--sni NAME] [--starttls smtp] [--json]`.

One enumeration from the command line: what the benchmark times as a whole process, and a
quick look for whoever is debugging a server. The portintel CLI wires enumeration into
its pipeline separately.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from core.verify.tls.enumerate import DEFAULT_PARALLEL, DEFAULT_TIMEOUT, enumerate_tls
from core.verify.tls.model import TlsProfile, profile_json
from core.verify.tls.starttls import StartTls


def render(profile: TlsProfile) -> str:
    """A plain-text report of a profile (server order when the server imposes one)."""
    lines = [f"{profile.ip}:{profile.port}  {profile.outcome}  grade {profile.grade}"]
    for result in profile.protocols:
        order = {True: "server order", False: "client order", None: ""}[result.server_preference]
        lines.append(f"  {result.version:8} {result.status:8} {order}  ({result.outcome})")
        for suite in result.suites:
            lines.append(f"      {suite.name:48} {suite.openssl_name or '':32} {suite.grade}")
    if profile.groups or profile.groups_tls12:
        lines.append(f"  groups TLS 1.3: {', '.join(profile.groups) or '-'}")
        lines.append(f"  groups TLS 1.2: {', '.join(profile.groups_tls12) or '-'}")
    if profile.dhe_bits:
        lines.append(f"  DHE prime: {profile.dhe_bits} bits")
    for verdict in profile.mozilla:
        state = "meets" if verdict.compliant else "fails"
        lines.append(f"  Mozilla {verdict.profile} ({verdict.guidelines}): {state}")
        lines += [f"      {reason}" for reason in verdict.reasons]
    lines += [f"  anomaly: {text}" for text in profile.anomalies]
    lines.append(f"  {profile.handshakes} handshakes, {profile.elapsed:.3f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.verify.tls", description=__doc__)
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--sni")
    parser.add_argument("--starttls", choices=[p.value for p in StartTls])
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    parser.add_argument("--parallel", type=int, default=DEFAULT_PARALLEL)
    parser.add_argument("--json", action="store_true", help="print the profile as JSON")
    args = parser.parse_args(argv)
    profile = asyncio.run(
        enumerate_tls(
            args.host,
            args.port,
            sni=args.sni,
            starttls=args.starttls,
            timeout=args.timeout,
            max_parallel=args.parallel,
        )
    )
    sys.stdout.write((profile_json(profile, indent=1) if args.json else render(profile)) + "\n")
    return 0 if profile.outcome in ("ok", "partial") else 1


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    # Skip the interpreter's teardown (collecting every module): the scan's sockets are
    # closed and its output flushed, and the benchmark compares this command's whole wall
    # time with C tools.
    os._exit(status)
