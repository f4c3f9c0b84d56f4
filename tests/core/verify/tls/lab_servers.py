"""Real TLS servers for the enumeration lab tests and the benchmark, inside a namespace.

The lab's nginx (tests/lab/daemons.py, with its known TLS 1.2 list, TLS 1.3 suites and
groups) and `openssl s_server` variants written here: legacy protocols and every suite
with a lowered security level, server order on and off, TLS 1.3 only (on an ECDSA
certificate), CBC suites only. Each `TlsServer` carries what its configuration says is
true; `check_with_s_client` confirms that once with `openssl s_client` per version, suite,
order and group, so the truth never comes from the code under test.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trustme

from tests.lab.daemons import (
    LAB_HOSTNAME,
    NGINX_GROUPS,
    scratch_dir,
    start_nginx,
    stop_services,
)
from tests.lab.netns import Netns, netns

OPENSSL_FLAG = {
    "TLSv1.0": "-tls1",
    "TLSv1.1": "-tls1_1",
    "TLSv1.2": "-tls1_2",
    "TLSv1.3": "-tls1_3",
}
LEGACY_TLS13 = ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256")
START_TIMEOUT = 15.0


@dataclass
class TlsServer:
    """One server and the truth about it, as its configuration states it.

    `suites` maps each accepted version to OpenSSL suite names: in the server's order when
    `server_order`, else as a set in config order. `groups13`/`groups12` are OpenSSL group
    names; `dhe_bits` the DH prime size s_client reports (None: no DHE configured).
    """

    name: str
    port: int
    suites: dict[str, list[str]]
    server_order: bool
    groups13: list[str] = field(default_factory=list)
    groups12: list[str] = field(default_factory=list)
    dhe_bits: int | None = None
    key_type: str = "RSA"
    sni: str | None = None
    checks: int = 0  # s_client runs that confirmed this truth

    @property
    def versions(self) -> tuple[str, ...]:
        return tuple(sorted(self.suites))


def _write_cert(directory: Path, key_type: trustme.KeyType) -> tuple[Path, Path]:
    ca = trustme.CA(key_type=key_type)
    leaf = ca.issue_cert(LAB_HOSTNAME, "127.0.0.1", key_type=key_type)
    cert, key = directory / f"cert-{key_type.name}.pem", directory / f"key-{key_type.name}.pem"
    for blob in leaf.cert_chain_pems:
        with cert.open("ab") as out:
            out.write(blob.bytes())
    leaf.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    return cert, key


def _openssl_ciphers(spec: str, version_flag: str) -> list[str]:
    out = subprocess.run(
        ["openssl", "ciphers", "-s", "-v", version_flag, spec],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    names = []
    for line in out.splitlines():
        name, _, kx, au = line.split()[:4]
        # An RSA certificate and no PSK or SRP configured: what s_server can really use.
        if au in ("Au=RSA", "Au=None") and not re.search(r"PSK|SRP", kx):
            names.append(name)
    return names


def _variants(
    cert_rsa: tuple[Path, Path], cert_ec: tuple[Path, Path], base: int
) -> list[tuple[TlsServer, list[str]]]:
    """(truth, s_server arguments) for each variant, on ports base, base+1, ..."""
    rsa = ["-cert", str(cert_rsa[0]), "-key", str(cert_rsa[1])]
    ec = ["-cert", str(cert_ec[0]), "-key", str(cert_ec[1])]
    legacy = "ALL:@SECLEVEL=0"
    legacy_suites = {v: _openssl_ciphers(legacy, OPENSSL_FLAG[v]) for v in ("TLSv1.0", "TLSv1.1")}
    legacy_suites["TLSv1.2"] = _openssl_ciphers(legacy, OPENSSL_FLAG["TLSv1.2"])
    legacy_suites["TLSv1.3"] = list(LEGACY_TLS13)
    ordered12 = [
        "ECDHE-RSA-AES128-SHA",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "AES256-SHA256",
        "DHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
    ordered13 = ["TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"]
    modern13 = ["TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"]
    cbc = ["ECDHE-RSA-AES128-SHA", "DHE-RSA-AES256-SHA256", "AES256-SHA"]
    cbc.append("ECDHE-RSA-CAMELLIA128-SHA256")
    ordered = [*rsa, "-cipher", ":".join(ordered12), "-ciphersuites", ":".join(ordered13)]
    p384_x25519 = ["secp384r1", "X25519"]
    return [
        (
            TlsServer(
                "legacy",
                base,
                legacy_suites,
                server_order=False,
                groups13=["X25519", "prime256v1", "secp384r1", "ffdhe2048"],
                groups12=["X25519", "prime256v1", "secp384r1"],
                dhe_bits=2048,
            ),
            [
                *rsa,
                *("-cipher", legacy, "-ciphersuites", ":".join(LEGACY_TLS13)),
                *("-min_protocol", "TLSv1", "-groups", "X25519:P-256:P-384:ffdhe2048"),
            ],
        ),
        (
            TlsServer(
                "serverpref",
                base + 1,
                {"TLSv1.2": ordered12, "TLSv1.3": ordered13},
                server_order=True,
                groups13=p384_x25519,
                groups12=p384_x25519,
                dhe_bits=2048,
            ),
            [*ordered, "-serverpref", "-groups", "P-384:X25519"],
        ),
        (
            TlsServer(
                "clientpref",
                base + 2,
                {"TLSv1.2": ordered12, "TLSv1.3": ordered13},
                server_order=False,
                groups13=p384_x25519,
                groups12=p384_x25519,
                dhe_bits=2048,
            ),
            [*ordered, "-groups", "P-384:X25519"],
        ),
        (
            TlsServer(
                "tls13only",
                base + 3,
                {"TLSv1.3": modern13},
                server_order=True,
                groups13=["X25519", "prime256v1"],
                key_type="EC",
            ),
            [
                *ec,
                *("-tls1_3", "-ciphersuites", ":".join(modern13)),
                *("-serverpref", "-groups", "X25519:P-256"),
            ],
        ),
        (
            TlsServer(
                "cbconly",
                base + 4,
                {"TLSv1.2": cbc},
                server_order=True,
                groups12=["X25519"],
                dhe_bits=2048,
            ),
            [*rsa, "-cipher", ":".join(cbc), "-no_tls1_3", "-serverpref", "-groups", "X25519"],
        ),
    ]


def _wait_listening(ns: Netns, port: int, proc: subprocess.Popen[bytes]) -> None:
    def poll() -> bool:
        for _ in range(int(START_TIMEOUT / 0.05)):
            if proc.poll() is not None:
                return False
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return True
            time.sleep(0.05)
        return False

    if not ns.call(poll, timeout=START_TIMEOUT + 5):
        raise RuntimeError(f"openssl s_server on {port} did not start (status {proc.poll()})")


@contextmanager
def tls_lab(base_port: int = 4430) -> Iterator[tuple[Netns, list[TlsServer]]]:
    """A namespace with nginx and the s_server variants running; torn down after."""
    with netns() as ns:
        workdir = scratch_dir()
        services = []
        try:
            rsa = _write_cert(workdir, trustme.KeyType.RSA)
            ec = _write_cert(workdir, trustme.KeyType.ECDSA)
            servers: list[TlsServer] = []
            for truth, args in _variants(rsa, ec, base_port):
                argv = [
                    "openssl",
                    "s_server",
                    "-accept",
                    f"127.0.0.1:{truth.port}",
                    "-quiet",
                    *args,
                ]
                proc = ns.popen(argv, stdin=subprocess.DEVNULL)
                _wait_listening(ns, truth.port, proc)
                servers.append(truth)
            nginx = start_nginx(ns, workdir, http_port=base_port + 79, https_port=base_port + 80)
            services.append(nginx)
            facts = nginx.tls
            assert facts is not None
            servers.append(
                TlsServer(
                    "nginx",
                    nginx.port("https"),
                    {
                        "TLSv1.2": list(facts.tls12_ciphers_openssl),
                        "TLSv1.3": list(facts.tls13_ciphersuites),
                    },
                    server_order=facts.server_preference,
                    groups13=[name for name, _ in NGINX_GROUPS],
                    groups12=[name for name, _ in NGINX_GROUPS],
                    sni=facts.hostname,
                )
            )
            yield ns, servers
        finally:
            stop_services(services)  # s_server processes stop with the namespace
            shutil.rmtree(workdir, ignore_errors=True)


# -- the ground truth, checked once with openssl s_client ----------------------------------


def s_client(ns: Netns, port: int, *args: str, sni: str | None = None) -> tuple[bool, str]:
    """One s_client handshake inside the namespace: (succeeded, its -brief output)."""
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-brief", *args]
    if sni:
        argv += ["-servername", sni]
    proc = subprocess.run(
        ns.argv(argv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    out = proc.stdout + proc.stderr
    return proc.returncode == 0 and "Ciphersuite" in out, out


GROUP_IANA = {"X25519": "x25519", "prime256v1": "secp256r1", "P-256": "secp256r1",
              "secp384r1": "secp384r1", "P-384": "secp384r1", "ffdhe2048": "ffdhe2048"}  # fmt: skip


def stdnames() -> dict[str, str]:
    """OpenSSL suite name -> IANA name, as the local OpenSSL itself maps them."""
    out = subprocess.run(
        ["openssl", "ciphers", "-V", "-stdname", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    return {openssl: iana for iana, openssl in re.findall(r"- (\S+)\s+- (\S+)", out)}


def _field(out: str, name: str) -> str:
    match = re.search(rf"^{name}: (.+)$", out, re.MULTILINE)
    return match.group(1).strip() if match else ""


def check_with_s_client(ns: Netns, server: TlsServer) -> None:
    """Confirm the server's stated truth with s_client; raise AssertionError if it is off.

    Every configured suite must be negotiable alone on its version; a suite outside the
    configuration must not be; every configured version must work and the others not;
    the order (which of two suites it picks) and every group must be as stated.
    """
    jobs: list[tuple[str, Sequence[str], bool, str | None]] = []  # (what, args, expect, cipher)
    low = "@SECLEVEL=0"
    for version, names in server.suites.items():
        flag = OPENSSL_FLAG[version]
        for name in names:
            args = ["-ciphersuites", name] if version == "TLSv1.3" else ["-cipher", f"{name}:{low}"]
            jobs.append((f"{version} {name}", [flag, *args], True, name))
        if version != "TLSv1.3":  # a suite OpenSSL knows but this server was not given
            absent = "ECDHE-ECDSA-AES256-GCM-SHA384" if server.key_type == "RSA" else "AES128-SHA"
            jobs.append(
                (f"{version} {absent} refused", [flag, "-cipher", f"{absent}:{low}"], False, None)
            )
        if len(names) >= 2:  # offer the server's first two reversed: who decides?
            first, second = names[0], names[1]
            offer = f"{second}:{first}"
            args = (
                ["-ciphersuites", offer] if version == "TLSv1.3" else ["-cipher", f"{offer}:{low}"]
            )
            winner = first if server.server_order else second
            jobs.append((f"{version} order", [flag, *args], True, winner))
    for version in OPENSSL_FLAG:
        if version not in server.suites:
            jobs.append(
                (
                    f"{version} refused",
                    [OPENSSL_FLAG[version], "-cipher", f"ALL:{low}"],
                    False,
                    None,
                )
            )
    for group in server.groups13:
        jobs.append((f"TLSv1.3 group {group}", ["-tls1_3", "-groups", group], True, None))
    for group in server.groups12:
        jobs.append(
            (
                f"TLSv1.2 group {group}",
                ["-tls1_2", "-cipher", f"ECDHE:{low}", "-groups", group],
                True,
                None,
            )
        )
    if "TLSv1.3" in server.suites:
        jobs.append(("TLSv1.3 group x448 refused", ["-tls1_3", "-groups", "X448"], False, None))
    if server.dhe_bits:
        jobs.append(("DHE", ["-tls1_2", "-cipher", f"DHE:{low}"], True, None))

    def run_job(job: tuple[str, Sequence[str], bool, str | None]) -> str | None:
        what, args, expect, cipher = job
        ok, out = s_client(ns, server.port, *args, sni=server.sni)
        if ok != expect:
            return f"{server.name}: {what}: s_client {'failed' if expect else 'succeeded'}"
        if ok and cipher and _field(out, "Ciphersuite") != cipher:
            return f"{server.name}: {what}: negotiated {_field(out, 'Ciphersuite')}, not {cipher}"
        if what == "DHE" and f"DH, {server.dhe_bits} bits" not in _field(out, "Server Temp Key"):
            return f"{server.name}: DHE key is {_field(out, 'Server Temp Key')}"
        return None

    with ThreadPoolExecutor(max_workers=4) as pool:
        problems = [p for p in pool.map(run_job, jobs) if p]
    assert not problems, "\n".join(problems)
    server.checks = len(jobs)
