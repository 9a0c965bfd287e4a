"""bot.yml and environment settings: strict validation with messages that name the field."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel

from bot.config import BotConfig, Severity, load_bot_config, parse_duration
from bot.escalation import setup as escalation_setup
from bot.exceptions import ConfigError
from bot.settings import Settings, normalise_database_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("1h", 3600), ("1d", 86400), ("1h30m", 5400), (" 2S ", 2), ("500ms", 0.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["15", "15 minutes", "m", "", "1x", "-5m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_example_config_is_valid_and_complete() -> None:
    config = load_bot_config(ROOT / "bot.example.yml", required=True)
    assert set(config.services) == {"gateway", "web", "api", "billing"}
    assert [level.after for level in config.escalation.levels] == [
        timedelta(0),
        timedelta(minutes=15),
        timedelta(minutes=30),
    ]
    assert config.escalation.severity[Severity.P3].levels == 1
    assert config.oncall.rotation is not None and config.oncall.rotation.handoff_weekday == 0
    assert config.permissions.rollback == ["U0LEAD", "U0CTO"]
    assert config.warnings() == []


def _load(tmp_path: Path, text: str) -> BotConfig:
    path = tmp_path / "bot.yml"
    path.write_text(text)
    return load_bot_config(path, required=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "escalation:\n  levels:\n    - {name: L1, after: 15 minutes, notify: [U0A1]}\n",
            "escalation.levels.0.after: invalid duration '15 minutes'",
        ),
        ("escalation:\n  levels:\n    - {name: L1, after: 0m, notify: [alice]}\n", "escalation.levels.0.notify.0"),
        (
            "escalation:\n  levels:\n    - {name: L1, after: 15m, notify: [U0A1]}\n"
            "    - {name: L2, after: 5m, notify: [U0A1]}\n",
            "order levels by 'after'",
        ),
        ("chanels: {}\n", "chanels: unknown field"),
        ("services:\n  API:\n    health_url: http://x\n", "service name 'API'"),
        ("services:\n  api:\n    platform: railway\n", "the 'railway' section is missing"),
        ("oncall:\n  timezone: Mars/Base\n", "unknown time zone"),
        ("oncall:\n  rotation: {handoff: 'someday 09:00', users: [U0A1]}\n", "unknown weekday"),
        (
            "oncall:\n  rotation: {period: daily, handoff: 'friday 09:00', users: [U0A1]}\n",
            "oncall.rotation: handoff 'friday 09:00': a daily rotation hands off every day; write '09:00'",
        ),
        (
            "oncall:\n  rotation: {period: weekly, handoff: '09:00', users: [U0A1]}\n",
            "oncall.rotation: handoff '09:00': a weekly rotation needs the day; write 'monday 09:00'",
        ),
        (
            # YAML 1.1 reads an unquoted 10:00 as the sexagesimal number 600.
            "oncall:\n  rotation: {period: daily, handoff: 10:00, users: [U0A1]}\n",
            """oncall.rotation.handoff: handoff 600: quote the time, e.g. handoff: "10:00" """.strip(),
        ),
        (
            "escalation:\n  pagerduty: {api_url: events.pagerduty.com/v2/enqueue}\n",
            "escalation.pagerduty.api_url: 'events.pagerduty.com/v2/enqueue' is not a full URL",
        ),
        ("escalation:\n  repeat_last_every: 0m\n", "escalation.repeat_last_every: must be longer than 0"),
        (
            "escalation:\n  levels:\n    - {name: L1, after: 9999999999d, notify: [U0A1]}\n",
            "escalation.levels.0.after: duration '9999999999d' is too long",
        ),
        (
            "reminders: {postmortem_due_after: 1000000w}\n",
            "reminders.postmortem_due_after: duration '1000000w' is too long",
        ),
        ("channels: {announcements: incidents}\n", "channels.announcements"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("services: [\n", "not valid YAML"),
    ],
)
def test_config_errors_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        _load(tmp_path, text)
    assert message in str(exc.value)
    assert str(tmp_path / "bot.yml") in str(exc.value)


def test_missing_default_config_gives_defaults_but_named_one_is_an_error(tmp_path: Path) -> None:
    assert load_bot_config(tmp_path / "nope.yml", required=False) == BotConfig()
    with pytest.raises(ConfigError, match="BOT_CONFIG"):
        load_bot_config(tmp_path / "nope.yml", required=True)


def test_warnings_for_probably_unintended_config() -> None:
    warnings = BotConfig().warnings()
    assert any("oncall.rotation" in w for w in warnings)
    assert any("announcements" in w for w in warnings)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/bot", "postgresql+psycopg://u:p@db:5432/bot"),
        ("postgresql://u@db/bot", "postgresql+psycopg://u@db/bot"),
        ("postgresql+asyncpg://u@db/bot", "postgresql+psycopg://u@db/bot"),
        ("sqlite:///bot.db", "sqlite+aiosqlite:///bot.db"),
        ("sqlite+aiosqlite:////tmp/x.db", "sqlite+aiosqlite:////tmp/x.db"),
    ],
)
def test_database_urls_hosts_inject_work_as_given(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected


def test_unsupported_database_url_is_refused() -> None:
    with pytest.raises(ValueError, match="mysql"):
        normalise_database_url("mysql://x")


def test_settings_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxp-user-token")
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN: must be a bot token"):
        Settings.load()
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("PORT", "99999")
    with pytest.raises(ConfigError, match="PORT"):
        Settings.load()


def test_serving_requires_token_and_secret_in_http_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"]:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
        Settings.load().require_serving()
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        Settings.load().require_serving()
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1")
    Settings.load().require_serving()  # Socket Mode needs no signing secret
    assert Settings.load().socket_mode


def test_dotenv_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PORT", raising=False)
    (tmp_path / ".env").write_text("PORT=4123\n")
    assert Settings.load().port == 4123


def test_a_secret_bot_yml_names_by_variable_may_be_in_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The README says "environment variables (or `.env`)", but a routing key (or an alert source's token, the
    tracker's, Statuspage's) written in `.env` was refused: the domains read bot.yml's `*_env` from the
    environment, and only the settings' own fields were read from `.env`."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PAGERDUTY_ROUTING_KEY", raising=False)
    monkeypatch.setenv("ALERTS_TOKEN", "from-the-environment")
    (tmp_path / ".env").write_text("PAGERDUTY_ROUTING_KEY=R0UT1NG\nALERTS_TOKEN=from-dotenv\n")
    (tmp_path / "bot.yml").write_text("escalation:\n  pagerduty: {routing_key_env: PAGERDUTY_ROUTING_KEY}\n")
    settings = Settings.load()
    errors, _, _ = escalation_setup.check(settings)
    assert not [e for e in errors if "PAGERDUTY_ROUTING_KEY" in e], errors
    assert os.environ["PAGERDUTY_ROUTING_KEY"] == "R0UT1NG"
    # The environment still wins over `.env`, as it does for the settings.
    assert os.environ["ALERTS_TOKEN"] == "from-the-environment"
    assert settings.alerts_token is not None and settings.alerts_token.get_secret_value() == "from-the-environment"


# --- papercuts a newcomer met (issue 18) --------------------------------------------------------------


def test_bot_config_named_in_dotenv_is_used_and_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A misspelt BOT_CONFIG in .env silently gave the defaults, and `check` said ok."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BOT_CONFIG", raising=False)
    (tmp_path / ".env").write_text("BOT_CONFIG=prod-bot.yml\n")
    with pytest.raises(ConfigError, match="BOT_CONFIG: file prod-bot.yml does not exist"):
        Settings.load()
    (tmp_path / "prod-bot.yml").write_text("services:\n  api: {health_url: 'http://api/health'}\n")
    assert set(Settings.load().config.services) == {"api"}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("LOG_LEVEL", "verbose", "LOG_LEVEL: 'verbose' is not a log level: use DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT: 'xml' is not a log format: use json (for log collectors) or text"),
    ],
)
def test_log_settings_are_checked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as exc:
        Settings.load()
    assert str(exc.value).startswith(message)


def test_log_settings_forgive_case_and_the_usual_aliases(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOG_LEVEL", "warn")
    monkeypatch.setenv("LOG_FORMAT", "Text")
    settings = Settings.load()
    assert (settings.log_level, settings.log_format) == ("WARNING", "text")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("escalaton: {}\n", "escalaton: unknown field (did you mean 'escalation'?"),
        (
            "services:\n  api: {helth_url: 'http://x'}\n",
            "services.api.helth_url: unknown field (did you mean 'health_url'?",
        ),
        (
            "services:\n  api:\n    platform: railway\n    railway: {project_id: a, service_id: b, environment_id: c,"
            " enviroment: d}\n",
            "services.api.railway.enviroment: unknown field (did you mean 'environment_id'?",
        ),
        ("oncall:\n  rotation: {users: [U0A1], handof: 'monday 09:00'}\n", "did you mean 'handoff'?"),
        ("escalation:\n  levels:\n    - {name: L1, afer: 1m, notify: [U0A1]}\n", "did you mean 'after'?"),
        ("reminders: {zzz: 1}\n", "reminders.zzz: unknown field (check the spelling"),  # nothing close: no guess
    ],
)
def test_unknown_fields_get_did_you_mean(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        _load(tmp_path, text)
    assert message in str(exc.value)


def _example_keys() -> dict[str, object]:
    """bot.example.yml with its commented-out field lines (`# key: value`) put back, parsed."""
    import re

    import yaml

    text = (ROOT / "bot.example.yml").read_text(encoding="utf-8")
    # "# key: value" at any depth; a commented block keeps its own indentation after the "# ".
    uncommented = re.sub(r"(?m)^(\s*)# ?(\s*[a-z_]+:.*)$", r"\1\2", text)
    return yaml.safe_load(uncommented)  # type: ignore[no-any-return]


def _paths(value: object, model: type, prefix: str = "") -> set[str]:
    """Dotted field paths of `model` present in `value` (mapping keys such as a service's name skipped)."""
    from pydantic import BaseModel

    from bot.config.loader import _model_in

    found: set[str] = set()
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, dict):
            continue
        for key, child in item.items():
            field = model.model_fields.get(str(key)) if issubclass(model, BaseModel) else None
            if field is None:  # a mapping key (service name, severity): look inside with the same model
                found |= _paths(child, model, prefix)
                continue
            found.add(prefix + str(key))
            inner = _model_in(field.annotation)
            if inner is not None:
                found |= _paths(child, inner, f"{prefix}{key}.")
    return found


def _fields(model: type[BaseModel], prefix: str = "") -> set[str]:
    from bot.config.loader import _model_in

    out: set[str] = set()
    for name, field in model.model_fields.items():
        out.add(prefix + name)
        inner = _model_in(field.annotation)
        if inner is not None:
            out |= _fields(inner, f"{prefix}{name}.")
    return out


def test_the_example_config_shows_every_field() -> None:
    """bot.example.yml says it is complete; a dozen fields were missing from it."""
    documented = _paths(_example_keys(), BotConfig)
    assert _fields(BotConfig) - documented == set(), "add these to bot.example.yml (commented out if optional)"
    BotConfig.model_validate(_example_keys())  # the commented-out examples are valid too


def test_the_readme_settings_table_lists_every_setting() -> None:
    """HOST and RAILWAY_TOKEN_KIND were missing from the README's table."""
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("Environment variables (or `.env`):", 1)[1].split("\n\n", 2)[1]
    listed = {name for row in table.splitlines() for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}
    settings = {name.upper() for name, field in Settings.model_fields.items() if not field.exclude}
    assert settings - listed == set(), "add these to the README's settings table"
    assert listed - settings == set(), "the README lists settings the bot does not read"
