"""Network namespaces the tests create: their own loopback, holding only the tests' daemons.

Full-range and wide scans run only in here, never on the host's loopback (which carries
this machine's own services). Code runs inside a namespace either as a subprocess
(`ns.popen([...])`, via `ip netns exec`) or in-process on a thread that has joined the
namespace (`ns.call(fn, ...)`): network namespaces are per thread on Linux, and anything
that thread forks inherits it.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_counter = itertools.count()


def lab_unavailable(reason: str) -> None:
    """Skip a lab test on a developer machine; fail it under CI, where the lab must exist."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"lab prerequisite missing under CI: {reason}")
    pytest.skip(reason)


def require_root_netns() -> None:
    if os.geteuid() != 0:
        lab_unavailable("network namespaces need root")
    if shutil.which("ip") is None:
        lab_unavailable("iproute2 (`ip`) is not installed")


class Netns:
    """One network namespace with its loopback up. Delete it with `close()`."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or f"pi-{os.getpid()}-{next(_counter)}"
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        self.exec(["ip", "link", "set", "lo", "up"])
        self._procs: list[subprocess.Popen[bytes]] = []

    def argv(self, cmd: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *cmd]

    def exec(self, cmd: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace to completion (checked, text output)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("timeout", 120)
        return subprocess.run(self.argv(cmd), check=True, text=True, **kwargs)

    def popen(self, cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start a long-running process inside the namespace; stopped by `close()`."""
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        proc = subprocess.Popen(self.argv(cmd), **kwargs)
        self._procs.append(proc)
        return proc

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 300, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` on a thread inside the namespace; return its result."""
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                with open(f"/run/netns/{self.name}") as handle:
                    libc = ctypes.CDLL(None, use_errno=True)
                    if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns failed")
                box["value"] = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc

        thread = threading.Thread(target=target, name=f"netns-{self.name}", daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"call inside {self.name} still running after {timeout}s")
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        # Daemons that detach (or children that outlive their parent) die with the namespace.
        pids = subprocess.run(
            ["ip", "netns", "pids", self.name], capture_output=True, text=True, check=False
        ).stdout.split()
        for pid in pids:
            with suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), 9)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)


@contextmanager
def netns() -> Iterator[Netns]:
    require_root_netns()
    ns = Netns()
    try:
        yield ns
    finally:
        ns.close()
