"""Fixtures shared across the test tree."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.lab.daemons import DaemonMissing, RunningLab, running_lab
from tests.lab.netns import lab_unavailable


@pytest.fixture(scope="session")
def lab() -> Iterator[RunningLab]:
    """One namespace with every lab daemon running on its well-known port.

    Session-wide because the lab takes seconds to start and tests only read from it.
    Look services up by name (`lab["nginx"]`) and run probes inside the namespace with
    `lab.ns.call(fn, ...)`. A missing daemon skips locally and fails under CI=true.
    """
    with ExitStack() as stack:
        try:
            running = stack.enter_context(running_lab())
        except DaemonMissing as exc:
            lab_unavailable(str(exc))
            raise  # lab_unavailable always raises (skip, or fail under CI)
        yield running
