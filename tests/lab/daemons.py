"""Real daemons for lab tests, each started inside a namespace the test created.

Every `start_*` function writes its daemon's config into a fresh directory, starts the
daemon in the foreground inside a `Netns` (the process we hold *is* the daemon, so it is
stopped by that PID), waits until the daemon itself holds its listening sockets, and
returns a `LabService`. That record is the ground truth a verifier's answer is checked
against: the version comes from `dpkg-query`, never from anything the daemon or portintel
says, and the configured facts (TLS suites, community string, DNS record, ...) are the ones
written here.

`start_lab` starts all of them at once on distinct ports; `running_lab` wraps a namespace,
a scratch directory and the whole lab into one context manager (the `lab` fixture in
tests/conftest.py uses it). Daemons run on the namespace's own 127.0.0.1, so the machine's
own services are never in the way and never probed.

Lab notes that shaped this (see reference/baselines.md): nothing here may rely on systemd
or on the packages' init scripts; daemons that drop privileges need their directories
owned by their own user, so the scratch root is world-traversable (0755) and each
daemon's writable directories are chowned to it.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Literal

import trustme
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.lab.netns import Netns, netns

Transport = Literal["tcp", "udp"]

STARTUP_TIMEOUT = 30.0  # per daemon; the whole lab normally needs a few seconds
STOP_TIMEOUT = 15.0
SETUP_TIMEOUT = 60.0  # initdb, mariadb-install-db, postfix check, ssh-keygen
POLL_INTERVAL = 0.05
LOG_TAIL_LINES = 25
LAB_HOSTNAME = "lab.example.com"
LAB_PASSWORD = "lab-not-a-secret"  # a lab-only credential, inside a private namespace


class LabStartError(RuntimeError):
    """A lab daemon did not come up; the message carries the tail of its log."""


class DaemonMissing(LabStartError):
    """A daemon's binary, package or system user is not installed on this machine."""


@dataclass(frozen=True)
class LabPort:
    """One socket a lab daemon listens on, and the protocol spoken there."""

    port: int
    transport: Transport
    service: str  # "http", "https", "ssh", "dns", "ntp", "chrony-cmd", ...
    tls: bool = False


@dataclass(frozen=True)
class TlsFacts:
    """What nginx's TLS port was configured with, and the certificate minted for it."""

    hostname: str
    sans: tuple[str, ...]
    ca_pem: Path  # trust anchor (the CA trustme minted for this run)
    cert_pem: Path  # leaf certificate and chain as served
    key_type: str
    key_bits: int
    not_after: datetime
    protocols: tuple[str, ...]  # as OpenSSL names them: "TLSv1.2", "TLSv1.3"
    tls12_ciphers: tuple[str, ...]  # IANA names, in the server's preference order
    tls12_ciphers_openssl: tuple[str, ...]  # the same suites as written in ssl_ciphers
    tls13_ciphersuites: tuple[str, ...]  # IANA names (OpenSSL uses the same ones)
    groups: tuple[str, ...]  # key exchange groups, IANA names
    server_preference: bool


@dataclass(frozen=True)
class LabService:
    """One running lab daemon: where it listens and what is true about it.

    `version` is the Debian package version from dpkg-query; `upstream_version` is the
    product's own version parsed from it (what a correct fingerprint reports).
    `product` is the name the service reveals before authentication; `version_revealed`
    says whether it also reveals its version there (if not, a verifier must say
    "unknown" rather than guess).
    """

    name: str
    package: str
    version: str
    upstream_version: str
    product: str
    version_revealed: bool
    ports: tuple[LabPort, ...]
    pid: int
    workdir: Path
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False, compare=False)
    stop_signal: int = signal.SIGTERM
    tls: TlsFacts | None = None
    facts: Mapping[str, str] = field(default_factory=dict)

    @property
    def transports(self) -> frozenset[Transport]:
        return frozenset(p.transport for p in self.ports)

    def port(self, service: str, transport: Transport | None = None) -> int:
        """The port number of one of this daemon's sockets, by protocol name."""
        for p in self.ports:
            if p.service == service and transport in (None, p.transport):
                return p.port
        raise KeyError(f"{self.name} has no {service} port")


