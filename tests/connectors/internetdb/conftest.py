"""The `internetdb_emulator` fixture: a started InternetDB emulator with `.url` and `.key`
(None: the service is keyless).

One server runs for the whole session (stopping one takes half a second); each test gets it
back in a fresh state: no queued faults, no recorded requests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulators.internetdb import InternetDBEmulator


@pytest.fixture(scope="session")
def internetdb_server() -> Iterator[InternetDBEmulator]:
    with InternetDBEmulator() as emulator:
        assert isinstance(emulator, InternetDBEmulator)
        yield emulator


@pytest.fixture
def internetdb_emulator(internetdb_server: InternetDBEmulator) -> Iterator[InternetDBEmulator]:
    internetdb_server.reset()
    yield internetdb_server
    internetdb_server.reset()
