"""Running the real nmap against listeners of our own, inside a namespace the test creates.

The listeners: Python's http.server on 8080 and a TCP server that greets like OpenSSH on
2222; port 9 is left closed. nmap scans only the namespace's 127.0.0.1 and only those
ports. `python -m tests.core.importers.nmap_lab OUT.xml` regenerates the committed fixture
(fixtures/imports/nmap.xml), with 127.0.0.1 replaced by the documentation address 192.0.2.10.
"""

from __future__ import annotations

import re
import shutil
import socket
import sys
import time
from pathlib import Path

from tests.lab.netns import Netns, lab_unavailable, require_root_netns

PORTS = "9,2222,8080"
SSH_GREETING = "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6"
DOC_ADDRESS = "192.0.2.10"

_SSH_SERVER = f"""
import socket
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 2222))
srv.listen(16)
while True:
    conn, _ = srv.accept()
    try:
        conn.sendall(b"{SSH_GREETING}\\r\\n")
        conn.settimeout(2)
        conn.recv(256)
    except OSError:
        pass
    finally:
        conn.close()
"""


def _wait_listening(ns: Netns, port: int) -> None:
    def probe() -> bool:
        for _ in range(100):  # bounded: 100 x 50 ms
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return True
            time.sleep(0.05)
        return False

    if not ns.call(probe, timeout=30):
        raise RuntimeError(f"listener on {port} did not start inside {ns.name}")


def run_nmap() -> str:
    """nmap -sV's XML for the lab ports, addresses as nmap wrote them (127.0.0.1)."""
    require_root_netns()
    if shutil.which("nmap") is None:
        lab_unavailable("nmap is not installed")
    ns = Netns()
    try:
        ns.popen([sys.executable, "-m", "http.server", "8080", "--bind", "127.0.0.1"])
        ns.popen([sys.executable, "-c", _SSH_SERVER])
        _wait_listening(ns, 8080)
        _wait_listening(ns, 2222)
        result = ns.exec(
            [
                "nmap",
                "-sV",
                "-Pn",
                "-n",
                "-p",
                PORTS,
                "--max-retries",
                "1",
                "-oX",
                "-",
                "127.0.0.1",
            ],
            timeout=240,
        )
        return result.stdout
    finally:
        ns.close()


def documented(xml: str) -> str:
    """The scan with lab addresses and this machine's paths replaced: safe to commit."""
    xml = xml.replace("127.0.0.1", DOC_ADDRESS)
    return re.sub(r'args="[^"]*"', f'args="nmap -sV -Pn -n -p {PORTS} -oX - {DOC_ADDRESS}"', xml)


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(documented(run_nmap()), encoding="utf-8")