@dataclass(frozen=True)
class LabPorts:
    """The port plan for a whole lab; `standard()` uses the well-known ports."""

    http: int = 80
    https: int = 443
    ssh: int = 22
    ssh_alt: int = 2222
    ftp: int = 21
    smtp: int = 25
    imap: int = 143
    pop3: int = 110
    redis: int = 6379
    postgresql: int = 5432
    mysql: int = 3306
    memcached: int = 11211
    dns: int = 53
    snmp: int = 161
    ntp: int = 123
    chrony_cmd: int = 323
    rsync: int = 873

    @classmethod
    def standard(cls) -> LabPorts:
        # Well-known ports matter: a UDP top-ports scan only looks at listed ports, and
        # the benchmarks compare against tools that expect services where they usually are.
        return cls()

    @classmethod
    def from_base(cls, base: int) -> LabPorts:
        """Consecutive ports from `base`, for labs that must not clash with each other."""
        count = len(fields(cls))
        if not 1 <= base <= 65536 - count:
            raise ValueError(f"base port {base} leaves no room for {count} ports")
        return cls(*(base + offset for offset in range(count)))


@dataclass(frozen=True)
class RunningLab:
    """A namespace with every lab daemon running in it."""

    ns: Netns
    services: tuple[LabService, ...]
    workdir: Path

    def __getitem__(self, name: str) -> LabService:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(f"no lab service named {name!r}")

    def __iter__(self) -> Iterator[LabService]:
        return iter(self.services)


# -- ground truth ----------------------------------------------------------------------

# Debian repacks upstream tarballs ("+dfsg1", "+ds1", "~repack"); the suffix is not part
# of the version the product itself reports.
_REPACK_SUFFIX = re.compile(r"[+~](?:dfsg|ds|repack)\d*$")


def upstream_version(debian_version: str) -> str:
    """The upstream part of a Debian version: "1:9.2p1-2+deb12u10" -> "9.2p1"."""
    version = re.sub(r"^\d+:", "", debian_version.strip())
    if "-" in version:  # the Debian revision follows the last hyphen
        version = version.rsplit("-", 1)[0]
    return _REPACK_SUFFIX.sub("", version)


@functools.cache
def dpkg_version(package: str) -> str:
    """The installed version of a Debian package, as dpkg records it."""
    if shutil.which("dpkg-query") is None:
        raise DaemonMissing("dpkg-query is not available: the lab needs a Debian system")
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    version = result.stdout.strip()
    if result.returncode != 0 or not version:
        raise DaemonMissing(f"Debian package {package} is not installed")
    return version


# -- helpers ---------------------------------------------------------------------------


def _require_binary(path: str) -> str:
    found = shutil.which(path)
    if found is None:
        raise DaemonMissing(f"{path} is not installed")
    return found


def _user_ids(user: str) -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(user)
    except KeyError as exc:
        raise DaemonMissing(
            f"system user {user} does not exist (is its package installed?)"
        ) from exc
    return entry.pw_uid, entry.pw_gid


def _own(path: Path, user: str, mode: int = 0o755) -> None:
    uid, gid = _user_ids(user)
    os.chown(path, uid, gid)
    path.chmod(mode)


def _service_dir(workdir: Path, name: str) -> Path:
    """A fresh directory per daemon, so several instances can share one workdir."""
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workdir))
    path.chmod(0o755)  # daemons that drop privileges must reach their files below it
    return path


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def _as_user(user: str, argv: Sequence[str]) -> list[str]:
    """Run `argv` as `user`; setpriv execs in place, so the PID stays the daemon's."""
    _user_ids(user)
    return [
        _require_binary("setpriv"),
        f"--reuid={user}",
        f"--regid={user}",
        "--init-groups",
        *argv,
    ]


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


def _setup(argv: Sequence[str], what: str, workdir: Path) -> None:
    """Run a one-off setup step in `workdir` (outside the namespace: it uses no network)."""
    log = workdir / "setup.log"
    with log.open("ab") as handle:
        result = subprocess.run(
            list(argv),
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
            timeout=SETUP_TIMEOUT,
            cwd=workdir,  # daemons' users may not enter the caller's directory
        )
    if result.returncode != 0:
        raise LabStartError(f"{what} failed with status {result.returncode}:\n{_tail(log)}")


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    with contextlib.suppress(OSError):
        for entry in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(entry)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    return inodes


def _bound_inodes(transport: Transport, port: int) -> set[str]:
    """Inodes of sockets listening (TCP) or bound (UDP) on `port` in this thread's netns.

    Must run on a thread inside the namespace: /proc/thread-self/net shows the calling
    thread's namespace, while /proc/self/net would show the process's (the host's).
    """
    listening_state = "0A" if transport == "tcp" else "07"
    found: set[str] = set()
    for table in (transport, f"{transport}6"):
        try:
            rows = Path(f"/proc/thread-self/net/{table}").read_text().splitlines()[1:]
        except FileNotFoundError:  # no IPv6 in this kernel
            continue
        for row in rows:
            cols = row.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if state == listening_state and int(local.rsplit(":", 1)[1], 16) == port:
                found.add(inode)
    return found


