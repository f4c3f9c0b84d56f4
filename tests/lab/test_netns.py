"""The namespace helper itself: isolated loopback, in-thread entry, cleanup."""

from __future__ import annotations

import socket
import subprocess

from tests.lab.netns import netns


def test_a_listener_in_the_namespace_is_invisible_from_the_host() -> None:
    with netns() as ns:

        def listen_and_probe() -> tuple[int, int]:
            server = socket.socket()
            server.bind(("127.0.0.1", 0))
            server.listen()
            port = server.getsockname()[1]
            with socket.socket() as client:
                inside = client.connect_ex(("127.0.0.1", port))
            server.close()
            return port, inside

        port, inside = ns.call(listen_and_probe)
        assert inside == 0
        # The host's loopback has no listener on that port (this is our own port number:
        # we only touch ports our test opened).
        with socket.socket() as client:
            client.settimeout(2)
            assert client.connect_ex(("127.0.0.1", port)) != 0
        name = ns.name
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert name not in listed
