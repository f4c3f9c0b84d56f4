"""Settings layering: defaults < file < env < flags; clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_settings
from core.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_file_then_env_then_flags(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'db = "sqlite:///file.db"\n[sources.shodan]\napi_key = "from-file-key"\nbudget = 5\n'
        '[sources.censys]\napi_token = "tok-file"\norg_id = "org-file"\n',
    )
    env = {"SHODAN_API_KEY": "from-env-key", "PORTINTEL_DB": "sqlite:///env.db"}
    settings = load_settings(path, env=env)
    assert settings.credential("shodan", "SHODAN_API_KEY") == "from-env-key"
    assert settings.credential("censys", "CENSYS_ORG_ID") == "org-file"
    assert settings.source("shodan").budget == 5
    assert settings.database_url() == "sqlite:///env.db"
    flagged = load_settings(path, env=env, overrides={"db": "sqlite:///flag.db"})
    assert flagged.database_url() == "sqlite:///flag.db"


def test_url_override_env_beats_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[sources.netlas]\nurl = "http://127.0.0.1:1/"\n')
    assert load_settings(path, env={}).source_url("netlas", "PORTINTEL_NETLAS_URL", "x") == (
        "http://127.0.0.1:1"
    )
    env = {"PORTINTEL_NETLAS_URL": "http://127.0.0.1:2"}
    assert load_settings(path, env=env).source_url("netlas", "PORTINTEL_NETLAS_URL", "x") == (
        "http://127.0.0.1:2"
    )


def test_missing_file_is_fine_unless_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(env={"PORTINTEL_CONFIG": str(tmp_path / "nope.toml")})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", env={})
    settings = load_settings(env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert settings.config_path is None


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("db = [unclosed", "cannot read"),
        ("colour = 3\n", "colour"),
        ("[sources.shodan]\nbudget = -1\n", "sources.shodan.budget"),
    ],
)
def test_bad_file_names_the_problem(tmp_path: Path, text: str, match: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=match) as caught:
        load_settings(path, env={})
    assert str(path) in str(caught.value)