def _launch(
    ns: Netns, argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return ns.popen(
            argv,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=None if env is None else {**os.environ, **env},
            # Its own process group: workers it forks (postfix's smtpd, postgres backends)
            # can be stopped with it, even when the daemon leaves them behind.
            start_new_session=True,
        )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL whatever is left of the daemon's process group once the daemon is gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    _kill_group(proc)


def _await_ready(
    ns: Netns,
    name: str,
    proc: subprocess.Popen[bytes],
    log: Path,
    ports: Sequence[LabPort],
    ready: Callable[[], bool] | None = None,
    timeout: float = STARTUP_TIMEOUT,
) -> None:
    """Wait until the daemon itself holds every one of its sockets (bounded).

    The socket must belong to our process, not merely exist: if the port was already
    taken, another program's listener must not make a dying daemon look ready.
    """

    def poll() -> str | None:
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / POLL_INTERVAL) + 1):
            if proc.poll() is not None:
                return f"exited with status {proc.returncode}"
            ours = _socket_inodes(proc.pid)
            bound = all(_bound_inodes(p.transport, p.port) & ours for p in ports)
            if bound and (ready is None or ready()):
                return None
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_INTERVAL)
        wanted = ", ".join(f"{p.port}/{p.transport}" for p in ports)
        return f"was not ready on {wanted} after {timeout:.0f} s"

    problem = ns.call(poll, timeout=timeout + 10)
    if problem is not None:
        _stop_process(proc, signal.SIGKILL)
        raise LabStartError(f"{name} {problem}; last lines of {log}:\n{_tail(log)}")


def _start(
    ns: Netns,
    name: str,
    argv: Sequence[str],
    workdir: Path,
    ports: Sequence[LabPort],
    *,
    env: Mapping[str, str] | None = None,
    ready: Callable[[], bool] | None = None,
    package: str | None = None,
    stop_signal: int = signal.SIGTERM,
    tls: TlsFacts | None = None,
    facts: Mapping[str, str] | None = None,
) -> LabService:
    """Launch a daemon in `ns`, wait until it is ready, and describe it."""
    default_package, product, version_revealed = GROUND_TRUTH[name]
    package = package or default_package
    version = dpkg_version(package)  # before launching: a missing package starts nothing
    log = workdir / f"{name}.log"
    proc = _launch(ns, argv, log, env)
    _await_ready(ns, name, proc, log, ports, ready)
    return LabService(
        name=name,
        package=package,
        version=version,
        upstream_version=upstream_version(version),
        product=product,
        version_revealed=version_revealed,
        ports=tuple(ports),
        pid=proc.pid,
        workdir=workdir,
        log=log,
        process=proc,
        stop_signal=stop_signal,
        tls=tls,
        facts=dict(facts or {}),
    )


# -- the daemons -----------------------------------------------------------------------

# name -> (Debian package that ships the binary, product name it reveals before
# authentication, whether it reveals its version there too).
GROUND_TRUTH: dict[str, tuple[str, str, bool]] = {
    "nginx": ("nginx", "nginx", True),  # Server: nginx/1.22.1
    "openssh": ("openssh-server", "OpenSSH", True),  # SSH-2.0-OpenSSH_9.2p1 Debian-...
    "vsftpd": ("vsftpd", "vsftpd", True),  # 220 (vsFTPd 3.0.3)
    "postfix": ("postfix", "Postfix", False),  # 220 ... ESMTP Postfix (Debian/GNU)
    "dovecot": ("dovecot-core", "Dovecot", False),  # * OK ... Dovecot (Debian) ready.
    # The binary lives in redis-tools (redis-server links to it); INFO needs no password.
    "redis": ("redis-tools", "Redis", True),
    # Nothing before authentication names the version; the package is postgresql-<major>.
    "postgresql": ("postgresql", "PostgreSQL", False),
    "mariadb": ("mariadb-server-core", "MariaDB", True),  # greeting: 5.5.5-10.11.x-MariaDB
    "memcached": ("memcached", "memcached", True),  # "version" -> VERSION 1.6.18
    "dnsmasq": ("dnsmasq-base", "dnsmasq", True),  # CHAOS TXT version.bind
    # SNMP and NTP carry no software version; rsync greets with its protocol version only.
    "snmpd": ("snmpd", "Net-SNMP", False),
    "chrony": ("chrony", "chrony", False),
    "rsync": ("rsync", "rsync", False),
}

