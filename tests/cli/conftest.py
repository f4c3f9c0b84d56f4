"""CLI tests run the Typer app in-process against the four provider emulators.

Every test gets its own store, cache and config dir (a developer's real config is never
read) and the emulators' URLs and keys in the environment, as a user would set them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.connectors.internetdb.conftest import internetdb_emulator, internetdb_server
from tests.connectors.shodan.conftest import shodan_emulator, shodan_server
from tests.emulators.censys import CensysEmulator, censys_emulator, censys_server
from tests.emulators.internetdb import InternetDBEmulator
from tests.emulators.netlas import NetlasEmulator, netlas_emulator, netlas_server
from tests.emulators.shodan import ShodanEmulator

__all__ = [
    "censys_emulator",
    "censys_server",
    "internetdb_emulator",
    "internetdb_server",
    "netlas_emulator",
    "netlas_server",
    "shodan_emulator",
    "shodan_server",
]

KEY_VARS = ("SHODAN_API_KEY", "CENSYS_API_TOKEN", "CENSYS_ORG_ID", "NETLAS_API_KEY")


@dataclass
class Providers:
    shodan: ShodanEmulator
    censys: CensysEmulator
    netlas: NetlasEmulator
    internetdb: InternetDBEmulator
    home: Path

    @property
    def db(self) -> Path:
        return self.home / "portintel.db"

    @property
    def all(self) -> list[ShodanEmulator | CensysEmulator | NetlasEmulator | InternetDBEmulator]:
        return [self.shodan, self.censys, self.netlas, self.internetdb]

    def requests(self) -> int:
        return sum(len(e.requests) for e in self.all)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No keys, own store/cache/config: what a fresh machine has."""
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)
    for name in ("PORTINTEL_CONFIG", "PORTINTEL_DB", "PORTINTEL_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PORTINTEL_DB", f"sqlite:///{tmp_path / 'portintel.db'}")
    monkeypatch.setenv("PORTINTEL_CACHE_DIR", str(tmp_path / "responses"))
    return tmp_path


@pytest.fixture
def providers(
    isolated: Path,
    monkeypatch: pytest.MonkeyPatch,
    shodan_emulator: ShodanEmulator,
    censys_emulator: CensysEmulator,
    netlas_emulator: NetlasEmulator,
    internetdb_emulator: InternetDBEmulator,
) -> Iterator[Providers]:
    env = {
        "PORTINTEL_SHODAN_URL": shodan_emulator.url,
        "PORTINTEL_CENSYS_URL": censys_emulator.url,
        "PORTINTEL_NETLAS_URL": netlas_emulator.url,
        "PORTINTEL_INTERNETDB_URL": internetdb_emulator.url,
        "SHODAN_API_KEY": shodan_emulator.key,
        "CENSYS_API_TOKEN": censys_emulator.key,
        "CENSYS_ORG_ID": censys_emulator.org_id,
        "NETLAS_API_KEY": netlas_emulator.key,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield Providers(
        shodan_emulator, censys_emulator, netlas_emulator, internetdb_emulator, isolated
    )


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
