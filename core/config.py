"""Settings: defaults < config file < environment variables < command-line flags.

The config file is TOML, found at $PORTINTEL_CONFIG or in the user's config directory:

    db = "sqlite:////home/me/portintel.db"    # or postgresql+psycopg://...
    cache_dir = "/var/cache/portintel"

    [sources.shodan]
    api_key = "..."          # same as SHODAN_API_KEY (the env var wins)
    url = "https://api.shodan.io"
    enabled = true
    budget = 50              # credits per run
    timeout = 30             # seconds per request

A source's credential keys are its env var names, lower-cased, without the source prefix:
SHODAN_API_KEY -> api_key, CENSYS_API_TOKEN -> api_token, CENSYS_ORG_ID -> org_id.
Nothing is read at import time.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import ConfigError

APP = "portintel"


class SourceSettings(BaseModel):
    model_config = ConfigDict(extra="allow")  # credential keys vary by source

    url: str | None = None
    enabled: bool = True
    budget: float | None = Field(default=None, ge=0)
    timeout: float = Field(default=30.0, gt=0)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    db: str | None = None
    cache_dir: Path | None = None
    sources: dict[str, SourceSettings] = Field(default_factory=dict)
    config_path: Path | None = None
    env: dict[str, str] = Field(default_factory=dict, exclude=True)

    def source(self, name: str) -> SourceSettings:
        return self.sources.get(name) or SourceSettings()

    def credential(self, source: str, env_name: str) -> str | None:
        """A credential from the environment, else from the config file; None if unset."""
        value = self.env.get(env_name)
        if not value:
            prefix = f"{source.upper()}_"
            key = env_name[len(prefix) :] if env_name.startswith(prefix) else env_name
            extra = self.source(source).model_extra or {}
            value = extra.get(key.lower())
        return str(value).strip() if value else None

    def source_url(self, source: str, url_env: str, default: str) -> str:
        return (self.env.get(url_env) or self.source(source).url or default).rstrip("/")

    def database_url(self) -> str:
        if self.db:
            return self.db
        data = Path(platformdirs.user_data_dir(APP))
        return f"sqlite:///{data / 'portintel.db'}"

    def cache_path(self) -> Path:
        return self.cache_dir or Path(platformdirs.user_cache_dir(APP)) / "responses"


def default_config_path(env: Mapping[str, str]) -> Path:
    explicit = env.get("PORTINTEL_CONFIG")
    if explicit:
        return Path(explicit)
    return Path(platformdirs.user_config_dir(APP)) / "config.toml"


def load_settings(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read the config file (if any), then the environment, then `overrides` (CLI flags)."""
    env = dict(os.environ if env is None else env)
    explicit = path is not None or "PORTINTEL_CONFIG" in env
    path = path or default_config_path(env)
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the config file ({exc})") from exc
    elif explicit:
        raise ConfigError(f"{path}: config file not found")
    if env.get("PORTINTEL_DB"):
        data["db"] = env["PORTINTEL_DB"]
    if env.get("PORTINTEL_CACHE_DIR"):
        data["cache_dir"] = env["PORTINTEL_CACHE_DIR"]
    for key, value in (overrides or {}).items():
        if value is not None:
            data[key] = value
    try:
        return Settings(**data, config_path=path if path.is_file() else None, env=env)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{path}: setting {where!r}: {first['msg']}") from exc