# TLS 1.2 suites as (OpenSSL name, IANA name), in server preference order. Three strong
# ECDHE suites and one static-RSA CBC suite, so a grader has something to mark down.
NGINX_TLS12_SUITES = (
    ("ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    ("ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    ("ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    ("AES128-SHA", "TLS_RSA_WITH_AES_128_CBC_SHA"),
)
NGINX_TLS13_SUITES = ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
NGINX_GROUPS = (("X25519", "x25519"), ("secp384r1", "secp384r1"))  # (nginx, IANA)
NGINX_TITLE = "portintel lab"


def _mint_certificate(directory: Path, hostname: str) -> TlsFacts:
    # RSA because the configured TLS 1.2 suites are ECDHE-RSA and static RSA.
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    sans = (hostname, "127.0.0.1")
    leaf = ca.issue_cert(*sans, key_type=trustme.KeyType.RSA)
    cert_pem = directory / "server.pem"
    leaf.private_key_and_cert_chain_pem.write_to_path(str(cert_pem))
    cert_pem.chmod(0o600)
    ca_pem = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    return TlsFacts(
        hostname=hostname,
        sans=sans,
        ca_pem=ca_pem,
        cert_pem=cert_pem,
        key_type="RSA",
        key_bits=key.key_size,
        not_after=cert.not_valid_after_utc,
        protocols=("TLSv1.2", "TLSv1.3"),
        tls12_ciphers=tuple(iana for _, iana in NGINX_TLS12_SUITES),
        tls12_ciphers_openssl=tuple(name for name, _ in NGINX_TLS12_SUITES),
        tls13_ciphersuites=NGINX_TLS13_SUITES,
        groups=tuple(iana for _, iana in NGINX_GROUPS),
        server_preference=True,
    )


def start_nginx(
    ns: Netns, workdir: Path, *, http_port: int = 80, https_port: int = 443
) -> LabService:
    """nginx serving one page over HTTP and HTTPS with a known TLS configuration."""
    binary = _require_binary("nginx")
    d = _service_dir(workdir, "nginx")
    (d / "html").mkdir()
    (d / "tmp").mkdir()
    page = f"<html><head><title>{NGINX_TITLE}</title></head><body>lab</body></html>\n"
    _write(d / "html" / "index.html", page)
    tls = _mint_certificate(d, LAB_HOSTNAME)
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp_paths = "\n".join(f"  {kind}_temp_path {d}/tmp/{kind};" for kind in kinds)
    conf = _write(
        d / "nginx.conf",
        f"""user www-data;
worker_processes 1;
pid {d}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 128; }}
http {{
  access_log off;
{temp_paths}
  default_type text/html;
  server {{
    listen 127.0.0.1:{http_port};
    listen 127.0.0.1:{https_port} ssl;
    server_name {LAB_HOSTNAME};
    root {d}/html;
    ssl_certificate {tls.cert_pem};
    ssl_certificate_key {tls.cert_pem};
    ssl_protocols {" ".join(tls.protocols)};
    ssl_ciphers {":".join(tls.tls12_ciphers_openssl)};
    ssl_prefer_server_ciphers on;
    ssl_ecdh_curve {":".join(name for name, _ in NGINX_GROUPS)};
    ssl_conf_command Ciphersuites {":".join(tls.tls13_ciphersuites)};
  }}
}}
""",
    )
    ports = (LabPort(http_port, "tcp", "http"), LabPort(https_port, "tcp", "https", tls=True))
    argv = [binary, "-c", str(conf), "-p", str(d), "-g", "daemon off;"]
    facts = {"title": NGINX_TITLE, "hostname": LAB_HOSTNAME}
    return _start(ns, "nginx", argv, d, ports, tls=tls, facts=facts)


def start_openssh(ns: Netns, workdir: Path, *, ports: tuple[int, int] = (22, 2222)) -> LabService:
    """OpenSSH's sshd on two ports, with a host key made for this run."""
    binary = _require_binary("/usr/sbin/sshd")
    d = _service_dir(workdir, "openssh")
    key = d / "host_ed25519"
    _setup(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], "ssh-keygen", d)
    # sshd insists on its privilege separation directory; the package's init script
    # would make it, and nothing here runs init scripts.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    listen = "".join(f"Port {port}\n" for port in ports)
    conf = _write(
        d / "sshd_config",
        f"""{listen}ListenAddress 127.0.0.1
HostKey {key}
PidFile {d}/sshd.pid
UsePAM no
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile none
""",
    )
    lab_ports = tuple(LabPort(port, "tcp", "ssh") for port in ports)
    argv = [binary, "-D", "-e", "-f", str(conf)]
    return _start(ns, "openssh", argv, d, lab_ports, facts={"host_key": "ssh-ed25519"})


def start_vsftpd(ns: Netns, workdir: Path, *, port: int = 21) -> LabService:
    """vsftpd in standalone mode; local users only, no anonymous login."""
    binary = _require_binary("/usr/sbin/vsftpd")
    d = _service_dir(workdir, "vsftpd")
    (d / "empty").mkdir(mode=0o755)  # secure_chroot_dir: root-owned, not writable
    conf = _write(
        d / "vsftpd.conf",
        f"""listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port={port}
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=NO
pam_service_name=vsftpd
pasv_enable=NO
ssl_enable=NO
xferlog_enable=NO
vsftpd_log_file={d}/transfer.log
secure_chroot_dir={d}/empty
""",
    )
    return _start(ns, "vsftpd", [binary, str(conf)], d, (LabPort(port, "tcp", "ftp"),))


# smtpd alone cannot answer EHLO: it talks to these helper services (address rewriting,
# map lookups, rate counting). Columns: type private unpriv chroot wakeup maxproc command.
_POSTFIX_SERVICES = """\
pickup    unix  n  -  n  60   1  pickup
cleanup   unix  n  -  n  -    0  cleanup
qmgr      unix  n  -  n  300  1  qmgr
rewrite   unix  -  -  n  -    -  trivial-rewrite
bounce    unix  -  -  n  -    0  bounce
defer     unix  -  -  n  -    0  bounce
trace     unix  -  -  n  -    0  bounce
verify    unix  -  -  n  -    1  verify
proxymap  unix  -  -  n  -    -  proxymap
anvil     unix  -  -  n  -    1  anvil
error     unix  -  -  n  -    -  error
discard   unix  -  -  n  -    -  discard
postlog   unix-dgram n - n -  1  postlogd
"""


def start_postfix(ns: Netns, workdir: Path, *, port: int = 25) -> LabService:
    """Postfix's master with smtpd on `port`, its own config, queue and data directories."""
    postfix = _require_binary("/usr/sbin/postfix")
    d = _service_dir(workdir, "postfix")
    conf_dir, queue, data = d / "conf", d / "queue", d / "data"
    for path in (conf_dir, queue, data):
        path.mkdir()
    _own(data, "postfix")
    # Debian's stock banner; it names the product but not its version.
    _write(
        conf_dir / "main.cf",
        f"""compatibility_level = 3.6
myhostname = {LAB_HOSTNAME}
mydomain = example.com
mydestination =
mynetworks = 127.0.0.0/8
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
queue_directory = {queue}
data_directory = {data}
smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)
maillog_file = /dev/stdout
alias_maps =
alias_database =
biff = no
""",
    )
    # chroot "n" everywhere: a chroot would need copies of system files in the queue.
    _write(conf_dir / "master.cf", f"127.0.0.1:{port} inet n - n - - smtpd\n{_POSTFIX_SERVICES}")
    # `postfix check` creates the queue's subdirectories with the owners postfix wants.
    _setup([postfix, "-c", str(conf_dir), "check"], "postfix check", d)
    daemon_dir = subprocess.run(
        ["postconf", "-h", "daemon_directory"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    # master -d stays in the foreground; `postfix start-fg` would only do so as PID 1.
    argv = [f"{daemon_dir}/master", "-c", str(conf_dir), "-d"]
    ports = (LabPort(port, "tcp", "smtp"),)
    return _start(ns, "postfix", argv, d, ports, facts={"hostname": LAB_HOSTNAME})


def start_dovecot(
    ns: Netns, workdir: Path, *, imap_port: int = 143, pop3_port: int = 110
) -> LabService:
    """Dovecot serving IMAP and POP3 (no implicit-TLS listeners)."""
    binary = _require_binary("/usr/sbin/dovecot")
    d = _service_dir(workdir, "dovecot")
    _user_ids("dovecot")
    _user_ids("dovenull")
    # Dovecot's parser wants each block over several lines. Its own log goes to the same
    # file as its stderr (both append).
    conf = _write(
        d / "dovecot.conf",
        f"""protocols = imap pop3
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = no
disable_plaintext_auth = yes
mail_location = maildir:{d}/mail/%u
passdb {{
  driver = static
  args = password={LAB_PASSWORD}
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={d}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
""",
    )
    ports = (LabPort(imap_port, "tcp", "imap"), LabPort(pop3_port, "tcp", "pop3"))
    return _start(ns, "dovecot", [binary, "-F", "-c", str(conf)], d, ports)


def start_redis(ns: Netns, workdir: Path, *, port: int = 6379) -> LabService:
    """Redis without a password: INFO answers anyone, as on exposed servers."""
    binary = _require_binary("redis-server")
    d = _service_dir(workdir, "redis")
    _own(d, "redis")
    # redis-server takes `--name value` pairs, not `--name=value`: a config file is clearer.
    conf = _write(
        d / "redis.conf",
        f'port {port}\nbind 127.0.0.1\ndir {d}\nsave ""\nappendonly no\ndaemonize no\n',
    )
    argv = _as_user("redis", [binary, str(conf)])
    return _start(ns, "redis", argv, d, (LabPort(port, "tcp", "redis"),))


def _postgres_bindir() -> Path:
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/postgres")]
    majors = [p for p in found if p.parent.name.isdigit()]
    if not majors:
        raise DaemonMissing("PostgreSQL server binaries are not installed")
    return max(majors, key=lambda p: int(p.parent.name))


def start_postgresql(ns: Netns, workdir: Path, *, port: int = 5432) -> LabService:
    """PostgreSQL: a cluster made by initdb as the postgres user, run in the foreground."""
    bindir = _postgres_bindir()
    d = _service_dir(workdir, "postgresql")
    _own(d, "postgres")
    sock, data = d / "sock", d / "data"
    sock.mkdir()
    _own(sock, "postgres")
    pwfile = _write(d / "pwfile", f"{LAB_PASSWORD}\n", mode=0o600)
    _own(pwfile, "postgres", mode=0o600)
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", f"--pwfile={pwfile}",
              "--auth-local=peer", "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8",
              "--locale=C.UTF-8"]  # fmt: skip
    _setup(_as_user("postgres", initdb), "initdb", d)
    settings = {"listen_addresses": "127.0.0.1", "fsync": "off", "shared_buffers": "16MB",
                "max_connections": "20"}  # fmt: skip
    server = [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sock)]
    server += [arg for k, v in settings.items() for arg in ("-c", f"{k}={v}")]

    def accepting() -> bool:
        # Line 8 of postmaster.pid is the server's own status; "ready" means it accepts
        # logins, not merely that the socket exists (it listens while still starting).
        try:
            lines = (data / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready"

    return _start(
        ns, "postgresql", _as_user("postgres", server), d, (LabPort(port, "tcp", "postgresql"),),
        ready=accepting,
        package=f"postgresql-{bindir.parent.name}",
        # SIGINT is the fast shutdown; SIGTERM (smart) would wait for any open session.
        stop_signal=signal.SIGINT,
        facts={"user": "postgres", "password": LAB_PASSWORD, "socket_dir": str(sock)},
    )  # fmt: skip


def start_mariadb(ns: Netns, workdir: Path, *, port: int = 3306) -> LabService:
    """MariaDB with a fresh datadir; a user at '%' so remote clients get the greeting."""
    install_db = _require_binary("mariadb-install-db")
    server = _require_binary("/usr/sbin/mariadbd")
    d = _service_dir(workdir, "mariadb")
    data, run = d / "data", d / "run"
    for path in (data, run):
        path.mkdir()
        _own(path, "mysql")
    install = [install_db, "--no-defaults", "--user=mysql", f"--datadir={data}",
               "--auth-root-authentication-method=socket", "--skip-test-db",
               "--skip-name-resolve"]  # fmt: skip
    _setup(install, "mariadb-install-db", d)
    # Without an account matching the client's host, MariaDB answers "Host ... is not
    # allowed to connect" instead of its greeting, and reveals nothing.
    init = _write(
        d / "init.sql", f"CREATE USER IF NOT EXISTS 'lab'@'%' IDENTIFIED BY '{LAB_PASSWORD}';\n"
    )
    socket_path = f"{run}/mysqld.sock"
    argv = [server, "--no-defaults", "--user=mysql", f"--datadir={data}", f"--port={port}",
            "--bind-address=127.0.0.1", f"--socket={socket_path}", f"--pid-file={run}/mysqld.pid",
            "--skip-name-resolve", "--innodb-buffer-pool-size=16M",
            f"--init-file={init}"]  # fmt: skip
    facts = {"user": "lab", "password": LAB_PASSWORD, "socket": socket_path}
    return _start(ns, "mariadb", argv, d, (LabPort(port, "tcp", "mysql"),), facts=facts)


def start_memcached(ns: Netns, workdir: Path, *, port: int = 11211) -> LabService:
    """memcached on TCP and UDP (UDP is off by default since 1.5.6; the lab turns it on)."""
    binary = _require_binary("memcached")
    d = _service_dir(workdir, "memcached")
    _user_ids("memcache")
    argv = [binary, "-u", "memcache", "-l", "127.0.0.1", "-p", str(port), "-U", str(port),
            "-m", "16", "-t", "2"]  # fmt: skip
    ports = (LabPort(port, "tcp", "memcached"), LabPort(port, "udp", "memcached"))
    return _start(ns, "memcached", argv, d, ports)


def start_dnsmasq(ns: Netns, workdir: Path, *, port: int = 53) -> LabService:
    """dnsmasq as a DNS server only (no DHCP, no upstream) with one local record."""
    binary = _require_binary("dnsmasq")
    d = _service_dir(workdir, "dnsmasq")
    _user_ids("dnsmasq")
    record, address = LAB_HOSTNAME, "192.0.2.10"
    conf = _write(
        d / "dnsmasq.conf",
        f"""port={port}
listen-address=127.0.0.1
bind-interfaces
no-resolv
no-hosts
no-poll
host-record={record},{address}
user=dnsmasq
pid-file={d}/dnsmasq.pid
""",
    )
    argv = [binary, "--keep-in-foreground", f"--conf-file={conf}", "--log-facility=-"]
    ports = (LabPort(port, "udp", "dns"), LabPort(port, "tcp", "dns"))
    return _start(ns, "dnsmasq", argv, d, ports, facts={"record": record, "address": address})


def start_snmpd(ns: Netns, workdir: Path, *, port: int = 161) -> LabService:
    """Net-SNMP's agent on UDP with the read-only community "public"."""
    binary = _require_binary("/usr/sbin/snmpd")
    d = _service_dir(workdir, "snmpd")
    # The persistent dir must not hold the config: snmpd rewrites snmpd.conf there.
    state = d / "state"
    state.mkdir()
    _own(state, "Debian-snmp")
    facts = {"community": "public", "sysLocation": "portintel lab", "sysContact": "lab@example.com"}
    conf = _write(
        d / "snmpd.conf",
        f"""agentAddress udp:127.0.0.1:{port}
rocommunity {facts["community"]} 127.0.0.1
sysLocation {facts["sysLocation"]}
sysContact {facts["sysContact"]}
""",
    )
    # -I -smux: no SMUX listener on TCP 199, which would be an extra, unlisted lab port.
    # -m "": load no MIB files (the agent needs none; it only spares hundreds of warnings).
    argv = [binary, "-f", "-C", "-c", str(conf), "-I", "-smux", "-m", "", "-Lo",
            "-u", "Debian-snmp", "-g", "Debian-snmp", "-p", str(d / "snmpd.pid")]  # fmt: skip
    env = {"SNMP_PERSISTENT_DIR": str(state)}
    return _start(ns, "snmpd", argv, d, (LabPort(port, "udp", "snmp"),), env=env, facts=facts)


def start_chrony(
    ns: Netns, workdir: Path, *, ntp_port: int = 123, cmd_port: int = 323
) -> LabService:
    """chronyd serving NTP and its command port, never touching the clock (-x)."""
    binary = _require_binary("/usr/sbin/chronyd")
    d = _service_dir(workdir, "chrony")
    run = d / "run"
    run.mkdir()
    _own(run, "_chrony", mode=0o770)  # chronyd refuses a socket dir others can enter
    stratum = "10"
    conf = _write(
        d / "chrony.conf",
        f"""port {ntp_port}
cmdport {cmd_port}
bindaddress 127.0.0.1
bindcmdaddress 127.0.0.1
bindcmdaddress {run}/chronyd.sock
allow 127.0.0.1
cmdallow 127.0.0.1
local stratum {stratum}
pidfile {run}/chronyd.pid
driftfile {run}/chrony.drift
""",
    )
    # -4: IPv4 only, or chronyd also binds the command port on ::1.
    argv = [binary, "-4", "-x", "-d", "-u", "_chrony", "-f", str(conf)]
    ports = (LabPort(ntp_port, "udp", "ntp"), LabPort(cmd_port, "udp", "chrony-cmd"))
    return _start(ns, "chrony", argv, d, ports, facts={"stratum": stratum})


def start_rsync(ns: Netns, workdir: Path, *, port: int = 873) -> LabService:
    """rsync in daemon mode with one read-only module."""
    binary = _require_binary("rsync")
    d = _service_dir(workdir, "rsync")
    facts = {"module": "lab", "comment": "portintel lab module"}
    (d / "module").mkdir(mode=0o755)
    _write(d / "module" / "README", "portintel lab\n")
    conf = _write(
        d / "rsyncd.conf",
        f"""pid file = {d}/rsyncd.pid
log file = {d}/rsyncd.log
use chroot = no
[{facts["module"]}]
  path = {d}/module
  comment = {facts["comment"]}
  read only = yes
""",
    )
    argv = [binary, "--daemon", "--no-detach", f"--config={conf}", f"--port={port}",
            "--address=127.0.0.1"]  # fmt: skip
    return _start(ns, "rsync", argv, d, (LabPort(port, "tcp", "rsync"),), facts=facts)


# -- the whole lab ---------------------------------------------------------------------


def lab_starters(ns: Netns, workdir: Path, ports: LabPorts) -> dict[str, Callable[[], LabService]]:
    """Every lab daemon's start call, by service name (one registry for start_lab)."""
    return {
        "nginx": functools.partial(
            start_nginx, ns, workdir, http_port=ports.http, https_port=ports.https
        ),
        "openssh": functools.partial(start_openssh, ns, workdir, ports=(ports.ssh, ports.ssh_alt)),
        "vsftpd": functools.partial(start_vsftpd, ns, workdir, port=ports.ftp),
        "postfix": functools.partial(start_postfix, ns, workdir, port=ports.smtp),
        "dovecot": functools.partial(
            start_dovecot, ns, workdir, imap_port=ports.imap, pop3_port=ports.pop3
        ),
        "redis": functools.partial(start_redis, ns, workdir, port=ports.redis),
        "postgresql": functools.partial(start_postgresql, ns, workdir, port=ports.postgresql),
        "mariadb": functools.partial(start_mariadb, ns, workdir, port=ports.mysql),
        "memcached": functools.partial(start_memcached, ns, workdir, port=ports.memcached),
        "dnsmasq": functools.partial(start_dnsmasq, ns, workdir, port=ports.dns),
        "snmpd": functools.partial(start_snmpd, ns, workdir, port=ports.snmp),
        "chrony": functools.partial(
            start_chrony, ns, workdir, ntp_port=ports.ntp, cmd_port=ports.chrony_cmd
        ),
        "rsync": functools.partial(start_rsync, ns, workdir, port=ports.rsync),
    }


def scratch_dir() -> Path:
    """A short, world-traversable directory under /tmp for a lab's files.

    Short because Unix socket paths are limited to 107 bytes; traversable because
    daemons that drop privileges must reach their own subdirectories.
    """
    path = Path(tempfile.mkdtemp(prefix="pi-lab-", dir="/tmp"))
    path.chmod(0o755)
    return path


def start_lab(
    ns: Netns, base_port: int | None = None, *, workdir: Path | None = None
) -> list[LabService]:
    """Start every lab daemon inside `ns`, in parallel, and return them in a fixed order.

    `base_port=None` uses the well-known ports (fine: the namespace's loopback is the
    lab's own); an int puts the lab on consecutive ports from there. Without a workdir
    the files go to a scratch directory removed when the Python process exits. If any
    daemon fails, the ones that did start are stopped before the error is raised.
    """
    ports = LabPorts.standard() if base_port is None else LabPorts.from_base(base_port)
    if workdir is None:
        workdir = scratch_dir()
        atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    starters = lab_starters(ns, workdir, ports)
    started: list[LabService] = []
    failures: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=len(starters), thread_name_prefix="lab-start") as pool:
        futures = [pool.submit(start) for start in starters.values()]
        for future in futures:  # each start is bounded by its own setup/readiness limits
            try:
                started.append(future.result())
            except BaseException as exc:  # collected, then raised after cleanup
                failures.append(exc)
    if failures:
        stop_services(started)
        summary = "\n\n".join(str(exc) for exc in failures)
        if all(isinstance(exc, DaemonMissing) for exc in failures):
            raise DaemonMissing(summary)
        unexpected = [exc for exc in failures if not isinstance(exc, LabStartError)]
        if unexpected:
            raise LabStartError(f"the lab did not start:\n{summary}") from unexpected[0]
        raise LabStartError(f"the lab did not start:\n{summary}")
    return started


def stop_services(services: Sequence[LabService], timeout: float = STOP_TIMEOUT) -> None:
    """Stop daemons by PID: signal them all first, then wait (bounded), then SIGKILL."""
    for service in services:
        if service.process.poll() is None:
            service.process.send_signal(service.stop_signal)
    deadline = time.monotonic() + timeout
    for service in services:
        try:
            service.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait(timeout=5)
        _kill_group(service.process)


@contextlib.contextmanager
def running_lab(base_port: int | None = None) -> Iterator[RunningLab]:
    """A fresh namespace with the whole lab running in it; everything is torn down after."""
    with netns() as ns:
        workdir = scratch_dir()
        try:
            services = start_lab(ns, base_port, workdir=workdir)
            try:
                yield RunningLab(ns=ns, services=tuple(services), workdir=workdir)
            finally:
                stop_services(services)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
