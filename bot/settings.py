"""Settings from the environment (and `.env`), plus the structured `bot.yml` they point to.

Built once at start-up by `Settings.load()` and passed down; nothing reads `os.environ` later
except the secrets bot.yml names by variable (`*_env`: a platform's, an alert source's, the tracker's,
PagerDuty's, Statuspage's). `load` fills those in from `.env` too (`fill_environment`), so "the
environment or `.env`" holds for every variable the README names, not only the fields below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, get_args

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.config import BotConfig, load_bot_config
from bot.exceptions import ConfigError


def fill_environment(env_file: object) -> None:
    """Each variable `.env` sets that the environment lacks, put in the environment (which wins, as it does
    for the settings): a secret bot.yml names by variable (`routing_key_env: PAGERDUTY_ROUTING_KEY`) is read
    from the environment by the domain that needs it, and one written in `.env` was refused as not set."""
    if not isinstance(env_file, str | Path) or not Path(env_file).is_file():
        return
    for name, value in dotenv_values(env_file).items():
        if value is not None:
            os.environ.setdefault(name, value)


def normalise_database_url(url: str) -> str:
    """Accept the plain URLs hosts inject and pick the async driver ourselves."""
    url = url.strip()
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("postgresql+") and not url.startswith("postgresql+psycopg://"):
        # psycopg2/asyncpg URLs from other tools: keep the rest, use our driver.
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url.removeprefix("sqlite://")
    if url.startswith(("sqlite+aiosqlite://", "postgresql+psycopg://")):
        return url
    raise ValueError(f"unsupported database URL scheme in {url.split('://', 1)[0]!r}: use postgresql:// or sqlite:///")


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("json", "text")


# What the web dashboard needs, all four, before it is on (bot/web/auth.py).
DASHBOARD_SETTINGS = ("SLACK_OIDC_CLIENT_ID", "SLACK_OIDC_CLIENT_SECRET", "PUBLIC_URL", "SESSION_SECRET")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=False)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = "sqlite:///incident-bot.db"
    bot_config: Path = Path("bot.yml")
    playbooks_dir: Path = Path("playbooks")
    port: int = Field(default=3000, ge=1, le=65535)
    host: str = "0.0.0.0"
    railway_token: SecretStr | None = None
    railway_api_url: str = "https://backboard.railway.com/graphql/v2"
    railway_token_kind: str = "auto"  # auto | bearer | project
    vercel_token: SecretStr | None = None
    vercel_team_id: str | None = None
    vercel_api_url: str = "https://api.vercel.com"
    alerts_token: SecretStr | None = None
    # The web dashboard (bot/web): Sign in with Slack. All four must be set to turn it on.
    slack_oidc_client_id: str | None = None
    slack_oidc_client_secret: SecretStr | None = None
    public_url: str | None = None
    session_secret: SecretStr | None = None
    slack_authorize_url: str = "https://slack.com/openid/connect/authorize"
    statuspage_api_url: str = "https://api.statuspage.io/v1"
    log_level: str = "INFO"  # DEBUG | INFO | WARNING | ERROR | CRITICAL
    log_format: str = "json"  # json | text

    config: BotConfig = Field(default_factory=BotConfig, exclude=True)

    def dashboard_missing(self) -> list[str]:
        """The settings the web dashboard still needs; it is off until there are none."""
        values = (self.slack_oidc_client_id, self.slack_oidc_client_secret, self.public_url, self.session_secret)
        return [name for name, value in zip(DASHBOARD_SETTINGS, values, strict=True) if not value]

    @property
    def dashboard_url(self) -> str | None:
        """PUBLIC_URL when the web dashboard is on, else None: a link to it is only worth giving when it answers."""
        return None if self.dashboard_missing() else self.public_url

    @field_validator("*", mode="before")
    @classmethod
    def _strip_secrets(cls, value: Any, info: ValidationInfo) -> Any:
        """No token or secret has blanks at its ends; a pasted newline (`echo` into a Kubernetes secret, a
        copied `.env` line) would make every Slack signature and every alert's token fail to match."""
        field = cls.model_fields.get(info.field_name or "")
        secret = field is not None and SecretStr in (field.annotation, *get_args(field.annotation))
        if isinstance(value, str) and secret:
            return value.strip()
        return value

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http:// for a local trial), e.g. https://bot.example.com")
        if "/" in value.split("://", 1)[1] or "?" in value or "#" in value:
            raise ValueError("must be the root of a host (https://bot.example.com): the dashboard's links start at /")
        return value

    @field_validator("session_secret")
    @classmethod
    def _session_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return value  # unset, or set but empty: _no_empty_secrets says so
        if len(value.get_secret_value()) < 32:
            raise ValueError(
                "must be at least 32 characters: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @model_validator(mode="after")
    def _no_empty_secrets(self) -> Settings:
        """A secret set to nothing is a mistake, and a dangerous one (an empty ALERTS_TOKEN would match an
        empty Authorization header): start-up stops. Unset it to turn its feature off. Covers every
        SecretStr setting, present and future; SLACK_APP_TOKEN alone reads empty as unset (HTTP mode)."""
        empty = sorted(
            name.upper()
            for name, value in self.__dict__.items()
            if isinstance(value, SecretStr) and not value.get_secret_value().strip()
        )
        if empty:
            raise ValueError(
                f"{', '.join(empty)} {'is' if len(empty) == 1 else 'are'} set but empty: give "
                f"{'it a value' if len(empty) == 1 else 'them values'} or remove {'it' if len(empty) == 1 else 'them'}"
            )
        return self

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().upper()
        level = {"WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level)
        if level not in LOG_LEVELS:
            raise ValueError(f"{value!r} is not a log level: use {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        fmt = value.strip().lower()
        if fmt not in LOG_FORMATS:
            raise ValueError(f"{value!r} is not a log format: use json (for log collectors) or text (for people)")
        return fmt

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Environment + .env + bot.yml, or ConfigError with one line per problem."""
        fill_environment(overrides.get("_env_file", cls.model_config.get("env_file")))
        try:
            settings = cls(**overrides)
        except ValidationError as exc:
            lines = []
            for err in exc.errors():
                message = err["msg"].removeprefix("Value error, ")
                lines.append(f"{str(err['loc'][0]).upper()}: {message}" if err["loc"] else message)
            raise ConfigError("\n".join(lines)) from exc
        if "config" not in overrides:
            # Named anywhere (the environment, `.env`, an override): a missing file is an error, not
            # the defaults; only the default `bot.yml` may be absent.
            explicit = "bot_config" in settings.model_fields_set or "BOT_CONFIG" in os.environ
            settings.config = load_bot_config(settings.bot_config, required=explicit)
        return settings

    def require_serving(self) -> None:
        """What `python -m bot` needs that `check` and `postmortem` do not."""
        if self.slack_bot_token is None:
            raise ConfigError("SLACK_BOT_TOKEN: required to serve (the bot token, xoxb-…)")
        if not self.socket_mode and self.slack_signing_secret is None:
            raise ConfigError("SLACK_SIGNING_SECRET: required in HTTP mode (or set SLACK_APP_TOKEN for Socket Mode)")
